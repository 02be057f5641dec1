//! The load script of a run that landed S3 objects as they are. gatelake never reads an
//! as-is object's content, so it cannot know its columns: the script says so, lists the
//! objects, and — when every object's name says it is Parquet or delimited text — gives the
//! serverless `OPENROWSET` query that reads them, for the reader to turn into a view.

use super::names::comment_text;
use super::quote_string;
use crate::load::manifest::Manifest;
use std::fmt::Write as _;

/// The file type every object's name declares, when they agree.
fn common_kind(manifest: &Manifest) -> Option<(&'static str, &'static str)> {
    let kind_of = |name: &str| {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".parquet") {
            Some(("parquet", "FORMAT = 'PARQUET'"))
        } else if lower.ends_with(".csv") {
            Some((
                "csv",
                "FORMAT = 'CSV', PARSER_VERSION = '2.0', HEADER_ROW = TRUE",
            ))
        } else if lower.ends_with(".csv.gz") {
            Some((
                "csv.gz",
                "FORMAT = 'CSV', PARSER_VERSION = '1.0', FIRSTROW = 2, DATA_COMPRESSION = 'GZIP'",
            ))
        } else {
            None
        }
    };
    let mut kinds = manifest.objects.iter().map(|o| kind_of(&o.name));
    let first = kinds.next()??;
    kinds.all(|k| k == Some(first)).then_some(first)
}

/// `load.sql` for a run whose objects landed as-is.
pub fn render_for_objects(manifest: &Manifest) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- Run {} of job {}: {} object(s) landed as-is from {}.",
        comment_text(&manifest.run_id),
        comment_text(&manifest.job),
        manifest.objects.len(),
        comment_text(&manifest.source.url),
    );
    let _ = writeln!(
        out,
        "-- gatelake copied their bytes without reading them, so it knows no columns and writes no COPY INTO or table for them;"
    );
    let _ = writeln!(
        out,
        "-- _manifest.json lists each object with its source, version, size and checksum. (--land records reads jsonl, JSON and csv objects into --format chunks that come with a load script.)"
    );
    for o in &manifest.objects {
        let _ = writeln!(out, "--   {} ({} bytes)", comment_text(&o.url), o.size);
    }
    match common_kind(manifest) {
        Some((kind, options)) => {
            let pattern = format!("{}/*.{kind}", manifest.destination.trim_end_matches('/'));
            let _ = writeln!(
                out,
                "-- Every object is {kind}: a serverless SQL pool reads them all with:"
            );
            let _ = writeln!(
                out,
                "SELECT TOP 100 * FROM OPENROWSET(BULK {}, {options}) AS [objects];",
                quote_string(&pattern)
            );
        }
        None if !manifest.objects.is_empty() => {
            let _ = writeln!(
                out,
                "-- Their names do not say one Parquet or CSV type, so no query is given: they are opaque files."
            );
        }
        None => {}
    }
    out
}
