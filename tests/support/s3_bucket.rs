//! Buckets in moto's S3 (started by `scripts/test.sh`, address in `GATELAKE_TEST_MOTO`) to
//! copy from: a fresh bucket per test, objects put whole or as multipart uploads, versioning,
//! and the environment that points the binary's S3 client at moto.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, CompletedMultipartUpload, CompletedPart};
use sha2::{Digest, Sha256};

pub struct TestBucket {
    pub name: String,
    pub client: aws_sdk_s3::Client,
}

/// The environment that points the binary's S3 client at moto with static test keys.
pub fn moto_env() -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT_URL_S3".into(), super::identity::moto_url()),
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ]
}

/// `n` bytes that differ from object to object (a seed per object), cheap to make.
pub fn bytes_of(seed: u64, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < n {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.truncate(n);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl TestBucket {
    /// A fresh bucket with a unique name; versioned when asked.
    pub async fn new(prefix: &str, versioned: bool) -> TestBucket {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(super::identity::moto_url())
            .force_path_style(true)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .build();
        let client = aws_sdk_s3::Client::from_conf(conf);
        let name = format!(
            "{prefix}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        )
        .to_ascii_lowercase();
        client
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating bucket {name} in moto: {e:?}"));
        if versioned {
            client
                .put_bucket_versioning()
                .bucket(&name)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .expect("enable versioning");
        }
        TestBucket { name, client }
    }

    pub fn uri(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }

    /// Put `data` at `key` in one request; returns the version id (versioned buckets).
    pub async fn put(&self, key: &str, data: Vec<u8>) -> Option<String> {
        self.client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(data))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"))
            .version_id
    }

    /// Put `data` at `key` as a multipart upload of `part` bytes per part (ETag `md5-N`).
    pub async fn put_multipart(&self, key: &str, data: &[u8], part: usize) {
        let up = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .expect("create multipart upload");
        let id = up.upload_id.expect("upload id");
        let mut done = Vec::new();
        for (i, chunk) in data.chunks(part).enumerate() {
            let n = i as i32 + 1;
            let r = self
                .client
                .upload_part()
                .bucket(&self.name)
                .key(key)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .expect("upload part");
            done.push(
                CompletedPart::builder()
                    .part_number(n)
                    .set_e_tag(r.e_tag)
                    .build(),
            );
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .expect("complete multipart upload");
    }

    /// Put many small objects, a few at a time.
    pub async fn put_many(&self, objects: Vec<(String, Vec<u8>)>) {
        use futures::StreamExt;
        futures::stream::iter(objects)
            .map(|(k, d)| async move {
                self.put(&k, d).await;
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
    }
}
