//! Who the tool is on Azure: one Entra token credential, chosen by `--azure-auth`, that serves
//! storage (audience `https://storage.azure.com`) and any other audience — notably the token
//! exchanged with AWS STS (`api://AzureADTokenExchange`) and a bearer token for an API
//! Gateway JWT authorizer that trusts Entra.
//!
//! Sources, in the order `auto` tries them (the first one that is configured wins, and
//! [`AzureIdentity::source`] says which):
//! 1. a token handed in (`--azure-token-file`, re-read on every use; `GATELAKE_AZURE_TOKEN`;
//!    `--azure-token-stdin`) — how a Synapse notebook passes `getToken(...)` to the tool;
//! 2. workload identity federation (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//!    `AZURE_FEDERATED_TOKEN_FILE`). The projected token file is read again on *every*
//!    exchange, because the kubelet rotates it; a credential that reads it once fails an hour
//!    later;
//! 3. managed identity: App Service / Synapse style (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`),
//!    else the VM instance metadata service (IMDS), which `auto` probes with a one-second
//!    timeout (off Azure the link-local address never answers);
//! 4. a service principal with a certificate (`AZURE_CLIENT_CERTIFICATE_PATH`, see
//!    [`crate::identity::certificate`]) or a secret (`AZURE_CLIENT_SECRET`);
//! 5. the Azure CLI's login, when `az` is on `PATH`.
//!
//! Under `auto`, a source that is configured but cannot even start (a federated token file
//! that does not exist, an `IDENTITY_ENDPOINT` that is not a URL, an unusable certificate, no
//! `az`) is skipped, and the final error lists every source tried and why it was passed over.
//!
//! The token endpoint, managed identity and handed-in credentials are our own: they go
//! through the tool's one HTTP stack (custom CA bundle, proxies, timeouts) and report Entra's
//! errors with the most likely fix. Tokens are cached per scope until five minutes before
//! they expire. No token, secret or assertion is ever printed: errors name the claim or the
//! setting to check, never a value.

use crate::identity::certificate::{AssertionAlgorithm, ClientCertificate, JWT_BEARER};
use crate::secret::Secret;
use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use base64::Engine as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use url::Url;

/// The public cloud's authority host.
pub const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The audience Entra workload identity federation and AWS use for exchanged tokens.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The audience of Azure Storage.
pub const STORAGE_AUDIENCE: &str = "https://storage.azure.com";
const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// A cached token is renewed when less than this is left.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How the tool authenticates to Azure (`--azure-auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AzureAuthKind {
    #[default]
    Auto,
    Token,
    WorkloadIdentity,
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
    pub const ALL: [AzureAuthKind; 9] = [
        Self::Auto,
        Self::Token,
        Self::WorkloadIdentity,
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
    pub kind: AzureAuthKind,
    /// `--azure-token-file`: read on every use.
    pub token_file: Option<PathBuf>,
    /// `GATELAKE_AZURE_TOKEN` or the token read from stdin.
    pub token: Option<Secret>,
    /// `--azure-client-id`: a user-assigned managed identity, or overrides `AZURE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `--azure-authority` (else `AZURE_AUTHORITY_HOST`, else the public cloud).
    pub authority: Option<Url>,
}

/// Why no Azure identity could be set up or a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AzureIdentityError {
    #[error("--azure-auth {kind}: {message}")]
    NotConfigured { kind: &'static str, message: String },
    #[error("no Azure identity found (tried: {tried}). Pass a token (--azure-token-file, GATELAKE_AZURE_TOKEN or --azure-token-stdin), set AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_FEDERATED_TOKEN_FILE (workload identity) or AZURE_CLIENT_SECRET / AZURE_CLIENT_CERTIFICATE_PATH (service principal), run on Azure with a managed identity, or `az login`")]
    NothingFound { tried: String },
    #[error("{0}")]
    Setup(String),
}

/// The claims of a JWT that say whose token it is. Decoded without verifying the signature:
/// only for reports and error messages, never for a trust decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TokenClaims {
    pub iss: Option<String>,
    pub aud: Option<String>,
    pub sub: Option<String>,
    pub tid: Option<String>,
    pub oid: Option<String>,
    /// `appid` (v1 tokens) or `azp` (v2).
    pub app_id: Option<String>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
}

impl TokenClaims {
    /// The claims of `token`, when it is a JWT.
    pub fn of(token: &str) -> Option<Self> {
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let aud = match v.get("aud") {
            Some(serde_json::Value::String(a)) => Some(a.clone()),
            Some(serde_json::Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        };
        Some(Self {
            iss: s("iss"),
            aud,
            sub: s("sub"),
            tid: s("tid"),
            oid: s("oid"),
            app_id: s("appid").or_else(|| s("azp")),
            exp: v.get("exp").and_then(|x| x.as_i64()),
            nbf: v.get("nbf").and_then(|x| x.as_i64()),
        })
    }

    /// `exp` as a time.
    pub fn expires_on(&self) -> Option<OffsetDateTime> {
        self.exp
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
    }
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

/// Tokens per scope, renewed [`TOKEN_REFRESH_MARGIN`] before they expire. One lock, so
/// concurrent callers for the same scope share one request.
#[derive(Debug, Default)]
struct TokenCache(Mutex<HashMap<String, AccessToken>>);

impl TokenCache {
    async fn get_or_fetch<F, Fut>(&self, scope: &str, fetch: F) -> azure_core::Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = azure_core::Result<AccessToken>>,
    {
        let mut map = self.0.lock().await;
        if let Some(t) = map.get(scope) {
            let margin = time::Duration::try_from(TOKEN_REFRESH_MARGIN).unwrap_or_default();
            if t.expires_on - OffsetDateTime::now_utc() > margin {
                return Ok(t.clone());
            }
        }
        let fresh = fetch().await?;
        map.insert(scope.to_string(), fresh.clone());
        Ok(fresh)
    }
}

// ---------------------------------------------------------------------------------------------
// A token handed in
// ---------------------------------------------------------------------------------------------

/// Where a handed-in token comes from.
#[derive(Debug, Clone)]
pub enum HandedIn {
    /// Read on every use, so a caller can keep the file fresh during a long run.
    File(PathBuf),
    Value(Secret),
}

/// A token someone else obtained (a notebook's `getToken`, a pipeline step). It is only good
/// for the audience it was issued for: asking it for another audience fails and says so.
#[derive(Debug)]
pub struct HandedInTokenCredential {
    from: HandedIn,
}

impl HandedInTokenCredential {
    pub fn new(from: HandedIn) -> Self {
        Self { from }
    }

    async fn read(&self) -> azure_core::Result<String> {
        match &self.from {
            HandedIn::Value(s) => Ok(s.expose().trim().to_string()),
            HandedIn::File(p) => {
                let text = tokio::fs::read_to_string(p).await.map_err(|e| {
                    cred_error(format!("cannot read the token file {}: {e}", p.display()))
                })?;
                let t = text.trim().to_string();
                if t.is_empty() {
                    return Err(cred_error(format!(
                        "the token file {} is empty",
                        p.display()
                    )));
                }
                Ok(t)
            }
        }
    }
}

/// Whether a token whose `aud` is `aud` serves `resource`. Entra tokens carry the resource
/// URI or the app's GUID; a GUID cannot be checked here, so it is accepted.
fn audience_matches(aud: &str, resource: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    let looks_like_guid = aud.len() == 36 && aud.chars().filter(|c| *c == '-').count() == 4;
    aud.split(',').any(|a| norm(a) == norm(resource)) || looks_like_guid
}

#[async_trait]
impl TokenCredential for HandedInTokenCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let token = self.read().await?;
        let claims = TokenClaims::of(&token);
        let now = OffsetDateTime::now_utc();
        let expires_on = claims
            .as_ref()
            .and_then(TokenClaims::expires_on)
            .unwrap_or(now + time::Duration::minutes(10));
        if expires_on <= now {
            return Err(cred_error(format!(
                "the Azure token handed in expired at {expires_on}; get a new one (e.g. mssparkutils.credentials.getToken) and pass it again"
            )));
        }
        if let (Some(scope), Some(aud)) = (
            scopes.first(),
            claims.as_ref().and_then(|c| c.aud.as_deref()),
        ) {
            let resource = resource_of(scope);
            if !audience_matches(aud, resource) {
                return Err(cred_error(format!(
                    "the Azure token handed in is for audience (aud) {aud}, but {resource} is needed here; pass a token for {resource}"
                )));
            }
        }
        Ok(AccessToken::new(token, expires_on))
    }
}

// ---------------------------------------------------------------------------------------------
// Entra token endpoint: workload identity and service principal
// ---------------------------------------------------------------------------------------------

/// How a confidential client proves itself to the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientProof {
    /// A federated token (workload identity), read from this file on every exchange.
    AssertionFile(PathBuf),
    /// `AZURE_CLIENT_SECRET`.
    Secret(Secret),
    /// `AZURE_CLIENT_CERTIFICATE_PATH`: a fresh assertion signed with the key per request.
    Certificate(Arc<ClientCertificate>),
}

/// The client-credentials grant against `{authority}/{tenant}/oauth2/v2.0/token`.
#[derive(Debug)]
pub struct EntraClientCredential {
    authority: Url,
    tenant: String,
    client_id: String,
    proof: ClientProof,
    http: reqwest::Client,
    cache: TokenCache,
}

impl EntraClientCredential {
    pub fn new(
        authority: Url,
        tenant: String,
        client_id: String,
        proof: ClientProof,
        http: reqwest::Client,
    ) -> Self {
        Self {
            authority,
            tenant,
            client_id,
            proof,
            http,
            cache: TokenCache::default(),
        }
    }

    fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.as_str().trim_end_matches('/'),
            self.tenant
        )
    }

    async fn fetch(&self, scope: &str) -> azure_core::Result<AccessToken> {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", self.client_id.clone()),
            ("scope", scope.to_string()),
        ];
        match &self.proof {
            ClientProof::AssertionFile(path) => {
                // Read afresh every time: the projected token rotates under us.
                let assertion = tokio::fs::read_to_string(path).await.map_err(|e| {
                    cred_error(format!(
                        "cannot read AZURE_FEDERATED_TOKEN_FILE {}: {e}",
                        path.display()
                    ))
                })?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", assertion.trim().to_string()));
            }
            ClientProof::Secret(s) => form.push(("client_secret", s.expose().to_string())),
            ClientProof::Certificate(cert) => {
                let assertion = cert
                    .assertion(
                        AssertionAlgorithm::Rs256,
                        &self.token_url(),
                        &self.client_id,
                        OffsetDateTime::now_utc().unix_timestamp(),
                    )
                    .map_err(|e| cred_error(e.to_string()))?;
                form.push(("client_assertion_type", JWT_BEARER.into()));
                form.push(("client_assertion", assertion.expose().to_string()));
            }
        }
        let url = self.token_url();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let resp = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                cred_error(format!(
                    "cannot reach the Entra token endpoint {url}: {}. Check --azure-authority / AZURE_AUTHORITY_HOST, proxies and the CA bundle",
                    crate::report::error_chain(&e)
                ))
            })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| cred_error(format!("reading the Entra token response from {url}: {e}")))?;
        if status != 200 {
            return Err(cred_error(entra_error_message(status, &bytes, &self.proof)));
        }
        parse_token_response(&bytes, &url)
    }
}

#[async_trait]
impl TokenCredential for EntraClientCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        self.cache.get_or_fetch(scope, || self.fetch(scope)).await
    }
}

/// An Entra error body (`{"error": …, "error_description": "AADSTS…", "error_codes": […]}`)
/// turned into a sentence with the most likely fix. The description never holds secrets.
fn entra_error_message(status: u16, body: &[u8], proof: &ClientProof) -> String {
    #[derive(serde::Deserialize, Default)]
    struct EntraError {
        error: Option<String>,
        error_description: Option<String>,
    }
    let e: EntraError = serde_json::from_slice(body).unwrap_or_default();
    let code = e.error.unwrap_or_else(|| format!("HTTP {status}"));
    let description = e
        .error_description
        .map(|d| d.lines().next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let hint = if description.contains("AADSTS70021") || description.contains("AADSTS700213") {
        "no federated credential on the app matches the token: check the federated credential's issuer (iss), subject (sub) and audience (aud, usually api://AzureADTokenExchange)"
    } else if description.contains("AADSTS700027") && matches!(proof, ClientProof::Certificate(_)) {
        "Entra could not verify the certificate assertion: upload this certificate (its public part) to the app registration; its thumbprint must match the one in AZURE_CLIENT_CERTIFICATE_PATH"
    } else if description.contains("AADSTS700024") || description.contains("AADSTS700027") {
        "the federated token is expired or not yet valid: the token file must be refreshed by its issuer (gatelake re-reads it on every exchange)"
    } else if description.contains("AADSTS7000215") || description.contains("AADSTS7000222") {
        "the client secret is wrong or expired: create a new one (az ad app credential reset) and update AZURE_CLIENT_SECRET"
    } else if description.contains("AADSTS700016") {
        "no app with this client id in the tenant: check AZURE_CLIENT_ID and AZURE_TENANT_ID"
    } else if description.contains("AADSTS90002") || description.contains("AADSTS900023") {
        "the tenant was not found: check AZURE_TENANT_ID and the authority host (sovereign clouds need --azure-authority)"
    } else if description.contains("AADSTS500011") {
        "the resource (audience) is not known in the tenant: check the audience/scope asked for"
    } else {
        match proof {
            ClientProof::AssertionFile(_) => "check the app's federated credential (issuer, subject, audience) and AZURE_CLIENT_ID/AZURE_TENANT_ID",
            ClientProof::Secret(_) => "check AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET",
            ClientProof::Certificate(_) => "check AZURE_CLIENT_ID, AZURE_TENANT_ID and that the certificate in AZURE_CLIENT_CERTIFICATE_PATH is uploaded to the app registration (its thumbprint must match)",
        }
    };
    format!("Entra refused the token request ({status} {code}: {description}); {hint}")
}

fn parse_token_response(bytes: &[u8], url: &str) -> azure_core::Result<AccessToken> {
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        access_token: String,
        expires_in: Option<serde_json::Value>,
        expires_on: Option<serde_json::Value>,
    }
    let r: TokenResponse = serde_json::from_slice(bytes)
        .map_err(|e| cred_error(format!("the token response from {url} is not a token: {e}")))?;
    let num = |v: &Option<serde_json::Value>| -> Option<i64> {
        match v {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let now = OffsetDateTime::now_utc();
    let expires_on = num(&r.expires_on)
        .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
        .or_else(|| num(&r.expires_in).map(|s| now + time::Duration::seconds(s)))
        .or_else(|| TokenClaims::of(&r.access_token).and_then(|c| c.expires_on()))
        .unwrap_or(now + time::Duration::minutes(10));
    Ok(AccessToken::new(r.access_token, expires_on))
}

// ---------------------------------------------------------------------------------------------
// Managed identity
// ---------------------------------------------------------------------------------------------

/// Which managed identity endpoint.
#[derive(Debug, Clone)]
pub enum ManagedIdentityEndpoint {
    /// App Service, Functions, Synapse, Container Apps: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`.
    AppService { endpoint: Url, header: Secret },
    /// The VM instance metadata service (`IMDS_ENDPOINT` overrides the address).
    Imds { endpoint: Url },
}

/// A system- or user-assigned managed identity.
#[derive(Debug)]
pub struct ManagedIdentityCredential {
    endpoint: ManagedIdentityEndpoint,
    client_id: Option<String>,
    http: reqwest::Client,
    cache: TokenCache,
}

impl ManagedIdentityCredential {
    pub fn new(
        endpoint: ManagedIdentityEndpoint,
        client_id: Option<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            endpoint,
            client_id,
            http,
            cache: TokenCache::default(),
        }
    }

    async fn fetch(&self, scope: &str) -> azure_core::Result<AccessToken> {
        let resource = resource_of(scope);
        let (mut url, api_version) = match &self.endpoint {
            ManagedIdentityEndpoint::AppService { endpoint, .. } => {
                (endpoint.clone(), "2019-08-01")
            }
            ManagedIdentityEndpoint::Imds { endpoint } => (endpoint.clone(), "2018-02-01"),
        };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", api_version);
            q.append_pair("resource", resource);
            if let Some(id) = &self.client_id {
                q.append_pair("client_id", id);
            }
        }
        let mut req = self.http.get(url.clone());
        req = match &self.endpoint {
            ManagedIdentityEndpoint::AppService { header, .. } => {
                req.header("x-identity-header", header.expose())
            }
            ManagedIdentityEndpoint::Imds { .. } => req.header("metadata", "true"),
        };
        let shown = crate::secret::redact_url(&url);
        let resp = req.send().await.map_err(|e| {
            cred_error(format!(
                "cannot reach the managed identity endpoint {shown}: {}",
                crate::report::error_chain(&e)
            ))
        })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| cred_error(format!("reading the managed identity response: {e}")))?;
        if status != 200 {
            let detail = crate::source::client::api_message(&bytes);
            let hint = match status {
                400 if self.client_id.is_some() => "no user-assigned identity with that --azure-client-id is attached to this resource",
                400 | 404 => "no managed identity is assigned to this resource: enable the system-assigned identity or attach a user-assigned one (and pass --azure-client-id)",
                401 | 403 => "the identity endpoint refused the request: IDENTITY_HEADER may be stale (restart the process that set it)",
                _ => "the managed identity endpoint failed; retry, or check the resource's identity settings",
            };
            return Err(cred_error(format!(
                "managed identity endpoint {shown} answered {status}: {detail}; {hint}"
            )));
        }
        parse_token_response(&bytes, &shown)
    }
}

#[async_trait]
impl TokenCredential for ManagedIdentityCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        self.cache.get_or_fetch(scope, || self.fetch(scope)).await
    }
}

// ---------------------------------------------------------------------------------------------
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
    ManagedIdentityAppService,
    ManagedIdentityImds,
    ServicePrincipal,
    ServicePrincipalCertificate,
    Cli,
}

impl AzureSource {
    pub fn describe(self) -> &'static str {
        match self {
            Self::TokenFile => "token file (--azure-token-file)",
            Self::TokenEnv => "token in GATELAKE_AZURE_TOKEN",
            Self::TokenStdin => "token on stdin (--azure-token-stdin)",
            Self::WorkloadIdentity => "workload identity federation (AZURE_FEDERATED_TOKEN_FILE)",
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

    /// Resolve `options` against an environment lookup. `auto` picks the first configured
    /// source (see the module docs); IMDS is probed with a short timeout.
    pub async fn resolve(
        options: &AzureOptions,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
        http: reqwest::Client,
    ) -> Result<Self, AzureIdentityError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let authority = match &options.authority {
            Some(a) => a.clone(),
            None => {
                let text = get("AZURE_AUTHORITY_HOST").unwrap_or_else(|| PUBLIC_AUTHORITY.into());
                Url::parse(&text).map_err(|e| {
                    AzureIdentityError::Setup(format!("AZURE_AUTHORITY_HOST is not a URL: {e}"))
                })?
            }
        };
        if authority.scheme() != "https" {
            return Err(AzureIdentityError::Setup(format!(
                "the authority host {authority} must use https: tokens and secrets are sent to it"
            )));
        }
        let tenant = get("AZURE_TENANT_ID");
        let client_id = options.client_id.clone().or_else(|| get("AZURE_CLIENT_ID"));
        let kind = options.kind;
        let wants = |k: AzureAuthKind| kind == k || kind == AzureAuthKind::Auto;
        let not_configured = |message: &str| AzureIdentityError::NotConfigured {
            kind: kind.as_str(),
            message: message.to_string(),
        };
        let mut tried: Vec<String> = Vec::new();
        let make = |source, credential: Arc<dyn TokenCredential>| Self {
            source,
            tenant: tenant.clone(),
            client_id: client_id.clone(),
            credential,
        };

        // 1. A token handed in.
        if wants(AzureAuthKind::Token) {
            if let Some(p) = &options.token_file {
                return Ok(make(
                    AzureSource::TokenFile,
                    Arc::new(HandedInTokenCredential::new(HandedIn::File(p.clone()))),
                ));
            }
            if let Some(t) = &options.token {
                let source = if get("GATELAKE_AZURE_TOKEN").is_some() {
                    AzureSource::TokenEnv
                } else {
                    AzureSource::TokenStdin
                };
                return Ok(make(
                    source,
                    Arc::new(HandedInTokenCredential::new(HandedIn::Value(t.clone()))),
                ));
            }
            if kind == AzureAuthKind::Token {
                return Err(not_configured(
                    "no token given: pass --azure-token-file PATH, set GATELAKE_AZURE_TOKEN, or pipe it with --azure-token-stdin",
                ));
            }
            tried.push("token".into());
        }

        // 2. Workload identity federation.
        if wants(AzureAuthKind::WorkloadIdentity) {
            match (&tenant, &client_id, get("AZURE_FEDERATED_TOKEN_FILE")) {
                // A token file that is not there (yet) cannot start: `auto` moves on.
                (Some(_), Some(_), Some(f))
                    if kind == AzureAuthKind::Auto && !std::path::Path::new(&f).is_file() =>
                {
                    tried.push(format!(
                        "workload identity (AZURE_FEDERATED_TOKEN_FILE {f} does not exist)"
                    ))
                }
                (Some(t), Some(c), Some(f)) => {
                    return Ok(make(
                        AzureSource::WorkloadIdentity,
                        Arc::new(EntraClientCredential::new(
                            authority,
                            t.clone(),
                            c.clone(),
                            ClientProof::AssertionFile(PathBuf::from(f)),
                            http,
                        )),
                    ))
                }
                _ if kind == AzureAuthKind::WorkloadIdentity => {
                    return Err(not_configured(
                        "workload identity needs AZURE_TENANT_ID, AZURE_CLIENT_ID (or --azure-client-id) and AZURE_FEDERATED_TOKEN_FILE",
                    ))
                }
                _ => tried.push("workload identity".into()),
            }
        }

        // 3. Managed identity: App Service style by its variables, else the VM's IMDS (named
        // explicitly, or found by a short probe under `auto`).
        if wants(AzureAuthKind::ManagedIdentity) {
            let app_service = match (get("IDENTITY_ENDPOINT"), get("IDENTITY_HEADER")) {
                (Some(ep), Some(h)) => match Url::parse(&ep) {
                    Ok(endpoint) => Some((endpoint, h)),
                    Err(e) if kind == AzureAuthKind::ManagedIdentity => {
                        return Err(AzureIdentityError::Setup(format!(
                            "IDENTITY_ENDPOINT is not a URL: {e}"
                        )))
                    }
                    Err(e) => {
                        tried.push(format!(
                            "managed identity (IDENTITY_ENDPOINT is not a URL: {e})"
                        ));
                        None
                    }
                },
                _ => None,
            };
            if let Some((endpoint, h)) = app_service {
                return Ok(make(
                    AzureSource::ManagedIdentityAppService,
                    Arc::new(ManagedIdentityCredential::new(
                        ManagedIdentityEndpoint::AppService {
                            endpoint,
                            header: Secret::new(h),
                        },
                        options.client_id.clone(),
                        http,
                    )),
                ));
            }
            let endpoint = imds_endpoint(&get)?;
            let imds = ManagedIdentityCredential::new(
                ManagedIdentityEndpoint::Imds { endpoint },
                options.client_id.clone(),
                http.clone(),
            );
            if kind == AzureAuthKind::ManagedIdentity {
                return Ok(make(AzureSource::ManagedIdentityImds, Arc::new(imds)));
            }
            // Off Azure the link-local address does not answer: a short probe keeps `auto`
            // usable on laptops and CI runners. A token fetched here is cached, not wasted.
            let scope = scope_for(STORAGE_AUDIENCE);
            let answered =
                tokio::time::timeout(IMDS_PROBE_TIMEOUT, imds.get_token(&[&scope], None)).await;
            if matches!(answered, Ok(Ok(_))) {
                return Ok(make(AzureSource::ManagedIdentityImds, Arc::new(imds)));
            }
            tried.push("managed identity via IMDS (did not answer)".into());
        }

        // 4. Service principal: a certificate or a secret.
        if wants(AzureAuthKind::ServicePrincipal) {
            let cert = get("AZURE_CLIENT_CERTIFICATE_PATH");
            let secret = get("AZURE_CLIENT_SECRET");
            match (&tenant, &client_id, cert, secret) {
                (Some(t), Some(c), Some(path), _) => {
                    match ClientCertificate::load(std::path::Path::new(&path)) {
                        Ok(cert) => {
                            return Ok(make(
                                AzureSource::ServicePrincipalCertificate,
                                Arc::new(EntraClientCredential::new(
                                    authority,
                                    t.clone(),
                                    c.clone(),
                                    ClientProof::Certificate(Arc::new(cert)),
                                    http,
                                )),
                            ))
                        }
                        Err(e) if kind == AzureAuthKind::ServicePrincipal => {
                            return Err(not_configured(&e.to_string()))
                        }
                        // Configured but unusable: `auto` moves on and says why at the end.
                        Err(e) => tried.push(format!("service principal ({e})")),
                    }
                }
                (Some(t), Some(c), None, Some(secret)) => {
                    return Ok(make(
                        AzureSource::ServicePrincipal,
                        Arc::new(EntraClientCredential::new(
                            authority,
                            t.clone(),
                            c.clone(),
                            ClientProof::Secret(Secret::new(secret)),
                            http,
                        )),
                    ))
                }
                _ if kind == AzureAuthKind::ServicePrincipal => {
                    return Err(not_configured(
                        "a service principal needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH",
                    ))
                }
                _ => tried.push("service principal".into()),
            }
        }

        // 5. The Azure CLI, when `az` is on PATH (otherwise every token request would fail
        // later with a less useful message).
        if wants(AzureAuthKind::Cli) {
            if kind == AzureAuthKind::Cli || az_on_path(&get) {
                let cli = azure_identity::AzureCliCredential::new(None).map_err(|e| {
                    AzureIdentityError::Setup(format!(
                        "could not set up the Azure CLI credential: {e}"
                    ))
                })?;
                return Ok(make(AzureSource::Cli, cli));
            }
            tried.push("Azure CLI (az is not on PATH)".into());
        }
        Err(AzureIdentityError::NothingFound {
            tried: tried.join(", "),
        })
    }
}

/// How long `auto` waits for IMDS before concluding this is not an Azure VM.
const IMDS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether an `az` executable is on `PATH` (as the injected environment has it).
fn az_on_path(get: &dyn Fn(&str) -> Option<String>) -> bool {
    let Some(path) = get("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        ["az", "az.cmd", "az.exe"]
            .iter()
            .any(|name| dir.join(name).is_file())
    })
}

fn imds_endpoint(get: &dyn Fn(&str) -> Option<String>) -> Result<Url, AzureIdentityError> {
    let text = match get("IMDS_ENDPOINT") {
        Some(base) => format!(
            "{}/metadata/identity/oauth2/token",
            base.trim_end_matches('/')
        ),
        None => IMDS_ENDPOINT.to_string(),
    };
    Url::parse(&text)
        .map_err(|e| AzureIdentityError::Setup(format!("IMDS_ENDPOINT is not a URL: {e}")))
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
    use super::*;

    pub(crate) fn jwt(claims: serde_json::Value) -> String {
        let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b(br#"{"alg":"RS256","typ":"JWT"}"#),
            b(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn claims_are_read_from_jwts() {
        let t = jwt(serde_json::json!({
            "iss": "https://sts.windows.net/t1/", "aud": "api://AzureADTokenExchange",
            "sub": "s", "tid": "t1", "oid": "o1", "azp": "a1", "exp": 2_000_000_000i64
        }));
        let c = TokenClaims::of(&t).unwrap();
        assert_eq!(c.aud.as_deref(), Some("api://AzureADTokenExchange"));
        assert_eq!(c.app_id.as_deref(), Some("a1"));
        assert_eq!(c.exp, Some(2_000_000_000));
        assert!(TokenClaims::of("not-a-jwt").is_none());
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

    #[tokio::test]
    async fn handed_in_file_is_reread_and_audience_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        let exp = OffsetDateTime::now_utc().unix_timestamp() + 3600;
        let t1 = jwt(serde_json::json!({"aud": "https://storage.azure.com", "exp": exp, "n": 1}));
        let t2 = jwt(serde_json::json!({"aud": "https://storage.azure.com", "exp": exp, "n": 2}));
        std::fs::write(&p, &t1).unwrap();
        let c = HandedInTokenCredential::new(HandedIn::File(p.clone()));
        let scope = "https://storage.azure.com/.default";
        assert_eq!(
            c.get_token(&[scope], None).await.unwrap().token.secret(),
            t1
        );
        std::fs::write(&p, &t2).unwrap();
        assert_eq!(
            c.get_token(&[scope], None).await.unwrap().token.secret(),
            t2
        );
        let err = c
            .get_token(&["api://AzureADTokenExchange/.default"], None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("audience (aud)"), "{err}");
        let expired = jwt(serde_json::json!({"aud": "https://storage.azure.com", "exp": 1000}));
        std::fs::write(&p, expired).unwrap();
        let err = c.get_token(&[scope], None).await.unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn entra_errors_name_the_fix() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS70021: No matching federated identity record found for presented assertion."}"#;
        let m = entra_error_message(400, body, &ClientProof::AssertionFile("f".into()));
        assert!(
            m.contains("subject (sub)") && m.contains("AADSTS70021"),
            "{m}"
        );
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#;
        let m = entra_error_message(401, body, &ClientProof::Secret(Secret::new("s3cr3t")));
        assert!(
            m.contains("AZURE_CLIENT_SECRET") && !m.contains("s3cr3t"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn auto_order_and_explicit_requirements() {
        let http = reqwest::Client::new();
        let env_of = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("federated-token");
        std::fs::write(&token_file, "x").unwrap();
        let token_file: &'static str = Box::leak(token_file.display().to_string().into_boxed_str());
        let wi: &'static [(&str, &str)] = Box::leak(Box::new([
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_FEDERATED_TOKEN_FILE", token_file),
            ("AZURE_CLIENT_SECRET", "s"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("IDENTITY_HEADER", "h"),
        ]));
        let opts = AzureOptions::default();
        let id = AzureIdentity::resolve(&opts, &env_of(wi), http.clone())
            .await
            .unwrap();
        assert_eq!(id.source, AzureSource::WorkloadIdentity);
        let with_token = AzureOptions {
            token: Some(Secret::new("x")),
            ..Default::default()
        };
        let id = AzureIdentity::resolve(&with_token, &env_of(wi), http.clone())
            .await
            .unwrap();
        assert_eq!(id.source, AzureSource::TokenStdin);
        let mi: &[(&str, &str)] = &[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("IDENTITY_HEADER", "h"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s"),
        ];
        let id = AzureIdentity::resolve(&opts, &env_of(mi), http.clone())
            .await
            .unwrap();
        assert_eq!(id.source, AzureSource::ManagedIdentityAppService);
        let sp = AzureOptions {
            kind: AzureAuthKind::ServicePrincipal,
            ..Default::default()
        };
        let id = AzureIdentity::resolve(&sp, &env_of(mi), http.clone())
            .await
            .unwrap();
        assert_eq!(id.source, AzureSource::ServicePrincipal);
        let wi_only = AzureOptions {
            kind: AzureAuthKind::WorkloadIdentity,
            ..Default::default()
        };
        let err = AzureIdentity::resolve(&wi_only, &env_of(mi), http.clone())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("AZURE_FEDERATED_TOKEN_FILE"),
            "{err}"
        );
        let plain: &[(&str, &str)] = &[("AZURE_AUTHORITY_HOST", "http://login.test")];
        let err = AzureIdentity::resolve(&opts, &env_of(plain), http)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
    }

    /// `auto` follows token → workload identity → managed identity → service principal →
    /// Azure CLI, skipping sources that are configured but cannot start.
    #[tokio::test]
    async fn auto_follows_the_documented_order_and_skips_what_cannot_start() {
        let http = reqwest::Client::new();
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("az"), "#!/bin/sh\n").unwrap();
        let missing_cert = dir.path().join("missing.pem").display().to_string();
        let token_file = dir.path().join("federated-token");
        std::fs::write(&token_file, "x").unwrap();
        let token_file = token_file.display().to_string();
        let bin_path = bin.display().to_string();
        let base: Vec<(&str, String)> = vec![
            // Nothing listens on the discard port: the IMDS probe fails at once.
            ("IMDS_ENDPOINT", "http://127.0.0.1:9".into()),
            ("PATH", "/nonexistent".into()),
        ];
        let all: Vec<(&str, String)> = vec![
            ("AZURE_TENANT_ID", "t".into()),
            ("AZURE_CLIENT_ID", "c".into()),
            ("AZURE_FEDERATED_TOKEN_FILE", token_file.clone()),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi".into()),
            ("IDENTITY_HEADER", "h".into()),
            ("AZURE_CLIENT_SECRET", "s".into()),
            ("PATH", bin_path.clone()),
        ];
        // Each row drops the variables of the sources before it.
        let rows: Vec<(&[&str], Option<AzureSource>)> = vec![
            (&[], Some(AzureSource::WorkloadIdentity)),
            (
                &["AZURE_FEDERATED_TOKEN_FILE"],
                Some(AzureSource::ManagedIdentityAppService),
            ),
            (
                &["AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT"],
                Some(AzureSource::ServicePrincipal),
            ),
            (
                &[
                    "AZURE_FEDERATED_TOKEN_FILE",
                    "IDENTITY_ENDPOINT",
                    "AZURE_CLIENT_SECRET",
                ],
                Some(AzureSource::Cli),
            ),
            (
                &[
                    "AZURE_FEDERATED_TOKEN_FILE",
                    "IDENTITY_ENDPOINT",
                    "AZURE_CLIENT_SECRET",
                    "PATH",
                ],
                None,
            ),
        ];
        for (dropped, expected) in rows {
            let env: HashMap<String, String> = base
                .iter()
                .chain(all.iter().filter(|(k, _)| !dropped.contains(k)))
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let lookup = |k: &str| env.get(k).cloned();
            let got = AzureIdentity::resolve(&AzureOptions::default(), &lookup, http.clone()).await;
            match expected {
                Some(source) => assert_eq!(got.unwrap().source, source, "without {dropped:?}"),
                None => {
                    let err = got.unwrap_err().to_string();
                    for named in [
                        "workload identity",
                        "managed identity",
                        "service principal",
                        "az is not on PATH",
                    ] {
                        assert!(err.contains(named), "{err}");
                    }
                }
            }
        }
        // A federated token file that is not there: `auto` moves on to managed identity.
        let env: HashMap<String, String> = all
            .iter()
            .chain(base.iter())
            .map(|(k, v)| {
                let v = if *k == "AZURE_FEDERATED_TOKEN_FILE" {
                    "/nonexistent/token".to_string()
                } else {
                    v.clone()
                };
                (k.to_string(), v)
            })
            .collect();
        let lookup = |k: &str| env.get(k).cloned();
        let id = AzureIdentity::resolve(&AzureOptions::default(), &lookup, http.clone())
            .await
            .unwrap();
        assert_eq!(id.source, AzureSource::ManagedIdentityAppService);
        // A certificate that cannot be read: `auto` falls through to the CLI and says why
        // when nothing else is left; `service-principal` named explicitly fails on it.
        let cert_env = |path: &str| -> HashMap<String, String> {
            [
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_CLIENT_CERTIFICATE_PATH", missing_cert.as_str()),
                ("IMDS_ENDPOINT", "http://127.0.0.1:9"),
                ("PATH", path),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let env = cert_env(&bin_path);
        let lookup = |k: &str| env.get(k).cloned();
        let id = AzureIdentity::resolve(&AzureOptions::default(), &lookup, http.clone())
            .await
            .unwrap();
        assert_eq!(id.source, AzureSource::Cli);
        let env = cert_env("/nonexistent");
        let lookup = |k: &str| env.get(k).cloned();
        let err = AzureIdentity::resolve(&AzureOptions::default(), &lookup, http.clone())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("AZURE_CLIENT_CERTIFICATE_PATH"), "{err}");
        let sp = AzureOptions {
            kind: AzureAuthKind::ServicePrincipal,
            ..Default::default()
        };
        let err = AzureIdentity::resolve(&sp, &lookup, http)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }
}
