//! Fetching one page: authentication (API key, bearer, SigV4 re-signed on every attempt; in
//! [`auth`]), a bounded body read, and retries decided by [`retry::classify`] (API Gateway's
//! rules) and paced by the one retry module ([`RetryPolicy::next_step`]). Nothing here knows
//! about pagination; the caller passes the URL.
//!
//! Credentials kept in files (`--api-key-file`, `--bearer-token-file`) are looked at on every
//! request and re-read when the file changed, and once more when the API refuses them (401 or
//! 403): a token rotated mid-run is picked up instead of failing every page from then on.
//! Upstream error text reaches errors only through [`upstream::api_message`], which cuts
//! quoted requests and masks live secrets.
//!
//! [`retry::classify`]: crate::source::retry::classify
//! [`upstream::api_message`]: crate::upstream::api_message

mod auth;
mod body;
mod inflate;

#[doc(hidden)]
pub use body::gunzip_page;

use crate::clock::{Clock, SystemClock};
use crate::config::{ApiAuth, RetryPolicy, SourceConfig};
use crate::identity::aws::{AwsCredentials, AwsCredentialsError};
use crate::identity::sigv4::SignError;
use crate::report::{Event, Reporter};
use crate::retry::Step;
use crate::run_tag::RunTag;
use crate::secret::{redact_url, SecretSource};
use crate::source::page_size::{is_integration_timeout, PageSizing};
use crate::source::request::{BoundRequest, PageRequest};
pub use crate::source::retry::{backoff, classify, retry_after, Decision};
use crate::source::trace::{request_ids, AttemptTrace};
use crate::source::upstream::{auth_hint, status_hint};
use crate::upstream::api_message;
use auth::Auth;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use url::Url;

/// A page as received.
#[derive(Debug, Clone)]
pub struct FetchedPage {
    pub url: Url,
    pub headers: HeaderMap,
    /// The body, decompressed.
    pub body: Bytes,
    /// Every attempt it took, the last the one that gave this page (for the run's lineage).
    pub attempts: Vec<AttemptTrace>,
}

/// Why a page could not be fetched. URLs are redacted; page numbers start at 1.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("page {page}: {method} {url} was refused ({status}): {message}. {hint}")]
    Auth {
        page: u64,
        method: Verb,
        url: String,
        status: u16,
        message: String,
        hint: String,
    },
    #[error("page {page}: {method} {url} returned {status}: {message}{hint}")]
    Status {
        page: u64,
        method: Verb,
        url: String,
        status: u16,
        message: String,
        hint: String,
    },
    #[error("page {page}: the API key's usage-plan quota is used up (429 Limit Exceeded) at {url}. Retrying cannot help until the quota resets; raise the plan's quota or run again later")]
    QuotaExceeded { page: u64, url: String },
    #[error("page {page}: the TLS certificate of {url} is not trusted: {message}. If a proxy or your organisation inspects TLS, or the API uses a private CA, pass its CA certificate (PEM) with --ca-bundle PATH or SSL_CERT_FILE")]
    Tls {
        page: u64,
        url: String,
        message: String,
    },
    #[error("page {page}: could not reach {url}: {message}. Check the URL, DNS, your proxy settings (HTTPS_PROXY/NO_PROXY) and that the API is deployed")]
    Connect {
        page: u64,
        url: String,
        message: String,
    },
    #[error("page {page}: {method} {url} failed {attempts} times over {elapsed_s:.1}s; last error: {last}. Raise --max-retries or --retry-deadline if the API is known to be slow")]
    RetriesExhausted {
        page: u64,
        method: Verb,
        url: String,
        attempts: u32,
        elapsed_s: f64,
        last: String,
    },
    #[error("page {page}: the API asked to be left alone for {after_s} s (Retry-After) before {method} {url}, longer than --max-retry-after ({max_s} s). Stopped; the checkpoint is kept: run the same command again at or after {rerun_at} to resume, or raise --max-retry-after")]
    RetryAfterTooLong {
        page: u64,
        method: Verb,
        url: String,
        after_s: u64,
        max_s: u64,
        /// RFC 3339 time (UTC) from which the API said it would answer again.
        rerun_at: String,
    },
    #[error("page {page}: the response from {url} is larger than --max-page-bytes ({limit} bytes); ask for smaller pages or raise the limit")]
    TooLarge { page: u64, url: String, limit: u64 },
    #[error("page {page} from {url}: {message}")]
    BadPage {
        page: u64,
        url: String,
        message: String,
    },
    #[error("POST {url} failed: {reason}. The request may have reached the API, so it is not sent again (it could start a second export); run the same command again once the API answers")]
    PostFailed { url: String, reason: String },
    #[error("POST {url} was refused ({status}): {message}{hint}")]
    PostRefused {
        url: String,
        status: u16,
        message: String,
        hint: String,
    },
    #[error(transparent)]
    Credentials(#[from] AwsCredentialsError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("no bearer token for the API from the Azure identity: {0}")]
    BearerToken(String),
    /// Boxed: the provider's refusal carries several strings.
    #[error(transparent)]
    OAuth2(Box<crate::identity::oauth2::OAuth2Error>),
    #[error("invalid request header {name:?}: {reason}")]
    Header { name: String, reason: String },
}

impl From<crate::identity::oauth2::OAuth2Error> for SourceError {
    fn from(e: crate::identity::oauth2::OAuth2Error) -> Self {
        SourceError::OAuth2(Box::new(e))
    }
}

impl SourceError {
    /// Whether the failure is about credentials (for the exit code).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            SourceError::Auth { .. }
                | SourceError::PostRefused {
                    status: 401 | 403,
                    ..
                }
                | SourceError::Credentials(_)
                | SourceError::Sign(_)
                | SourceError::BearerToken(_)
                | SourceError::OAuth2(_)
        )
    }
}

/// Fetches pages of one API. Cheap to clone (a partitioned run gives each partition one).
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    auth: Auth,
    auth_config: ApiAuth,
    /// `x-api-key` sent alongside iam or bearer auth (an API Gateway usage plan).
    usage_plan_key: Option<SecretSource>,
    headers: HeaderMap,
    retry: RetryPolicy,
    max_page_bytes: u64,
    /// How a position is turned into the request sent (method, query template, body).
    request: Arc<BoundRequest>,
    /// The last page body's length: the next body's buffer starts at about that size
    /// rather than growing from empty (reallocations and copies were 5-9% of a pull's CPU).
    /// Shared by clones: the partitions of one listing have pages alike.
    body_hint: Arc<std::sync::atomic::AtomicUsize>,
    /// The time of day: credentials' freshness, signatures, `Retry-After` dates (a fake in
    /// tests). Waits and the retry deadline run on the monotonic clock.
    clock: Arc<dyn Clock>,
    /// The run the requests belong to: its id goes into the `User-Agent`.
    run: RunTag,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("auth", &self.auth_config.kind())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for `config`; for IAM auth, `credentials` supplies AWS credentials (the
    /// standard chain when `None`).
    pub async fn new(
        config: &SourceConfig,
        http: reqwest::Client,
        credentials: Option<Arc<AwsCredentials>>,
    ) -> Result<Self, SourceError> {
        let auth = Auth::new(&config.auth, credentials).await?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| SourceError::Header {
                name: name.clone(),
                reason: e.to_string(),
            })?;
            let mut v = HeaderValue::from_str(value.expose()).map_err(|e| SourceError::Header {
                name: name.clone(),
                reason: e.to_string(),
            })?;
            v.set_sensitive(true);
            headers.append(n, v);
        }
        Ok(Self {
            http,
            auth,
            auth_config: config.auth.clone(),
            usage_plan_key: config.usage_plan_key.clone(),
            headers,
            retry: config.retry.clone(),
            max_page_bytes: config.max_page_bytes,
            request: Arc::new(BoundRequest::plain()),
            body_hint: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            clock: Arc::new(SystemClock),
            run: RunTag::new(),
        })
    }

    /// The same client naming `run` in its `User-Agent` (`gatelake/<version> run/<id>`).
    pub fn with_run_tag(mut self, run: RunTag) -> Self {
        self.run = run;
        self
    }

    /// The run the requests name; a run sets its id here once it knows it.
    pub fn run_tag(&self) -> &RunTag {
        &self.run
    }

    /// The same client sending each page's request as `request` renders it (`--method POST`,
    /// a body template, query templates), bound to the run by `source::request`.
    pub fn with_request(mut self, request: BoundRequest) -> Self {
        self.request = Arc::new(request);
        self
    }

    /// The request sent for `position` (method, URL with the query template, body with the
    /// pointer placed): what the lineage records of a page.
    pub fn sent(&self, position: &Url) -> PageRequest {
        self.request.render(position)
    }

    /// The same client on another clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The Entra credential that supplies bearer tokens for [`ApiAuth::BearerFromAzure`].
    pub fn with_bearer_credential(
        mut self,
        credential: Arc<dyn azure_core::credentials::TokenCredential>,
    ) -> Self {
        if let Auth::BearerFrom { credential: c, .. } = &mut self.auth {
            *c = Some(credential);
        }
        self
    }

    /// The OAuth2 provider that supplies bearer tokens for [`ApiAuth::OAuth2`].
    pub fn with_oauth2(mut self, provider: Arc<crate::identity::oauth2::OAuth2Provider>) -> Self {
        if let Auth::OAuth2(p) = &mut self.auth {
            *p = Some(provider);
        }
        self
    }

    /// GET `url` (page number `page`, for messages and events), retrying transient failures.
    pub async fn fetch(
        &self,
        url: &Url,
        page: u64,
        reporter: &dyn Reporter,
    ) -> Result<FetchedPage, SourceError> {
        self.fetch_shrinking(url, page, reporter, None).await
    }

    /// Like [`ApiClient::fetch`], and when the API answers API Gateway's integration timeout
    /// (504 "Endpoint request timed out") and `sizing` can ask for the same records in smaller
    /// pages, the retry does that (and says so); see `source::page_size` for the rules. The
    /// returned page's `url` is the one that worked.
    pub async fn fetch_shrinking(
        &self,
        url: &Url,
        page: u64,
        reporter: &dyn Reporter,
        sizing: Option<&PageSizing>,
    ) -> Result<FetchedPage, SourceError> {
        let started = Instant::now();
        let mut url = url.clone();
        // What is sent for this position: the method, the URL with the query template, the
        // body with the pointer placed (see `source::request`); re-rendered if the URL moves.
        let mut sent = self.request.render(&url);
        let mut shown = redact_url(&sent.url);
        let mut attempt: u32 = 0;
        let mut reloaded = false;
        let mut trace = Vec::new();
        loop {
            attempt += 1;
            let outcome = match self
                .attempt(
                    &sent.method,
                    &sent.url,
                    sent.body.as_ref(),
                    page,
                    &shown,
                    &mut trace,
                )
                .await
            {
                // An OAuth2 token the API says is no longer valid: once more with a new one.
                Err(SourceError::Auth { status: 401, .. })
                    if !reloaded && self.oauth2_refused() =>
                {
                    reloaded = true;
                    reporter.report(Event::Warning {
                        message: format!("page {page}: the API refused the OAuth2 access token (401 invalid_token) before its expiry; the request is retried once with a new token")
                    });
                    continue;
                }
                // A refused credential read from a file that has changed since (rotated
                // mid-run): one more try with the new value.
                Err(SourceError::Auth { status, .. }) if !reloaded && self.reload_credentials() => {
                    reloaded = true;
                    reporter.report(Event::Warning {
                        message: format!(
                            "page {page}: the API refused the credential ({status}); its file has changed since it was read, so the request is retried with the new value"
                        ),
                    });
                    continue;
                }
                other => other?,
            };
            let (after, mut reason) = match outcome {
                Ok(mut fetched) => {
                    if let Some(sizing) = sizing {
                        sizing.after_success(&url);
                    }
                    // Each attempt names its request only where it differs from the page's.
                    for a in &mut trace {
                        a.request = a.request.take().filter(|r| *r != shown);
                    }
                    fetched.attempts = trace;
                    // Paginators read the position, not the rendered request.
                    fetched.url = url;
                    return Ok(fetched);
                }
                Err(retry) => retry,
            };
            // Retrying cannot make a certificate trusted, and the fix is not DNS or a proxy.
            if is_certificate_problem(&reason) {
                return Err(SourceError::Tls {
                    page,
                    url: shown,
                    message: reason,
                });
            }
            if let Some(sizing) = sizing.filter(|_| is_integration_timeout(&reason)) {
                match sizing.after_timeout(&url) {
                    Some(smaller) => {
                        reporter.report(Event::Warning {
                            message: format!(
                                "page {page}: {reason} (API Gateway stops integrations after 29 s); asking for smaller pages: {}",
                                redact_url(&smaller)
                            ),
                        });
                        url = smaller;
                        sent = self.request.render(&url);
                        shown = redact_url(&sent.url);
                        continue;
                    }
                    // At the floor: retried as any transient failure; said if it persists.
                    None => {
                        reason = format!(
                            "{reason} (at the smallest page size gatelake asks for, {}: 1/16 of the configured size; if the API needs smaller pages, lower --page-size)",
                            sizing.floor()
                        )
                    }
                }
            }
            self.pause(
                page,
                attempt,
                after,
                reason,
                started,
                (verb(&sent.method), &shown),
                reporter,
            )
            .await?;
        }
    }

    /// Before attempt `attempt + 1`: fail if the attempts or the deadline are used up, or the
    /// API asks for a wait past `--max-retry-after`; else report the retry and wait.
    #[allow(clippy::too_many_arguments)] // one attempt's facts, each used once
    async fn pause(
        &self,
        page: u64,
        attempt: u32,
        after: Option<Duration>,
        reason: String,
        started: Instant,
        (method, shown): (Verb, &str),
        reporter: &dyn Reporter,
    ) -> Result<(), SourceError> {
        let elapsed = started.elapsed();
        // An API that cannot be reached three times running will not be reached by the
        // fourth: a wrong URL, DNS or proxy fails fast, with the fix named.
        let connect = reason.starts_with("connect");
        let policy = RetryPolicy {
            max_attempts: if connect {
                self.retry.max_attempts.min(3)
            } else {
                self.retry.max_attempts
            },
            ..self.retry.clone()
        };
        let delay = match policy.next_step(attempt, elapsed, after) {
            Step::Sleep(d) => d,
            Step::TooLong(after) => {
                return Err(retry_after_too_long(
                    page,
                    method,
                    shown.to_string(),
                    after,
                    &self.retry,
                    self.clock.now(),
                ))
            }
            Step::Exhausted if connect => {
                return Err(SourceError::Connect {
                    page,
                    url: shown.to_string(),
                    message: reason,
                })
            }
            Step::Exhausted => {
                return Err(SourceError::RetriesExhausted {
                    page,
                    method,
                    url: shown.to_string(),
                    attempts: attempt,
                    elapsed_s: elapsed.as_secs_f64(),
                    last: reason,
                })
            }
        };
        tracing::debug!(page, attempt, ?delay, %reason, "retrying");
        reporter.report(Event::Retrying {
            page,
            attempt,
            delay,
            reason,
        });
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// One attempt: `Ok(Ok(page))`, `Ok(Err((retry_after, reason)))` to retry, or a final
    /// error. Each attempt that was sent is added to `trace` (status, duration, request ids).
    async fn attempt(
        &self,
        method: &reqwest::Method,
        url: &Url,
        body: Option<&Bytes>,
        page: u64,
        shown: &str,
        trace: &mut Vec<AttemptTrace>,
    ) -> Result<Result<FetchedPage, (Option<Duration>, String)>, SourceError> {
        let req = self.request(method, url, body).await?;
        // `shown` is redacted; headers (which carry the credentials) are never logged.
        tracing::debug!("page {page}: {method} {shown}");
        let sent = Instant::now();
        let ms = |sent: Instant| u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut resp = match self.http.execute(req).await {
            Ok(r) => r,
            Err(e) => {
                let reason = transport_reason(&e);
                trace.push(AttemptTrace {
                    status: None,
                    ms: ms(sent),
                    error: Some(reason.clone()),
                    request: Some(shown.to_string()),
                    ..AttemptTrace::default()
                });
                return Ok(Err((None, reason)));
            }
        };
        let status = resp.status().as_u16();
        tracing::debug!("page {page}: {status} from {shown}");
        let headers = resp.headers().clone();
        let ids = request_ids(&headers);
        let result = self
            .read_answer(&mut resp, method, url, page, shown, status, headers)
            .await;
        trace.push(AttemptTrace {
            status: Some(status),
            ms: ms(sent),
            request_ids: ids,
            error: match &result {
                Ok(Ok(_)) => None,
                Ok(Err((_, reason))) => Some(reason.clone()),
                Err(e) => Some(e.to_string()),
            },
            request: Some(shown.to_string()),
        });
        result
    }

    /// The rest of an attempt once the response's head is in: the body, within the size
    /// limit, and what the status means.
    #[allow(clippy::too_many_arguments)]
    async fn read_answer(
        &self,
        resp: &mut reqwest::Response,
        method: &reqwest::Method,
        url: &Url,
        page: u64,
        shown: &str,
        status: u16,
        headers: HeaderMap,
    ) -> Result<Result<FetchedPage, (Option<Duration>, String)>, SourceError> {
        if resp.status().is_redirection() {
            let to = headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(crate::secret::redact_url_str)
                .unwrap_or_default();
            return Err(SourceError::Status {
                page,
                method: verb(method),
                url: shown.to_string(),
                status,
                message: format!("redirected to {to}"),
                hint: ". Redirects to another host are not followed (credentials would go with them): use the final URL as --url".into(),
            });
        }
        // A broken stream (truncated body, damaged gzip) is transient.
        let body = match self.read_body(resp, &headers, status).await {
            Ok(body) => body,
            Err(body::BodyError::TooLarge) => {
                return Err(SourceError::TooLarge {
                    page,
                    url: shown.to_string(),
                    limit: self.max_page_bytes,
                })
            }
            Err(body::BodyError::Broken(why)) => {
                return Ok(Err((None, format!("reading the body failed: {why}"))))
            }
        };
        if (200..300).contains(&status) {
            return Ok(Ok(FetchedPage {
                url: url.clone(),
                headers,
                body,
                attempts: Vec::new(),
            }));
        }
        match classify(status, &headers, &body, self.clock.now()) {
            Decision::Retry { after, reason } => Ok(Err((after, reason))),
            Decision::Quota => Err(SourceError::QuotaExceeded {
                page,
                url: shown.to_string(),
            }),
            Decision::Fail => {
                let message = api_message(&body);
                if let (401, Auth::OAuth2(Some(p))) = (status, &self.auth) {
                    p.note_refusal(&headers);
                }
                if status == 401 || status == 403 {
                    Err(SourceError::Auth {
                        page,
                        method: verb(method),
                        url: shown.to_string(),
                        status,
                        hint: auth_hint(status, &message, &self.auth_config),
                        message,
                    })
                } else {
                    Err(SourceError::Status {
                        page,
                        method: verb(method),
                        url: shown.to_string(),
                        status,
                        message,
                        hint: status_hint(status).to_string(),
                    })
                }
            }
        }
    }
}

/// The error for a `Retry-After` past `policy.max_retry_after`, with the time to run again.
fn retry_after_too_long(
    page: u64,
    method: Verb,
    url: String,
    after: Duration,
    policy: &RetryPolicy,
    now: SystemTime,
) -> SourceError {
    let at = time::OffsetDateTime::from(now) + after;
    // Whole seconds, rounded up: "at or after" must not name a moment before the API's.
    let at = at.replace_nanosecond(0).unwrap_or(at) + time::Duration::seconds(1);
    SourceError::RetryAfterTooLong {
        page,
        method,
        url,
        after_s: after.as_secs(),
        max_s: policy.max_retry_after.as_secs(),
        rerun_at: at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| at.unix_timestamp().to_string()),
    }
}

impl ApiClient {
    /// POST `body` (JSON) to `url` — an action with a side effect, such as starting an
    /// export. Retried only when the request cannot have reached the API's backend: a
    /// connection that failed, or 429 throttling (API Gateway throttles before the
    /// integration runs). Any other failure (a 5xx, a timeout) may have started the action,
    /// so it is not repeated: [`SourceError::PostFailed`] says so.
    pub async fn post_json(
        &self,
        url: &Url,
        body: Bytes,
        reporter: &dyn Reporter,
    ) -> Result<FetchedPage, SourceError> {
        let started = Instant::now();
        let shown = redact_url(url);
        let mut attempt: u32 = 0;
        let mut trace = Vec::new();
        loop {
            attempt += 1;
            match self
                .attempt(
                    &reqwest::Method::POST,
                    url,
                    Some(&body),
                    0,
                    &shown,
                    &mut trace,
                )
                .await
            {
                Ok(Ok(page)) => return Ok(page),
                Ok(Err((after, reason))) => {
                    if !(reason.starts_with("429") || reason.starts_with("connect")) {
                        return Err(SourceError::PostFailed { url: shown, reason });
                    }
                    self.pause(
                        0,
                        attempt,
                        after,
                        reason,
                        started,
                        (Verb::Post, &shown),
                        reporter,
                    )
                    .await?;
                }
                Err(SourceError::Auth {
                    status,
                    message,
                    hint,
                    ..
                }) => {
                    return Err(SourceError::PostRefused {
                        url: shown,
                        status,
                        message,
                        hint: format!(". {hint}"),
                    })
                }
                Err(SourceError::Status {
                    status,
                    message,
                    hint,
                    ..
                }) => {
                    return Err(SourceError::PostRefused {
                        url: shown,
                        status,
                        message,
                        hint,
                    })
                }
                Err(other) => return Err(other),
            }
        }
    }
}

/// The method of a page request, as messages name it (one byte: errors stay small).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        })
    }
}

fn verb(method: &reqwest::Method) -> Verb {
    if *method == reqwest::Method::POST {
        Verb::Post
    } else {
        Verb::Get
    }
}

/// Whether a transport failure's reason (its error chain, as [`transport_reason`] words it)
/// is a TLS certificate the client does not trust: an unknown issuer, an expired or
/// self-signed certificate, a name mismatch.
fn is_certificate_problem(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    [
        "certificate",
        "unknownissuer",
        "unknown issuer",
        "self-signed",
        "self signed",
    ]
    .iter()
    .any(|needle| r.contains(needle))
}

/// A short reason for a transport error, without the URL (which reqwest includes, possibly
/// with secrets in its query).
fn transport_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connect"
    } else if e.is_decode() {
        "corrupt body"
    } else if e.is_body() {
        "body"
    } else {
        "request"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_to_run_again_counts_from_the_client_clock_rounded_up() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_250);
        let policy = RetryPolicy::default();
        let err = retry_after_too_long(
            3,
            Verb::Get,
            "u".into(),
            Duration::from_secs(3600),
            &policy,
            now,
        );
        match err {
            SourceError::RetryAfterTooLong {
                after_s,
                max_s,
                rerun_at,
                ..
            } => {
                assert_eq!((after_s, max_s), (3600, 300));
                // 2027-01-15T08:00:00.25Z + 1 h, rounded up to the next whole second.
                assert_eq!(rerun_at, "2027-01-15T09:00:01Z");
            }
            other => panic!("{other:?}"),
        }
    }
}
