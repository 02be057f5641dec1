//! The `--land records` arm of an object run: each planned object's content, in plan order,
//! through `objects::records::land_records` (decode → the job's chunk writer → upload), its
//! bytes read as ordered ranged GETs and verified as they stream past. Objects go one after
//! another so that every chunk of the run has the columns of the ones before it; each keeps
//! its own progress (a record offset within it) in the checkpoint, so a kill and a rerun
//! land every record exactly once.

use super::object_progress::SharedCheckpoint;
use super::objects::{reference_of, Live, ObjectRunConfig, ObjectRunError};
use crate::encode::schema::Schema;
use crate::objects::ranged::{ranged_stream, ByteCheck};
use crate::objects::records::{
    land_records, ProgressSaver, ReadFailure, RecordsError, RecordsInput, RecordsProgress,
};
use crate::objects::{ObjectReader, ObjectRef, ObjectVerifier};
use crate::pipeline::StopSignal;
use crate::report::Reporter;
use crate::sink::Sink;
use async_trait::async_trait;
use std::sync::Arc;

/// The object's verifier as the byte stream's check.
struct Verify(ObjectVerifier);

impl ByteCheck for Verify {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finish(self: Box<Self>) -> Result<(), ReadFailure> {
        self.0
            .finish()
            .map(|_| ())
            .map_err(|e| Box::new(e) as ReadFailure)
    }
}

/// Saves one object's records progress in the run's checkpoint.
struct Saver<'a>(&'a SharedCheckpoint);

#[async_trait]
impl ProgressSaver for Saver<'_> {
    async fn save(
        &mut self,
        object: &ObjectRef,
        progress: &RecordsProgress,
    ) -> Result<(), RecordsError> {
        let (name, progress) = (object.name.clone(), progress.clone());
        self.0
            .update(|p| {
                p.records.insert(name, progress);
            })
            .await
            .map_err(|e| RecordsError::Checkpoint {
                object: object.name.clone(),
                message: e.to_string(),
            })
    }
}

/// What the records arm works with.
pub(super) struct RecordsRun<'a> {
    pub config: &'a ObjectRunConfig,
    pub reader: ObjectReader,
    pub sink: Arc<dyn Sink>,
    pub shared: &'a SharedCheckpoint,
    pub live: &'a Live,
    pub run_id: &'a str,
    pub previous_schema: Option<Schema>,
    pub reporter: Arc<dyn Reporter>,
    pub stop: StopSignal,
}

/// Land every planned object's records; each object's progress ends `done`.
pub(super) async fn land_all_records(run: RecordsRun<'_>) -> Result<(), ObjectRunError> {
    let progress = run.shared.progress();
    let planned = progress.planned.clone().unwrap_or_default();
    // The columns so far: those of the last object before this one, in plan order.
    let mut schema: Option<Schema> = None;
    for p in &planned {
        let saved = progress.records.get(&p.name).cloned().unwrap_or_default();
        if saved.done {
            schema = saved.schema.clone().or(schema);
            continue;
        }
        let object = reference_of(p, run.live, run.run_id)?;
        let head = run
            .reader
            .head(&object)
            .await
            .map_err(ObjectRunError::from_object)?;
        let check =
            Verify(ObjectVerifier::new(&object, &head).map_err(ObjectRunError::from_object)?);
        let bytes = {
            let (reader, obj, head) = (run.reader.clone(), object.clone(), head.clone());
            ranged_stream(
                head.size,
                run.config.objects.part_size,
                run.config.objects.concurrency,
                move |range| {
                    let (reader, obj, head) = (reader.clone(), obj.clone(), head.clone());
                    async move {
                        reader
                            .get_range(&obj, &head, range)
                            .await
                            .map_err(|e| Box::new(e) as ReadFailure)
                    }
                },
                Box::new(check),
            )
        };
        let mut saver = Saver(run.shared);
        let end = land_records(RecordsInput {
            object: &object,
            bytes,
            decode: run.config.decode.clone(),
            output: &run.config.output,
            sink: run.sink.clone(),
            run_id: run.run_id,
            upload_concurrency: run.config.upload_concurrency,
            progress: saved,
            schema: schema.clone(),
            previous_schema: run.previous_schema.clone(),
            saver: &mut saver,
            reporter: run.reporter.clone(),
            stop: run.stop.clone(),
        })
        .await?;
        schema = end.schema.clone().or(schema);
        let mut done = end.progress;
        done.done = true;
        run.shared
            .update(|p| {
                p.records.insert(object.name.clone(), done);
            })
            .await?;
    }
    Ok(())
}
