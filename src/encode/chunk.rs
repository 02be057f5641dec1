//! Rotation: whole pages of records go into the current chunk until it reaches its size or row
//! limit, then the chunk is closed and handed back with its sequence number and checksum.
//!
//! Chunks hold whole pages only, and the limits are checked after each page: the checkpoint
//! saved after a chunk is the cursor of the next page, so a chunk boundary inside a page would
//! lose or repeat records on resume. A chunk may therefore overshoot its limit by up to one
//! page. Sequence numbers are contiguous from `first_seq` (a resumed run continues at the
//! checkpoint's next seq) and an empty chunk is never produced.
//!
//! For csv and parquet the columns are fixed once, by the schema handed in (a resumed run's,
//! from its checkpoint) or inferred from the first page, and every chunk of the run uses them.
//!
//! After an error the writer refuses further pages: the failed page may be half written, and
//! a chunk with part of a page would break the whole-pages rule.

use super::schema::Schema;
use super::{new_encoder, EncodeError, EncodeOptions, Encoder, Format};
use sha2::{Digest, Sha256};

/// When to close a chunk. Checked after each whole page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Close once the chunk holds at least this many bytes of record text (uncompressed).
    pub max_bytes: u64,
    /// Close once the chunk holds at least this many records.
    pub max_rows: Option<u64>,
}

/// A closed chunk, ready to upload.
#[derive(Debug, Clone)]
pub struct FinishedChunk {
    pub seq: u64,
    pub rows: u64,
    /// Record text written into the chunk, before encoding and compression.
    pub raw_bytes: u64,
    /// The finished file.
    pub data: bytes::Bytes,
    /// SHA-256 of `data`, lowercase hex.
    pub sha256: String,
}

/// Feeds pages into encoders and rotates chunks at [`ChunkLimits`].
pub struct ChunkWriter {
    options: EncodeOptions,
    limits: ChunkLimits,
    next_seq: u64,
    schema: Option<Schema>,
    current: Option<Box<dyn Encoder>>,
    raw_bytes: u64,
    /// Set by an error while writing a page; see the module docs.
    failed: bool,
}

impl ChunkWriter {
    /// A writer whose first chunk is `first_seq`. `schema` fixes the csv/parquet columns
    /// (jsonl ignores it); without one they are inferred from the first page.
    pub fn new(
        options: EncodeOptions,
        limits: ChunkLimits,
        first_seq: u64,
        schema: Option<Schema>,
    ) -> Result<Self, EncodeError> {
        options.validate()?;
        if limits.max_bytes == 0 || limits.max_rows == Some(0) {
            return Err(EncodeError::Options(
                "chunk limits must be above zero".to_owned(),
            ));
        }
        Ok(Self {
            options,
            limits,
            next_seq: first_seq,
            schema,
            current: None,
            raw_bytes: 0,
            failed: false,
        })
    }

    /// Append one whole page of records. Chunks hold whole pages only: the limits are checked
    /// AFTER the page, and when reached the chunk is closed and returned.
    pub fn write_page(&mut self, records: &[&str]) -> Result<Option<FinishedChunk>, EncodeError> {
        self.check_usable()?;
        if records.is_empty() {
            return Ok(None);
        }
        let result = self.write_page_inner(records);
        self.failed = result.is_err();
        result
    }

    fn write_page_inner(&mut self, records: &[&str]) -> Result<Option<FinishedChunk>, EncodeError> {
        if self.schema.is_none() && self.options.format != Format::Jsonl {
            self.schema = Some(Schema::infer(records.iter().copied())?);
        }
        let encoder = match &mut self.current {
            Some(encoder) => encoder,
            None => self
                .current
                .insert(new_encoder(&self.options, self.schema.as_ref())?),
        };
        for record in records {
            encoder.write_record(record)?;
            self.raw_bytes += record.len() as u64;
        }
        let rows = encoder.rows();
        let full = self.raw_bytes >= self.limits.max_bytes
            || self.limits.max_rows.is_some_and(|max| rows >= max);
        if full {
            self.close()
        } else {
            Ok(None)
        }
    }

    /// Close the last, partial chunk (None if empty).
    pub fn finish(&mut self) -> Result<Option<FinishedChunk>, EncodeError> {
        self.check_usable()?;
        let result = self.close();
        self.failed = result.is_err();
        result
    }

    /// The schema in use (inferred from the first page for csv/parquet; None for jsonl
    /// unless one was handed in).
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// The sequence number the next chunk will have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn close(&mut self) -> Result<Option<FinishedChunk>, EncodeError> {
        let Some(encoder) = self.current.take() else {
            return Ok(None);
        };
        let rows = encoder.rows();
        let raw_bytes = std::mem::take(&mut self.raw_bytes);
        let data = encoder.finish()?;
        let sha256 = hex::encode(Sha256::digest(&data));
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(Some(FinishedChunk {
            seq,
            rows,
            raw_bytes,
            data: bytes::Bytes::from(data),
            sha256,
        }))
    }

    fn check_usable(&self) -> Result<(), EncodeError> {
        if self.failed {
            Err(EncodeError::Options(format!(
                "chunk {} was abandoned after an earlier error; resume the run from its checkpoint",
                self.next_seq
            )))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::encode::compress::decompress;
    use crate::encode::Compression;

    /// Pages of `size` records each, numbered across pages; every record is 10 bytes.
    fn pages(sizes: &[usize]) -> Vec<Vec<String>> {
        let mut n = 0;
        sizes
            .iter()
            .map(|&size| {
                (0..size)
                    .map(|_| {
                        n += 1;
                        format!("{{\"n\":\"{n:02}\"}}")
                    })
                    .collect()
            })
            .collect()
    }

    /// Write all pages, then finish; return the chunks.
    fn run(writer: &mut ChunkWriter, pages: &[Vec<String>]) -> Vec<FinishedChunk> {
        let mut out = Vec::new();
        for page in pages {
            let refs: Vec<&str> = page.iter().map(String::as_str).collect();
            out.extend(writer.write_page(&refs).unwrap());
        }
        out.extend(writer.finish().unwrap());
        out
    }

    fn jsonl(limits: ChunkLimits, first_seq: u64) -> ChunkWriter {
        let options = EncodeOptions::new(Format::Jsonl, Some(Compression::None));
        ChunkWriter::new(options, limits, first_seq, None).unwrap()
    }

    #[test]
    fn rotates_on_whole_pages() {
        // (limits, page sizes, expected rows per chunk)
        let cases: Vec<(ChunkLimits, Vec<usize>, Vec<u64>)> = vec![
            // 10 bytes a record: 25 bytes is reached inside the 3rd record, at the page's end.
            (
                ChunkLimits {
                    max_bytes: 25,
                    max_rows: None,
                },
                vec![2, 2, 2, 1],
                vec![4, 3],
            ),
            (
                ChunkLimits {
                    max_bytes: 20,
                    max_rows: None,
                },
                vec![2, 2, 2, 1],
                vec![2, 2, 2, 1],
            ),
            // A page bigger than the limit is never split.
            (
                ChunkLimits {
                    max_bytes: 15,
                    max_rows: None,
                },
                vec![5, 1],
                vec![5, 1],
            ),
            (
                ChunkLimits {
                    max_bytes: u64::MAX,
                    max_rows: Some(3),
                },
                vec![2, 2, 2, 1],
                vec![4, 3],
            ),
            (
                ChunkLimits {
                    max_bytes: u64::MAX,
                    max_rows: Some(2),
                },
                vec![2, 0, 2],
                vec![2, 2],
            ),
            (
                ChunkLimits {
                    max_bytes: 1000,
                    max_rows: Some(100),
                },
                vec![3, 4],
                vec![7],
            ),
            (
                ChunkLimits {
                    max_bytes: 1000,
                    max_rows: None,
                },
                vec![],
                vec![],
            ),
            (
                ChunkLimits {
                    max_bytes: 1000,
                    max_rows: None,
                },
                vec![0, 0],
                vec![],
            ),
        ];
        for (limits, sizes, want_rows) in cases {
            let input = pages(&sizes);
            let chunks = run(&mut jsonl(limits, 7), &input);
            let rows: Vec<u64> = chunks.iter().map(|c| c.rows).collect();
            assert_eq!(rows, want_rows, "{limits:?} {sizes:?}");
            let seqs: Vec<u64> = chunks.iter().map(|c| c.seq).collect();
            assert_eq!(seqs, (7..7 + chunks.len() as u64).collect::<Vec<_>>());
            // Every record once, in order, and each chunk's text is whole pages.
            let all: Vec<String> = input.concat();
            let mut at = 0;
            for c in &chunks {
                let text = String::from_utf8(c.data.to_vec()).unwrap();
                assert_eq!(c.raw_bytes, 10 * c.rows);
                assert_eq!(c.sha256, hex::encode(Sha256::digest(&c.data)));
                for line in text.lines() {
                    assert_eq!(line, all[at]);
                    at += 1;
                }
            }
            assert_eq!(at, all.len());
        }
    }

    #[test]
    fn finish_twice_and_sequence_carry_on() {
        let mut w = jsonl(
            ChunkLimits {
                max_bytes: 1000,
                max_rows: None,
            },
            0,
        );
        assert!(w.finish().unwrap().is_none());
        let first = run(&mut w, &pages(&[2]));
        let second = run(&mut w, &pages(&[1]));
        assert_eq!((first[0].seq, second[0].seq, w.next_seq()), (0, 1, 2));
        assert!(w.schema().is_none());
    }

    #[test]
    fn infers_the_schema_from_the_first_page_and_keeps_it() {
        let options = EncodeOptions::new(Format::Csv, Some(Compression::Gzip));
        let limits = ChunkLimits {
            max_bytes: u64::MAX,
            max_rows: Some(2),
        };
        let mut w = ChunkWriter::new(options, limits, 0, None).unwrap();
        let a = w
            .write_page(&[r#"{"a":1,"b":"x"}"#, r#"{"a":2.5}"#])
            .unwrap()
            .unwrap();
        let names: Vec<&str> = w.schema().unwrap().names().collect();
        assert_eq!(names, ["a", "b"]);
        let b = w.write_page(&[r#"{"b":"y","a":3}"#]).unwrap();
        assert!(b.is_none());
        let b = w.finish().unwrap().unwrap();
        let text =
            |c: &FinishedChunk| String::from_utf8(decompress(Compression::Gzip, &c.data)).unwrap();
        assert_eq!(text(&a), "a,b\n1,x\n2.5,\n");
        assert_eq!(text(&b), "a,b\n3,y\n");
    }

    #[test]
    fn uses_a_given_schema_and_stops_after_an_error() {
        let schema = Schema::infer([r#"{"a":1}"#]).unwrap();
        let options = EncodeOptions::new(Format::Parquet, None);
        let limits = ChunkLimits {
            max_bytes: u64::MAX,
            max_rows: None,
        };
        let mut w = ChunkWriter::new(options, limits, 3, Some(schema.clone())).unwrap();
        w.write_page(&[r#"{"a":5}"#]).unwrap();
        let err = w
            .write_page(&[r#"{"a":6}"#, r#"{"a":7,"b":1}"#])
            .unwrap_err();
        assert!(
            matches!(err, EncodeError::SchemaMismatch { record: 2, .. }),
            "{err}"
        );
        assert_eq!(w.schema(), Some(&schema));
        for err in [
            w.write_page(&[r#"{"a":8}"#]).unwrap_err(),
            w.finish().unwrap_err(),
        ] {
            assert!(err.to_string().contains("chunk 3 was abandoned"), "{err}");
        }
    }

    #[test]
    fn rejects_bad_options_and_limits() {
        let limits = ChunkLimits {
            max_bytes: 10,
            max_rows: None,
        };
        let snappy_jsonl = EncodeOptions::new(Format::Jsonl, Some(Compression::Snappy));
        assert!(ChunkWriter::new(snappy_jsonl, limits, 0, None).is_err());
        let ok = EncodeOptions::new(Format::Jsonl, None);
        let zero = ChunkLimits {
            max_bytes: 0,
            max_rows: None,
        };
        assert!(ChunkWriter::new(ok, zero, 0, None).is_err());
        let zero_rows = ChunkLimits {
            max_bytes: 10,
            max_rows: Some(0),
        };
        assert!(ChunkWriter::new(ok, zero_rows, 0, None).is_err());
    }
}
