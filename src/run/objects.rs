//! A run whose units are S3 objects (`gatelake copy`, and a pull whose pages or export hand
//! back objects): the same lifecycle as a run of pages — the job's lock, resume | `--restart`
//! | new, one commit of `load.sql`, `_manifest.json` and `_SUCCESS` — around a different
//! unit of work.
//!
//! 1. A new run saves its checkpoint first, then asks its [`ObjectSource`] for the objects,
//!    drops those an earlier run of the job copied (`_state/copied.json`: key + version id
//!    or ETag), and saves that plan in the checkpoint before reading a byte. A resumed run
//!    lands the same plan: no object is added or lost by a kill.
//! 2. Objects land concurrently, each at its own deterministic path (`<run>/<name>`), so an
//!    object landed by a killed attempt but not yet recorded is simply written again with
//!    the same bytes; the manifest lists the checkpoint's record, which is exactly the plan.
//! 3. An object behind a presigned URL is planned without its signature: a resumed run, or
//!    one whose URL expired (403 "Request has expired"), asks the source for a fresh list
//!    once and finds the object again by name.
//! 4. The commit adds the run's objects to the job's ledger before marking the checkpoint
//!    complete, so a commit killed midway is simply done again by the rerun.

pub use super::object_job::{ObjectRunConfig, ObjectRunError, ObjectRunInput, ObjectSummary};

use super::object_as_is::land_as_is;
use super::object_plan::plan;
use super::object_progress::SharedCheckpoint;
use super::RunOptions;
use crate::load::manifest::{Manifest, ManifestStatus};
use crate::load::object_manifest::ObjectManifestInput;
use crate::load::MANIFEST;
use crate::objects::land::AsIsLander;
use crate::objects::source::ObjectSource;
use crate::objects::Land;
use crate::report::Event;
use crate::sink::{join_path, LockHolder, Sink, SinkError};
use crate::state::objects::{CopiedLedger, ObjectsProgress};
use crate::state::run_id::{new_run_id, now_rfc3339, rfc3339};
use crate::state::{Checkpoint, CheckpointStore, RunStatus, StateError, CHECKPOINT_VERSION};
use std::sync::Arc;
use std::time::Instant;

/// Run `input.source`'s objects into the sink: take the job's lock, resume or start a run,
/// land every planned object, and commit it with its manifest and `_SUCCESS`.
pub async fn run_objects(input: ObjectRunInput<'_>) -> Result<ObjectSummary, ObjectRunError> {
    let sink = input.sink.clone();
    sink.check().await?;
    let never_ran = crate::state::fresh::never_ran(sink.as_ref()).await;
    let lock = crate::state::lock::acquire(
        sink.as_ref(),
        &LockHolder::this_process(&input.config.job),
        input.options.wait_for_lock,
        input.reporter.as_ref(),
    )
    .await?;
    let outcome = run_locked(input).await;
    let failed_fresh = never_ran
        && matches!(&outcome, Err(e) if !matches!(e, ObjectRunError::Interrupted { .. } | ObjectRunError::State(StateError::LostRace { .. }) | ObjectRunError::Source(crate::objects::source::ObjectSourceError::Resumable(_))));
    crate::state::fresh::release(sink.as_ref(), lock, failed_fresh).await;
    outcome
}

async fn run_locked(input: ObjectRunInput<'_>) -> Result<ObjectSummary, ObjectRunError> {
    let started = Instant::now();
    let ObjectRunInput {
        config,
        source,
        reader,
        sink,
        reporter,
        options,
        stop,
    } = input;
    let described = source.describe();
    let mut store = CheckpointStore::new(sink.clone());
    let previous = store.load().await?;
    let unfinished = previous.filter(|cp| cp.status == RunStatus::Running);
    let (cp, resumed) = match unfinished {
        Some(cp) if !options.restart => {
            if cp.objects.is_none() || cp.source_url != described {
                return Err(ObjectRunError::SourceChanged {
                    run_id: cp.run_id,
                    saved: cp.source_url,
                    configured: described,
                });
            }
            // Debris of killed single writes; staged parts stay for the resume.
            sink.remove_incomplete(&cp.run_id).await?;
            (cp, true)
        }
        other => {
            if let Some(old) = other {
                discard(sink.as_ref(), &old.run_id).await?;
                reporter.report(Event::Warning {
                    message: format!("--restart: discarded the unfinished run {}", old.run_id),
                });
            }
            let cp = new_checkpoint(&config.job, &described);
            store.save(&cp).await?;
            (cp, false)
        }
    };
    let run_id = cp.run_id.clone();
    reporter.report(Event::RunStarted {
        run_id: run_id.clone(),
        source: described.clone(),
        destination: sink.url_of(&run_id),
        resumed,
        committed_chunks: cp.objects.as_ref().map_or(0, |p| p.landed.len() as u64),
    });
    let shared = Arc::new(SharedCheckpoint::new(cp, store));
    let live = plan(source, &shared, sink.as_ref(), reporter.as_ref()).await?;

    match config.objects.land {
        Land::AsIs => {
            let lander = AsIsLander::new(reader, sink.clone(), &config.objects);
            land_as_is(
                &lander,
                source,
                &shared,
                live,
                &run_id,
                config.objects.concurrency,
                reporter.clone(),
                stop,
            )
            .await?;
        }
        Land::Records => {
            super::object_records::land_records_objects(super::object_records::RecordsRun {
                config,
                reader,
                source,
                shared: &shared,
                live,
                sink: sink.clone(),
                run_id: &run_id,
                reporter: reporter.clone(),
                stop,
            })
            .await?;
        }
    }

    let shared = Arc::try_unwrap(shared)
        .map_err(|_| ObjectRunError::Internal("the checkpoint is still shared".into()))?;
    let (mut cp, mut store) = shared.into_parts();
    let manifest = commit(config, source, sink.as_ref(), options, &mut cp, &mut store).await?;
    // As-is: the objects' bytes; records: the chunks'.
    let objects = manifest.objects.len() as u64;
    let bytes = manifest
        .objects
        .iter()
        .filter(|o| o.land == "as-is")
        .map(|o| o.size)
        .sum::<u64>()
        + manifest.totals.bytes;
    reporter.report(Event::RunFinished {
        run_id: run_id.clone(),
        rows: manifest.totals.rows,
        files: objects + manifest.totals.files,
        bytes,
    });
    Ok(ObjectSummary {
        status: ManifestStatus::Succeeded.as_str(),
        job: config.job.clone(),
        run_id: run_id.clone(),
        resumed,
        source: described,
        destination: manifest.destination.clone(),
        manifest_url: sink.url_of(&join_path(&[&run_id, MANIFEST])),
        land: match config.objects.land {
            Land::AsIs => "as-is",
            Land::Records => "records",
        },
        objects,
        rows: manifest.totals.rows,
        files: manifest.totals.files,
        skipped: manifest.objects_skipped,
        bytes,
        warnings: manifest.outcome.warnings.clone(),
        seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    })
}

fn new_checkpoint(job: &str, source: &str) -> Checkpoint {
    let now = time::OffsetDateTime::now_utc();
    Checkpoint {
        version: CHECKPOINT_VERSION,
        job: job.to_string(),
        run_id: new_run_id(now),
        status: RunStatus::Running,
        source_url: source.to_string(),
        next_seq: 0,
        next_request: None,
        next_body: None,
        last_request: None,
        pages: 0,
        files: Vec::new(),
        schema: None,
        schema_changes: Vec::new(),
        compared_with_run: None,
        rejected: Vec::new(),
        first_request: None,
        since: None,
        watermark: None,
        listing: Default::default(),
        objects: Some(ObjectsProgress::default()),
        started_at: rfc3339(now),
        updated_at: rfc3339(now),
    }
}

/// `--restart`: every file of the abandoned run goes, so no reader mistakes it for data.
async fn discard(sink: &dyn Sink, run_id: &str) -> Result<(), SinkError> {
    sink.remove_incomplete(run_id).await?;
    for object in sink.list(&format!("{run_id}/")).await? {
        sink.delete(&object.path).await?;
    }
    Ok(())
}

/// The run-level commit: load script, manifest, `_SUCCESS`, the job's ledger of copied
/// objects, then the checkpoint marked complete.
async fn commit(
    config: &ObjectRunConfig,
    source: &dyn ObjectSource,
    sink: &dyn Sink,
    options: &RunOptions,
    cp: &mut Checkpoint,
    store: &mut CheckpointStore,
) -> Result<Manifest, ObjectRunError> {
    let manifest = Manifest::assemble_objects(ObjectManifestInput {
        job: &config.job,
        checkpoint: cp,
        listing: source.kind(),
        auth: &config.auth,
        output: &config.output,
        land: match config.objects.land {
            Land::AsIs => "as-is",
            Land::Records => "records",
        },
        destination: sink.url_of(&cp.run_id),
        storage_identity: sink.identity_kind(),
        proven: &options.identities,
        status: ManifestStatus::Succeeded,
        partial_reasons: Vec::new(),
        finished_at: now_rfc3339(),
    });
    super::commit::put_run_files(sink, &cp.run_id, &manifest, true)
        .await
        .map_err(|e| match e {
            super::commit::RunFilesError::Sink(e) => ObjectRunError::from(e),
            super::commit::RunFilesError::Manifest(m) => ObjectRunError::Internal(m),
        })?;
    let mut ledger = CopiedLedger::load(sink).await?;
    // Every landed object (as-is or as records) with the version it was read at.
    ledger.add(
        &cp.run_id,
        manifest
            .objects
            .iter()
            .map(|o| (o.source.clone(), o.version_id.clone(), o.etag.clone()))
            .collect::<Vec<_>>(),
    );
    ledger.save(sink).await?;
    cp.status = RunStatus::Complete;
    cp.updated_at = now_rfc3339();
    store.save(cp).await?;
    Ok(manifest)
}
