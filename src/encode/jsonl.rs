//! JSON Lines: each record's text exactly as the API sent it, then `\n`, through the stream
//! codec. This is the fast path of the whole tool, so a record is a byte copy into the
//! compressor: no parsing, no re-serialisation, no per-record allocation.
//!
//! The one exception is a pretty-printed record. Valid JSON cannot hold a raw line break
//! inside a string (it must be escaped), so a `\n` or `\r` byte in a record is always
//! formatting whitespace that would split the record across lines. Only such a record is
//! validated and minified (whitespace outside strings dropped; keys, key order and number
//! text kept exactly). Records on the fast path are not validated: the extractor produced
//! them from parsed JSON.

use super::compress::CompressedWriter;
use super::record::minify;
use super::{
    Compression, EncodeError, Encoder, FormatSpec, RecordMembers, Synapse, SynapseFileType, Writer,
};
use serde_json::value::RawValue;
use std::io::Write;

/// JSON Lines, as registered in `encode/mod.rs`: the default format.
pub const SPEC: FormatSpec = FormatSpec {
    name: "jsonl",
    aliases: &["ndjson", "json-lines"],
    help: Some("records as received"),
    codecs: &[Compression::Gzip, Compression::Zstd, Compression::None],
    default_codec: Compression::Gzip,
    codec_inside: false,
    content_type: "application/x-ndjson",
    writer: Writer::Records(open),
    // A serverless pool reads each line as a one-column CSV row (0x0b never occurs in JSON
    // text) and takes the fields out with JSON_VALUE; COPY INTO has no such reading.
    synapse: Synapse {
        codecs: &[Compression::Gzip, Compression::None],
        file_type: SynapseFileType::DelimitedText,
        copy_into: Err("COPY INTO does not read JSON lines; pull with --format parquet or csv, or use --pool serverless (OPENROWSET reads jsonl)"),
        external_options: &["FIELD_TERMINATOR = '0x0b'", "STRING_DELIMITER = '0x0b'"],
        external_parser_version: false,
        openrowset_options: &[
            "FIELDTERMINATOR = '0x0b'",
            "FIELDQUOTE = '0x0b'",
            "ROWTERMINATOR = '0x0a'",
        ],
    },
};

fn open(compression: Compression, level: i32) -> Result<Box<dyn Encoder>, EncodeError> {
    Ok(Box::new(JsonlEncoder::new(compression, level)?))
}

/// Writes records as JSON Lines through a [`CompressedWriter`].
pub struct JsonlEncoder {
    out: CompressedWriter,
    rows: u64,
}

impl JsonlEncoder {
    /// `level` as from [`super::EncodeOptions::level_or_default`].
    pub fn new(compression: Compression, level: i32) -> Result<Self, EncodeError> {
        Ok(Self {
            out: CompressedWriter::new(compression, level)?,
            rows: 0,
        })
    }
}

impl Encoder for JsonlEncoder {
    /// Records are copied as they came: their members are not needed, only whether their
    /// page was compact.
    fn write_known(
        &mut self,
        record: &str,
        known: Option<(&RecordMembers, usize)>,
    ) -> Result<(), EncodeError> {
        let bytes = record.as_bytes();
        // A record of a page read compact holds no line break (none outside its strings, and
        // JSON strings hold none raw).
        let compact = RecordMembers::compact_in(known);
        if !compact && memchr::memchr2(b'\n', b'\r', bytes).is_some() {
            let raw: &RawValue =
                serde_json::from_str(record).map_err(|source| EncodeError::InvalidRecord {
                    record: self.rows,
                    source,
                })?;
            // RawValue has trimmed the whitespace around the value; minify what is inside.
            self.out.write_all(minify(raw.get()).as_bytes())?;
        } else {
            self.out.write_all(bytes)?;
        }
        self.out.write_all(b"\n")?;
        self.rows += 1;
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, EncodeError> {
        Ok(self.out.finish()?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::encode::compress::decompress;

    fn encode(compression: Compression, records: &[&str]) -> Result<String, EncodeError> {
        let mut enc = Box::new(JsonlEncoder::new(compression, 3)?);
        for r in records {
            enc.write_record(r)?;
        }
        assert_eq!(enc.rows(), records.len() as u64);
        let bytes = enc.finish()?;
        Ok(String::from_utf8(decompress(compression, &bytes)).unwrap())
    }

    #[test]
    fn copies_minified_records_byte_for_byte() {
        // Odd but valid text that a re-serialiser would change: spacing, key order, number
        // spelling, escapes, a big integer.
        let records = [
            r#"{"b":1,"a":2}"#,
            r#"{"n": 1.50e3, "big": 123456789012345678901234567890}"#,
            r#"{"s":"tab\tquote\" \u00e9 😀"}"#,
            r#"[1, 2]"#,
        ];
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let out = encode(codec, &records).unwrap();
            assert_eq!(out, records.join("\n") + "\n", "{codec}");
        }
    }

    #[test]
    fn minifies_pretty_printed_records_only() {
        let cases = [
            (
                "{\n  \"a\": 1,\n  \"b\": [1, 2]\n}",
                "{\"a\":1,\"b\":[1,2]}",
            ),
            (
                "{\r\n\"s\": \"keep  spaces\\n\"\r\n}",
                "{\"s\":\"keep  spaces\\n\"}",
            ),
            (" {\"z\": 9}\n", "{\"z\":9}"),
            ("{\"x\": 1}", "{\"x\": 1}"),
        ];
        for (record, want) in cases {
            let out = encode(Compression::None, &[record]).unwrap();
            assert_eq!(out, format!("{want}\n"), "{record:?}");
        }
    }

    #[test]
    fn rejects_invalid_multiline_record_naming_it() {
        let err = encode(Compression::None, &["{}", "{\n\"a\": }"]).unwrap_err();
        assert!(
            matches!(err, EncodeError::InvalidRecord { record: 1, .. }),
            "{err}"
        );
    }
}
