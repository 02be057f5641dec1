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

pub mod azure;
pub mod destination;
pub mod holder;
pub mod local;

pub use destination::Destination;
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

    /// Read the object at `path`; `Ok(None)` when it does not exist.
    async fn get(&self, path: &str) -> Result<Option<GetResult>, SinkError>;

    /// Every object whose path starts with `prefix`, sorted by path.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, SinkError>;

    /// Remove the object at `path`; removing a missing object is not an error.
    async fn delete(&self, path: &str) -> Result<(), SinkError>;

    /// Remove the debris of writes that were killed before they completed, under `prefix`.
    /// Only called while holding the job's lock, when no other writer can be mid-write.
    /// Backends whose incomplete writes are invisible and expire by themselves (Azure's
    /// uncommitted blocks) have nothing to do.
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
}
