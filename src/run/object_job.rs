//! The vocabulary of an object run (`super::objects`): the job's side of it
//! ([`ObjectRunConfig`]), what it works with ([`ObjectRunInput`]), why it stops
//! ([`ObjectRunError`]) and what it produced ([`ObjectSummary`]).

use super::RunOptions;
use crate::config::OutputConfig;
use crate::objects::land::LandError;
use crate::objects::records::RecordsError;
use crate::objects::source::{ObjectSource, ObjectSourceError};
use crate::objects::{ObjectReader, ObjectsConfig};
use crate::pipeline::StopSignal;
use crate::report::Reporter;
use crate::sink::{Sink, SinkError};
use crate::state::objects::LedgerError;
use crate::state::StateError;
use serde::Serialize;
use std::sync::Arc;

/// The job's side of an object run.
#[derive(Debug, Clone)]
pub struct ObjectRunConfig {
    pub job: String,
    pub objects: ObjectsConfig,
    /// The chunks of `--land records` (format, chunk size, schema policy).
    pub output: OutputConfig,
    /// How the objects are read, for the manifest: `iam` (the run's AWS credentials), or the
    /// API's auth kind.
    pub auth: String,
}

/// Why an object run stopped. Every variant names the object or run involved.
#[derive(Debug, thiserror::Error)]
pub enum ObjectRunError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("listing the objects: {0}")]
    Source(#[from] ObjectSourceError),
    #[error(transparent)]
    Land(#[from] LandError),
    #[error("the unfinished run {run_id} of this job copied from {saved}, but this run is configured for {configured}. Run with the original source to finish it, or pass --restart to discard it")]
    SourceChanged {
        run_id: String,
        saved: String,
        configured: String,
    },
    #[error("object {source_uri} cannot land under its name {name:?}: {reason}. Leave it out with --exclude")]
    BadName {
        source_uri: String,
        name: String,
        reason: String,
    },
    #[error("object {name} ({source_uri}) is no longer in the source's list of objects, which run {run_id} planned to land; rerun with --restart to land the source's current objects")]
    Vanished {
        name: String,
        source_uri: String,
        run_id: String,
    },
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error("reading the previous run to compare schemas: {0}")]
    PreviousRun(#[from] crate::load::previous::PreviousRunError),
    #[error("interrupted: run {run_id} stopped with {landed} of {planned} objects landed and its checkpoint saved. Run the same command again to resume it (or pass --restart to discard it)")]
    Interrupted {
        run_id: String,
        landed: u64,
        planned: u64,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

/// What an object run produced; printed as the JSON summary.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectSummary {
    pub status: &'static str,
    pub job: String,
    pub run_id: String,
    pub resumed: bool,
    /// The listing (e.g. `s3://bucket/prefix/`).
    pub source: String,
    /// The run's folder (redacted URL).
    pub destination: String,
    pub manifest_url: String,
    pub land: &'static str,
    /// Objects the run landed (over every attempt).
    pub objects: u64,
    /// `--land records`: records in the run's chunks, and the chunks.
    pub rows: u64,
    pub files: u64,
    /// Objects the listing held that an earlier run already copied.
    pub skipped: u64,
    /// Bytes landed: the objects' (as-is), the chunks' (records).
    pub bytes: u64,
    pub warnings: Vec<String>,
    /// Seconds this invocation took.
    pub seconds: f64,
}

/// What one object run works with.
pub struct ObjectRunInput<'a> {
    pub config: &'a ObjectRunConfig,
    pub source: &'a dyn ObjectSource,
    pub reader: ObjectReader,
    pub sink: Arc<dyn Sink>,
    pub reporter: Arc<dyn Reporter>,
    pub options: &'a RunOptions,
    pub stop: StopSignal,
}
