//! Who the tool is on Azure, per hop ([`hops`]): storage (audience `https://storage.azure.com`),
//! the token exchanged with AWS STS (`api://AzureADTokenExchange`) and a bearer token for an
//! API Gateway JWT authorizer that trusts Entra each get an Entra token credential, chosen by
//! `--azure-auth` or the hop's own `--azure-auth-storage|-aws|-api`.
//!
//! Sources, in the order `auto` tries them for a hop (the first one that is configured wins,
//! and [`AzureIdentity::source`] says which):
//! 1. a token handed in that carries the hop's audience (`--azure-token-file`, repeatable,
//!    re-read on every use; `GATELAKE_AZURE_TOKEN`; `--azure-token-stdin`, one per line) —
//!    how a Synapse notebook passes `getToken(...)` to the tool;
//! 2. workload identity federation (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//!    `AZURE_FEDERATED_TOKEN_FILE`). The projected token file is read again on *every*
//!    exchange, because the kubelet rotates it; a credential that reads it once fails an hour
//!    later;
//! 3. a CI job's OIDC token as the federated client assertion (`ci-oidc`: `AZURE_TENANT_ID`,
//!    `AZURE_CLIENT_ID` and a GitHub Actions, GitLab CI or Azure DevOps token, see
//!    [`crate::identity::ci_oidc`]), asked of the CI afresh on every exchange;
//! 4. managed identity: App Service / Synapse style (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`),
//!    else the VM instance metadata service (IMDS), which `auto` probes with a one-second
//!    timeout (off Azure the link-local address never answers);
//! 5. a service principal with a certificate (`AZURE_CLIENT_CERTIFICATE_PATH`, see
//!    [`crate::identity::certificate`]) or a secret (`AZURE_CLIENT_SECRET`);
//! 6. the Azure CLI's login, when `az` is on `PATH`.
//!
//! Under `auto`, a source that is configured but cannot even start (a federated token file
//! that does not exist, an `IDENTITY_ENDPOINT` that is not a URL, an unusable certificate, no
//! `az`) is skipped, and the final error lists every source tried and why it was passed over.
//!
//! The token endpoint, managed identity and handed-in credentials are our own: they go
//! through the tool's one HTTP stack (custom CA bundle, proxies, timeouts) and report Entra's
//! errors with the most likely fix. Tokens are cached per scope in the one token cache
//! ([`crate::identity::token_cache`]), renewed ahead of their actual expiry. No token, secret or assertion is ever printed: errors name the claim or the
//! setting to check, never a value.

mod chain;
mod entra;
mod handed_in;
mod hops;
mod managed;

pub use entra::{ClientProof, EntraClientCredential};
pub use handed_in::{HandedIn, HandedInTokenCredential};
pub use hops::{AzureHop, HandedToken, HopIdentities, TokenOrigin};
pub use managed::{ManagedIdentityCredential, ManagedIdentityEndpoint};

use azure_core::credentials::{AccessToken, TokenCredential};
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

/// The public cloud's authority host.
pub const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The audience Entra workload identity federation and AWS use for exchanged tokens.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The audience of Azure Storage.
pub const STORAGE_AUDIENCE: &str = "https://storage.azure.com";

/// How the tool authenticates to Azure (`--azure-auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AzureAuthKind {
    #[default]
    Auto,
    Token,
    WorkloadIdentity,
    /// A CI job's OIDC token (GitHub Actions, GitLab CI, Azure DevOps) as a federated assertion.
    CiOidc,
    ManagedIdentity,
    ServicePrincipal,
    Cli,
    /// Storage only: `AZURE_STORAGE_CONNECTION_STRING`.
    ConnectionString,
    /// Storage only: `AZURE_STORAGE_ACCOUNT` + `AZURE_STORAGE_KEY`.
    Key,
    /// Storage only: `AZURE_STORAGE_SAS_TOKEN`.
    Sas,
}

impl AzureAuthKind {
    pub const ALL: [AzureAuthKind; 10] = [
        Self::Auto,
        Self::Token,
        Self::WorkloadIdentity,
        Self::CiOidc,
        Self::ManagedIdentity,
        Self::ServicePrincipal,
        Self::Cli,
        Self::ConnectionString,
        Self::Key,
        Self::Sas,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Token => "token",
            Self::WorkloadIdentity => "workload-identity",
            Self::CiOidc => "ci-oidc",
            Self::ManagedIdentity => "managed-identity",
            Self::ServicePrincipal => "service-principal",
            Self::Cli => "cli",
            Self::ConnectionString => "connection-string",
            Self::Key => "key",
            Self::Sas => "sas",
        }
    }

    /// Whether this choice authenticates storage without an Entra identity.
    pub fn is_storage_only(self) -> bool {
        matches!(self, Self::ConnectionString | Self::Key | Self::Sas)
    }
}

impl std::str::FromStr for AzureAuthKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "'{s}' is not an Azure auth kind; use one of {}",
                    names.join(", ")
                )
            })
    }
}

/// What the caller resolved about Azure identity (flags and their environment variables).
#[derive(Debug, Clone, Default)]
pub struct AzureOptions {
    /// `--azure-auth`: the default for every hop.
    pub kind: AzureAuthKind,
    /// `--azure-auth-storage`: the lake's source, when it differs from `kind`.
    pub storage_kind: Option<AzureAuthKind>,
    /// `--azure-auth-aws`: the source of the Entra token exchanged with AWS STS.
    pub aws_kind: Option<AzureAuthKind>,
    /// `--azure-auth-api`: the source of the API's bearer token (`--bearer-from azure`).
    pub api_kind: Option<AzureAuthKind>,
    /// `--azure-token-file` (repeatable): each read on every use, matched to hops by audience.
    pub token_files: Vec<PathBuf>,
    /// `GATELAKE_AZURE_TOKEN` and the tokens read from stdin (one per line).
    pub tokens: Vec<HandedToken>,
    /// `--azure-client-id`: a user-assigned managed identity, or overrides `AZURE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `--azure-authority` (else `AZURE_AUTHORITY_HOST`, else the public cloud).
    pub authority: Option<Url>,
}

impl AzureOptions {
    /// The kind that applies to `hop`: its own override, else `--azure-auth`.
    pub fn kind_for(&self, hop: AzureHop) -> AzureAuthKind {
        hops::kind_for(self, hop)
    }
}

/// Why no Azure identity could be set up or a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AzureIdentityError {
    #[error("{flag} {kind}: {message}")]
    NotConfigured {
        /// `--azure-auth`, or the hop's own flag when it overrides it.
        flag: &'static str,
        kind: &'static str,
        message: String,
    },
    #[error("no Azure identity found (tried: {tried}). Pass a token (--azure-token-file, GATELAKE_AZURE_TOKEN or --azure-token-stdin), set AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_FEDERATED_TOKEN_FILE (workload identity), a CI job's OIDC token (GitHub `id-token: write`, GitLab `id_tokens:`, an Azure DevOps service connection) or AZURE_CLIENT_SECRET / AZURE_CLIENT_CERTIFICATE_PATH (service principal), run on Azure with a managed identity, or `az login`")]
    NothingFound { tried: String },
    #[error("{0}")]
    Setup(String),
}

/// The resource (audience) a scope asks for: `https://storage.azure.com/.default` →
/// `https://storage.azure.com`.
pub fn resource_of(scope: &str) -> &str {
    scope.strip_suffix("/.default").unwrap_or(scope)
}

/// The scope for an audience: `api://AzureADTokenExchange` → `api://AzureADTokenExchange/.default`.
pub fn scope_for(audience: &str) -> String {
    if audience.ends_with("/.default") {
        audience.to_string()
    } else {
        format!("{}/.default", audience.trim_end_matches('/'))
    }
}

fn cred_error(message: impl Into<String>) -> azure_core::Error {
    azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, message.into())
}

/// Entra tokens per scope, in the one token cache (renewed ahead of their actual expiry).
pub(super) type ScopeCache = crate::identity::token_cache::TokenCache<String, AccessToken>;

/// A token from the cache, or fetched (and cached) when due for renewal. Every Entra and
/// managed-identity token is obtained here, so this is where it is registered as a live
/// secret: a storage or API error that quoted it back is then masked by
/// [`crate::secret::redact`].
pub(super) async fn cached_token<F, Fut>(
    cache: &ScopeCache,
    clock: &dyn crate::clock::Clock,
    scope: &str,
    fetch: F,
) -> azure_core::Result<AccessToken>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = azure_core::Result<AccessToken>>,
{
    cache
        .get_or_fetch(&scope.to_string(), clock.now(), || async {
            let token = fetch().await?;
            crate::secret::register(token.token.secret());
            let expires = std::time::SystemTime::from(token.expires_on);
            Ok((token, Some(expires)))
        })
        .await
}

/// A credential of someone else's making (the Azure CLI's, which runs `az` on every call and
/// caches nothing) behind the one token cache: a token is asked for once per scope and
/// renewal, not once per request.
#[derive(Debug)]
pub struct CachedTokenCredential {
    inner: Arc<dyn TokenCredential>,
    cache: ScopeCache,
    clock: Arc<dyn crate::clock::Clock>,
}

impl CachedTokenCredential {
    pub fn new(inner: Arc<dyn TokenCredential>) -> Self {
        Self {
            inner,
            cache: ScopeCache::default(),
            clock: Arc::new(crate::clock::SystemClock),
        }
    }

    /// The same credential on another clock (tests of refresh).
    pub fn with_clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait::async_trait]
impl TokenCredential for CachedTokenCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        cached_token(&self.cache, self.clock.as_ref(), scope, || {
            self.inner.get_token(scopes, options)
        })
        .await
    }
}

// The chosen identity
// ---------------------------------------------------------------------------------------------

/// Which source the identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AzureSource {
    TokenFile,
    TokenEnv,
    TokenStdin,
    WorkloadIdentity,
    CiOidcGithub,
    CiOidcGitlab,
    CiOidcAzureDevops,
    ManagedIdentityAppService,
    ManagedIdentityImds,
    ServicePrincipal,
    ServicePrincipalCertificate,
    Cli,
}

impl AzureSource {
    /// Whether this is a token someone else obtained (not a credential of our own).
    pub fn is_handed_in(self) -> bool {
        matches!(self, Self::TokenFile | Self::TokenEnv | Self::TokenStdin)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::TokenFile => "token file (--azure-token-file)",
            Self::TokenEnv => "token in GATELAKE_AZURE_TOKEN",
            Self::TokenStdin => "token on stdin (--azure-token-stdin)",
            Self::WorkloadIdentity => "workload identity federation (AZURE_FEDERATED_TOKEN_FILE)",
            Self::CiOidcGithub => "GitHub Actions OIDC token (ci-oidc)",
            Self::CiOidcGitlab => "GitLab CI ID token (ci-oidc)",
            Self::CiOidcAzureDevops => "Azure DevOps service connection token (ci-oidc)",
            Self::ManagedIdentityAppService => "managed identity (IDENTITY_ENDPOINT)",
            Self::ManagedIdentityImds => "managed identity (IMDS)",
            Self::ServicePrincipal => "service principal (AZURE_CLIENT_SECRET)",
            Self::ServicePrincipalCertificate => {
                "service principal (AZURE_CLIENT_CERTIFICATE_PATH)"
            }
            Self::Cli => "Azure CLI login",
        }
    }
}

/// The Entra identity in use: where it came from and the credential.
#[derive(Clone)]
pub struct AzureIdentity {
    pub source: AzureSource,
    /// Tenant and client id when configured (tokens' claims say more).
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    credential: Arc<dyn TokenCredential>,
}

impl std::fmt::Debug for AzureIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureIdentity")
            .field("source", &self.source)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl AzureIdentity {
    /// An identity around any credential (library users, tests).
    pub fn from_credential(source: AzureSource, credential: Arc<dyn TokenCredential>) -> Self {
        Self {
            source,
            tenant: None,
            client_id: None,
            credential,
        }
    }

    /// The credential, for storage clients and anything else that takes one.
    pub fn credential(&self) -> Arc<dyn TokenCredential> {
        self.credential.clone()
    }

    /// A token for `audience` (a resource URI or app id URI, with or without `/.default`).
    pub async fn token_for(&self, audience: &str) -> Result<AccessToken, AzureTokenError> {
        let scope = scope_for(audience);
        self.credential
            .get_token(&[scope.as_str()], None)
            .await
            .map_err(|e| AzureTokenError {
                source_kind: self.source.describe(),
                audience: audience.to_string(),
                message: e.to_string(),
            })
    }
}

/// A token could not be had for an audience.
#[derive(Debug, thiserror::Error)]
#[error("Azure identity ({source_kind}) could not get a token for {audience}: {message}")]
pub struct AzureTokenError {
    pub source_kind: &'static str,
    pub audience: String,
    pub message: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::handed_in::audience_matches;
    use super::*;
    use base64::Engine as _;

    pub(crate) fn jwt(claims: serde_json::Value) -> String {
        let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b(br#"{"alg":"RS256","typ":"JWT"}"#),
            b(claims.to_string().as_bytes())
        )
    }

    #[tokio::test]
    async fn a_token_fetched_through_the_cache_is_masked() {
        let cache = ScopeCache::default();
        let clock = crate::identity::token_cache::SystemClock;
        let value = "entra-access-token-from-the-cache-7f3a91";
        let token = cached_token(
            &cache,
            &clock,
            "https://storage.azure.com/.default",
            || async {
                Ok(AccessToken::new(
                    value.to_string(),
                    time::OffsetDateTime::now_utc() + time::Duration::hours(1),
                ))
            },
        )
        .await
        .unwrap();
        assert_eq!(token.token.secret(), value);
        let quoted = format!("Server failed to authenticate the request. Token: {value}");
        let masked = crate::secret::redact(&quoted);
        assert!(!masked.contains(value), "{masked}");
        assert!(masked.contains("***"), "{masked}");
    }

    /// Counts its calls, as `az account get-access-token` would be run; tokens live an hour
    /// from the clock's now.
    #[derive(Debug)]
    struct CountingCli {
        calls: std::sync::atomic::AtomicU32,
        clock: Arc<crate::clock::FakeClock>,
    }

    #[async_trait::async_trait]
    impl TokenCredential for CountingCli {
        async fn get_token(
            &self,
            _scopes: &[&str],
            _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            use crate::clock::Clock as _;
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let now = time::OffsetDateTime::from(self.clock.now());
            Ok(AccessToken::new(
                format!("cli-token-{n}"),
                now + time::Duration::hours(1),
            ))
        }
    }

    #[tokio::test]
    async fn a_credential_that_caches_nothing_is_asked_once_per_scope_and_renewal() {
        let clock = Arc::new(crate::clock::FakeClock::at(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
        ));
        let cli = Arc::new(CountingCli {
            calls: std::sync::atomic::AtomicU32::new(0),
            clock: clock.clone(),
        });
        let cached = CachedTokenCredential::new(cli.clone()).with_clock(clock.clone());
        let storage = "https://storage.azure.com/.default";
        for _ in 0..50 {
            let t = cached.get_token(&[storage], None).await.unwrap();
            assert_eq!(t.token.secret(), "cli-token-0");
            clock.advance(std::time::Duration::from_secs(60));
        }
        // 56 minutes on, inside the five-minute margin: renewed once.
        clock.advance(std::time::Duration::from_secs(360));
        let t = cached.get_token(&[storage], None).await.unwrap();
        assert_eq!(t.token.secret(), "cli-token-1");
        cached
            .get_token(&["api://AzureADTokenExchange/.default"], None)
            .await
            .unwrap();
        assert_eq!(cli.calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn scopes_and_resources() {
        assert_eq!(
            scope_for("https://storage.azure.com"),
            "https://storage.azure.com/.default"
        );
        assert_eq!(scope_for("api://x/"), "api://x/.default");
        assert_eq!(resource_of("api://x/.default"), "api://x");
        assert!(audience_matches(
            "https://storage.azure.com/",
            "https://storage.azure.com"
        ));
        assert!(!audience_matches(
            "api://other",
            "https://storage.azure.com"
        ));
        assert!(audience_matches(
            "12345678-1234-1234-1234-123456789012",
            "api://x"
        ));
    }
}
