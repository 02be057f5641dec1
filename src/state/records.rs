//! Where one object of a `--land records` run stands, as the run's checkpoint keeps it
//! ([`RecordsProgress`]): the rule that makes a kill and a rerun land every record exactly
//! once is a **record offset within the object** — the number of its records in committed
//! chunks — next to the number of its next chunk (chunks never span two objects). Plain
//! data, below the objects' own vocabulary: `crate::objects::records` writes it.

use crate::encode::drift::SchemaChange;
use crate::encode::schema::Schema;
use crate::state::entries::ManifestFile;
use serde::{Deserialize, Serialize};

/// Where one object's records stand, as its unit's checkpoint keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordsProgress {
    /// The object's ETag and version id when it was first read: a resumed unit reads the
    /// same bytes or fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The object's records in committed chunks: a resumed unit skips this many.
    pub records: u64,
    /// The number of the object's next chunk.
    pub next_seq: u64,
    /// The object's committed chunks, in order.
    pub files: Vec<ManifestFile>,
    /// The columns its chunks are written with (csv/parquet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema_changes: Vec<SchemaChange>,
    /// What the object's content was found to be (`gzip`, `jsonl`), for the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// Every record is in a committed chunk (and the count matched the source's).
    pub done: bool,
}
