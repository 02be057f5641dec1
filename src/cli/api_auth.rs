//! Resolving `--api-auth` and the credentials it uses. A credential the user gave is never
//! silently left unsent:
//! - with `--api-auth` unset, the kind is inferred when only one kind of credential was given
//!   (an API key → `api-key`; a bearer token, token file or `--bearer-from azure` → `bearer`),
//!   and `--show-settings` says it was inferred and from what; a key and a token together are
//!   ambiguous and refused;
//! - with `--api-auth` set, a credential that kind cannot send is refused, naming both: a
//!   bearer token with `iam` (SigV4 owns the `Authorization` header) or `api-key`, anything
//!   with `none`;
//! - an API key with `iam` or `bearer` is sent as `x-api-key` alongside: API Gateway methods
//!   can require both an authorizer (IAM, JWT, Lambda) and a usage-plan key, which is how
//!   usage plans meter callers that authenticate otherwise.
//!
//! Files (`--api-key-file`, `--bearer-token-file`) are read now, to fail early, and re-read by
//! the client whenever they change.

use super::args::PullArgs;
use super::job_spec::JobSpec;
use super::resolver::{CredentialError, Resolver, SettingsError, Shown, UsageError};
use gatelake::config::ApiAuth;
use gatelake::secret::{Secret, SecretFile, SecretSource};
use std::path::PathBuf;

/// Where a setting came from, ranked by precedence (flag > env > job file).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    JobFile,
    Env,
    Flag,
}

/// One credential as given: its value or file, and how to name where it came from.
struct Given {
    /// `GATELAKE_API_KEY`, `--api-key-file`, `api_key_file in the job file`…
    name: String,
    rank: Rank,
    value: GivenValue,
}

enum GivenValue {
    Value(String),
    File(PathBuf),
    /// `--bearer-from azure`: a token the Azure identity issues.
    FromAzure,
}

/// How to name a setting given as a flag or env var, and its rank.
fn origin_name(r: &Resolver<'_>, id: &str) -> (String, Rank) {
    if r.given_on_command_line(id) {
        (format!("--{}", id.replace('_', "-")), Rank::Flag)
    } else {
        // Every setting's variable is GATELAKE_ + its id in upper case (args.rs).
        (format!("GATELAKE_{}", id.to_ascii_uppercase()), Rank::Env)
    }
}

/// The credential given as a value (`value_id`) or a file (`file_id`); both at the same rank
/// is a usage error, otherwise the higher rank wins.
fn given(
    r: &Resolver<'_>,
    value_id: &str,
    value: Option<&String>,
    file_id: &str,
    cli_file: Option<&PathBuf>,
    job_file: Option<&PathBuf>,
) -> Result<Option<Given>, UsageError> {
    let by_value = value.map(|v| {
        let (name, rank) = origin_name(r, value_id);
        Given {
            name,
            rank,
            value: GivenValue::Value(v.clone()),
        }
    });
    let by_file = match (cli_file, job_file) {
        (Some(p), _) => {
            let (name, rank) = origin_name(r, file_id);
            Some(Given {
                name,
                rank,
                value: GivenValue::File(p.clone()),
            })
        }
        (None, Some(p)) => Some(Given {
            name: format!("{file_id} in the job file"),
            rank: Rank::JobFile,
            value: GivenValue::File(p.clone()),
        }),
        (None, None) => None,
    };
    match (by_value, by_file) {
        (Some(v), Some(f)) if v.rank == f.rank => Err(UsageError(format!(
            "{} and {} both give the same credential: keep one",
            v.name, f.name
        ))),
        (Some(v), Some(f)) => Ok(Some(if v.rank > f.rank { v } else { f })),
        (v, f) => Ok(v.or(f)),
    }
}

/// Read a given credential into the form the client uses; records it (masked) for
/// `--show-settings`.
fn load(
    r: &mut Resolver<'_>,
    key: &str,
    what: &'static str,
    given: &Given,
    note: &str,
    warnings: &mut Vec<String>,
) -> Result<SecretSource, SettingsError> {
    match &given.value {
        GivenValue::Value(v) => {
            // An empty variable (often a CI secret that was not set) is no credential:
            // sending it would only earn a 403 far from the cause.
            if v.trim().is_empty() {
                return Err(CredentialError(format!(
                    "{} is empty: give it the {what}, or unset it and use the file flag",
                    given.name
                ))
                .into());
            }
            if given.rank == Rank::Flag {
                warnings.push(format!(
                    "{} on the command line lands in shell history and process listings; prefer GATELAKE_{} or the file flag",
                    given.name,
                    key.replace('-', "_").to_ascii_uppercase()
                ));
            }
            r.shown.push(Shown {
                key: key.into(),
                value: format!("***{note}"),
                origin: if given.rank == Rank::Env {
                    format!("env {}", given.name)
                } else {
                    format!("flag {}", given.name)
                },
            });
            Ok(SecretSource::Value(Secret::new(v.clone())))
        }
        GivenValue::File(p) => {
            r.shown.push(Shown {
                key: format!("{key}-file"),
                value: format!("{}{note}", p.display()),
                origin: match given.rank {
                    Rank::Flag => format!("flag {}", given.name),
                    Rank::Env => format!("env {}", given.name),
                    Rank::JobFile => "job file".into(),
                },
            });
            SecretFile::open(p, what)
                .map(SecretSource::File)
                // A credential file that cannot be read or is empty: a credential missing
                // (exit 3), as when none was given.
                .map_err(|e| CredentialError(format!("{}: {e}", given.name)).into())
        }
        GivenValue::FromAzure => {
            Err(UsageError("internal: an Azure-issued token is not loaded here".into()).into())
        }
    }
}

/// `--api-auth` and its credentials: the auth, and an API key to send alongside it.
pub fn resolve_api_auth(
    r: &mut Resolver<'_>,
    args: &PullArgs,
    job: &JobSpec,
    url: &url::Url,
    warnings: &mut Vec<String>,
) -> Result<(ApiAuth, Option<SecretSource>), SettingsError> {
    let key = given(
        r,
        "api_key",
        args.api_key.as_ref(),
        "api_key_file",
        args.api_key_file.as_ref(),
        job.api_key_file.as_ref(),
    )?;
    let bearer_from_azure = match (args.identity.bearer_from, job.bearer_from) {
        (Some(b), _) => (b.as_str() == "azure").then(|| {
            let (name, rank) = origin_name(r, "bearer_from");
            Given {
                name: format!("{name} azure"),
                rank,
                value: GivenValue::FromAzure,
            }
        }),
        (None, Some(b)) => (b.as_str() == "azure").then(|| Given {
            name: "bearer_from = \"azure\" in the job file".into(),
            rank: Rank::JobFile,
            value: GivenValue::FromAzure,
        }),
        (None, None) => None,
    };
    let static_bearer = given(
        r,
        "bearer_token",
        args.bearer_token.as_ref(),
        "bearer_token_file",
        args.bearer_token_file.as_ref(),
        job.bearer_token_file.as_ref(),
    )?;

    let kind = match (args.api_auth, job.api_auth) {
        (Some(k), _) => {
            r.pick("api_auth", Some(k.as_str()), None, None);
            k.as_str()
        }
        (None, Some(k)) => {
            r.pick("api_auth", None, Some(k.as_str()), None);
            k.as_str()
        }
        (None, None) => infer_kind(
            r,
            key.as_ref(),
            static_bearer.as_ref(),
            bearer_from_azure.as_ref(),
        )?,
    };
    let stated = match (args.api_auth.is_some(), r.given_in_env("api_auth")) {
        (true, true) => format!("GATELAKE_API_AUTH={kind}"),
        (true, false) => format!("--api-auth {kind}"),
        (false, _) if job.api_auth.is_some() => format!("api_auth = \"{kind}\" in the job file"),
        (false, _) => format!("--api-auth {kind} (inferred)"),
    };
    let refuse = |g: &Given, why: &str| {
        Err(UsageError(format!(
            "{stated} does not use {}, which was given: {why}. Never ignoring a credential you gave, gatelake stops here",
            g.name
        ))
        .into())
    };

    let mut usage_plan_key = None;
    let auth = match kind {
        "none" => {
            if let Some(g) = [&key, &static_bearer, &bearer_from_azure]
                .into_iter()
                .flatten()
                .next()
            {
                return refuse(g, "choose the --api-auth that uses it, or drop it");
            }
            ApiAuth::None
        }
        "api-key" => {
            if let Some(g) = [&static_bearer, &bearer_from_azure]
                .into_iter()
                .flatten()
                .next()
            {
                return refuse(g, "use --api-auth bearer to send the token (the key goes along as the usage-plan key), or drop the token");
            }
            let Some(k) = &key else {
                return Err(CredentialError("--api-auth api-key needs the key: set GATELAKE_API_KEY or pass --api-key-file PATH".into()).into());
            };
            ApiAuth::ApiKey(load(r, "api-key", "API key", k, "", warnings)?)
        }
        "bearer" => {
            let from_azure = bearer_from_azure.is_some();
            r.pick(
                "bearer_from",
                args.identity.bearer_from.map(|b| b.as_str()),
                job.bearer_from.map(|b| b.as_str()),
                Some("static"),
            );
            if let Some(k) = &key {
                usage_plan_key = Some(load(
                    r,
                    "api-key",
                    "API key",
                    k,
                    " (sent as x-api-key alongside the bearer token: the usage plan's key)",
                    warnings,
                )?);
            }
            if from_azure {
                if let Some(t) = &static_bearer {
                    return refuse(t, "--bearer-from azure sends a token from the Azure identity instead; drop the static token, or drop --bearer-from azure");
                }
                match r.pick(
                    "bearer_audience",
                    args.identity.bearer_audience.clone(),
                    job.bearer_audience.clone(),
                    None,
                ) {
                    Some(audience) => ApiAuth::BearerFromAzure { audience },
                    None => return Err(UsageError("--bearer-from azure needs --bearer-audience: the audience (application ID URI) the API's JWT authorizer expects, e.g. api://orders-api".into()).into()),
                }
            } else {
                let Some(t) = &static_bearer else {
                    return Err(CredentialError("--api-auth bearer needs the token: set GATELAKE_BEARER_TOKEN or pass --bearer-token-file PATH (or --bearer-from azure)".into()).into());
                };
                ApiAuth::Bearer(load(r, "bearer-token", "bearer token", t, "", warnings)?)
            }
        }
        "iam" => {
            if let Some(g) = [&static_bearer, &bearer_from_azure]
                .into_iter()
                .flatten()
                .next()
            {
                return refuse(g, "SigV4 signing owns the Authorization header, so a bearer token cannot go with it; drop the token, or use --api-auth bearer");
            }
            if let Some(k) = &key {
                usage_plan_key = Some(load(
                    r,
                    "api-key",
                    "API key",
                    k,
                    " (sent as x-api-key alongside the SigV4 signature: the usage plan's key)",
                    warnings,
                )?);
            }
            let env_region = std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .ok();
            let default = gatelake::identity::sigv4::region_from_url(url).or(env_region);
            match r.pick("region", args.region.clone(), job.region.clone(), default) {
                Some(region) => ApiAuth::Iam { region },
                None => return Err(UsageError("--api-auth iam needs the API's region: pass --region (it could not be read from the URL, AWS_REGION or AWS_DEFAULT_REGION)".into()).into()),
            }
        }
        other => return Err(UsageError(format!("unknown --api-auth {other}")).into()),
    };
    Ok((auth, usage_plan_key))
}

/// The kind when `--api-auth` is unset: `none` with no credential, the one kind whose
/// credentials were given, or a usage error when both were.
fn infer_kind(
    r: &mut Resolver<'_>,
    key: Option<&Given>,
    static_bearer: Option<&Given>,
    from_azure: Option<&Given>,
) -> Result<&'static str, UsageError> {
    let bearer = static_bearer.or(from_azure);
    let (kind, from) = match (key, bearer) {
        (None, None) => {
            r.pick("api_auth", None, None, Some("none"));
            return Ok("none");
        }
        (Some(k), None) => ("api-key", &k.name),
        (None, Some(b)) => ("bearer", &b.name),
        (Some(k), Some(b)) => {
            return Err(UsageError(format!(
                "both an API key ({}) and a bearer token ({}) were given, and no --api-auth says how to use them: pass --api-auth bearer to send the token with the key as the usage plan's x-api-key, or --api-auth api-key and drop the token",
                k.name, b.name
            )))
        }
    };
    r.shown.push(Shown {
        key: "api-auth".into(),
        value: kind.into(),
        origin: format!("inferred from {from}"),
    });
    Ok(kind)
}
