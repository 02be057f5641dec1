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
pub mod drift;
pub mod format;
mod record;
pub(crate) mod scan;
pub mod schema;
mod timestamp;

pub use format::{Format, FormatSpec, Synapse, SynapseFileType, Writer};
pub use scan::RecordMembers;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares each format's module (its writer and its [`FormatSpec`], `SPEC`) and registers
/// the descriptor as a [`Format`] constant and in [`Format::ALL`].
macro_rules! formats {
    ($($module:ident => $name:ident,)+) => {
        $(pub mod $module;)+

        impl Format {
            $(
                #[doc = concat!("The `", stringify!($module), "` format.")]
                pub const $name: Format = Format::new(&$module::SPEC);
            )+

            /// Every format, in the order `--help` and messages list them; the first is the
            /// default.
            pub const ALL: &'static [Format] = &[$(Format::$name),+];
        }
    };
}

// The registry of output formats: one line per format.
formats! {
    jsonl => JSONL,
    csv => CSV,
    parquet => PARQUET,
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

impl Compression {
    /// What a stream compressed with it adds to a file name (`.gz`), if anything.
    fn stream_suffix(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::None | Compression::Snappy => "",
        }
    }

    /// The MIME type of a stream compressed with it, if it has one of its own.
    fn stream_content_type(self) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some("application/gzip"),
            Compression::Zstd => Some("application/zstd"),
            Compression::None | Compression::Snappy => None,
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
        if !self.format.allows(self.compression) {
            return Err(EncodeError::Options(format!(
                "--compression {} is only available for {}; use {} for {}",
                self.compression,
                Format::allowing(self.compression),
                format::or_list(self.format.spec().codecs.iter().map(|c| c.to_string())),
                self.format
            )));
        }
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
        let spec = self.format.spec();
        if spec.codec_inside {
            spec.name.to_owned()
        } else {
            format!("{}{}", spec.name, self.compression.stream_suffix())
        }
    }

    /// MIME type of the stored chunk.
    pub fn content_type(&self) -> &'static str {
        let spec = self.format.spec();
        match self.compression.stream_content_type() {
            Some(stream) if !spec.codec_inside => stream,
            _ => spec.content_type,
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
    fn write_record(&mut self, record: &str) -> Result<(), EncodeError> {
        self.write_known(record, None)
    }

    /// [`Encoder::write_record`] with the record's top-level members as the page's reader
    /// found them, when it did (the page's [`RecordMembers`] and the record's place in the
    /// page): the encoders that read records by their members (csv, parquet) use them instead
    /// of finding them again.
    fn write_known(
        &mut self,
        record: &str,
        known: Option<(&RecordMembers, usize)>,
    ) -> Result<(), EncodeError>;

    /// Records written so far.
    fn rows(&self) -> u64;

    /// Per-column statistics of what was written (csv and parquet; jsonl has no columns).
    fn stats(&self) -> Option<&schema::ColumnStats> {
        None
    }

    /// Close the file and return its bytes.
    fn finish(self: Box<Self>) -> Result<Vec<u8>, EncodeError>;
}

/// The encoder for `options`: a columnar format needs a schema (see
/// [`schema::Schema::infer`]), records as received need none.
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
    match options.format.spec().writer {
        Writer::Records(open) => open(options.compression, level),
        Writer::Columns(open) => {
            let schema = schema.ok_or_else(|| {
                EncodeError::Schema(format!("{} chunks need a schema", options.format))
            })?;
            open(schema, options.compression, level, read)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn extensions_and_defaults() {
        let cases = [
            (Format::JSONL, None, "jsonl.gz"),
            (Format::JSONL, Some(Compression::Zstd), "jsonl.zst"),
            (Format::JSONL, Some(Compression::None), "jsonl"),
            (Format::CSV, None, "csv.gz"),
            (Format::PARQUET, None, "parquet"),
            (Format::PARQUET, Some(Compression::Zstd), "parquet"),
        ];
        for (f, c, ext) in cases {
            let o = EncodeOptions::new(f, c);
            assert_eq!(o.extension(), ext, "{f} {c:?}");
            assert!(o.validate().is_ok());
        }
    }

    #[test]
    fn rejects_bad_combinations() {
        let o = EncodeOptions::new(Format::JSONL, Some(Compression::Snappy));
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("only available for parquet"));
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "--compression snappy is only available for parquet; use gzip, zstd or none for jsonl"
        );
        let mut o = EncodeOptions::new(Format::JSONL, Some(Compression::Gzip));
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
        for &format in Format::ALL {
            let options = EncodeOptions::new(format, None);
            let mut enc = new_encoder(&options, Some(&schema)).unwrap();
            enc.write_record(r#"{"a":2}"#).unwrap();
            assert_eq!(enc.rows(), 1);
            assert!(!enc.finish().unwrap().is_empty());
            let without = new_encoder(&options, None);
            assert_eq!(without.is_ok(), format == Format::JSONL, "{format}");
        }
        let bad = EncodeOptions::new(Format::CSV, Some(Compression::Snappy));
        assert!(new_encoder(&bad, Some(&schema)).is_err());
    }
}
