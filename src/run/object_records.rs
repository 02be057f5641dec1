//! `--land records` in an object run: each planned object, in the plan's order, is one unit
//! landed by `objects::records::land_records` (its content through the encode path), read
//! with the run's `ObjectReader` (ranged GETs, `concurrency` ahead, verified).
//!
//! Objects are landed one after another, not side by side: with csv or parquet the first
//! object's columns are every later object's (the run's files share one schema, and the
//! drift policy judges each object's records against it), which needs an order. Within an
//! object, ranges are read ahead and chunks uploaded in parallel.
//!
//! Exactly once: while an object lands, its progress (record offset within the object,
//! next chunk, committed chunks) is in the checkpoint's `objects.records[name]`. When it is
//! done, ONE checkpoint update moves its chunks to the run's `files`, its schema to the
//! run's, and the object to `objects.landed` (with its source, version and ETag: the
//! incremental ledger), so a kill at any moment leaves either an object in progress (resumed
//! from its offset) or a landed one, never both.

use super::object_progress::SharedCheckpoint;
use crate::config::OutputConfig;
use crate::objects::decode::DecodeOptions;
use crate::objects::land::{checksum_entry, source_of};
use crate::objects::ranged::object_stream;
use crate::objects::records::{
    chunk_prefix, land_records, ProgressSaver, RecordsError, RecordsInput, RecordsProgress,
};
use crate::objects::{ObjectError, ObjectHead, ObjectReader, ObjectRef, ObjectsConfig};
use crate::pipeline::StopSignal;
use crate::report::{Event, Reporter};
use crate::sink::Sink;
use crate::state::objects::ManifestObject;
use async_trait::async_trait;
use std::sync::Arc;

/// What the records objects of a run work with.
pub(super) struct RecordsRun<'a> {
    pub(super) objects: &'a ObjectsConfig,
    pub(super) output: &'a OutputConfig,
    pub(super) reader: ObjectReader,
    pub(super) shared: &'a Arc<SharedCheckpoint>,
    /// The planned objects not landed yet, in the plan's order, each with the reference to
    /// read it through (an `s3://` URI, or the source's live URL).
    pub(super) todo: Vec<ObjectRef>,
    pub(super) sink: Arc<dyn Sink>,
    pub(super) run_id: &'a str,
    pub(super) reporter: Arc<dyn Reporter>,
    pub(super) stop: StopSignal,
}

/// Why the records objects of a run stopped; the driver turns it into its own error.
#[derive(Debug, thiserror::Error)]
pub(super) enum RecordsRunError {
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A stop was asked for; every committed record is in the checkpoint.
    #[error("interrupted")]
    Interrupted,
}

impl RecordsRunError {
    /// A presigned URL expired (at HEAD, or while reading): the driver lists the objects once
    /// more and calls again; each object resumes from its progress.
    pub(super) fn expired(&self) -> bool {
        match self {
            RecordsRunError::Object(ObjectError::Expired { .. }) => true,
            RecordsRunError::Records(RecordsError::Read { source, .. }) => matches!(
                source.downcast_ref::<ObjectError>(),
                Some(ObjectError::Expired { .. })
            ),
            _ => false,
        }
    }
}

/// Land the objects of `run.todo` as records, one after another.
pub(super) async fn land_records_objects(run: RecordsRun<'_>) -> Result<(), RecordsRunError> {
    for object in &run.todo {
        if run.stop.is_stopped() {
            return Err(RecordsRunError::Interrupted);
        }
        match land_one(&run, object).await {
            Err(RecordsRunError::Records(RecordsError::Interrupted { .. })) => {
                return Err(RecordsRunError::Interrupted)
            }
            other => other?,
        }
    }
    Ok(())
}

/// Land one object's records from its progress in the checkpoint.
async fn land_one(run: &RecordsRun<'_>, reference: &ObjectRef) -> Result<(), RecordsRunError> {
    let RecordsRun {
        objects,
        output,
        reader,
        shared,
        sink,
        run_id,
        reporter,
        stop,
        ..
    } = run;
    let head = reader.head(reference).await?;
    // The bytes read are pinned to what HEAD saw; the progress pins the same.
    let mut object = reference.clone();
    if object.etag.is_none() {
        object.etag = head.etag.clone();
    }
    if object.version_id.is_none() {
        object.version_id = head.version_id.clone();
    }
    let bytes = object_stream(
        reader.clone(),
        &object,
        &head,
        objects.part_size,
        objects.concurrency,
    )?;
    let progress = shared.records_progress(&object.name).unwrap_or_default();
    let schema = shared.schema();
    let mut saver = CheckpointSaver {
        shared: Arc::clone(shared),
        landed: landed_entry(&object, &head, run_id, sink.as_ref()),
    };
    let end = land_records(RecordsInput {
        object: &object,
        bytes,
        decode: DecodeOptions {
            records_path: objects.records_path.clone(),
            ..Default::default()
        },
        output,
        sink: sink.clone(),
        run_id,
        upload_concurrency: objects.concurrency,
        progress,
        schema,
        previous_schema: None,
        saver: &mut saver,
        reporter: reporter.clone(),
        stop: stop.clone(),
    })
    .await?;
    reporter.report(Event::ObjectLanded {
        name: object.name.clone(),
        url: saver.landed.url.clone(),
        bytes: head.size,
    });
    tracing::info!(
        object = %object.name,
        records = end.progress.records,
        chunks = end.progress.files.len(),
        "object landed as records"
    );
    Ok(())
}

/// The manifest's entry for an object landed as records: `path` is the start of its chunks'
/// names (the chunks themselves are the run's `files`).
fn landed_entry(
    object: &ObjectRef,
    head: &ObjectHead,
    run_id: &str,
    sink: &dyn Sink,
) -> ManifestObject {
    let path = chunk_prefix(run_id, object);
    let mut verified = vec!["size".to_string()];
    if let Ok(v) = crate::objects::ObjectVerifier::new(object, head) {
        verified.extend(v.checks());
    }
    ManifestObject {
        name: object.name.clone(),
        source: source_of(object),
        version_id: object.version_id.clone(),
        etag: object.etag.clone(),
        size: head.size,
        checksum: object
            .checksum
            .as_ref()
            .or(head.checksum.as_ref())
            .map(checksum_entry),
        verified,
        url: sink.url_of(&path),
        path,
        land: "records".into(),
        mode: "client".into(),
    }
}

/// Saves an object's progress in the run's checkpoint; when the object is done, moves its
/// chunks, schema and entry into the run's in the same save.
struct CheckpointSaver {
    shared: Arc<SharedCheckpoint>,
    landed: ManifestObject,
}

#[async_trait]
impl ProgressSaver for CheckpointSaver {
    async fn save(
        &mut self,
        object: &ObjectRef,
        progress: &RecordsProgress,
    ) -> Result<(), RecordsError> {
        let name = object.name.clone();
        let (progress, landed) = (progress.clone(), self.landed.clone());
        self.shared
            .update_checkpoint(move |cp| {
                let objects = cp.objects.get_or_insert_with(Default::default);
                if !progress.done {
                    objects.records.insert(name, progress);
                    return;
                }
                objects.records.remove(&name);
                objects.record_landed(landed);
                cp.files.extend(progress.files);
                // Chunk numbers are per object; the run's `next_seq` counts its files.
                cp.next_seq = cp.files.len() as u64;
                if progress.schema.is_some() {
                    cp.schema = progress.schema;
                }
                for c in progress.schema_changes {
                    if !cp.schema_changes.contains(&c) {
                        cp.schema_changes.push(c);
                    }
                }
            })
            .await
            .map_err(|e| RecordsError::Checkpoint {
                object: object.name.clone(),
                message: e.to_string(),
            })
    }
}
