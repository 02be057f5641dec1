//! `--api-auth oauth2`: an access token from an OAuth2 provider's token endpoint (Cognito's
//! `/oauth2/token`, Okta's `/oauth2/<server>/v1/token`, any RFC 6749 server) for an API
//! Gateway JWT or Cognito authorizer, sent as `Authorization: Bearer …`.
//!
//! How the token is asked for ([`Grant`]) and how the client proves itself ([`ClientAuth`])
//! are plain data in [`OAuth2Config`]; each grant builds its form in its own file
//! ([`client_credentials`], [`exchange`]), the `private_key_jwt` assertion is signed in
//! [`assertion`] with the certificate code the Azure service principal uses, and the
//! provider's refusals are worded in [`error`] with the likely fix.
//!
//! [`OAuth2Provider`] keeps the token in the one [`TokenCache`] (renewed ahead of the expiry
//! the provider returned) and drops it when the API says it is no longer valid (401 with
//! `WWW-Authenticate: Bearer error="invalid_token"`), so the next request fetches a new one —
//! once per request: the client decides that ([`OAuth2Provider::take_refused`]).
//!
//! Never printed or logged: the client secret, the assertion, the subject token and the
//! access token (each is registered with [`crate::secret`] as soon as it is known).

pub mod assertion;
pub mod client_credentials;
pub mod error;
pub mod exchange;

pub use error::OAuth2Error;

use crate::clock::{Clock, SystemClock};
use crate::identity::claims::TokenClaims;
use crate::identity::token_cache::TokenCache;
use crate::identity::web_identity::WebIdentityTokenSource;
use crate::secret::{Secret, SecretSource};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use url::Url;

/// Everything `--api-auth oauth2` needs, resolved (flags, `GATELAKE_*`, job file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Config {
    /// The provider's token endpoint.
    pub token_url: Url,
    /// The app client's id (Cognito app client, Okta application).
    pub client_id: String,
    /// Scopes asked for (sent space-separated), e.g. Cognito's `orders-api/read`.
    pub scopes: Vec<String>,
    /// The `audience` form field (Okta custom authorization servers, RFC 8693 exchanges).
    pub audience: Option<String>,
    pub client_auth: ClientAuth,
    pub grant: Grant,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the id and secret (Cognito's way).
    SecretBasic(SecretSource),
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    SecretPost(SecretSource),
    /// `private_key_jwt` (RFC 7523): a JWT signed with the key in `key_file` (a PEM RSA key,
    /// alone or with its certificate), `kid` = `key_id` when given.
    PrivateKeyJwt {
        key_file: PathBuf,
        key_id: Option<String>,
    },
    /// No client authentication: `client_id` in the body (a public client; a token
    /// exchange whose subject token is the proof).
    None,
}

impl ClientAuth {
    /// The method's name as providers spell it (`token_endpoint_auth_method`).
    pub fn name(&self) -> &'static str {
        match self {
            ClientAuth::SecretBasic(_) => "client_secret_basic",
            ClientAuth::SecretPost(_) => "client_secret_post",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
            ClientAuth::None => "none",
        }
    }
}

/// How the token is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// `client_credentials` (RFC 6749 §4.4).
    ClientCredentials,
    /// RFC 8693 token exchange of a token gatelake already has.
    TokenExchange {
        subject: SubjectToken,
        /// `subject_token_type`, a URN (`urn:ietf:params:oauth:token-type:jwt` by default).
        subject_token_type: String,
    },
}

impl Grant {
    pub fn name(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::TokenExchange { .. } => "token-exchange",
        }
    }
}

/// Where the subject token of a token exchange comes from (`--subject-token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectToken {
    /// An Entra token for `audience` from the API hop's Azure identity.
    Azure { audience: String },
    /// The GitHub Actions OIDC token for `audience`.
    Github { audience: String },
    /// A file, re-read for every exchange (projected tokens rotate).
    File(PathBuf),
}

impl SubjectToken {
    pub fn name(&self) -> &'static str {
        match self {
            SubjectToken::Azure { .. } => "azure",
            SubjectToken::Github { .. } => "github",
            SubjectToken::File(_) => "file",
        }
    }
}

/// A token the provider issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: Secret,
    /// When it expires: `expires_in` from the answer, else the JWT's `exp`.
    pub expires_at: Option<SystemTime>,
    /// The scopes granted (`scope` in the answer), else those asked for.
    pub scopes: Vec<String>,
}

/// What `auth check` and the manifest show of a token: never the token.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenSummary {
    /// `cognito`, `okta` or `oauth2`, guessed from the token URL.
    pub provider: &'static str,
    pub token_url: String,
    pub client_id: String,
    pub grant: &'static str,
    pub client_auth: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_token: Option<&'static str>,
    pub scopes: Vec<String>,
    /// The `aud` claim when the token is a JWT, else the audience asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Which provider a token URL belongs to, for messages.
pub fn provider_name(token_url: &Url) -> &'static str {
    let host = token_url.host_str().unwrap_or_default();
    let path = token_url.path();
    if host.ends_with(".amazoncognito.com") || (path == "/oauth2/token") {
        "cognito"
    } else if host.contains("okta") || (path.starts_with("/oauth2/") && path.ends_with("/v1/token"))
    {
        "okta"
    } else {
        "oauth2"
    }
}

/// Tokens from one provider for one client, cached and renewed.
pub struct OAuth2Provider {
    config: OAuth2Config,
    http: reqwest::Client,
    retry: crate::retry::Retrier,
    cache: TokenCache<(), IssuedToken>,
    clock: Arc<dyn Clock>,
    /// The subject token's source (token exchange only).
    subject: Option<Arc<dyn WebIdentityTokenSource>>,
    /// The `private_key_jwt` key, loaded once.
    key: Option<assertion::AssertionKey>,
    /// Requests the API refused as holding an invalid token, not yet retried: each such
    /// request takes one (requests in flight at once are each retried once).
    refused: AtomicU32,
}

impl std::fmt::Debug for OAuth2Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Provider")
            .field("token_url", &self.config.token_url.as_str())
            .field("client_id", &self.config.client_id)
            .field("grant", &self.config.grant.name())
            .finish_non_exhaustive()
    }
}

impl OAuth2Provider {
    /// A provider for `config` over `http` (the shared stack: `--ca-bundle`, proxies). A
    /// token exchange needs `subject`; a `private_key_jwt` key file is read now, so a bad one
    /// fails before anything runs.
    pub fn new(
        config: OAuth2Config,
        http: reqwest::Client,
        subject: Option<Arc<dyn WebIdentityTokenSource>>,
    ) -> Result<Self, OAuth2Error> {
        check_token_url(&config.token_url)?;
        if matches!(config.grant, Grant::TokenExchange { .. }) && subject.is_none() {
            return Err(OAuth2Error::Setup(
                "a token exchange needs a subject token (--subject-token azure|github|file)".into(),
            ));
        }
        let key = match &config.client_auth {
            ClientAuth::PrivateKeyJwt { key_file, key_id } => Some(
                assertion::AssertionKey::load(key_file, key_id.clone())
                    .map_err(OAuth2Error::Key)?,
            ),
            _ => None,
        };
        Ok(Self {
            config,
            http,
            retry: crate::identity::token_endpoint_retry(),
            cache: TokenCache::default(),
            clock: Arc::new(SystemClock),
            subject,
            key,
            refused: AtomicU32::new(0),
        })
    }

    /// The same provider on another clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &OAuth2Config {
        &self.config
    }

    /// A current token: the cached one, or a new one when it is due for renewal.
    pub async fn token(&self) -> Result<IssuedToken, OAuth2Error> {
        let now = self.clock.now();
        self.cache
            .get_or_fetch(&(), now, || async {
                let t = self.fetch().await?;
                let expires = t.expires_at;
                Ok((t, expires))
            })
            .await
    }

    /// The `Authorization` header value for an API request.
    pub async fn authorization(&self) -> Result<reqwest::header::HeaderValue, OAuth2Error> {
        let token = self.token().await?;
        let mut v = reqwest::header::HeaderValue::from_str(&format!(
            "Bearer {}",
            token.access_token.expose()
        ))
        .map_err(|_| OAuth2Error::BadAnswer {
            url: self.shown_url(),
            message: "the access token holds characters not allowed in a header".into(),
        })?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// The API answered 401 with `headers`: when they say the bearer token is invalid
    /// (`WWW-Authenticate: Bearer error="invalid_token"`, as API Gateway's JWT authorizer
    /// answers an expired token), drop the cached token and note it for [`Self::take_refused`].
    pub fn note_refusal(&self, headers: &reqwest::header::HeaderMap) {
        if is_invalid_token(headers) {
            self.cache.forget(&());
            self.refused.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Whether a request was refused for an invalid token since and not yet retried (the
    /// client retries that request once, with a new token).
    pub fn take_refused(&self) -> bool {
        self.refused
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// What to show of `token` (`auth check`, the manifest).
    pub fn summary(&self, token: &IssuedToken) -> TokenSummary {
        let claims = TokenClaims::of(token.access_token.expose()).unwrap_or_default();
        let expires = token
            .expires_at
            .map(time::OffsetDateTime::from)
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
        TokenSummary {
            provider: provider_name(&self.config.token_url),
            token_url: self.shown_url(),
            client_id: self.config.client_id.clone(),
            grant: self.config.grant.name(),
            client_auth: self.config.client_auth.name(),
            subject_token: match &self.config.grant {
                Grant::TokenExchange { subject, .. } => Some(subject.name()),
                Grant::ClientCredentials => None,
            },
            scopes: token.scopes.clone(),
            audience: claims.aud.or_else(|| self.config.audience.clone()),
            issuer: claims.iss,
            expires_at: expires,
        }
    }

    fn shown_url(&self) -> String {
        crate::secret::redact_url(&self.config.token_url)
    }

    /// Ask the token endpoint for a new token (no cache).
    pub async fn fetch(&self) -> Result<IssuedToken, OAuth2Error> {
        let now = self.clock.now();
        let mut form: Vec<(&'static str, String)> = match &self.config.grant {
            Grant::ClientCredentials => client_credentials::form(&self.config),
            Grant::TokenExchange {
                subject_token_type, ..
            } => {
                let Some(source) = &self.subject else {
                    return Err(OAuth2Error::Setup("no subject token source".into()));
                };
                let subject = source.token().await.map_err(OAuth2Error::Subject)?;
                crate::secret::register(subject.expose());
                exchange::form(&self.config, &subject, subject_token_type)
            }
        };
        let unix_now = time::OffsetDateTime::from(now).unix_timestamp();
        let basic =
            client_credentials::authenticate(&self.config, self.key.as_ref(), unix_now, &mut form)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let url = self.config.token_url.clone();
        let answer = crate::retry::send(&self.retry, "the OAuth2 token endpoint", || {
            let mut request = self
                .http
                .post(url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body.clone());
            if let Some(value) = &basic {
                request = request.header(reqwest::header::AUTHORIZATION, value.clone());
            }
            request
        })
        .await
        .map_err(|e| OAuth2Error::Transport {
            url: self.shown_url(),
            message: crate::secret::redact(&crate::report::error_chain(&e)),
        })?;
        if answer.status != 200 {
            return Err(error::refusal(
                &self.config,
                &self.shown_url(),
                answer.status,
                &answer.body,
            ));
        }
        parse_token(&answer.body, &self.config, &self.shown_url(), now)
    }
}

/// Whether a 401's headers say the bearer token is invalid (RFC 6750 §3.1).
pub fn is_invalid_token(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.trim_start().to_ascii_lowercase().starts_with("bearer") && v.contains("invalid_token")
        })
}

/// A token URL must be HTTPS (the client secret and the token travel in it), except on a
/// loopback address (local providers and tests).
fn check_token_url(url: &Url) -> Result<(), OAuth2Error> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(OAuth2Error::Setup(format!(
            "--token-url {} must be an https:// URL (the client credential and the token travel in it); plain http is accepted for loopback addresses only",
            crate::secret::redact_url(url)
        ))),
    }
}

/// The token endpoint's 200 answer.
fn parse_token(
    body: &[u8],
    config: &OAuth2Config,
    url: &str,
    now: SystemTime,
) -> Result<IssuedToken, OAuth2Error> {
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: Option<String>,
        token_type: Option<String>,
        expires_in: Option<serde_json::Value>,
        scope: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|_| OAuth2Error::BadAnswer {
        url: url.to_string(),
        message: "the answer is not a JSON token response".into(),
    })?;
    let Some(token) = a.access_token.filter(|t| !t.is_empty()) else {
        return Err(OAuth2Error::BadAnswer {
            url: url.to_string(),
            message: "the answer holds no access_token".into(),
        });
    };
    crate::secret::register(&token);
    if let Some(kind) = a.token_type.filter(|t| !t.eq_ignore_ascii_case("bearer")) {
        return Err(OAuth2Error::BadAnswer {
            url: url.to_string(),
            message: format!(
                "the token_type is {kind:?}, not Bearer: gatelake sends bearer tokens only"
            ),
        });
    }
    // Some servers send expires_in as a string.
    let expires_in = match a.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite() && *s > 0.0);
    let expires_at = match expires_in {
        Some(s) => Some(now + Duration::from_secs_f64(s)),
        None => TokenClaims::of(&token)
            .and_then(|c| c.expires_on())
            .map(SystemTime::from),
    };
    let scopes = match a.scope {
        Some(s) => s.split_whitespace().map(str::to_string).collect(),
        None => config.scopes.clone(),
    };
    Ok(IssuedToken {
        access_token: Secret::new(token),
        expires_at,
        scopes,
    })
}

#[cfg(test)]
mod tests;
