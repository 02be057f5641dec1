//! Every format and codec the registry knows, measured on the sample: each encodes the
//! sampled pages in memory with the pull's schema policy (drift, `--flatten`, a pinned
//! `--schema`), exactly as its chunk writer would, and the result is its size against the
//! record JSON and its speed. A combination that would fail on these records (drift under
//! `--on-schema-drift fail`, a record that does not fit a pinned schema) says why instead of a
//! size: finding that out on three pages is the point of a sample.

use crate::encode::chunk::{ChunkLimits, ChunkWriter};
use crate::encode::drift::SchemaOptions;
use crate::encode::{Compression, EncodeOptions, Format};
use serde::Serialize;
use std::time::Instant;

/// One format and codec on the sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncodingResult {
    pub format: String,
    pub compression: Compression,
    /// The chunk extension it writes (`jsonl.gz`, `parquet`).
    pub extension: String,
    /// Whether Synapse reads files in this format and codec.
    pub synapse_reads: bool,
    /// The pull's own `--format`/`--compression`.
    pub configured: bool,
    /// Encoded bytes (all chunks of the sample; `None` when it failed).
    pub bytes: Option<u64>,
    /// Encoded bytes ÷ record JSON bytes.
    pub ratio: Option<f64>,
    /// Record JSON encoded per second, in MB (10^6 bytes).
    pub mb_per_s: Option<f64>,
    /// Why it could not encode these records.
    pub error: Option<String>,
}

/// The encoded sample of the configured format, kept for `--preview-dir`.
pub struct Encoded {
    pub results: Vec<EncodingResult>,
    /// The configured combination's file(s), in order.
    pub configured_files: Vec<bytes::Bytes>,
}

/// Encode `pages` (each a page's record texts) with every registered format and codec.
/// `configured` is the pull's own combination (its level applies to it alone; the others
/// use their codec's default level).
pub fn measure(pages: &[Vec<&str>], configured: &EncodeOptions, schema: &SchemaOptions) -> Encoded {
    let raw: u64 = pages.iter().flatten().map(|r| r.len() as u64).sum();
    let mut results = Vec::new();
    let mut configured_files = Vec::new();
    for format in Format::ALL {
        for &codec in format.spec().codecs {
            let is_configured = *format == configured.format && codec == configured.compression;
            let options = if is_configured {
                *configured
            } else {
                EncodeOptions::new(*format, Some(codec))
            };
            let started = Instant::now();
            let outcome = encode_all(pages, options, schema);
            let seconds = started.elapsed().as_secs_f64();
            let mut result = EncodingResult {
                format: format.name().to_string(),
                compression: codec,
                extension: options.extension(),
                synapse_reads: format.synapse().codecs.contains(&codec),
                configured: is_configured,
                bytes: None,
                ratio: None,
                mb_per_s: None,
                error: None,
            };
            match outcome {
                Ok(files) => {
                    let bytes: u64 = files.iter().map(|f| f.len() as u64).sum();
                    result.bytes = Some(bytes);
                    result.ratio = (raw > 0).then(|| bytes as f64 / raw as f64);
                    result.mb_per_s = (seconds > 0.0).then(|| raw as f64 / 1e6 / seconds);
                    if is_configured {
                        configured_files = files;
                    }
                }
                Err(e) => result.error = Some(e),
            }
            results.push(result);
        }
    }
    Encoded {
        results,
        configured_files,
    }
}

/// The files a chunk writer makes of `pages` with no size limit (one file, or more when
/// `evolve` closes a chunk before a page that widened the schema).
fn encode_all(
    pages: &[Vec<&str>],
    options: EncodeOptions,
    schema: &SchemaOptions,
) -> Result<Vec<bytes::Bytes>, String> {
    let limits = ChunkLimits {
        max_bytes: u64::MAX,
        max_rows: None,
    };
    let mut writer = ChunkWriter::new(options, limits, 0, None)
        .map_err(|e| e.to_string())?
        .with_schema_options(schema.clone(), None);
    let mut files = Vec::new();
    for page in pages {
        if let Some(chunk) = writer.write_page(page).map_err(|e| e.to_string())? {
            files.push(chunk.data);
        }
    }
    if let Some(chunk) = writer.finish().map_err(|e| e.to_string())? {
        files.push(chunk.data);
    }
    Ok(files)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pages() -> Vec<Vec<String>> {
        (0..3)
            .map(|p| {
                (0..50)
                    .map(|i| {
                        format!(
                            r#"{{"id":{},"name":"customer {}","ok":true}}"#,
                            p * 50 + i,
                            i % 7
                        )
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_format_and_codec_is_measured_and_the_configured_one_kept() {
        let owned = pages();
        let pages: Vec<Vec<&str>> = owned
            .iter()
            .map(|p| p.iter().map(String::as_str).collect())
            .collect();
        let configured = EncodeOptions::new(Format::CSV, Some(Compression::Gzip));
        let out = measure(&pages, &configured, &SchemaOptions::default());
        let expected: usize = Format::ALL.iter().map(|f| f.spec().codecs.len()).sum();
        assert_eq!(out.results.len(), expected);
        for r in &out.results {
            assert!(r.error.is_none(), "{r:?}");
            assert!(r.bytes.unwrap() > 0);
        }
        let none = out
            .results
            .iter()
            .find(|r| r.format == "jsonl" && r.compression == Compression::None)
            .unwrap();
        // Uncompressed jsonl is the records plus a newline each.
        assert_eq!(
            none.bytes.unwrap(),
            pages
                .iter()
                .flatten()
                .map(|r| r.len() as u64 + 1)
                .sum::<u64>()
        );
        let gz = out.results.iter().find(|r| r.configured).unwrap();
        assert_eq!(
            (gz.format.as_str(), gz.extension.as_str()),
            ("csv", "csv.gz")
        );
        assert!(gz.ratio.unwrap() < 0.5, "{gz:?}");
        assert_eq!(out.configured_files.len(), 1);
        assert_eq!(out.configured_files[0].len() as u64, gz.bytes.unwrap());
    }

    #[test]
    fn a_combination_that_fails_on_the_records_says_why() {
        let pages = vec![vec![r#"{"id":1}"#], vec![r#"{"id":"not a number"}"#]];
        let out = measure(
            &pages,
            &EncodeOptions::new(Format::JSONL, None),
            &SchemaOptions::default(),
        );
        let csv = out.results.iter().find(|r| r.format == "csv").unwrap();
        assert!(
            csv.error.as_deref().is_some_and(|e| e.contains("id")),
            "{csv:?}"
        );
        let jsonl = out.results.iter().find(|r| r.configured).unwrap();
        assert!(jsonl.error.is_none());
    }
}
