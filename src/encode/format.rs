//! What an output format is, asked of the format rather than matched on: each format's own
//! file (`jsonl.rs`, `csv.rs`, `parquet.rs`) holds a [`FormatSpec`] next to its writer, and
//! the registry in `encode/mod.rs` lists them, one line each. Everything that used to match on
//! a format variant — `--format` parsing and help, codec checks, file extension and MIME type,
//! whether records become fixed columns, how to open a writer, and the Synapse pieces the
//! load SQL is assembled from — reads the descriptor instead, so a new format is a new file
//! plus one registration line.
//!
//! A [`Format`] is a small copyable handle to a descriptor; two handles are equal when they
//! name the same format. It serialises as its name (`"jsonl"`), as the manifest always had it.
//!
//! This module never assembles SQL: [`Synapse`] is plain data (keywords and option lists in
//! Synapse's own spelling) that `load::sql` puts together.

use super::schema::{ReadOptions, Schema};
use super::{Compression, EncodeError, Encoder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Everything gatelake needs to know about one output format.
#[derive(Debug)]
pub struct FormatSpec {
    /// The name `--format` takes, the manifest records and extensions start with.
    pub name: &'static str,
    /// Other names `--format` accepts for it.
    pub aliases: &'static [&'static str],
    /// A few words for `--help` after the name, if the name alone does not say enough.
    pub help: Option<&'static str>,
    /// The codecs it can be written with, in the order messages offer them.
    pub codecs: &'static [Compression],
    /// The codec used when none is asked for.
    pub default_codec: Compression,
    /// The codec compresses parts inside the file (parquet's pages) rather than wrapping the
    /// whole file as a stream: the extension then names no codec, and the MIME type is the
    /// format's own whatever the codec.
    pub codec_inside: bool,
    /// MIME type of an uncompressed file (and of every file when `codec_inside`).
    pub content_type: &'static str,
    /// How to open a writer for one file.
    pub writer: Writer,
    /// How Synapse reads the files.
    pub synapse: Synapse,
}

/// Opens a writer of records as received: codec and level.
pub type OpenRecords = fn(Compression, i32) -> Result<Box<dyn Encoder>, EncodeError>;

/// Opens a writer of fixed columns: schema, codec, level, and how records are read.
pub type OpenColumns =
    fn(&Schema, Compression, i32, ReadOptions) -> Result<Box<dyn Encoder>, EncodeError>;

/// Opens the writer of one file: `level` as from [`super::EncodeOptions::level_or_default`].
#[derive(Clone, Copy)]
pub enum Writer {
    /// Records as received, with no schema.
    Records(OpenRecords),
    /// Records as fixed columns, which need the run's schema (inferred, resumed or pinned);
    /// the drift policy applies to them.
    Columns(OpenColumns),
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Writer::Records(_) => "Records",
            Writer::Columns(_) => "Columns",
        })
    }
}

/// How Synapse reads a format: the pieces of `COPY INTO`, `CREATE EXTERNAL FILE FORMAT` and
/// `OPENROWSET` that depend on it, in Synapse's spelling.
#[derive(Debug)]
pub struct Synapse {
    /// The codecs Synapse reads it in (a subset of [`FormatSpec::codecs`]).
    pub codecs: &'static [Compression],
    /// Synapse's parser for it.
    pub file_type: SynapseFileType,
    /// `COPY INTO` (a dedicated pool): its format options after `FILE_TYPE` and
    /// `COMPRESSION`, or why it cannot load the files, naming the fix.
    pub copy_into: Result<&'static [&'static str], &'static str>,
    /// `FORMAT_OPTIONS` of the serverless external file format (none: no such clause).
    pub external_options: &'static [&'static str],
    /// Whether `FORMAT_OPTIONS` states the CSV parser version (which follows the codec).
    pub external_parser_version: bool,
    /// `OPENROWSET` options after `FORMAT` (and, for delimited text, the parser options).
    pub openrowset_options: &'static [&'static str],
}

/// The parser Synapse reads a format with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynapseFileType {
    /// Columns bound by name; one file is read in parallel (row groups), and `COPY INTO` can
    /// create the table from the file (`AUTO_CREATE_TABLE`).
    Parquet,
    /// Delimited text: columns bound by position; gzip needs the CSV parser 1.0.
    DelimitedText,
}

impl SynapseFileType {
    /// `COPY INTO … WITH (FILE_TYPE = '…')`.
    pub fn copy_file_type(self) -> &'static str {
        match self {
            SynapseFileType::Parquet => "PARQUET",
            SynapseFileType::DelimitedText => "CSV",
        }
    }

    /// `CREATE EXTERNAL FILE FORMAT … WITH (FORMAT_TYPE = …)`.
    pub fn external_format_type(self) -> &'static str {
        match self {
            SynapseFileType::Parquet => "PARQUET",
            SynapseFileType::DelimitedText => "DELIMITEDTEXT",
        }
    }

    /// `OPENROWSET(… FORMAT = '…')`.
    pub fn openrowset_format(self) -> &'static str {
        self.copy_file_type()
    }
}

/// An output format: a handle to its [`FormatSpec`]. The registered formats are
/// [`Format::ALL`]; the first of them is the default.
#[derive(Clone, Copy)]
pub struct Format(&'static FormatSpec);

impl Format {
    /// The handle of a descriptor (for the registry).
    pub const fn new(spec: &'static FormatSpec) -> Self {
        Format(spec)
    }

    /// The descriptor.
    pub fn spec(self) -> &'static FormatSpec {
        self.0
    }

    /// The name `--format` takes and the manifest records.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// Whether records become fixed columns (csv, parquet): a writer needs a schema, and the
    /// drift policy, `--schema` and `--flatten` apply. Otherwise records are kept as received
    /// and their schema is descriptive only.
    pub fn columnar(self) -> bool {
        matches!(self.0.writer, Writer::Columns(_))
    }

    /// The compression used when none is asked for.
    pub fn default_compression(self) -> Compression {
        self.0.default_codec
    }

    /// Whether it can be written with `codec`.
    pub fn allows(self, codec: Compression) -> bool {
        self.0.codecs.contains(&codec)
    }

    /// How Synapse reads it.
    pub fn synapse(self) -> &'static Synapse {
        &self.0.synapse
    }

    /// The format whose name or alias is `name` (any case).
    pub fn named(name: &str) -> Option<Format> {
        let name = name.to_ascii_lowercase();
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.0.name == name || f.0.aliases.contains(&name.as_str()))
    }

    /// The formats that can be written with `codec`, as a phrase: `parquet`, `jsonl or csv`.
    pub fn allowing(codec: Compression) -> String {
        or_list(
            Format::ALL
                .iter()
                .filter(|f| f.allows(codec))
                .map(|f| f.name().to_owned()),
        )
    }

    /// The help of `--format`: every format, with its note, and the default.
    pub fn help() -> String {
        let names = or_list(Format::ALL.iter().map(|f| match f.0.help {
            Some(note) => format!("{} ({note})", f.0.name),
            None => f.0.name.to_owned(),
        }));
        format!("Chunk format: {names}. [default: {}]", Format::default())
    }
}

impl Default for Format {
    /// The first registered format.
    fn default() -> Self {
        Format::ALL[0]
    }
}

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn or_list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Self) -> bool {
        // By name: the same descriptor may sit at more than one address.
        self.0.name == other.0.name
    }
}

impl Eq for Format {}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Format({})", self.0.name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::named(s).ok_or_else(|| {
            format!(
                "unknown format '{}': use {}",
                s.to_ascii_lowercase(),
                or_list(Format::ALL.iter().map(|f| f.name().to_owned()))
            )
        })
    }
}

impl Serialize for Format {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name)
    }
}

impl<'de> Deserialize<'de> for Format {
    /// By name only, as written (aliases are for people typing flags).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.0.name == name)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown format '{name}': this gatelake writes {}",
                    or_list(Format::ALL.iter().map(|f| f.name().to_owned()))
                ))
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_consistent() {
        let mut names: Vec<&str> = Vec::new();
        for f in Format::ALL {
            let spec = f.spec();
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                assert!(!names.contains(name), "{name} is registered twice");
                names.push(name);
                assert_eq!(Format::named(name), Some(*f));
            }
            assert!(f.allows(spec.default_codec), "{f}");
            for codec in spec.synapse.codecs {
                assert!(
                    f.allows(*codec),
                    "{f}: Synapse reads {codec}, which is not written"
                );
            }
            let json = serde_json::to_string(f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.name()));
            assert_eq!(serde_json::from_str::<Format>(&json).unwrap(), *f);
        }
        assert!(serde_json::from_str::<Format>("\"xml\"").is_err());
    }

    /// The documents that list the formats (the manifest's JSON Schema, the README's settings
    /// table) list the registered ones, so a new format cannot be left out of them.
    #[test]
    fn the_documents_list_every_format() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("docs/manifest.schema.json")).unwrap(),
        )
        .unwrap();
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        let documented: Vec<&str> = schema["properties"]["format"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(documented, names, "docs/manifest.schema.json");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let row = format!("| `--format {}` |", names.join("\\|"));
        assert!(readme.contains(&row), "README.md has no settings row {row}");
    }

    #[test]
    fn lists_read_as_phrases() {
        let list = |items: &[&str]| or_list(items.iter().map(|s| s.to_string()));
        assert_eq!(list(&[]), "");
        assert_eq!(list(&["a"]), "a");
        assert_eq!(list(&["a", "b"]), "a or b");
        assert_eq!(list(&["a", "b", "c"]), "a, b or c");
        assert_eq!(
            Format::help(),
            "Chunk format: jsonl (records as received), csv or parquet. [default: jsonl]"
        );
        assert_eq!(Format::allowing(Compression::Snappy), "parquet");
    }
}
