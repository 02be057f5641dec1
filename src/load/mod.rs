//! What makes a run loadable: the manifest (`_manifest.json`: every file with rows, bytes
//! and checksum, the schema, the source range) and the `_SUCCESS` marker written last.
//! Files starting with `_` are skipped by Synapse wildcards, so `<run>/*.parquet` read after
//! `_SUCCESS` exists sees exactly the run's chunks.

pub mod manifest;

/// Name of the completion marker, written after the manifest.
pub const SUCCESS_MARKER: &str = "_SUCCESS";
/// Name of the manifest in a run's folder.
pub const MANIFEST: &str = "_manifest.json";
