//! CSV chunks: a header row of the schema's column names, then one row per record, through
//! the stream codec. The columns are fixed by the [`Schema`]; a record is read borrowed (see
//! `RowReader` in the schema module) and its values are written straight from the record's text.
//!
//! Cell text: strings unescaped (the csv writer quotes commas, quotes and line breaks),
//! numbers exactly as the JSON spelt them, booleans `true`/`false`, nested values as compact
//! JSON text, and null or missing as an empty cell. A field the schema does not know, or a
//! value that does not fit its column, fails the record rather than silently dropping or
//! casting data.

use super::compress::CompressedWriter;
use super::record::{compact_json, unescape};
use super::schema::{ColumnStats, FieldKind, ReadOptions, RowReader, Schema};
use super::timestamp;
use super::{
    Compression, EncodeError, Encoder, FormatSpec, RecordMembers, Synapse, SynapseFileType, Writer,
};

/// CSV with a header row, as registered in `encode/mod.rs`.
pub const SPEC: FormatSpec = FormatSpec {
    name: "csv",
    aliases: &[],
    help: None,
    codecs: &[Compression::Gzip, Compression::Zstd, Compression::None],
    default_codec: Compression::Gzip,
    codec_inside: false,
    content_type: "text/csv",
    writer: Writer::Columns(open),
    // The header row is skipped (first row 2) and columns are bound by position, so a
    // shortened column name still reads the right values.
    synapse: Synapse {
        codecs: &[Compression::Gzip, Compression::None],
        file_type: SynapseFileType::DelimitedText,
        copy_into: Ok(&[
            "FIELDTERMINATOR = ','",
            "FIELDQUOTE = '\"'",
            "ROWTERMINATOR = '0x0A'",
            "FIRSTROW = 2",
            "ENCODING = 'UTF8'",
            "DATEFORMAT = 'ymd'",
        ]),
        external_options: &[
            "FIELD_TERMINATOR = ','",
            "STRING_DELIMITER = '\"'",
            "FIRST_ROW = 2",
            "USE_TYPE_DEFAULT = FALSE",
            "ENCODING = 'UTF8'",
        ],
        external_parser_version: true,
        openrowset_options: &["FIRSTROW = 2", "FIELDTERMINATOR = ','", "FIELDQUOTE = '\"'"],
    },
};

fn open(
    schema: &Schema,
    compression: Compression,
    level: i32,
    read: ReadOptions,
) -> Result<Box<dyn Encoder>, EncodeError> {
    Ok(Box::new(CsvEncoder::with_options(
        schema,
        compression,
        level,
        read,
    )?))
}

/// Writes records as CSV rows through a [`CompressedWriter`].
pub struct CsvEncoder {
    out: csv::Writer<CompressedWriter>,
    reader: RowReader,
    rows: u64,
}

impl CsvEncoder {
    /// Start a file with the header row of `schema`. `level` as from
    /// [`super::EncodeOptions::level_or_default`].
    pub fn new(schema: &Schema, compression: Compression, level: i32) -> Result<Self, EncodeError> {
        Self::with_options(schema, compression, level, ReadOptions::default())
    }

    /// [`CsvEncoder::new`] reading records as `read` says (flattening, `_extra`).
    pub(crate) fn with_options(
        schema: &Schema,
        compression: Compression,
        level: i32,
        read: ReadOptions,
    ) -> Result<Self, EncodeError> {
        let mut out = csv::WriterBuilder::new()
            .buffer_capacity(64 * 1024)
            .from_writer(CompressedWriter::new(compression, level)?);
        out.write_record(schema.names())?;
        Ok(Self {
            out,
            reader: RowReader::new(schema, read),
            rows: 0,
        })
    }
}

impl Encoder for CsvEncoder {
    fn write_known(
        &mut self,
        record: &str,
        known: Option<(&RecordMembers, usize)>,
    ) -> Result<(), EncodeError> {
        let record_no = self.rows;
        for (field, value, micros) in self.reader.read(record_no, record, known)? {
            let Some(raw) = value else {
                self.out.write_field(b"")?;
                continue;
            };
            match (field.kind, raw.as_bytes().first()) {
                (FieldKind::Timestamp, _) => {
                    // RowReader parsed it (`micros`); UTC in the form DATETIME2 reads.
                    let text =
                        micros
                            .and_then(timestamp::csv_text)
                            .ok_or_else(|| EncodeError::SchemaMismatch {
                                record: record_no,
                                message: format!(
                                    "field '{}': {raw} is not a timestamp",
                                    field.name
                                ),
                            })?;
                    self.out.write_field(text.as_bytes())?;
                }
                (_, Some(b'"')) => {
                    let text = unescape(raw).map_err(|source| EncodeError::InvalidRecord {
                        record: record_no,
                        source,
                    })?;
                    self.out.write_field(text.as_bytes())?;
                }
                (FieldKind::Json | FieldKind::Utf8, Some(b'{' | b'[')) => {
                    self.out.write_field(compact_json(raw, known).as_bytes())?;
                }
                // Numbers and booleans: their JSON text is the cell text.
                _ => self.out.write_field(raw.as_bytes())?,
            }
        }
        self.out.write_record(None::<&[u8]>)?;
        self.rows += 1;
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn stats(&self) -> Option<&ColumnStats> {
        Some(self.reader.stats())
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, EncodeError> {
        let writer = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok(writer.finish()?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::encode::compress::decompress;
    use crate::encode::schema::Field;

    fn encode(
        schema: &Schema,
        compression: Compression,
        records: &[&str],
    ) -> Result<String, EncodeError> {
        let mut enc = Box::new(CsvEncoder::new(schema, compression, 3)?);
        for r in records {
            enc.write_record(r)?;
        }
        assert_eq!(enc.rows(), records.len() as u64);
        let bytes = enc.finish()?;
        Ok(String::from_utf8(decompress(compression, &bytes)).unwrap())
    }

    #[test]
    fn writes_cells_from_record_text() {
        let records = [
            r#"{"id": 1, "name": "plain", "score": 1.5, "ok": true, "tags": ["a", "b"], "doc": {"k": 1}}"#,
            r#"{"name": "comma, \"quote\"\nline\ttab é😀", "id": -4611686018427387904, "score": 2, "ok": false, "tags": [], "doc": null}"#,
            r#"{"id": 3, "name": null, "score": 1e-7, "ok": null, "tags": null}"#,
        ];
        let schema = Schema::infer(records).unwrap();
        let want = "id,name,score,ok,tags,doc\n\
            1,plain,1.5,true,\"[\"\"a\"\",\"\"b\"\"]\",\"{\"\"k\"\":1}\"\n\
            -4611686018427387904,\"comma, \"\"quote\"\"\nline\ttab é😀\",2,false,[],\n\
            3,,1e-7,,,\n";
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(encode(&schema, codec, &records).unwrap(), want, "{codec}");
        }
    }

    #[test]
    fn parses_back_with_a_csv_reader() {
        let records = [
            r#"{"s": "a,b\r\n\"c\""}"#,
            r#"{"s": 7}"#,
            r#"{"s": {"x": "y, z"}}"#,
        ];
        let schema = Schema::infer(records).unwrap();
        let text = encode(&schema, Compression::None, &records).unwrap();
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let got: Vec<String> = rdr.records().map(|r| r.unwrap()[0].to_owned()).collect();
        assert_eq!(got, ["a,b\r\n\"c\"", "7", r#"{"x":"y, z"}"#]);
    }

    #[test]
    fn rejects_records_that_do_not_fit() {
        let schema = Schema {
            fields: vec![Field {
                name: "id".into(),
                kind: FieldKind::Int64,
                nullable: false,
                max_length: None,
            }],
        };
        let cases = [
            (
                r#"{"id": 1, "new": 2}"#,
                "record 1: field 'new' is not in the schema",
            ),
            (
                r#"{"id": "1"}"#,
                "record 1: field 'id' is a string but its column is int64",
            ),
            (r#"[1]"#, "record 1 is not a JSON object"),
        ];
        for (record, want) in cases {
            let err = encode(&schema, Compression::None, &[r#"{"id": 0}"#, record]).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
    }
}
