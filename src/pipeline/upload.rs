//! The upload stage: store chunks under their final names, up to `--upload-concurrency` at
//! once, keep the bodies of pages set aside, and advance the checkpoint over the contiguous
//! prefix of committed chunks only, so a killed run resumes with nothing lost or repeated.

use super::error::PullError;
use super::messages::{ReadyChunk, Resume, UploadMsg};
use crate::encode::drift::SchemaChange;
use crate::encode::schema::Schema;
use crate::load::lineage::put_piece;
use crate::report::{Event, Reporter};
use crate::sink::{join_path, PutMode, Sink};
use crate::state::checkpoint::{save_request, save_url, Watermark};
use crate::state::entries::ManifestFile;
use crate::state::run_id::now_rfc3339;
use crate::state::{Checkpoint, CheckpointStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// What the upload stage works from.
pub(super) struct UploadInput {
    pub(super) sink: Arc<dyn Sink>,
    pub(super) store: CheckpointStore,
    /// The unit's checkpoint as last saved; the stage advances it and hands it back.
    pub(super) checkpoint: Checkpoint,
    /// The data files' extension (`jsonl.gz`, `parquet`, …).
    pub(super) extension: String,
    /// The data files' name before the sequence number (`part`, `part-<partition>-<epoch>`).
    pub(super) chunk_stem: String,
    /// Uploads at once (at least 1).
    pub(super) concurrency: usize,
    pub(super) reporter: Arc<dyn Reporter>,
    pub(super) chunks: mpsc::Receiver<UploadMsg>,
    /// How a position is sent: the checkpoint saves the next request as sent (URL and body).
    pub(super) request: Arc<crate::source::request::BoundRequest>,
}

/// A chunk stored under its final name, with what the checkpoint takes from it once every
/// chunk before it is committed too.
struct CommittedChunk {
    /// The data file, as the checkpoint and the manifest list it.
    file: ManifestFile,
    /// Where a resumed run picks up after this chunk.
    resume: Resume,
    /// The writer's schema with this invocation's column stats.
    schema: Option<Schema>,
    /// Schema changes this invocation recorded up to this chunk.
    changes: Vec<SchemaChange>,
    /// The incremental watermark after the chunk's last record.
    watermark: Option<Watermark>,
}

/// `new` with each string column's longest value the larger of `new`'s and `old`'s: column
/// stats restart with each invocation, and a resumed run must not size a column from its
/// own part of the data only.
fn merge_stats(old: Option<&Schema>, mut new: Schema) -> Schema {
    if let Some(old) = old {
        for f in &mut new.fields {
            let before = old
                .fields
                .iter()
                .find(|o| o.name == f.name)
                .and_then(|o| o.max_length);
            f.max_length = match (f.max_length, before) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
    new
}

/// Upload chunks, up to `concurrency` at once, under their final names, and advance the
/// checkpoint over the contiguous prefix of committed chunks.
pub(super) async fn upload_stage(
    input: UploadInput,
) -> Result<(CheckpointStore, Checkpoint), PullError> {
    let UploadInput {
        sink,
        mut store,
        checkpoint: mut cp,
        extension,
        chunk_stem,
        concurrency,
        reporter,
        mut chunks,
        request,
    } = input;
    let base_changes = cp.schema_changes.clone();
    let mut in_flight: JoinSet<Result<CommittedChunk, PullError>> = JoinSet::new();
    // Committed, but waiting for an earlier chunk before the checkpoint may include them.
    let mut waiting: BTreeMap<u64, CommittedChunk> = BTreeMap::new();
    let mut more = true;
    while more || !in_flight.is_empty() {
        // Report each upload as soon as it completes, and take a new chunk only while a slot
        // is free (so at most `concurrency` chunks are held here).
        tokio::select! {
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                let done = joined.map_err(|e| PullError::Internal(format!("upload task: {e}")))??;
                let file = &done.file;
                reporter.report(Event::ChunkCommitted {
                    seq: file.seq,
                    url: file.url.clone(),
                    rows: file.rows,
                    bytes: file.bytes,
                });
                waiting.insert(file.seq, done);
                let mut advanced = false;
                while let Some(CommittedChunk { file, resume, schema, changes, watermark }) = waiting.remove(&cp.next_seq) {
                    cp.files.push(file);
                    cp.next_seq += 1;
                    cp.pages = resume.pages;
                    cp.last_request = Some(save_url(&resume.last_request));
                    let next = resume.next_request.as_ref().map(|u| save_request(&request, u));
                    cp.next_request = next.as_ref().map(|(url, _)| url.clone());
                    cp.next_body = next.and_then(|(_, body)| body);
                    cp.listing = resume.notes;
                    if let Some(schema) = schema {
                        cp.schema = Some(merge_stats(cp.schema.as_ref(), schema));
                    }
                    cp.schema_changes = base_changes.iter().cloned().chain(changes).collect();
                    if watermark.is_some() {
                        cp.watermark = watermark;
                    }
                    advanced = true;
                }
                if advanced {
                    cp.updated_at = now_rfc3339();
                    store.save(&cp).await?;
                    tracing::info!(
                        next_seq = cp.next_seq,
                        pages = cp.pages,
                        next_request = %cp.next_request.as_deref().unwrap_or("none"),
                        "checkpoint advanced"
                    );
                }
            }
            received = chunks.recv(), if more && in_flight.len() < concurrency => match received {
                Some(UploadMsg::Rejected(mut rejected, body)) => {
                    // Kept beside the run's chunks, under a name Synapse wildcards skip; a
                    // resumed run that rejects the page again overwrites the same file.
                    if let Some(body) = body {
                        let name = format!("page-{:06}.json", rejected.page);
                        let path = join_path(&[&cp.run_id, "_rejected", &name]);
                        sink.put(&path, body, PutMode::Overwrite).await?;
                        rejected.body_path = Some(path);
                    }
                    let kept_at = rejected
                        .body_path
                        .as_deref()
                        .map(|p| format!("; its body is kept at {}", sink.url_of(p)))
                        .unwrap_or_default();
                    reporter.report(Event::Warning {
                        message: format!(
                            "page {} set aside (--on-bad-page skip): {}{kept_at}",
                            rejected.page, rejected.reason
                        ),
                    });
                    cp.rejected.retain(|r| r.page != rejected.page);
                    cp.rejected.push(rejected);
                    cp.rejected.sort_by_key(|r| r.page);
                }
                Some(UploadMsg::Chunk(ReadyChunk { chunk, resume, schema, changes, watermark, lineage })) => {
                    let sink = sink.clone();
                    let path = join_path(&[&cp.run_id, &crate::load::part_name_with(&chunk_stem, chunk.seq, &extension)]);
                    in_flight.spawn(async move {
                        let file = ManifestFile::put_chunk(sink.as_ref(), path, chunk).await?;
                        // The chunk's lineage beside it, before the checkpoint moves past it.
                        let lineage = lineage
                            .into_iter()
                            .map(|mut line| {
                                line.chunk = Some(file.path.clone());
                                line
                            })
                            .collect();
                        put_piece(sink.as_ref(), &file.path, lineage).await?;
                        Ok(CommittedChunk { file, resume, schema, changes, watermark })
                    });
                }
                None => more = false,
            },
        }
    }
    Ok((store, cp))
}
