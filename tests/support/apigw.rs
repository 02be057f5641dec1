//! A local server that behaves like an AWS API Gateway REST endpoint (stage `/prod`), for the
//! integration tests. There is no emulator for API Gateway, so this reproduces the parts of it
//! that `gatelake` depends on: the paged JSON shapes real APIs use, gzip negotiation, API
//! Gateway's own auth rejections (status, body and `x-amzn-ErrorType`), and its throttling and
//! gateway errors. See `APIGW.md` beside this file for every knob and what is *not* emulated.
//!
//! The SigV4 verifier here is written from AWS's published SigV4 description and deliberately
//! does not use the `aws-sigv4` crate: the client signs with that crate, so checking it with
//! the same code would prove nothing.
//!
//! Each test starts its own server on `127.0.0.1:0`; it stops when the handle is dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Routes for split jobs (windows, keys): `apigw_partitions.rs`.
#[path = "apigw_partitions.rs"]
mod partitions;
// The search routes that page through a POST body (`apigw_body.rs`).
#[path = "apigw_body.rs"]
mod body;

/// The stage prefix every route lives under.
pub const STAGE: &str = "/prod";

/// The `message` API Gateway sends when a SigV4 signature does not match.
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
signature you provided. Check your AWS Secret Access Key and signing method. Consult the service \
documentation for details.";

/// The `message` for an unknown access key or a wrong/missing session token.
pub const INVALID_SECURITY_TOKEN: &str = "The security token included in the request is invalid.";

/// The service name API Gateway's SigV4 scope carries.
pub const EXECUTE_API: &str = "execute-api";

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// How the server authenticates requests, with API Gateway's responses on failure.
#[derive(Clone, Debug, Default)]
pub enum ApiAuthCheck {
    /// Every request is accepted.
    #[default]
    None,
    /// `x-api-key` must equal this (usage-plan API key); otherwise 403 `Forbidden`.
    ApiKey(String),
    /// `Authorization: Bearer <token>` must carry this token; otherwise 401 `Unauthorized`.
    Bearer(String),
    /// Like `Bearer`, with the accepted tokens changeable while the server runs (a token
    /// rotated mid-pull): any token in the list is accepted.
    BearerAnyOf(Accepted),
    /// Like `ApiKey`, with the accepted keys changeable while the server runs.
    ApiKeyAnyOf(Accepted),
    /// A JWT authorizer (HTTP API) trusting Entra: `Authorization: Bearer <jwt>` whose `iss` is
    /// `issuer`, whose `aud` is (or contains) `audience`, and that is within `nbf`..`exp`;
    /// otherwise 401 `Unauthorized`. The signature is not checked: the test Entra issues
    /// unsigned tokens (see `identity.rs`); every claim the authorizer decides on is.
    EntraJwt { issuer: String, audience: String },
    /// IAM authorization: the request must be SigV4-signed for `execute-api` in `region`.
    SigV4 {
        access_key: String,
        secret_key: String,
        /// When set, `x-amz-security-token` must carry exactly this value.
        session_token: Option<String>,
        region: String,
    },
    /// IAM authorization with temporary credentials issued elsewhere (by STS, in the tests by
    /// moto behind `sts_front.rs`): the request's access key must be one of `issued`
    /// (access key → secret key, session token), and it must carry that session token.
    SigV4Issued { issued: IssuedKeys, region: String },
    /// A JWT authorizer trusting an OAuth2 issuer (Cognito, Okta): see `apigw_jwt.rs`.
    Jwt(super::apigw_jwt::JwtAuthorizer),
}

/// The credentials a rotating auth check accepts right now; the test changes them.
pub type Accepted = Arc<Mutex<Vec<String>>>;

/// Temporary credentials a test's STS has issued: access key → (secret key, session token).
pub type IssuedKeys = Arc<Mutex<HashMap<String, (String, String)>>>;

/// Whether `next` links (body `links.next` and the `Link` header) are absolute or relative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkForm {
    /// `http://127.0.0.1:<port>/prod/...`
    #[default]
    Absolute,
    /// `/prod/...` (to be resolved against the request URL).
    Relative,
}

/// The `Retry-After` value sent with throttling responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// No `Retry-After` header (API Gateway documents none on its own 429s).
    Omit,
    /// `Retry-After: <n>` (delta-seconds).
    Seconds(u64),
    /// `Retry-After: <HTTP-date>` this far in the future of the response.
    HttpDate(Duration),
}

impl Default for RetryAfter {
    fn default() -> Self {
        RetryAfter::Seconds(1)
    }
}

/// Everything a test can turn. `ApiConfig::default()` serves 1000 records, 100 a page, no auth,
/// no faults.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Number of records in the dataset (record `i` is [`record`]`(i)`). Default 1000.
    pub records: u64,
    /// Page size when the request does not name one. Default 100.
    pub page_size: u64,
    /// Authentication the server enforces. Default [`ApiAuthCheck::None`].
    pub auth: ApiAuthCheck,
    /// Largest SigV4 clock skew accepted. Default 5 minutes (API Gateway's).
    pub max_clock_skew: Duration,
    /// Bodies strictly larger than this are gzip-compressed when the client accepts gzip.
    /// Default 1024 bytes.
    pub gzip_threshold: usize,
    /// Absolute or relative `next` links. Default absolute.
    pub link_form: LinkForm,
    /// Every k-th request (counted after auth) is throttled with 429. Default off.
    pub throttle_every: Option<u32>,
    /// `Retry-After` on throttling responses. Default `Seconds(1)`.
    pub retry_after: RetryAfter,
    /// Every request (after auth) gets 429 `Limit Exceeded` (usage-plan quota). Default false.
    pub quota_exceeded: bool,
    /// Probability in `[0, 1]` that a request (after auth) gets a 500/502/503/504. Default 0.
    pub error_rate: f64,
    /// Seed for the `error_rate` RNG, so failures are reproducible. Default 0x6761_7465.
    pub seed: u64,
    /// Delay before each page is sent. Default zero.
    pub latency: Duration,
    /// This page index's body is invalid JSON. Default none.
    pub malformed_page: Option<u64>,
    /// This page index is sent with a `Content-Length` larger than the bytes sent, then the
    /// connection is closed. Default none.
    pub truncate_page: Option<u64>,
    /// The `next` URL (body link or `Link` header) is replaced with this URL verbatim.
    /// Default none.
    pub hostile_next: Option<String>,
    /// Page index → how many times that page fails with 503 before it is served. Default empty.
    pub fail_first_n: HashMap<u64, u32>,
    /// Page index → how many times that page is sent truncated (as `truncate_page` does)
    /// before it is sent whole. Default empty.
    pub truncate_first_n: HashMap<u64, u32>,
    /// Requests asking for more than this many records per page (`limit` or `per_page`) get
    /// 504 `Endpoint request timed out`, like an integration that exceeds API Gateway's 29 s
    /// limit on big pages. Default none.
    pub timeout_above: Option<u64>,
    /// The most records a page holds, whatever `limit` or `per_page` asks for (offset and
    /// page routes), like an API that caps its page size. Default none.
    pub max_page_size: Option<u64>,
    /// A request for an offset or page number at or past the end gets 400 (offset and page
    /// routes), as some APIs answer instead of an empty page. Default false.
    pub reject_past_end: bool,
    /// `/prod/offset` reports this as `total` instead of the real record count, as an API
    /// whose count and listing disagree does. Default none (the real count).
    pub reported_total: Option<u64>,
    /// From this page index on, the next-page pointer is left out entirely (not null) even
    /// when more records follow: no `next_cursor` key, no `x-next-cursor` header, no
    /// `links.next` key, no `Link` header. Default none.
    pub omit_next_from: Option<u64>,
    /// Probability in `[0, 1]` that a page (after the random gateway error) is sent truncated
    /// as `truncate_page` does; drawn from the same seeded RNG. Default 0.
    pub truncate_rate: f64,
    /// `timeout_above` applies only to the first this-many admitted requests, like an
    /// integration that was slow for a while. Default none (always).
    pub timeout_above_for: Option<u64>,
    /// `/prod/cursor` writes `next_cursor` before `items`, and the same key again, with a
    /// value that is not a cursor, in a `meta` object after them: a page whose pointer is not
    /// the last member of its name. Default false.
    pub decoy_cursor: bool,
    /// `/prod/cursor` writes a `next_cursor` on every page, the last one's pointing past the
    /// end (where an empty page waits), and says the end with `"has_more": false` alone, as
    /// some APIs do. Default false.
    pub cursor_past_end: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            records: 1000,
            page_size: 100,
            auth: ApiAuthCheck::None,
            max_clock_skew: Duration::from_secs(300),
            gzip_threshold: 1024,
            link_form: LinkForm::Absolute,
            throttle_every: None,
            retry_after: RetryAfter::Seconds(1),
            quota_exceeded: false,
            error_rate: 0.0,
            seed: 0x6761_7465,
            latency: Duration::ZERO,
            malformed_page: None,
            truncate_page: None,
            hostile_next: None,
            fail_first_n: HashMap::new(),
            truncate_first_n: HashMap::new(),
            timeout_above: None,
            max_page_size: None,
            reject_past_end: false,
            reported_total: None,
            omit_next_from: None,
            truncate_rate: 0.0,
            timeout_above_for: None,
            decoy_cursor: false,
            cursor_past_end: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The dataset
// ---------------------------------------------------------------------------------------------

/// Values of `note`, cycled by record index: the cases that break CSV writers and JSON escapers.
const NOTES: [Option<&str>; 8] = [
    Some("plain note"),
    Some("comma, separated, values"),
    Some("she said \"hello\""),
    Some("line one\nline two\tafter a tab"),
    Some("emoji 🚀🦀 and a flag 🇩🇪"),
    Some("non-ASCII: Zoë, Łódź, 東京, Ελλάδα"),
    Some(""),
    None,
];

const COUNTRIES: [&str; 6] = ["DE", "US", "JP", "BR", "FR", "IN"];
const TAGS: [&str; 3] = ["a", "b", "c"];
const TWO_POW_62: i64 = 1 << 62;

/// Record `i` of the dataset, exactly as the server serves it.
///
/// `note` cycles through [`NOTES`] (commas, quotes, newline and tab, emoji, non-ASCII, empty,
/// null); `big` is `2^62 + i` when `i % 4 == 1`, `-(2^62 + i)` when `i % 4 == 3`, else null;
/// `tags` holds 0, 1 or 2 entries.
/// `created_at` of record 0; record `i` is `i * 61` seconds later.
const FIRST_CREATED: time::OffsetDateTime = time::macros::datetime!(2026-01-02 03:04:05 UTC);

/// The first record index whose `created_at` is at or after `since` (RFC 3339), for the
/// cursor route's `updated_since` filter.
pub fn first_index_since(since: &str) -> Result<u64, String> {
    let since = time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
        .map_err(|_| "invalid updated_since".to_string())?;
    let secs = (since - FIRST_CREATED).whole_seconds();
    Ok(if secs <= 0 {
        0
    } else {
        u64::try_from(secs).unwrap_or(0).div_ceil(61)
    })
}

pub fn record(i: u64) -> Value {
    let created = FIRST_CREATED + time::Duration::seconds(i64::try_from(i).unwrap_or(0) * 61);
    let created = created
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format created_at");
    let signed_i = i64::try_from(i % (1 << 32)).expect("small index");
    let big = match i % 4 {
        1 => json!(TWO_POW_62 + signed_i),
        3 => json!(-(TWO_POW_62 + signed_i)),
        _ => Value::Null,
    };
    let tags: Vec<&str> = TAGS
        .iter()
        .copied()
        .take(usize::try_from(i % 3).unwrap_or(0))
        .collect();
    let note = NOTES[usize::try_from(i % 8).unwrap_or(0)];
    json!({
        "id": i,
        "name": format!("customer-{i:06}"),
        "amount": ((i * 1237) % 100_000) as f64 / 100.0,
        "active": !i.is_multiple_of(3),
        "created_at": created,
        "tags": tags,
        "customer": {
            "id": 10_000 + i % 250,
            "country": COUNTRIES[usize::try_from(i % 6).unwrap_or(0)],
        },
        "note": note,
        "big": big,
    })
}

// ---------------------------------------------------------------------------------------------
// Opaque cursors
// ---------------------------------------------------------------------------------------------

/// Cursor bytes start with this so that the standard base64 alphabet yields `+/+/`; 14 bytes in
/// all so that there is a `=` pad. A client that forgets to percent-encode (`+` decodes to a
/// space) or encodes twice (`%252B`) sends something that does not decode: 400.
const CURSOR_MAGIC: [u8; 4] = [0xfb, 0xff, 0xbf, 0xfe];

/// The opaque cursor for "records from `offset` on".
pub fn encode_cursor(offset: u64) -> String {
    let mut bytes = Vec::with_capacity(14);
    bytes.extend_from_slice(&CURSOR_MAGIC);
    bytes.extend_from_slice(&offset.to_be_bytes());
    let check = cursor_check(&bytes);
    bytes.extend_from_slice(&check.to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The offset inside a cursor made by [`encode_cursor`], or `None` when it was mangled.
pub fn decode_cursor(cursor: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    if bytes.len() != 14 || bytes[..4] != CURSOR_MAGIC {
        return None;
    }
    let check = u16::from_be_bytes([bytes[12], bytes[13]]);
    if check != cursor_check(&bytes[..12]) {
        return None;
    }
    Some(u64::from_be_bytes(bytes[4..12].try_into().ok()?))
}

fn cursor_check(bytes: &[u8]) -> u16 {
    bytes
        .iter()
        .fold(0xa5a5_u16, |acc, b| acc.rotate_left(5) ^ u16::from(*b))
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// One request as the server received it, for assertions.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: Method,
    /// The path as sent (still percent-encoded).
    pub path: String,
    /// The raw query string, as sent, without `?`.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request arrived (monotonic, for spacing of retries).
    pub at: Instant,
    /// When the request arrived (wall clock).
    pub received_at: SystemTime,
    /// The request id its response carried (`x-amzn-RequestId` and `apigw-requestid`);
    /// empty for servers that give none.
    pub request_id: String,
}

impl RecordedRequest {
    /// The first value of query parameter `name`, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_params(self.query.as_deref()).remove(name)
    }
}

/// A running emulated API Gateway endpoint. Dropping it stops the server.
pub struct ApiGateway {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    config: ApiConfig,
    base_url: String,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Requests that passed routing and auth: the clock for `throttle_every`.
    admitted: AtomicU64,
    fail_remaining: Mutex<HashMap<u64, u32>>,
    truncate_remaining: Mutex<HashMap<u64, u32>>,
    rng: Mutex<StdRng>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

/// Counts a request as in flight until it is answered or abandoned.
struct InFlightGuard<'a>(&'a Shared);

impl<'a> InFlightGuard<'a> {
    fn new(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlightGuard(shared)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ApiGateway {
    /// Binds `127.0.0.1:0` and serves `config` until dropped.
    pub async fn start(config: ApiConfig) -> ApiGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the API Gateway emulator");
        let addr = listener
            .local_addr()
            .expect("local address of the listener");
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            requests: Mutex::new(Vec::new()),
            admitted: AtomicU64::new(0),
            fail_remaining: Mutex::new(config.fail_first_n.clone()),
            truncate_remaining: Mutex::new(config.truncate_first_n.clone()),
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            config,
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(error) = served {
                eprintln!("API Gateway emulator stopped: {error}");
            }
        });
        ApiGateway {
            addr,
            shared,
            shutdown: Some(tx),
            task,
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (no trailing slash, no stage).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `base_url() + path`; `path` should start with `/` (e.g. `/prod/cursor`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.shared.base_url)
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ApiConfig {
        &self.shared.config
    }

    /// The most requests that were being answered at the same time so far.
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .expect("request log lock")
            .clone()
    }
}

impl Drop for ApiGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Graceful shutdown would wait for idle keep-alive connections; a test is done with us.
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Cursor,
    CursorHeader,
    NextLink,
    LinkHeader,
    Offset,
    PageNumber,
}

impl Route {
    fn from_path(path: &str) -> Option<Route> {
        let rest = path.strip_prefix(STAGE)?;
        Some(match rest {
            "/cursor" => Route::Cursor,
            "/cursor-header" => Route::CursorHeader,
            "/next-link" => Route::NextLink,
            "/link-header" => Route::LinkHeader,
            "/offset" => Route::Offset,
            "/page" => Route::PageNumber,
            _ => return None,
        })
    }
}

/// A page about to be sent: its 0-based index (first record / page size), JSON body and
/// extra headers.
struct Page {
    index: u64,
    body: Vec<u8>,
    headers: Vec<(HeaderName, String)>,
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let request_id = shared.record(&parts, &body);
    let _counted = InFlightGuard::new(&shared);
    let mut response = respond(&shared, &parts, &body).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        // REST APIs answer x-amzn-RequestId, HTTP APIs apigw-requestid: both, one id.
        response
            .headers_mut()
            .insert("x-amzn-requestid", value.clone());
        response.headers_mut().insert("apigw-requestid", value);
    }
    response
}

impl Shared {
    fn record(&self, parts: &axum::http::request::Parts, body: &Bytes) -> String {
        let mut log = self.requests.lock().expect("request log lock");
        let request_id = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            self.config.seed as u32,
            log.len() + 1
        );
        log.push(RecordedRequest {
            method: parts.method.clone(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers.clone(),
            body: body.clone(),
            at: Instant::now(),
            received_at: SystemTime::now(),
            request_id: request_id.clone(),
        });
        request_id
    }

    fn next_link(&self, path_and_query: &str) -> String {
        if let Some(hostile) = &self.config.hostile_next {
            return hostile.clone();
        }
        match self.config.link_form {
            LinkForm::Absolute => format!("{}{path_and_query}", self.base_url),
            LinkForm::Relative => path_and_query.to_string(),
        }
    }

    fn link(&self, path_and_query: &str) -> String {
        match self.config.link_form {
            LinkForm::Absolute => format!("{}{path_and_query}", self.base_url),
            LinkForm::Relative => path_and_query.to_string(),
        }
    }

    fn items(&self, start: u64, size: u64) -> Vec<Value> {
        let end = start.saturating_add(size).min(self.config.records);
        (start..end).map(record).collect()
    }

    fn omits_next(&self, index: u64) -> bool {
        self.config.omit_next_from.is_some_and(|from| index >= from)
    }

    fn has_more(&self, start: u64, size: u64) -> bool {
        start.saturating_add(size) < self.config.records
    }
}

async fn respond(shared: &Shared, parts: &axum::http::request::Parts, body: &[u8]) -> Response {
    if let Some(searched) = body::respond(shared, parts, body).await {
        return searched;
    }
    let config = &shared.config;
    if let Some(response) = partitions::respond(shared, parts, body).await {
        return response;
    }
    // API Gateway answers an unknown resource or method with 403 before looking at auth.
    let route = match Route::from_path(parts.uri.path()) {
        Some(route) if parts.method == Method::GET => route,
        _ => return missing_authentication_token(),
    };
    if let ApiAuthCheck::Jwt(authorizer) = &config.auth {
        if let Err(refused) = authorizer.check(&parts.headers) {
            return *refused;
        }
    }
    if let Err(rejection) = check_auth(config, parts, body) {
        return rejection.into_response();
    }
    if config.quota_exceeded {
        // A usage-plan quota lasts until the period resets: no Retry-After, as on AWS.
        return too_many_requests(RetryAfter::Omit, "Limit Exceeded", "LimitExceededException");
    }
    let admitted = shared.admitted.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(every) = config.throttle_every.filter(|k| *k > 0) {
        if admitted.is_multiple_of(u64::from(every)) {
            return too_many_requests(
                config.retry_after,
                "Too Many Requests",
                "TooManyRequestsException",
            );
        }
    }
    if config.error_rate > 0.0 {
        let mut rng = shared.rng.lock().expect("rng lock");
        if rng.gen::<f64>() < config.error_rate {
            let pick = rng.gen_range(0..4_u8);
            return gateway_error(pick);
        }
    }
    let truncate_at_random = config.truncate_rate > 0.0
        && shared.rng.lock().expect("rng lock").gen::<f64>() < config.truncate_rate;
    let params = query_params(parts.uri.query());
    let timeouts_on = config.timeout_above_for.is_none_or(|n| admitted <= n);
    if let Some(max) = config.timeout_above.filter(|_| timeouts_on) {
        let asked = ["limit", "per_page"]
            .iter()
            .find_map(|p| params.get(*p).and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or(config.page_size);
        if asked > max {
            return gateway_error(3);
        }
    }
    let page = match build_page(shared, route, &params) {
        Ok(page) => page,
        // API Gateway passes the backend's 400 through; the message is the backend's.
        Err(message) => return bad_request(&message),
    };
    {
        let mut remaining = shared.fail_remaining.lock().expect("fail_first_n lock");
        if let Some(left) = remaining.get_mut(&page.index) {
            if *left > 0 {
                *left -= 1;
                return gateway_error(2);
            }
        }
    }
    let truncate = truncate_at_random || config.truncate_page == Some(page.index) || {
        let mut remaining = shared
            .truncate_remaining
            .lock()
            .expect("truncate_first_n lock");
        match remaining.get_mut(&page.index) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    };
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    send_page(config, parts, page, truncate)
}

fn send_page(
    config: &ApiConfig,
    parts: &axum::http::request::Parts,
    page: Page,
    truncate: bool,
) -> Response {
    let mut bytes = page.body;
    if config.malformed_page == Some(page.index) {
        // A plausible start, then something no JSON parser accepts.
        bytes.truncate(bytes.len() / 2);
        bytes.extend_from_slice(b"\x00<html>502 Bad Gateway</html>");
    }
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in page.headers {
        builder = builder.header(name, value);
    }
    if bytes.len() > config.gzip_threshold && accepts_gzip(&parts.headers) {
        bytes = gzip(&bytes);
        builder = builder
            .header(header::CONTENT_ENCODING, "gzip")
            .header(header::VARY, "accept-encoding");
    }
    if truncate {
        // Declare the full length, send half, end the body: hyper then closes the connection,
        // which the client sees as an unexpected EOF mid-body.
        let declared = bytes.len();
        bytes.truncate(declared / 2);
        // The pause lets hyper flush the headers and the half body before the body ends short.
        let pause = futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(Bytes::new())
        });
        let chunks = futures::stream::StreamExt::chain(
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(bytes))]),
            pause,
        );
        return builder
            .header(header::CONTENT_LENGTH, declared)
            .body(Body::from_stream(chunks))
            .expect("truncated response");
    }
    builder.body(Body::from(bytes)).expect("page response")
}

fn build_page(
    shared: &Shared,
    route: Route,
    params: &HashMap<String, String>,
) -> Result<Page, String> {
    let config = &shared.config;
    match route {
        Route::Cursor | Route::CursorHeader | Route::NextLink => {
            let size = size_param(params, "limit", config.page_size)?;
            let token_name = if route == Route::NextLink {
                "after"
            } else {
                "cursor"
            };
            let start = match params.get(token_name) {
                // An incremental API: the first page starts at the first record updated at or
                // after `updated_since` (inclusive, as such filters usually are).
                None => match params.get("updated_since") {
                    Some(since) => first_index_since(since)?,
                    None => 0,
                },
                Some(token) => decode_cursor(token).ok_or_else(|| "invalid cursor".to_string())?,
            };
            let items = shared.items(start, size);
            let next = shared
                .has_more(start, size)
                .then(|| encode_cursor(start + size));
            let index = start / size;
            let omit = shared.omits_next(index);
            match route {
                Route::Cursor if omit => Ok(Page {
                    index,
                    body: to_json(&json!({ "items": items })),
                    headers: Vec::new(),
                }),
                Route::CursorHeader if omit => Ok(Page {
                    index,
                    body: to_json(&Value::Array(items)),
                    headers: Vec::new(),
                }),
                Route::NextLink if omit => Ok(Page {
                    index,
                    body: to_json(&json!({ "data": { "rows": items }, "links": {} })),
                    headers: Vec::new(),
                }),
                Route::Cursor if config.decoy_cursor => {
                    let mut body = format!(r#"{{"next_cursor":{},"items":"#, json!(next));
                    body.push_str(&Value::Array(items).to_string());
                    body.push_str(r#","meta":{"next_cursor":"not-a-cursor"}}"#);
                    Ok(Page {
                        index,
                        body: body.into_bytes(),
                        headers: Vec::new(),
                    })
                }
                Route::Cursor if config.cursor_past_end => Ok(Page {
                    index,
                    body: to_json(&json!({
                        "items": items,
                        "next_cursor": encode_cursor(start + size),
                        "has_more": next.is_some(),
                    })),
                    headers: Vec::new(),
                }),
                Route::Cursor => Ok(Page {
                    index,
                    body: to_json(&json!({ "items": items, "next_cursor": next })),
                    headers: Vec::new(),
                }),
                Route::CursorHeader => Ok(Page {
                    index,
                    body: to_json(&Value::Array(items)),
                    headers: next
                        .map(|cursor| (HeaderName::from_static("x-next-cursor"), cursor))
                        .into_iter()
                        .collect(),
                }),
                _ => {
                    let next = next.map(|cursor| {
                        let mut query = format!("after={}", encode_component(&cursor));
                        if params.contains_key("limit") {
                            query.push_str(&format!("&limit={size}"));
                        }
                        shared.next_link(&format!("{STAGE}/next-link?{query}"))
                    });
                    Ok(Page {
                        index,
                        body: to_json(&json!({
                            "data": { "rows": items },
                            "links": { "next": next },
                        })),
                        headers: Vec::new(),
                    })
                }
            }
        }
        Route::LinkHeader => {
            let size = size_param(params, "per_page", config.page_size)?;
            let page = number_param(params, "page", 1)?;
            if page == 0 {
                return Err("invalid page".into());
            }
            let start = (page - 1).saturating_mul(size);
            let items = shared.items(start, size);
            let last_page = config.records.div_ceil(size).max(1);
            let target = |n: u64| format!("{STAGE}/link-header?page={n}&per_page={size}");
            // Several links in one header, `prev` before `next`, to exercise real parsing.
            let mut links = vec![format!("<{}>; rel=\"first\"", shared.link(&target(1)))];
            if page > 1 {
                links.push(format!(
                    "<{}>; rel=\"prev\"",
                    shared.link(&target(page - 1))
                ));
            }
            if shared.has_more(start, size) {
                links.push(format!(
                    "<{}>; rel=\"next\"",
                    shared.next_link(&target(page + 1))
                ));
            }
            links.push(format!(
                "<{}>; rel=\"last\"",
                shared.link(&target(last_page))
            ));
            let headers = if shared.omits_next(page - 1) {
                Vec::new()
            } else {
                vec![(header::LINK, links.join(", "))]
            };
            Ok(Page {
                index: page - 1,
                body: to_json(&Value::Array(items)),
                headers,
            })
        }
        Route::Offset => {
            let size = capped(config, size_param(params, "limit", config.page_size)?);
            let start = number_param(params, "offset", 0)?;
            if config.reject_past_end && start >= config.records {
                return Err("invalid offset".into());
            }
            Ok(Page {
                index: start / size,
                body: to_json(&json!({
                    "items": shared.items(start, size),
                    "total": config.reported_total.unwrap_or(config.records),
                })),
                headers: Vec::new(),
            })
        }
        Route::PageNumber => {
            let size = capped(config, size_param(params, "per_page", config.page_size)?);
            let page = number_param(params, "page", 1)?;
            if page == 0 {
                return Err("invalid page".into());
            }
            let start = (page - 1).saturating_mul(size);
            if config.reject_past_end && start >= config.records {
                return Err("invalid page".into());
            }
            Ok(Page {
                index: page - 1,
                body: to_json(&json!({
                    "results": shared.items(start, size),
                    "has_more": shared.has_more(start, size),
                    "page": page,
                })),
                headers: Vec::new(),
            })
        }
    }
}

/// A page size as the server serves it (`max_page_size`).
fn capped(config: &ApiConfig, size: u64) -> u64 {
    config
        .max_page_size
        .map_or(size, |max| size.min(max.max(1)))
}

fn size_param(params: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, String> {
    let size = number_param(params, name, default)?;
    if size == 0 {
        return Err(format!("invalid {name}"));
    }
    Ok(size)
}

fn number_param(params: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, String> {
    match params.get(name) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|_| format!("invalid {name}")),
    }
}

/// Query parameters, decoded as `application/x-www-form-urlencoded` (so a literal `+` is a
/// space); the first occurrence of a name wins.
fn query_params(query: Option<&str>) -> HashMap<String, String> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        params
            .entry(name.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    params
}

fn encode_component(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialise page")
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let q_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !q_zero
        })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("finish gzip")
}

// ---------------------------------------------------------------------------------------------
// API Gateway's error responses
// ---------------------------------------------------------------------------------------------

/// A rejection as API Gateway sends it: status, `{"message": ...}` and `x-amzn-ErrorType`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRejection {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
}

impl AuthRejection {
    fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        AuthRejection {
            status,
            error_type,
            message: message.into(),
        }
    }

    fn forbidden(error_type: &'static str, message: impl Into<String>) -> Self {
        AuthRejection::new(StatusCode::FORBIDDEN, error_type, message)
    }

    fn into_response(self) -> Response {
        error_response(self.status, Some(self.error_type), &self.message)
    }
}

fn error_response(status: StatusCode, error_type: Option<&str>, message: &str) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(error_type) = error_type {
        builder = builder.header("x-amzn-errortype", error_type);
    }
    builder
        .body(Body::from(to_json(&json!({ "message": message }))))
        .expect("error response")
}

fn missing_authentication_token() -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        Some("MissingAuthenticationTokenException"),
        "Missing Authentication Token",
    )
}

fn bad_request(message: &str) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        Some("BadRequestException"),
        message,
    )
}

fn too_many_requests(retry_after: RetryAfter, message: &str, error_type: &str) -> Response {
    let retry_after = match retry_after {
        RetryAfter::Omit => None,
        RetryAfter::Seconds(seconds) => Some(seconds.to_string()),
        RetryAfter::HttpDate(after) => Some(httpdate::fmt_http_date(SystemTime::now() + after)),
    };
    let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, Some(error_type), message);
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// 0 → 500, 1 → 502, 2 → 503, 3 → 504, with the bodies API Gateway sends for each.
fn gateway_error(pick: u8) -> Response {
    match pick {
        0 => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("InternalServerErrorException"),
            "Internal server error",
        ),
        1 => error_response(StatusCode::BAD_GATEWAY, None, "Internal server error"),
        2 => error_response(StatusCode::SERVICE_UNAVAILABLE, None, "Service Unavailable"),
        _ => error_response(
            StatusCode::GATEWAY_TIMEOUT,
            None,
            "Endpoint request timed out",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

fn check_auth(
    config: &ApiConfig,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<(), AuthRejection> {
    match &config.auth {
        // Checked in `respond`: its refusals carry WWW-Authenticate.
        ApiAuthCheck::None | ApiAuthCheck::Jwt(_) => Ok(()),
        ApiAuthCheck::ApiKey(expected) => {
            let given = parts.headers.get("x-api-key").map(HeaderValue::as_bytes);
            if given == Some(expected.as_bytes()) {
                Ok(())
            } else {
                Err(AuthRejection::forbidden("ForbiddenException", "Forbidden"))
            }
        }
        ApiAuthCheck::Bearer(expected) => {
            let token = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim());
            if token == Some(expected.as_str()) {
                Ok(())
            } else {
                Err(AuthRejection::new(
                    StatusCode::UNAUTHORIZED,
                    "UnauthorizedException",
                    "Unauthorized",
                ))
            }
        }
        ApiAuthCheck::ApiKeyAnyOf(accepted) => {
            let given = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok());
            if given.is_some_and(|g| accepted.lock().unwrap().iter().any(|a| a == g)) {
                Ok(())
            } else {
                Err(AuthRejection::forbidden("ForbiddenException", "Forbidden"))
            }
        }
        ApiAuthCheck::BearerAnyOf(accepted) => {
            let token = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim());
            if token.is_some_and(|t| accepted.lock().unwrap().iter().any(|a| a == t)) {
                Ok(())
            } else {
                Err(AuthRejection::new(
                    StatusCode::UNAUTHORIZED,
                    "UnauthorizedException",
                    "Unauthorized",
                ))
            }
        }
        ApiAuthCheck::EntraJwt { issuer, audience } => {
            let unauthorized = || {
                AuthRejection::new(
                    StatusCode::UNAUTHORIZED,
                    "UnauthorizedException",
                    "Unauthorized",
                )
            };
            let token = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim())
                .ok_or_else(unauthorized)?;
            let claims = super::identity::claims(token);
            let now = super::identity::now();
            let aud_ok = match &claims["aud"] {
                serde_json::Value::String(a) => a == audience,
                serde_json::Value::Array(a) => a.iter().any(|x| x == audience.as_str()),
                _ => false,
            };
            let iss_ok = claims["iss"] == issuer.as_str();
            let time_ok = claims["exp"].as_i64().is_some_and(|e| e > now)
                && claims["nbf"].as_i64().is_none_or(|n| n <= now + 60);
            if aud_ok && iss_ok && time_ok {
                Ok(())
            } else {
                Err(unauthorized())
            }
        }
        ApiAuthCheck::SigV4 {
            access_key,
            secret_key,
            session_token,
            region,
        } => {
            let expect = SigV4Expect {
                access_key,
                secret_key,
                session_token: session_token.as_deref(),
                region,
                service: EXECUTE_API,
                max_skew: config.max_clock_skew,
            };
            let path = parts.uri.path();
            verify_sigv4(
                parts.method.as_str(),
                path,
                parts.uri.query(),
                &parts.headers,
                body,
                &expect,
                SystemTime::now(),
            )
        }
        ApiAuthCheck::SigV4Issued { issued, region } => {
            let access_key = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split("Credential=").nth(1))
                .and_then(|c| c.split('/').next())
                .unwrap_or_default()
                .to_string();
            let known = issued.lock().unwrap().get(&access_key).cloned();
            let Some((secret_key, session_token)) = known else {
                return Err(AuthRejection::forbidden(
                    "UnrecognizedClientException",
                    INVALID_SECURITY_TOKEN,
                ));
            };
            let expect = SigV4Expect {
                access_key: &access_key,
                secret_key: &secret_key,
                session_token: Some(&session_token),
                region,
                service: EXECUTE_API,
                max_skew: config.max_clock_skew,
            };
            verify_sigv4(
                parts.method.as_str(),
                parts.uri.path(),
                parts.uri.query(),
                &parts.headers,
                body,
                &expect,
                SystemTime::now(),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SigV4 verification — an independent implementation of AWS's published algorithm
// ---------------------------------------------------------------------------------------------

/// What a SigV4 verifier expects of a request.
#[derive(Clone, Copy, Debug)]
pub struct SigV4Expect<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    /// When set, the request must carry exactly this `x-amz-security-token`.
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
    /// Largest accepted difference between `X-Amz-Date` and `now`.
    pub max_skew: Duration,
}

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const AMZ_DATE_FORMAT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

/// Checks a header-signed SigV4 request the way API Gateway does, returning API Gateway's
/// rejection when it fails. `path` and `query` are as sent on the wire (percent-encoded).
pub fn verify_sigv4(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    expect: &SigV4Expect<'_>,
    now: SystemTime,
) -> Result<(), AuthRejection> {
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return Err(AuthRejection::forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let incomplete = |message: &str| {
        AuthRejection::forbidden("IncompleteSignatureException", message.to_string())
    };
    let authorization = authorization
        .to_str()
        .map_err(|_| incomplete("Authorization header is not valid ASCII"))?;
    let auth = parse_authorization(authorization).ok_or_else(|| {
        incomplete(&format!(
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' \
             parameters. Authorization={authorization}"
        ))
    })?;

    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }

    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        })?;
    let signed_at = time::PrimitiveDateTime::parse(amz_date, AMZ_DATE_FORMAT)
        .map_err(|_| {
            incomplete(&format!(
                "Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
            ))
        })?
        .assume_utc();

    let scope_parts: Vec<&str> = auth.credential.split('/').collect();
    let [access_key, date, region, service, terminator] = scope_parts[..] else {
        return Err(incomplete(&format!(
            "Credential should be scoped with the form 'KEY/DATE/REGION/SERVICE/aws4_request'. \
             Credential={}",
            auth.credential
        )));
    };
    if access_key != expect.access_key {
        return Err(AuthRejection::forbidden(
            "UnrecognizedClientException",
            INVALID_SECURITY_TOKEN,
        ));
    }
    let invalid_signature =
        |message: String| AuthRejection::forbidden("InvalidSignatureException", message);
    if terminator != "aws4_request" {
        return Err(invalid_signature(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    if date != &amz_date[..8] {
        return Err(invalid_signature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '{date}' != '{}', from '{amz_date}'.",
            &amz_date[..8]
        )));
    }
    if region != expect.region {
        return Err(invalid_signature(format!(
            "Credential should be scoped to a valid region, not '{region}'."
        )));
    }
    if service != expect.service {
        return Err(invalid_signature(format!(
            "Credential should be scoped to correct service: '{}'.",
            expect.service
        )));
    }

    let now = time::OffsetDateTime::from(now);
    let skew = time::Duration::try_from(expect.max_skew).unwrap_or(time::Duration::minutes(5));
    let fmt = |t: time::OffsetDateTime| t.format(AMZ_DATE_FORMAT).unwrap_or_default();
    let minutes = skew.whole_minutes();
    if signed_at < now - skew {
        return Err(invalid_signature(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - {minutes} min.)",
            fmt(now - skew),
            fmt(now)
        )));
    }
    if signed_at > now + skew {
        return Err(invalid_signature(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + {minutes} min.)",
            fmt(now + skew),
            fmt(now)
        )));
    }

    // With long-term keys (no token configured) any token sent is one AWS does not know.
    let given_token = headers
        .get("x-amz-security-token")
        .map(HeaderValue::as_bytes);
    if given_token != expect.session_token.map(str::as_bytes) {
        return Err(AuthRejection::forbidden(
            "UnrecognizedClientException",
            INVALID_SECURITY_TOKEN,
        ));
    }

    let payload_hash = hex::encode(Sha256::digest(body));
    let canonical = canonical_request(
        method,
        path,
        query,
        headers,
        &auth.signed_headers,
        &payload_hash,
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = string_to_sign(amz_date, &scope, &canonical);
    let key = signing_key(expect.secret_key, date, region, service);
    // API Gateway's mismatch message goes on to quote the canonical request and string to
    // sign it expected: headers and all, the session token included. Clients must not repeat it.
    let mismatch = || {
        invalid_signature(format!(
            "{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{to_sign}'\n"
        ))
    };
    let given = hex::decode(&auth.signature).map_err(|_| mismatch())?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(to_sign.as_bytes());
    // Constant-time comparison, as a real verifier must.
    mac.verify_slice(&given).map_err(|_| mismatch())
}

struct AuthorizationHeader {
    credential: String,
    signed_headers: Vec<String>,
    signature: String,
}

/// `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=a;b, Signature=hex`
fn parse_authorization(value: &str) -> Option<AuthorizationHeader> {
    let rest = value.strip_prefix(ALGORITHM)?;
    if !rest.starts_with(' ') {
        return None;
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name.trim() {
            "Credential" => credential = Some(value.trim().to_string()),
            "SignedHeaders" => {
                signed_headers = Some(
                    value
                        .trim()
                        .split(';')
                        .map(|h| h.to_ascii_lowercase())
                        .collect(),
                )
            }
            "Signature" => signature = Some(value.trim().to_string()),
            _ => {}
        }
    }
    Some(AuthorizationHeader {
        credential: credential?,
        signed_headers: signed_headers?,
        signature: signature?,
    })
}

/// The SigV4 canonical request: method, canonical URI, canonical query, canonical headers,
/// signed headers and the hex SHA-256 of the payload, one per line.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        canonical_uri(path),
        canonical_query(query.unwrap_or_default()),
        signed_headers.join(";"),
    )
}

/// The SigV4 string to sign for a canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let hashed = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{hashed}")
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`
pub fn signing_key(secret_key: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Path normalised (empty and `.` segments dropped, `..` resolved) and each segment
/// URI-encoded once more. The wire path is already encoded once, so this is the "encode twice"
/// every service except S3 (`execute-api` included) uses.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut uri = String::from("/");
    uri.push_str(
        &segments
            .iter()
            .map(|s| uri_encode(s.as_bytes()))
            .collect::<Vec<_>>()
            .join("/"),
    );
    if path.ends_with('/') && !segments.is_empty() {
        uri.push('/');
    }
    uri
}

/// Each name and value decoded, re-encoded with SigV4's rules, sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&form_decode(name)),
                uri_encode(&form_decode(value)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-decoding where `+` is a space, as query strings are decoded server-side.
fn form_decode(value: &str) -> Vec<u8> {
    let plus_as_space = value.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space).collect()
}

/// SigV4's URI encoding: unreserved characters (`A-Z a-z 0-9 - _ . ~`) as is, every other byte
/// as `%XY` with upper-case hex.
fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Header value trimmed, runs of spaces collapsed to one.
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}
