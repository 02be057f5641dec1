//! Where a run's objects come from: one trait, [`ObjectSource`], served by a bucket prefix
//! ([`PrefixSource`], `gatelake copy`), an API's pages of references and an asynchronous
//! export (`refs`, `export`). The run's driver (`crate::run::objects`) asks a source for its
//! objects once, when the run starts, and keeps the list in the checkpoint; it asks again
//! only for what the checkpoint cannot hold (a presigned URL's signature, after a resume or
//! an expiry), matching the objects by name.
//!
//! A source that must find something again after a kill (an export's status URL) keeps it in
//! its [`SourceNotes`], which the driver saves in the checkpoint before `set` returns.

use super::{list_prefix, ObjectError, ObjectReader, ObjectRef, PrefixFilter, S3Uri};
use crate::report::Reporter;
use async_trait::async_trait;

/// What a source saves in the run's checkpoint (never a secret).
#[async_trait]
pub trait SourceNotes: Send + Sync {
    /// The value saved under `key` by this run (or the interrupted attempt it resumes).
    async fn get(&self, key: &str) -> Option<String>;
    /// Save `value` under `key`: durable when this returns.
    async fn set(&self, key: &str, value: &str) -> Result<(), String>;
}

/// What a listing found.
#[derive(Debug, Default)]
pub struct SourceListing {
    pub objects: Vec<ObjectRef>,
    /// Pages of references read (0 for a bucket listing).
    pub pages: u64,
    /// What the listing noticed that the manifest should record.
    pub warnings: Vec<String>,
}

/// Why a source could not list its objects.
#[derive(Debug, thiserror::Error)]
pub enum ObjectSourceError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The source's own failure (an API's page, an export), as its error says it.
    #[error("{0}")]
    Listing(Box<dyn std::error::Error + Send + Sync>),
    /// The source's failure that a rerun picks up where it stopped (an export still running
    /// at `--export-timeout`): the run keeps its checkpoint, even a first run's.
    #[error("{0}")]
    Resumable(Box<dyn std::error::Error + Send + Sync>),
    #[error("saving the source's progress in the checkpoint: {0}")]
    Notes(String),
}

/// Where a run's objects come from.
#[async_trait]
pub trait ObjectSource: Send + Sync {
    /// The source as the checkpoint and manifest name it (no secret), e.g.
    /// `s3://bucket/prefix/`: an interrupted run of another source is not resumed.
    fn describe(&self) -> String;
    /// The kind of listing, for the manifest (`s3-prefix`, `api-references`, `export`).
    fn kind(&self) -> &'static str;
    /// Every object of the run, sorted or in the source's order; names unique.
    async fn list(
        &self,
        notes: &dyn SourceNotes,
        reporter: &dyn Reporter,
    ) -> Result<SourceListing, ObjectSourceError>;
}

/// The objects below an `s3://bucket/prefix` (ListObjectsV2), filtered by `--include`,
/// `--exclude` and `--modified-since`; each named by its key below the prefix.
pub struct PrefixSource {
    pub reader: ObjectReader,
    pub uri: S3Uri,
    pub filter: PrefixFilter,
}

#[async_trait]
impl ObjectSource for PrefixSource {
    fn describe(&self) -> String {
        self.uri.to_string()
    }

    fn kind(&self) -> &'static str {
        "s3-prefix"
    }

    async fn list(
        &self,
        _notes: &dyn SourceNotes,
        _reporter: &dyn Reporter,
    ) -> Result<SourceListing, ObjectSourceError> {
        Ok(SourceListing {
            objects: list_prefix(&self.reader, &self.uri, &self.filter).await?,
            ..Default::default()
        })
    }
}
