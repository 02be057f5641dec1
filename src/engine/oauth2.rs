//! The OAuth2 provider of `--api-auth oauth2`, built once per engine: its cached token serves
//! the proof before the run, `auth check` and every page, so a run asks the token endpoint
//! once per token lifetime. The subject token of an exchange comes from the identities the
//! engine already builds (the API hop's Azure identity, the Actions OIDC token, a file).

use super::settings::IdentitySettings;
use crate::config::ApiAuth;
use crate::http::HttpOptions;
use crate::identity::azure::AzureIdentity;
use crate::identity::oauth2::{Grant, OAuth2Error, OAuth2Provider, SubjectToken};
use crate::identity::web_identity::{
    AzureTokenSource, FileTokenSource, GithubOidcSource, WebIdentityTokenSource,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The engine's one provider, once built.
pub type ProviderSlot = Arc<Mutex<Option<Arc<OAuth2Provider>>>>;

/// The provider for `auth` (`None` unless it is `oauth2`), built into `slot` the first time.
/// `api` is the API hop's Azure identity (`--subject-token azure`).
pub fn provider(
    slot: &ProviderSlot,
    settings: &IdentitySettings,
    auth: &ApiAuth,
    api: Option<&Arc<AzureIdentity>>,
) -> Result<Option<Arc<OAuth2Provider>>, OAuth2Error> {
    let ApiAuth::OAuth2(config) = auth else {
        return Ok(None);
    };
    let mut guard = match slot.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(p) = guard.as_ref().filter(|p| p.config() == config.as_ref()) {
        return Ok(Some(p.clone()));
    }
    let http = crate::http::client(&HttpOptions {
        timeout: Duration::from_secs(30),
        ..super::identity::http_options(settings)
    })
    .map_err(|e| OAuth2Error::Setup(e.to_string()))?;
    let subject: Option<Arc<dyn WebIdentityTokenSource>> = match &config.grant {
        Grant::ClientCredentials => None,
        Grant::TokenExchange { subject, .. } => Some(match subject {
            SubjectToken::Azure { audience } => {
                let Some(identity) = api else {
                    return Err(OAuth2Error::Setup(
                        "--subject-token azure needs the API hop's Azure identity (--azure-auth-api, default --azure-auth), which was not resolved".into(),
                    ));
                };
                Arc::new(AzureTokenSource::new(identity.clone(), audience.clone()))
            }
            SubjectToken::Github { audience } => {
                let lookup = |name: &str| std::env::var(name).ok();
                Arc::new(
                    GithubOidcSource::from_env(&lookup, audience.clone(), http.clone())
                        .map_err(OAuth2Error::Subject)?,
                )
            }
            SubjectToken::File(path) => Arc::new(FileTokenSource::new(path.clone())),
        }),
    };
    let built = Arc::new(OAuth2Provider::new(config.as_ref().clone(), http, subject)?);
    *guard = Some(built.clone());
    Ok(Some(built))
}
