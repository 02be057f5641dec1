//! `--api-auth oauth2`'s flags (flattened into `pull`, `auth check` and every command that
//! takes `pull`'s flags), their `[jobs.NAME.oauth2]` table, and their resolution into the
//! library's [`OAuth2Config`]. The client secret comes from `GATELAKE_CLIENT_SECRET` or
//! `--client-secret-file`, never from a flag value or the job file (both end up in places a
//! secret must not: shell history, a committed file).
//!
//! Client authentication is inferred from what was given when `--client-auth` is unset: a
//! key file → `private_key_jwt`, a secret → HTTP Basic (what Cognito app clients take), none
//! (a token exchange whose subject token is the proof) → `none`. The grant is the client
//! credentials grant unless `--subject-token` asks for an RFC 8693 exchange.

use super::resolver::{CredentialError, Resolver, SettingsError, UsageError};
use clap::{Args, ValueEnum};
use gatelake::identity::oauth2::{exchange, ClientAuth, Grant, OAuth2Config, SubjectToken};
use gatelake::secret::{Secret, SecretFile, SecretSource};
use std::path::PathBuf;

/// `--client-auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuthArg {
    /// client_secret_basic: the id and secret as HTTP Basic (Cognito app clients).
    Basic,
    /// client_secret_post: the id and secret in the form body.
    Post,
    /// private_key_jwt: a JWT signed with --client-key-file (RFC 7523; Okta).
    PrivateKeyJwt,
    /// No client authentication: only client_id (public clients, token exchange).
    None,
}

/// `--subject-token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectTokenArg {
    /// An Entra token for --subject-token-audience from the API hop's Azure identity.
    Azure,
    /// The GitHub Actions OIDC token for --subject-token-audience.
    Github,
    /// A token file (--subject-token-file), re-read for every exchange.
    File,
}

/// The flags of `--api-auth oauth2`.
#[derive(Debug, Clone, Default, Args)]
pub struct OAuthArgs {
    /// oauth2: the provider's token endpoint, e.g. https://<domain>.auth.<region>.amazoncognito.com/oauth2/token (Cognito) or https://<org>.okta.com/oauth2/<server>/v1/token (Okta).
    #[arg(long, env = "GATELAKE_TOKEN_URL", value_name = "URL")]
    pub token_url: Option<String>,

    /// oauth2: the app client's id.
    #[arg(long, env = "GATELAKE_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,

    /// oauth2: a scope to ask for (repeatable, or space-separated), e.g. orders-api/read.
    #[arg(long = "scope", env = "GATELAKE_SCOPE", value_name = "SCOPE")]
    pub scope: Vec<String>,

    /// oauth2: the `audience` to ask for (Okta custom authorization servers, token exchange).
    #[arg(long, env = "GATELAKE_AUDIENCE", value_name = "AUDIENCE")]
    pub audience: Option<String>,

    /// oauth2: a file holding the client secret (or set GATELAKE_CLIENT_SECRET).
    #[arg(long, env = "GATELAKE_CLIENT_SECRET_FILE", value_name = "PATH")]
    pub client_secret_file: Option<PathBuf>,

    /// oauth2: how the client authenticates. [default: private-key-jwt with --client-key-file, basic with a secret, else none]
    #[arg(long, env = "GATELAKE_CLIENT_AUTH", value_enum, value_name = "HOW")]
    pub client_auth: Option<ClientAuthArg>,

    /// oauth2 private-key-jwt: a PEM RSA private key (alone, or with its certificate) that signs the client assertion.
    #[arg(long, env = "GATELAKE_CLIENT_KEY_FILE", value_name = "PATH")]
    pub client_key_file: Option<PathBuf>,

    /// oauth2 private-key-jwt: the key's id (`kid`) as registered with the provider.
    #[arg(long, env = "GATELAKE_CLIENT_KEY_ID", value_name = "KID")]
    pub client_key_id: Option<String>,

    /// oauth2: exchange this token for the provider's (RFC 8693 token exchange) instead of the client credentials grant.
    #[arg(long, env = "GATELAKE_SUBJECT_TOKEN", value_enum, value_name = "FROM")]
    pub subject_token: Option<SubjectTokenArg>,

    /// oauth2 --subject-token file: the token file.
    #[arg(long, env = "GATELAKE_SUBJECT_TOKEN_FILE", value_name = "PATH")]
    pub subject_token_file: Option<PathBuf>,

    /// oauth2 --subject-token azure|github: the subject token's audience (the one the provider trusts). [default: azure: api://AzureADTokenExchange; github: --audience]
    #[arg(long, env = "GATELAKE_SUBJECT_TOKEN_AUDIENCE", value_name = "AUDIENCE")]
    pub subject_token_audience: Option<String>,

    /// oauth2 token exchange: subject_token_type, jwt, id_token, access_token or a URN. [default: jwt]
    #[arg(long, env = "GATELAKE_SUBJECT_TOKEN_TYPE", value_name = "TYPE")]
    pub subject_token_type: Option<String>,
}

/// `[jobs.NAME.oauth2]`: the same settings, keys as the flags without `--` (no secret).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthJob {
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub scope: Option<Vec<String>>,
    pub audience: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub client_auth: Option<ClientAuthArg>,
    pub client_key_file: Option<PathBuf>,
    pub client_key_id: Option<String>,
    pub subject_token: Option<SubjectTokenArg>,
    pub subject_token_file: Option<PathBuf>,
    pub subject_token_audience: Option<String>,
    pub subject_token_type: Option<String>,
}

impl ClientAuthArg {
    fn as_str(self) -> &'static str {
        match self {
            ClientAuthArg::Basic => "basic",
            ClientAuthArg::Post => "post",
            ClientAuthArg::PrivateKeyJwt => "private-key-jwt",
            ClientAuthArg::None => "none",
        }
    }
}

impl SubjectTokenArg {
    fn as_str(self) -> &'static str {
        match self {
            SubjectTokenArg::Azure => "azure",
            SubjectTokenArg::Github => "github",
            SubjectTokenArg::File => "file",
        }
    }
}

/// The client secret in the environment, if any.
fn env_secret() -> Option<String> {
    std::env::var("GATELAKE_CLIENT_SECRET")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The first oauth2 setting given (for refusing it under another `--api-auth`).
pub fn first_given(args: &OAuthArgs, job: Option<&OAuthJob>) -> Option<String> {
    let flag = [
        (args.token_url.is_some(), "--token-url"),
        (args.client_id.is_some(), "--client-id"),
        (args.client_secret_file.is_some(), "--client-secret-file"),
        (args.client_key_file.is_some(), "--client-key-file"),
        (args.subject_token.is_some(), "--subject-token"),
        (env_secret().is_some(), "GATELAKE_CLIENT_SECRET"),
    ]
    .into_iter()
    .find(|(given, _)| *given)
    .map(|(_, name)| name.to_string());
    flag.or_else(|| job.map(|_| "[oauth2] in the job file".to_string()))
}

/// The resolved `--api-auth oauth2` settings.
pub fn resolve(
    r: &mut Resolver<'_>,
    args: &OAuthArgs,
    job: Option<&OAuthJob>,
) -> Result<OAuth2Config, SettingsError> {
    let default_job = OAuthJob::default();
    let job = job.unwrap_or(&default_job);
    let usage = |m: String| -> SettingsError { UsageError(m).into() };
    let Some(token_url) = r.pick(
        "token_url",
        args.token_url.clone(),
        job.token_url.clone(),
        None,
    ) else {
        return Err(usage("--api-auth oauth2 needs --token-url: the provider's token endpoint, e.g. https://<domain>.auth.<region>.amazoncognito.com/oauth2/token (Cognito) or https://<org>.okta.com/oauth2/<server>/v1/token (Okta)".into()));
    };
    let token_url = url::Url::parse(&token_url)
        .map_err(|e| usage(format!("--token-url {token_url:?} is not a URL: {e}")))?;
    let Some(client_id) = r.pick(
        "client_id",
        args.client_id.clone(),
        job.client_id.clone(),
        None,
    ) else {
        return Err(usage("--api-auth oauth2 needs --client-id: the app client's id (Cognito: User pool → App clients; Okta: the application's Client ID)".into()));
    };
    let split = |v: &[String]| -> Vec<String> {
        v.iter()
            .flat_map(|s| s.split([' ', ',']))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let joined = |v: Vec<String>| (!v.is_empty()).then(|| v.join(" "));
    let scopes: Vec<String> = r
        .pick(
            "scope",
            joined(split(&args.scope)),
            joined(split(job.scope.as_deref().unwrap_or_default())),
            None,
        )
        .map(|s| s.split(' ').map(str::to_string).collect())
        .unwrap_or_default();
    let audience = r.pick(
        "audience",
        args.audience.clone(),
        job.audience.clone(),
        None,
    );

    // Recorded for --show-settings with where it came from.
    r.pick(
        "subject_token",
        args.subject_token.map(SubjectTokenArg::as_str),
        job.subject_token.map(SubjectTokenArg::as_str),
        None,
    );
    let grant = match args.subject_token.or(job.subject_token) {
        None => Grant::ClientCredentials,
        Some(kind) => {
            let subject = match kind {
                SubjectTokenArg::File => {
                    match r.pick(
                        "subject_token_file",
                        args.subject_token_file.as_ref().map(|p| p.display().to_string()),
                        job.subject_token_file.as_ref().map(|p| p.display().to_string()),
                        None,
                    ) {
                        Some(p) => SubjectToken::File(PathBuf::from(p)),
                        None => return Err(usage("--subject-token file needs --subject-token-file PATH (the token file, re-read for every exchange)".into())),
                    }
                }
                SubjectTokenArg::Azure => SubjectToken::Azure {
                    audience: r
                        .pick(
                            "subject_token_audience",
                            args.subject_token_audience.clone(),
                            job.subject_token_audience.clone(),
                            Some(gatelake::identity::azure::TOKEN_EXCHANGE_AUDIENCE.to_string()),
                        )
                        .unwrap_or_default(),
                },
                SubjectTokenArg::Github => match r.pick(
                    "subject_token_audience",
                    args.subject_token_audience.clone(),
                    job.subject_token_audience.clone(),
                    audience.clone(),
                ) {
                    Some(audience) => SubjectToken::Github { audience },
                    None => return Err(usage("--subject-token github needs --subject-token-audience: the audience the provider expects in the GitHub OIDC token".into())),
                },
            };
            let kind = r
                .pick(
                    "subject_token_type",
                    args.subject_token_type.clone(),
                    job.subject_token_type.clone(),
                    Some("jwt".to_string()),
                )
                .unwrap_or_default();
            Grant::TokenExchange {
                subject,
                subject_token_type: exchange::token_type_urn(&kind),
            }
        }
    };

    // The client's credential: a secret (env or file) or a key file.
    let secret_file = args
        .client_secret_file
        .clone()
        .or(job.client_secret_file.clone());
    let secret = match (env_secret(), secret_file) {
        (Some(_), Some(f)) if args.client_secret_file.is_some() => {
            return Err(usage(format!("GATELAKE_CLIENT_SECRET and --client-secret-file {} both give the client secret: keep one", f.display())))
        }
        (Some(s), _) => {
            r.note_secret("client_secret", "env GATELAKE_CLIENT_SECRET".into());
            Some(SecretSource::Value(Secret::new(s)))
        }
        (None, Some(f)) => {
            let shown = f.display().to_string();
            match args.client_secret_file.is_some() {
                true => r.pick("client_secret_file", Some(shown), None, None),
                false => r.pick("client_secret_file", None, Some(shown), None),
            };
            Some(SecretSource::File(
                SecretFile::open(&f, "client secret")
                    .map_err(|e| CredentialError(format!("--client-secret-file: {e}")))?,
            ))
        }
        (None, None) => None,
    };
    let key_file = r.pick(
        "client_key_file",
        args.client_key_file
            .as_ref()
            .map(|p| p.display().to_string()),
        job.client_key_file
            .as_ref()
            .map(|p| p.display().to_string()),
        None,
    );
    let key_id = r.pick(
        "client_key_id",
        args.client_key_id.clone(),
        job.client_key_id.clone(),
        None,
    );
    if let (Some(_), Some(k)) = (&secret, &key_file) {
        return Err(usage(format!("both a client secret and --client-key-file {k} were given: private_key_jwt needs no secret; keep the one the app is set up for")));
    }
    let inferred = if key_file.is_some() {
        ClientAuthArg::PrivateKeyJwt
    } else if secret.is_some() {
        ClientAuthArg::Basic
    } else {
        ClientAuthArg::None
    };
    let how = args.client_auth.or(job.client_auth).unwrap_or(inferred);
    r.pick(
        "client_auth",
        args.client_auth.map(ClientAuthArg::as_str),
        job.client_auth.map(ClientAuthArg::as_str),
        Some(inferred.as_str()),
    );
    let client_auth = match (how, secret, key_file) {
        (ClientAuthArg::Basic, Some(s), _) => ClientAuth::SecretBasic(s),
        (ClientAuthArg::Post, Some(s), _) => ClientAuth::SecretPost(s),
        (ClientAuthArg::Basic | ClientAuthArg::Post, None, _) => {
            return Err(CredentialError(format!("--client-auth {} needs the client secret: set GATELAKE_CLIENT_SECRET or pass --client-secret-file PATH", how.as_str())).into())
        }
        (ClientAuthArg::PrivateKeyJwt, _, Some(k)) => ClientAuth::PrivateKeyJwt {
            key_file: PathBuf::from(k),
            key_id,
        },
        (ClientAuthArg::PrivateKeyJwt, _, None) => {
            return Err(CredentialError("--client-auth private-key-jwt needs --client-key-file PATH: the PEM RSA key whose public part is registered on the app".into()).into())
        }
        (ClientAuthArg::None, Some(_), _) => {
            return Err(usage("--client-auth none, but a client secret was given: drop it, or choose --client-auth basic|post".into()))
        }
        (ClientAuthArg::None, None, _) => {
            if grant == Grant::ClientCredentials {
                return Err(CredentialError("--api-auth oauth2 (client credentials) needs the client's credential: set GATELAKE_CLIENT_SECRET, pass --client-secret-file PATH, or --client-key-file PATH (private_key_jwt); or exchange a token you have with --subject-token azure|github|file".into()).into());
            }
            ClientAuth::None
        }
    };
    Ok(OAuth2Config {
        token_url,
        client_id,
        scopes,
        audience,
        client_auth,
        grant,
    })
}
