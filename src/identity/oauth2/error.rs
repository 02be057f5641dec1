//! Why no OAuth2 token could be had, and the provider's refusals (RFC 6749 §5.2 error codes,
//! as Cognito and Okta send them) worded with the most likely fix. The provider's
//! `error_description` is quoted after [`crate::upstream::filter_upstream`] and secret
//! masking: it may echo what was sent.

use super::{ClientAuth, Grant, OAuth2Config};

/// Why the OAuth2 provider gave no token.
#[derive(Debug, thiserror::Error)]
pub enum OAuth2Error {
    /// The settings cannot work (a plain-http token URL, a missing subject token).
    #[error("oauth2: {0}")]
    Setup(String),
    /// The `private_key_jwt` key file.
    #[error("oauth2 private_key_jwt: {0}")]
    Key(#[source] super::assertion::KeyError),
    /// The subject token of a token exchange.
    #[error("oauth2 token exchange: no subject token: {0}")]
    Subject(#[source] crate::identity::web_identity::WebIdentityError),
    #[error("oauth2: cannot reach the token endpoint {url}: {message}. Check --token-url, proxies (HTTPS_PROXY/NO_PROXY) and --ca-bundle")]
    Transport { url: String, message: String },
    /// The provider refused: its status, error code and the fix.
    #[error("oauth2: the {provider} token endpoint {url} refused the request ({status} {code}){description}. {fix}")]
    Refused {
        provider: &'static str,
        url: String,
        status: u16,
        /// `invalid_client`, `invalid_scope`, `unauthorized_client`, … or `HTTP <status>`.
        code: String,
        /// `: <error_description>` or empty.
        description: String,
        fix: String,
    },
    #[error("oauth2: the token endpoint {url} answered 200 but {message}")]
    BadAnswer { url: String, message: String },
}

impl OAuth2Error {
    /// The provider's error code, when it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            OAuth2Error::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A non-200 answer of the token endpoint as an error with the fix.
pub(super) fn refusal(config: &OAuth2Config, url: &str, status: u16, body: &[u8]) -> OAuth2Error {
    #[derive(serde::Deserialize, Default)]
    struct Body {
        error: Option<String>,
        error_description: Option<String>,
    }
    let b: Body = serde_json::from_slice(body).unwrap_or_default();
    let code = b
        .error
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let description = b
        .error_description
        .map(|d| {
            let d = crate::upstream::filter_upstream(&d);
            crate::secret::redact(d.lines().next().unwrap_or_default())
        })
        .filter(|d| !d.is_empty())
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    let provider = super::provider_name(&config.token_url);
    OAuth2Error::Refused {
        provider,
        url: url.to_string(),
        status,
        fix: fix_for(&code, status, config, provider),
        code,
        description,
    }
}

/// The most likely fix for a refusal.
fn fix_for(code: &str, status: u16, config: &OAuth2Config, provider: &str) -> String {
    let exchange = matches!(config.grant, Grant::TokenExchange { .. });
    match code {
        "invalid_client" => match &config.client_auth {
            ClientAuth::SecretBasic(_) | ClientAuth::SecretPost(_) => format!(
                "The client id or secret is wrong, or sent the way the app does not accept: check --client-id {} and the secret (GATELAKE_CLIENT_SECRET or --client-secret-file); a Cognito app client takes it as HTTP Basic (--client-auth basic, the default), an Okta app as its 'Client authentication' setting says (--client-auth post for client_secret_post)",
                config.client_id
            ),
            ClientAuth::PrivateKeyJwt { .. } => format!(
                "The provider could not verify the signed client assertion: register the public key of --client-key-file on the app {} (Okta: Client authentication = Public key / Private key) and pass its key id as --client-key-id when the app has several keys; check the machine's clock",
                config.client_id
            ),
            ClientAuth::None => format!(
                "The app {} needs client authentication: give GATELAKE_CLIENT_SECRET / --client-secret-file or --client-key-file",
                config.client_id
            ),
        },
        "invalid_scope" => format!(
            "Ask only for scopes the app client may have ({}): {}",
            if config.scopes.is_empty() {
                "none was asked for".to_string()
            } else {
                format!("asked for {}", config.scopes.join(" "))
            },
            if provider == "cognito" {
                "Cognito scopes are <resource-server-identifier>/<scope> and must be enabled on the app client (Allowed custom scopes)"
            } else {
                "custom scopes must exist on the authorization server and be granted to this client by an access policy rule"
            }
        ),
        "unauthorized_client" => {
            if exchange {
                "The app may not use token exchange: enable the Token Exchange grant on the app and allow it in the authorization server's access policy".into()
            } else {
                "The app may not use the client credentials grant: enable it (Cognito: app client → OAuth grant types → Client credentials; Okta: the application's Client Credentials grant, and a service app rather than a web app)".into()
            }
        }
        "unsupported_grant_type" => format!(
            "This endpoint does not offer the {} grant: check --token-url (Cognito: https://<domain>.auth.<region>.amazoncognito.com/oauth2/token; Okta: https://<org>/oauth2/<server>/v1/token) or choose the other grant",
            config.grant.name()
        ),
        "invalid_grant" if exchange => "The subject token was refused: the provider must trust its issuer, and its audience must be what the provider expects (--subject-token-audience); an expired subject token file must be refreshed".into(),
        "invalid_request" => "The provider found the request malformed: check --audience, --scope and --subject-token-type against the provider's documentation".into(),
        _ if status == 404 || status == 405 => "Nothing answers token requests there: check --token-url (Cognito: https://<domain>.auth.<region>.amazoncognito.com/oauth2/token; Okta: https://<org>/oauth2/<server>/v1/token)".into(),
        _ if status >= 500 => "The provider failed; gatelake retried it: run again later".into(),
        _ => "The provider's message above names what it refused".into(),
    }
}
