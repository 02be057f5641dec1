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

use super::object_progress::SharedCheckpoint;
use super::RunOptions;
use crate::config::OutputConfig;
use crate::load::manifest::{Manifest, ManifestStatus};
use crate::load::object_manifest::ObjectManifestInput;
use crate::load::{LOAD_SQL, MANIFEST, SUCCESS_MARKER};
use crate::objects::decode::DecodeOptions;
use crate::objects::land::{
    checksum_entry, checksum_of, source_of, AsIsLander, LandError, LandJob,
};
use crate::objects::records::RecordsError;
use crate::objects::source::{ObjectSource, ObjectSourceError};
use crate::objects::{Land, ObjectError, ObjectLocation, ObjectReader, ObjectRef, ObjectsConfig};
use crate::pipeline::StopSignal;
use crate::report::{Event, Reporter};
use crate::sink::{join_path, LockHolder, PutMode, Sink, SinkError};
use crate::state::objects::{CopiedLedger, LedgerError, ObjectsProgress, PlannedObject};
use crate::state::run_id::{new_run_id, now_rfc3339, rfc3339};
use crate::state::{Checkpoint, CheckpointStore, RunStatus, StateError, CHECKPOINT_VERSION};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

/// The columns of the last completed run, for `--land records` in csv or parquet to compare
/// its first object with (drift across runs).
async fn previous_schema(
    config: &ObjectRunConfig,
    sink: &dyn Sink,
) -> Result<Option<crate::encode::schema::Schema>, ObjectRunError> {
    if !config.output.encode.format.columnar() || config.output.schema.pinned.is_some() {
        return Ok(None);
    }
    Ok(crate::load::previous::latest_manifest_before(sink, None)
        .await?
        .and_then(|m| m.schema))
}

/// Names a run writes beside its objects: an object may not take them.
const RUN_FILES: [&str; 3] = [MANIFEST, SUCCESS_MARKER, LOAD_SQL];

/// The job's side of an object run.
#[derive(Debug, Clone)]
pub struct ObjectRunConfig {
    pub job: String,
    pub objects: ObjectsConfig,
    /// The chunks of `--land records` (format, chunk size, schema policy), how objects'
    /// content is read into records, and how many chunks upload at once.
    pub output: OutputConfig,
    pub decode: DecodeOptions,
    pub upload_concurrency: usize,
    /// How the objects are read, for the manifest: `iam` (the run's AWS credentials), or the
    /// API's auth kind.
    pub auth: String,
}

/// Why an object run stopped. Every variant names the object or run involved.
#[derive(Debug, thiserror::Error)]
pub enum ObjectRunError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("listing the objects: {0}")]
    Source(#[from] ObjectSourceError),
    #[error(transparent)]
    Land(#[from] LandError),
    #[error("the unfinished run {run_id} of this job copied from {saved}, but this run is configured for {configured}. Run with the original source to finish it, or pass --restart to discard it")]
    SourceChanged {
        run_id: String,
        saved: String,
        configured: String,
    },
    #[error("object {source_uri} cannot land under its name {name:?}: {reason}. Leave it out with --exclude")]
    BadName {
        source_uri: String,
        name: String,
        reason: String,
    },
    #[error("object {name} ({source_uri}) is no longer in the source's list of objects, which run {run_id} planned to land; rerun with --restart to land the source's current objects")]
    Vanished {
        name: String,
        source_uri: String,
        run_id: String,
    },
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error("reading the previous run to compare schemas: {0}")]
    PreviousRun(#[from] crate::load::previous::PreviousRunError),
    #[error("interrupted: run {run_id} stopped with {landed} of {planned} objects landed and its checkpoint saved. Run the same command again to resume it (or pass --restart to discard it)")]
    Interrupted {
        run_id: String,
        landed: u64,
        planned: u64,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ObjectRunError {
    /// An object's read failing outside the as-is lander.
    pub(super) fn from_object(e: ObjectError) -> Self {
        ObjectRunError::Land(LandError::Object(e))
    }
}

/// What an object run produced; printed as the JSON summary.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectSummary {
    pub status: &'static str,
    pub job: String,
    pub run_id: String,
    pub resumed: bool,
    /// The listing (e.g. `s3://bucket/prefix/`).
    pub source: String,
    /// The run's folder (redacted URL).
    pub destination: String,
    pub manifest_url: String,
    pub land: &'static str,
    /// Objects the run landed (over every attempt).
    pub objects: u64,
    /// `--land records`: records in the run's chunks, and the chunks.
    pub rows: u64,
    pub files: u64,
    /// Objects the listing held that an earlier run already copied.
    pub skipped: u64,
    /// Bytes landed: the objects' (as-is), the chunks' (records).
    pub bytes: u64,
    pub warnings: Vec<String>,
    /// Seconds this invocation took.
    pub seconds: f64,
}

/// What one object run works with.
pub struct ObjectRunInput<'a> {
    pub config: &'a ObjectRunConfig,
    pub source: &'a dyn ObjectSource,
    pub reader: ObjectReader,
    pub sink: Arc<dyn Sink>,
    pub reporter: Arc<dyn Reporter>,
    pub options: &'a RunOptions,
    pub stop: StopSignal,
}

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
        && matches!(&outcome, Err(e) if !matches!(e, ObjectRunError::Interrupted { .. } | ObjectRunError::State(StateError::LostRace { .. }) | ObjectRunError::Source(ObjectSourceError::Resumable(_))));
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
            let previous_schema = previous_schema(config, sink.as_ref()).await?;
            super::object_records::land_all_records(super::object_records::RecordsRun {
                config,
                reader,
                sink: sink.clone(),
                shared: &shared,
                live: &live,
                run_id: &run_id,
                previous_schema,
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
    // As-is: the objects' bytes; records: the chunks' (and the objects read into them).
    let records_done = cp
        .objects
        .as_ref()
        .map_or(0, |p| p.records.values().filter(|r| r.done).count() as u64);
    let objects = manifest.objects.len() as u64 + records_done;
    let bytes = manifest.objects.iter().map(|o| o.size).sum::<u64>() + manifest.totals.bytes;
    reporter.report(Event::RunFinished {
        run_id: run_id.clone(),
        rows: manifest.totals.rows,
        files: manifest.objects.len() as u64 + manifest.totals.files,
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

/// The objects behind presigned URLs, by name, as the source last listed them.
pub(super) type Live = HashMap<String, ObjectRef>;

/// The run's plan: listed, filtered by the ledger and saved, unless the checkpoint has it.
/// Returns the live references of URL objects (their signatures are never saved).
async fn plan(
    source: &dyn ObjectSource,
    shared: &SharedCheckpoint,
    sink: &dyn Sink,
    reporter: &dyn Reporter,
) -> Result<Live, ObjectRunError> {
    let progress = shared.progress();
    if let Some(planned) = &progress.planned {
        let unlanded_urls = planned
            .iter()
            .any(|p| !progress.is_landed(&p.name) && !p.source.starts_with("s3://"));
        return if unlanded_urls {
            relist(source, shared, reporter).await
        } else {
            Ok(Live::new())
        };
    }
    let listing = source.list(shared, reporter).await?;
    let ledger = CopiedLedger::load(sink).await?;
    let mut planned = Vec::new();
    let mut live = Live::new();
    let mut skipped = 0;
    let mut names = std::collections::HashSet::new();
    for object in listing.objects {
        let src = source_of(&object);
        check_name(&object.name, &src)?;
        if !names.insert(object.name.clone()) {
            return Err(ObjectRunError::BadName {
                source_uri: src,
                name: object.name,
                reason: "another object of the listing has the same name".into(),
            });
        }
        if ledger.copied(&src, object.version_id.as_deref(), object.etag.as_deref()) {
            skipped += 1;
            continue;
        }
        planned.push(planned_of(&object));
        if matches!(object.location, ObjectLocation::Url { .. }) {
            live.insert(object.name.clone(), object);
        }
    }
    let warnings = listing.warnings;
    let pages = listing.pages;
    shared
        .update_checkpoint(|cp| {
            cp.pages = pages;
            cp.listing.warnings.extend(warnings);
            let p = cp.objects.get_or_insert_with(Default::default);
            p.planned = Some(planned);
            p.skipped = skipped;
        })
        .await?;
    Ok(live)
}

/// Ask the source again for the live references of URL objects (after a resume or an
/// expired URL).
async fn relist(
    source: &dyn ObjectSource,
    shared: &SharedCheckpoint,
    reporter: &dyn Reporter,
) -> Result<Live, ObjectRunError> {
    let listing = source.list(shared, reporter).await?;
    Ok(listing
        .objects
        .into_iter()
        .filter(|o| matches!(o.location, ObjectLocation::Url { .. }))
        .map(|o| (o.name.clone(), o))
        .collect())
}

/// An object's name must be a relative path the run's folder can hold beside its own files.
fn check_name(name: &str, source: &str) -> Result<(), ObjectRunError> {
    let bad = |reason: &str| ObjectRunError::BadName {
        source_uri: source.to_string(),
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') {
        return Err(bad("it is empty, absolute or a folder marker"));
    }
    if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(bad("it has an empty, '.' or '..' segment"));
    }
    if RUN_FILES.contains(&name) {
        return Err(bad("the run writes a file of that name itself"));
    }
    Ok(())
}

fn planned_of(o: &ObjectRef) -> PlannedObject {
    PlannedObject {
        name: o.name.clone(),
        source: source_of(o),
        size: o.size,
        checksum: o.checksum.as_ref().map(checksum_entry),
        records: o.records,
        etag: o.etag.clone(),
        version_id: o.version_id.clone(),
        last_modified: o.last_modified.clone(),
    }
}

/// The reference to read a planned object through: its `s3://` URI as planned, or the
/// source's live URL for it.
pub(super) fn reference_of(
    p: &PlannedObject,
    live: &Live,
    run_id: &str,
) -> Result<ObjectRef, ObjectRunError> {
    let location = match p.source.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            ObjectLocation::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            }
        }
        None => match live.get(&p.name) {
            Some(o) => o.location.clone(),
            None => {
                return Err(ObjectRunError::Vanished {
                    name: p.name.clone(),
                    source_uri: p.source.clone(),
                    run_id: run_id.to_string(),
                })
            }
        },
    };
    Ok(ObjectRef {
        location,
        name: p.name.clone(),
        size: p.size,
        checksum: p.checksum.as_ref().and_then(checksum_of),
        records: p.records,
        etag: p.etag.clone(),
        version_id: p.version_id.clone(),
        last_modified: p.last_modified.clone(),
    })
}

/// Land every planned object not landed yet, `concurrency` objects at once (their parts
/// share the lander's permits). A stop lets the objects in flight finish.
#[allow(clippy::too_many_arguments)]
async fn land_as_is(
    lander: &AsIsLander,
    source: &dyn ObjectSource,
    shared: &Arc<SharedCheckpoint>,
    live: Live,
    run_id: &str,
    concurrency: usize,
    reporter: Arc<dyn Reporter>,
    stop: StopSignal,
) -> Result<(), ObjectRunError> {
    let progress = shared.progress();
    let todo: Vec<PlannedObject> = progress
        .planned
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !progress.landed.iter().any(|l| l.name == p.name))
        .collect();
    // The URLs may be re-listed once (an expiry): every object then reads the new ones.
    let live = Arc::new(Mutex::new((live, false)));
    let results = stream::iter(todo)
        .map(|planned| {
            let (live, reporter, stop) = (live.clone(), reporter.clone(), stop.clone());
            async move {
                if stop.is_stopped() {
                    return Ok(false);
                }
                let entry = land_one(lander, source, shared, &live, &planned, run_id).await?;
                reporter.report(Event::ObjectLanded {
                    name: entry.name.clone(),
                    url: entry.url.clone(),
                    bytes: entry.size,
                });
                shared.landed(entry).await?;
                Ok::<_, ObjectRunError>(true)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    // What landed is saved whatever happened next, so a rerun lands less again.
    let flushed = shared.flush().await;
    let mut stopped = false;
    for r in results {
        stopped |= !r?;
    }
    flushed?;
    if stopped {
        let p = shared.progress();
        return Err(ObjectRunError::Interrupted {
            run_id: run_id.to_string(),
            landed: p.landed.len() as u64,
            planned: p.planned.map_or(0, |v| v.len() as u64),
        });
    }
    Ok(())
}

/// Land one object; an expired presigned URL has the source list its objects once more.
async fn land_one(
    lander: &AsIsLander,
    source: &dyn ObjectSource,
    shared: &Arc<SharedCheckpoint>,
    live: &Mutex<(Live, bool)>,
    planned: &PlannedObject,
    run_id: &str,
) -> Result<crate::state::objects::ManifestObject, ObjectRunError> {
    let path = join_path(&[run_id, &planned.name]);
    let mut retried = false;
    loop {
        let reference = {
            let guard = live.lock().await;
            reference_of(planned, &guard.0, run_id)?
        };
        let resume = shared.progress().staging_of(&planned.name).cloned();
        let job = LandJob {
            object: &reference,
            path: path.clone(),
            run_id,
            resume: resume.as_ref(),
            ledger: shared.clone(),
        };
        match lander.land(job).await {
            Ok(entry) => return Ok(entry),
            Err(LandError::Object(ObjectError::Expired { .. })) if !retried => {
                retried = true;
                let mut guard = live.lock().await;
                if !guard.1 {
                    // Once per run: a second expiry is the source's problem to fix.
                    guard.1 = true;
                    guard.0 = relist(source, shared, &crate::report::SilentReporter).await?;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
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
    let progress = cp.objects.clone().unwrap_or_default();
    let planned = progress.planned.clone().unwrap_or_default();
    // --land records: the run's chunks are its objects' chunks, in plan order.
    if !progress.records.is_empty() {
        cp.files.clear();
        cp.schema_changes.clear();
        for p in &planned {
            if let Some(r) = progress.records.get(&p.name) {
                cp.files.extend(r.files.iter().cloned());
                cp.schema_changes.extend(r.schema_changes.iter().cloned());
                if r.schema.is_some() {
                    cp.schema = r.schema.clone();
                }
            }
        }
    }
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
    sink.put(
        &join_path(&[&cp.run_id, LOAD_SQL]),
        Bytes::from(crate::load::sql::render_for_run(&manifest)),
        PutMode::Overwrite,
    )
    .await?;
    let json = manifest
        .to_json()
        .map_err(|e| ObjectRunError::Internal(format!("manifest: {e}")))?;
    sink.put(
        &join_path(&[&cp.run_id, MANIFEST]),
        Bytes::from(json),
        PutMode::Overwrite,
    )
    .await?;
    sink.put(
        &join_path(&[&cp.run_id, SUCCESS_MARKER]),
        Bytes::new(),
        PutMode::Overwrite,
    )
    .await?;
    let mut ledger = CopiedLedger::load(sink).await?;
    let as_is = manifest
        .objects
        .iter()
        .map(|o| (o.source.clone(), o.version_id.clone(), o.etag.clone()));
    let as_records = planned.iter().filter_map(|p| {
        let r = progress.records.get(&p.name).filter(|r| r.done)?;
        Some((
            p.source.clone(),
            r.version_id.clone().or(p.version_id.clone()),
            r.etag.clone().or(p.etag.clone()),
        ))
    });
    ledger.add(&cp.run_id, as_is.chain(as_records).collect::<Vec<_>>());
    ledger.save(sink).await?;
    cp.status = RunStatus::Complete;
    cp.updated_at = now_rfc3339();
    store.save(cp).await?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_sit_in_a_run_folder_are_refused() {
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "./a",
            "a/../b",
            "_manifest.json",
            "load.sql",
            "_SUCCESS",
        ] {
            assert!(check_name(bad, "s3://b/p/x").is_err(), "{bad:?}");
        }
        for good in [
            "a",
            "dir/a.csv",
            "_other",
            "x/_SUCCESS",
            "part-00001.jsonl.gz",
        ] {
            assert!(check_name(good, "s3://b/p/x").is_ok(), "{good:?}");
        }
    }
}
