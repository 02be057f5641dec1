//! S3 intermediary objects (issue 16): an API that serves real volumes hands back where its
//! data is — presigned HTTPS URLs or `s3://bucket/key` references, often after an
//! asynchronous export — instead of paging its records; `gatelake copy` copies an existing
//! bucket prefix. Each object is one of the run's units (`crate::run::unit`), landed as-is
//! (byte for byte, verified) or as records (through the normal encode path).
//!
//! The shared vocabulary lives here; each concern is a file of its own:
//! - where references come from: a page's records, an export's final status document, or a
//!   ListObjectsV2 listing of a prefix;
//! - how an object is read: with the run's AWS credentials (`aws-sdk-s3`) or through its
//!   presigned URL (which carries its own signature: no other credential is ever attached);
//! - how it lands: [`Land::AsIs`] (one streamed GET, its parts staged as parallel blocks,
//!   size and checksum verified) or [`Land::Records`].

pub mod api_listing;
pub mod decode;
mod decode_fault;
pub mod error;
pub mod export;
mod json_scan;
pub mod land;
pub mod prefix;
pub mod ranged;
pub mod read;
pub mod records;
pub mod refs;
pub mod s3;
pub mod source;
pub mod url;
pub mod verify;

pub use error::ObjectError;
pub use prefix::{list_prefix, PrefixFilter};
pub use read::{ObjectHead, ObjectReader};
pub use s3::{S3Access, S3Settings};
pub use url::{object_name, HostPolicy, S3Uri};
pub use verify::{ObjectVerifier, Verified};

use serde::{Deserialize, Serialize};

/// Where an object is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectLocation {
    /// `s3://bucket/key`, read with the run's AWS credentials.
    S3 { bucket: String, key: String },
    /// An HTTPS URL (presigned or plain). The URL is a secret while it holds a signature: it
    /// is never logged, saved or shown with its query string (see `crate::secret`).
    Url { url: String },
}

/// A checksum an object is verified against, as its source states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "algorithm", content = "value", rename_all = "snake_case")]
pub enum Checksum {
    /// Base64 CRC32 (`x-amz-checksum-crc32`).
    Crc32(String),
    /// Base64 CRC32C (`x-amz-checksum-crc32c`).
    Crc32c(String),
    /// Base64 CRC64NVME (`x-amz-checksum-crc64nvme`: what S3 computes for objects uploaded
    /// without a checksum).
    Crc64nvme(String),
    /// Base64 SHA-1 (`x-amz-checksum-sha1`).
    Sha1(String),
    /// Base64 SHA-256 (`x-amz-checksum-sha256`), or hex from a reference's own field.
    Sha256(String),
    /// Hex MD5: a single-part object's ETag, or a reference's own field.
    Md5(String),
}

impl Checksum {
    /// Every algorithm's name, as the manifest and `x-amz-checksum-<name>` spell it.
    pub const ALGORITHMS: [&'static str; 6] =
        ["crc32", "crc32c", "crc64nvme", "sha1", "sha256", "md5"];

    /// The algorithm's name (`crc32c`, `sha256`, …).
    pub fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Crc32(_) => "crc32",
            Checksum::Crc32c(_) => "crc32c",
            Checksum::Crc64nvme(_) => "crc64nvme",
            Checksum::Sha1(_) => "sha1",
            Checksum::Sha256(_) => "sha256",
            Checksum::Md5(_) => "md5",
        }
    }

    /// The value as its source stated it (base64, or hex).
    pub fn value(&self) -> &str {
        match self {
            Checksum::Crc32(v)
            | Checksum::Crc32c(v)
            | Checksum::Crc64nvme(v)
            | Checksum::Sha1(v)
            | Checksum::Sha256(v)
            | Checksum::Md5(v) => v,
        }
    }

    /// The checksum named by [`Checksum::algorithm`] (case-insensitive; `crc-32c`,
    /// `sha-256` accepted), `None` for an algorithm it does not know.
    pub fn from_parts(algorithm: &str, value: String) -> Option<Checksum> {
        let name: String = algorithm
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match name.as_str() {
            "crc32" => Checksum::Crc32(value),
            "crc32c" => Checksum::Crc32c(value),
            "crc64nvme" => Checksum::Crc64nvme(value),
            "sha1" => Checksum::Sha1(value),
            "sha256" => Checksum::Sha256(value),
            "md5" => Checksum::Md5(value),
            _ => return None,
        })
    }
}

/// One object to land: where it is and what its source says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub location: ObjectLocation,
    /// Its name under the run's folder (`/`-separated, relative): the key below the copied
    /// prefix, or the URL's path's last segments.
    pub name: String,
    /// Size in bytes, when the source states it (always checked against what was read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// Records the object holds, when the source states it (checked with `--land records`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// The S3 ETag (quotes removed) and version id, when known: with the key they identify
    /// the exact bytes landed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// RFC 3339, from the listing (`--modified-since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// How an object lands in the lake, chosen per job (`--land`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Land {
    /// Byte for byte, its name kept under the run's folder, size and checksum verified.
    #[default]
    AsIs,
    /// Its content (jsonl, a JSON array, csv; gzip, zstd or none, detected by content) goes
    /// through the encode path: the job's format, chunk size, schema and drift policy.
    Records,
}

/// Who moves an as-is object's bytes (`--copy-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyMode {
    /// This process reads ranges from S3 and stages them as blocks (always works).
    #[default]
    Client,
    /// The storage account reads presigned range URLs itself (`Put Block From URL`): the
    /// bytes never pass through this machine. Needs an account that can reach S3.
    Server,
}

/// How a run's objects are read and landed, shared by `pull` (references in pages, exports)
/// and `copy` (a bucket prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectsConfig {
    pub land: Land,
    pub copy_mode: CopyMode,
    /// Size of one part (one staged block) of an as-is object.
    pub part_size: u64,
    /// Parts (of one or several objects) in flight at once; memory stays bounded by
    /// `concurrency × part_size` whatever the objects' sizes.
    pub concurrency: usize,
    /// Hosts a presigned or plain object URL may point at, beyond the configured S3 endpoint
    /// and AWS's own S3 hosts (`--allow-object-host`).
    pub allow_hosts: Vec<String>,
    /// When not empty, the only buckets an `s3://` reference may name (`--allow-bucket`).
    pub allow_buckets: Vec<String>,
    /// `--land records`: the dot-separated member path of the records array when each
    /// object is one JSON document (`--object-records-path data.rows`); `None`: the layout
    /// (jsonl, a top-level JSON array, csv) is detected from the content.
    pub records_path: Option<String>,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        Self {
            land: Land::AsIs,
            copy_mode: CopyMode::Client,
            part_size: 8 << 20,
            concurrency: 8,
            allow_hosts: Vec::new(),
            allow_buckets: Vec::new(),
            records_path: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_checksum_names_its_algorithm_and_round_trips() {
        for name in Checksum::ALGORITHMS {
            let c = Checksum::from_parts(name, "v".into()).unwrap();
            assert_eq!((c.algorithm(), c.value()), (name, "v"));
            let json = serde_json::to_value(&c).unwrap();
            assert_eq!(json["algorithm"], name);
        }
        assert_eq!(
            Checksum::from_parts("SHA-256", "x".into()),
            Some(Checksum::Sha256("x".into()))
        );
        assert_eq!(Checksum::from_parts("blake3", "x".into()), None);
    }
}
