//! What can be wrong with an object's content read as records ([`DecodeFault`]), and the
//! compression it was found to have ([`SourceCompression`]): shared by the decoder
//! (`super::decode`, which re-exports both) and the JSON scanner (`super::json_scan`).

use std::fmt;
use std::io;

/// The compression an object's bytes were found to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCompression {
    None,
    Gzip,
    Zstd,
}

impl SourceCompression {
    /// Detect from the object's first bytes.
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            SourceCompression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            SourceCompression::Zstd
        } else {
            SourceCompression::None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceCompression::None => "none",
            SourceCompression::Gzip => "gzip",
            SourceCompression::Zstd => "zstd",
        }
    }
}

/// What was wrong, and where.
#[derive(Debug)]
pub enum DecodeFault {
    /// Reading or decompressing failed (a truncated gzip/zstd stream, a transport error).
    Read {
        compression: SourceCompression,
        source: io::Error,
    },
    /// The content is not UTF-8 text.
    NotUtf8 { at: String },
    /// A record (or the document around the records) is not valid JSON.
    Json { at: String, message: String },
    /// A record is valid JSON but not an object.
    NotObject { at: String, found: &'static str },
    /// A record is larger than the limit.
    TooLarge { at: String, limit: usize },
    /// The records path leads nowhere, or not to an array.
    Path { path: String, message: String },
    /// A csv row could not be read.
    Csv { at: String, message: String },
    /// A resumed unit's checkpoint counts more landed records than the object holds.
    Skip { wanted: u64, found: u64 },
}

impl fmt::Display for DecodeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeFault::Read {
                compression: SourceCompression::None,
                source,
            } => write!(f, "could not read its content: {source}"),
            DecodeFault::Read {
                compression,
                source,
            } => write!(
                f,
                "its {} content could not be decompressed ({source}); the object may be \
                 truncated or corrupt: check it with `{}`",
                compression.as_str(),
                match compression {
                    SourceCompression::Zstd => "zstd -t",
                    _ => "gzip -t",
                }
            ),
            DecodeFault::NotUtf8 { at } => write!(
                f,
                "{at} is not UTF-8 text; --land records reads jsonl, a JSON array or csv \
                 (gzip, zstd or uncompressed): land a binary object with --land as-is"
            ),
            DecodeFault::Json { at, message } => write!(
                f,
                "{at} is not valid JSON ({message}); if the object is one JSON document \
                 holding its records under a member, give that member with --records-path"
            ),
            DecodeFault::NotObject { at, found } => {
                write!(f, "{at} is {found}, not a JSON object")
            }
            DecodeFault::TooLarge { at, limit } => write!(
                f,
                "{at} is larger than {limit} bytes, the most one record may hold; is the \
                 layout what you expect (jsonl needs one record per line)?"
            ),
            DecodeFault::Path { path, message } => {
                write!(f, "records path '{path}': {message}")
            }
            DecodeFault::Csv { at, message } => write!(f, "{at}: {message}"),
            DecodeFault::Skip { wanted, found } => write!(
                f,
                "the checkpoint says {wanted} of its records are already landed, but it \
                 holds only {found}: the object changed since; rerun with --restart"
            ),
        }
    }
}
