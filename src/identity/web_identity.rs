//! Where the OIDC token that AWS STS exchanges for a role session comes from
//! (`--web-identity`). One trait, [`WebIdentityTokenSource`], with one implementation per
//! source:
//! - [`AzureTokenSource`]: an Entra token for `--web-identity-audience` (default
//!   `api://AzureADTokenExchange`) from the Azure identity — the bridge between the clouds;
//! - [`GithubOidcSource`]: the GitHub Actions OIDC token (`ACTIONS_ID_TOKEN_REQUEST_URL` +
//!   `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, audience `sts.amazonaws.com` by default);
//! - [`FileTokenSource`]: `AWS_WEB_IDENTITY_TOKEN_FILE`, re-read on every exchange (projected
//!   tokens rotate);
//! - [`EnvTokenSource`]: a token in an environment variable.
//!
//! GitLab CI's ID token and Azure DevOps' service connection token are in
//! [`crate::identity::ci_oidc`], with the GitHub source re-exported there.
//!
//! A source is asked for a token on every exchange and caches nothing itself beyond what its
//! issuer's client caches: the exchange happens at most once per session.

use crate::identity::azure::AzureIdentity;
use crate::identity::claims::TokenClaims;
use crate::secret::Secret;
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

/// The default audience of an Entra token exchanged with AWS.
pub const DEFAULT_AZURE_AUDIENCE: &str = crate::identity::azure::TOKEN_EXCHANGE_AUDIENCE;
/// The default audience of a GitHub Actions OIDC token for AWS.
pub const DEFAULT_GITHUB_AUDIENCE: &str = "sts.amazonaws.com";

/// Why no web identity token could be had.
#[derive(Debug, thiserror::Error)]
#[error("web identity ({source_name}): {message}")]
pub struct WebIdentityError {
    pub source_name: &'static str,
    pub message: String,
}

/// A source of OIDC tokens for `AssumeRoleWithWebIdentity`.
#[async_trait]
pub trait WebIdentityTokenSource: Send + Sync + std::fmt::Debug {
    /// `azure`, `github`, `gitlab`, `azure-devops`, `file` or `env`.
    fn name(&self) -> &'static str;
    /// A current token.
    async fn token(&self) -> Result<Secret, WebIdentityError>;
}

/// The claims of a web identity token, for session names and error messages.
pub fn claims_of(token: &Secret) -> TokenClaims {
    TokenClaims::of(token.expose()).unwrap_or_default()
}

/// An Entra token for an audience, from the Azure identity.
#[derive(Debug)]
pub struct AzureTokenSource {
    identity: Arc<AzureIdentity>,
    audience: String,
}

impl AzureTokenSource {
    pub fn new(identity: Arc<AzureIdentity>, audience: impl Into<String>) -> Self {
        Self {
            identity,
            audience: audience.into(),
        }
    }
}

#[async_trait]
impl WebIdentityTokenSource for AzureTokenSource {
    fn name(&self) -> &'static str {
        "azure"
    }
    async fn token(&self) -> Result<Secret, WebIdentityError> {
        let t = self
            .identity
            .token_for(&self.audience)
            .await
            .map_err(|e| WebIdentityError {
                source_name: "azure",
                message: e.to_string(),
            })?;
        Ok(Secret::new(t.token.secret()))
    }
}

/// The GitHub Actions OIDC token (the job needs `permissions: id-token: write`).
#[derive(Debug)]
pub struct GithubOidcSource {
    request_url: Url,
    request_token: Secret,
    audience: String,
    http: reqwest::Client,
    retry: crate::retry::Retrier,
}

impl GithubOidcSource {
    /// From `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        audience: impl Into<String>,
        http: reqwest::Client,
    ) -> Result<Self, WebIdentityError> {
        let err = |m: &str| WebIdentityError {
            source_name: "github",
            message: m.to_string(),
        };
        let url = env("ACTIONS_ID_TOKEN_REQUEST_URL").filter(|v| !v.is_empty());
        let token = env("ACTIONS_ID_TOKEN_REQUEST_TOKEN").filter(|v| !v.is_empty());
        let (Some(url), Some(token)) = (url, token) else {
            return Err(err("ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: run inside GitHub Actions with `permissions: id-token: write` on the job"));
        };
        let request_url = Url::parse(&url)
            .map_err(|e| err(&format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: {e}")))?;
        Ok(Self {
            request_url,
            request_token: Secret::new(token),
            audience: audience.into(),
            http,
            retry: crate::identity::token_endpoint_retry(),
        })
    }
}

#[async_trait]
impl WebIdentityTokenSource for GithubOidcSource {
    fn name(&self) -> &'static str {
        "github"
    }
    async fn token(&self) -> Result<Secret, WebIdentityError> {
        let err = |m: String| WebIdentityError {
            source_name: "github",
            message: m,
        };
        let mut url = self.request_url.clone();
        url.query_pairs_mut()
            .append_pair("audience", &self.audience);
        let shown = crate::secret::redact_url(&url);
        let answer = crate::retry::send(&self.retry, "the Actions OIDC endpoint", || {
            self.http
                .get(url.clone())
                .bearer_auth(self.request_token.expose())
                .header("accept", "application/json; api-version=2.0")
        })
        .await
        .map_err(|e| {
            if e.is_body() || e.is_decode() {
                err(format!("reading the Actions OIDC response: {e}"))
            } else {
                err(format!(
                    "cannot reach the Actions OIDC endpoint {shown}: {}",
                    crate::report::error_chain(&e)
                ))
            }
        })?;
        let (status, body) = (answer.status, answer.body);
        if status != 200 {
            let hint = match status {
                401 | 403 => "the request token was refused: the job needs `permissions: id-token: write`, and ACTIONS_ID_TOKEN_REQUEST_TOKEN is only valid during its job",
                _ => "the Actions OIDC endpoint failed; re-run the job",
            };
            return Err(err(format!(
                "the Actions OIDC endpoint answered {status}: {}; {hint}",
                crate::upstream::api_message(&body)
            )));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            value: String,
        }
        let a: Answer = serde_json::from_slice(&body).map_err(|e| {
            err(format!(
                "the Actions OIDC answer has no token (`value`): {e}"
            ))
        })?;
        Ok(Secret::new(a.value))
    }
}

/// A token file, re-read on every exchange.
#[derive(Debug)]
pub struct FileTokenSource {
    path: PathBuf,
}

impl FileTokenSource {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

#[async_trait]
impl WebIdentityTokenSource for FileTokenSource {
    fn name(&self) -> &'static str {
        "file"
    }
    async fn token(&self) -> Result<Secret, WebIdentityError> {
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| WebIdentityError {
                source_name: "file",
                message: format!("cannot read the token file {}: {e}", self.path.display()),
            })?;
        let t = text.trim();
        if t.is_empty() {
            return Err(WebIdentityError {
                source_name: "file",
                message: format!("the token file {} is empty", self.path.display()),
            });
        }
        Ok(Secret::new(t))
    }
}

/// A token held in an environment variable (read once, at start).
#[derive(Debug)]
pub struct EnvTokenSource {
    variable: String,
    token: Secret,
}

impl EnvTokenSource {
    pub fn new(variable: impl Into<String>, token: Secret) -> Self {
        Self {
            variable: variable.into(),
            token,
        }
    }
}

#[async_trait]
impl WebIdentityTokenSource for EnvTokenSource {
    fn name(&self) -> &'static str {
        "env"
    }
    async fn token(&self) -> Result<Secret, WebIdentityError> {
        if self.token.is_empty() {
            return Err(WebIdentityError {
                source_name: "env",
                message: format!("{} is empty", self.variable),
            });
        }
        Ok(self.token.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_source_rereads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "one\n").unwrap();
        let s = FileTokenSource::new(p.clone());
        assert_eq!(s.token().await.unwrap().expose(), "one");
        std::fs::write(&p, "two").unwrap();
        assert_eq!(s.token().await.unwrap().expose(), "two");
        std::fs::write(&p, "  ").unwrap();
        assert!(s.token().await.is_err());
    }

    #[test]
    fn github_needs_its_variables() {
        let err =
            GithubOidcSource::from_env(&|_| None, "sts.amazonaws.com", reqwest::Client::new())
                .unwrap_err();
        assert!(err.to_string().contains("id-token: write"), "{err}");
    }
}
