//! A run, from the job's lock to `_SUCCESS`: the lifecycle around the pipeline, next to the
//! state it owns.
//!
//! 1. take the job's lock (`state::lock`); a first run that fails with nothing landed leaves
//!    no state behind (`state::fresh`);
//! 2. start, resume or restart (`resume`): an unfinished run resumes under its id after its
//!    leftovers are removed;
//! 3. pull the run's units (`unit`; today one, the listing of a single pull, through the
//!    stages of `crate::pipeline`);
//! 4. commit once every unit is done (`commit`): load script, manifest (assembled by
//!    `load::manifest`), `_SUCCESS`, checkpoint complete.

mod commit;
mod lease;
mod object_as_is;
mod object_job;
mod object_plan;
mod object_progress;
mod object_records;
pub mod objects;
mod partition_commit;
mod partition_unit;
pub mod partitioned;
mod resume;
pub mod unit;
pub mod worker;

pub use crate::pipeline::{PullError, RunSummary, StopHandle, StopSignal};
pub use crate::state::run_id::new_run_id;

use crate::config::PullConfig;
use crate::load::manifest::{ManifestIdentity, ManifestStatus};
use crate::load::MANIFEST;
use crate::pipeline::UnitInput;
use crate::report::{Event, Reporter};
use crate::run_tag::RunTag;
use crate::secret::redact_url;
use crate::sink::{join_path, LockHolder, Sink};
use crate::source::client::ApiClient;
use crate::state::{CheckpointStore, StateError};
use std::sync::Arc;
use std::time::Instant;
use unit::{ListingUnit, Unit};

/// Options of one invocation that are not part of the job's definition.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Discard an unfinished run (its files are removed) instead of resuming it.
    pub restart: bool,
    /// Who the caller proved the run is at each hop (source, object id, tenant, role ARN,
    /// session name; never a secret), for the manifest; they refine what the run knows.
    pub identities: Vec<ManifestIdentity>,
    /// While another run holds the job's lock, wait up to this long for it (none: stop at
    /// once).
    pub wait_for_lock: Option<std::time::Duration>,
}

/// Run one pull into `sink`: take the job's lock, resume or start a run, pull its unit, and
/// commit it with its manifest and `_SUCCESS`.
pub async fn run(
    config: &PullConfig,
    sink: Arc<dyn Sink>,
    client: ApiClient,
    reporter: Arc<dyn Reporter>,
    options: &RunOptions,
    stop: StopSignal,
) -> Result<RunSummary, PullError> {
    config
        .output
        .encode
        .validate()
        .map_err(|e| PullError::Encode { seq: 0, source: e })?;
    sink.check().await?;
    let never_ran = crate::state::fresh::never_ran(sink.as_ref()).await;
    let lock = crate::state::lock::acquire(
        sink.as_ref(),
        &LockHolder::this_process(&config.job),
        options.wait_for_lock,
        reporter.as_ref(),
    )
    .await?;
    let outcome = run_locked(config, sink.clone(), client, reporter, options, stop).await;
    // A first run that fails with nothing landed leaves no state behind (state::fresh); an
    // interrupted one keeps its checkpoint, as the interruption message promises.
    let failed_fresh = never_ran
        && matches!(&outcome, Err(e) if !matches!(e, PullError::Interrupted { .. } | PullError::State(StateError::LostRace { .. })));
    crate::state::fresh::release(sink.as_ref(), lock, failed_fresh).await;
    outcome
}

async fn run_locked(
    config: &PullConfig,
    sink: Arc<dyn Sink>,
    client: ApiClient,
    reporter: Arc<dyn Reporter>,
    options: &RunOptions,
    stop: StopSignal,
) -> Result<RunSummary, PullError> {
    let started = Instant::now();
    let mut store = CheckpointStore::new(sink.clone());
    let source_url = redact_url(&config.source.url);

    let previous = store.load().await?;
    let opened = resume::open(
        config,
        sink.as_ref(),
        &mut store,
        previous.as_ref(),
        options.restart,
        client.run_tag().run_id(),
        reporter.as_ref(),
    )
    .await?;
    let (mut cp, resumed) = (opened.checkpoint, opened.resumed);
    let run_id = cp.run_id.clone();
    // From here on every request names the run (a resumed run's id replaces the one minted
    // for a new run; the AWS credentials are then exchanged again under the run's name).
    let tag = client.run_tag().clone();
    tag.set(&run_id);
    reporter.report(Event::RunStarted {
        run_id: run_id.clone(),
        source: source_url.clone(),
        destination: sink.url_of(&run_id),
        resumed,
        committed_chunks: cp.next_seq,
    });
    let start = resume::start_of(&cp, config)?;

    // Drift across runs: a new run's first page is compared with the columns of the last
    // completed run (a resumed run did that when it started, and recorded the outcome).
    let columnar = config.output.encode.format.columnar();
    let previous_schema =
        if columnar && cp.schema.is_none() && config.output.schema.pinned.is_none() {
            crate::load::previous::latest_manifest_before(sink.as_ref(), previous.as_ref())
                .await?
                .and_then(|m| m.schema.map(|s| (m.run_id, s)))
        } else {
            None
        };
    if let Some((run, _)) = &previous_schema {
        cp.compared_with_run = Some(run.clone());
    }

    let unit = ListingUnit(UnitInput {
        config,
        sink: sink.clone(),
        client,
        reporter: reporter.clone(),
        stop,
        store,
        checkpoint: cp,
        start,
        previous_schema: previous_schema.map(|(_, s)| s),
        chunk_stem: crate::load::PART_STEM.to_string(),
    });
    let mut done = unit.work().await?;
    let proven = with_session(&options.identities, &tag);
    let manifest =
        commit::commit(config, sink.as_ref(), &proven, &tag.user_agent(), &mut done).await?;
    let status = match done.partial {
        Some(_) => ManifestStatus::Partial,
        None => ManifestStatus::Succeeded,
    };
    let cp = &done.checkpoint;
    let summary = RunSummary {
        status: status.as_str(),
        job: config.job.clone(),
        run_id: run_id.clone(),
        resumed,
        destination: manifest.destination.clone(),
        manifest_url: sink.url_of(&join_path(&[&cp.run_id, MANIFEST])),
        pages: cp.pages,
        rows: manifest.totals.rows,
        bytes: manifest.totals.bytes,
        raw_bytes: manifest.totals.raw_bytes,
        files: manifest.files,
        schema_changes: manifest.schema_changes,
        warnings: manifest.outcome.warnings,
        page_size_shrinks: manifest.outcome.page_size_shrinks,
        // Milliseconds are all a reader needs; more digits are float noise in the JSON.
        seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    };
    if let Some(reason) = done.partial {
        return Err(PullError::Incomplete {
            reason,
            summary: Box::new(summary),
        });
    }
    reporter.report(Event::RunFinished {
        run_id,
        rows: summary.rows,
        files: summary.files.len() as u64,
        bytes: summary.bytes,
    });
    Ok(summary)
}

/// `proven` with the role session the run's requests were signed with: the last exchange's,
/// which names the run (the proof before the run started may have named another id).
fn with_session(proven: &[ManifestIdentity], tag: &RunTag) -> Vec<ManifestIdentity> {
    let mut out = proven.to_vec();
    let Some((arn, session)) = tag.session() else {
        return out;
    };
    for id in &mut out {
        let assumed = id
            .name
            .as_deref()
            .is_some_and(|n| n.contains(":assumed-role/"));
        if id.session_name.is_some() {
            id.session_name = Some(session.clone());
        }
        if assumed && arn.is_some() {
            id.name = arn.clone();
        }
    }
    out
}

#[cfg(all(test, feature = "demo"))]
mod tests {
    use super::*;
    use crate::config::{ApiAuth, OutputConfig, RetryPolicy, SourceConfig};
    use crate::encode::{EncodeOptions, Format};
    use crate::sink::local::LocalSink;
    use crate::source::paginate::Pagination;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    use url::Url;

    /// On the last page, waits (up to 5 s) for chunk 0's commit to have been reported: it
    /// must be, because that upload finished long before. Notes when it was not.
    #[derive(Default)]
    struct Probe {
        first_commit: AtomicBool,
        waited_in_vain: AtomicBool,
    }

    impl Reporter for Probe {
        fn report(&self, event: Event) {
            match event {
                Event::ChunkCommitted { seq: 0, .. } => {
                    self.first_commit.store(true, Ordering::SeqCst)
                }
                Event::PageFetched { page: 3, .. } => {
                    let deadline = std::time::Instant::now() + Duration::from_secs(5);
                    while !self.first_commit.load(Ordering::SeqCst)
                        && std::time::Instant::now() < deadline
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    if !self.first_commit.load(Ordering::SeqCst) {
                        self.waited_in_vain.store(true, Ordering::SeqCst);
                    }
                }
                _ => {}
            }
        }
    }

    // Two workers: the probe blocks the fetch task's thread while the upload side runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_are_reported_as_uploads_finish_not_at_the_end() {
        let api = crate::demo::DemoApi::start(300, 100).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(LocalSink::new(dir.path()));
        let probe = Arc::new(Probe::default());
        let config = PullConfig {
            job: "t".into(),
            source: SourceConfig {
                url: Url::parse(&api.url()).unwrap(),
                pagination: Pagination::new("cursor")
                    .with("cursor_path", "next_cursor")
                    .with("cursor_param", "cursor"),
                records_path: "items".into(),
                auth: ApiAuth::None,
                usage_plan_key: None,
                headers: Vec::new(),
                timeout: Duration::from_secs(10),
                retry: RetryPolicy::default(),
                max_pages: None,
                checks: Default::default(),
                max_page_bytes: 1 << 20,
                on_bad_page: Default::default(),
                concurrency: 1,
                read_ahead: true,
                request: Default::default(),
            },
            output: OutputConfig {
                encode: EncodeOptions::new(Format::JSONL, None),
                chunk_bytes: 1 << 30,
                chunk_rows: Some(100),
                schema: Default::default(),
            },
            upload_concurrency: 4,
            incremental: None,
            partitions: None,
        };
        let http = crate::http::client(&Default::default()).unwrap();
        let client = ApiClient::new(&config.source, http, None).await.unwrap();
        let summary = run(
            &config,
            sink,
            client,
            probe.clone(),
            &RunOptions::default(),
            StopSignal::never(),
        )
        .await
        .unwrap();
        assert_eq!(summary.rows, 300);
        assert_eq!(summary.files.len(), 3);
        assert!(
            !probe.waited_in_vain.load(Ordering::SeqCst),
            "chunk 0's commit was only reported after the listing ended"
        );
    }
}
