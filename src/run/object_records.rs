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

use super::object_job::{ObjectRunConfig, ObjectRunError};
use super::object_plan::{reference_of, relist, Live};
use super::object_progress::SharedCheckpoint;
use crate::objects::decode::DecodeOptions;
use crate::objects::land::{checksum_entry, source_of, LandError};
use crate::objects::ranged::object_stream;
use crate::objects::records::{
    chunk_prefix, land_records, ProgressSaver, RecordsError, RecordsInput, RecordsProgress,
};
use crate::objects::source::ObjectSource;
use crate::objects::{ObjectError, ObjectHead, ObjectReader, ObjectRef};
use crate::pipeline::StopSignal;
use crate::report::{Event, Reporter};
use crate::sink::Sink;
use crate::state::objects::{ManifestObject, PlannedObject};
use async_trait::async_trait;
use std::sync::Arc;

/// What the records objects of a run work with.
pub(super) struct RecordsRun<'a> {
    pub(super) config: &'a ObjectRunConfig,
    pub(super) reader: ObjectReader,
    pub(super) source: &'a dyn ObjectSource,
    pub(super) shared: &'a Arc<SharedCheckpoint>,
    pub(super) live: Live,
    pub(super) sink: Arc<dyn Sink>,
    pub(super) run_id: &'a str,
    pub(super) reporter: Arc<dyn Reporter>,
    pub(super) stop: StopSignal,
}

/// Land every planned object not landed yet as records, in the plan's order.
pub(super) async fn land_records_objects(run: RecordsRun<'_>) -> Result<(), ObjectRunError> {
    let RecordsRun {
        config,
        reader,
        source,
        shared,
        mut live,
        sink,
        run_id,
        reporter,
        stop,
    } = run;
    let progress = shared.progress();
    let todo: Vec<PlannedObject> = progress
        .planned
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !progress.landed.iter().any(|l| l.name == p.name))
        .collect();
    let mut relisted = false;
    for planned in todo {
        if stop.is_stopped() {
            return Err(interrupted(shared, run_id));
        }
        // An expired presigned URL (at HEAD, or while reading) has the source list its
        // objects once more per run; the object is then landed again from its progress.
        loop {
            let reference = reference_of(&planned, &live, run_id)?;
            let outcome = land_one(
                config,
                &reader,
                shared,
                &planned,
                &reference,
                sink.clone(),
                run_id,
                reporter.clone(),
                stop.clone(),
            )
            .await;
            match outcome {
                Ok(()) => break,
                Err(e) if !relisted && expired(&e) => {
                    relisted = true;
                    live = relist(source, shared, &crate::report::SilentReporter).await?;
                }
                Err(RecordsLandError::Records(RecordsError::Interrupted { .. })) => {
                    return Err(interrupted(shared, run_id))
                }
                Err(RecordsLandError::Records(e)) => return Err(e.into()),
                Err(RecordsLandError::Object(e)) => return Err(LandError::Object(e).into()),
            }
        }
    }
    Ok(())
}

fn interrupted(shared: &SharedCheckpoint, run_id: &str) -> ObjectRunError {
    let p = shared.progress();
    ObjectRunError::Interrupted {
        run_id: run_id.to_string(),
        landed: p.landed.len() as u64,
        planned: p.planned.map_or(0, |v| v.len() as u64),
    }
}

enum RecordsLandError {
    Object(ObjectError),
    Records(RecordsError),
}

fn expired(e: &RecordsLandError) -> bool {
    match e {
        RecordsLandError::Object(ObjectError::Expired { .. }) => true,
        RecordsLandError::Records(RecordsError::Read { source, .. }) => {
            matches!(
                source.downcast_ref::<ObjectError>(),
                Some(ObjectError::Expired { .. })
            )
        }
        _ => false,
    }
}

/// Land one object's records from its progress in the checkpoint.
#[allow(clippy::too_many_arguments)]
async fn land_one(
    config: &ObjectRunConfig,
    reader: &ObjectReader,
    shared: &Arc<SharedCheckpoint>,
    planned: &PlannedObject,
    reference: &ObjectRef,
    sink: Arc<dyn Sink>,
    run_id: &str,
    reporter: Arc<dyn Reporter>,
    stop: StopSignal,
) -> Result<(), RecordsLandError> {
    let head = reader
        .head(reference)
        .await
        .map_err(RecordsLandError::Object)?;
    // The bytes read are pinned to what HEAD saw; the progress pins the same.
    let mut object = reference.clone();
    if object.etag.is_none() {
        object.etag = head.etag.clone();
    }
    if object.version_id.is_none() {
        object.version_id = head.version_id.clone();
    }
    let objects = &config.objects;
    let bytes = object_stream(
        reader.clone(),
        &object,
        &head,
        objects.part_size,
        objects.concurrency,
    )
    .map_err(RecordsLandError::Object)?;
    let progress = shared.records_progress(&planned.name).unwrap_or_default();
    let schema = shared.schema();
    let mut saver = CheckpointSaver {
        shared: shared.clone(),
        landed: landed_entry(planned, &object, &head, run_id, sink.as_ref()),
    };
    let end = land_records(RecordsInput {
        object: &object,
        bytes,
        decode: DecodeOptions {
            records_path: objects.records_path.clone(),
            ..Default::default()
        },
        output: &config.output,
        sink,
        run_id,
        upload_concurrency: objects.concurrency,
        progress,
        schema,
        previous_schema: None,
        saver: &mut saver,
        reporter: reporter.clone(),
        stop,
    })
    .await
    .map_err(RecordsLandError::Records)?;
    reporter.report(Event::ObjectLanded {
        name: planned.name.clone(),
        url: saver.landed.url.clone(),
        bytes: head.size,
    });
    tracing::info!(
        object = %planned.name,
        records = end.progress.records,
        chunks = end.progress.files.len(),
        "object landed as records"
    );
    Ok(())
}

/// The manifest's entry for an object landed as records: `path` is the start of its chunks'
/// names (the chunks themselves are the run's `files`).
fn landed_entry(
    planned: &PlannedObject,
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
        name: planned.name.clone(),
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
