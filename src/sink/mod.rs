//! Where chunks land. One trait, [`Sink`], served by several backends with the same
//! behaviour: a local folder ([`local::LocalSink`]) and the Blob endpoint of an ADLS Gen2
//! account ([`azure::AzureSink`]). The same conformance suite (`tests/sink_conformance.rs`)
//! runs against every backend.
//!
//! The contract every backend keeps:
//! - `put` is atomic: a reader sees either the old object, or the whole new one, never part of
//!   it (local: temp file + rename; Azure: blocks staged, then committed in one call).
//! - conditional puts are real: `PutMode::Create` fails with [`SinkError::AlreadyExists`] when
//!   the object exists, `PutMode::Update(etag)` fails with [`SinkError::PreconditionFailed`]
//!   when it changed since that ETag was read. The checkpoint protocol relies on both.
//! - errors name the object's URL (never with a secret in it) and what to do.
//!
//! Each backend is built one way: [`local::LocalSink::new`] for a folder, [`azure::AzureSinkBuilder`]
//! for Azure (location, credential, the shared HTTP stack). Which one a `--dest` means, and
//! with which credential, is decided once, by the engine (`engine::sink`).
//!
//! Paths are `/`-separated and relative to the destination's root (its prefix).
//!
//! Multi-part writes (`stage_part` … `commit_parts`) are how an object too large for one
//! buffer is landed: its parts are staged, in any order and from several tasks, under an
//! upload id the caller chooses and can find again after a crash (`staged_parts`), and become
//! the object in one atomic commit. Staged parts are invisible to `get` and `list`; a commit
//! (of any upload) to a path discards every other staged part of that path, as Azure does.

pub mod azure;
pub mod destination;
pub mod digests;
pub mod holder;
pub mod local;

pub use destination::Destination;
pub use digests::Digests;
pub use holder::LockHolder;

use async_trait::async_trait;
use bytes::Bytes;

/// An opaque version tag of a stored object, returned by `put` and `get`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ETag(pub String);

/// How a put treats an existing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Only create: fail with `AlreadyExists` if the object exists (If-None-Match: *).
    Create,
    /// Only replace the version with this ETag: fail with `PreconditionFailed` otherwise
    /// (If-Match).
    Update(ETag),
}

/// Data up to this size is hashed on the caller's task: a thread hand-off costs more than it.
const HASH_INLINE_MAX: usize = 256 * 1024;

/// `hash` of `data` on the blocking pool, so that hashing megabytes (an 8 MiB block's MD5 takes
/// about 10 ms) does not hold up the runtime's other tasks; here if `data` is small
/// ([`HASH_INLINE_MAX`]) or the pool is shutting down, rather than fail the store the hash
/// belongs to.
pub(crate) async fn hash_off_runtime<T: Send + 'static>(data: &Bytes, hash: fn(&[u8]) -> T) -> T {
    if data.len() <= HASH_INLINE_MAX {
        return hash(data);
    }
    let bytes = data.clone();
    match tokio::task::spawn_blocking(move || hash(&bytes)).await {
        Ok(digest) => digest,
        Err(_) => hash(data),
    }
}

/// What a successful put stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    pub etag: ETag,
    /// The object's URL (redacted), for reports and manifests.
    pub url: String,
}

/// An object returned by `get`.
#[derive(Debug, Clone)]
pub struct GetResult {
    pub data: Bytes,
    pub etag: ETag,
}

/// An object listed under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Path relative to the sink's root.
    pub path: String,
    pub size: u64,
}

/// Errors from a sink. Every variant names the object or destination (redacted URL or path).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{url} already exists (it was created by another writer or an earlier run)")]
    AlreadyExists { url: String },

    #[error(
        "{url} was changed by another writer since it was read (ETag mismatch); not overwriting it"
    )]
    PreconditionFailed { url: String },

    #[error("{url} was not found")]
    NotFound { url: String },

    #[error("the container (or folder) for {url} does not exist: create it first{hint}")]
    ContainerNotFound { url: String, hint: String },

    #[error("access to {url} was refused ({status}): {message}")]
    Auth {
        url: String,
        status: u16,
        message: String,
    },

    #[error("{url}: storage request failed ({status}): {message}")]
    Http {
        url: String,
        status: u16,
        message: String,
    },

    #[error("could not reach storage at {url}: {message}")]
    Connect { url: String, message: String },

    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid destination {dest}: {reason}")]
    InvalidDestination { dest: String, reason: String },

    #[error("storage credentials: {0}")]
    Credentials(String),

    #[error(
        "the job is locked by another run: {holder} ({url}). Wait for that run to finish{hint}"
    )]
    Busy {
        url: String,
        holder: String,
        hint: String,
    },

    /// The destination cannot do what was asked (e.g. a server-side copy into a local
    /// folder); `fix` says what to do instead.
    #[error("{url}: {what} is not supported by this destination; {fix}")]
    Unsupported {
        url: String,
        what: String,
        fix: String,
    },

    /// A multi-part commit named parts that were never staged (or were discarded: Azure
    /// drops uncommitted blocks after a week, or when another write to the path commits).
    #[error(
        "{url}: cannot commit upload {upload}: part(s) {missing} of {parts} are not staged; stage them again, then commit"
    )]
    PartsMissing {
        url: String,
        upload: String,
        parts: u32,
        /// The missing part numbers, e.g. `1, 4, 7` (the first few, then a count).
        missing: String,
    },

    /// The storage service could not read the source of a server-side copy (expired or
    /// refused presigned URL, unreachable host). The URL's query string is never shown.
    #[error(
        "{url}: the storage service could not read the copy source {source_url} ({status}): {message}. A presigned URL may have expired, or the storage account cannot reach the source; copy through this process instead (--copy-mode client)"
    )]
    CopySource {
        url: String,
        /// The source URL without its query string.
        source_url: String,
        status: u16,
        message: String,
    },
}

/// The most parts one multi-part write may have (Azure's limit of committed blocks per blob;
/// the local folder keeps the same limit so both backends behave alike).
pub const MAX_PARTS: u32 = 50_000;

/// The longest upload id `stage_part` accepts.
pub const MAX_UPLOAD_ID_LEN: usize = 40;

/// Check an upload id and part number of a multi-part write: `[A-Za-z0-9-]`, 1 to
/// [`MAX_UPLOAD_ID_LEN`] characters; part below [`MAX_PARTS`]. `url` names the object.
pub fn check_part(url: &str, upload: &str, part: u32) -> Result<(), SinkError> {
    let valid_id = !upload.is_empty()
        && upload.len() <= MAX_UPLOAD_ID_LEN
        && upload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid_id {
        return Err(SinkError::InvalidDestination {
            dest: url.to_string(),
            reason: format!(
                "upload id {upload:?} must be 1 to {MAX_UPLOAD_ID_LEN} characters of A-Z, a-z, 0-9 and '-'"
            ),
        });
    }
    if part >= MAX_PARTS {
        return Err(SinkError::InvalidDestination {
            dest: url.to_string(),
            reason: format!(
                "part {part} is beyond the last allowed part ({}); use a larger part size",
                MAX_PARTS - 1
            ),
        });
    }
    Ok(())
}

/// The parts of `0..parts` not in `staged` (sorted), as the error a commit returns, or
/// `None` when every part is staged.
pub fn missing_parts_error(
    url: &str,
    upload: &str,
    parts: u32,
    staged: &[u32],
) -> Option<SinkError> {
    let missing: Vec<u32> = (0..parts)
        .filter(|p| staged.binary_search(p).is_err())
        .collect();
    if missing.is_empty() {
        return None;
    }
    const SHOWN: usize = 10;
    let mut listed = missing
        .iter()
        .take(SHOWN)
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if missing.len() > SHOWN {
        listed.push_str(&format!(" and {} more", missing.len() - SHOWN));
    }
    Some(SinkError::PartsMissing {
        url: url.to_string(),
        upload: upload.to_string(),
        parts,
        missing: listed,
    })
}

/// A URL as it may be printed: scheme, host, port and path, never the query string (a
/// presigned URL's signature) or user info.
pub fn url_without_query(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<unparseable URL>".to_string(),
    }
}

/// A held job lock. Dropping it without `release` leaves the lock to expire on its own (a
/// lease runs out; a file lock ends with the process).
#[async_trait]
pub trait LockGuard: Send + Sync + std::fmt::Debug {
    async fn release(self: Box<Self>) -> Result<(), SinkError>;

    /// The holder whose lock was taken over to get this one (a process on this machine that
    /// no longer existed), to be reported.
    fn taken_over_from(&self) -> Option<&LockHolder> {
        None
    }
}

/// The storage seam. Implementations are cheap to share (`Arc<dyn Sink>`) and safe to call
/// concurrently.
#[async_trait]
pub trait Sink: Send + Sync + std::fmt::Debug {
    /// The destination's root as a printable URL (redacted), e.g.
    /// `https://acct.blob.core.windows.net/raw/orders` or `file:///home/me/lake/orders`.
    fn root_url(&self) -> String;

    /// The printable (redacted) URL of the object at `path`.
    fn url_of(&self, path: &str) -> String;

    /// Check that the destination is usable before any data is fetched: the container (or
    /// folder) exists and the credentials are accepted. Creates nothing.
    async fn check(&self) -> Result<(), SinkError>;

    /// Create the destination's root (the container, or the folder) when it does not exist;
    /// an existing root is left as it is. Used by `--create-container`.
    async fn ensure_root(&self) -> Result<(), SinkError>;

    /// Store `data` at `path` atomically, honouring `mode`.
    async fn put(&self, path: &str, data: Bytes, mode: PutMode) -> Result<PutResult, SinkError>;

    /// [`Sink::put`] of data whose [`Digests`] the caller has already taken (a chunk, hashed
    /// for its manifest). A backend that sends a checksum with the bytes, or derives its ETag
    /// from them, uses these instead of reading the data again: Azure sends the MD5 (the
    /// service refuses the write if the bytes it received differ) and keeps it as the blob's
    /// `Content-MD5`; a local folder takes its ETag from the SHA-256. `digests` must be those
    /// of `data`.
    async fn put_digested(
        &self,
        path: &str,
        data: Bytes,
        mode: PutMode,
        digests: &Digests,
    ) -> Result<PutResult, SinkError> {
        let _ = digests;
        self.put(path, data, mode).await
    }

    /// Read the object at `path`; `Ok(None)` when it does not exist.
    async fn get(&self, path: &str) -> Result<Option<GetResult>, SinkError>;

    /// Every object whose path starts with `prefix`, sorted by path.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, SinkError>;

    /// Remove the object at `path`; removing a missing object is not an error.
    async fn delete(&self, path: &str) -> Result<(), SinkError>;

    /// Stage part `part` (0-based) of a multi-part write of `path`, identified by `upload` (a
    /// short id unique to this write, e.g. derived from the run id and the object's name;
    /// `[A-Za-z0-9-]`, at most [`MAX_UPLOAD_ID_LEN`] characters). Parts may be staged in any
    /// order, concurrently, and again (with the same content); nothing is visible at `path`
    /// until [`Sink::commit_parts`]. Staged parts survive the process: a rerun finds them with
    /// [`Sink::staged_parts`].
    async fn stage_part(
        &self,
        path: &str,
        upload: &str,
        part: u32,
        data: Bytes,
    ) -> Result<(), SinkError>;

    /// Which parts of `upload` are staged, sorted. After a crash the caller compares this with
    /// its checkpoint: a part the checkpoint calls staged but that is missing here is staged
    /// again. After a commit to `path` it is empty.
    async fn staged_parts(&self, path: &str, upload: &str) -> Result<Vec<u32>, SinkError>;

    /// Make parts `0..parts` of `upload`, in order, the object at `path`, atomically and
    /// honouring `mode`; `parts == 0` makes an empty object. Fails with
    /// [`SinkError::PartsMissing`] (naming the object and the parts) if a part is not staged.
    /// The commit discards every staged part of `path`, of this upload and any other.
    async fn commit_parts(
        &self,
        path: &str,
        upload: &str,
        parts: u32,
        mode: PutMode,
    ) -> Result<PutResult, SinkError>;

    /// Server-side copy: stage part `part` of `upload` from bytes `range` of `source_url`,
    /// which the storage service reads itself (Azure's `Put Block From URL`), so the bytes
    /// never pass through this process. `source_url` is a presigned URL, a secret: it never
    /// appears in errors or logs (only its scheme, host and path). Backends that cannot do
    /// this return [`SinkError::Unsupported`].
    async fn stage_part_from_url(
        &self,
        path: &str,
        upload: &str,
        part: u32,
        source_url: &str,
        range: std::ops::Range<u64>,
    ) -> Result<(), SinkError>;

    /// Remove the debris of writes that were killed before they completed, under `prefix`.
    /// Only called while holding the job's lock, when no other writer can be mid-write.
    /// Staged parts of multi-part writes are kept (a rerun resumes them); only the debris of
    /// killed single writes goes. Backends whose incomplete writes are invisible and expire
    /// by themselves (Azure's uncommitted blocks) have nothing to do.
    async fn remove_incomplete(&self, _prefix: &str) -> Result<(), SinkError> {
        Ok(())
    }

    /// Take the exclusive lock `path` for `holder`, held until released (renewed in the
    /// background where it is a lease). Fails at once with [`SinkError::Busy`], naming the
    /// holder and how long its lease has left, when another run holds it — unless that holder
    /// is a process on this machine that no longer exists
    /// ([`LockHolder::is_gone_from_this_machine`]): then its lock is taken over at once and
    /// the guard says so ([`LockGuard::taken_over_from`]). Waiting is the caller's
    /// (`state::lock::acquire`).
    async fn lock(&self, path: &str, holder: &LockHolder) -> Result<Box<dyn LockGuard>, SinkError>;
    /// The kind of credential the sink writes with (e.g. `account key`), never the secret;
    /// recorded in the manifest.
    fn identity_kind(&self) -> Option<&'static str> {
        None
    }
}

/// Join a sink-relative path from segments, skipping empty ones.
pub fn join_path(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_skips_empty_and_slashes() {
        assert_eq!(
            join_path(&["", "run1", "part-00000.jsonl.gz"]),
            "run1/part-00000.jsonl.gz"
        );
        assert_eq!(join_path(&["a/", "/b/", "c"]), "a/b/c");
        assert_eq!(join_path(&[]), "");
    }

    #[test]
    fn upload_ids_and_parts_are_checked() {
        check_part("u", "run-20260101-obj-1", 0).unwrap();
        check_part("u", &"a".repeat(MAX_UPLOAD_ID_LEN), MAX_PARTS - 1).unwrap();
        for bad in [
            "",
            "has space",
            "slash/es",
            "dot.s",
            &"a".repeat(MAX_UPLOAD_ID_LEN + 1),
        ] {
            let err = check_part("file:///x", bad, 0).unwrap_err();
            assert!(
                matches!(err, SinkError::InvalidDestination { .. }),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().contains("upload id"), "{err}");
        }
        let err = check_part("file:///x", "u", MAX_PARTS).unwrap_err();
        assert!(err.to_string().contains("larger part size"), "{err}");
    }

    #[test]
    fn missing_parts_are_listed_briefly() {
        assert!(missing_parts_error("u", "up", 3, &[0, 1, 2]).is_none());
        assert!(missing_parts_error("u", "up", 0, &[]).is_none());
        let err = missing_parts_error("file:///o", "up", 4, &[0, 2]).unwrap();
        let text = err.to_string();
        assert!(
            text.contains("file:///o") && text.contains("part(s) 1, 3 of 4"),
            "{text}"
        );
        let err = missing_parts_error("u", "up", 30, &[]).unwrap();
        assert!(
            err.to_string()
                .contains("0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 20 more"),
            "{err}"
        );
    }

    #[test]
    fn printable_source_urls_lose_their_query() {
        assert_eq!(
            url_without_query("http://127.0.0.1:9/b/k%20y?X-Amz-Signature=abc&X-Amz-Credential=d"),
            "http://127.0.0.1:9/b/k%20y"
        );
        assert_eq!(url_without_query("not a url ?sig=1"), "<unparseable URL>");
    }
}
