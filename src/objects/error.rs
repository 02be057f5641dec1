//! Why reading, listing or verifying an object failed. Every variant names the object — its
//! `s3://bucket/key`, or its URL *without* the query string (a presigned URL's signature is a
//! secret) — so that the caller can say which object to look at, and the variants the caller
//! acts on are distinct: [`ObjectError::NotFound`], [`ObjectError::Expired`] (ask the API for
//! a fresh list), [`ObjectError::Changed`] (the object was replaced mid-copy), the refusals of
//! the host and bucket policy (nothing was sent), and the verification failures.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// 404 (`NoSuchKey`, `NoSuchVersion`, `NoSuchBucket`).
    #[error("object {object} does not exist (404{}): check the reference, or whether the object was deleted or moved", code_suffix(.code))]
    NotFound {
        object: String,
        code: Option<String>,
    },

    /// A presigned URL whose signature has expired (403 `AccessDenied` "Request has expired").
    #[error("the presigned URL of {object} has expired: ask the API for a fresh list of objects (or rerun: a new export hands out new URLs)")]
    Expired { object: String },

    /// The object is no longer the one `head` saw (412 on `If-Match`, or another ETag).
    #[error("object {object} changed while it was being read (it was version/ETag {pinned}): rerun to copy its new content")]
    Changed { object: String, pinned: String },

    /// 403 other than an expired URL.
    #[error("access to {object} was denied ({code}: {message}): {hint}")]
    Denied {
        object: String,
        code: String,
        message: String,
        hint: &'static str,
    },

    /// A URL whose host is not an S3 endpoint nor allowed: refused before any request.
    #[error("refused to read {object}: its host {host} is neither the configured S3 endpoint nor an AWS S3 host ({allowed}); if you trust it, add it with --allow-object-host {host}")]
    HostRefused {
        object: String,
        host: String,
        allowed: String,
    },

    /// An `s3://` reference outside `--allow-bucket`: refused before any request.
    #[error("refused to read {object}: bucket {bucket} is not in --allow-bucket ({allowed})")]
    BucketRefused {
        object: String,
        bucket: String,
        allowed: String,
    },

    /// A reference that cannot be read at all (an `s3://` URI without a key, a URL that
    /// does not parse, a scheme other than https).
    #[error("invalid object reference {reference}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// An `s3://` reference, but no S3 client was configured.
    #[error("cannot read {object}: no S3 client is configured for s3:// references")]
    NoS3Client { object: String },

    /// Transient failures (SlowDown, 503, 500, timeouts, truncated bodies) that outlasted
    /// the retries.
    #[error("reading {object} failed after {attempts} attempt(s) over {elapsed:?}: {cause}. S3 kept failing: rerun later (the run resumes where it stopped)")]
    GaveUp {
        object: String,
        attempts: u32,
        elapsed: Duration,
        cause: String,
    },

    /// Any other answer that retrying cannot fix.
    #[error("reading {object} failed: {cause}")]
    Failed { object: String, cause: String },

    /// What was read is not what the source said (size or checksum).
    #[error("object {object} failed verification: {what} expected {expected}, read {actual}. The copy was not landed; rerun, and if it repeats the source object is corrupt or its reference is wrong")]
    Mismatch {
        object: String,
        what: String,
        expected: String,
        actual: String,
    },

    /// A listing filter that does not compile (`--include`, `--exclude`).
    #[error("invalid filter {pattern:?}: {reason}")]
    InvalidFilter { pattern: String, reason: String },

    /// A key below the prefix that cannot be a file name in the lake.
    #[error("object {object} cannot be landed under its name {name:?}: {reason}")]
    UnsafeName {
        object: String,
        name: String,
        reason: String,
    },
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
}

impl ObjectError {
    /// Whether a rerun may succeed without anything changed by the user (the run should stop
    /// resumably rather than report a configuration error).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ObjectError::GaveUp { .. } | ObjectError::Changed { .. }
        )
    }
}
