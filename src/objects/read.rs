//! Reading an object: its head (size, ETag, version, checksum, part size) and byte ranges of
//! it, pinned to what the head saw, from S3 with the run's credentials or through a
//! presigned URL with nothing but the URL's own signature.
//!
//! Pinning: a ranged read names the head's version id (versioned buckets), else sends
//! `If-Match` with its ETag, so an object replaced mid-copy is an error naming it
//! ([`ObjectError::Changed`]), never a mix of two versions. Transient failures (SlowDown,
//! 500/503, timeouts, dropped connections, a body shorter than the range) are retried with
//! the one retry module's backoff; 404 and an expired presigned URL are distinct errors the
//! caller acts on. The host and bucket policy is checked before any request
//! ([`ObjectReader::check`]).
//!
//! A presigned GET URL is signed for GET only, so a URL's head is a one-byte ranged GET
//! (`Content-Range: bytes 0-0/<size>`). Only `Range` and `If-Match` are added to a URL's
//! request: no credential, no other header.

use super::error::ObjectError;
use super::s3::{classify, classify_sdk, error_fields, Failure, S3Access};
use super::url::{is_aws_s3_host, object_name, HostPolicy};
use super::{Checksum, ObjectLocation, ObjectRef, ObjectsConfig};
use crate::retry::{Attempt, GaveUp, Retrier, RetryPolicy};
use aws_sdk_s3::types::ChecksumMode;
use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_RANGE, ETAG, IF_MATCH, RANGE};
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod stream;
mod whole;

pub use stream::SequentialRead;

/// What `head` learned of an object; ranged reads are pinned to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectHead {
    pub size: u64,
    /// Quotes removed.
    pub etag: Option<String>,
    /// S3's version id (none for an unversioned bucket).
    pub version_id: Option<String>,
    /// S3's own checksum (`x-amz-checksum-*`); a value ending in `-N` is a composite of N
    /// parts' checksums.
    pub checksum: Option<Checksum>,
    /// A multipart object's part size (every part but the last), when known.
    pub part_size: Option<u64>,
    /// A multipart object's number of parts (from its ETag's `-N`).
    pub parts: Option<u32>,
    /// Whether the ETag is the content's MD5 (single part) or the MD5 of its parts' MD5s
    /// (`-N`): not for SSE-KMS/SSE-C objects, nor for hosts that are not S3.
    pub etag_is_md5: bool,
    /// RFC 3339.
    pub last_modified: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
}

impl ObjectHead {
    /// What reads are pinned to, for messages.
    pub fn pinned(&self) -> String {
        match (&self.version_id, &self.etag) {
            (Some(v), _) => format!("version {v}"),
            (None, Some(e)) => format!("ETag {e}"),
            (None, None) => "the object as first read".to_string(),
        }
    }
}

/// Reads objects: cheap to clone and share between tasks.
#[derive(Debug, Clone)]
pub struct ObjectReader {
    inner: Arc<Inner>,
    retrier: Retrier,
}

#[derive(Debug)]
struct Inner {
    s3: Option<S3Access>,
    http: reqwest::Client,
    hosts: HostPolicy,
    allow_buckets: Vec<String>,
}

/// How object reads are retried: 6 attempts, 250 ms doubling to 20 s, within 5 minutes.
pub fn object_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(250),
        cap: Duration::from_secs(20),
        deadline: Duration::from_secs(300),
        ..RetryPolicy::default()
    }
}

fn strip_quotes(etag: &str) -> String {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// `version_id` unless it is S3's `null` (an object written while versioning was off).
fn real_version(v: Option<&str>) -> Option<String> {
    v.filter(|v| !v.is_empty() && *v != "null")
        .map(str::to_string)
}

/// `hex32` or `hex32-N`: an MD5-style ETag, with its number of parts.
fn md5_etag_parts(etag: &str) -> Option<Option<u32>> {
    let (hex, parts) = match etag.split_once('-') {
        Some((h, n)) => (h, Some(n.parse::<u32>().ok()?)),
        None => (etag, None),
    };
    (hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(parts)
}

/// A multipart object's checksum as a composite (`value-N`) unless S3 says it covers the
/// whole object: S3 qualifies composite values with `-N`, but emulators may state the
/// composite bare and leave out `x-amz-checksum-type`. CRC64NVME is whole-object only.
fn composite_of_parts(
    checksum: Checksum,
    parts: Option<u32>,
    kind: Option<&aws_sdk_s3::types::ChecksumType>,
) -> Checksum {
    let whole = matches!(kind, Some(aws_sdk_s3::types::ChecksumType::FullObject))
        || matches!(checksum, Checksum::Crc64nvme(_));
    match parts {
        Some(n) if n > 1 && !whole && !checksum.value().contains('-') => {
            let value = format!("{}-{n}", checksum.value());
            Checksum::from_parts(checksum.algorithm(), value).unwrap_or(checksum)
        }
        _ => checksum,
    }
}

fn rfc3339(t: &aws_sdk_s3::primitives::DateTime) -> Option<String> {
    t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()
}

impl ObjectReader {
    /// A reader with `s3` for `s3://` references (and its endpoint allowed for URLs), the
    /// shared HTTP client for URLs, and the host and bucket policy of `config`.
    pub fn new(
        s3: Option<S3Access>,
        http: reqwest::Client,
        config: &ObjectsConfig,
    ) -> Result<ObjectReader, ObjectError> {
        let endpoint = s3.as_ref().and_then(|s| s.endpoint.clone());
        Ok(ObjectReader {
            inner: Arc::new(Inner {
                hosts: HostPolicy::new(endpoint, &config.allow_hosts)?,
                s3,
                http,
                allow_buckets: config.allow_buckets.clone(),
            }),
            retrier: Retrier::new(object_retry_policy()),
        })
    }

    /// The same reader with another retry policy (tests; a caller with tighter bounds).
    pub fn with_retrier(mut self, retrier: Retrier) -> ObjectReader {
        self.retrier = retrier;
        self
    }

    /// The S3 client, when there is one.
    pub fn s3_client(&self) -> Option<&aws_sdk_s3::Client> {
        self.inner.s3.as_ref().map(|s| &s.client)
    }

    /// Refuse a bucket outside `--allow-bucket` (when given).
    pub fn check_bucket(&self, bucket: &str, object: &str) -> Result<(), ObjectError> {
        let allowed = &self.inner.allow_buckets;
        if allowed.is_empty() || allowed.iter().any(|b| b == bucket) {
            return Ok(());
        }
        Err(ObjectError::BucketRefused {
            object: object.to_string(),
            bucket: bucket.to_string(),
            allowed: allowed.join(", "),
        })
    }

    /// Whether `obj` may be read (host policy for URLs, `--allow-bucket` for `s3://`),
    /// without sending anything.
    pub fn check(&self, obj: &ObjectRef) -> Result<(), ObjectError> {
        match &obj.location {
            ObjectLocation::S3 { bucket, .. } => self.check_bucket(bucket, &object_name(obj)),
            ObjectLocation::Url { url } => self.inner.hosts.check(url).map(|_| ()),
        }
    }

    fn s3_for(&self, object: &str) -> Result<&S3Access, ObjectError> {
        self.inner
            .s3
            .as_ref()
            .ok_or_else(|| ObjectError::NoS3Client {
                object: object.to_string(),
            })
    }

    /// Run one call under the retry policy; transient failures are retried.
    async fn retried<T, F, Fut>(
        &self,
        object: &str,
        pinned: &str,
        mut call: F,
    ) -> Result<T, ObjectError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let what = format!("reading {object}");
        let result = self
            .retrier
            .run(&what, |_| {
                let fut = call();
                async move {
                    match fut.await {
                        Ok(v) => Attempt::Done(v),
                        Err(Failure::Transient { cause, after }) => Attempt::Transient {
                            error: Failure::Transient { cause, after },
                            after,
                        },
                        Err(f) => Attempt::Fatal(f),
                    }
                }
            })
            .await;
        result.map_err(|g: GaveUp<Failure>| match g.error {
            Failure::Transient { cause, .. } => ObjectError::GaveUp {
                object: object.to_string(),
                attempts: g.attempts,
                elapsed: g.elapsed,
                cause,
            },
            f => f.into_error(object, pinned),
        })
    }

    /// Size, ETag, version, checksum and part size of `obj`. An `s3://` reference with a
    /// version id or ETag is pinned to it (another version is [`ObjectError::Changed`]).
    pub async fn head(&self, obj: &ObjectRef) -> Result<ObjectHead, ObjectError> {
        self.check(obj)?;
        match &obj.location {
            ObjectLocation::S3 { bucket, key } => self.head_s3(obj, bucket, key).await,
            ObjectLocation::Url { url } => self.head_url(obj, url).await,
        }
    }

    async fn head_s3(
        &self,
        obj: &ObjectRef,
        bucket: &str,
        key: &str,
    ) -> Result<ObjectHead, ObjectError> {
        let name = object_name(obj);
        let s3 = self.s3_for(&name)?;
        let version = real_version(obj.version_id.as_deref());
        let pinned = match (&version, &obj.etag) {
            (Some(v), _) => format!("version {v}"),
            (None, Some(e)) => format!("ETag {e}"),
            _ => "the listed object".into(),
        };
        let request = |part: Option<i32>, version: Option<String>, etag: Option<String>| {
            let mut r = s3
                .client
                .head_object()
                .bucket(bucket)
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .set_part_number(part);
            match (version, etag) {
                (Some(v), _) => r = r.version_id(v),
                (None, Some(e)) => r = r.if_match(quoted(&e)),
                _ => {}
            }
            async move { r.send().await.map_err(|e| classify_sdk(&e)) }
        };
        let out = self
            .retried(&name, &pinned, || {
                request(None, version.clone(), obj.etag.clone())
            })
            .await?;
        let size = u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0);
        let etag = out.e_tag().map(strip_quotes);
        let version_id = real_version(out.version_id());
        let encrypted = out.sse_customer_algorithm().is_some()
            || out
                .server_side_encryption()
                .is_some_and(|s| s.as_str().starts_with("aws:kms"));
        let md5_parts = etag.as_deref().and_then(md5_etag_parts);
        let checksum = [
            out.checksum_crc64_nvme()
                .map(|v| Checksum::Crc64nvme(v.to_string())),
            out.checksum_crc32_c()
                .map(|v| Checksum::Crc32c(v.to_string())),
            out.checksum_crc32().map(|v| Checksum::Crc32(v.to_string())),
            out.checksum_sha1().map(|v| Checksum::Sha1(v.to_string())),
            out.checksum_sha256()
                .map(|v| Checksum::Sha256(v.to_string())),
        ]
        .into_iter()
        .flatten()
        .next();
        let parts = md5_parts.flatten();
        let checksum = checksum.map(|c| composite_of_parts(c, parts, out.checksum_type()));
        let mut head = ObjectHead {
            size,
            etag: etag.clone(),
            version_id: version_id.clone(),
            checksum,
            part_size: None,
            parts,
            etag_is_md5: md5_parts.is_some() && !encrypted,
            last_modified: out.last_modified().and_then(rfc3339),
            content_type: out.content_type().map(str::to_string),
            content_encoding: out.content_encoding().map(str::to_string),
        };
        // A multipart object's parts: their size is needed to check an `md5-N` ETag or a
        // composite checksum. Uniform parts are assumed only when the first and the last
        // part agree with the total size.
        if let Some(n) = head.parts.filter(|n| *n >= 1) {
            let pinned_now = head.pinned();
            let part_len = |part: u32| {
                let (v, e) = (version_id.clone(), etag.clone());
                let name = name.clone();
                let pinned_now = pinned_now.clone();
                async move {
                    let out = self
                        .retried(&name, &pinned_now, || {
                            request(i32::try_from(part).ok(), v.clone(), e.clone())
                        })
                        .await?;
                    Ok::<u64, ObjectError>(
                        u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0),
                    )
                }
            };
            // An endpoint that cannot head a part only loses this check (the size and any
            // x-amz-checksum still apply); an object changed meanwhile fails its reads.
            let (first, last) = if n == 1 {
                (size, size)
            } else {
                match (part_len(1).await, part_len(n).await) {
                    (Ok(f), Ok(l)) => (f, l),
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::debug!(
                            "{name}: part sizes unknown ({e}); its md5-{n} ETag is not checked"
                        );
                        (0, 0)
                    }
                }
            };
            let uniform = first > 0
                && last <= first
                && first
                    .checked_mul(u64::from(n - 1))
                    .and_then(|s| s.checked_add(last))
                    == Some(size);
            if uniform {
                head.part_size = Some(first);
            }
        }
        Ok(head)
    }

    /// A URL's head: a one-byte ranged GET (a presigned GET URL is not signed for HEAD).
    async fn head_url(&self, obj: &ObjectRef, url: &str) -> Result<ObjectHead, ObjectError> {
        let parsed = self.inner.hosts.check(url)?;
        register_url_secrets(url);
        let name = object_name(obj);
        let s3_host = parsed.host_str().is_some_and(is_aws_s3_host)
            || self
                .inner
                .s3
                .as_ref()
                .and_then(|s| s.endpoint.as_ref())
                .is_some_and(|ep| {
                    ep.host_str() == parsed.host_str()
                        && ep.port_or_known_default() == parsed.port_or_known_default()
                });
        let pinned = obj
            .etag
            .clone()
            .map(|e| format!("ETag {e}"))
            .unwrap_or_default();
        let http = &self.inner.http;
        let etag_pin = obj.etag.clone();
        let (headers, size) = self
            .retried(&name, &pinned, || {
                let mut r = http.get(parsed.clone()).header(RANGE, "bytes=0-0");
                if let Some(e) = &etag_pin {
                    r = r.header(IF_MATCH, quoted(e));
                }
                let empty_check = http.get(parsed.clone());
                async move {
                    let resp = r.send().await.map_err(transport_failure)?;
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    match status {
                        206 => {
                            let size = total_size(&headers).ok_or_else(|| Failure::Fatal {
                                cause: "206 without a Content-Range total size".into(),
                            })?;
                            Ok((headers, size))
                        }
                        // The server ignores ranges: the whole object's length, body unread.
                        200 => Ok((headers, resp.content_length().unwrap_or(0))),
                        // An empty object has no byte 0: confirm with a plain GET.
                        416 => {
                            let resp = empty_check.send().await.map_err(transport_failure)?;
                            let status = resp.status().as_u16();
                            let headers = resp.headers().clone();
                            let body = resp.bytes().await.map_err(transport_failure)?;
                            if status == 200 && body.is_empty() {
                                Ok((headers, 0))
                            } else {
                                Err(Failure::Fatal {
                                    cause: format!(
                                        "416 for byte 0, then {status} with {} bytes",
                                        body.len()
                                    ),
                                })
                            }
                        }
                        _ => Err(failure_of(status, &headers, resp).await),
                    }
                }
            })
            .await?;
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(strip_quotes);
        let encrypted = header("x-amz-server-side-encryption")
            .is_some_and(|s| s.starts_with("aws:kms"))
            || header("x-amz-server-side-encryption-customer-algorithm").is_some();
        let md5_parts = etag.as_deref().and_then(md5_etag_parts);
        let n = md5_parts.flatten();
        Ok(ObjectHead {
            size,
            etag,
            version_id: real_version(header("x-amz-version-id").as_deref()),
            checksum: None,
            part_size: (n == Some(1)).then_some(size),
            parts: n,
            etag_is_md5: s3_host && md5_parts.is_some() && !encrypted,
            last_modified: header("last-modified")
                .and_then(|d| httpdate::parse_http_date(&d).ok())
                .and_then(|t| {
                    time::OffsetDateTime::from(t)
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok()
                }),
            content_type: header("content-type"),
            content_encoding: header("content-encoding"),
        })
    }

    /// The object's printable name, once `obj` passes the host policy and `range` lies
    /// within the `head.size` bytes it has (for a ranged and a sequential read alike).
    fn check_range(
        &self,
        obj: &ObjectRef,
        head: &ObjectHead,
        range: &Range<u64>,
    ) -> Result<String, ObjectError> {
        self.check(obj)?;
        let name = object_name(obj);
        if range.start > range.end || range.end > head.size {
            return Err(ObjectError::Failed {
                object: name,
                cause: format!(
                    "bytes {}..{} are outside its {} bytes",
                    range.start, range.end, head.size
                ),
            });
        }
        Ok(name)
    }

    /// Bytes `range` of `obj` as pinned by `head`.
    pub async fn get_range(
        &self,
        obj: &ObjectRef,
        head: &ObjectHead,
        range: Range<u64>,
    ) -> Result<Bytes, ObjectError> {
        let name = self.check_range(obj, head, &range)?;
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let want = range.end - range.start;
        let spec = format!("bytes={}-{}", range.start, range.end - 1);
        let pinned = head.pinned();
        match &obj.location {
            ObjectLocation::S3 { bucket, key } => {
                let s3 = self.s3_for(&name)?;
                self.retried(&name, &pinned, || {
                    let mut r = s3.client.get_object().bucket(bucket).key(key).range(&spec);
                    match (&head.version_id, &head.etag) {
                        (Some(v), _) => r = r.version_id(v),
                        (None, Some(e)) => r = r.if_match(quoted(e)),
                        _ => {}
                    }
                    async move {
                        let out = r.send().await.map_err(|e| classify_sdk(&e))?;
                        let body = out.body.collect().await.map_err(|e| Failure::Transient {
                            cause: format!("the body broke off: {e}"),
                            after: None,
                        })?;
                        checked_length(body.into_bytes(), want)
                    }
                })
                .await
            }
            ObjectLocation::Url { url } => {
                let parsed = self.inner.hosts.check(url)?;
                let http = &self.inner.http;
                let whole = range.start == 0 && range.end == head.size;
                self.retried(&name, &pinned, || {
                    let mut r = http.get(parsed.clone()).header(RANGE, &spec);
                    if let Some(e) = &head.etag {
                        r = r.header(IF_MATCH, quoted(e));
                    }
                    async move {
                        let resp = r.send().await.map_err(transport_failure)?;
                        let status = resp.status().as_u16();
                        let headers = resp.headers().clone();
                        match status {
                            206 => {
                                let start = range_start(&headers);
                                if start != Some(range.start) {
                                    return Err(Failure::Fatal {
                                        cause: format!("asked for bytes from {}, the answer's Content-Range starts at {start:?}", range.start),
                                    });
                                }
                            }
                            200 if whole => {}
                            200 => {
                                return Err(Failure::Fatal {
                                    cause: "the server ignores byte ranges (200 instead of 206)".into(),
                                })
                            }
                            _ => return Err(failure_of(status, &headers, resp).await),
                        }
                        let body = resp.bytes().await.map_err(transport_failure)?;
                        checked_length(body, want)
                    }
                })
                .await
            }
        }
    }

    /// A presigned GET URL for `obj` (its version when the reference names one), valid for
    /// `expires` (at most 7 days, and no longer than the credentials that sign it). A URL
    /// reference is returned as it is, once the host policy allows it.
    pub async fn presigned_url(
        &self,
        obj: &ObjectRef,
        expires: Duration,
    ) -> Result<String, ObjectError> {
        self.check(obj)?;
        let name = object_name(obj);
        match &obj.location {
            ObjectLocation::Url { url } => Ok(url.clone()),
            ObjectLocation::S3 { bucket, key } => {
                let s3 = self.s3_for(&name)?;
                let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires)
                    .map_err(|e| ObjectError::Failed {
                        object: name.clone(),
                        cause: format!("cannot presign for {expires:?}: {e}"),
                    })?;
                let presigned = s3
                    .client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(real_version(obj.version_id.as_deref()))
                    .presigned(config)
                    .await
                    .map_err(|e| ObjectError::Failed {
                        object: name.clone(),
                        cause: format!(
                            "presigning failed: {}",
                            crate::secret::redact(&crate::report::error_chain(&e))
                        ),
                    })?;
                let url = presigned.uri().to_string();
                register_url_secrets(&url);
                Ok(url)
            }
        }
    }
}

/// Enter a presigned URL's signature and security token in the registry of live secrets,
/// so that no message can show them even if the URL were quoted back.
pub fn register_url_secrets(url: &str) {
    if let Ok(u) = url::Url::parse(url) {
        for (k, v) in u.query_pairs() {
            let k = k.to_ascii_lowercase();
            if k.contains("signature")
                || k.contains("security-token")
                || k.contains("credential")
                || k == "sig"
            {
                crate::secret::register(&v);
            }
        }
    }
}

fn transport_failure(e: reqwest::Error) -> Failure {
    let transient = (e.is_timeout() || crate::retry::is_transient_transport(&e))
        && !super::s3::is_tls_failure(&e);
    // Without the URL: a presigned URL's query string is a secret.
    let e = e.without_url();
    let cause =
        super::s3::with_tls_hint(&e, crate::secret::redact(&crate::report::error_chain(&e)));
    if transient {
        Failure::Transient { cause, after: None }
    } else {
        Failure::Fatal { cause }
    }
}

/// The failure an unexpected status means, from S3's error body (read up to 16 KiB).
async fn failure_of(status: u16, headers: &HeaderMap, mut resp: reqwest::Response) -> Failure {
    let mut body = Vec::new();
    while body.len() < 16 * 1024 {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    let (code, message) = error_fields(&body);
    match classify(status, code.as_deref(), message.as_deref()) {
        Failure::Transient { cause, .. } => Failure::Transient {
            cause,
            after: crate::retry::retry_after(headers, SystemTime::now()),
        },
        f => f,
    }
}

/// A body must be exactly the range asked for: shorter is a truncated transfer (retried).
fn checked_length(body: Bytes, want: u64) -> Result<Bytes, Failure> {
    let got = body.len() as u64;
    if got == want {
        Ok(body)
    } else if got < want {
        Err(Failure::Transient {
            cause: format!("truncated: {got} of {want} bytes"),
            after: None,
        })
    } else {
        Err(Failure::Fatal {
            cause: format!("{got} bytes where {want} were asked for"),
        })
    }
}

/// `Content-Range: bytes 0-0/1234` → 1234.
fn total_size(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    v.rsplit_once('/')?.1.trim().parse().ok()
}

/// `Content-Range: bytes 100-199/1234` → 100.
fn range_start(headers: &HeaderMap) -> Option<u64> {
    content_range_start(headers.get(CONTENT_RANGE)?.to_str().ok()?)
}

/// `bytes 100-199/1234` → 100 (a `Content-Range` value, from a header or the SDK).
fn content_range_start(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes ")?
        .split_once('-')?
        .0
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn etags_and_ranges_parse() {
        assert_eq!(
            md5_etag_parts("d41d8cd98f00b204e9800998ecf8427e"),
            Some(None)
        );
        assert_eq!(
            md5_etag_parts("d41d8cd98f00b204e9800998ecf8427e-3"),
            Some(Some(3))
        );
        assert_eq!(md5_etag_parts("abc"), None);
        assert_eq!(md5_etag_parts("d41d8cd98f00b204e9800998ecf8427e-x"), None);
        assert_eq!(strip_quotes("W/\"abc\""), "abc");
        let mut h = HeaderMap::new();
        h.insert(CONTENT_RANGE, "bytes 100-199/1234".parse().unwrap());
        assert_eq!((total_size(&h), range_start(&h)), (Some(1234), Some(100)));
        assert_eq!(real_version(Some("null")), None);
        assert_eq!(real_version(Some("v1")).as_deref(), Some("v1"));
    }

    #[tokio::test]
    async fn a_reader_is_shared_between_tasks_and_refuses_before_sending() {
        let reader =
            ObjectReader::new(None, reqwest::Client::new(), &ObjectsConfig::default()).unwrap();
        let obj = ObjectRef {
            location: ObjectLocation::Url {
                url: "https://elsewhere.example/o?X-Amz-Signature=abcdef123456".into(),
            },
            name: "o".into(),
            size: None,
            checksum: None,
            records: None,
            etag: None,
            version_id: None,
            last_modified: None,
        };
        let (r, o) = (reader.clone(), obj.clone());
        let head = tokio::spawn(async move { r.head(&o).await }).await.unwrap();
        assert!(matches!(head, Err(ObjectError::HostRefused { .. })));
        let (r, o) = (reader.clone(), obj.clone());
        let range = tokio::spawn(async move {
            r.get_range(
                &o,
                &ObjectHead {
                    size: 1,
                    ..Default::default()
                },
                0..1,
            )
            .await
        });
        assert!(matches!(
            range.await.unwrap(),
            Err(ObjectError::HostRefused { .. })
        ));
        let s3 = ObjectRef {
            location: ObjectLocation::S3 {
                bucket: "b".into(),
                key: "k".into(),
            },
            ..obj
        };
        let e =
            tokio::spawn(async move { reader.presigned_url(&s3, Duration::from_secs(60)).await });
        assert!(matches!(
            e.await.unwrap(),
            Err(ObjectError::NoS3Client { .. })
        ));
    }

    #[test]
    fn multipart_checksums_are_composite_unless_s3_says_whole() {
        use aws_sdk_s3::types::ChecksumType;
        let c = || Checksum::Sha256("abc=".into());
        assert_eq!(composite_of_parts(c(), Some(3), None).value(), "abc=-3");
        assert_eq!(
            composite_of_parts(c(), Some(3), Some(&ChecksumType::Composite)).value(),
            "abc=-3"
        );
        assert_eq!(
            composite_of_parts(c(), Some(3), Some(&ChecksumType::FullObject)).value(),
            "abc="
        );
        assert_eq!(composite_of_parts(c(), None, None).value(), "abc=");
        assert_eq!(composite_of_parts(c(), Some(1), None).value(), "abc=");
        let q = Checksum::Crc32("abc=-3".into());
        assert_eq!(composite_of_parts(q, Some(3), None).value(), "abc=-3");
        let n = Checksum::Crc64nvme("abc=".into());
        assert_eq!(composite_of_parts(n, Some(3), None).value(), "abc=");
    }

    #[test]
    fn short_bodies_are_retried_long_ones_are_not() {
        assert!(checked_length(Bytes::from_static(b"abc"), 3).is_ok());
        assert!(matches!(
            checked_length(Bytes::from_static(b"ab"), 3),
            Err(Failure::Transient { .. })
        ));
        assert!(matches!(
            checked_length(Bytes::from_static(b"abcd"), 3),
            Err(Failure::Fatal { .. })
        ));
    }
}
