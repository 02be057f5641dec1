//! AWS credentials for signing API requests.
//!
//! [`AwsCredentials`] hands out credentials that are valid for a while yet, fetching new ones
//! from its provider before the cached ones expire, so a pull that runs longer than a session
//! keeps signing with fresh credentials. They live in the one token cache
//! ([`crate::identity::token_cache`]), whose refresh margin comes from the expiry STS actually
//! returned (an STS that shortens sessions gets a shorter margin, not an exchange per request):
//! - more than the refresh margin left: the cached credentials are used;
//! - inside the margin but with more than half of it left: the cached credentials are used and
//!   *one* background refresh is started, so the pipeline never waits on STS;
//! - less than that (or none yet): callers wait for one shared refresh.
//!
//! The clock is a parameter ([`AwsCredentials::get`] takes `now`), so refresh is tested with a
//! fake clock.
//!
//! Providers: the standard AWS chain (env, profile, web identity file, container, IMDS), or
//! [`WebIdentityProvider`] — `--aws-role-arn` plus a [`WebIdentityTokenSource`] exchanged with
//! STS `AssumeRoleWithWebIdentity`. Its failures say which claim (`aud`, `iss`, `sub`) to check
//! in which trust policy; transient STS failures (`IDPCommunicationError`, throttling) are
//! retried, a bounded number of times, by the one retry module ([`sts_retry_policy`]).

use crate::identity::claims::TokenClaims;
use crate::identity::token_cache::{Freshness, TokenCache};
use crate::identity::web_identity::{claims_of, WebIdentityTokenSource};
use crate::retry::{Attempt, GaveUp, Retrier, RetryPolicy};
use crate::run_tag::RunTag;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum AwsCredentialsError {
    #[error("no AWS credentials found for --api-auth iam: {0}. Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), AWS_PROFILE, or --aws-role-arn with --web-identity")]
    Unavailable(String),
    #[error("AWS credentials could not be loaded within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    WebIdentity(String),
}

#[derive(Debug)]
struct Inner {
    provider: SharedCredentialsProvider,
    /// Keyed by the run id the credentials' session names (`""`: none): when a run sets
    /// another id, the next request exchanges again under the run's name.
    cache: TokenCache<String, Credentials>,
    run: Option<RunTag>,
    background: AtomicBool,
    timeout: Duration,
}

/// Cached, refreshed AWS credentials. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    inner: Arc<Inner>,
}

impl AwsCredentials {
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        Self::with_run(provider, None)
    }

    /// Credentials whose session names the run `run` names (see [`WebIdentityProvider`]):
    /// exchanged again when the run's id changes.
    pub fn for_run(provider: SharedCredentialsProvider, run: RunTag) -> Self {
        Self::with_run(provider, Some(run))
    }

    fn with_run(provider: SharedCredentialsProvider, run: Option<RunTag>) -> Self {
        Self {
            inner: Arc::new(Inner {
                provider,
                cache: TokenCache::default(),
                run,
                background: AtomicBool::new(false),
                timeout: Duration::from_secs(60),
            }),
        }
    }

    /// The standard AWS credential chain.
    pub async fn from_default_chain(region: &str) -> Result<Self, AwsCredentialsError> {
        Self::from_default_chain_with(region, None).await
    }

    /// The standard AWS credential chain; `http_client` carries the extra trusted roots
    /// ([`sdk_http_client`]) to the chain's own calls (SSO, STS for profiles, containers).
    pub async fn from_default_chain_with(
        region: &str,
        http_client: Option<SharedHttpClient>,
    ) -> Result<Self, AwsCredentialsError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()));
        if let Some(h) = http_client {
            loader = loader.http_client(h);
        }
        let config = loader.load().await;
        let provider = config.credentials_provider().ok_or_else(|| {
            AwsCredentialsError::Unavailable(
                "the AWS configuration has no credentials provider".into(),
            )
        })?;
        Ok(Self::new(provider))
    }

    /// Credentials that are usable at `now`; see the module docs for when they are refreshed.
    pub async fn get(&self, now: SystemTime) -> Result<Credentials, AwsCredentialsError> {
        match self.inner.cache.lookup(&self.key(), now) {
            Freshness::Fresh(c) => Ok(c),
            Freshness::Renew(c) => {
                self.refresh_in_background(now);
                Ok(c)
            }
            Freshness::Stale => self.refresh_now(now).await,
        }
    }

    /// The provider's answer right now, bypassing the cache (for `auth check`).
    pub async fn fetch_uncached(&self) -> Result<Credentials, AwsCredentialsError> {
        self.fetch().await
    }

    async fn fetch(&self) -> Result<Credentials, AwsCredentialsError> {
        let timeout = self.inner.timeout;
        tokio::time::timeout(timeout, self.inner.provider.provide_credentials())
            .await
            .map_err(|_| AwsCredentialsError::Timeout(timeout))?
            .map_err(|e| match &e {
                CredentialsError::ProviderError(_) | CredentialsError::InvalidConfiguration(_) => {
                    AwsCredentialsError::WebIdentity(crate::report::error_chain(&e))
                }
                _ => AwsCredentialsError::Unavailable(crate::report::error_chain(&e)),
            })
    }

    /// The cache key: the run id the session names.
    fn key(&self) -> String {
        self.inner
            .run
            .as_ref()
            .and_then(RunTag::run_id)
            .unwrap_or_default()
    }

    async fn refresh_now(&self, now: SystemTime) -> Result<Credentials, AwsCredentialsError> {
        self.inner
            .cache
            .get_or_fetch(&self.key(), now, || async {
                let c = self.fetch().await?;
                let expiry = c.expiry();
                Ok((c, expiry))
            })
            .await
    }

    fn refresh_in_background(&self, now: SystemTime) {
        if self.inner.background.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            // The foreground path retries (and reports) once the margin is used up.
            if let Err(e) = this.refresh_now(now).await {
                tracing::warn!("background refresh of AWS credentials failed: {e}");
            }
            this.inner.background.store(false, Ordering::SeqCst);
        });
    }
}

// ---------------------------------------------------------------------------------------------
// STS AssumeRoleWithWebIdentity
// ---------------------------------------------------------------------------------------------

/// How to assume a role with a web identity.
#[derive(Debug, Clone)]
pub struct WebIdentityConfig {
    pub role_arn: String,
    /// `--aws-role-session-name`; otherwise one is made from the token's identity and the job.
    pub session_name: Option<String>,
    pub job: String,
    pub duration: Duration,
    /// STS is called in this region (the regional endpoint).
    pub region: String,
    /// `AWS_ENDPOINT_URL_STS` (or `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Attempts for retryable STS failures, the first included.
    pub max_attempts: u32,
    /// The SDK's HTTP client with the tool's extra trusted roots ([`sdk_http_client`]);
    /// `None` = the SDK's default client (platform roots).
    pub http_client: Option<SharedHttpClient>,
}

/// Why the AWS SDK's HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SdkHttpError {
    #[error("cannot read the CA bundle {path} for STS: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA bundle {path} holds no PEM certificate the AWS SDK can use")]
    NoCertificates { path: std::path::PathBuf },
}

/// An HTTP client for the AWS SDK (STS) that trusts the platform's roots plus the PEM
/// bundles given (`--ca-bundle`, `SSL_CERT_FILE`), so STS goes through the same corporate TLS
/// inspection (and the tests' throwaway CA) as every other hop. The SDK keeps its own
/// hyper/rustls stack (aws-lc-rs, as ours), so the roots are handed to it rather than shared.
/// `None` when there are no extra roots: the SDK's default client is then used unchanged.
pub fn sdk_http_client(
    ca_bundles: &[std::path::PathBuf],
) -> Result<Option<SharedHttpClient>, SdkHttpError> {
    use aws_smithy_http_client::tls;
    use rustls_pki_types::pem::PemObject;
    if ca_bundles.is_empty() {
        return Ok(None);
    }
    let mut store = tls::TrustStore::default();
    for path in ca_bundles {
        let pem = std::fs::read(path).map_err(|source| SdkHttpError::Read {
            path: path.clone(),
            source,
        })?;
        // The SDK parses these lazily and panics on a bad one: check them here first.
        let parsed: Result<Vec<_>, _> =
            rustls_pki_types::CertificateDer::pem_slice_iter(&pem).collect();
        if parsed.map(|c| c.is_empty()).unwrap_or(true) {
            return Err(SdkHttpError::NoCertificates { path: path.clone() });
        }
        store = store.with_pem_certificate(pem);
    }
    let context = tls::TlsContext::builder()
        .with_trust_store(store)
        .build()
        .map_err(|_| SdkHttpError::NoCertificates {
            path: ca_bundles.first().cloned().unwrap_or_default(),
        })?;
    Ok(Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https(),
    ))
}

/// A [`ProvideCredentials`] that exchanges a web identity token for role credentials.
#[derive(Debug, Clone)]
pub struct WebIdentityProvider {
    sts: aws_sdk_sts::Client,
    retry: Retrier,
    config: WebIdentityConfig,
    source: Arc<dyn WebIdentityTokenSource>,
    assumed: AssumedRoleHandle,
    /// The run the session names (none: no run, as for `auth check`).
    run: Option<RunTag>,
}

/// Who the last exchange made us: STS's `AssumedRoleUser` and the session name (for the
/// manifest; never a credential).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssumedRole {
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub arn: Option<String>,
    pub session_name: String,
}

/// A shared view of [`AssumedRole`], filled by each exchange.
#[derive(Debug, Clone, Default)]
pub struct AssumedRoleHandle(Arc<std::sync::Mutex<Option<AssumedRole>>>);

impl AssumedRoleHandle {
    /// The role of the last successful exchange, if any.
    pub fn get(&self) -> Option<AssumedRole> {
        match self.0.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, role: AssumedRole) {
        match self.0.lock() {
            Ok(mut g) => *g = Some(role),
            Err(p) => *p.into_inner() = Some(role),
        }
    }
}

/// The STS client for `region` and an optional endpoint override. Used unsigned for the
/// web-identity exchange; `GetCallerIdentity` uses it with credentials.
pub fn sts_client(
    region: &str,
    endpoint_url: Option<&str>,
    credentials: Option<Credentials>,
    http_client: Option<SharedHttpClient>,
) -> aws_sdk_sts::Client {
    let mut b = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(region.to_string()))
        // Retried by the one retry module ([`sts_retry_policy`]), not by the SDK as well.
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_sts::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(10))
                .build(),
        );
    if let Some(ep) = endpoint_url {
        b = b.endpoint_url(ep);
    }
    if let Some(c) = credentials {
        b = b.credentials_provider(c);
    }
    if let Some(h) = http_client {
        b = b.http_client(h);
    }
    aws_sdk_sts::Client::from_conf(b.build())
}

/// The STS endpoint override from the environment (`AWS_ENDPOINT_URL_STS`, then
/// `AWS_ENDPOINT_URL`), as the AWS SDKs and CLI read it.
pub fn sts_endpoint_from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    env("AWS_ENDPOINT_URL_STS")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .filter(|v| !v.trim().is_empty())
}

/// A role session name that names the caller: `gatelake-<job>-<who>`, restricted to STS's
/// characters (`[A-Za-z0-9+=,.@_-]`) and length (2–64).
pub fn session_name(job: &str, who: Option<&str>) -> String {
    let clean = sts_name_chars;
    let mut name = format!("gatelake-{}", clean(job));
    if let Some(w) = who.filter(|w| !w.is_empty()) {
        name.push('-');
        name.push_str(&clean(w));
    }
    let mut name: String = name.chars().take(64).collect();
    while name.len() < 2 {
        name.push('-');
    }
    name
}

/// `base` (a [`session_name`]) ending in `-<run id>`, cut so that the run id always survives
/// STS's 64 characters: CloudTrail's `AssumeRoleWithWebIdentity` event and every call signed
/// with the session then name the run.
pub fn with_run_id(base: &str, run_id: &str) -> String {
    let run: String = sts_name_chars(run_id).chars().take(40).collect();
    let room = 64 - run.len() - 1;
    let head: String = base.chars().take(room).collect();
    format!("{}-{run}", head.trim_end_matches('-'))
}

/// `s` with every character STS refuses in a session name replaced by `-`.
fn sts_name_chars(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Who a token names, for the session name: GitHub's `repository`-like `sub`, Entra's `oid`
/// or app id, or the subject.
fn who_of(claims: &TokenClaims) -> Option<String> {
    let sub = claims.sub.as_deref().map(|s| {
        // repo:org/name:ref:refs/heads/main → org/name
        s.strip_prefix("repo:")
            .and_then(|r| r.split(':').next())
            .unwrap_or(s)
            .to_string()
    });
    claims.app_id.clone().or_else(|| claims.oid.clone()).or(sub)
}

/// What an STS failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsFailure {
    /// `IDPCommunicationError`, throttling, 5xx, timeouts: try again.
    Retry,
    /// Everything else.
    Terminal,
}

/// Classify an STS error code.
pub fn classify_sts(code: Option<&str>) -> StsFailure {
    match code {
        Some(
            "IDPCommunicationError"
            | "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "ServiceUnavailable"
            | "InternalFailure"
            | "InternalError",
        ) => StsFailure::Retry,
        // No code: a transport failure or a timeout.
        None => StsFailure::Retry,
        _ => StsFailure::Terminal,
    }
}

/// The message for a terminal STS failure, naming the claim and trust policy to check.
pub fn sts_failure_message(
    code: Option<&str>,
    message: Option<&str>,
    role_arn: &str,
    claims: &TokenClaims,
    source: &str,
) -> String {
    let iss = claims.iss.as_deref().unwrap_or("?");
    let aud = claims.aud.as_deref().unwrap_or("?");
    let sub = claims.sub.as_deref().unwrap_or("?");
    let provider = iss.trim_start_matches("https://").trim_end_matches('/');
    let msg = message.unwrap_or("");
    let lower = msg.to_ascii_lowercase();
    let what = format!(
        "STS AssumeRoleWithWebIdentity for {role_arn} failed ({}: {msg})",
        code.unwrap_or("error")
    );
    let fix = match code {
        _ if lower.contains("audience") => format!(
            "the token's audience (aud = {aud}) is not a client id (audience) of the IAM OIDC provider {provider}: add it there, or request a token for the registered audience with --web-identity-audience"
        ),
        Some("InvalidIdentityToken") if lower.contains("no openidconnect provider") || lower.contains("openid connect provider") => format!(
            "there is no IAM OIDC provider for the token's issuer (iss = {iss}): create one for exactly that URL (see examples/aws/)"
        ),
        Some("InvalidIdentityToken") => format!(
            "STS could not validate the {source} token: check the IAM OIDC provider for iss = {iss} (exact issuer URL, client id list contains aud = {aud}) and that the token is current"
        ),
        Some("ExpiredTokenException") | Some("ExpiredToken") => format!(
            "the {source} token expired before it was exchanged: check this machine's clock and that the token source is refreshed"
        ),
        Some("AccessDenied") => format!(
            "STS answers AccessDenied both for a role that does not exist and for a trust policy that does not match, so check both: that {role_arn} is the role's exact ARN (account id and name), and that its trust policy allows this token — Principal the federated OIDC provider for {provider} (the token's iss = {iss}), action sts:AssumeRoleWithWebIdentity, conditions {provider}:aud = {aud} and {provider}:sub = {sub} (StringEquals/StringLike)"
        ),
        Some("IDPRejectedClaim") => format!(
            "the identity provider rejected a claim: check sub = {sub} and aud = {aud}"
        ),
        Some("ValidationError") if lower.contains("duration") => "the session duration exceeds the role's maximum session duration: lower --aws-session-duration or raise the role's limit".to_string(),
        Some("RegionDisabledException") => "STS is not activated in this region for the account: activate it or use another region".to_string(),
        _ => format!("check the role ARN and its trust policy (aud = {aud}, iss = {iss}, sub = {sub})"),
    };
    format!("{what}: {fix}")
}

impl WebIdentityProvider {
    pub fn new(config: WebIdentityConfig, source: Arc<dyn WebIdentityTokenSource>) -> Self {
        let sts = sts_client(
            &config.region,
            config.endpoint_url.as_deref(),
            None,
            config.http_client.clone(),
        );
        Self {
            sts,
            retry: Retrier::new(sts_retry_policy(config.max_attempts)),
            config,
            source,
            assumed: AssumedRoleHandle::default(),
            run: None,
        }
    }

    /// The same provider naming `run` in its default session names, and noting there the
    /// session each exchange got.
    pub fn with_run_tag(mut self, run: RunTag) -> Self {
        // The exchange's `User-Agent` names the run too (CloudTrail's `userAgent`).
        let conf = self
            .sts
            .config()
            .to_builder()
            .interceptor(crate::identity::sdk_user_agent::RunUserAgent(run.clone()))
            .build();
        self.sts = aws_sdk_sts::Client::from_conf(conf);
        self.run = Some(run);
        self
    }

    /// Who each exchange made us (shared: it stays valid after the provider is moved).
    pub fn assumed_role(&self) -> AssumedRoleHandle {
        self.assumed.clone()
    }

    /// The token source's name (`azure`, `github`, …).
    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    async fn exchange(&self) -> Result<Credentials, CredentialsError> {
        let token = self
            .source
            .token()
            .await
            .map_err(|e| CredentialsError::provider_error(e.to_string()))?;
        let claims = claims_of(&token);
        let name = self.config.session_name.clone().unwrap_or_else(|| {
            let base = session_name(&self.config.job, who_of(&claims).as_deref());
            match self.run.as_ref().and_then(RunTag::run_id) {
                Some(run) => with_run_id(&base, &run),
                None => base,
            }
        });
        let duration = i32::try_from(self.config.duration.as_secs()).unwrap_or(3600);
        let (sts, role_arn) = (&self.sts, self.config.role_arn.as_str());
        let (name_ref, token_ref) = (name.as_str(), token.expose());
        let result = self
            .retry
            .run("STS AssumeRoleWithWebIdentity", |_| async move {
                let sent = sts
                    .assume_role_with_web_identity()
                    .role_arn(role_arn)
                    .role_session_name(name_ref)
                    .web_identity_token(token_ref)
                    .duration_seconds(duration)
                    .send()
                    .await;
                match sent {
                    Ok(out) => Attempt::Done(out),
                    Err(e) => {
                        let failure = match e.as_service_error() {
                            Some(se) => StsError {
                                code: se.code().map(str::to_string),
                                message: se.message().map(str::to_string),
                            },
                            None => StsError {
                                code: None,
                                message: Some(crate::report::error_chain(&e)),
                            },
                        };
                        match classify_sts(failure.code.as_deref()) {
                            StsFailure::Retry => Attempt::Transient {
                                error: failure,
                                after: None,
                            },
                            StsFailure::Terminal => Attempt::Fatal(failure),
                        }
                    }
                }
            })
            .await;
        let out = match result {
            Ok(out) => out,
            Err(GaveUp {
                error: StsError { code, message },
                attempts,
                ..
            }) => {
                let text = if code.is_none() {
                    format!(
                        "STS AssumeRoleWithWebIdentity for {} failed after {attempts} attempt(s): {}. Check AWS_ENDPOINT_URL_STS / the region, proxies and the network",
                        self.config.role_arn,
                        message.unwrap_or_default()
                    )
                } else {
                    sts_failure_message(
                        code.as_deref(),
                        message.as_deref(),
                        &self.config.role_arn,
                        &claims,
                        self.source.name(),
                    )
                };
                return Err(CredentialsError::provider_error(text));
            }
        };
        let Some(c) = out.credentials() else {
            return Err(CredentialsError::provider_error(
                "STS answered without credentials",
            ));
        };
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        let arn = out.assumed_role_user().map(|u| u.arn().to_string());
        if let Some(run) = &self.run {
            run.set_session(arn.clone(), name.clone());
        }
        self.assumed.set(AssumedRole {
            arn,
            session_name: name.clone(),
        });
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "gatelake-web-identity",
        ))
    }
}

/// One failed STS call: its error code (none for a transport failure or a timeout) and
/// message.
#[derive(Debug)]
struct StsError {
    code: Option<String>,
    message: Option<String>,
}

impl std::fmt::Display for StsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code.as_deref().unwrap_or("transport error"))
    }
}

/// How STS calls are retried: `max_attempts` in all (at least one), the first wait 200–400 ms
/// and doubling up to 12.8 s, the one retry module's equal jitter. The SDK's own retry is off
/// ([`sts_client`]), so this is the only one.
pub fn sts_retry_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: max_attempts.max(1),
        base: Duration::from_millis(400),
        cap: Duration::from_millis(12_800),
        deadline: Duration::from_secs(10 * 60),
        ..RetryPolicy::default()
    }
}

impl ProvideCredentials for WebIdentityProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.exchange())
    }
}

/// Who a set of AWS credentials is (STS `GetCallerIdentity`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallerIdentity {
    pub account: Option<String>,
    pub arn: Option<String>,
    pub user_id: Option<String>,
}

/// Ask STS who `credentials` are.
pub async fn caller_identity(
    credentials: Credentials,
    region: &str,
    endpoint_url: Option<&str>,
    http_client: Option<SharedHttpClient>,
) -> Result<CallerIdentity, String> {
    let sts = sts_client(region, endpoint_url, Some(credentials), http_client);
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(se) => format!(
                "STS GetCallerIdentity failed ({}: {})",
                se.code().unwrap_or("error"),
                se.message().unwrap_or("")
            ),
            None => format!(
                "STS GetCallerIdentity failed: {}",
                crate::report::error_chain(&e)
            ),
        })?;
    Ok(CallerIdentity {
        account: out.account().map(str::to_string),
        arn: out.arn().map(str::to_string),
        user_id: out.user_id().map(str::to_string),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Hands out credentials that expire at a fixed time, counting calls.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        expiry: SystemTime,
        delay: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let calls = self.calls.clone();
            let expiry = self.expiry;
            let delay = self.delay;
            future::ProvideCredentials::new(async move {
                tokio::time::sleep(delay).await;
                let n = calls.fetch_add(1, Ordering::SeqCst);
                Ok(Credentials::new(
                    format!("AKID{n}"),
                    "secret",
                    Some("token".into()),
                    Some(expiry),
                    "test",
                ))
            })
        }
    }

    fn base() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn counting(delay: Duration) -> (AwsCredentials, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let creds = AwsCredentials::new(SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            expiry: base() + Duration::from_secs(3600),
            delay,
        }));
        (creds, calls)
    }

    #[tokio::test]
    async fn refreshes_only_near_expiry() {
        let (creds, calls) = counting(Duration::ZERO);
        assert_eq!(creds.get(base()).await.unwrap().access_key_id(), "AKID0");
        // Still 50 minutes left: cached.
        let c = creds.get(base() + Duration::from_secs(600)).await.unwrap();
        assert_eq!(c.access_key_id(), "AKID0");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // One minute left (less than half the margin): refreshed before use.
        creds.get(base() + Duration::from_secs(3540)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn inside_the_margin_refreshes_in_the_background_without_waiting() {
        let (creds, calls) = counting(Duration::from_millis(200));
        creds.get(base()).await.unwrap();
        // Four minutes left: the cached credentials come back at once, one refresh starts.
        let started = std::time::Instant::now();
        let t = base() + Duration::from_secs(3360);
        let many = futures::future::join_all((0..8).map(|_| creds.get(t))).await;
        assert!(started.elapsed() < Duration::from_millis(150));
        assert!(many
            .iter()
            .all(|c| c.as_ref().unwrap().access_key_id() == "AKID0"));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "exactly one background refresh"
        );
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_refresh() {
        let (creds, calls) = counting(Duration::from_millis(50));
        let many = futures::future::join_all((0..16).map(|_| creds.get(base()))).await;
        assert!(many.iter().all(|c| c.is_ok()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn session_names_keep_the_run_id_whole() {
        let run = "20261207T031600Z-1a2b";
        assert_eq!(
            with_run_id(&session_name("orders", Some("org/repo")), run),
            format!("gatelake-orders-org-repo-{run}")
        );
        let long = with_run_id(&session_name(&"x".repeat(100), Some("y")), run);
        assert_eq!(long.len(), 64, "{long}");
        assert!(long.ends_with(&format!("-{run}")), "{long}");
        assert!(long
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)));
    }

    #[test]
    fn session_names_follow_sts_rules() {
        assert_eq!(
            session_name("orders", Some("org/repo")),
            "gatelake-orders-org-repo"
        );
        let long = session_name(&"x".repeat(100), Some("y"));
        assert_eq!(long.len(), 64);
        let odd = session_name("a b:c", Some("ü@x"));
        assert!(
            odd.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)),
            "{odd}"
        );
    }

    #[test]
    fn sts_failures_are_classified_and_explained() {
        assert_eq!(
            classify_sts(Some("IDPCommunicationError")),
            StsFailure::Retry
        );
        assert_eq!(classify_sts(Some("Throttling")), StsFailure::Retry);
        assert_eq!(
            classify_sts(Some("InvalidIdentityToken")),
            StsFailure::Terminal
        );
        assert_eq!(classify_sts(Some("AccessDenied")), StsFailure::Terminal);
        let claims = TokenClaims {
            iss: Some("https://token.actions.githubusercontent.example/".into()),
            aud: Some("sts.amazonaws.com".into()),
            sub: Some("repo:o/r:ref:refs/heads/main".into()),
            ..Default::default()
        };
        let m = sts_failure_message(
            Some("AccessDenied"),
            Some("Not authorized to perform sts:AssumeRoleWithWebIdentity"),
            "arn:aws:iam::1:role/r",
            &claims,
            "github",
        );
        assert!(
            m.contains(":sub = repo:o/r:ref:refs/heads/main")
                && m.contains("trust policy")
                && m.contains("arn:aws:iam::1:role/r is the role's exact ARN")
                && m.contains("iss = https://token.actions.githubusercontent.example/"),
            "{m}"
        );
        let m = sts_failure_message(
            Some("InvalidIdentityToken"),
            Some("Incorrect token audience"),
            "arn",
            &claims,
            "github",
        );
        assert!(
            m.contains("aud = sts.amazonaws.com") && m.contains("OIDC provider"),
            "{m}"
        );
        let m = sts_failure_message(
            Some("InvalidIdentityToken"),
            Some("Couldn't retrieve verification key"),
            "arn",
            &claims,
            "azure",
        );
        assert!(m.contains("iss = https://token.actions"), "{m}");
    }
}
