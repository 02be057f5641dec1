//! The client credentials grant (RFC 6749 §4.4) and client authentication at the token
//! endpoint, which every grant shares: HTTP Basic (`client_secret_basic`, what Cognito
//! expects), the secret in the body (`client_secret_post`), a signed assertion
//! (`private_key_jwt`), or only the `client_id` (a public client).

use super::assertion::AssertionKey;
use super::{ClientAuth, OAuth2Config, OAuth2Error};
use base64::Engine as _;

/// The `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = crate::identity::certificate::JWT_BEARER;

/// The form of a client credentials request (before client authentication).
pub fn form(config: &OAuth2Config) -> Vec<(&'static str, String)> {
    let mut form = vec![("grant_type", "client_credentials".to_string())];
    push_scope_and_audience(config, &mut form);
    form
}

/// `scope` (space-separated) and `audience`, when given.
pub(super) fn push_scope_and_audience(
    config: &OAuth2Config,
    form: &mut Vec<(&'static str, String)>,
) {
    if !config.scopes.is_empty() {
        form.push(("scope", config.scopes.join(" ")));
    }
    if let Some(a) = &config.audience {
        form.push(("audience", a.clone()));
    }
}

/// Add the client's authentication to `form`; returns the `Authorization` header value for
/// HTTP Basic (`client_secret_basic`). `key` is the loaded `private_key_jwt` key.
pub fn authenticate(
    config: &OAuth2Config,
    key: Option<&AssertionKey>,
    now: i64,
    form: &mut Vec<(&'static str, String)>,
) -> Result<Option<reqwest::header::HeaderValue>, OAuth2Error> {
    match &config.client_auth {
        ClientAuth::SecretBasic(secret) => {
            let secret = secret.current();
            crate::secret::register(secret.expose());
            // RFC 6749 §2.3.1: both parts form-encoded before they are joined.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&config.client_id), enc(secret.expose()));
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            let mut v = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                OAuth2Error::Setup("the client id or secret cannot be sent in a header".into())
            })?;
            v.set_sensitive(true);
            Ok(Some(v))
        }
        ClientAuth::SecretPost(secret) => {
            let secret = secret.current();
            crate::secret::register(secret.expose());
            form.push(("client_id", config.client_id.clone()));
            form.push(("client_secret", secret.expose().to_string()));
            Ok(None)
        }
        ClientAuth::PrivateKeyJwt { .. } => {
            let Some(key) = key else {
                return Err(OAuth2Error::Setup("private_key_jwt: no key loaded".into()));
            };
            let assertion = key
                .assertion(&config.client_id, config.token_url.as_str(), now)
                .map_err(OAuth2Error::Key)?;
            crate::secret::register(assertion.expose());
            form.push(("client_id", config.client_id.clone()));
            form.push(("client_assertion_type", JWT_BEARER.to_string()));
            form.push(("client_assertion", assertion.expose().to_string()));
            Ok(None)
        }
        ClientAuth::None => {
            form.push(("client_id", config.client_id.clone()));
            Ok(None)
        }
    }
}
