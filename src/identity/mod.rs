//! Who the tool is, on each cloud it talks to.
//! - [`azure`]: the Entra token credential chain (token handed in, workload identity, managed
//!   identity, service principal, Azure CLI), for storage and for tokens for other audiences.
//! - [`certificate`]: the service principal's certificate credential (a signed client
//!   assertion instead of a secret).
//! - [`web_identity`]: where the OIDC token exchanged with AWS comes from (an Entra token, the
//!   GitHub Actions OIDC token, a file, the environment).
//! - [`ci_oidc`]: a CI job's own OIDC token (GitHub Actions, GitLab CI, Azure DevOps), for STS
//!   and as the federated client assertion of the `ci-oidc` Azure source.
//! - [`aws`]: AWS credentials for SigV4 — the STS web-identity exchange, cached and
//!   re-exchanged before expiry, or the standard AWS chain.
//! - [`sigv4`]: signing one API Gateway (`execute-api`) request with those credentials.
//! - [`oauth2`]: `--api-auth oauth2` — access tokens from an OAuth2 provider (Cognito, Okta):
//!   client credentials with a secret or `private_key_jwt`, or an RFC 8693 token exchange.
//! - [`token_cache`]: the one cache every credential above keeps its tokens in, renewed
//!   ahead of their actual expiry (injected clock, [`crate::clock`]).
//!
//! Every token endpoint is called through the one retry module ([`token_endpoint_retry`]).
//!
//! Storage credentials that are not Entra tokens (keys, SAS) live with the Azure sink
//! (`sink::azure::auth`). Nothing here prints: results and failures go back as values.

pub mod aws;
pub mod azure;
pub mod certificate;
pub mod ci_oidc;
pub mod claims;
pub mod oauth2;
pub mod sdk_user_agent;
pub mod sigv4;
pub mod token_cache;

#[cfg(test)]
mod refresh_tests;
pub mod web_identity;

/// How the token endpoints (Entra, managed identity, the CI providers' OIDC endpoints) are
/// retried: three attempts in all, the first wait 250–500 ms, within 30 seconds, a
/// `Retry-After` of up to 10 seconds honoured. A 429 or 5xx, or a connection dropped
/// mid-answer, is retried; a refusal, a connection that cannot be made or a timeout is not
/// (see [`crate::retry::send`]), so `auto`'s probes still fail fast off Azure.
pub(crate) fn token_endpoint_retry() -> crate::retry::Retrier {
    crate::retry::Retrier::new(crate::retry::RetryPolicy {
        max_attempts: 3,
        base: std::time::Duration::from_millis(500),
        cap: std::time::Duration::from_secs(4),
        deadline: std::time::Duration::from_secs(30),
        max_retry_after: std::time::Duration::from_secs(10),
    })
}
