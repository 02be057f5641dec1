//! The binary's side of identity: turn resolved settings into the engine's credentials — the
//! Azure identity (only when a hop needs it), the storage sink with its credential, and AWS
//! credentials (the web-identity exchange or the standard chain). Every hop gets a client from
//! the one HTTP stack with the same trusted roots.

use super::args::WebIdentityKind;
use super::prove::IdentityFailure;
use super::settings::{AwsRoleSettings, IdentitySettings};
use gatelake::config::ApiAuth;
use gatelake::http::HttpOptions;
use gatelake::identity::aws::{
    sts_endpoint_from_env, AssumedRoleHandle, AwsCredentials, WebIdentityConfig,
    WebIdentityProvider,
};
use gatelake::identity::azure::{
    AzureAuthKind, AzureHop, AzureIdentity, HopIdentities, STORAGE_AUDIENCE,
};
use gatelake::identity::ci_oidc::{self, CiProvider};
use gatelake::identity::web_identity::{
    AzureTokenSource, EnvTokenSource, FileTokenSource, GithubOidcSource, WebIdentityTokenSource,
};
use gatelake::secret::Secret;
use gatelake::sink::azure::{auth, AzureLocation, AzureSink, StorageCredential};
use gatelake::sink::{Sink, SinkError};
use std::sync::Arc;
use std::time::Duration;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The HTTP options every hop shares (timeouts per hop are set by the caller).
pub fn http_options(settings: &IdentitySettings) -> HttpOptions {
    HttpOptions::default().with_ca_bundle(settings.ca_bundle.clone())
}

/// STS refuses sessions shorter than this (`DurationSeconds` minimum).
pub const STS_MIN_SESSION: Duration = Duration::from_secs(15 * 60);

/// Warnings about identity settings that work here but not against the real services.
pub fn warnings(settings: &IdentitySettings) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(role) = &settings.aws_role {
        if role.session_duration < STS_MIN_SESSION {
            out.push(format!(
                "--aws-session-duration {}s is below STS's 15-minute minimum: AWS STS will refuse it (ValidationError); shorter sessions only work against emulators",
                role.session_duration.as_secs()
            ));
        }
    }
    out
}

/// Whether storage is authorized by the Azure CLI's storage variables rather than an Entra
/// token: explicitly (`connection-string`, `key`, `sas`), or under `auto` when one is set.
pub fn storage_uses_env_credentials(kind: AzureAuthKind) -> bool {
    kind.is_storage_only()
        || (kind == AzureAuthKind::Auto
            && [
                "AZURE_STORAGE_CONNECTION_STRING",
                "AZURE_STORAGE_KEY",
                "AZURE_STORAGE_SAS_TOKEN",
            ]
            .iter()
            .any(|v| env(v).is_some()))
}

/// The hops of this run that need an Entra identity, each with the audience of its tokens.
pub fn azure_hops(
    settings: &IdentitySettings,
    dest: &str,
    auth: &ApiAuth,
) -> Vec<(AzureHop, String)> {
    let mut hops = Vec::new();
    if gatelake::sink::azure::is_azure_destination(dest)
        && !storage_uses_env_credentials(settings.azure.kind_for(AzureHop::Storage))
    {
        hops.push((AzureHop::Storage, STORAGE_AUDIENCE.to_string()));
    }
    if let Some(role) = settings
        .aws_role
        .as_ref()
        .filter(|r| r.web_identity == WebIdentityKind::Azure)
    {
        hops.push((AzureHop::Aws, role.audience.clone()));
    }
    if let ApiAuth::BearerFromAzure { audience } = auth {
        hops.push((AzureHop::Api, audience.clone()));
    }
    hops
}

/// The AWS SDK's HTTP client with the same extra trusted roots as every other hop (`None`
/// when there are none: the SDK's default client).
pub fn sdk_http_client(
    settings: &IdentitySettings,
) -> Result<Option<aws_smithy_runtime_api::client::http::SharedHttpClient>, IdentityFailure> {
    gatelake::identity::aws::sdk_http_client(&http_options(settings).ca_bundles)
        .map_err(|e| IdentityFailure(e.to_string()))
}

/// Resolve the Azure identity of each hop in `wanted` (see [`azure_hops`]); each hop's
/// failure is kept with it, so `auth check` can report every hop on its own.
pub async fn azure_identities(
    settings: &IdentitySettings,
    wanted: &[(AzureHop, String)],
) -> Result<HopIdentities, IdentityFailure> {
    if wanted.is_empty() {
        return Ok(HopIdentities::default());
    }
    let http = gatelake::http::client(&HttpOptions {
        timeout: Duration::from_secs(30),
        ..http_options(settings)
    })
    .map_err(|e| IdentityFailure(e.to_string()))?;
    let lookup = |name: &str| std::env::var(name).ok();
    Ok(HopIdentities::resolve(&settings.azure, wanted, &lookup, http).await)
}

/// `--show-settings` rows naming the Azure source each hop of this run resolves to (no token
/// is fetched; under `auto` the VM metadata service may be probed for a second).
pub async fn hop_sources(
    settings: &IdentitySettings,
    dest: &str,
    auth: &ApiAuth,
) -> Vec<super::resolver::Shown> {
    let wanted = azure_hops(settings, dest, auth);
    let mut rows = Vec::new();
    if gatelake::sink::azure::is_azure_destination(dest)
        && !wanted.iter().any(|(h, _)| *h == AzureHop::Storage)
    {
        rows.push(super::resolver::Shown {
            key: "azure-source-storage".into(),
            value: "storage account variables (connection string, key or SAS)".into(),
            origin: format!(
                "--azure-auth-storage {}",
                settings.azure.kind_for(AzureHop::Storage).as_str()
            ),
        });
    }
    let resolved = match azure_identities(settings, &wanted).await {
        Ok(r) => r,
        Err(e) => {
            rows.push(super::resolver::Shown {
                key: "azure-source".into(),
                value: format!("not resolved: {e}"),
                origin: "resolved".into(),
            });
            return rows;
        }
    };
    for (hop, audience) in &wanted {
        let value = match (resolved.get(*hop), resolved.error(*hop)) {
            (Some(id), _) => format!("{} (tokens for {audience})", id.source.describe()),
            (None, Some(e)) => format!("not resolved: {e}"),
            (None, None) => "not resolved".into(),
        };
        rows.push(super::resolver::Shown {
            key: format!("azure-source-{}", hop.name()),
            value,
            origin: format!(
                "resolved from {} {}",
                hop.flag(),
                settings.azure.kind_for(*hop).as_str()
            ),
        });
    }
    rows
}

/// Why a destination could not be opened: its identity (exit 3) or the sink itself.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error(transparent)]
    Identity(#[from] IdentityFailure),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Open `dest` for a command that only touches storage (`sql`): the storage hop's identity,
/// resolved and proved as `pull` does, on the same HTTP stack.
pub async fn open_destination(
    dest: &str,
    settings: &IdentitySettings,
) -> Result<Arc<dyn Sink>, DestinationError> {
    let wanted = azure_hops(settings, dest, &ApiAuth::None);
    let azure = azure_identities(settings, &wanted).await?;
    super::prove::prove(settings, &wanted, &azure, None).await?;
    Ok(open_sink(dest, settings, azure.get(AzureHop::Storage))?)
}

/// Open the destination with the storage credential the settings choose.
pub fn open_sink(
    dest: &str,
    settings: &IdentitySettings,
    storage: Option<&Arc<AzureIdentity>>,
) -> Result<Arc<dyn Sink>, SinkError> {
    if !gatelake::sink::azure::is_azure_destination(dest) {
        return gatelake::sink::open(dest);
    }
    let http = gatelake::http::storage_client(&http_options(settings))
        .map_err(|e| SinkError::Credentials(e.to_string()))?;
    let location = AzureLocation::parse(dest)?;
    let kind = settings.azure.kind_for(AzureHop::Storage);
    let (location, credential) = if storage_uses_env_credentials(kind) {
        let wanted: &[&str] = match kind {
            AzureAuthKind::ConnectionString => &["AZURE_STORAGE_CONNECTION_STRING"],
            AzureAuthKind::Key => &["AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"],
            AzureAuthKind::Sas => &["AZURE_STORAGE_SAS_TOKEN"],
            _ => &[
                "AZURE_STORAGE_CONNECTION_STRING",
                "AZURE_STORAGE_ACCOUNT",
                "AZURE_STORAGE_KEY",
                "AZURE_STORAGE_SAS_TOKEN",
            ],
        };
        let needed = match kind {
            AzureAuthKind::Key => "AZURE_STORAGE_KEY",
            k => wanted
                .first()
                .copied()
                .filter(|_| k.is_storage_only())
                .unwrap_or(""),
        };
        if !needed.is_empty() && env(needed).is_none() {
            let flag = if settings.azure.storage_kind.is_some() {
                "--azure-auth-storage"
            } else {
                "--azure-auth"
            };
            return Err(SinkError::Credentials(format!(
                "{flag} {} needs {needed} to be set",
                kind.as_str()
            )));
        }
        let lookup = |name: &str| {
            if wanted.contains(&name) {
                std::env::var(name).ok()
            } else {
                None
            }
        };
        auth::resolve(location, &lookup)?
    } else {
        let Some(identity) = storage else {
            return Err(SinkError::Credentials(
                "internal: no Azure identity for storage".into(),
            ));
        };
        (location, StorageCredential::Token(identity.credential()))
    };
    Ok(Arc::new(AzureSink::new(location, credential, Some(http))?))
}

/// The web identity token source the settings name.
pub fn token_source(
    role: &AwsRoleSettings,
    settings: &IdentitySettings,
    azure: Option<&Arc<AzureIdentity>>,
) -> Result<Arc<dyn WebIdentityTokenSource>, IdentityFailure> {
    Ok(match role.web_identity {
        WebIdentityKind::Azure => {
            let Some(identity) = azure else {
                return Err(IdentityFailure(
                    "internal: no Azure identity for --web-identity azure".into(),
                ));
            };
            Arc::new(AzureTokenSource::new(identity.clone(), role.audience.clone()))
        }
        WebIdentityKind::Github => {
            let http = gatelake::http::client(&HttpOptions {
                timeout: Duration::from_secs(30),
                ..http_options(settings)
            })
            .map_err(|e| IdentityFailure(e.to_string()))?;
            let lookup = |name: &str| std::env::var(name).ok();
            Arc::new(
                GithubOidcSource::from_env(&lookup, role.audience.clone(), http)
                    .map_err(|e| IdentityFailure(e.to_string()))?,
            )
        }
        WebIdentityKind::Gitlab | WebIdentityKind::AzureDevops => {
            let provider = if role.web_identity == WebIdentityKind::Gitlab {
                CiProvider::Gitlab
            } else {
                CiProvider::AzureDevops
            };
            let http = gatelake::http::client(&HttpOptions {
                timeout: Duration::from_secs(30),
                ..http_options(settings)
            })
            .map_err(|e| IdentityFailure(e.to_string()))?;
            let lookup = |name: &str| std::env::var(name).ok();
            ci_oidc::token_source(provider, &role.audience, &lookup, http)
                .map_err(|e| IdentityFailure(e.to_string()))?
        }
        WebIdentityKind::File => match &role.token_file {
            Some(p) => Arc::new(FileTokenSource::new(p.clone())),
            None => {
                return Err(IdentityFailure(
                    "--web-identity file needs --web-identity-token-file or AWS_WEB_IDENTITY_TOKEN_FILE".into(),
                ))
            }
        },
        WebIdentityKind::Env => match env("GATELAKE_WEB_IDENTITY_TOKEN") {
            Some(t) => Arc::new(EnvTokenSource::new(
                "GATELAKE_WEB_IDENTITY_TOKEN",
                Secret::new(t.trim()),
            )),
            None => {
                return Err(IdentityFailure(
                    "--web-identity env needs the token in GATELAKE_WEB_IDENTITY_TOKEN".into(),
                ))
            }
        },
    })
}

/// The role side of a run: cached, refreshed credentials from the web-identity exchange.
pub struct RoleCredentials {
    pub credentials: Arc<AwsCredentials>,
    pub config: WebIdentityConfig,
    /// Who each exchange made us (for the manifest).
    pub assumed: AssumedRoleHandle,
}

/// AWS credentials for `--api-auth iam`: the web-identity exchange when a role is given
/// (re-exchanged before expiry), otherwise `None` (the standard chain applies). `azure` is
/// the identity of the AWS hop (`--web-identity azure`).
pub fn aws_credentials(
    settings: &IdentitySettings,
    azure: Option<&Arc<AzureIdentity>>,
    job: &str,
) -> Result<Option<RoleCredentials>, IdentityFailure> {
    let Some(role) = &settings.aws_role else {
        return Ok(None);
    };
    let source = token_source(role, settings, azure)?;
    let config = WebIdentityConfig {
        role_arn: role.role_arn.clone(),
        session_name: role.session_name.clone(),
        job: job.to_string(),
        duration: role.session_duration,
        region: role.sts_region.clone(),
        endpoint_url: sts_endpoint_from_env(&|n| std::env::var(n).ok()),
        max_attempts: 4,
        http_client: sdk_http_client(settings)?,
    };
    let provider = WebIdentityProvider::new(config.clone(), source);
    let assumed = provider.assumed_role();
    // Re-exchanged ahead of the expiry STS returns (see identity::token_cache).
    let credentials = Arc::new(AwsCredentials::new(
        aws_credential_types::provider::SharedCredentialsProvider::new(provider),
    ));
    Ok(Some(RoleCredentials {
        credentials,
        config,
        assumed,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn with_session(duration: Duration) -> IdentitySettings {
        IdentitySettings {
            azure: Default::default(),
            aws_role: Some(AwsRoleSettings {
                role_arn: "arn:aws:iam::123456789012:role/r".into(),
                web_identity: WebIdentityKind::Azure,
                audience: "api://AzureADTokenExchange".into(),
                token_file: None,
                session_duration: duration,
                session_name: None,
                sts_region: "us-east-1".into(),
            }),
            ca_bundle: None,
        }
    }

    #[test]
    fn short_sessions_warn_that_sts_refuses_them() {
        let w = warnings(&with_session(Duration::from_secs(300)));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("15-minute minimum"), "{}", w[0]);
        assert!(warnings(&with_session(STS_MIN_SESSION)).is_empty());
        assert!(warnings(&with_session(Duration::from_secs(3600))).is_empty());
    }
}
