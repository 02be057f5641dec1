//! `gatelake auth check`: walk every hop a pull would take, with the same flags, and print the
//! identity used at each — without secrets:
//! 1. Azure: which source, tenant, object/app id, audience and expiry, from the token's claims;
//! 2. AWS: STS `GetCallerIdentity` of the assumed role (or of the standard chain);
//! 3. OAuth2 (`--api-auth oauth2`): a token from the provider, with its provider, client,
//!    scopes, audience and expiry;
//! 4. the API: one signed request for the first page, with the smallest page size;
//! 5. the lake: write, read back and delete a probe object under the destination.
//!
//! A hop that cannot run because an earlier one failed is `skipped`; a failing hop ends with
//! the most likely fix. `--output json` prints one object for CI.

use super::args::{OutputMode, PullArgs};
use super::exit_code::ExitCode;
use super::job_spec;
use super::resolver::Resolver;
use super::settings;
use clap::ArgMatches;
use gatelake::config::{ApiAuth, SourceConfig};
use gatelake::engine::{ClientError, Engine, WebIdentityKind};
use gatelake::identity::azure::{AzureHop, AzureIdentity, HopIdentities};
use gatelake::identity::claims::TokenClaims;
use gatelake::sink::PutMode;
use gatelake::source::paginate;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// One hop's outcome.
#[derive(Debug, Serialize)]
struct Hop {
    hop: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Value::is_null")]
    identity: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
    #[serde(skip)]
    code: Option<ExitCode>,
}

impl Hop {
    fn ok(hop: &'static str, identity: Value) -> Self {
        Self {
            hop,
            status: "ok",
            identity,
            error: None,
            fix: None,
            code: None,
        }
    }
    fn skipped(hop: &'static str, why: &str) -> Self {
        Self {
            hop,
            status: "skipped",
            identity: json!({ "reason": why }),
            error: None,
            fix: None,
            code: None,
        }
    }
    fn failed(hop: &'static str, error: String, fix: &str, code: ExitCode) -> Self {
        Self {
            hop,
            status: "failed",
            identity: Value::Null,
            error: Some(error),
            fix: Some(fix.to_string()),
            code: Some(code),
        }
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn claims_json(source: &str, audience: &str, token: &str, expires: time::OffsetDateTime) -> Value {
    let c = TokenClaims::of(token).unwrap_or_default();
    json!({
        "source": source,
        "audience": c.aud.clone().unwrap_or_else(|| audience.to_string()),
        "tenant": c.tid,
        "object_id": c.oid,
        "app_id": c.app_id,
        "subject": c.sub,
        "issuer": c.iss,
        "expires_at": rfc3339(c.expires_on().unwrap_or(expires)),
    })
}

/// Run the check; returns the exit code (0 when every hop that ran passed).
pub async fn run(args: &PullArgs, matches: &ArgMatches) -> ExitCode {
    let mode = args.out.output.unwrap_or_default();
    if args.sample.sample.is_some() {
        let e = super::resolver::UsageError(
            "--sample belongs to `pull`: `auth check` fetches no page".into(),
        );
        return super::usage_error_pub(&e, Some(mode));
    }
    let has_url = args.url.is_some()
        || job_spec::load_job(args.config.as_deref(), args.job.as_deref())
            .map(|(j, _)| j.url.is_some())
            .unwrap_or(false);
    // With a URL, resolve exactly as `pull` does; without one, only identity and destination.
    let (pull, dest, ident) = if has_url {
        match settings::resolve_pull(args, matches) {
            Ok(r) => (Some(r.pull), r.dest, r.identity),
            Err(e) => return super::usage_error_pub(&e, Some(mode)),
        }
    } else {
        let job = match job_spec::load_job(args.config.as_deref(), args.job.as_deref()) {
            Ok((j, _)) => j,
            Err(e) => return super::usage_error_pub(&e, Some(mode)),
        };
        let mut r = Resolver::new(matches);
        let job_name = args.job.clone().unwrap_or_else(|| "auth-check".into());
        let out = settings::resolve_output(&mut r, &args.out, &job, &format!("./lake/{job_name}"));
        let ident = settings::resolve_identity(&mut r, &args.identity, &job, args.region.clone());
        match (out, ident) {
            (Ok(o), Ok(i)) => (None, o.dest, i),
            (Err(e), _) | (_, Err(e)) => return super::usage_error_pub(&e, Some(mode)),
        }
    };
    // A malformed destination is a usage error before any hop is tried.
    if let Err(e) = super::check_destination(&dest, &mut []) {
        return super::usage_error_pub(&e, Some(mode));
    }
    let engine = Engine::new(ident);
    for w in engine.warnings() {
        eprintln!("warning: {w}");
    }
    let hops = walk(
        pull.as_ref().map(|p| &p.source),
        &dest,
        pull.as_ref()
            .map(|p| p.job.as_str())
            .unwrap_or("auth-check"),
        &engine,
    )
    .await;
    let failed = hops.iter().find(|h| h.status == "failed");
    let code = failed.and_then(|h| h.code).unwrap_or(ExitCode::Success);
    print(&hops, mode, code);
    code
}

async fn walk(source: Option<&SourceConfig>, dest: &str, job: &str, engine: &Engine) -> Vec<Hop> {
    let ident = engine.settings();
    let mut hops = Vec::new();
    let api_auth = source.map(|s| s.auth.clone()).unwrap_or(ApiAuth::None);

    // 1. Azure: each hop that needs an Entra identity resolves and proves its own, so one
    // hop's failure does not hide whether the others work.
    let wanted = engine.azure_hops(dest, &api_auth);
    let azure = match engine.azure_identities(&wanted).await {
        Ok(a) => a,
        Err(e) => {
            hops.push(Hop::failed(
                "azure",
                e.to_string(),
                "fix --ca-bundle / SSL_CERT_FILE",
                ExitCode::Failure,
            ));
            HopIdentities::default()
        }
    };
    let mut failed_hops: Vec<AzureHop> = Vec::new();
    if wanted.is_empty() {
        hops.push(Hop::skipped("azure", "no hop uses an Entra identity"));
    } else if !hops.iter().any(|h| h.hop == "azure") {
        let mut per_hop = serde_json::Map::new();
        let mut tokens = Vec::new();
        let mut errors = Vec::new();
        for (hop, audience) in &wanted {
            let outcome = match azure.get(*hop) {
                Some(id) => id
                    .token_for(audience)
                    .await
                    .map(|t| {
                        claims_json(
                            id.source.describe(),
                            audience,
                            t.token.secret(),
                            t.expires_on,
                        )
                    })
                    .map_err(|e| e.to_string()),
                None => Err(azure.error(*hop).unwrap_or("not resolved").to_string()),
            };
            match outcome {
                Ok(mut claims) => {
                    claims["hop"] = json!(hop.name());
                    per_hop.insert(hop.name().into(), claims.clone());
                    tokens.push(claims);
                }
                Err(e) => {
                    failed_hops.push(*hop);
                    per_hop.insert(hop.name().into(), json!({ "status": "failed", "error": e }));
                    errors.push(format!("{}: {e}", hop.describe()));
                }
            }
        }
        let sources: std::collections::BTreeSet<&str> = wanted
            .iter()
            .filter_map(|(h, _)| azure.get(*h).map(|id| id.source.describe()))
            .collect();
        let source = if sources.len() == 1 {
            sources.iter().next().map(|s| s.to_string())
        } else {
            Some(
                wanted
                    .iter()
                    .filter_map(|(h, _)| {
                        azure
                            .get(*h)
                            .map(|id| format!("{}: {}", h.name(), id.source.describe()))
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        };
        let identity = json!({ "source": source, "tokens": tokens, "hops": per_hop });
        if errors.is_empty() {
            hops.push(Hop::ok("azure", identity));
        } else {
            let fix = format!(
                "the message names the setting or claim to fix; {} picks another source for that hop (--azure-auth for every hop)",
                failed_hops
                    .iter()
                    .map(|h| h.flag())
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
            let mut hop = Hop::failed("azure", errors.join("; "), &fix, ExitCode::Auth);
            hop.identity = identity;
            hops.push(hop);
        }
    }
    let azure_failed_for = |hop: AzureHop| {
        failed_hops.contains(&hop)
            || (wanted.iter().any(|(h, _)| *h == hop) && azure.get(hop).is_none())
    };

    // 2. AWS.
    let mut aws_creds = None;
    let mut aws_failed = false;
    if let Some(role) = &ident.aws_role {
        if role.web_identity == WebIdentityKind::Azure && azure_failed_for(AzureHop::Aws) {
            aws_failed = true;
            hops.push(Hop::skipped(
                "aws",
                "the Azure identity for the AWS exchange failed, and the web identity comes from it",
            ));
        } else {
            match engine.role_credentials(azure.get(AzureHop::Aws), job) {
                Err(e) => {
                    aws_failed = true;
                    hops.push(Hop::failed(
                        "aws",
                        e.to_string(),
                        "set the web identity source's variables",
                        ExitCode::Auth,
                    ));
                }
                Ok(None) => {}
                Ok(Some(role_creds)) => match role_creds.credentials.fetch_uncached().await {
                    Err(e) => {
                        aws_failed = true;
                        hops.push(Hop::failed("aws", e.to_string(), "fix the IAM OIDC provider or the role's trust policy as the message says (examples/aws/ has both)", ExitCode::Auth));
                    }
                    Ok(c) => {
                        let expires = c.expiry().map(|e| rfc3339(time::OffsetDateTime::from(e)));
                        match gatelake::identity::aws::caller_identity(
                            c,
                            &role_creds.config.region,
                            role_creds.config.endpoint_url.as_deref(),
                            role_creds.config.http_client.clone(),
                        )
                        .await
                        {
                            Ok(who) => {
                                hops.push(Hop::ok("aws", json!({
                                    "source": format!("STS AssumeRoleWithWebIdentity ({})", role.web_identity.as_str()),
                                    "role_arn": role.role_arn,
                                    "assumed_role_arn": who.arn,
                                    "account": who.account,
                                    "expires_at": expires,
                                })));
                                aws_creds = Some(role_creds.credentials.clone());
                            }
                            Err(e) => {
                                aws_failed = true;
                                hops.push(Hop::failed("aws", e, "the assumed-role credentials were refused by STS: check the STS endpoint (AWS_ENDPOINT_URL_STS) and region", ExitCode::Auth));
                            }
                        }
                    }
                },
            }
        }
    } else if let ApiAuth::Iam { region } = &api_auth {
        // Without a usable CA bundle the chain still gets its chance with the SDK's own
        // client (the failure is the chain's to report).
        let sdk_http = engine.sdk_http_client().ok().flatten();
        match gatelake::identity::aws::AwsCredentials::from_default_chain_with(
            region,
            sdk_http.clone(),
        )
        .await
        {
            Ok(c) => match c.fetch_uncached().await {
                Ok(creds) => {
                    let who = gatelake::identity::aws::caller_identity(
                        creds,
                        region,
                        gatelake::identity::aws::sts_endpoint_from_env(&|n| std::env::var(n).ok())
                            .as_deref(),
                        sdk_http,
                    )
                    .await;
                    match who {
                        Ok(w) => hops.push(Hop::ok("aws", json!({"source": "standard AWS chain", "arn": w.arn, "account": w.account}))),
                        Err(e) => {
                            aws_failed = true;
                            hops.push(Hop::failed("aws", e, "the credentials from the AWS chain were refused: refresh them or pick another profile", ExitCode::Auth));
                        }
                    }
                    aws_creds = Some(Arc::new(c));
                }
                Err(e) => {
                    aws_failed = true;
                    hops.push(Hop::failed("aws", e.to_string(), "set AWS credentials (env, AWS_PROFILE) or use --aws-role-arn with --web-identity", ExitCode::Auth));
                }
            },
            Err(e) => {
                aws_failed = true;
                hops.push(Hop::failed(
                    "aws",
                    e.to_string(),
                    "set AWS credentials or use --aws-role-arn",
                    ExitCode::Auth,
                ));
            }
        }
    } else {
        hops.push(Hop::skipped("aws", "--api-auth is not iam"));
    }

    // 3. The OAuth2 provider (--api-auth oauth2): a token, and what it was issued for.
    let mut oauth_failed = false;
    if let ApiAuth::OAuth2(_) = &api_auth {
        let hop = if azure_failed_for(AzureHop::Api) {
            Hop::skipped("oauth", "the Azure identity for the subject token failed")
        } else {
            check_oauth(engine, &api_auth, azure.get(AzureHop::Api)).await
        };
        oauth_failed = hop.status != "ok";
        hops.push(hop);
    }

    // 4. The API.
    match source {
        None => hops.push(Hop::skipped("api", "no --url")),
        Some(_) if oauth_failed => hops.push(Hop::skipped("api", "the OAuth2 token hop failed")),
        Some(_) if aws_failed && matches!(api_auth, ApiAuth::Iam { .. }) => {
            hops.push(Hop::skipped("api", "the AWS hop failed"))
        }
        Some(_)
            if azure_failed_for(AzureHop::Api)
                && matches!(api_auth, ApiAuth::BearerFromAzure { .. }) =>
        {
            hops.push(Hop::skipped(
                "api",
                "the Azure identity for the API's bearer token failed",
            ))
        }
        Some(src) => hops.push(check_api(src, engine, aws_creds, azure.get(AzureHop::Api)).await),
    }

    // 5. The lake: skipped only when its own identity failed.
    if azure_failed_for(AzureHop::Storage) {
        hops.push(Hop::skipped(
            "lake",
            "the Azure identity for storage failed",
        ));
    } else {
        hops.push(check_lake(dest, engine, azure.get(AzureHop::Storage)).await);
    }
    hops
}

/// A token from the OAuth2 provider, shown without the token: provider, client, grant,
/// scopes, audience, expiry.
async fn check_oauth(engine: &Engine, auth: &ApiAuth, azure: Option<&Arc<AzureIdentity>>) -> Hop {
    let fix = "the message names the provider's error and the setting to fix";
    let provider = match engine.oauth2_provider(auth, azure) {
        Ok(Some(p)) => p,
        Ok(None) => return Hop::skipped("oauth", "--api-auth is not oauth2"),
        Err(e) => return Hop::failed("oauth", e.to_string(), fix, ExitCode::Auth),
    };
    match provider.token().await {
        Ok(t) => Hop::ok(
            "oauth",
            serde_json::to_value(provider.summary(&t)).unwrap_or_default(),
        ),
        Err(e) => Hop::failed("oauth", e.to_string(), fix, ExitCode::Auth),
    }
}

async fn check_api(
    src: &SourceConfig,
    engine: &Engine,
    aws: Option<Arc<gatelake::identity::aws::AwsCredentials>>,
    azure: Option<&Arc<AzureIdentity>>,
) -> Hop {
    let mut src = src.clone();
    src.retry.max_attempts = src.retry.max_attempts.min(3);
    // The smallest page, for a style that sends a page size.
    if let Some(size) = src.pagination.settings.get_mut(paginate::PAGE_SIZE.key) {
        *size = "1".into();
    }
    let url = match paginate::paginator(&src.pagination) {
        Ok(p) => p.first(&src.url),
        Err(e) => return Hop::failed("api", e.to_string(), "fix --paginate", ExitCode::Usage),
    };
    let client = match engine.api_client(&src, aws, azure).await {
        Ok(c) => c,
        Err(ClientError::Http(e)) => {
            return Hop::failed(
                "api",
                e.to_string(),
                "fix --ca-bundle / SSL_CERT_FILE",
                ExitCode::Failure,
            )
        }
        Err(ClientError::Source(e)) => {
            return Hop::failed(
                "api",
                e.to_string(),
                "check the API auth settings",
                ExitCode::Auth,
            )
        }
    };
    // The first page's request as a pull would send it (`--method`, `--body`, `--query`).
    let now = gatelake::state::run_id::now_rfc3339();
    let run = gatelake::source::request::RunValues {
        run_id: "auth-check",
        started_at: &now,
    };
    let request = paginate::paginator(&src.pagination)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            (src.request)
                .bind(p.body_fields(), &run)
                .map_err(|e| e.to_string())
        });
    let client = match request {
        Ok(request) => client.with_request(request),
        Err(e) => return Hop::failed("api", e, "fix --method/--body", ExitCode::Usage),
    };
    let silent = gatelake::report::SilentReporter;
    match client.fetch(&url, 1, &silent).await {
        Ok(page) => Hop::ok(
            "api",
            json!({
                "auth": src.auth.kind(),
                "url": gatelake::secret::redact_url(&page.url),
                "status": 200,
                "bytes": page.body.len(),
            }),
        ),
        Err(e) => {
            let code = if e.is_auth() {
                ExitCode::Auth
            } else {
                ExitCode::Source
            };
            Hop::failed(
                "api",
                e.to_string(),
                "the message above names the likely cause (region, signature, authorizer, clock)",
                code,
            )
        }
    }
}

async fn check_lake(dest: &str, engine: &Engine, azure: Option<&Arc<AzureIdentity>>) -> Hop {
    let sink = match engine.sink(dest, azure) {
        Ok(s) => s,
        Err(e) => {
            let code = ExitCode::of_sink_error(&e);
            return Hop::failed(
                "lake",
                e.to_string(),
                "check --dest and the storage credential",
                code,
            );
        }
    };
    // At the destination's root, not in a folder of its own: deleting the object then leaves
    // nothing behind on a local folder either (object stores have no empty folders).
    let probe = format!(
        "_gatelake_probe-{}.txt",
        gatelake::run::new_run_id(time::OffsetDateTime::now_utc())
    );
    let body = bytes::Bytes::from_static(b"gatelake auth check probe\n");
    let folders = gatelake::sink::Destination::parse(dest)
        .ok()
        .and_then(|d| super::footprint::LocalFolders::before(&d));
    let result = async {
        sink.put(&probe, body.clone(), PutMode::Overwrite).await?;
        let got = sink.get(&probe).await?;
        sink.delete(&probe).await?;
        Ok::<_, gatelake::sink::SinkError>(got.map(|g| g.data) == Some(body.clone()))
    }
    .await;
    // A check creates nothing: the folders the probe needed go with it.
    if let Some(folders) = folders {
        folders.remove_empty();
    }
    match result {
        Ok(true) => Hop::ok(
            "lake",
            json!({
                "destination": sink.url_of(""),
                "probe": probe,
                "wrote": true, "read": true, "deleted": true,
            }),
        ),
        Ok(false) => Hop::failed(
            "lake",
            "the probe object read back differs from what was written".into(),
            "check for a proxy rewriting storage responses",
            ExitCode::Sink,
        ),
        Err(e) => {
            let code = ExitCode::of_sink_error(&e);
            Hop::failed("lake", e.to_string(), "grant the identity \"Storage Blob Data Contributor\" on the container (RBAC), or check the key/SAS; see examples/azure/", code)
        }
    }
}

fn print(hops: &[Hop], mode: OutputMode, code: ExitCode) {
    match mode {
        OutputMode::Json => {
            let out = json!({
                "status": if code == ExitCode::Success { "ok" } else { "failed" },
                "exit_code": code as u8,
                "hops": hops,
            });
            println!("{out}");
        }
        OutputMode::Text => {
            for h in hops {
                let mark = match h.status {
                    "ok" => "ok  ",
                    "skipped" => "skip",
                    _ => "FAIL",
                };
                let detail = match (&h.error, &h.identity) {
                    (Some(e), _) => e.clone(),
                    (None, v) => describe(v),
                };
                println!("[{mark}] {:<5} {detail}", h.hop);
                if let Some(f) = &h.fix {
                    println!("       fix: {f}");
                }
            }
        }
    }
}

/// `key=value` pairs of a JSON object, flattened one level (nested objects inline).
fn describe(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                Value::Array(a) => format!(
                    "{k}=[{}]",
                    a.iter().map(describe).collect::<Vec<_>>().join("; ")
                ),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}
