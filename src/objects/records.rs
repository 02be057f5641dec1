//! `--land records`: one object's content through the encode path, as one of the run's units.
//!
//! ```text
//! bytes (async, in order) ──pieces (cap 2)──► decode + encode (blocking thread) ──chunks (cap 2)──► upload (N at once)
//!                                              objects::decode → encode::chunk::ChunkWriter            │
//!                                                                   progress saved after each contiguous commit
//! ```
//!
//! The object's bytes arrive as a stream of pieces in order (fed by ranged GETs, see
//! [`ByteStream`]); a blocking thread decompresses and splits them into records
//! (`super::decode`) and hands pages of records to the same [`ChunkWriter`] a paged pull
//! uses, so the job's format, compression, chunk size, schema and drift policy apply
//! unchanged. Chunks upload under deterministic names of their own
//! (`<run>/part-<object>-<hash>-NNNNN.<ext>`, see [`chunk_prefix`]), so `<run>/*.<ext>` still
//! reads exactly the run's files.
//!
//! **Exactly once: the checkpoint records a record offset within the object.** Chunks never
//! span two objects (each object has its own writer and its own chunk sequence), and after
//! every contiguous prefix of committed chunks the unit saves a [`RecordsProgress`]: the
//! number of the object's records in committed chunks, the next chunk's number and the files.
//! A killed unit is resumed by reading the object again from its first byte (a gzip or zstd
//! stream cannot be entered in the middle), skipping that many records, and writing from the
//! next chunk number on; chunks a killed attempt wrote past its last save are removed first.
//! So every record lands in exactly one committed chunk whatever the moment of the kill. The
//! progress also pins the object's ETag and version id: an object that changed between an
//! attempt and its resumption is an error, not a mix of two versions.
//!
//! Memory is bounded whatever the object's size: two pieces in the byte channel, the
//! decoder's buffer and one record, one page of records, the chunk being written, and at
//! most `upload_concurrency + 2` finished chunks.
//!
//! When the object's source states how many records it holds ([`ObjectRef::records`]), the
//! count is checked once the object is read: a mismatch fails the unit (its chunks stay
//! committed, the progress is not marked done, and a rerun reports the same mismatch).

use super::decode::{DecodeError, DecodeOptions, Detected, RecordReader};
use super::ObjectRef;
use crate::config::OutputConfig;
use crate::encode::chunk::{ChunkLimits, ChunkWriter, FinishedChunk};
use crate::encode::drift::SchemaChange;
use crate::encode::schema::Schema;
use crate::encode::EncodeError;
use crate::pipeline::StopSignal;
use crate::report::{Event, Reporter};
use crate::sink::{join_path, Sink, SinkError};
use crate::state::entries::ManifestFile;
pub use crate::state::records::RecordsProgress;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Why reading an object's bytes failed, from the byte source (its own error names the
/// object; never a presigned URL's query string).
pub type ReadFailure = Box<dyn std::error::Error + Send + Sync>;

/// An object's bytes, in order, from its first byte to its last.
pub type ByteStream = BoxStream<'static, Result<Bytes, ReadFailure>>;

/// Records per page handed to the chunk writer (a chunk holds whole pages).
const PAGE_RECORDS: u64 = 1000;
/// Record bytes per page.
const PAGE_BYTES: u64 = 1 << 20;

/// Saves a unit's progress in the run's checkpoint. Called after each contiguous prefix of
/// committed chunks, and once when the object is done.
#[async_trait]
pub trait ProgressSaver: Send {
    async fn save(
        &mut self,
        object: &ObjectRef,
        progress: &RecordsProgress,
    ) -> Result<(), RecordsError>;
}

/// What one object's records landing works from.
pub struct RecordsInput<'a> {
    pub object: &'a ObjectRef,
    /// The object's bytes from its first byte (a resumed unit reads it again).
    pub bytes: ByteStream,
    pub decode: DecodeOptions,
    pub output: &'a OutputConfig,
    pub sink: Arc<dyn Sink>,
    pub run_id: &'a str,
    /// Chunk uploads at once (at least 1).
    pub upload_concurrency: usize,
    /// The object's progress from the checkpoint (`Default` for an object not started).
    pub progress: RecordsProgress,
    /// The columns the run's chunks are written with so far (from the objects before this
    /// one), so every file of the run has the same; `None`: inferred from this object.
    pub schema: Option<Schema>,
    /// The columns of the last completed run, to compare with (drift across runs).
    pub previous_schema: Option<Schema>,
    pub saver: &'a mut dyn ProgressSaver,
    pub reporter: Arc<dyn Reporter>,
    pub stop: StopSignal,
}

/// Why an object's records did not land. Every variant names the object.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("object {object}: reading its bytes: {source}")]
    Read {
        object: String,
        #[source]
        source: ReadFailure,
    },
    #[error("object {object}: while writing its chunk {seq}: {source}")]
    Encode {
        object: String,
        seq: u64,
        #[source]
        source: EncodeError,
    },
    #[error("object {object}: {source}")]
    Sink {
        object: String,
        #[source]
        source: SinkError,
    },
    #[error("object {object}: saving its progress in the checkpoint: {message}")]
    Checkpoint { object: String, message: String },
    #[error("object {object} holds {found} records but its source says {expected}; its records are landed, but the run is not complete. Check the export that wrote it")]
    CountMismatch {
        object: String,
        expected: u64,
        found: u64,
    },
    #[error("object {object} changed since an interrupted run started landing it ({field} was {saved}, is now {now}); rerun with --restart to land it again from its first record")]
    Changed {
        object: String,
        field: &'static str,
        saved: String,
        now: String,
    },
    #[error("object {object}: stopped with {records} of its records committed and its progress saved; run the same command again to resume")]
    Interrupted { object: String, records: u64 },
    #[error("object {object}: internal error: {message}")]
    Internal { object: String, message: String },
}

/// An object whose records are all landed.
#[derive(Debug, Clone)]
pub struct RecordsEnd {
    pub progress: RecordsProgress,
    /// The writer's schema with its column stats (csv/parquet), for the next object and the
    /// manifest.
    pub schema: Option<Schema>,
    pub detected: Option<Detected>,
}

/// The start of every chunk name of `object` in `run_id`'s folder: `part-` (so Synapse
/// wildcards read it and `_`-files stay skipped), the object's name made file-safe and
/// shortened, and 8 hex digits of a hash of the whole name (two names that clean up alike
/// stay apart).
pub fn chunk_prefix(run_id: &str, object: &ObjectRef) -> String {
    let mut clean: String = object
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.len() > 48 {
        let cut = clean.len() - 48;
        clean.drain(..cut);
    }
    let hash = hex::encode(&Sha256::digest(object.name.as_bytes())[..4]);
    join_path(&[run_id, &format!("part-{}-{hash}-", clean.trim_matches('-'))])
}

/// The path of chunk `seq` of an object whose chunks start with `prefix`.
fn chunk_path(prefix: &str, seq: u64, extension: &str) -> String {
    format!("{prefix}{seq:05}.{extension}")
}

/// Land one object's records: resume from `progress`, encode, upload, save progress after
/// every contiguous commit, check the record count, mark the object done.
pub async fn land_records(input: RecordsInput<'_>) -> Result<RecordsEnd, RecordsError> {
    let RecordsInput {
        object,
        bytes,
        decode,
        output,
        sink,
        run_id,
        upload_concurrency,
        mut progress,
        schema,
        previous_schema,
        saver,
        reporter,
        stop,
    } = input;
    let name = object.name.clone();
    check_unchanged(object, &mut progress)?;
    if progress.done {
        return Ok(RecordsEnd {
            schema: progress.schema.clone(),
            progress,
            detected: None,
        });
    }
    let extension = output.encode.extension();
    let prefix = chunk_prefix(run_id, object);
    remove_leftovers(sink.as_ref(), &prefix, &extension, progress.next_seq)
        .await
        .map_err(|source| RecordsError::Sink {
            object: name.clone(),
            source,
        })?;

    // Stage 1: the object's bytes into a bounded channel the decoder reads from.
    let (piece_tx, piece_rx) = mpsc::channel::<Option<Bytes>>(2);
    let read_failure: Arc<Mutex<Option<ReadFailure>>> = Arc::default();
    let pump = tokio::spawn(pump_bytes(
        bytes,
        piece_tx,
        read_failure.clone(),
        stop.clone(),
    ));

    // Stage 2: decode and encode on a blocking thread.
    let (chunk_tx, chunk_rx) = mpsc::channel::<ReadyChunk>(2);
    let encode = {
        let job = EncodeJob {
            object: name.clone(),
            decode,
            limits: ChunkLimits {
                max_bytes: output.chunk_bytes,
                max_rows: output.chunk_rows,
            },
            writer: ChunkWriter::new(
                output.encode,
                ChunkLimits {
                    max_bytes: output.chunk_bytes,
                    max_rows: output.chunk_rows,
                },
                progress.next_seq,
                progress.schema.clone().or(schema),
            )
            .map_err(|source| RecordsError::Encode {
                object: name.clone(),
                seq: progress.next_seq,
                source,
            })?
            .with_schema_options(output.schema.clone(), previous_schema),
            skip: progress.records,
            input: ChannelReader {
                pieces: piece_rx,
                current: Bytes::new(),
                ended: false,
            },
            chunks: chunk_tx,
        };
        tokio::task::spawn_blocking(move || encode_object(job))
    };

    // Stage 3: upload, advancing the progress over the contiguous committed prefix.
    let uploaded = upload_chunks(Upload {
        object,
        sink,
        prefix: &prefix,
        extension: &extension,
        concurrency: upload_concurrency.max(1),
        progress,
        chunks: chunk_rx,
        saver,
        reporter,
    })
    .await;

    let pumped = pump.await;
    let encoded = encode.await;
    let internal = |message: String| RecordsError::Internal {
        object: name.clone(),
        message,
    };
    let read_failed = read_failure.lock().ok().and_then(|mut f| f.take());
    // The stage that failed is the cause; the others only saw a closed channel. A failed
    // read comes first: the decoder saw it as a broken stream.
    if let Some(source) = read_failed {
        return Err(RecordsError::Read {
            object: name,
            source,
        });
    }
    let mut progress = uploaded?;
    let stopped = pumped.map_err(|e| internal(format!("byte reader task: {e}")))?;
    let encoded = encoded.map_err(|e| internal(format!("encoder task: {e}")))?;
    if stopped {
        return Err(RecordsError::Interrupted {
            object: name,
            records: progress.records,
        });
    }
    let (total, detected, schema) = encoded?;
    progress.compression = Some(detected.compression.as_str().to_owned());
    progress.layout = Some(detected.layout.as_str().to_owned());
    if progress.records != total {
        return Err(internal(format!(
            "{total} records were read but {} committed",
            progress.records
        )));
    }
    if let Some(expected) = object.records {
        if expected != total {
            saver.save(object, &progress).await?;
            return Err(RecordsError::CountMismatch {
                object: name,
                expected,
                found: total,
            });
        }
    }
    progress.done = true;
    saver.save(object, &progress).await?;
    Ok(RecordsEnd {
        progress,
        schema,
        detected: Some(detected),
    })
}

/// Pin the object's ETag and version id in `progress`, or check them against it.
fn check_unchanged(object: &ObjectRef, progress: &mut RecordsProgress) -> Result<(), RecordsError> {
    let started = progress.records > 0 || progress.next_seq > 0 || progress.done;
    let pairs = [
        ("its ETag", &object.etag, &mut progress.etag),
        (
            "its version id",
            &object.version_id,
            &mut progress.version_id,
        ),
    ];
    for (field, now, saved) in pairs {
        match (saved.as_ref(), now) {
            (Some(s), Some(n)) if s != n => {
                return Err(RecordsError::Changed {
                    object: object.name.clone(),
                    field,
                    saved: s.clone(),
                    now: n.clone(),
                })
            }
            (None, Some(n)) if !started => *saved = Some(n.clone()),
            _ => {}
        }
    }
    Ok(())
}

/// Remove the object's chunks numbered `from_seq` or above: written by a killed attempt after
/// its last saved progress, they are not part of any checkpoint.
async fn remove_leftovers(
    sink: &dyn Sink,
    prefix: &str,
    extension: &str,
    from_seq: u64,
) -> Result<(), SinkError> {
    for meta in sink.list(prefix).await? {
        let seq = meta
            .path
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(extension))
            .and_then(|rest| rest.strip_suffix('.'))
            .and_then(|n| n.parse::<u64>().ok());
        if seq.is_some_and(|s| s >= from_seq) {
            sink.delete(&meta.path).await?;
        }
    }
    Ok(())
}

/// Read the byte stream into the channel until it ends, fails or a stop is asked for.
/// Returns whether it stopped; a failure is left in `failure` (and the channel is closed
/// without its end marker, so the decoder sees a broken stream, not a short object).
async fn pump_bytes(
    mut bytes: ByteStream,
    pieces: mpsc::Sender<Option<Bytes>>,
    failure: Arc<Mutex<Option<ReadFailure>>>,
    mut stop: StopSignal,
) -> bool {
    loop {
        let next = tokio::select! {
            biased;
            () = stop.stopped() => return true,
            next = bytes.next() => next,
        };
        match next {
            Some(Ok(piece)) => {
                if piece.is_empty() {
                    continue;
                }
                if pieces.send(Some(piece)).await.is_err() {
                    return false;
                }
            }
            Some(Err(e)) => {
                if let Ok(mut f) = failure.lock() {
                    *f = Some(e);
                }
                return false;
            }
            None => {
                // The end marker: a channel closed without it is a broken stream.
                let _ = pieces.send(None).await;
                return false;
            }
        }
    }
}

/// The byte channel as a `Read`, on the blocking thread.
struct ChannelReader {
    pieces: mpsc::Receiver<Option<Bytes>>,
    current: Bytes,
    /// The end marker was received.
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.pieces.blocking_recv() {
                Some(Some(piece)) => self.current = piece,
                Some(None) => self.ended = true,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the object's bytes stopped arriving",
                    ))
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A finished chunk with the object's record count after its last record.
struct ReadyChunk {
    chunk: FinishedChunk,
    records_after: u64,
    schema: Option<Schema>,
    changes: Vec<SchemaChange>,
}

struct EncodeJob {
    object: String,
    decode: DecodeOptions,
    limits: ChunkLimits,
    writer: ChunkWriter,
    /// Records already landed (skipped).
    skip: u64,
    input: ChannelReader,
    chunks: mpsc::Sender<ReadyChunk>,
}

/// Decode the object and write its records in pages; hand finished chunks on. Returns the
/// object's record count, what it was found to be, and the final schema.
fn encode_object(job: EncodeJob) -> Result<(u64, Detected, Option<Schema>), RecordsError> {
    let EncodeJob {
        object,
        decode,
        limits,
        mut writer,
        skip,
        input,
        chunks,
    } = job;
    let mut reader = RecordReader::open(&object, Box::new(input), &decode)?;
    let detected = reader.detected();
    reader.skip(skip)?;
    let page_records = limits.max_rows.unwrap_or(PAGE_RECORDS).min(PAGE_RECORDS);
    let page_bytes = limits.max_bytes.min(PAGE_BYTES);
    // The object's record count after each page handed to the writer and not yet in an
    // emitted chunk; `ends[0]` belongs to the writer's page `first_page`.
    let mut ends: VecDeque<u64> = VecDeque::new();
    let mut first_page: u64 = 0;
    let mut page: Vec<String> = Vec::new();
    let encode_err = |seq: u64, source: EncodeError| RecordsError::Encode {
        object: object.clone(),
        seq,
        source,
    };
    loop {
        page.clear();
        let mut bytes = 0u64;
        while (page.len() as u64) < page_records && bytes < page_bytes {
            match reader.next_record()? {
                Some(r) => {
                    bytes += r.len() as u64;
                    page.push(r.to_owned());
                }
                None => break,
            }
        }
        let last = page.is_empty();
        let finished = if last {
            writer
                .finish()
                .map_err(|e| encode_err(writer.next_seq(), e))?
        } else {
            let refs: Vec<&str> = page.iter().map(String::as_str).collect();
            ends.push_back(reader.records());
            writer
                .write_page(&refs)
                .map_err(|e| encode_err(writer.next_seq(), e))?
        };
        if let Some(chunk) = finished {
            let covered = chunk
                .pages
                .end
                .checked_sub(first_page)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=ends.len()).contains(n));
            let Some(records_after) = covered.and_then(|n| ends.drain(..n).next_back()) else {
                return Err(RecordsError::Internal {
                    object,
                    message: format!(
                        "chunk {} names pages {:?} never written",
                        chunk.seq, chunk.pages
                    ),
                });
            };
            first_page = chunk.pages.end;
            let ready = ReadyChunk {
                chunk,
                records_after,
                schema: writer.schema_with_stats(),
                changes: writer.schema_changes(),
            };
            if chunks.blocking_send(ready).is_err() {
                // The uploader stopped and reports why.
                return Ok((reader.records(), detected, writer.schema_with_stats()));
            }
        }
        if last {
            return Ok((reader.records(), detected, writer.schema_with_stats()));
        }
    }
}

struct Upload<'a> {
    object: &'a ObjectRef,
    sink: Arc<dyn Sink>,
    prefix: &'a str,
    extension: &'a str,
    concurrency: usize,
    progress: RecordsProgress,
    chunks: mpsc::Receiver<ReadyChunk>,
    saver: &'a mut dyn ProgressSaver,
    reporter: Arc<dyn Reporter>,
}

/// A chunk stored under its final name.
struct Committed {
    file: ManifestFile,
    records_after: u64,
    schema: Option<Schema>,
    changes: Vec<SchemaChange>,
}

/// Upload chunks, up to `concurrency` at once, and save the progress over the contiguous
/// prefix of committed chunks.
async fn upload_chunks(up: Upload<'_>) -> Result<RecordsProgress, RecordsError> {
    let Upload {
        object,
        sink,
        prefix,
        extension,
        concurrency,
        mut progress,
        mut chunks,
        saver,
        reporter,
    } = up;
    let sink_err = |source| RecordsError::Sink {
        object: object.name.clone(),
        source,
    };
    let base_changes = progress.schema_changes.clone();
    let mut in_flight: JoinSet<Result<Committed, SinkError>> = JoinSet::new();
    let mut waiting: BTreeMap<u64, Committed> = BTreeMap::new();
    let mut more = true;
    while more || !in_flight.is_empty() {
        tokio::select! {
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                let done = joined
                    .map_err(|e| RecordsError::Internal { object: object.name.clone(), message: format!("upload task: {e}") })?
                    .map_err(sink_err)?;
                reporter.report(Event::ChunkCommitted {
                    seq: done.file.seq,
                    url: done.file.url.clone(),
                    rows: done.file.rows,
                    bytes: done.file.bytes,
                });
                waiting.insert(done.file.seq, done);
                let mut advanced = false;
                while let Some(c) = waiting.remove(&progress.next_seq) {
                    progress.files.push(c.file);
                    progress.next_seq += 1;
                    progress.records = c.records_after;
                    if c.schema.is_some() {
                        progress.schema = c.schema;
                    }
                    progress.schema_changes = base_changes.iter().cloned().chain(c.changes).collect();
                    advanced = true;
                }
                if advanced {
                    saver.save(object, &progress).await?;
                }
            }
            received = chunks.recv(), if more && in_flight.len() < concurrency => match received {
                Some(ReadyChunk { chunk, records_after, schema, changes }) => {
                    let sink = sink.clone();
                    let path = chunk_path(prefix, chunk.seq, extension);
                    in_flight.spawn(async move {
                        let file = ManifestFile::put_chunk(sink.as_ref(), path, chunk).await?;
                        Ok(Committed { file, records_after, schema, changes })
                    });
                }
                None => more = false,
            },
        }
    }
    Ok(progress)
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
