//! What makes a run loadable: the manifest (`_manifest.json`: every file with rows, bytes
//! and checksums, the schema and its changes, the source range), the Synapse load script
//! (`load.sql`, see `sql`), and the `_SUCCESS` marker written last. `previous` finds the
//! last completed run, whose schema the next run is compared with. The names of a run's
//! files are here too: data files (`part-00000.<ext>`), manifest, load script, marker.
//! Files starting with `_` are skipped by Synapse wildcards, so `<run>/*.parquet` read after
//! `_SUCCESS` exists sees exactly the run's chunks.

pub mod lineage;
pub mod manifest;
pub mod object_manifest;
pub mod previous;
pub mod sql;

/// Name of the completion marker, written after the manifest.
pub const SUCCESS_MARKER: &str = "_SUCCESS";
/// Name of the manifest in a run's folder.
pub const MANIFEST: &str = "_manifest.json";
/// Name of the load script in a run's folder.
pub const LOAD_SQL: &str = "load.sql";

/// The data-file name of chunk `seq`.
pub fn part_name(seq: u64, extension: &str) -> String {
    part_name_with(PART_STEM, seq, extension)
}

/// The name every data file of a single pull starts with.
pub const PART_STEM: &str = "part";

/// The data-file name of chunk `seq` under `stem` (`part`, or a partition's
/// `part-<partition>-<epoch>`): still matched by `part-*` wildcards.
pub fn part_name_with(stem: &str, seq: u64, extension: &str) -> String {
    format!("{stem}-{seq:05}.{extension}")
}

/// The sequence number of a data-file name (`part-00012.jsonl.gz` → 12).
pub fn part_seq(name: &str) -> Option<u64> {
    name.strip_prefix("part-")?.split('.').next()?.parse().ok()
}
