//! Fetching one page: authentication (API key, bearer, SigV4 re-signed on every attempt),
//! a bounded body read, and retries decided by one function, [`classify`], from data
//! ([`RetryPolicy`]). Nothing here knows about pagination; the caller passes the URL.
//!
//! Retry rules (API Gateway's behaviour): 429 "Too Many Requests" is throttling — wait
//! (honouring `Retry-After`) and retry; 429 "Limit Exceeded" is a used-up usage-plan quota —
//! retrying cannot help, so stop; 500/502/503/504, resets, timeouts and truncated or corrupt
//! bodies are transient; every other 4xx is the caller's mistake and is reported with the
//! most likely fix.

use crate::config::{ApiAuth, RetryPolicy, SourceConfig};
use crate::identity::aws::{AwsCredentials, AwsCredentialsError};
use crate::identity::sigv4::{sign_request, SignError};
use crate::report::{Event, Reporter};
use crate::secret::{redact_url, Secret};
use crate::source::paginate::Paginator;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
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
}

/// Why a page could not be fetched. URLs are redacted; page numbers start at 1.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("page {page}: GET {url} was refused ({status}): {message}. {hint}")]
    Auth {
        page: u64,
        url: String,
        status: u16,
        message: String,
        hint: String,
    },
    #[error("page {page}: GET {url} returned {status}: {message}{hint}")]
    Status {
        page: u64,
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
    #[error("page {page}: GET {url} failed {attempts} times over {elapsed_s:.1}s; last error: {last}. Raise --max-retries or --retry-deadline if the API is known to be slow")]
    RetriesExhausted {
        page: u64,
        url: String,
        attempts: u32,
        elapsed_s: f64,
        last: String,
    },
    #[error("page {page}: the response from {url} is larger than --max-page-bytes ({limit} bytes); ask for smaller pages or raise the limit")]
    TooLarge { page: u64, url: String, limit: u64 },
    #[error("page {page} from {url}: {message}")]
    BadPage {
        page: u64,
        url: String,
        message: String,
    },
    #[error(transparent)]
    Credentials(#[from] AwsCredentialsError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("no bearer token for the API from the Azure identity: {0}")]
    BearerToken(String),
    #[error("invalid request header {name:?}: {reason}")]
    Header { name: String, reason: String },
}

impl SourceError {
    /// Whether the failure is about credentials (for the exit code).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            SourceError::Auth { .. }
                | SourceError::Credentials(_)
                | SourceError::Sign(_)
                | SourceError::BearerToken(_)
        )
    }
}

/// What [`classify`] decided about one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Try again, after at least `after` when the server said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The usage plan's quota is exhausted.
    Quota,
    /// Don't retry.
    Fail,
}

/// The retry decision for a response status (with its headers and body).
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Decision {
    match status {
        429 => {
            if api_message(body)
                .to_ascii_lowercase()
                .contains("limit exceeded")
            {
                Decision::Quota
            } else {
                Decision::Retry {
                    after: retry_after(headers, now),
                    reason: "429 throttled".into(),
                }
            }
        }
        500 | 502 | 503 | 504 => Decision::Retry {
            after: retry_after(headers, now),
            reason: format!("{status} {}", api_message(body)),
        },
        _ => Decision::Fail,
    }
}

/// `Retry-After` as seconds or an HTTP date (relative to `now`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How long to wait before attempt `attempt + 1` (attempt counts from 1): exponential with
/// "equal jitter" (half fixed, half random) so waits never collapse to zero, capped; a
/// server's `Retry-After` is honoured as a minimum, within the cap.
pub fn backoff(policy: &RetryPolicy, attempt: u32, server: Option<Duration>) -> Duration {
    let exp = policy
        .base
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(policy.cap);
    let half = exp / 2;
    let jitter = half.mul_f64(rand::random::<f64>());
    let computed = half + jitter;
    match server {
        Some(s) => s.min(policy.cap).max(computed.min(s)),
        None => computed,
    }
}

/// The `message` of an API Gateway error body, or a short, printable prefix of the body.
pub fn api_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ApiGatewayError {
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<ApiGatewayError>(body) {
        if let Some(m) = e.message {
            return m;
        }
    }
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        "(empty body)".into()
    } else if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

/// The most likely fix for an API Gateway refusal.
fn auth_hint(status: u16, message: &str, auth: &ApiAuth) -> String {
    let m = message.to_ascii_lowercase();
    if m.contains("signature expired") || m.contains("not yet current") {
        "The request's time is outside API Gateway's 5-minute window: this machine's clock is off. Sync it (NTP) and retry".into()
    } else if m.contains("missing authentication token") {
        "API Gateway says this for a path or stage that does not exist, and for unsigned requests to IAM-protected routes: check the URL's stage and resource path, and use --api-auth iam if the route uses IAM authorization".into()
    } else if m.contains("security token included in the request is invalid") {
        "The AWS credentials are invalid or expired: refresh them (new session token, `aws sso login`) or check AWS_PROFILE".into()
    } else if m.contains("signature we calculated does not match") {
        "Check the AWS secret key and the signing region (--region must be the API's region)".into()
    } else if m.contains("not authorized to perform") {
        "The AWS identity lacks execute-api:Invoke on this API: grant it in the identity's IAM policy or the API's resource policy".into()
    } else if status == 401 {
        "The bearer token was rejected: check that it has not expired and that its audience and issuer match the API's authorizer".into()
    } else {
        match auth {
            ApiAuth::ApiKey(_) => "Check the API key and that it belongs to a usage plan attached to this API stage".into(),
            ApiAuth::None => "The API requires authentication: choose --api-auth iam, bearer or api-key".into(),
            ApiAuth::Bearer(_) | ApiAuth::BearerFromAzure { .. } => "The token is valid but not allowed here: check the authorizer's scopes or policy".into(),
            ApiAuth::Iam { .. } => "The signed identity is not allowed to call this API: check its IAM policy and the API's resource policy".into(),
        }
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        400 => ". The API rejected the request: check the query parameters (page size, cursor parameter name)",
        404 => ". Check the URL's path and stage",
        _ => "",
    }
}

enum Auth {
    None,
    ApiKey(Secret),
    Bearer(Secret),
    Iam {
        region: String,
        credentials: Arc<AwsCredentials>,
    },
    /// An Entra token for `scope`, renewed by the credential's cache.
    BearerFrom {
        scope: String,
        credential: Option<Arc<dyn azure_core::credentials::TokenCredential>>,
    },
}

/// Fetches pages of one API.
pub struct ApiClient {
    http: reqwest::Client,
    auth: Auth,
    auth_config: ApiAuth,
    headers: HeaderMap,
    retry: RetryPolicy,
    max_page_bytes: u64,
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
        let auth = match &config.auth {
            ApiAuth::None => Auth::None,
            ApiAuth::ApiKey(k) => Auth::ApiKey(k.clone()),
            ApiAuth::Bearer(t) => Auth::Bearer(t.clone()),
            ApiAuth::Iam { region } => Auth::Iam {
                region: region.clone(),
                credentials: match credentials {
                    Some(c) => c,
                    None => Arc::new(AwsCredentials::from_default_chain(region).await?),
                },
            },
            ApiAuth::BearerFromAzure { audience } => Auth::BearerFrom {
                scope: crate::identity::azure::scope_for(audience),
                credential: None,
            },
        };
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
            headers,
            retry: config.retry.clone(),
            max_page_bytes: config.max_page_bytes,
        })
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

    /// Build and authenticate one attempt of GET `url`.
    async fn request(&self, url: &Url) -> Result<reqwest::Request, SourceError> {
        let mut req = reqwest::Request::new(reqwest::Method::GET, url.clone());
        let h = req.headers_mut();
        h.extend(self.headers.clone());
        h.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        match &self.auth {
            Auth::None => {}
            Auth::ApiKey(k) => {
                let mut v = HeaderValue::from_str(k.expose()).map_err(|_| SourceError::Header {
                    name: "x-api-key".into(),
                    reason: "the API key contains characters not allowed in a header".into(),
                })?;
                v.set_sensitive(true);
                h.insert("x-api-key", v);
            }
            Auth::BearerFrom { scope, credential } => {
                let Some(credential) = credential else {
                    return Err(SourceError::Credentials(AwsCredentialsError::Unavailable(
                        "--bearer-from azure needs an Azure identity (internal: none was given)"
                            .into(),
                    )));
                };
                let token = credential
                    .get_token(&[scope.as_str()], None)
                    .await
                    .map_err(|e| SourceError::BearerToken(e.to_string()))?;
                let mut v = HeaderValue::from_str(&format!("Bearer {}", token.token.secret()))
                    .map_err(|_| SourceError::Header {
                        name: "authorization".into(),
                        reason: "the bearer token contains characters not allowed in a header"
                            .into(),
                    })?;
                v.set_sensitive(true);
                h.insert(reqwest::header::AUTHORIZATION, v);
            }
            Auth::Bearer(t) => {
                let mut v =
                    HeaderValue::from_str(&format!("Bearer {}", t.expose())).map_err(|_| {
                        SourceError::Header {
                            name: "authorization".into(),
                            reason: "the bearer token contains characters not allowed in a header"
                                .into(),
                        }
                    })?;
                v.set_sensitive(true);
                h.insert(reqwest::header::AUTHORIZATION, v);
            }
            Auth::Iam {
                region,
                credentials,
            } => {
                let now = SystemTime::now();
                let creds = credentials.get(now).await?;
                sign_request(&mut req, &creds, region, now)?;
                for name in ["authorization", "x-amz-security-token"] {
                    if let Some(v) = req.headers_mut().get_mut(name) {
                        v.set_sensitive(true);
                    }
                }
            }
        }
        Ok(req)
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

    /// Like [`ApiClient::fetch`], and when the API answers 504 (API Gateway's 29-second
    /// integration timeout) and `paginator` can ask for the same records in smaller pages,
    /// the retry does that (and says so). The returned page's `url` is the one that worked.
    pub async fn fetch_shrinking(
        &self,
        url: &Url,
        page: u64,
        reporter: &dyn Reporter,
        paginator: Option<&dyn Paginator>,
    ) -> Result<FetchedPage, SourceError> {
        let started = Instant::now();
        let mut url = url.clone();
        let mut shown = redact_url(&url);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let (after, reason) = match self.attempt(&url, page, &shown).await? {
                Ok(fetched) => return Ok(fetched),
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
            if reason.starts_with("504") {
                if let Some(smaller) = paginator.and_then(|p| p.shrink(&url)) {
                    reporter.report(Event::Warning {
                        message: format!(
                            "page {page}: {reason} (API Gateway stops integrations after 29 s); asking for smaller pages: {}",
                            redact_url(&smaller)
                        ),
                    });
                    url = smaller;
                    shown = redact_url(&url);
                    continue;
                }
            }
            let elapsed = started.elapsed();
            let connect_limit = if reason.starts_with("connect") {
                3
            } else {
                u32::MAX
            };
            if attempt >= self.retry.max_attempts.min(connect_limit)
                || elapsed >= self.retry.deadline
            {
                if reason.starts_with("connect") {
                    return Err(SourceError::Connect {
                        page,
                        url: shown,
                        message: reason,
                    });
                }
                return Err(SourceError::RetriesExhausted {
                    page,
                    url: shown,
                    attempts: attempt,
                    elapsed_s: elapsed.as_secs_f64(),
                    last: reason,
                });
            }
            let delay = backoff(&self.retry, attempt, after);
            reporter.report(Event::Retrying {
                page,
                attempt,
                delay,
                reason: reason.clone(),
            });
            tracing::debug!(page, attempt, ?delay, %reason, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: `Ok(Ok(page))`, `Ok(Err((retry_after, reason)))` to retry, or a final error.
    async fn attempt(
        &self,
        url: &Url,
        page: u64,
        shown: &str,
    ) -> Result<Result<FetchedPage, (Option<Duration>, String)>, SourceError> {
        let req = self.request(url).await?;
        // `shown` is redacted; headers (which carry the credentials) are never logged.
        tracing::debug!("page {page}: GET {shown}");
        let mut resp = match self.http.execute(req).await {
            Ok(r) => r,
            Err(e) => return Ok(Err((None, transport_reason(&e)))),
        };
        let status = resp.status().as_u16();
        tracing::debug!("page {page}: {status} from {shown}");
        let headers = resp.headers().clone();
        if resp.status().is_redirection() {
            let to = headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(crate::secret::redact_url_str)
                .unwrap_or_default();
            return Err(SourceError::Status {
                page,
                url: shown.to_string(),
                status,
                message: format!("redirected to {to}"),
                hint: ". Redirects to another host are not followed (credentials would go with them): use the final URL as --url".into(),
            });
        }
        // Read the body within the size limit; a broken stream (truncated body, corrupt gzip)
        // is transient.
        let mut body = BytesMut::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > self.max_page_bytes {
                        return Err(SourceError::TooLarge {
                            page,
                            url: shown.to_string(),
                            limit: self.max_page_bytes,
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Ok(Err((
                        None,
                        format!("reading the body failed: {}", transport_reason(&e)),
                    )))
                }
            }
        }
        let body = body.freeze();
        if (200..300).contains(&status) {
            return Ok(Ok(FetchedPage {
                url: url.clone(),
                headers,
                body,
            }));
        }
        match classify(status, &headers, &body, SystemTime::now()) {
            Decision::Retry { after, reason } => Ok(Err((after, reason))),
            Decision::Quota => Err(SourceError::QuotaExceeded {
                page,
                url: shown.to_string(),
            }),
            Decision::Fail => {
                let message = api_message(&body);
                if status == 401 || status == 403 {
                    Err(SourceError::Auth {
                        page,
                        url: shown.to_string(),
                        status,
                        hint: auth_hint(status, &message, &self.auth_config),
                        message,
                    })
                } else {
                    Err(SourceError::Status {
                        page,
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

/// A short reason for a transport error, without the URL (which reqwest includes, possibly
/// with secrets in its query).
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn certificate_failures_are_told_apart_from_unreachable_hosts() {
        for tls in [
            "connect: invalid peer certificate: UnknownIssuer",
            "connect: invalid peer certificate: Expired",
            "request: self-signed certificate in certificate chain",
        ] {
            assert!(is_certificate_problem(tls), "{tls}");
        }
        for other in [
            "connect: Connection refused (os error 111)",
            "connect: dns error: failed to lookup address information",
            "timed out",
        ] {
            assert!(!is_certificate_problem(other), "{other}");
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn classifies_api_gateway_responses() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        let cases: Vec<(u16, HeaderMap, &[u8], Decision)> = vec![
            (
                429,
                headers(&[("retry-after", "3")]),
                br#"{"message":"Too Many Requests"}"#,
                Decision::Retry {
                    after: Some(Duration::from_secs(3)),
                    reason: "429 throttled".into(),
                },
            ),
            (
                429,
                headers(&[("retry-after", &date)]),
                br#"{"message":"Too Many Requests"}"#,
                Decision::Retry {
                    after: Some(Duration::from_secs(7)),
                    reason: "429 throttled".into(),
                },
            ),
            (
                429,
                headers(&[]),
                br#"{"message":"Limit Exceeded"}"#,
                Decision::Quota,
            ),
            (
                503,
                headers(&[]),
                br#"{"message":"Service Unavailable"}"#,
                Decision::Retry {
                    after: None,
                    reason: "503 Service Unavailable".into(),
                },
            ),
            (
                504,
                headers(&[]),
                br#"{"message":"Endpoint request timed out"}"#,
                Decision::Retry {
                    after: None,
                    reason: "504 Endpoint request timed out".into(),
                },
            ),
            (
                403,
                headers(&[]),
                br#"{"message":"Forbidden"}"#,
                Decision::Fail,
            ),
            (404, headers(&[]), b"", Decision::Fail),
        ];
        for (status, h, body, want) in cases {
            assert_eq!(
                classify(status, &h, body, now),
                want,
                "{status} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            deadline: Duration::from_secs(60),
        };
        for attempt in 1..=10 {
            let d = backoff(&p, attempt, None);
            let exp = (Duration::from_millis(100) * 2u32.pow(attempt - 1)).min(p.cap);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} vs {exp:?}"
            );
        }
        assert!(backoff(&p, 1, Some(Duration::from_secs(1))) >= Duration::from_secs(1));
        assert_eq!(backoff(&p, 1, Some(Duration::from_secs(600))), p.cap);
    }

    #[test]
    fn messages_and_hints() {
        assert_eq!(api_message(br#"{"message":"Forbidden"}"#), "Forbidden");
        assert_eq!(
            api_message(br#"{"Message":"User: arn:x is not authorized"}"#),
            "User: arn:x is not authorized"
        );
        assert_eq!(
            api_message(b"<html>\n  Bad   gateway </html>"),
            "<html> Bad gateway </html>"
        );
        assert_eq!(api_message(b""), "(empty body)");
        let skew = auth_hint(
            403,
            "Signature expired: 20260101T000000Z is now earlier than ...",
            &ApiAuth::None,
        );
        assert!(skew.contains("clock"), "{skew}");
        let key = auth_hint(403, "Forbidden", &ApiAuth::ApiKey(Secret::new("k")));
        assert!(key.contains("usage plan"), "{key}");
        assert!(auth_hint(403, "Missing Authentication Token", &ApiAuth::None).contains("stage"));
    }
}
