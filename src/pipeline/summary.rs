//! What a finished run produced ([`RunSummary`]), printed as the JSON summary. Below the
//! stages, with `PullError`, because a partial run's error carries it.

use crate::encode::drift::SchemaChange;
use crate::state::entries::ManifestFile;
use serde::Serialize;

/// What a finished run produced; printed as the JSON summary.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// `succeeded`, or `partial` (carried by [`crate::pipeline::PullError::Incomplete`]).
    pub status: &'static str,
    pub job: String,
    pub run_id: String,
    /// Whether this invocation resumed an interrupted run.
    pub resumed: bool,
    /// The run's folder (redacted URL).
    pub destination: String,
    pub manifest_url: String,
    pub pages: u64,
    pub rows: u64,
    /// Bytes stored (compressed).
    pub bytes: u64,
    /// Bytes of record JSON received.
    pub raw_bytes: u64,
    pub files: Vec<ManifestFile>,
    /// Schema changes and drift the run recorded (see the manifest's `schema_changes`).
    pub schema_changes: Vec<SchemaChange>,
    /// What the run recorded instead of failing, and for a partial run why it is partial
    /// (the manifest's `warnings`).
    pub warnings: Vec<String>,
    /// Times a 504 made the run halve its page size (the manifest's `page_size_shrinks`).
    pub page_size_shrinks: u64,
    /// Seconds this invocation took.
    pub seconds: f64,
}
