//! Reading S3 objects and presigned URLs (issue 16), against moto's S3 (started by
//! `scripts/test.sh`) and local servers that misbehave on purpose: versioned and unversioned
//! buckets, every `x-amz-checksum-*` algorithm, a multipart object over 16 MiB (its `md5-N`
//! ETag checked), presigned URLs, ListObjectsV2 over several pages with filters, the host and
//! bucket policy (a URL on a foreign loopback port receives no request), expired URLs, 404,
//! SlowDown and truncated bodies, and the S3 client the engine builds from credentials of
//! the web-identity exchange.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart,
    VersioningConfiguration,
};
use futures::StreamExt;
use gatelake::engine::{AwsRoleSettings, Engine, IdentitySettings, WebIdentityKind};
use gatelake::identity::aws::AwsCredentials;
use gatelake::objects::s3::s3_client;
use gatelake::objects::{
    list_prefix, Checksum, ObjectError, ObjectHead, ObjectLocation, ObjectReader, ObjectRef,
    ObjectVerifier, ObjectsConfig, PrefixFilter, S3Settings, S3Uri,
};
use gatelake::retry::{Retrier, RetryPolicy};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::identity::{jwt, moto_url, now, StsFront, TrustPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn static_credentials() -> Arc<AwsCredentials> {
    Arc::new(AwsCredentials::new(SharedCredentialsProvider::new(
        Credentials::new("testing", "testing", None, None, "test"),
    )))
}

fn moto_settings() -> S3Settings {
    S3Settings {
        region: "us-east-1".into(),
        endpoint_url: Some(moto_url()),
    }
}

/// An S3 client on moto for setting up buckets and objects.
fn admin() -> aws_sdk_s3::Client {
    s3_client(&moto_settings(), static_credentials(), None)
        .unwrap()
        .client
}

fn fast_retrier() -> Retrier {
    Retrier::new(RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(50),
        deadline: Duration::from_secs(30),
        ..RetryPolicy::default()
    })
}

fn reader_with(config: &ObjectsConfig) -> ObjectReader {
    let access = s3_client(&moto_settings(), static_credentials(), None).unwrap();
    let http = gatelake::http::storage_client(&Default::default()).unwrap();
    ObjectReader::new(Some(access), http, config)
        .unwrap()
        .with_retrier(fast_retrier())
}

fn reader() -> ObjectReader {
    reader_with(&ObjectsConfig::default())
}

async fn bucket(name: &str, versioned: bool) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let bucket = format!(
        "objread-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let s3 = admin();
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    if versioned {
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    bucket
}

async fn put(bucket: &str, key: &str, data: &[u8]) -> Option<String> {
    admin()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap()
        .version_id()
        .map(str::to_string)
}

fn s3_ref(bucket: &str, key: &str) -> ObjectRef {
    ObjectRef {
        location: ObjectLocation::S3 {
            bucket: bucket.into(),
            key: key.into(),
        },
        name: key.rsplit('/').next().unwrap().into(),
        size: None,
        checksum: None,
        records: None,
        etag: None,
        version_id: None,
        last_modified: None,
    }
}

fn url_ref(url: &str) -> ObjectRef {
    ObjectRef {
        location: ObjectLocation::Url { url: url.into() },
        ..s3_ref("unused", "obj")
    }
}

/// Read the whole object in `part`-byte ranges, feeding the verifier in order.
async fn read_verified(
    reader: &ObjectReader,
    obj: &ObjectRef,
    head: &ObjectHead,
    part: u64,
) -> Result<(Vec<u8>, gatelake::objects::Verified), ObjectError> {
    let mut verifier = ObjectVerifier::new(obj, head)?;
    let mut out = Vec::new();
    let mut start = 0;
    while start < head.size {
        let end = (start + part).min(head.size);
        let bytes = reader.get_range(obj, head, start..end).await?;
        verifier.update(&bytes);
        out.extend_from_slice(&bytes);
        start = end;
    }
    Ok((out, verifier.finish()?))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

#[tokio::test]
async fn a_versioned_object_is_read_as_the_version_its_head_saw() {
    let b = bucket("versioned", true).await;
    let v1 = put(&b, "data/a.json", b"first version").await.unwrap();
    let reader = reader();
    let obj = s3_ref(&b, "data/a.json");
    let head = reader.head(&obj).await.unwrap();
    assert_eq!(head.version_id.as_deref(), Some(v1.as_str()));
    assert_eq!(head.size, 13);
    // Replaced mid-copy: the pinned version is still what is read.
    let v2 = put(&b, "data/a.json", b"second, longer version")
        .await
        .unwrap();
    assert_ne!(v1, v2);
    let (bytes, verified) = read_verified(&reader, &obj, &head, 5).await.unwrap();
    assert_eq!(bytes, b"first version");
    assert_eq!(
        verified.checksums,
        vec![Checksum::Md5(md5_hex(b"first version"))]
    );
    // A reference naming the old version heads that version.
    let pinned = ObjectRef {
        version_id: Some(v1.clone()),
        ..obj.clone()
    };
    assert_eq!(reader.head(&pinned).await.unwrap().size, 13);
    assert_eq!(reader.head(&obj).await.unwrap().size, 22);
    // A presigned URL of the old version reads it too.
    let url = reader
        .presigned_url(&pinned, Duration::from_secs(300))
        .await
        .unwrap();
    assert!(url.contains("versionId="), "{}", url.len());
    let via_url = url_ref(&url);
    let head = reader.head(&via_url).await.unwrap();
    let (bytes, _) = read_verified(&reader, &via_url, &head, 4).await.unwrap();
    assert_eq!(bytes, b"first version");
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

#[tokio::test]
async fn an_object_replaced_mid_copy_is_an_error_naming_it() {
    let b = bucket("replaced", false).await;
    put(&b, "k.bin", b"0123456789").await;
    let reader = reader();
    let obj = s3_ref(&b, "k.bin");
    let head = reader.head(&obj).await.unwrap();
    assert_eq!(head.version_id, None);
    assert_eq!(
        reader.get_range(&obj, &head, 2..5).await.unwrap(),
        &b"234"[..]
    );
    put(&b, "k.bin", b"abcdefghij").await;
    let e = reader.get_range(&obj, &head, 0..10).await.unwrap_err();
    assert!(matches!(e, ObjectError::Changed { .. }), "{e}");
    assert!(e.to_string().contains(&format!("s3://{b}/k.bin")), "{e}");
    // A reference pinned to the old ETag: its head says so.
    let pinned = ObjectRef {
        etag: head.etag.clone(),
        ..obj
    };
    let e = reader.head(&pinned).await.unwrap_err();
    assert!(matches!(e, ObjectError::Changed { .. }), "{e}");
}

#[tokio::test]
async fn a_listed_small_object_is_read_whole_in_one_get_pinned_to_its_listed_etag() {
    let b = bucket("whole", false).await;
    let data = pattern(70_000, 3);
    put(&b, "w.bin", &data).await;
    let reader = reader();
    let unlisted = s3_ref(&b, "w.bin");
    // No listed ETag: nothing to pin one GET to, so the caller heads the object first.
    assert!(reader.get_whole(&unlisted).await.unwrap().is_none());
    let head = reader.head(&unlisted).await.unwrap();
    let listed = ObjectRef {
        etag: head.etag.clone(),
        size: Some(head.size),
        ..unlisted.clone()
    };
    let (got, bytes) = reader.get_whole(&listed).await.unwrap().unwrap();
    assert_eq!(bytes, &data[..]);
    assert_eq!(got.size, head.size);
    assert_eq!(got.etag, head.etag);
    assert_eq!(got.etag_is_md5, head.etag_is_md5);
    let mut verifier = ObjectVerifier::new(&listed, &got).unwrap();
    verifier.update(&bytes);
    let verified = verifier.finish().unwrap();
    assert_eq!(verified.size, 70_000);
    // Replaced since it was listed: an error naming it, never the new bytes.
    put(&b, "w.bin", &pattern(70_000, 4)).await;
    let e = reader.get_whole(&listed).await.unwrap_err();
    assert!(matches!(e, ObjectError::Changed { .. }), "{e}");
    assert!(e.to_string().contains(&format!("s3://{b}/w.bin")), "{e}");
}

#[tokio::test]
async fn missing_objects_are_not_found() {
    let b = bucket("missing", false).await;
    let reader = reader();
    let e = reader.head(&s3_ref(&b, "nope.json")).await.unwrap_err();
    assert!(matches!(e, ObjectError::NotFound { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("s3://{b}/nope.json")),
        "{e}"
    );
}

#[tokio::test]
async fn every_s3_checksum_algorithm_is_verified() {
    let b = bucket("checksums", false).await;
    let s3 = admin();
    let data = pattern(300_000, 7);
    for (algorithm, key) in [
        (ChecksumAlgorithm::Crc32, "crc32"),
        (ChecksumAlgorithm::Crc32C, "crc32c"),
        (ChecksumAlgorithm::Sha1, "sha1"),
        (ChecksumAlgorithm::Sha256, "sha256"),
    ] {
        s3.put_object()
            .bucket(&b)
            .key(key)
            .checksum_algorithm(algorithm)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        let reader = reader();
        let obj = s3_ref(&b, key);
        let head = reader.head(&obj).await.unwrap();
        let stated = head
            .checksum
            .clone()
            .unwrap_or_else(|| panic!("{key}: no checksum in {head:?}"));
        let (bytes, verified) = read_verified(&reader, &obj, &head, 65_536).await.unwrap();
        assert_eq!(bytes, data);
        assert_eq!(verified.checksums, vec![stated.clone()], "{key}");
        // The same object with a checksum it does not have: a mismatch naming the object.
        let tampered = ObjectHead {
            checksum: Some(match stated {
                Checksum::Crc32(_) => Checksum::Crc32("AAAAAA==".into()),
                Checksum::Crc32c(_) => Checksum::Crc32c("AAAAAA==".into()),
                Checksum::Sha1(_) => Checksum::Sha1("A".repeat(27) + "="),
                Checksum::Sha256(_) => Checksum::Sha256("0".repeat(64)),
                other => panic!("{other:?}"),
            }),
            ..head.clone()
        };
        let e = read_verified(&reader, &obj, &tampered, 100_000)
            .await
            .unwrap_err();
        assert!(
            matches!(e, ObjectError::Mismatch { .. }) && e.to_string().contains(key),
            "{e}"
        );
    }
    // The reference's own checksum (hex SHA-256) is checked too.
    let reader = reader();
    let obj = ObjectRef {
        checksum: Some(Checksum::Sha256(hex_sha256(&data))),
        size: Some(data.len() as u64),
        ..s3_ref(&b, "crc32")
    };
    let head = reader.head(&obj).await.unwrap();
    let (_, verified) = read_verified(&reader, &obj, &head, 1 << 20).await.unwrap();
    assert_eq!(verified.checksums.len(), 2, "{verified:?}");
}

fn hex_sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Upload `data` to `key` in parts of `part` bytes, with S3 checksums of `algorithm`
/// (COMPOSITE: a checksum of the parts' checksums) when given.
async fn multipart(
    bucket: &str,
    key: &str,
    data: &[u8],
    part: usize,
    algorithm: Option<ChecksumAlgorithm>,
) {
    let s3 = admin();
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .set_checksum_algorithm(algorithm.clone())
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let mut parts = Vec::new();
    for (i, chunk) in data.chunks(part).enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .set_checksum_algorithm(algorithm.clone())
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .set_checksum_sha256(out.checksum_sha256().map(str::to_string))
                .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_string))
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_multipart_object_over_16_mib_is_verified_by_its_md5_n_etag() {
    let b = bucket("multipart", false).await;
    let key = "big/object.bin";
    let part = 8 << 20;
    let data = pattern(2 * part + (1 << 20) + 17, 3);
    multipart(&b, key, &data, part, None).await;
    let reader = reader();
    let obj = s3_ref(&b, key);
    let head = reader.head(&obj).await.unwrap();
    assert_eq!(head.size, data.len() as u64);
    assert_eq!(head.parts, Some(3));
    assert_eq!(head.part_size, Some(part as u64), "{head:?}");
    assert!(head.etag.as_deref().unwrap().ends_with("-3"));
    // Ranges that do not line up with the upload's parts.
    let (bytes, verified) = read_verified(&reader, &obj, &head, 5 << 20).await.unwrap();
    assert!(bytes == data);
    assert_eq!(
        verified.checksums,
        vec![Checksum::Md5(head.etag.clone().unwrap())]
    );
}

#[tokio::test]
async fn composite_checksums_of_multipart_objects_are_verified() {
    let b = bucket("composite", false).await;
    let part = 5 << 20;
    let data = pattern(2 * part + 4099, 13);
    for (algorithm, key) in [
        (ChecksumAlgorithm::Sha256, "sha256.bin"),
        (ChecksumAlgorithm::Crc32C, "crc32c.bin"),
    ] {
        multipart(&b, key, &data, part, Some(algorithm)).await;
        let reader = reader();
        let obj = s3_ref(&b, key);
        let head = reader.head(&obj).await.unwrap();
        let stated = head
            .checksum
            .clone()
            .unwrap_or_else(|| panic!("{key}: {head:?}"));
        assert!(stated.value().ends_with("-3"), "composite: {stated:?}");
        assert_eq!(head.part_size, Some(part as u64));
        let (bytes, verified) = read_verified(&reader, &obj, &head, 3 << 20).await.unwrap();
        assert!(bytes == data);
        assert_eq!(verified.checksums, vec![stated], "{key}");
    }
}

#[tokio::test]
async fn a_prefix_is_listed_over_several_pages_with_filters() {
    let b = bucket("prefix", false).await;
    let keys: Vec<String> = (0..1005)
        .map(|i| format!("exports/run1/part-{i:04}.json"))
        .chain([
            "exports/run1/sub/deep.json".to_string(),
            "exports/run1/skip.tmp".to_string(),
            "exports/run1/folder/".to_string(),
            "exports/run10/other.json".to_string(),
            "elsewhere/x.json".to_string(),
        ])
        .collect();
    futures::stream::iter(keys.iter())
        .for_each_concurrent(16, |k| {
            let b = b.clone();
            async move {
                put(&b, k, b"{}").await;
            }
        })
        .await;
    let reader = reader();
    let uri = S3Uri::parse(&format!("s3://{b}/exports/run1/")).unwrap();
    let all = list_prefix(&reader, &uri, &PrefixFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1007, "every page, no folder marker");
    assert!(all.windows(2).all(|w| w[0].name < w[1].name));
    assert_eq!(all[0].name, "part-0000.json");
    assert_eq!(all[0].size, Some(2));
    assert!(all[0].etag.is_some() && all[0].last_modified.is_some());
    assert!(all.iter().any(|o| o.name == "sub/deep.json"));
    let json = PrefixFilter::new(&["*.json".into()], &["part-1*".into()], None).unwrap();
    let some = list_prefix(&reader, &uri, &json).await.unwrap();
    assert_eq!(some.len(), 1001, "part-0000..0999 and sub/deep.json");
    // A prefix that is not a folder: names are below its last '/'.
    let partial = S3Uri::parse(&format!("s3://{b}/exports/run1")).unwrap();
    let names: Vec<String> = list_prefix(
        &reader,
        &partial,
        &PrefixFilter::new(&["*.json".into()], &["part-*".into()], None).unwrap(),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|o| o.name)
    .collect();
    assert_eq!(names, ["run1/sub/deep.json", "run10/other.json"]);
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let none = PrefixFilter::new(&[], &[], Some(later)).unwrap();
    assert!(list_prefix(&reader, &uri, &none).await.unwrap().is_empty());
    // Outside --allow-bucket: refused.
    let strict = reader_with(&ObjectsConfig {
        allow_buckets: vec!["another-bucket".into()],
        ..Default::default()
    });
    let e = list_prefix(&strict, &uri, &PrefixFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ObjectError::BucketRefused { .. }), "{e}");
    let e = strict
        .head(&s3_ref(&b, "exports/run1/part-0001.json"))
        .await
        .unwrap_err();
    assert!(matches!(e, ObjectError::BucketRefused { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP server answering canned responses in order (the last one repeats), recording
// each request's head.
// ---------------------------------------------------------------------------------------------

struct Canned {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Canned {
    async fn start(responses: Vec<Vec<u8>>) -> Canned {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).to_string());
                let response = &responses[n.min(responses.len() - 1)];
                n += 1;
                let _ = sock.write_all(response).await;
                let _ = sock.shutdown().await;
            }
        });
        Canned {
            addr,
            requests,
            task,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.addr.port())
    }

    fn allow(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8], content_length: usize) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {content_length}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn s3_error(status: &str, code: &str, message: &str) -> Vec<u8> {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message><X-Amz-Expires>60</X-Amz-Expires></Error>");
    response(
        status,
        &[("Content-Type", "application/xml")],
        body.as_bytes(),
        body.len(),
    )
}

const SECRET_QUERY: &str = "X-Amz-Signature=s3cr3tsignaturevalue&X-Amz-Security-Token=t0kenvalue";

#[tokio::test]
async fn a_url_on_a_foreign_loopback_port_receives_no_request() {
    let foreign = Canned::start(vec![response("200 OK", &[], b"x", 1)]).await;
    // moto is the configured endpoint: only its port is an S3 host here.
    let reader = reader();
    let obj = url_ref(&foreign.url(&format!("/bucket/key.json?{SECRET_QUERY}")));
    let head = ObjectHead {
        size: 1,
        ..Default::default()
    };
    let errors = [
        reader.head(&obj).await.unwrap_err(),
        reader.get_range(&obj, &head, 0..1).await.unwrap_err(),
        reader
            .presigned_url(&obj, Duration::from_secs(60))
            .await
            .unwrap_err(),
        reader.check(&obj).unwrap_err(),
    ];
    for e in errors {
        let text = e.to_string();
        assert!(matches!(e, ObjectError::HostRefused { .. }), "{text}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0ken") && !text.contains('?'),
            "{text}"
        );
        assert!(text.contains(&foreign.url("/bucket/key.json")), "{text}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(foreign.requests().is_empty(), "{:?}", foreign.requests());
}

#[tokio::test]
async fn an_expired_presigned_url_is_its_own_error() {
    let server = Canned::start(vec![s3_error(
        "403 Forbidden",
        "AccessDenied",
        "Request has expired",
    )])
    .await;
    let reader = reader_with(&ObjectsConfig {
        allow_hosts: vec![server.allow()],
        ..Default::default()
    });
    let obj = url_ref(&server.url(&format!("/b/expired.json?{SECRET_QUERY}")));
    let e = reader.head(&obj).await.unwrap_err();
    assert!(matches!(e, ObjectError::Expired { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&server.url("/b/expired.json")) && !text.contains("s3cr3t"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 1, "not retried");
}

#[tokio::test]
async fn url_reads_retry_slowdown_and_truncated_bodies_and_attach_no_credential() {
    let server = Canned::start(vec![
        s3_error(
            "503 Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
        ),
        response(
            "206 Partial Content",
            &[
                ("Content-Range", "bytes 0-0/5"),
                ("ETag", "\"5d41402abc4b2a76b9719d911017c592\""),
            ],
            b"h",
            1,
        ),
        // Claims 5 bytes, sends 3, closes: a truncated body.
        response(
            "206 Partial Content",
            &[("Content-Range", "bytes 0-4/5")],
            b"hel",
            5,
        ),
        response(
            "206 Partial Content",
            &[("Content-Range", "bytes 0-4/5")],
            b"hello",
            5,
        ),
        s3_error(
            "404 Not Found",
            "NoSuchKey",
            "The specified key does not exist.",
        ),
    ])
    .await;
    let reader = reader_with(&ObjectsConfig {
        allow_hosts: vec![server.allow()],
        ..Default::default()
    });
    let obj = url_ref(&server.url(&format!("/b/hello.txt?{SECRET_QUERY}")));
    let head = reader.head(&obj).await.unwrap();
    assert_eq!(head.size, 5);
    assert_eq!(
        head.etag.as_deref(),
        Some("5d41402abc4b2a76b9719d911017c592")
    );
    // Not an S3 host: the ETag is not taken for an MD5.
    assert!(!head.etag_is_md5);
    let (bytes, verified) = read_verified(&reader, &obj, &head, 5).await.unwrap();
    assert_eq!(bytes, b"hello");
    assert_eq!(verified.size, 5);
    let requests = server.requests();
    assert_eq!(requests.len(), 4, "{requests:?}");
    for r in &requests {
        let lower = r.to_ascii_lowercase();
        assert!(
            !lower.contains("authorization:")
                && !lower.contains("x-amz-security-token:")
                && !lower.contains("cookie:"),
            "{r}"
        );
        assert!(lower.contains("range: bytes="), "{r}");
    }
    assert!(
        requests[3]
            .to_ascii_lowercase()
            .contains("if-match: \"5d41402abc4b2a76b9719d911017c592\""),
        "{}",
        requests[3]
    );
    let e = reader.get_range(&obj, &head, 0..5).await.unwrap_err();
    assert!(matches!(e, ObjectError::NotFound { .. }), "{e}");
}

#[tokio::test]
async fn slowdown_that_never_ends_gives_up_naming_the_object() {
    let server = Canned::start(vec![s3_error(
        "503 Slow Down",
        "SlowDown",
        "Please reduce your request rate.",
    )])
    .await;
    let reader = reader_with(&ObjectsConfig {
        allow_hosts: vec![server.allow()],
        ..Default::default()
    });
    let obj = url_ref(&server.url(&format!("/b/busy.bin?{SECRET_QUERY}")));
    let e = reader.head(&obj).await.unwrap_err();
    assert!(matches!(e, ObjectError::GaveUp { attempts: 4, .. }), "{e}");
    assert!(
        e.to_string().contains("busy.bin") && !e.to_string().contains("s3cr3t"),
        "{e}"
    );
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn the_engine_reads_s3_with_credentials_from_the_web_identity_exchange() {
    let issuer = "https://token.actions.githubusercontent.example";
    let sts = StsFront::start(
        TrustPolicy {
            issuer: issuer.into(),
            audience: "sts.amazonaws.com".into(),
            subject: "repo:org/objects:ref:refs/heads/main".into(),
        },
        Default::default(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        jwt(&serde_json::json!({
            "iss": issuer,
            "aud": "sts.amazonaws.com",
            "sub": "repo:org/objects:ref:refs/heads/main",
            "exp": now() + 600,
        })),
    )
    .unwrap();
    // As the SDKs read them (the other tests here build their client directly).
    std::env::set_var("AWS_ENDPOINT_URL_STS", sts.url());
    std::env::set_var("AWS_ENDPOINT_URL_S3", moto_url());
    let engine = Engine::new(IdentitySettings {
        azure: Default::default(),
        aws_role: Some(AwsRoleSettings {
            role_arn: "arn:aws:iam::123456789012:role/objects-reader".into(),
            web_identity: WebIdentityKind::File,
            audience: "sts.amazonaws.com".into(),
            token_file: Some(token_file),
            session_duration: Duration::from_secs(900),
            session_name: None,
            sts_region: "us-east-1".into(),
        }),
        ca_bundle: None,
    });
    let role = engine.role_credentials(None, "objects").unwrap().unwrap();
    let reader = engine
        .object_reader(&ObjectsConfig::default(), Some(role.credentials.clone()))
        .await
        .unwrap();
    let b = bucket("engine", false).await;
    let data = pattern(1 << 20, 9);
    put(&b, "in/one.bin", &data).await;
    let obj = s3_ref(&b, "in/one.bin");
    let head = reader.head(&obj).await.unwrap();
    let (bytes, _) = read_verified(&reader, &obj, &head, 256 << 10)
        .await
        .unwrap();
    assert!(bytes == data);
    assert!(
        sts.exchanges() >= 1,
        "the S3 requests were signed with exchanged credentials"
    );
    let listed = list_prefix(
        &reader,
        &S3Uri::parse(&format!("s3://{b}/in/")).unwrap(),
        &PrefixFilter::default(),
    )
    .await
    .unwrap();
    assert_eq!(listed.len(), 1);
    // A presigned URL on the configured endpoint is allowed and reads the same bytes.
    let url = reader
        .presigned_url(&obj, Duration::from_secs(120))
        .await
        .unwrap();
    assert!(url.starts_with(&moto_url()), "the endpoint override");
    let via = url_ref(&url);
    let head = reader.head(&via).await.unwrap();
    assert!(head.etag_is_md5, "moto is the configured S3 endpoint");
    let (bytes, verified) = read_verified(&reader, &via, &head, 300_000).await.unwrap();
    assert!(bytes == data);
    assert_eq!(verified.checksums.len(), 1);
}

#[tokio::test]
async fn an_empty_object_reads_as_zero_bytes_through_s3_and_its_url() {
    let b = bucket("empty", false).await;
    put(&b, "empty.json", b"").await;
    let reader = reader();
    let obj = s3_ref(&b, "empty.json");
    let head = reader.head(&obj).await.unwrap();
    assert_eq!(head.size, 0);
    let (bytes, verified) = read_verified(&reader, &obj, &head, 10).await.unwrap();
    assert!(bytes.is_empty());
    assert_eq!(
        verified.checksums,
        vec![Checksum::Md5("d41d8cd98f00b204e9800998ecf8427e".into())]
    );
    let url = reader
        .presigned_url(&obj, Duration::from_secs(60))
        .await
        .unwrap();
    let head = reader.head(&url_ref(&url)).await.unwrap();
    assert_eq!(head.size, 0);
}

/// An HTTPS front (the test CA) that forwards every request to moto as sent.
async fn tls_front_to_moto() -> support::identity::Server {
    async fn forward(req: axum::extract::Request) -> axum::response::Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let http = reqwest::Client::builder().no_gzip().build().unwrap();
        let mut fwd = http
            .request(parts.method.clone(), format!("{}{path}", moto_url()))
            .body(body.to_vec());
        for (k, v) in &parts.headers {
            if k != "host" && k != "content-length" {
                fwd = fwd.header(k, v);
            }
        }
        let resp = fwd.send().await.unwrap();
        let mut out = axum::response::Response::builder().status(resp.status().as_u16());
        let head = parts.method == axum::http::Method::HEAD;
        for (k, v) in resp.headers() {
            let hop = k == "transfer-encoding" || k == "connection";
            if !hop && (head || k != "content-length") {
                out = out.header(k, v);
            }
        }
        let bytes = resp.bytes().await.unwrap();
        out.body(axum::body::Body::from(bytes)).unwrap()
    }
    support::identity::serve_tls(axum::Router::new().fallback(forward)).await
}

#[tokio::test]
async fn s3_and_its_presigned_urls_over_https_trust_the_ca_bundle() {
    let front = tls_front_to_moto().await;
    let endpoint = format!("https://127.0.0.1:{}", front.addr.port());
    let b = bucket("tls", false).await;
    let data = pattern(200_000, 5);
    put(&b, "secure/a.bin", &data).await;
    let obj = s3_ref(&b, "secure/a.bin");
    let settings = S3Settings {
        region: "us-east-1".into(),
        endpoint_url: Some(endpoint.clone()),
    };
    let config = ObjectsConfig::default();
    // Without the CA bundle the test CA is not trusted.
    let untrusting = ObjectReader::new(
        Some(s3_client(&settings, static_credentials(), None).unwrap()),
        gatelake::http::storage_client(&Default::default()).unwrap(),
        &config,
    )
    .unwrap()
    .with_retrier(fast_retrier());
    let e = untrusting.head(&obj).await.unwrap_err();
    assert!(matches!(e, ObjectError::Failed { .. }), "not retried: {e}");
    assert!(e.to_string().contains("--ca-bundle"), "{e}");
    let url = untrusting
        .presigned_url(&obj, Duration::from_secs(60))
        .await
        .unwrap();
    let e = untrusting.head(&url_ref(&url)).await.unwrap_err();
    assert!(matches!(e, ObjectError::Failed { .. }), "not retried: {e}");
    assert!(
        e.to_string().contains("--ca-bundle") && !e.to_string().contains("X-Amz-Signature"),
        "{e}"
    );
    // With it (what the engine passes for --ca-bundle / SSL_CERT_FILE): S3 and URLs work.
    let ca = vec![support::identity::ca_file()];
    let sdk = gatelake::identity::aws::sdk_http_client(&ca).unwrap();
    let http = gatelake::http::storage_client(&gatelake::http::HttpOptions {
        ca_bundles: ca,
        ..Default::default()
    })
    .unwrap();
    let reader = ObjectReader::new(
        Some(s3_client(&settings, static_credentials(), sdk).unwrap()),
        http,
        &config,
    )
    .unwrap()
    .with_retrier(fast_retrier());
    let head = reader.head(&obj).await.unwrap();
    let (bytes, verified) = read_verified(&reader, &obj, &head, 64 << 10).await.unwrap();
    assert!(bytes == data);
    assert_eq!(verified.checksums.len(), 1);
    let url = reader
        .presigned_url(&obj, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(url.starts_with(&endpoint), "presigned on the endpoint");
    let via = url_ref(&url);
    let head = reader.head(&via).await.unwrap();
    let (bytes, _) = read_verified(&reader, &via, &head, 100_000).await.unwrap();
    assert!(bytes == data);
}

/// What a [`FaultyFront`] does to the next ranged GET.
#[derive(Debug, Clone, Copy)]
enum Fault {
    SlowDown,
    /// Moto's answer with its body cut in half (the connection closes early).
    Truncate,
}

/// A plain-HTTP front to moto (one request per connection) that answers ranged GETs with
/// the queued faults first, counting them.
struct FaultyFront {
    addr: SocketAddr,
    faults: Arc<Mutex<std::collections::VecDeque<Fault>>>,
    ranged_gets: Arc<AtomicU32>,
    /// The `Range` header of every ranged GET, in order.
    ranges: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultyFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultyFront {
    async fn start() -> FaultyFront {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let faults: Arc<Mutex<std::collections::VecDeque<Fault>>> = Arc::default();
        let ranged_gets = Arc::new(AtomicU32::new(0));
        let ranges: Arc<Mutex<Vec<String>>> = Arc::default();
        let (f, n, r) = (faults.clone(), ranged_gets.clone(), ranges.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (f, n, r) = (f.clone(), n.clone(), r.clone());
                tokio::spawn(async move { Self::serve(sock, f, n, r).await });
            }
        });
        FaultyFront {
            addr,
            faults,
            ranged_gets,
            ranges,
            task,
        }
    }

    async fn serve(
        mut sock: tokio::net::TcpStream,
        faults: Arc<Mutex<std::collections::VecDeque<Fault>>>,
        ranged_gets: Arc<AtomicU32>,
        ranges: Arc<Mutex<Vec<String>>>,
    ) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        let text = String::from_utf8_lossy(&buf).to_string();
        let mut lines = text.split("\r\n");
        let mut first = lines.next().unwrap().split(' ');
        let (method, target) = (
            first.next().unwrap().to_string(),
            first.next().unwrap().to_string(),
        );
        let headers: Vec<(String, String)> = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let ranged =
            method == "GET" && headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("range"));
        let fault = if ranged {
            ranged_gets.fetch_add(1, Ordering::SeqCst);
            let range = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("range"));
            ranges.lock().unwrap().extend(range.map(|(_, v)| v.clone()));
            faults.lock().unwrap().pop_front()
        } else {
            None
        };
        if let Some(Fault::SlowDown) = fault {
            let _ = sock
                .write_all(&s3_error(
                    "503 Slow Down",
                    "SlowDown",
                    "Please reduce your request rate.",
                ))
                .await;
            return;
        }
        let http = reqwest::Client::builder().no_gzip().build().unwrap();
        let mut fwd = http.request(method.parse().unwrap(), format!("{}{target}", moto_url()));
        for (k, v) in &headers {
            if !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length") {
                fwd = fwd.header(k.as_str(), v.as_str());
            }
        }
        let resp = fwd.send().await.unwrap();
        let status = resp.status();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nConnection: close\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        // The header (reqwest's content_length() is the body's, none for HEAD).
        let moto_length: Option<u64> = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        for (k, v) in resp.headers() {
            if !["content-length", "transfer-encoding", "connection"].contains(&k.as_str()) {
                head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
            }
        }
        let body = resp.bytes().await.unwrap();
        let length = if method == "HEAD" {
            moto_length.unwrap_or(0)
        } else {
            body.len() as u64
        };
        head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
        let _ = sock.write_all(head.as_bytes()).await;
        let send = match fault {
            Some(Fault::Truncate) => &body[..body.len() / 2],
            _ => &body[..],
        };
        let _ = sock.write_all(send).await;
        let _ = sock.shutdown().await;
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    fn fail_next(&self, faults: &[Fault]) {
        self.faults.lock().unwrap().extend(faults.iter().copied());
    }
}

#[tokio::test]
async fn s3_reads_retry_slowdown_and_truncated_bodies() {
    let front = FaultyFront::start().await;
    let b = bucket("faults", false).await;
    let data = pattern(3 << 20, 11);
    put(&b, "f/data.bin", &data).await;
    let settings = S3Settings {
        region: "us-east-1".into(),
        endpoint_url: Some(front.endpoint()),
    };
    let reader = ObjectReader::new(
        Some(s3_client(&settings, static_credentials(), None).unwrap()),
        gatelake::http::storage_client(&Default::default()).unwrap(),
        &ObjectsConfig::default(),
    )
    .unwrap()
    .with_retrier(fast_retrier());
    let obj = s3_ref(&b, "f/data.bin");
    let head = reader.head(&obj).await.unwrap();
    assert_eq!(head.size, data.len() as u64);
    front.fail_next(&[Fault::SlowDown, Fault::Truncate, Fault::SlowDown]);
    let (bytes, verified) = read_verified(&reader, &obj, &head, 2 << 20).await.unwrap();
    assert!(bytes == data);
    assert_eq!(verified.checksums.len(), 1);
    assert_eq!(
        front.ranged_gets.load(Ordering::SeqCst),
        5,
        "two ranges, three faults retried"
    );
    // A SlowDown that does not end: the reader gives up, naming the object.
    front.fail_next(&[Fault::SlowDown; 10]);
    let e = reader.get_range(&obj, &head, 0..10).await.unwrap_err();
    assert!(matches!(e, ObjectError::GaveUp { attempts: 4, .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("s3://{b}/f/data.bin")),
        "{e}"
    );
}

#[tokio::test]
async fn a_sequential_read_opens_a_broken_body_again_where_it_broke() {
    let front = FaultyFront::start().await;
    let b = bucket("sequential", false).await;
    let data = pattern(3 << 20, 23);
    put(&b, "s/data.bin", &data).await;
    let settings = S3Settings {
        region: "us-east-1".into(),
        endpoint_url: Some(front.endpoint()),
    };
    let reader = ObjectReader::new(
        Some(s3_client(&settings, static_credentials(), None).unwrap()),
        gatelake::http::storage_client(&Default::default()).unwrap(),
        &ObjectsConfig::default(),
    )
    .unwrap()
    .with_retrier(fast_retrier());
    let obj = s3_ref(&b, "s/data.bin");
    let head = reader.head(&obj).await.unwrap();
    // The first answer stops after half its bytes, the next open is refused once.
    front.fail_next(&[Fault::Truncate, Fault::SlowDown]);
    let mut read = reader.sequential(&obj, &head, 0..head.size).unwrap();
    let mut verifier = ObjectVerifier::new(&obj, &head).unwrap();
    let mut out = Vec::new();
    for len in [1 << 20, 1 << 20, 1 << 20] {
        let part = read.next_part(len).await.unwrap();
        assert_eq!(part.len() as u64, len);
        verifier.update(&part);
        out.extend_from_slice(&part);
    }
    assert_eq!(read.remaining(), 0);
    assert!(out == data);
    assert_eq!(verifier.finish().unwrap().checksums.len(), 1);
    // One GET for the whole object; after the break, only the bytes not received.
    let half = (3u64 << 20) / 2;
    assert_eq!(
        *front.ranges.lock().unwrap(),
        vec![
            format!("bytes=0-{}", (3 << 20) - 1),
            format!("bytes={half}-{}", (3 << 20) - 1),
            format!("bytes={half}-{}", (3 << 20) - 1),
        ]
    );
    // Asking past the end is refused before any request.
    assert!(read.next_part(1).await.is_err());
    // A body that keeps breaking: the read gives up, naming the object.
    front.fail_next(&[Fault::Truncate; 10]);
    let mut read = reader.sequential(&obj, &head, 0..head.size).unwrap();
    let e = read.next_part(head.size).await.unwrap_err();
    assert!(matches!(e, ObjectError::GaveUp { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("s3://{b}/s/data.bin")),
        "{e}"
    );
}
