//! Parquet chunks: records are read borrowed against the [`Schema`] (see `RowReader`) and
//! appended to one Arrow builder per column; every [`BATCH_ROWS`] rows or [`BATCH_BYTES`] of
//! record text the builders become a `RecordBatch` handed to the `ArrowWriter`, which encodes
//! and compresses it into its in-memory row group. The writer runs on a thread of its own
//! ([`BackgroundWriter`]): it encodes one batch (dictionaries, statistics, page compression:
//! about 40% of a parquet pull's encoding time) while the next is read from the records,
//! which on the encoder's thread alone set the pace of the pull. The hand-over waits for the
//! writer to take the batch, so memory holds at most two batches of Arrow arrays (one being
//! built, one being written) plus the encoded file, never the whole chunk as Arrow data.
//!
//! The compression is parquet's page codec (snappy, zstd, gzip or none); the file itself is
//! never wrapped in a stream codec, since readers need to seek to its footer.
//!
//! Values follow the same rules as csv: `Json` columns hold compact JSON text, a string
//! column holds a non-string value as its JSON text, and what does not fit fails the record.

use super::record::{compact_json, parse_int, unescape};
use super::schema::{ColumnStats, FieldKind, ReadOptions, RowReader, Schema};
use super::{
    Compression, EncodeError, Encoder, FormatSpec, RecordMembers, Synapse, SynapseFileType, Writer,
};
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::basic::{GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use crate::buffers::SizeHint;
use std::sync::Arc;

mod dictionary;

/// Parquet, as registered in `encode/mod.rs`: the codec compresses its pages.
pub const SPEC: FormatSpec = FormatSpec {
    name: "parquet",
    aliases: &[],
    help: None,
    codecs: &[
        Compression::Snappy,
        Compression::Gzip,
        Compression::Zstd,
        Compression::None,
    ],
    default_codec: Compression::Snappy,
    codec_inside: true,
    content_type: "application/vnd.apache.parquet",
    writer: Writer::Columns(open),
    // Columns bound by name: the file's column names are the SQL names.
    synapse: Synapse {
        codecs: &[Compression::Snappy, Compression::Gzip, Compression::None],
        file_type: SynapseFileType::Parquet,
        copy_into: Ok(&[]),
        external_options: &[],
        external_parser_version: false,
        openrowset_options: &[],
    },
};

fn open(
    schema: &Schema,
    compression: Compression,
    level: i32,
    read: ReadOptions,
) -> Result<Box<dyn Encoder>, EncodeError> {
    Ok(Box::new(ParquetEncoder::with_options(
        schema,
        compression,
        level,
        read,
    )?))
}

/// Rows per record batch (two batches' Arrow data are held at most: one built, one written).
pub const BATCH_ROWS: usize = 32 * 1024;
/// Record text per record batch: wide records reach this before [`BATCH_ROWS`].
pub const BATCH_BYTES: usize = 16 * 1024 * 1024;

/// The size of the last file written, to size the next one's buffer: the file is written out
/// when its row group closes, while the row group's pages are still held, and a buffer grown
/// by doubling then left its smaller sizes (up to 8 MiB) as holes in the writer thread's heap,
/// on top of the pages: the highest point of a parquet pull's memory, chunk after chunk.
static FILES: SizeHint = SizeHint::new();

/// The `ArrowWriter` on a thread of its own, fed one batch at a time.
struct BackgroundWriter {
    /// A rendezvous channel: a send returns once the writer has taken the batch, so at most
    /// one batch waits in the writer while the next is built.
    batches: Option<std::sync::mpsc::SyncSender<RecordBatch>>,
    thread: Option<std::thread::JoinHandle<Result<Vec<u8>, EncodeError>>>,
}

impl BackgroundWriter {
    fn start(mut writer: ArrowWriter<Vec<u8>>) -> Result<Self, EncodeError> {
        let (batches, received) = std::sync::mpsc::sync_channel::<RecordBatch>(0);
        let thread = std::thread::Builder::new()
            .name("gatelake-parquet".into())
            .spawn(move || {
                for batch in received {
                    writer.write(&batch)?;
                }
                Ok(writer.into_inner()?)
            })
            .map_err(|e| {
                EncodeError::Options(format!("could not start the parquet writer's thread: {e}"))
            })?;
        Ok(Self {
            batches: Some(batches),
            thread: Some(thread),
        })
    }

    fn write(&mut self, batch: RecordBatch) -> Result<(), EncodeError> {
        match self.batches.as_ref().map(|b| b.send(batch)) {
            Some(Ok(())) => Ok(()),
            // The writer stopped at an error, which is the one to report.
            _ => Err(match self.finish() {
                Err(e) => e,
                Ok(_) => EncodeError::Options("the parquet writer stopped early".into()),
            }),
        }
    }

    /// Close the file once every batch sent is written, and take it.
    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        self.batches = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(file)) => file,
            Some(Err(_)) => Err(EncodeError::Options(
                "the parquet writer's thread panicked".into(),
            )),
            None => Err(EncodeError::Options(
                "the parquet writer was already closed".into(),
            )),
        }
    }
}

/// Writes records into a parquet file in memory.
pub struct ParquetEncoder {
    /// Started with the first batch, which decides the columns' dictionaries (see
    /// `dictionary`).
    writer: Option<BackgroundWriter>,
    codec: parquet::basic::Compression,
    schema: Arc<arrow_schema::Schema>,
    reader: RowReader,
    columns: Vec<Column>,
    rows: u64,
    batch_rows: usize,
    batch_bytes: usize,
}

enum Column {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    /// `Utf8` and `Json`.
    Utf8(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl Column {
    /// The values appended so far, as an array. With `more`, the builder starts again with
    /// room for as many rows and bytes as these plus an eighth: a builder left to grow from
    /// empty doubled each of its buffers a dozen times per batch, copying them and leaving
    /// the smaller sizes as holes in the encoder thread's heap.
    fn finish(&mut self, more: bool) -> ArrayRef {
        let room = |n: usize| if more { n + n / 8 } else { 0 };
        match self {
            Column::Boolean(b) => {
                let array = b.finish();
                *b = BooleanBuilder::with_capacity(room(array.len()));
                Arc::new(array)
            }
            Column::Int64(b) => {
                let array = b.finish();
                *b = Int64Builder::with_capacity(room(array.len()));
                Arc::new(array)
            }
            Column::Float64(b) => {
                let array = b.finish();
                *b = Float64Builder::with_capacity(room(array.len()));
                Arc::new(array)
            }
            Column::Utf8(b) => {
                let array = b.finish();
                let bytes = array.value_data().len();
                *b = StringBuilder::with_capacity(room(array.len()), room(bytes));
                Arc::new(array)
            }
            Column::Timestamp(b) => {
                let array = b.finish();
                *b = TimestampMicrosecondBuilder::with_capacity(room(array.len()))
                    .with_timezone("UTC");
                Arc::new(array)
            }
        }
    }
}

impl ParquetEncoder {
    /// Start a file for `schema` with page codec `compression` at `level` (as from
    /// [`super::EncodeOptions::level_or_default`]; used by gzip and zstd only).
    pub fn new(schema: &Schema, compression: Compression, level: i32) -> Result<Self, EncodeError> {
        Self::with_options(schema, compression, level, ReadOptions::default())
    }

    /// [`ParquetEncoder::new`] reading records as `read` says (flattening, `_extra`).
    pub(crate) fn with_options(
        schema: &Schema,
        compression: Compression,
        level: i32,
        read: ReadOptions,
    ) -> Result<Self, EncodeError> {
        let codec = match compression {
            Compression::None => parquet::basic::Compression::UNCOMPRESSED,
            Compression::Snappy => parquet::basic::Compression::SNAPPY,
            Compression::Zstd => parquet::basic::Compression::ZSTD(ZstdLevel::try_new(level)?),
            Compression::Gzip => parquet::basic::Compression::GZIP(GzipLevel::try_new(
                u32::try_from(level).map_err(|_| {
                    EncodeError::Options(format!("gzip level {level} is out of range (0..=9)"))
                })?,
            )?),
        };
        let arrow = Arc::new(schema.to_arrow());
        let columns = schema
            .fields
            .iter()
            .map(|f| match f.kind {
                FieldKind::Boolean => Column::Boolean(BooleanBuilder::new()),
                FieldKind::Int64 => Column::Int64(Int64Builder::new()),
                FieldKind::Float64 => Column::Float64(Float64Builder::new()),
                FieldKind::Utf8 | FieldKind::Json => Column::Utf8(StringBuilder::new()),
                FieldKind::Timestamp => {
                    Column::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
                }
            })
            .collect();
        Ok(Self {
            writer: None,
            codec,
            schema: arrow,
            reader: RowReader::new(schema, read),
            columns,
            rows: 0,
            batch_rows: 0,
            batch_bytes: 0,
        })
    }

    /// The file's writer, its columns' dictionaries decided by `first` (the file's first batch;
    /// `None` for a file without rows).
    fn start(&self, first: Option<&RecordBatch>) -> Result<BackgroundWriter, EncodeError> {
        let builder = WriterProperties::builder().set_compression(self.codec);
        let props = match first {
            Some(batch) => dictionary::decide(builder, batch),
            None => builder.build(),
        };
        BackgroundWriter::start(ArrowWriter::try_new(
            Vec::with_capacity(FILES.capacity()),
            Arc::clone(&self.schema),
            Some(props),
        )?)
    }

    /// Turn the builders into a record batch and hand it to the writer; `more` when records
    /// follow (the builders are then sized for another batch like this one).
    fn flush_batch(&mut self, more: bool) -> Result<(), EncodeError> {
        if self.batch_rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(|c| c.finish(more)).collect();
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), arrays)?;
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => self.writer.insert(self.start(Some(&batch))?),
        };
        writer.write(batch)?;
        self.batch_rows = 0;
        self.batch_bytes = 0;
        Ok(())
    }
}

impl Encoder for ParquetEncoder {
    fn write_known(
        &mut self,
        record: &str,
        known: Option<(&RecordMembers, usize)>,
    ) -> Result<(), EncodeError> {
        let record_no = self.rows;
        let values = self.reader.read(record_no, record, known)?;
        // RowReader has checked each value's JSON type against its column; what is left to
        // fail is parsing, which a validated JSON number or string does not.
        let invalid = |message: String| EncodeError::SchemaMismatch {
            record: record_no,
            message,
        };
        for (column, (field, value, micros)) in self.columns.iter_mut().zip(values) {
            match (column, value) {
                (Column::Boolean(b), v) => b.append_option(v.map(|raw| raw == "true")),
                (Column::Int64(b), None) => b.append_null(),
                (Column::Int64(b), Some(raw)) => {
                    b.append_value(parse_int(raw).ok_or_else(|| {
                        invalid(format!("field '{}': {raw} does not fit int64", field.name))
                    })?)
                }
                (Column::Float64(b), None) => b.append_null(),
                (Column::Float64(b), Some(raw)) => {
                    // Rust parses an out-of-range literal such as 1e400 as infinity.
                    let v = raw.parse::<f64>().ok().filter(|v| v.is_finite());
                    b.append_value(v.ok_or_else(|| {
                        invalid(format!(
                            "field '{}': {raw} does not fit float64",
                            field.name
                        ))
                    })?)
                }
                (Column::Timestamp(b), None) => b.append_null(),
                (Column::Timestamp(b), Some(raw)) => {
                    // Parsed by RowReader when it checked the value.
                    b.append_value(micros.ok_or_else(|| {
                        invalid(format!("field '{}': {raw} is not a timestamp", field.name))
                    })?)
                }
                (Column::Utf8(b), None) => b.append_null(),
                (Column::Utf8(b), Some(raw)) => {
                    if raw.starts_with('"') {
                        let text = unescape(raw).map_err(|source| EncodeError::InvalidRecord {
                            record: record_no,
                            source,
                        })?;
                        b.append_value(text);
                    } else {
                        b.append_value(compact_json(raw, known));
                    }
                }
            }
        }
        self.rows += 1;
        self.batch_rows += 1;
        self.batch_bytes += record.len();
        if self.batch_rows >= BATCH_ROWS || self.batch_bytes >= BATCH_BYTES {
            self.flush_batch(true)?;
        }
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn stats(&self) -> Option<&ColumnStats> {
        Some(self.reader.stats())
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>, EncodeError> {
        self.flush_batch(false)?;
        let file = match self.writer.take() {
            Some(mut writer) => writer.finish(),
            None => self.start(None)?.finish(),
        }?;
        FILES.record(file.len());
        Ok(file)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::encode::schema::Field;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn encode(schema: &Schema, compression: Compression, level: i32, records: &[&str]) -> Vec<u8> {
        let mut enc = Box::new(ParquetEncoder::new(schema, compression, level).unwrap());
        for r in records {
            enc.write_record(r).unwrap();
        }
        assert_eq!(enc.rows(), records.len() as u64);
        enc.finish().unwrap()
    }

    fn read(bytes: Vec<u8>) -> Vec<RecordBatch> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        reader.map(|b| b.unwrap()).collect()
    }

    const RECORDS: [&str; 4] = [
        r#"{"id": 4611686018427387904, "name": "comma, \"quote\"\nnew\tline é😀", "score": 1.5, "ok": true, "doc": {"a": [1, {"b": null}]}, "tags": ["x", "y"]}"#,
        r#"{"id": -4611686018427387904, "name": "", "score": 2, "ok": false, "doc": null, "tags": []}"#,
        r#"{"id": 0, "name": null, "score": -1.25e-300, "ok": null, "tags": ["z"]}"#,
        r#"{"id": 9223372036854775807, "name": "plain", "score": 1.7976931348623157e308, "ok": true, "doc": {"k": "v, w"}, "tags": null}"#,
    ];

    #[test]
    fn columns_carry_sql_names_and_the_field_name_in_metadata() {
        let long = "x".repeat(200);
        let record = format!(r#"{{"{long}": 1, "new\nline": "a", "id": 2}}"#);
        let schema = Schema::infer([record.as_str()]).unwrap();
        let batches = read(encode(&schema, Compression::Snappy, 0, &[record.as_str()]));
        let got = batches[0].schema();
        let names: Vec<&str> = got.fields().iter().map(|f| f.name().as_str()).collect();
        let want = [
            crate::encode::schema::column_name(&long),
            crate::encode::schema::column_name("new\nline"),
            "id".to_owned(),
        ];
        assert_eq!(names, want);
        assert!(names
            .iter()
            .all(|n| n.chars().count() <= 128 && !n.contains('\n')));
        let original = |i: usize| {
            got.field(i)
                .metadata()
                .get(crate::encode::schema::FIELD_NAME_METADATA)
                .cloned()
        };
        assert_eq!(original(0).as_deref(), Some(long.as_str()));
        assert_eq!(original(1).as_deref(), Some("new\nline"));
        assert_eq!(original(2), None);
        // The manifest records the file's column beside the field name.
        let json = serde_json::to_value(&schema).unwrap();
        assert_eq!(json["fields"][0]["column"], want[0].as_str());
        assert!(json["fields"][2].get("column").is_none());
        let back: Schema = serde_json::from_value(json).unwrap();
        assert_eq!(back, schema);
    }

    #[test]
    fn round_trips_values_through_every_codec() {
        let schema = Schema::infer(RECORDS).unwrap();
        let kinds: Vec<_> = schema
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("id", FieldKind::Int64),
                ("name", FieldKind::Utf8),
                ("score", FieldKind::Float64),
                ("ok", FieldKind::Boolean),
                ("doc", FieldKind::Json),
                ("tags", FieldKind::Json)
            ]
        );
        let cases = [
            (Compression::Snappy, 0),
            (Compression::Zstd, 3),
            (Compression::Gzip, 6),
            (Compression::None, 0),
        ];
        for (codec, level) in cases {
            let batches = read(encode(&schema, codec, level, &RECORDS));
            assert_eq!(batches.len(), 1, "{codec}");
            let b = &batches[0];
            assert_eq!(b.schema().as_ref(), &schema.to_arrow(), "{codec}");
            let ids: Vec<_> = b.column(0).as_primitive::<Int64Type>().iter().collect();
            assert_eq!(
                ids,
                [Some(1 << 62), Some(-(1 << 62)), Some(0), Some(i64::MAX)],
                "{codec}"
            );
            let names: Vec<_> = b.column(1).as_string::<i32>().iter().collect();
            assert_eq!(
                names,
                [
                    Some("comma, \"quote\"\nnew\tline é😀"),
                    Some(""),
                    None,
                    Some("plain")
                ]
            );
            let scores: Vec<_> = b.column(2).as_primitive::<Float64Type>().iter().collect();
            assert_eq!(
                scores,
                [Some(1.5), Some(2.0), Some(-1.25e-300), Some(f64::MAX)]
            );
            let oks: Vec<_> = b.column(3).as_boolean().iter().collect();
            assert_eq!(oks, [Some(true), Some(false), None, Some(true)]);
            let docs: Vec<_> = b.column(4).as_string::<i32>().iter().collect();
            assert_eq!(
                docs,
                [
                    Some(r#"{"a":[1,{"b":null}]}"#),
                    None,
                    None,
                    Some(r#"{"k":"v, w"}"#)
                ]
            );
            let tags: Vec<_> = b.column(5).as_string::<i32>().iter().collect();
            assert_eq!(
                tags,
                [Some(r#"["x","y"]"#), Some("[]"), Some(r#"["z"]"#), None]
            );
        }
    }

    #[test]
    fn splits_large_inputs_into_batches() {
        let schema = Schema {
            fields: vec![Field {
                name: "n".into(),
                kind: FieldKind::Int64,
                nullable: false,
                max_length: None,
            }],
        };
        let records: Vec<String> = (0..BATCH_ROWS as i64 + 10)
            .map(|n| format!("{{\"n\":{n}}}"))
            .collect();
        let refs: Vec<&str> = records.iter().map(String::as_str).collect();
        let batches = read(encode(&schema, Compression::Snappy, 0, &refs));
        let mut next = 0i64;
        for b in &batches {
            for v in b.column(0).as_primitive::<Int64Type>().iter() {
                assert_eq!(v, Some(next));
                next += 1;
            }
        }
        assert_eq!(next, records.len() as i64);
    }

    #[test]
    fn the_writers_error_reaches_the_encoder_at_its_next_hand_over() {
        use arrow_schema::{DataType, Field as ArrowField};
        let ints = Arc::new(arrow_schema::Schema::new(vec![ArrowField::new(
            "a",
            DataType::Int64,
            false,
        )]));
        let texts = Arc::new(arrow_schema::Schema::new(vec![ArrowField::new(
            "a",
            DataType::Utf8,
            false,
        )]));
        let wrong = RecordBatch::try_new(
            texts,
            vec![Arc::new(arrow_array::StringArray::from(vec!["x"])) as ArrayRef],
        )
        .unwrap();
        let writer = ArrowWriter::try_new(Vec::new(), ints, None).unwrap();
        let mut background = BackgroundWriter::start(writer).unwrap();
        // Taken by the writer, which fails on it; the next hand-over says why.
        background.write(wrong.clone()).unwrap();
        let err = background.write(wrong).unwrap_err().to_string();
        assert!(err.contains("Incompatible type"), "{err}");
        let again = background.finish().unwrap_err().to_string();
        assert!(again.contains("already closed"), "{again}");
    }

    #[test]
    fn ids_are_written_plainly_and_repeating_values_with_a_dictionary() {
        let records: Vec<String> = (0..5000)
            .map(|i| format!(r#"{{"id": {i}, "status": "{}"}}"#, ["new", "paid", "sent"][i % 3]))
            .collect();
        let refs: Vec<&str> = records.iter().map(String::as_str).collect();
        let schema = Schema::infer(refs.iter().copied()).unwrap();
        let file = bytes::Bytes::from(encode(&schema, Compression::Snappy, 0, &refs));
        let builder = ParquetRecordBatchReaderBuilder::try_new(file.clone()).unwrap();
        let group = builder.metadata().row_group(0);
        let dictionary_of = |name: &str| {
            let column = group
                .columns()
                .iter()
                .find(|c| c.column_path().string() == name)
                .unwrap();
            column.dictionary_page_offset().is_some()
        };
        assert!(!dictionary_of("id"));
        assert!(dictionary_of("status"));
        // And every value reads back.
        let batches = read(file.to_vec());
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(ids, (0..5000).collect::<Vec<i64>>());
        let statuses: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                b.column(1)
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(statuses[4], "paid");
        assert_eq!(statuses.len(), 5000);
    }

    #[test]
    fn empty_file_is_readable() {
        let schema = Schema::infer(RECORDS).unwrap();
        let batches = read(encode(&schema, Compression::Snappy, 0, &[]));
        assert!(batches.iter().all(|b| b.num_rows() == 0));
    }

    #[test]
    fn rejects_records_that_do_not_fit() {
        // As a pinned schema would: `id` declared never null.
        let mut schema = Schema::infer(RECORDS).unwrap();
        for f in schema.fields.iter_mut().filter(|f| f.name == "id") {
            f.nullable = false;
        }
        let cases = [
            (
                r#"{"id": 1, "name": "a", "score": 1, "ok": true, "extra": 1}"#,
                "field 'extra' is not in the schema",
            ),
            (
                r#"{"id": 1.5, "name": "a", "score": 1, "ok": true}"#,
                "field 'id' is a non-integer number",
            ),
            (
                r#"{"id": 1, "name": "a", "score": "1", "ok": true}"#,
                "field 'score' is a string",
            ),
            (
                r#"{"id": 1, "name": "a", "score": 1, "ok": 1}"#,
                "field 'ok' is an integer",
            ),
            (
                r#"{"id": 1, "name": "a", "score": 1, "ok": true, "doc": "text"}"#,
                "field 'doc' is a string",
            ),
            (
                r#"{"name": "a", "score": 1, "ok": true}"#,
                "field 'id' is null or missing",
            ),
            (
                r#"{"id": 1, "name": "a", "score": 1e400, "ok": true}"#,
                "field 'score': 1e400 does not fit float64",
            ),
        ];
        for (record, want) in cases {
            let mut enc = ParquetEncoder::new(&schema, Compression::Snappy, 0).unwrap();
            enc.write_record(RECORDS[0]).unwrap();
            let err = enc.write_record(record).unwrap_err();
            assert!(
                matches!(err, EncodeError::SchemaMismatch { record: 1, .. }),
                "{err}"
            );
            assert!(err.to_string().contains(want), "{record}: {err}");
        }
    }
}
