//! Records in, compressed chunk bytes out. One trait, [`Encoder`], per output format (jsonl,
//! csv, parquet) plus a compression layer; [`chunk::ChunkWriter`] feeds whole pages into an
//! encoder and rotates to a new chunk at a size or row limit.
//!
//! Records arrive as the raw JSON text of one object each, exactly as the API sent it: jsonl
//! writes those bytes through untouched (no re-serialisation), csv and parquet parse them
//! against a [`schema::Schema`] inferred from the data.
//!
//! This module must never do I/O: it produces bytes, the sink stores them.

pub mod chunk;
pub mod compress;
pub mod csv;
pub mod drift;
pub mod jsonl;
pub mod parquet;
mod record;
pub mod schema;
mod timestamp;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The file format of the chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Csv,
    Parquet,
}

/// The compression applied to chunks: a stream codec around jsonl/csv, or the page codec
/// inside parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    /// Parquet only.
    Snappy,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Jsonl, Format::Csv, Format::Parquet];

    /// The compression used when none is asked for.
    pub fn default_compression(self) -> Compression {
        match self {
            Format::Jsonl | Format::Csv => Compression::Gzip,
            Format::Parquet => Compression::Snappy,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        })
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json-lines" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            other => Err(format!(
                "unknown format '{other}': use jsonl, csv or parquet"
            )),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Snappy => "snappy",
        })
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            "snappy" => Ok(Compression::Snappy),
            other => Err(format!(
                "unknown compression '{other}': use gzip, zstd, snappy (parquet) or none"
            )),
        }
    }
}

/// gzip level used when none is given; see [`EncodeOptions::level_or_default`].
pub const DEFAULT_GZIP_LEVEL: i32 = 2;
/// zstd level used when none is given; see [`EncodeOptions::level_or_default`].
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// What to write: format, codec and codec level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeOptions {
    pub format: Format,
    pub compression: Compression,
    /// Codec level; `None` is the codec's default as chosen by [`EncodeOptions::level_or_default`].
    pub level: Option<i32>,
}

impl EncodeOptions {
    pub fn new(format: Format, compression: Option<Compression>) -> Self {
        Self {
            format,
            compression: compression.unwrap_or(format.default_compression()),
            level: None,
        }
    }

    /// Reject combinations that cannot be written, naming the fix.
    pub fn validate(&self) -> Result<(), EncodeError> {
        match (self.format, self.compression) {
            (Format::Jsonl | Format::Csv, Compression::Snappy) => {
                Err(EncodeError::Options(format!(
                "--compression snappy is only available for parquet; use gzip, zstd or none for {}",
                self.format
            )))
            }
            _ => Ok(()),
        }?;
        if let Some(level) = self.level {
            let range = match self.compression {
                Compression::Gzip => 0..=9,
                Compression::Zstd => 1..=22,
                Compression::None | Compression::Snappy => {
                    return Err(EncodeError::Options(format!(
                        "--compression-level has no meaning for {}",
                        self.compression
                    )))
                }
            };
            if !range.contains(&level) {
                return Err(EncodeError::Options(format!(
                    "--compression-level {level} is out of range for {} ({}..={})",
                    self.compression,
                    range.start(),
                    range.end()
                )));
            }
        }
        Ok(())
    }

    /// The codec level used unless told otherwise: gzip 2 and zstd 1, chosen for throughput
    /// (issue 7). On API records (`bench/README.md`, `cargo bench --bench micro`) gzip 2
    /// compresses about 3.5 times as fast as gzip 6 for files about 19% larger, and zstd 1 is
    /// about half again as fast as zstd 3 for the same size. `--compression-level` trades the
    /// other way.
    pub fn level_or_default(&self) -> i32 {
        self.level.unwrap_or(match self.compression {
            Compression::Gzip => DEFAULT_GZIP_LEVEL,
            Compression::Zstd => DEFAULT_ZSTD_LEVEL,
            Compression::None | Compression::Snappy => 0,
        })
    }

    /// File extension for chunks, without the leading dot: `jsonl.gz`, `csv.zst`, `parquet`.
    pub fn extension(&self) -> String {
        let base = self.format.to_string();
        match (self.format, self.compression) {
            (Format::Parquet, _) => base,
            (_, Compression::Gzip) => format!("{base}.gz"),
            (_, Compression::Zstd) => format!("{base}.zst"),
            (_, Compression::None | Compression::Snappy) => base,
        }
    }

    /// MIME type of the stored chunk.
    pub fn content_type(&self) -> &'static str {
        match (self.format, self.compression) {
            (Format::Parquet, _) => "application/vnd.apache.parquet",
            (_, Compression::Gzip) => "application/gzip",
            (_, Compression::Zstd) => "application/zstd",
            (Format::Jsonl, _) => "application/x-ndjson",
            (Format::Csv, _) => "text/csv",
        }
    }
}

/// Errors from encoding. Record positions are 0-based within the chunk being written.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("{0}")]
    Options(String),

    #[error("record {record} is not valid JSON: {source}")]
    InvalidRecord {
        record: u64,
        #[source]
        source: serde_json::Error,
    },

    #[error("record {record} is not a JSON object (csv and parquet need one object per record)")]
    NotAnObject { record: u64 },

    #[error("record {record}: {message}")]
    SchemaMismatch { record: u64, message: String },

    #[error("schema drift at page {page}{}: {message}{}{}", position(record), if diff.is_empty() { "" } else { "\n" }, diff)]
    Drift {
        /// The page, numbered from 1 as in every other message: by the writer's own count,
        /// until the pipeline names it by its number in the run ([`EncodeError::at_run_page`]).
        page: u64,
        /// (record within the page, record within the run), when one record is to blame.
        record: Option<(u64, u64)>,
        message: String,
        /// One line per difference: `+ new (kind)`, `~ field: old -> new`.
        diff: String,
    },

    #[error("could not infer a schema: {0}")]
    Schema(String),

    #[error("parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),

    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),

    #[error("csv: {0}")]
    Csv(#[from] ::csv::Error),

    #[error("compression: {0}")]
    Io(#[from] std::io::Error),
}

impl EncodeError {
    /// Name a drift error's page by its number in the run (1-based, counting the pages of
    /// earlier attempts of a resumed run), which is how fetch errors and bad pages name it.
    pub fn at_run_page(self, number: u64) -> Self {
        match self {
            EncodeError::Drift {
                record,
                message,
                diff,
                ..
            } => EncodeError::Drift {
                page: number,
                record,
                message,
                diff,
            },
            other => other,
        }
    }
}

fn position(record: &Option<(u64, u64)>) -> String {
    match record {
        Some((in_page, in_run)) => format!(", record {in_page} (record {in_run} of the run)"),
        None => String::new(),
    }
}

/// One output file being written: records go in one at a time, the finished (compressed)
/// file comes out of `finish`.
pub trait Encoder: Send {
    /// Append one record: the raw JSON text of one value (an object for csv/parquet).
    fn write_record(&mut self, record: &str) -> Result<(), EncodeError>;

    /// Records written so far.
    fn rows(&self) -> u64;

    /// Per-column statistics of what was written (csv and parquet; jsonl has no columns).
    fn stats(&self) -> Option<&schema::ColumnStats> {
        None
    }

    /// Close the file and return its bytes.
    fn finish(self: Box<Self>) -> Result<Vec<u8>, EncodeError>;
}

/// The encoder for `options`: jsonl needs no schema, csv and parquet need one (see
/// [`schema::Schema::infer`]).
pub fn new_encoder(
    options: &EncodeOptions,
    schema: Option<&schema::Schema>,
) -> Result<Box<dyn Encoder>, EncodeError> {
    new_encoder_with(options, schema, schema::ReadOptions::default())
}

/// [`new_encoder`] with the record reading options of the run's schema policy.
pub(crate) fn new_encoder_with(
    options: &EncodeOptions,
    schema: Option<&schema::Schema>,
    read: schema::ReadOptions,
) -> Result<Box<dyn Encoder>, EncodeError> {
    options.validate()?;
    let level = options.level_or_default();
    let need_schema = || {
        schema
            .ok_or_else(|| EncodeError::Schema(format!("{} chunks need a schema", options.format)))
    };
    Ok(match options.format {
        Format::Jsonl => Box::new(jsonl::JsonlEncoder::new(options.compression, level)?),
        Format::Csv => Box::new(csv::CsvEncoder::with_options(
            need_schema()?,
            options.compression,
            level,
            read,
        )?),
        Format::Parquet => Box::new(parquet::ParquetEncoder::with_options(
            need_schema()?,
            options.compression,
            level,
            read,
        )?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn extensions_and_defaults() {
        let cases = [
            (Format::Jsonl, None, "jsonl.gz"),
            (Format::Jsonl, Some(Compression::Zstd), "jsonl.zst"),
            (Format::Jsonl, Some(Compression::None), "jsonl"),
            (Format::Csv, None, "csv.gz"),
            (Format::Parquet, None, "parquet"),
            (Format::Parquet, Some(Compression::Zstd), "parquet"),
        ];
        for (f, c, ext) in cases {
            let o = EncodeOptions::new(f, c);
            assert_eq!(o.extension(), ext, "{f} {c:?}");
            assert!(o.validate().is_ok());
        }
    }

    #[test]
    fn rejects_bad_combinations() {
        let o = EncodeOptions::new(Format::Jsonl, Some(Compression::Snappy));
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("only available for parquet"));
        let mut o = EncodeOptions::new(Format::Jsonl, Some(Compression::Gzip));
        o.level = Some(12);
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        o.level = Some(1);
        assert!(o.validate().is_ok());
        assert!("xml"
            .parse::<Format>()
            .unwrap_err()
            .contains("jsonl, csv or parquet"));
    }

    #[test]
    fn factory_builds_every_format_and_needs_a_schema_for_columns() {
        let schema = schema::Schema::infer([r#"{"a":1}"#]).unwrap();
        for format in Format::ALL {
            let options = EncodeOptions::new(format, None);
            let mut enc = new_encoder(&options, Some(&schema)).unwrap();
            enc.write_record(r#"{"a":2}"#).unwrap();
            assert_eq!(enc.rows(), 1);
            assert!(!enc.finish().unwrap().is_empty());
            let without = new_encoder(&options, None);
            assert_eq!(without.is_ok(), format == Format::Jsonl, "{format}");
        }
        let bad = EncodeOptions::new(Format::Csv, Some(Compression::Snappy));
        assert!(new_encoder(&bad, Some(&schema)).is_err());
    }
}
