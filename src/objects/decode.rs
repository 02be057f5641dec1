//! An object's bytes into records (`--land records`): its compression (gzip, zstd or none) and
//! its layout (JSON lines, a JSON array at the top level or under `--records-path`, csv with a
//! header row) are detected from its content, never from its name, and its records come out
//! one at a time as the raw JSON text of one object each, as the encoder takes them.
//!
//! Everything streams: the reader holds one buffer of decompressed bytes and one record, so
//! an object of any size is read in bounded memory. A record larger than
//! [`DecodeOptions::max_record_bytes`] is an error rather than an unbounded allocation.
//!
//! Detection, on the first bytes:
//! - compression: the gzip magic `1f 8b` (concatenated members are read as one stream), the
//!   zstd magic `28 b5 2f fd` (every frame is read), otherwise none;
//! - layout, on the first non-blank character after a UTF-8 byte-order mark: with a records
//!   path, the object must be one JSON document whose member at that path (`data.rows`) is
//!   the array of records; without one, `[` is a JSON array of records, `{` is JSON lines, and
//!   anything else is csv whose first row names the columns (every value a string).
//!
//! This module is pure (it reads from any `std::io::Read`, on a blocking thread) and never
//! touches the network or the lake. Every error names the object and where in its
//! decompressed content the fault is (line, record, byte), and says what to do.

pub use super::decode_fault::{DecodeFault, SourceCompression};
use super::json_scan::ArrayScanner;
use serde_json::value::RawValue;
use std::io::{self, BufRead, BufReader, Cursor, Read};

/// How an object's records are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One JSON object per line (blank lines skipped).
    JsonLines,
    /// A JSON array of objects, at the top level or at the records path.
    JsonArray,
    /// Comma-separated values; the first row names the columns.
    Csv,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::JsonLines => "jsonl",
            Layout::JsonArray => "json-array",
            Layout::Csv => "csv",
        }
    }
}

/// How to read an object's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Dot-separated member names leading to the array of records inside one JSON document
    /// (`data.rows`); `None`: detect the layout.
    pub records_path: Option<String>,
    /// The largest record accepted, in bytes of its text (the memory bound per record).
    pub max_record_bytes: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            records_path: None,
            max_record_bytes: 64 << 20,
        }
    }
}

/// Why an object's content could not be read as records. Names the object.
#[derive(Debug, thiserror::Error)]
#[error("object {object}: {fault}")]
pub struct DecodeError {
    /// The object's name (never a URL's query string).
    pub object: String,
    pub fault: DecodeFault,
}

/// What the first bytes said about an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    pub compression: SourceCompression,
    pub layout: Layout,
}

/// Reads records from an object's bytes, one at a time.
pub struct RecordReader {
    object: String,
    detected: Detected,
    inner: Inner,
    /// Records returned so far.
    records: u64,
    /// The record returned last (reused).
    current: String,
    max: usize,
}

enum Inner {
    Lines {
        input: Box<dyn BufRead + Send>,
        line: u64,
        buf: Vec<u8>,
    },
    Array(ArrayScanner),
    Csv {
        reader: Box<csv::Reader<Box<dyn Read + Send>>>,
        headers: Vec<String>,
        row: csv::StringRecord,
    },
    Empty,
}

/// A compressed object's reader that is fed the decompressed bytes.
fn decompress(
    compression: SourceCompression,
    input: Box<dyn Read + Send>,
) -> io::Result<Box<dyn Read + Send>> {
    Ok(match compression {
        SourceCompression::None => input,
        SourceCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        SourceCompression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
    })
}

/// Read up to `n` bytes (fewer only at the end of the stream).
fn read_head(input: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match input.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    Ok(head)
}

impl RecordReader {
    /// Detect the object's compression and layout from its first bytes and get ready to read
    /// its records. `object` names it in errors.
    pub fn open(
        object: &str,
        mut input: Box<dyn Read + Send>,
        options: &DecodeOptions,
    ) -> Result<Self, DecodeError> {
        let fail = |fault| DecodeError {
            object: object.to_owned(),
            fault,
        };
        let read_err = |compression, source| {
            fail(DecodeFault::Read {
                compression,
                source,
            })
        };
        let head = read_head(&mut input, 4).map_err(|e| read_err(SourceCompression::None, e))?;
        let compression = SourceCompression::detect(&head);
        let raw: Box<dyn Read + Send> = Box::new(Cursor::new(head).chain(input));
        let plain = decompress(compression, raw).map_err(|e| read_err(compression, e))?;
        let mut text = BufReader::with_capacity(64 << 10, plain);
        // The first non-blank character, after a byte-order mark.
        let first = loop {
            let buf = text.fill_buf().map_err(|e| read_err(compression, e))?;
            if buf.is_empty() {
                break None;
            }
            let skip = if buf.starts_with(&[0xef, 0xbb, 0xbf]) {
                3
            } else {
                buf.iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(buf.len())
            };
            if skip == 0 {
                break Some(buf[0]);
            }
            text.consume(skip);
        };
        let max = options.max_record_bytes.max(1);
        let (layout, inner) = match (first, &options.records_path) {
            (None, _) => (Layout::JsonLines, Inner::Empty),
            (Some(_), Some(path)) => {
                let mut scanner = ArrayScanner::new(Box::new(text), max, compression);
                scanner.descend(path).map_err(fail)?;
                (Layout::JsonArray, Inner::Array(scanner))
            }
            (Some(b'['), None) => {
                let mut scanner = ArrayScanner::new(Box::new(text), max, compression);
                scanner.enter_array().map_err(fail)?;
                (Layout::JsonArray, Inner::Array(scanner))
            }
            (Some(b'{'), None) => (
                Layout::JsonLines,
                Inner::Lines {
                    input: Box::new(text),
                    line: 0,
                    buf: Vec::new(),
                },
            ),
            (Some(_), None) => {
                let rdr: Box<dyn Read + Send> = Box::new(text);
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(false)
                    .from_reader(rdr);
                let headers = reader
                    .headers()
                    .map_err(|e| fail(csv_fault(&e, compression)))?
                    .iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>();
                if let Some(dup) = first_duplicate(&headers) {
                    return Err(fail(DecodeFault::Csv {
                        at: "its header row (line 1)".to_owned(),
                        message: format!(
                            "column '{dup}' is named twice; every column needs a distinct name"
                        ),
                    }));
                }
                (
                    Layout::Csv,
                    Inner::Csv {
                        reader: Box::new(reader),
                        headers,
                        row: csv::StringRecord::new(),
                    },
                )
            }
        };
        Ok(Self {
            object: object.to_owned(),
            detected: Detected {
                compression,
                layout,
            },
            inner,
            records: 0,
            current: String::new(),
            max,
        })
    }

    /// What was detected.
    pub fn detected(&self) -> Detected {
        self.detected
    }

    /// Records returned so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn fail(&self, fault: DecodeFault) -> DecodeError {
        DecodeError {
            object: self.object.clone(),
            fault,
        }
    }

    /// Skip the first `n` records (those a resumed unit already landed), checking each as
    /// it is read. Fails when the object holds fewer.
    pub fn skip(&mut self, n: u64) -> Result<(), DecodeError> {
        while self.records < n {
            if self.next_record()?.is_none() {
                return Err(self.fail(DecodeFault::Skip {
                    wanted: n,
                    found: self.records,
                }));
            }
        }
        Ok(())
    }

    /// The next record as the JSON text of one object; `None` at the end of the object.
    pub fn next_record(&mut self) -> Result<Option<&str>, DecodeError> {
        let number = self.records + 1;
        let compression = self.detected.compression;
        let max = self.max;
        let found = match &mut self.inner {
            Inner::Empty => false,
            Inner::Lines { input, line, buf } => {
                next_line(input.as_mut(), line, buf, max, compression)
                    .map_err(|f| DecodeError {
                        object: self.object.clone(),
                        fault: f,
                    })?
                    .map(|at| {
                        check_record(buf, &at, &mut self.current).map_err(|f| DecodeError {
                            object: self.object.clone(),
                            fault: f,
                        })
                    })
                    .transpose()?
                    .is_some()
            }
            Inner::Array(scanner) => {
                let got = scanner.next_element().map_err(|f| DecodeError {
                    object: self.object.clone(),
                    fault: f,
                })?;
                match got {
                    None => false,
                    Some(at) => {
                        let at = format!("record {number} ({at})");
                        check_record(&scanner.value, &at, &mut self.current).map_err(|f| {
                            DecodeError {
                                object: self.object.clone(),
                                fault: f,
                            }
                        })?;
                        true
                    }
                }
            }
            Inner::Csv {
                reader,
                headers,
                row,
            } => {
                let more = reader.read_record(row).map_err(|e| DecodeError {
                    object: self.object.clone(),
                    fault: csv_fault(&e, compression),
                })?;
                if more {
                    // Written by hand, not through a map: the columns keep the header's order.
                    self.current.clear();
                    self.current.push('{');
                    for (i, (name, value)) in headers.iter().zip(row.iter()).enumerate() {
                        if i > 0 {
                            self.current.push(',');
                        }
                        push_json_string(&mut self.current, name);
                        self.current.push(':');
                        push_json_string(&mut self.current, value);
                    }
                    self.current.push('}');
                    if self.current.len() > max {
                        let line = row.position().map_or(0, |p| p.line());
                        return Err(self.fail(DecodeFault::TooLarge {
                            at: format!("line {line}"),
                            limit: max,
                        }));
                    }
                }
                more
            }
        };
        if !found {
            return Ok(None);
        }
        self.records = number;
        Ok(Some(&self.current))
    }
}

/// Append `text` as a JSON string.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn first_duplicate(names: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .find(|n| !seen.insert(n.as_str()))
        .map(String::as_str)
}

fn csv_fault(e: &csv::Error, compression: SourceCompression) -> DecodeFault {
    let line = e.position().map(|p| p.line());
    let at = match line {
        Some(l) => format!("line {l}"),
        None => "its csv content".to_owned(),
    };
    match e.kind() {
        csv::ErrorKind::Io(io) => DecodeFault::Read {
            compression,
            source: io::Error::new(io.kind(), io.to_string()),
        },
        csv::ErrorKind::Utf8 { .. } => DecodeFault::NotUtf8 { at },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => DecodeFault::Csv {
            at,
            message: format!(
                "a row has {len} fields but the header names {expected_len} columns \
                 (only csv with a header row is read)"
            ),
        },
        _ => DecodeFault::Csv {
            at,
            message: e.to_string(),
        },
    }
}

/// Check that `bytes` is one JSON object and keep its text in `out`.
fn check_record(bytes: &[u8], at: &str, out: &mut String) -> Result<(), DecodeFault> {
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeFault::NotUtf8 { at: at.into() })?;
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| DecodeFault::Json {
        at: at.into(),
        message: e.to_string(),
    })?;
    let found = kind_of(raw.get());
    if found != "an object" {
        return Err(DecodeFault::NotObject {
            at: at.into(),
            found,
        });
    }
    out.clear();
    out.push_str(raw.get());
    Ok(())
}

/// The JSON kind of a valid value's text, as an error names it.
fn kind_of(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// The next non-blank line into `buf` (without its line ending); returns where it is, or
/// `None` at the end. Reads at most `max` bytes of one line.
fn next_line(
    input: &mut dyn BufRead,
    line: &mut u64,
    buf: &mut Vec<u8>,
    max: usize,
    compression: SourceCompression,
) -> Result<Option<String>, DecodeFault> {
    loop {
        buf.clear();
        let mut ended = false;
        let mut any = false;
        while !ended {
            let avail = input.fill_buf().map_err(|source| DecodeFault::Read {
                compression,
                source,
            })?;
            if avail.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if buf.len() + take > max + 2 {
                return Err(DecodeFault::TooLarge {
                    at: format!("line {}", *line + 1),
                    limit: max,
                });
            }
            buf.extend_from_slice(&avail[..take]);
            input.consume(take);
            ended = done;
        }
        if !any {
            return Ok(None);
        }
        *line += 1;
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if buf.len() > max {
            return Err(DecodeFault::TooLarge {
                at: format!("line {line}"),
                limit: max,
            });
        }
        return Ok(Some(format!("line {line}")));
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
