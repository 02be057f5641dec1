//! The encode stage, on a blocking thread: pages into the chunk writer (format, compression,
//! rotation, schema drift, the incremental watermark's filter), finished chunks out, each with
//! the resume point of its last page.

use super::error::PullError;
use super::lineage::PendingLines;
use super::messages::{PageMsg, ReadyChunk, Resume, UploadMsg};
use crate::encode::chunk::{ChunkLimits, ChunkWriter};
use crate::encode::drift::SchemaOptions;
use crate::encode::schema::Schema;
use crate::encode::EncodeOptions;
use crate::load::lineage::PageLine;
use crate::state::watermark::WatermarkTracker;
use std::collections::VecDeque;
use tokio::sync::mpsc;

/// What the encode stage works from.
pub(super) struct EncodeInput {
    pub(super) options: EncodeOptions,
    pub(super) limits: ChunkLimits,
    /// The sequence number of the first chunk this invocation writes.
    pub(super) first_seq: u64,
    /// The columns committed chunks were written with (a resumed run writes the same).
    pub(super) schema: Option<Schema>,
    pub(super) schema_options: SchemaOptions,
    /// The columns of the last completed run, to compare a new run's with.
    pub(super) previous: Option<Schema>,
    /// The incremental filter and watermark (none: the job is not incremental).
    pub(super) tracker: Option<WatermarkTracker>,
    pub(super) pages: mpsc::Receiver<PageMsg>,
    pub(super) chunks: mpsc::Sender<UploadMsg>,
}

/// Feed pages into the chunk writer; hand finished chunks on with their resume points and
/// the lineage of their pages. Runs on a blocking thread. Returns the lineage of the pages
/// no chunk holds (after the last one).
pub(super) fn encode_stage(input: EncodeInput) -> Result<Vec<PageLine>, PullError> {
    let EncodeInput {
        options,
        limits,
        first_seq,
        schema,
        schema_options,
        previous,
        mut tracker,
        mut pages,
        chunks,
    } = input;
    let mut writer = ChunkWriter::new(options, limits, first_seq, schema)
        .map_err(|source| PullError::Encode {
            seq: first_seq,
            source,
        })?
        .with_schema_options(schema_options, previous);
    // The resume point after each page handed to the writer and not yet in an emitted chunk;
    // `resumes[0]` is the writer's page `first_page`. A chunk names the pages it holds (a drift
    // policy may close it before the page just written), and its resume point is its last
    // page's; pages up to it are then dropped, so this holds a chunk's worth of pages, not
    // the run's.
    let mut resumes: VecDeque<Resume> = VecDeque::new();
    // The lineage of the same pages, drained alongside.
    let mut lines = PendingLines::default();
    let mut first_page: u64 = 0;
    while let Some(msg) = pages.blocking_recv() {
        let finished = match msg {
            PageMsg::Page {
                page,
                number,
                url,
                next,
                notes,
                lineage,
            } => {
                let mut records = page.records();
                // Each record's members as the page's reader found them, while the records
                // are still the page's, one for one.
                let mut known = page.members.as_ref();
                if let Some(t) = tracker.as_mut() {
                    let mut kept = Vec::with_capacity(records.len());
                    for r in records {
                        if t.keep(r)? {
                            kept.push(r);
                        }
                    }
                    if kept.len() != page.len() {
                        known = None;
                    }
                    records = kept;
                }
                lines.push(lineage, records.len() as u64);
                resumes.push_back(Resume {
                    last_request: url,
                    next_request: next,
                    pages: number,
                    notes,
                });
                writer
                    .write_page_known(&records, known)
                    .map_err(|source| PullError::Encode {
                        seq: writer.next_seq(),
                        source: source.at_run_page(number),
                    })?
            }
            PageMsg::Rejected {
                number,
                url,
                next,
                rejected,
                body,
                notes,
                lineage,
            } => {
                if chunks
                    .blocking_send(UploadMsg::Rejected(rejected, body))
                    .is_err()
                {
                    return Ok(Vec::new());
                }
                lines.push(lineage, 0);
                resumes.push_back(Resume {
                    last_request: url,
                    next_request: next,
                    pages: number,
                    notes,
                });
                // An empty page: the rejected page's place in the chunk's page range.
                writer.write_page(&[]).map_err(|source| PullError::Encode {
                    seq: writer.next_seq(),
                    source,
                })?
            }
            PageMsg::End => writer.finish().map_err(|source| PullError::Encode {
                seq: writer.next_seq(),
                source,
            })?,
        };
        let Some(chunk) = finished else { continue };
        let covered = chunk
            .pages
            .end
            .checked_sub(first_page)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=resumes.len()).contains(n));
        let Some(covered) = covered else {
            return Err(PullError::Internal(format!(
                "chunk {} names pages {:?} that were never written",
                chunk.seq, chunk.pages
            )));
        };
        // `covered` is at least 1 (checked above), so there is a last page; dropping the drain
        // removes the rest of the chunk's pages too.
        let Some(resume) = resumes.drain(..covered).next_back() else {
            return Err(PullError::Internal(format!(
                "chunk {} holds no page",
                chunk.seq
            )));
        };
        first_page = chunk.pages.end;
        let lineage = lines.take_chunk(covered, chunk.rows);
        let ready = ReadyChunk {
            lineage,
            chunk,
            resume,
            schema: writer.schema_with_stats(),
            changes: writer.schema_changes(),
            watermark: tracker.as_ref().and_then(WatermarkTracker::snapshot),
        };
        if chunks.blocking_send(UploadMsg::Chunk(ready)).is_err() {
            // The uploader stopped and reports why.
            return Ok(Vec::new());
        }
    }
    Ok(lines.rest())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::encode::{Compression, Format};
    use crate::source::extract::ExtractedPage;

    /// The descriptive schema of `pages`, written with or without the members the page
    /// reader found.
    fn described(pages: &[ExtractedPage], with_members: bool) -> Option<Schema> {
        let options = EncodeOptions::new(Format::JSONL, Some(Compression::None));
        let limits = ChunkLimits {
            max_bytes: u64::MAX,
            max_rows: None,
        };
        let mut w = ChunkWriter::new(options, limits, 0, None).unwrap();
        for page in pages {
            let known = page.members.as_ref().filter(|_| with_members);
            w.write_page_known(&page.records(), known).unwrap();
        }
        w.schema_with_stats()
    }

    #[test]
    fn the_page_readers_members_describe_records_as_the_encoders_scanner_does() {
        // Members of every kind, spacing, escapes in values and keys (a key with an escape
        // is left to the encoder), nested values holding brackets and quotes.
        let values = [
            "0",
            "-12.5e3",
            "true",
            "null",
            r#""plain""#,
            r#""2026-12-01T10:00:00Z""#,
            r#""esc \" \\ ] } \u00e9""#,
            r#"{"in":[1,"]",{"x":"}"}]}"#,
            "[]",
        ];
        let keys = ["id", "k\\\"ey", "name", "when", "é"];
        let spaces = ["", " ", "\n  "];
        let mut pages = Vec::new();
        for p in 0..6usize {
            let mut body = String::from(r#"{"next":"x","items":["#);
            for r in 0..40usize {
                if r > 0 {
                    body.push_str(spaces[r % 3]);
                    body.push(',');
                }
                body.push('{');
                for m in 0..(p + r) % 6 {
                    if m > 0 {
                        body.push(',');
                    }
                    let s = spaces[(p + m) % 3];
                    let key = keys[(r + m) % keys.len()];
                    let value = values[(p * 7 + r * 3 + m) % values.len()];
                    body.push_str(&format!("{s}\"{key}{m}\"{s}:{s}{value}{s}"));
                }
                body.push('}');
            }
            body.push_str("]}");
            let page = ExtractedPage::new(bytes::Bytes::from(body), "items").unwrap();
            let members = page.members.as_ref().expect("the scanner read the page");
            // Most records' members were found; those with an escaped key were not.
            let known = members.of_record.iter().filter(|m| m.is_some()).count();
            assert!(known > 10 && known < 40, "{known} of 40 known");
            pages.push(page);
        }
        let scanned = described(&pages, false);
        assert!(scanned.as_ref().is_some_and(|s| s.fields.len() > 10));
        assert_eq!(described(&pages, true), scanned);
    }
}
