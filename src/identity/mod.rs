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
//! - [`token_cache`]: the one cache every credential above keeps its tokens in, renewed
//!   ahead of their actual expiry (injected clock).
//!
//! Storage credentials that are not Entra tokens (keys, SAS) live with the Azure sink
//! (`sink::azure::auth`). Nothing here prints: results and failures go back as values.

pub mod aws;
pub mod azure;
pub mod certificate;
pub mod ci_oidc;
pub mod claims;
pub mod sigv4;
pub mod token_cache;

#[cfg(test)]
mod refresh_tests;
pub mod web_identity;
