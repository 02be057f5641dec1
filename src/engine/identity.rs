//! Who the tool is on every hop, built from [`IdentitySettings`]: the Azure identity of each
//! hop that needs one (only those), the web identity token source, and the AWS credentials
//! (the web-identity exchange, or the standard chain). Every hop gets a client from the one
//! HTTP stack with the same trusted roots.

use super::prove::IdentityFailure;
use super::settings::{AwsRoleSettings, IdentitySettings, WebIdentityKind};
use crate::config::ApiAuth;
use crate::http::HttpOptions;
use crate::identity::aws::{
    sts_endpoint_from_env, AssumedRoleHandle, AwsCredentials, WebIdentityConfig,
    WebIdentityProvider,
};
use crate::identity::azure::{
    AzureAuthKind, AzureHop, AzureIdentity, HopIdentities, STORAGE_AUDIENCE,
};
use crate::identity::ci_oidc::{self, CiProvider};
use crate::identity::web_identity::{
    AzureTokenSource, EnvTokenSource, FileTokenSource, GithubOidcSource, WebIdentityTokenSource,
};
use crate::secret::Secret;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The HTTP options every hop shares (timeouts per hop are set by the caller).
pub fn http_options(settings: &IdentitySettings) -> HttpOptions {
    HttpOptions::default().with_ca_bundle(settings.ca_bundle.clone())
}

/// A client of the shared stack for an identity endpoint (Entra, IMDS, a CI's OIDC issuer).
fn identity_http(settings: &IdentitySettings) -> Result<reqwest::Client, IdentityFailure> {
    crate::http::client(&HttpOptions {
        timeout: Duration::from_secs(30),
        ..http_options(settings)
    })
    .map_err(|e| IdentityFailure(e.to_string()))
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
    if crate::sink::azure::is_azure_destination(dest)
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
    // An OAuth2 token exchange whose subject token is an Entra token.
    if let ApiAuth::OAuth2(c) = auth {
        if let crate::identity::oauth2::Grant::TokenExchange {
            subject: crate::identity::oauth2::SubjectToken::Azure { audience },
            ..
        } = &c.grant
        {
            hops.push((AzureHop::Api, audience.clone()));
        }
    }
    hops
}

/// The AWS SDK's HTTP client with the same extra trusted roots as every other hop (`None`
/// when there are none: the SDK's default client).
pub fn sdk_http_client(
    settings: &IdentitySettings,
) -> Result<Option<aws_smithy_runtime_api::client::http::SharedHttpClient>, IdentityFailure> {
    crate::identity::aws::sdk_http_client(&http_options(settings).ca_bundles)
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
    let http = identity_http(settings)?;
    let lookup = |name: &str| std::env::var(name).ok();
    Ok(HopIdentities::resolve(&settings.azure, wanted, &lookup, http).await)
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
            let http = identity_http(settings)?;
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
            let http = identity_http(settings)?;
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

/// AWS credentials from the web-identity exchange when a role is given (re-exchanged before
/// expiry), otherwise `None` (the standard chain applies). `azure` is the identity of the AWS
/// hop (`--web-identity azure`).
pub fn role_credentials(
    settings: &IdentitySettings,
    azure: Option<&Arc<AzureIdentity>>,
    job: &str,
    run: &crate::run_tag::RunTag,
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
    let provider = WebIdentityProvider::new(config.clone(), source).with_run_tag(run.clone());
    let assumed = provider.assumed_role();
    // Re-exchanged ahead of the expiry STS returns (see identity::token_cache), and when the
    // run's id changes (the session names it).
    let credentials = Arc::new(AwsCredentials::for_run(
        aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        run.clone(),
    ));
    Ok(Some(RoleCredentials {
        credentials,
        config,
        assumed,
    }))
}

/// The standard AWS chain (environment, profile, SSO, container, instance), its own calls
/// (STS, SSO) trusting the settings' CA bundle as every hop does.
pub async fn default_chain(
    settings: &IdentitySettings,
    region: &str,
) -> Result<AwsCredentials, IdentityFailure> {
    let http = sdk_http_client(settings)?;
    AwsCredentials::from_default_chain_with(region, http)
        .await
        .map_err(|e| IdentityFailure(e.to_string()))
}

/// The credentials that sign API requests under `--api-auth iam`: the role's, else the
/// standard AWS chain's — built here (rather than by the client) so that they can be proved
/// before the run starts, and so that the chain's own calls (STS, SSO, containers) trust
/// `--ca-bundle` as well.
pub async fn aws_for_api(
    settings: &IdentitySettings,
    role: Option<&RoleCredentials>,
    auth: &ApiAuth,
) -> Result<Option<Arc<AwsCredentials>>, IdentityFailure> {
    match (role, auth) {
        (Some(r), _) => Ok(Some(r.credentials.clone())),
        (None, ApiAuth::Iam { region }) => {
            Ok(Some(Arc::new(default_chain(settings, region).await?)))
        }
        (None, _) => Ok(None),
    }
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
