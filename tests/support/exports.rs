//! The API Gateway emulator's export side (see `EXPORTS.md` beside this file): an API that
//! hands back S3 objects instead of paging records — a cursor-paged listing of object
//! references, and an asynchronous export (start → status → file list) — over moto's S3, with
//! an S3 front that enforces presigned URLs' expiry (moto does not), and a tripwire listener
//! that proves a refused URL received no request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use super::apigw::{decode_cursor, encode_cursor, RecordedRequest};
use super::identity::{moto_url, serve_plain, Server};

/// The region and static keys the emulator presigns with (moto accepts any).
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "AKIDEXPORTEMULATOR";
pub const SECRET_KEY: &str = "export-emulator-secret";

// ---------------------------------------------------------------------------------------------
// moto: buckets and objects
// ---------------------------------------------------------------------------------------------

/// An S3 client for `endpoint` (path style, static keys).
pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "export-emulator",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// One object the API hands back: where it is in moto, and what the listing says about it.
#[derive(Clone, Debug)]
pub struct ExportObject {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Hex MD5 of the content.
    pub md5: String,
    /// Records it holds, when the test says (jsonl objects).
    pub records: Option<u64>,
}

/// Create `bucket` in moto (if missing) and put `objects` (key, content) into it.
pub async fn put_objects(bucket: &str, objects: &[(String, Vec<u8>)]) -> Vec<ExportObject> {
    let s3 = s3_client(&moto_url());
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let mut out = Vec::new();
    for (key, content) in objects {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(content.clone().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put s3://{bucket}/{key} into moto: {e:?}"));
        out.push(ExportObject {
            bucket: bucket.to_string(),
            key: key.clone(),
            size: content.len() as u64,
            md5: md5_hex(content),
            records: None,
        });
    }
    out
}

/// Hex MD5 of `data`.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(data))
}

// ---------------------------------------------------------------------------------------------
// The S3 front: moto, with presigned URLs that expire
// ---------------------------------------------------------------------------------------------

/// A proxy in front of moto's S3 that refuses a presigned request past its `X-Amz-Date` +
/// `X-Amz-Expires` with S3's own answer (403 `AccessDenied`, "Request has expired") and
/// forwards everything else to moto unchanged. Point the run's S3 endpoint at it.
pub struct S3Front {
    server: Server,
    shared: Arc<FrontShared>,
}

struct FrontShared {
    moto: String,
    http: reqwest::Client,
    requests: Mutex<Vec<(Method, String)>>,
    expired: AtomicU64,
}

impl S3Front {
    pub async fn start() -> S3Front {
        let shared = Arc::new(FrontShared {
            moto: moto_url(),
            http: reqwest::Client::builder().no_gzip().build().unwrap(),
            requests: Mutex::new(Vec::new()),
            expired: AtomicU64::new(0),
        });
        let app = Router::new()
            .fallback(front)
            .with_state(Arc::clone(&shared));
        S3Front {
            server: serve_plain(app).await,
            shared,
        }
    }

    /// `http://127.0.0.1:<port>`: the S3 endpoint to give the run.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Method and path (no query) of every request so far.
    pub fn requests(&self) -> Vec<(Method, String)> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests refused as expired so far.
    pub fn expired(&self) -> u64 {
        self.shared.expired.load(Ordering::SeqCst)
    }
}

async fn front(State(shared): State<Arc<FrontShared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 30)
        .await
        .unwrap_or_default();
    shared
        .requests
        .lock()
        .unwrap()
        .push((parts.method.clone(), parts.uri.path().to_string()));
    let query = parts.uri.query().unwrap_or("");
    if let Some(expired_at) = presigned_expiry(query) {
        if SystemTime::now() > expired_at {
            shared.expired.fetch_add(1, Ordering::SeqCst);
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message><RequestId>EXPIRED0</RequestId><HostId>front</HostId></Error>";
            return Response::builder()
                .status(StatusCode::FORBIDDEN)
                .header(header::CONTENT_TYPE, "application/xml")
                .body(Body::from(xml))
                .unwrap();
        }
    }
    let target = match parts.uri.query() {
        Some(q) => format!("{}{}?{q}", shared.moto, parts.uri.path()),
        None => format!("{}{}", shared.moto, parts.uri.path()),
    };
    let mut forward = shared.http.request(parts.method.clone(), &target);
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            forward = forward.header(name, value);
        }
    }
    let answer = match forward.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(format!("moto: {e}")))
                .unwrap()
        }
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != header::TRANSFER_ENCODING && name != header::CONNECTION {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(bytes)).unwrap()
}

/// When a presigned query (`X-Amz-Date=YYYYMMDDTHHMMSSZ&X-Amz-Expires=N`) stops being valid.
fn presigned_expiry(query: &str) -> Option<SystemTime> {
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let date = param("X-Amz-Date")?;
    let expires: u64 = param("X-Amz-Expires")?.parse().ok()?;
    let n = |range: std::ops::Range<usize>| date.get(range).and_then(|s| s.parse::<u32>().ok());
    let day = time::Date::from_calendar_date(
        n(0..4)? as i32,
        time::Month::try_from(n(4..6)? as u8).ok()?,
        n(6..8)? as u8,
    )
    .ok()?;
    let at = day
        .with_hms(n(9..11)? as u8, n(11..13)? as u8, n(13..15)? as u8)
        .ok()?
        .assume_utc();
    Some(SystemTime::from(at) + Duration::from_secs(expires))
}

// ---------------------------------------------------------------------------------------------
// The tripwire: a loopback port that must receive nothing
// ---------------------------------------------------------------------------------------------

/// A listener on another loopback port that counts the connections it receives (and closes
/// them): where a "foreign host" URL points, to prove no request was sent.
pub struct Tripwire {
    pub addr: SocketAddr,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Tripwire {
    pub async fn start() -> Tripwire {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Tripwire {
            addr,
            connections,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// The export API
// ---------------------------------------------------------------------------------------------

/// How the API names each object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefForm {
    /// `"url"`: a presigned GET URL on the S3 endpoint (or on `url_base`).
    #[default]
    Presigned,
    /// `"s3_uri"`: `s3://bucket/key`, read with the caller's own AWS credentials.
    S3Uri,
}

/// Everything a test can turn.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// The objects every listing hands back, in order.
    pub objects: Vec<ExportObject>,
    pub form: RefForm,
    /// References per page (listing pages and the export's status pages). Default 100.
    pub page_size: u64,
    /// The S3 endpoint presigned URLs are made for (the `S3Front`'s URL, or moto's).
    pub s3_endpoint: String,
    /// Presigned URLs are made for this base instead (a foreign host), keeping their path.
    /// Default none.
    pub url_base: Option<String>,
    /// Lifetime of presigned URLs. Default one hour.
    pub url_ttl: Duration,
    /// The first this-many listings (page 1 of `/prod/files`, or the final status document)
    /// hand out URLs that expired an hour ago. Default 0.
    pub expired_listings: u64,
    /// Status polls answered `RUNNING` before the export succeeds. Default 2.
    pub polls_before_done: u64,
    /// The export ends `FAILED` with this message instead. Default none.
    pub fail_with: Option<String>,
    /// Delay before every answer (to give a kill somewhere to land). Default zero.
    pub latency: Duration,
    /// The first start requests are answered with these statuses, in order (429 as API
    /// Gateway throttles, with `Retry-After: 0`; others as a gateway error), and start
    /// nothing. Default none.
    pub start_failures: Vec<u16>,
}

impl ExportConfig {
    pub fn new(objects: Vec<ExportObject>, s3_endpoint: &str) -> Self {
        ExportConfig {
            objects,
            form: RefForm::Presigned,
            page_size: 100,
            s3_endpoint: s3_endpoint.to_string(),
            url_base: None,
            url_ttl: Duration::from_secs(3600),
            expired_listings: 0,
            polls_before_done: 2,
            fail_with: None,
            latency: Duration::ZERO,
            start_failures: Vec::new(),
        }
    }
}

/// A running export API. Dropping it stops the server.
pub struct ExportApi {
    server: Server,
    shared: Arc<ApiShared>,
}

struct ApiShared {
    config: ExportConfig,
    base: Mutex<String>,
    s3: aws_sdk_s3::Client,
    requests: Mutex<Vec<RecordedRequest>>,
    exports_started: AtomicU64,
    polls: AtomicU64,
    listings: AtomicU64,
    start_attempts: AtomicU64,
}

impl ExportApi {
    pub async fn start(config: ExportConfig) -> ExportApi {
        let shared = Arc::new(ApiShared {
            s3: s3_client(&config.s3_endpoint),
            config,
            base: Mutex::new(String::new()),
            requests: Mutex::new(Vec::new()),
            exports_started: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            listings: AtomicU64::new(0),
            start_attempts: AtomicU64::new(0),
        });
        let app = Router::new().fallback(api).with_state(Arc::clone(&shared));
        let server = serve_plain(app).await;
        *shared.base.lock().unwrap() = format!("http://{}", server.addr);
        ExportApi { server, shared }
    }

    /// `http://127.0.0.1:<port>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    /// Exports started (`POST /prod/exports`) so far.
    pub fn exports_started(&self) -> u64 {
        self.shared.exports_started.load(Ordering::SeqCst)
    }

    /// Status documents served so far (running or final).
    pub fn polls(&self) -> u64 {
        self.shared.polls.load(Ordering::SeqCst)
    }

    /// Listings begun so far (page 1 of `/prod/files`, or a final status document).
    pub fn listings(&self) -> u64 {
        self.shared.listings.load(Ordering::SeqCst)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }
}

async fn api(State(shared): State<Arc<ApiShared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    shared.requests.lock().unwrap().push(RecordedRequest {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers.clone(),
        body: body.clone(),
        at: std::time::Instant::now(),
        received_at: SystemTime::now(),
        request_id: String::new(),
    });
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let cursor = parts.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "cursor")
            .map(|(_, v)| v.into_owned())
    });
    let start = match cursor.as_deref().map(decode_cursor) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"message": "invalid cursor"}),
                &[],
            )
        }
    };
    let path = parts.uri.path();
    match (&parts.method, path) {
        (&Method::POST, "/prod/exports") => {
            let attempt = shared.start_attempts.fetch_add(1, Ordering::SeqCst) as usize;
            if let Some(status) = shared.config.start_failures.get(attempt) {
                let status = StatusCode::from_u16(*status).unwrap();
                return if status == StatusCode::TOO_MANY_REQUESTS {
                    answer(
                        status,
                        json!({"message": "Too Many Requests"}),
                        &[
                            ("x-amzn-errortype", "TooManyRequestsException"),
                            ("retry-after", "0"),
                        ],
                    )
                } else {
                    answer(status, json!({"message": "Internal server error"}), &[])
                };
            }
            if !body.is_empty() && serde_json::from_slice::<Value>(&body).is_err() {
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "body is not JSON"}),
                    &[],
                );
            }
            let n = shared.exports_started.fetch_add(1, Ordering::SeqCst) + 1;
            let id = format!("exp-{n}");
            let status_url = format!("{}/prod/exports/{id}", shared.base.lock().unwrap());
            answer(
                StatusCode::ACCEPTED,
                json!({"id": id, "status": "QUEUED", "status_url": status_url}),
                &[],
            )
        }
        (&Method::GET, "/prod/files") => {
            let (files, next) = shared.page(start, cursor.is_none()).await;
            answer(
                StatusCode::OK,
                json!({"files": files, "next_cursor": next}),
                &[],
            )
        }
        (&Method::GET, p) if p.starts_with("/prod/exports/exp-") => {
            let id = &p["/prod/exports/".len()..];
            let known = id
                .strip_prefix("exp-")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n >= 1 && n <= shared.exports_started.load(Ordering::SeqCst));
            if !known {
                return answer(
                    StatusCode::NOT_FOUND,
                    json!({"message": "no such export"}),
                    &[],
                );
            }
            let poll = shared.polls.fetch_add(1, Ordering::SeqCst) + 1;
            if poll <= shared.config.polls_before_done && cursor.is_none() {
                return answer(StatusCode::OK, json!({"id": id, "status": "RUNNING"}), &[]);
            }
            if let Some(message) = &shared.config.fail_with {
                return answer(
                    StatusCode::OK,
                    json!({"id": id, "status": "FAILED", "error": message}),
                    &[],
                );
            }
            let (files, next) = shared.page(start, cursor.is_none()).await;
            answer(
                StatusCode::OK,
                json!({"id": id, "status": "SUCCEEDED", "files": files, "next_cursor": next}),
                &[],
            )
        }
        _ => answer(
            StatusCode::FORBIDDEN,
            json!({"message": "Missing Authentication Token"}),
            &[("x-amzn-errortype", "MissingAuthenticationTokenException")],
        ),
    }
}

impl ApiShared {
    /// The references from `start`, one page, and the next cursor.
    async fn page(&self, start: u64, first: bool) -> (Vec<Value>, Option<String>) {
        let expired = if first {
            let n = self.listings.fetch_add(1, Ordering::SeqCst) + 1;
            n <= self.config.expired_listings
        } else {
            // Later pages of a listing share its first page's fate.
            self.listings.load(Ordering::SeqCst) <= self.config.expired_listings
        };
        let all = &self.config.objects;
        let end = (start + self.config.page_size).min(all.len() as u64);
        let mut files = Vec::new();
        for object in &all[start.min(end) as usize..end as usize] {
            let mut entry = json!({
                "name": object.key,
                "size": object.size,
                "md5": object.md5,
            });
            if let Some(records) = object.records {
                entry["records"] = json!(records);
            }
            match self.config.form {
                RefForm::S3Uri => {
                    entry["s3_uri"] = json!(format!("s3://{}/{}", object.bucket, object.key))
                }
                RefForm::Presigned => entry["url"] = json!(self.presign(object, expired).await),
            }
            files.push(entry);
        }
        let next = (end < all.len() as u64).then(|| encode_cursor(end));
        (files, next)
    }

    async fn presign(&self, object: &ExportObject, expired: bool) -> String {
        let (start, ttl) = if expired {
            (
                SystemTime::now() - Duration::from_secs(7200),
                Duration::from_secs(3600),
            )
        } else {
            (SystemTime::now(), self.config.url_ttl)
        };
        let presigning = PresigningConfig::builder()
            .start_time(start)
            .expires_in(ttl)
            .build()
            .unwrap();
        let request = self
            .s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .presigned(presigning)
            .await
            .unwrap();
        let url = request.uri().to_string();
        match &self.config.url_base {
            Some(base) => {
                let parsed = url::Url::parse(&url).unwrap();
                let query = parsed.query().map(|q| format!("?{q}")).unwrap_or_default();
                format!("{base}{}{query}", parsed.path())
            }
            None => url,
        }
    }
}

fn answer(status: StatusCode, body: Value, headers: &[(&str, &str)]) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

/// Headers of a recorded request, for assertions on what was sent with it.
pub fn header_names(headers: &HeaderMap) -> Vec<String> {
    headers.keys().map(|k| k.as_str().to_string()).collect()
}
