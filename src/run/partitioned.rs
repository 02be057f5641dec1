//! A partitioned run, as one worker takes part in it: join the job's current run (or create
//! it, or find it committed), work through partitions (`worker`), and when every partition
//! is done, commit the run once (`partition_commit`) — whichever worker gets there.
//!
//! There is no coordinator: the run record, the leases and the commit lease are objects on
//! the sink, changed only with conditional puts (`state::partitions`).
//!
//! **The run key** says which run an invocation belongs to. Workers started by one engine
//! run (a Spark application, a Kubernetes Job, a CI workflow run, every attempt of it) share
//! one key. A worker whose key the committed run carries finds nothing left and exits 0; it
//! must not start a second run of the job just because it started late. A worker with
//! another key (tomorrow's schedule) starts the next run once the current one is committed,
//! and joins the current one while it is unfinished (a rerun after failed partitions), its
//! key added to the run's. A plain `pull` (no `--worker`) needs no key: it works every
//! partition itself, so it never arrives late; without a key it starts a new run after a
//! committed one, as a single pull does.

use super::lease::WorkerIdentity;
use super::partition_commit::{commit_when_done, CommitEnd};
use super::worker::{work_partitions, LoopEnd, WorkerContext, WorkerOptions, WorkerReport};
use super::RunOptions;
use crate::config::PullConfig;
use crate::partition::{PartitionError, PartitionSpec};
use crate::pipeline::{PullError, StopSignal};
use crate::report::{Event, Reporter};
use crate::sink::{LockHolder, Sink};
use crate::source::client::ApiClient;
use crate::state::partitions::{
    create_run, read_run_tagged, update_run, RunRecord, RUN_RECORD_VERSION,
};
use crate::state::run_id::{new_run_id, now_rfc3339};
use crate::state::{RunStatus, StateError};
use std::sync::Arc;
use std::time::Instant;

/// Attempts at joining or creating the run record when other workers change it meanwhile.
const OPEN_ATTEMPTS: u32 = 20;

/// Why a worker could not take part, or its run did not finish.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error("partitions: {0}")]
    Partition(#[from] PartitionError),
    #[error("--worker needs a run key, so that a worker arriving after the run was committed does not start another: pass --run-key KEY (the same for every worker of this run, e.g. the Spark application id or the Kubernetes Job's uid), or set GATELAKE_RUN_KEY; in GitHub Actions GITHUB_RUN_ID is used")]
    NeedsRunKey,
    #[error("the job {job} is not partitioned: --worker and --shard need a partition spec (--window …, --keys …, --ranges N, or a [partitions] table in the job file)")]
    NotPartitioned { job: String },
    #[error("--since-field (an incremental job) cannot be split into partitions yet: each partition would keep its own watermark and the run none. Drop --since-field and split by --window-start/--window-end (the window is the increment), or drop the partition spec")]
    IncrementalPartitioned,
    #[error("the unfinished run {run_id} of this job was split differently (its partition spec fingerprint is {saved}, this invocation's is {configured}). Run its workers with the original partition settings, or pass --restart to discard it")]
    SpecChanged {
        run_id: String,
        saved: String,
        configured: String,
    },
    #[error("run {run_id}: {} of {total} partition(s) failed: {}. The run has no _SUCCESS; run the workers again (the same command) to retry the failed partitions", .failed.len(), list_failed(.failed))]
    PartitionsFailed {
        run_id: String,
        total: usize,
        failed: Vec<super::worker::FailedPartition>,
        report: Box<WorkerReport>,
    },
    #[error("interrupted: run {run_id}: this worker let its partition go (its checkpoint is saved); run the same command again to resume")]
    Interrupted {
        run_id: String,
        report: Box<WorkerReport>,
    },
}

fn list_failed(failed: &[super::worker::FailedPartition]) -> String {
    const SHOWN: usize = 5;
    let mut text = failed
        .iter()
        .take(SHOWN)
        .map(|f| format!("{} ({})", f.id, f.error))
        .collect::<Vec<_>>()
        .join("; ");
    if failed.len() > SHOWN {
        text.push_str(&format!(" and {} more", failed.len() - SHOWN));
    }
    text
}

impl WorkerError {
    /// The report of a worker that took part but whose run did not finish.
    pub fn report(&self) -> Option<&WorkerReport> {
        match self {
            WorkerError::PartitionsFailed { report, .. }
            | WorkerError::Interrupted { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// How this invocation joined the run.
enum Joined {
    Run(RunRecord),
    /// The run of this key was committed already.
    NothingLeft(RunRecord),
}

/// Take part in the job's partitioned run as one worker (a plain pull is one worker that
/// takes every partition).
pub async fn run(
    config: &PullConfig,
    sink: Arc<dyn Sink>,
    client: ApiClient,
    reporter: Arc<dyn Reporter>,
    options: &RunOptions,
    worker: &WorkerOptions,
    stop: StopSignal,
) -> Result<WorkerReport, WorkerError> {
    let started = Instant::now();
    let Some(spec) = config.partitions.as_ref() else {
        return Err(WorkerError::NotPartitioned {
            job: config.job.clone(),
        });
    };
    if config.incremental.is_some() {
        return Err(WorkerError::IncrementalPartitioned);
    }
    if worker.worker && worker.run_key.is_none() {
        return Err(WorkerError::NeedsRunKey);
    }
    config
        .output
        .encode
        .validate()
        .map_err(|e| PullError::Encode { seq: 0, source: e })?;
    sink.check().await.map_err(PullError::from)?;
    let holder = LockHolder::this_process(&config.job);
    let me = WorkerIdentity {
        name: worker
            .worker_id
            .clone()
            .unwrap_or_else(|| format!("{}/{}", holder.host, holder.pid)),
        holder,
        started: time::OffsetDateTime::now_utc(),
    };
    let joined = join(
        config,
        spec,
        sink.as_ref(),
        &client,
        worker,
        options.restart,
        reporter.as_ref(),
    )
    .await?;
    let mut report = WorkerReport {
        status: "succeeded",
        worker: me.name.clone(),
        job: config.job.clone(),
        run_id: String::new(),
        run_key: worker.run_key.clone(),
        partitions: Vec::new(),
        committed: false,
        failed: Vec::new(),
        partitions_total: 0,
        partitions_done: 0,
        manifest_url: None,
        run_rows: None,
        seconds: 0.0,
    };
    let record = match joined {
        Joined::NothingLeft(record) => {
            report.status = "nothing_left";
            report.run_id = record.run_id.clone();
            report.partitions_total = record.partitions.len();
            report.partitions_done = record.partitions.len();
            report.manifest_url = Some(manifest_url(sink.as_ref(), &record.run_id));
            report.seconds = seconds(started);
            return Ok(report);
        }
        Joined::Run(record) => record,
    };
    report.run_id = record.run_id.clone();
    report.partitions_total = record.partitions.len();
    reporter.report(Event::RunStarted {
        run_id: record.run_id.clone(),
        source: crate::secret::redact_url(&config.source.url),
        destination: sink.url_of(&record.run_id),
        resumed: false,
        committed_chunks: 0,
    });
    let ctx = WorkerContext {
        config,
        sink: sink.clone(),
        client,
        reporter: reporter.clone(),
        options: worker,
        me,
        stop,
    };
    let end = loop {
        let ended = work_partitions(&ctx, &record, &mut report.partitions).await?;
        if let LoopEnd::Interrupted = ended {
            break CommitEnd::Interrupted;
        }
        match commit_when_done(&ctx, &record, &options.identities).await? {
            CommitEnd::Unsettled => continue,
            end => break end,
        }
    };
    report.seconds = seconds(started);
    match end {
        CommitEnd::Committed { by_me, totals } => {
            report.committed = by_me;
            report.partitions_done = record.partitions.len();
            report.manifest_url = Some(manifest_url(sink.as_ref(), &record.run_id));
            report.run_rows = totals.as_ref().map(|t| t.rows);
            if let Some(t) = totals.filter(|_| by_me) {
                reporter.report(Event::RunFinished {
                    run_id: record.run_id.clone(),
                    rows: t.rows,
                    files: t.files,
                    bytes: t.bytes,
                });
            }
            Ok(report)
        }
        CommitEnd::NotYet { done } => {
            report.status = "shard_done";
            report.partitions_done = done;
            Ok(report)
        }
        CommitEnd::Failed { done, failed } => {
            report.status = "failed";
            report.partitions_done = done;
            report.failed = failed.clone();
            Err(WorkerError::PartitionsFailed {
                run_id: record.run_id.clone(),
                total: record.partitions.len(),
                failed,
                report: Box::new(report),
            })
        }
        CommitEnd::Unsettled | CommitEnd::Interrupted => {
            report.status = "interrupted";
            Err(WorkerError::Interrupted {
                run_id: record.run_id.clone(),
                report: Box::new(report),
            })
        }
    }
}

fn seconds(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

fn manifest_url(sink: &dyn Sink, run_id: &str) -> String {
    sink.url_of(&crate::sink::join_path(&[run_id, crate::load::MANIFEST]))
}

/// Find the run this invocation belongs to: join the unfinished one, create one, or find
/// its key's run committed (see the module docs for the rules).
async fn join(
    config: &PullConfig,
    spec: &PartitionSpec,
    sink: &dyn Sink,
    client: &ApiClient,
    worker: &WorkerOptions,
    restart: bool,
    reporter: &dyn Reporter,
) -> Result<Joined, WorkerError> {
    let fingerprint = spec.fingerprint();
    let key = worker.run_key.as_deref();
    let mut restarted = false;
    for _ in 0..OPEN_ATTEMPTS {
        let current = read_run_tagged(sink).await.map_err(PullError::from)?;
        let replace = match current {
            None => None,
            Some((record, etag)) => {
                let mine = key.is_some_and(|k| record.has_key(k));
                match record.status {
                    RunStatus::Complete if mine => return Ok(Joined::NothingLeft(record)),
                    RunStatus::Complete => Some((record, etag)),
                    RunStatus::Running if restart && !restarted => {
                        reporter.report(Event::Warning {
                            message: format!(
                                "--restart: discarding the unfinished run {}",
                                record.run_id
                            ),
                        });
                        discard_run_files(sink, &record.run_id).await?;
                        restarted = true;
                        Some((record, etag))
                    }
                    RunStatus::Running => {
                        if record.spec_fingerprint != fingerprint {
                            return Err(WorkerError::SpecChanged {
                                run_id: record.run_id,
                                saved: record.spec_fingerprint,
                                configured: fingerprint,
                            });
                        }
                        match key {
                            Some(k) if !mine => {
                                let mut joined = record.clone();
                                joined.joined_keys.push(k.to_string());
                                match update_run(sink, &joined, &etag).await {
                                    Ok(_) => return Ok(Joined::Run(joined)),
                                    Err(StateError::LostRace { .. }) => continue,
                                    Err(e) => return Err(PullError::from(e).into()),
                                }
                            }
                            _ => return Ok(Joined::Run(record)),
                        }
                    }
                }
            }
        };
        // A new run: the partitions are planned once, here, and every worker reads them.
        let partitions = spec.plan(&config.source, client).await?;
        let record = RunRecord {
            version: RUN_RECORD_VERSION,
            job: config.job.clone(),
            run_id: new_run_id(time::OffsetDateTime::now_utc()),
            run_key: key.map(str::to_string),
            joined_keys: Vec::new(),
            spec_fingerprint: fingerprint.clone(),
            status: RunStatus::Running,
            partitions,
            created_at: now_rfc3339(),
            committed_at: None,
        };
        let written = match &replace {
            None => create_run(sink, &record).await,
            Some((_, etag)) => update_run(sink, &record, etag).await,
        };
        match written {
            Ok(_) => {
                tracing::info!(run_id = %record.run_id, partitions = record.partitions.len(), "created the partitioned run");
                return Ok(Joined::Run(record));
            }
            // Another worker created (or replaced) it first: read the winner's.
            Err(StateError::LostRace { .. }) => continue,
            Err(e) => return Err(PullError::from(e).into()),
        }
    }
    Err(PullError::Internal(format!(
        "the run record {} kept changing while this worker tried to join it ({OPEN_ATTEMPTS} attempts)",
        sink.url_of(crate::state::partitions::RUN_RECORD_PATH)
    ))
    .into())
}

/// `--restart`: remove an unfinished run's files, so no reader mistakes them for data.
async fn discard_run_files(sink: &dyn Sink, run_id: &str) -> Result<(), PullError> {
    for object in sink.list(&format!("{run_id}/")).await? {
        sink.delete(&object.path).await?;
    }
    Ok(())
}
