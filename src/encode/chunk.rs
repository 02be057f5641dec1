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
//! from its checkpoint, or one pinned with `--schema`) or inferred from the first page
//! (compared with the previous run's, when there is one). Records that stop fitting are
//! handled by the drift policy (see the `drift` module): `fail` stops before the page,
//! `warn` routes misfits into `_extra`, and `evolve` widens the schema, closing the current
//! chunk *before* the page that needed it. So a chunk returned by [`ChunkWriter::write_page`]
//! need not hold the page just written: [`FinishedChunk::pages`] says which pages it holds,
//! and that, not the call it came out of, is what a checkpoint must follow. (With evolve a
//! chunk can also overshoot its limit by up to two pages.)
//!
//! jsonl chunks keep the records byte for byte, so their schema is descriptive only: every
//! page widens it (int and float make float, two other kinds make a string; a record that is
//! not an object, and a field never seen with a value, are left out of it) and nothing is
//! ever rejected for it. It gives the
//! manifest a schema and the serverless view typed `JSON_VALUE` columns; the `TRY_CAST`s
//! there turn a value that does not fit into `NULL`, never an error.
//!
//! After an error the writer refuses further pages: the failed page may be half written, and
//! a chunk with part of a page would break the whole-pages rule.

use super::drift::{diff, render_diff, ChangeKind, OnSchemaDrift, SchemaChange, SchemaOptions};
use super::scan::RecordMembers;
use super::schema::{observe, observe_valid, ColumnStats, FieldKind, ReadOptions, Schema, Seen};
use super::{new_encoder_with, EncodeError, EncodeOptions, Encoder};
use std::ops::Range;

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
    /// The finished file. Its digests are taken by whoever stores it, off the encoder's
    /// thread, which sets the pace of a columnar pull.
    pub data: bytes::Bytes,
    /// How many leading columns of the run's final schema the file holds (csv/parquet):
    /// fewer than the final count when `--on-schema-drift evolve` added columns later.
    pub columns: Option<u64>,
    /// The pages (numbered from 0 in the order handed to the writer, empty ones included)
    /// whose records the chunk holds.
    pub pages: Range<u64>,
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
    policy: SchemaOptions,
    /// The previous run's schema, which the first page is compared with.
    previous: Option<Schema>,
    /// Schema changes made or seen so far (evolve), in order.
    changes: Vec<SchemaChange>,
    /// Statistics of the closed chunks.
    stats: ColumnStats,
    /// Columns of the schema the current chunk was started with.
    current_columns: usize,
    /// Pages handed in so far, and the first page of the current chunk.
    pages: u64,
    chunk_first_page: u64,
    /// Records written in closed chunks and whole pages of the current one.
    records: u64,
    /// jsonl: what inference saw of every record so far (the descriptive schema's source).
    jsonl_seen: Seen,
}

/// Fold one page's observations into the run's: kinds widen, and a field is appended at its
/// first non-null value. Nulls are left out, so the state is exactly the schema built from it
/// and a resumed run (which starts from the checkpoint's schema) describes the same columns
/// in the same order as one that was never interrupted.
fn merge_seen(all: &mut Seen, page: Seen) {
    for (name, kind) in page {
        if kind.is_none() {
            continue;
        }
        match all.iter_mut().find(|(n, _)| *n == name) {
            Some((_, have)) => {
                *have = match (*have, kind) {
                    (h, None) => h,
                    (None, k) => k,
                    (Some(h), Some(k)) => Some(h.widen(k)),
                }
            }
            None => all.push((name, kind)),
        }
    }
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
            policy: SchemaOptions::default(),
            previous: None,
            changes: Vec::new(),
            stats: ColumnStats::default(),
            current_columns: 0,
            pages: 0,
            chunk_first_page: 0,
            records: 0,
            jsonl_seen: Vec::new(),
        })
    }

    /// Set the schema policy (drift, flattening, a pinned schema) and the previous run's
    /// schema to compare the first page with. A pinned schema replaces any schema handed to
    /// [`ChunkWriter::new`], and records that do not fit it always fail.
    pub fn with_schema_options(mut self, policy: SchemaOptions, previous: Option<Schema>) -> Self {
        if let Some(pinned) = &policy.pinned {
            self.schema = Some(pinned.clone());
        }
        if policy.on_drift == OnSchemaDrift::Warn
            && self.schema.is_some()
            && self.options.format.columnar()
        {
            self.schema = self.schema.take().map(Schema::with_extra_column);
        }
        self.policy = policy;
        self.previous = previous.filter(|_| self.policy.pinned.is_none());
        self
    }

    fn read_options(&self) -> ReadOptions {
        ReadOptions {
            flatten_depth: self.policy.flatten_depth,
            extra_column: self.policy.on_drift == OnSchemaDrift::Warn
                && self.policy.pinned.is_none(),
        }
    }

    fn evolving(&self) -> bool {
        self.policy.on_drift == OnSchemaDrift::Evolve && self.policy.pinned.is_none()
    }

    /// Append one whole page of records. Chunks hold whole pages only: the limits are checked
    /// AFTER the page, and when reached the chunk is closed and returned.
    ///
    /// Each record must be valid JSON text, as every source hands it over (the extractor and
    /// the object decoder validate what they cut out): jsonl copies records as they are, and
    /// the readers only re-check the top level of each (see the `scan` module).
    pub fn write_page(&mut self, records: &[&str]) -> Result<Option<FinishedChunk>, EncodeError> {
        self.write_page_known(records, None)
    }

    /// [`ChunkWriter::write_page`] with the records' top-level members as the page's reader
    /// found them (`known`, describing exactly `records`, in order), so that they are not
    /// looked for again.
    pub fn write_page_known(
        &mut self,
        records: &[&str],
        known: Option<&RecordMembers>,
    ) -> Result<Option<FinishedChunk>, EncodeError> {
        // Members of other records than these would describe the wrong fields.
        let known = known.filter(|k| k.len() == records.len());
        self.check_usable()?;
        let page = self.pages;
        self.pages += 1;
        if records.is_empty() {
            if self.current.is_none() {
                self.chunk_first_page = self.pages;
            }
            return Ok(None);
        }
        let result = self.write_page_inner(page, records, known);
        self.failed = result.is_err();
        result
    }

    fn write_page_inner(
        &mut self,
        page: u64,
        records: &[&str],
        known: Option<&RecordMembers>,
    ) -> Result<Option<FinishedChunk>, EncodeError> {
        let mut closed = None;
        if !self.options.format.columnar() {
            self.describe_jsonl(records, known);
        } else {
            closed = self.fix_schema(page, records)?;
        }
        if self.current.is_none() {
            let encoder =
                new_encoder_with(&self.options, self.schema.as_ref(), self.read_options())?;
            self.current = Some(encoder);
            self.current_columns = self.schema.as_ref().map_or(0, |s| s.fields.len());
            self.chunk_first_page = page;
        }
        let Some(encoder) = self.current.as_mut() else {
            return Err(EncodeError::Options("no open chunk".to_owned()));
        };
        let rows_before = encoder.rows();
        for (i, record) in records.iter().enumerate() {
            if let Err(err) = encoder.write_known(record, known.map(|k| (k, i))) {
                return Err(self.drift_error(err, page, i as u64, rows_before, records));
            }
            self.raw_bytes += record.len() as u64;
        }
        self.records += records.len() as u64;
        let rows = encoder.rows();
        let full = self.raw_bytes >= self.limits.max_bytes
            || self.limits.max_rows.is_some_and(|max| rows >= max);
        if closed.is_some() {
            // The chunk before this page was closed for a schema change; this page starts
            // the next one, which stays open even if full (see the module docs).
            return Ok(closed);
        }
        if full {
            self.close(page + 1)
        } else {
            Ok(None)
        }
    }

    /// jsonl: widen the descriptive schema to cover this page. Never fails and never rejects
    /// a record (see the module docs): a record inference cannot walk (not an object) is
    /// left out of the description, and is still written as it came.
    fn describe_jsonl(&mut self, records: &[&str], known: Option<&RecordMembers>) {
        if self.policy.pinned.is_some() {
            return;
        }
        if self.jsonl_seen.is_empty() {
            if let Some(schema) = &self.schema {
                // A resumed run: carry on from the checkpoint's description.
                self.jsonl_seen = schema
                    .fields
                    .iter()
                    .map(|f| (f.name.clone(), Some(f.kind)))
                    .collect();
            }
        }
        // The records were cut from validated pages (see `scan`): members are found without
        // a second full parse.
        match observe_valid(records.iter().copied(), known) {
            Ok((seen, _)) => merge_seen(&mut self.jsonl_seen, seen),
            Err(_) => {
                for record in records {
                    if let Ok((seen, _)) = observe_valid(std::iter::once(*record), None) {
                        merge_seen(&mut self.jsonl_seen, seen);
                    }
                }
            }
        }
        if !self.jsonl_seen.is_empty() {
            self.schema = Some(Schema::from_seen(&self.jsonl_seen));
        }
    }

    /// Fix the columns at the first page (inferred, or compared with the previous run's),
    /// or widen them for this page under evolve. Returns the chunk closed before the page
    /// when the schema changed under it.
    fn fix_schema(
        &mut self,
        page: u64,
        records: &[&str],
    ) -> Result<Option<FinishedChunk>, EncodeError> {
        let depth = self.policy.flatten_depth;
        let Some(schema) = &self.schema else {
            let (seen, _) = observe(records.iter().copied(), depth)?;
            let start = match &self.previous {
                None => Schema::from_seen(&seen),
                Some(prev) => match self.policy.on_drift {
                    OnSchemaDrift::Fail => {
                        let changes = diff(prev, &seen);
                        if !changes.is_empty() {
                            return Err(EncodeError::Drift {
                                page: page + 1,
                                record: None,
                                message: "the records differ from the previous run's columns"
                                    .to_owned(),
                                diff: render_diff(&changes),
                            });
                        }
                        prev.clone()
                    }
                    OnSchemaDrift::Evolve => {
                        let (widened, changes) = prev.widened(&seen);
                        self.note_changes(changes);
                        widened
                    }
                    OnSchemaDrift::Warn => prev.clone(),
                },
            };
            self.schema = Some(if self.read_options().extra_column {
                start.with_extra_column()
            } else {
                start
            });
            return Ok(None);
        };
        if !self.evolving() {
            return Ok(None);
        }
        // Evolve: check the whole page before any of it is written, since a chunk cannot
        // take back records once they are encoded.
        let (seen, _) = observe(records.iter().copied(), depth)?;
        let (widened, changes) = schema.widened(&seen);
        if changes.is_empty() {
            return Ok(None);
        }
        let closed = self.close(page)?;
        self.note_changes(changes);
        self.schema = Some(widened);
        Ok(closed)
    }

    fn note_changes(&mut self, changes: Vec<SchemaChange>) {
        let chunk = self.next_seq;
        self.changes.extend(changes.into_iter().map(|mut c| {
            c.chunk = Some(chunk);
            c
        }));
    }

    /// Turn a record's mismatch into an error naming its position, with the page's diff.
    fn drift_error(
        &self,
        err: EncodeError,
        page: u64,
        in_page: u64,
        rows_before: u64,
        records: &[&str],
    ) -> EncodeError {
        let EncodeError::SchemaMismatch { record, message } = err else {
            return err;
        };
        let in_page = record.checked_sub(rows_before).unwrap_or(in_page);
        let diff_text = match (
            &self.schema,
            observe(records.iter().copied(), self.policy.flatten_depth),
        ) {
            (Some(schema), Ok((seen, _))) => render_diff(&diff(schema, &seen)),
            _ => String::new(),
        };
        let message = if self.policy.pinned.is_some() {
            format!("does not match the pinned schema (--schema): {message}")
        } else {
            format!("{message}; --on-schema-drift evolve widens the columns, warn keeps them and collects what does not fit in _extra")
        };
        EncodeError::Drift {
            page: page + 1,
            record: Some((in_page, self.records + in_page)),
            message,
            diff: diff_text,
        }
    }

    /// The schema changes of the run so far: widenings and additions (evolve), values sent
    /// to `_extra` (warn), and columns of the previous run this run never filled.
    pub fn schema_changes(&self) -> Vec<SchemaChange> {
        let mut out = self.changes.clone();
        let stats = self.all_stats();
        for (field, (values, from, to)) in &stats.to_extra {
            let mut c = SchemaChange::new(field, ChangeKind::ToExtra);
            c.values = Some(*values);
            c.from = *from;
            c.to = *to;
            out.push(c);
        }
        if let (Some(prev), Some(schema)) = (&self.previous, &self.schema) {
            if self.records > 0 {
                for f in &prev.fields {
                    let at = schema.fields.iter().position(|g| g.name == f.name);
                    let filled = at.is_some_and(|i| stats.filled.get(i).copied().unwrap_or(false));
                    if !filled {
                        let mut c = SchemaChange::new(&f.name, ChangeKind::Missing);
                        c.from = Some(f.kind);
                        c.note = Some("kept as a column of nulls".to_owned());
                        out.push(c);
                    }
                }
            }
        }
        out
    }

    /// The schema in use with the statistics gathered so far (`max_length` of string
    /// columns), for the manifest and the load SQL.
    pub fn schema_with_stats(&self) -> Option<Schema> {
        let mut schema = self.schema.clone()?;
        if !self.options.format.columnar() {
            // Descriptive only: no string widths are measured in jsonl.
            return Some(schema);
        }
        let stats = self.all_stats();
        for (i, f) in schema.fields.iter_mut().enumerate() {
            if f.kind == FieldKind::Utf8 {
                f.max_length = Some(stats.max_len.get(i).copied().unwrap_or(0));
            }
        }
        Some(schema)
    }

    fn all_stats(&self) -> ColumnStats {
        let mut stats = self.stats.clone();
        if let Some(s) = self.current.as_ref().and_then(|e| e.stats()) {
            stats.merge(s);
        }
        stats
    }

    /// Close the last, partial chunk (None if empty).
    pub fn finish(&mut self) -> Result<Option<FinishedChunk>, EncodeError> {
        self.check_usable()?;
        let result = self.close(self.pages);
        self.failed = result.is_err();
        result
    }

    /// The schema in use (inferred from the first page for csv/parquet; for jsonl, the
    /// descriptive schema of every record so far).
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// The sequence number the next chunk will have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Close the current chunk, which holds the pages before `end_page`.
    fn close(&mut self, end_page: u64) -> Result<Option<FinishedChunk>, EncodeError> {
        let Some(encoder) = self.current.take() else {
            return Ok(None);
        };
        if let Some(stats) = encoder.stats() {
            self.stats.merge(stats);
        }
        let rows = encoder.rows();
        let raw_bytes = std::mem::take(&mut self.raw_bytes);
        let data = encoder.finish()?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let pages = self.chunk_first_page..end_page;
        self.chunk_first_page = end_page;
        Ok(Some(FinishedChunk {
            seq,
            rows,
            raw_bytes,
            data: bytes::Bytes::from(data),
            columns: self
                .options
                .format
                .columnar()
                .then_some(self.current_columns as u64),
            pages,
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
    use crate::encode::{Compression, Format};

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
        let options = EncodeOptions::new(Format::JSONL, Some(Compression::None));
        ChunkWriter::new(options, limits, first_seq, None).unwrap()
    }

    fn known(spans: &[[u32; 4]], of_record: &[Option<(u32, u32)>]) -> RecordMembers {
        RecordMembers {
            spans: spans.to_vec(),
            of_record: of_record.to_vec(),
            compact: false,
        }
    }

    #[test]
    fn jsonl_describes_records_by_the_members_it_is_handed() {
        let records = [r#"{"a":1,"b":"x"}"#, r#"{"a":2.5,"b":"y"}"#];
        let described = |known: Option<&RecordMembers>| {
            let mut w = jsonl(
                ChunkLimits {
                    max_bytes: u64::MAX,
                    max_rows: None,
                },
                0,
            );
            w.write_page_known(&records, known).unwrap();
            let schema = w.schema().unwrap();
            schema
                .fields
                .iter()
                .map(|f| format!("{} {}", f.name, f.kind.name()))
                .collect::<Vec<_>>()
        };
        let scanned = described(None);
        assert_eq!(scanned, ["a float64", "b utf8"]);
        // The members as a page's reader found them: the same description.
        let spans = [[2, 3, 5, 6], [8, 9, 11, 14], [2, 3, 5, 8], [10, 11, 13, 16]];
        let of_record = [Some((0, 2)), Some((2, 4))];
        assert_eq!(described(Some(&known(&spans, &of_record))), scanned);
        // They are what is read: the first record's members cut differently (its key `a`
        // taken as the value's text) describe other fields; the second is left to the scanner.
        let other = [[5, 6, 5, 6]];
        let partly = [Some((0, 1)), None];
        assert_eq!(
            described(Some(&known(&other, &partly))),
            ["1 int64", "a float64", "b utf8"]
        );
        // Members of another number of records are not used at all.
        let short = [Some((0, 1))];
        assert_eq!(described(Some(&known(&other, &short))), scanned);
        // Offsets past a record leave it to the scanner.
        let past = [[2, 3, 5, 99]];
        let both = [Some((0, 1)), Some((0, 1))];
        assert_eq!(described(Some(&known(&past, &both))), scanned);

        // The columnar formats read each record's values by the members handed in too: the
        // same file with the reader's members, and the cut-differently first record names a
        // field the columns do not have.
        for format in [Format::CSV, Format::PARQUET] {
            let write = |known: Option<&RecordMembers>| {
                let options = EncodeOptions::new(format, Some(Compression::None));
                let limits = ChunkLimits {
                    max_bytes: u64::MAX,
                    max_rows: None,
                };
                let mut w = ChunkWriter::new(options, limits, 0, None).unwrap();
                w.write_page(&records).unwrap();
                w.write_page_known(&records, known)?;
                Ok::<_, EncodeError>(w.finish().unwrap().map(|c| c.data))
            };
            let plain = write(None).unwrap();
            assert_eq!(
                write(Some(&known(&spans, &of_record))).unwrap(),
                plain,
                "{format:?}"
            );
            let err = write(Some(&known(&other, &partly))).unwrap_err();
            assert!(err.to_string().contains("'1'"), "{format:?}: {err}");
        }
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
                for line in text.lines() {
                    assert_eq!(line, all[at]);
                    at += 1;
                }
            }
            assert_eq!(at, all.len());
        }
    }

    #[test]
    fn jsonl_schema_widens_and_never_rejects_a_record() {
        let limits = ChunkLimits {
            max_bytes: 1 << 20,
            max_rows: None,
        };
        let options = EncodeOptions::new(Format::JSONL, Some(Compression::None));
        // Under fail, csv/parquet would stop at page 2; jsonl must not.
        let mut w = ChunkWriter::new(options, limits, 0, None)
            .unwrap()
            .with_schema_options(policy(OnSchemaDrift::Fail), None);
        let pages: Vec<Vec<&str>> = vec![
            vec![r#"{"id":1,"at":"2026-11-24T10:00:00Z","x":null,"never":null}"#],
            vec![
                r#"{"id":1.5,"at":"yesterday","x":{"a":1},"new":true}"#,
                r#"[1,2]"#,
                r#"42"#,
            ],
            vec![r#"{"x":"text"}"#],
        ];
        let mut chunks = Vec::new();
        for page in &pages {
            chunks.extend(w.write_page(page).unwrap());
        }
        chunks.extend(w.finish().unwrap());
        let got: Vec<(String, FieldKind)> = w
            .schema_with_stats()
            .unwrap()
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.kind))
            .collect();
        // `x` is placed at its first value; `never` had none.
        let want = [
            ("id", FieldKind::Float64),
            ("at", FieldKind::Utf8),
            ("x", FieldKind::Utf8),
            ("new", FieldKind::Boolean),
        ];
        let want: Vec<(String, FieldKind)> =
            want.iter().map(|(n, k)| (n.to_string(), *k)).collect();
        assert_eq!(got, want);
        assert!(w.schema_changes().is_empty());
        // The bytes are the records as received, one a line.
        let text = String::from_utf8(chunks[0].data.to_vec()).unwrap();
        let want_text: String = pages.iter().flatten().map(|r| format!("{r}\n")).collect();
        assert_eq!(text, want_text);
        assert_eq!(chunks[0].columns, None);
    }

    #[test]
    fn a_resumed_jsonl_run_describes_the_same_schema() {
        let limits = ChunkLimits {
            max_bytes: 1 << 20,
            max_rows: Some(1),
        };
        let options = EncodeOptions::new(Format::JSONL, Some(Compression::None));
        let pages: [&[&str]; 3] = [
            &[r#"{"a":null,"b":1}"#],
            &[r#"{"c":"x","a":2}"#],
            &[r#"{"b":2.5,"d":[1]}"#, "7"],
        ];
        let mut whole = ChunkWriter::new(options, limits, 0, None).unwrap();
        for page in pages {
            whole.write_page(page).unwrap();
        }
        whole.finish().unwrap();
        let mut first = ChunkWriter::new(options, limits, 0, None).unwrap();
        first.write_page(pages[0]).unwrap();
        let saved = first.schema_with_stats();
        let mut resumed = ChunkWriter::new(options, limits, 1, saved).unwrap();
        for page in &pages[1..] {
            resumed.write_page(page).unwrap();
        }
        resumed.finish().unwrap();
        assert_eq!(resumed.schema_with_stats(), whole.schema_with_stats());
        let names: Vec<&str> = whole.schema().unwrap().names().collect();
        assert_eq!(names, ["b", "c", "a", "d"]);
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
        // jsonl describes what it saw (descriptive only).
        let names: Vec<&str> = w.schema().unwrap().names().collect();
        assert_eq!(names, ["n"]);
    }

    #[test]
    fn infers_the_schema_from_the_first_page_and_keeps_it() {
        let options = EncodeOptions::new(Format::CSV, Some(Compression::Gzip));
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
        let options = EncodeOptions::new(Format::PARQUET, None);
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
            matches!(
                err,
                EncodeError::Drift {
                    page: 2,
                    record: Some((1, 2)),
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("+ b (int64)"), "{err}");
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
        let snappy_jsonl = EncodeOptions::new(Format::JSONL, Some(Compression::Snappy));
        assert!(ChunkWriter::new(snappy_jsonl, limits, 0, None).is_err());
        let ok = EncodeOptions::new(Format::JSONL, None);
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

    fn columnar(
        format: Format,
        max_rows: u64,
        policy: SchemaOptions,
        previous: Option<Schema>,
    ) -> ChunkWriter {
        let limits = ChunkLimits {
            max_bytes: u64::MAX,
            max_rows: Some(max_rows),
        };
        ChunkWriter::new(
            EncodeOptions::new(format, Some(Compression::None)),
            limits,
            0,
            None,
        )
        .unwrap()
        .with_schema_options(policy, previous)
    }

    fn policy(on_drift: OnSchemaDrift) -> SchemaOptions {
        SchemaOptions {
            on_drift,
            ..Default::default()
        }
    }

    fn csv_text(c: &FinishedChunk) -> String {
        String::from_utf8(c.data.to_vec()).unwrap()
    }

    #[test]
    fn evolve_widens_between_pages_and_closes_the_chunk_before() {
        let mut w = columnar(Format::CSV, 100, policy(OnSchemaDrift::Evolve), None);
        assert!(w.write_page(&[r#"{"a":1,"s":"x"}"#]).unwrap().is_none());
        assert!(w.write_page(&[r#"{"a":2}"#]).unwrap().is_none());
        // `a` turns float and `n` appears: the chunk of pages 0..2 is closed first.
        let first = w.write_page(&[r#"{"a":2.5,"n":true}"#]).unwrap().unwrap();
        assert_eq!(
            (first.rows, first.pages.clone(), first.columns),
            (2, 0..2, Some(2))
        );
        assert_eq!(csv_text(&first), "a,s\n1,x\n2,\n");
        let second = w.finish().unwrap().unwrap();
        assert_eq!(
            (second.rows, second.pages.clone(), second.columns),
            (1, 2..3, Some(3))
        );
        assert_eq!(csv_text(&second), "a,s,n\n2.5,,true\n");
        let changes = w.schema_changes();
        let shown: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].starts_with("~ a: int64 -> float64 (integers beyond"),
            "{shown:?}"
        );
        assert_eq!(shown[1], "+ n (boolean)");
        assert!(changes.iter().all(|c| c.chunk == Some(1)));
    }

    #[test]
    fn warn_keeps_the_columns_and_collects_misfits_in_extra() {
        let mut w = columnar(Format::CSV, 100, policy(OnSchemaDrift::Warn), None);
        w.write_page(&[r#"{"a":1}"#]).unwrap();
        w.write_page(&[r#"{"a":"x","b":{"k":[1, 2]},"c":null}"#, r#"{"a":3}"#])
            .unwrap();
        let chunk = w.finish().unwrap().unwrap();
        assert_eq!(
            csv_text(&chunk),
            "a,_extra\n1,\n,\"{\"\"a\"\":\"\"x\"\",\"\"b\"\":{\"\"k\"\":[1,2]}}\"\n3,\n"
        );
        let shown: Vec<String> = w.schema_changes().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            shown,
            [
                "> a: 1 value(s) kept in _extra",
                "> b: 1 value(s) kept in _extra",
            ]
        );
    }

    #[test]
    fn the_first_page_is_compared_with_the_previous_run() {
        let previous = Schema::infer([r#"{"id":1,"gone":"x","amount":2}"#]).unwrap();
        let page = [r#"{"id":5,"amount":2.5,"new":"y"}"#];

        let mut w = columnar(
            Format::PARQUET,
            100,
            policy(OnSchemaDrift::Fail),
            Some(previous.clone()),
        );
        let err = w.write_page(&page).unwrap_err().to_string();
        assert!(
            err.contains("previous run")
                && err.contains("~ amount: int64 -> float64")
                && err.contains("+ new (utf8)"),
            "{err}"
        );

        let mut w = columnar(
            Format::PARQUET,
            100,
            policy(OnSchemaDrift::Evolve),
            Some(previous.clone()),
        );
        w.write_page(&page).unwrap();
        w.finish().unwrap().unwrap();
        let names: Vec<_> = w.schema().unwrap().names().collect();
        assert_eq!(names, ["id", "gone", "amount", "new"]);
        let shown: Vec<String> = w.schema_changes().iter().map(|c| c.to_string()).collect();
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("~ amount: int64 -> float64")),
            "{shown:?}"
        );
        assert!(shown.contains(&"+ new (utf8)".to_string()), "{shown:?}");
        assert!(
            shown.iter().any(|s| s.starts_with("- gone (utf8)")),
            "{shown:?}"
        );

        let mut w = columnar(
            Format::CSV,
            100,
            policy(OnSchemaDrift::Warn),
            Some(previous),
        );
        w.write_page(&page).unwrap();
        let chunk = w.finish().unwrap().unwrap();
        assert_eq!(
            csv_text(&chunk),
            "id,gone,amount,_extra\n5,,,\"{\"\"amount\"\":2.5,\"\"new\"\":\"\"y\"\"}\"\n"
        );
    }

    #[test]
    fn pinned_schema_rejects_with_the_position_and_flatten_expands_objects() {
        let pinned = Schema::from_json(
            r#"{"fields":[{"name":"id","kind":"int64","nullable":false},{"name":"c.x","kind":"utf8","nullable":true}]}"#,
        )
        .unwrap();
        let opts = SchemaOptions {
            on_drift: OnSchemaDrift::Fail,
            flatten_depth: 1,
            pinned: Some(pinned),
        };
        let mut w = columnar(Format::CSV, 100, opts, None);
        w.write_page(&[r#"{"id":1,"c":{"x":"a"}}"#]).unwrap();
        let err = w
            .write_page(&[r#"{"id":2}"#, r#"{"c":{"x":"b"}}"#])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("page 2, record 1 (record 2 of the run)")
                && err.contains("pinned schema")
                && err.contains("'id' is null or missing"),
            "{err}"
        );
    }

    #[test]
    fn records_string_widths_and_timestamps() {
        let mut w = columnar(Format::PARQUET, 1, policy(OnSchemaDrift::Fail), None);
        w.write_page(&[r#"{"s":"abc","t":"2026-01-02T03:04:05Z","o":{"k":"long value"}}"#])
            .unwrap();
        w.write_page(&[r#"{"s":"é😀\n","t":"2026-01-02T03:04:05.25+01:00"}"#])
            .unwrap();
        w.finish().unwrap();
        let schema = w.schema_with_stats().unwrap();
        let got: Vec<_> = schema
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.max_length))
            .collect();
        // "é😀\n" is 4 UTF-16 units; its escaped JSON text is 8 bytes, the bound kept.
        assert_eq!(
            got,
            [
                ("s", FieldKind::Utf8, Some(8)),
                ("t", FieldKind::Timestamp, None),
                ("o", FieldKind::Json, None)
            ]
        );
    }
}
