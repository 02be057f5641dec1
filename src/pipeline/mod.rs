//! One pull, from the job's lock to `_SUCCESS`, resumable at every chunk. Three stages run at
//! once, joined by bounded channels:
//!
//! ```text
//! fetch (async)  ──pages (cap 4)──►  encode (blocking thread)  ──chunks (cap 2)──►  upload (async, N at once)
//!                                                                                       │
//!                                                        checkpoint (after each contiguous commit)
//! ```
//!
//! - The fetch stage asks for the next page as soon as the current page's next request is
//!   known, before its records are encoded, so a sequential (cursor) API is never waiting on
//!   compression: the page channel holds a few pages, so fetching runs ahead of encoding.
//! - With `--concurrency N`, offset and page-number pulls keep up to N requests in flight
//!   for the pages predicted to come next; pages are still located and handed on in order,
//!   and a wrong prediction only costs the cancelled requests (see `fetch_stage`).
//! - The bounded channels are the backpressure: when compression or upload is the slow
//!   stage, fetch waits, and memory stays at a few pages plus a few chunks however large the
//!   pull is.
//! - Every chunk carries its resume point: the request after its last page. Chunks upload in
//!   parallel, but the checkpoint only advances over the contiguous prefix of committed
//!   chunks, so whatever is killed, the checkpoint names a request from which resuming loses
//!   and repeats nothing: pages before it are in committed chunks, pages after it are not.
//! - A stage whose downstream has gone away stops quietly; only the stage that actually failed
//!   reports an error, so the user sees the cause, not its echoes.
//! - The last, partial chunk is written only when the fetch stage says the listing ended; a
//!   stop (Ctrl-C, an error) abandons it, and a resumed run fetches its pages again.

mod encode;
mod error;
mod fetch;
mod listing;
mod messages;
mod stop;
mod summary;
mod upload;

pub use error::PullError;
pub use stop::{StopHandle, StopSignal};
pub use summary::RunSummary;

use encode::{encode_stage, EncodeInput};
use fetch::{fetch_stage, CommittedSoFar, FetchInput};
use messages::{PageMsg, UploadMsg};
use upload::{upload_stage, UploadInput};

use crate::config::PullConfig;
use crate::encode::chunk::ChunkLimits;
use crate::encode::Format;
use crate::load::manifest::{
    Manifest, ManifestIdentity, ManifestOutcome, ManifestSchemaPolicy, ManifestSource,
    ManifestStatus, MANIFEST_VERSION,
};
use crate::load::{LOAD_SQL, MANIFEST, SUCCESS_MARKER};
use crate::report::{Event, Reporter};
use crate::secret::redact_url;
use crate::sink::{join_path, LockHolder, PutMode, Sink};
use crate::source::client::ApiClient;
use crate::state::checkpoint::{restore_url, save_url, ListingNotes};
pub use crate::state::run_id::new_run_id;
use crate::state::run_id::{now_rfc3339, rfc3339};
use crate::state::watermark::{since_value, WatermarkTracker};
use crate::state::{Checkpoint, CheckpointStore, RunStatus, StateError, CHECKPOINT_VERSION};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

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

/// Run one pull into `sink`: take the job's lock, resume or start a run, and finish it with
/// its manifest and `_SUCCESS`.
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
    let extension = config.output.encode.extension();
    let source_url = redact_url(&config.source.url);

    let previous = store.load().await?;
    let unfinished = previous
        .as_ref()
        .filter(|cp| cp.status == RunStatus::Running);
    let (mut cp, resumed) = match unfinished {
        Some(cp) if !options.restart => {
            if cp.source_url != source_url {
                return Err(PullError::SourceChanged {
                    run_id: cp.run_id.clone(),
                    saved: cp.source_url.clone(),
                    configured: source_url,
                });
            }
            remove_leftovers(sink.as_ref(), &cp.run_id, cp.next_seq, reporter.as_ref()).await?;
            (cp.clone(), true)
        }
        _ => {
            if let Some(old) = unfinished {
                // --restart: the abandoned run's files go, so no reader mistakes them for data.
                remove_leftovers(sink.as_ref(), &old.run_id, 0, reporter.as_ref()).await?;
                reporter.report(Event::Warning {
                    message: format!("--restart: discarded the unfinished run {}", old.run_id),
                });
            }
            let since = previous.as_ref().and_then(|p| match p.status {
                RunStatus::Complete => p.watermark.clone(),
                RunStatus::Running => p.since.clone(),
            });
            let paginator = config.source.pagination.paginator();
            let mut first = paginator.first(&config.source.url);
            if let (Some(inc), Some(since)) = (&config.incremental, &since) {
                first = crate::source::paginate::with_query_param(
                    &first,
                    &inc.param,
                    &since_value(since, inc.lag)?,
                );
            }
            let now = time::OffsetDateTime::now_utc();
            let cp = Checkpoint {
                version: CHECKPOINT_VERSION,
                job: config.job.clone(),
                run_id: new_run_id(now),
                status: RunStatus::Running,
                source_url: source_url.clone(),
                next_seq: 0,
                next_request: Some(save_url(&first)),
                last_request: None,
                pages: 0,
                files: Vec::new(),
                schema: None,
                schema_changes: Vec::new(),
                compared_with_run: None,
                rejected: Vec::new(),
                first_request: Some(save_url(&first)),
                since,
                watermark: None,
                listing: ListingNotes::default(),
                started_at: rfc3339(now),
                updated_at: rfc3339(now),
            };
            // Saved before the first request: a run killed at any point after this resumes
            // under the same id instead of leaving an orphan folder.
            store.save(&cp).await?;
            (cp, false)
        }
    };
    let run_id = cp.run_id.clone();
    reporter.report(Event::RunStarted {
        run_id: run_id.clone(),
        source: source_url.clone(),
        destination: sink.url_of(&run_id),
        resumed,
        committed_chunks: cp.next_seq,
    });

    let start = match &cp.next_request {
        Some(saved) => Some(restore_url(saved, &config.source.url).map_err(|reason| {
            PullError::SourceChanged {
                run_id: run_id.clone(),
                saved: saved.clone(),
                configured: format!("{source_url} ({reason})"),
            }
        })?),
        None => None,
    };

    // Drift across runs: a new run's first page is compared with the columns of the last
    // completed run (a resumed run did that when it started, and recorded the outcome).
    let columnar = config.output.encode.format != Format::Jsonl;
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

    let (page_tx, page_rx) = mpsc::channel::<PageMsg>(4);
    let (chunk_tx, chunk_rx) = mpsc::channel::<UploadMsg>(2);
    // Each stage is its own task, so they run on different threads: a slow page parse never
    // delays reporting or checkpointing a finished upload, and vice versa.
    let fetch = tokio::spawn(fetch_stage(FetchInput {
        source: config.source.clone(),
        client,
        reporter: reporter.clone(),
        pages: page_tx,
        start,
        before: CommittedSoFar {
            pages: cp.pages,
            notes: cp.listing.clone(),
            rows: cp.rows(),
        },
        stop: stop.clone(),
    }));
    let encode = {
        let tracker = match &config.incremental {
            Some(inc) => Some(WatermarkTracker::new(
                &inc.field,
                inc.lag,
                cp.since.as_ref(),
                cp.watermark.as_ref(),
            )?),
            None => None,
        };
        let input = EncodeInput {
            options: config.output.encode,
            limits: ChunkLimits {
                max_bytes: config.output.chunk_bytes,
                max_rows: config.output.chunk_rows,
            },
            first_seq: cp.next_seq,
            schema: cp.schema.clone(),
            schema_options: config.output.schema.clone(),
            previous: previous_schema.map(|(_, s)| s),
            tracker,
            pages: page_rx,
            chunks: chunk_tx,
        };
        tokio::task::spawn_blocking(move || encode_stage(input))
    };
    let upload = tokio::spawn(upload_stage(UploadInput {
        sink: sink.clone(),
        store,
        checkpoint: cp,
        extension: extension.clone(),
        concurrency: config.upload_concurrency.max(1),
        reporter: reporter.clone(),
        chunks: chunk_rx,
    }));

    let (fetched, encoded, uploaded) = tokio::join!(fetch, encode, upload);
    let joined =
        |stage: &str, e: tokio::task::JoinError| PullError::Internal(format!("{stage} task: {e}"));
    // The stage that failed is the cause; the others only saw a closed channel.
    let end = fetched.map_err(|e| joined("fetch", e))??;
    encoded.map_err(|e| joined("encoder", e))??;
    let (mut store, mut cp) = uploaded.map_err(|e| joined("upload", e))??;
    if !end.ended {
        return Err(PullError::Interrupted {
            run_id,
            chunks: cp.next_seq,
            rows: cp.rows(),
        });
    }

    // Every page is in a committed chunk now; the fetch stage's notes are the run's.
    cp.listing = end.notes;
    let verdict = listing::judge(&config.source, &cp.listing, end.capped, cp.rejected.len());
    for w in verdict.warnings {
        reporter.report(Event::Warning { message: w.clone() });
        if !cp.listing.warnings.contains(&w) {
            cp.listing.warnings.push(w);
        }
    }
    let status = match verdict.partial {
        Some(_) => ManifestStatus::Partial,
        None => ManifestStatus::Succeeded,
    };
    let manifest = finalize(
        config,
        sink.as_ref(),
        &mut store,
        &mut cp,
        &options.identities,
        status,
        verdict.partial.iter().cloned().collect(),
    )
    .await?;
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
    if let Some(reason) = verdict.partial {
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

/// Remove a run's objects that no checkpoint vouches for: data files numbered `from_seq` or
/// above (written by an interrupted attempt after its last checkpoint), or all of them.
async fn remove_leftovers(
    sink: &dyn Sink,
    run_id: &str,
    from_seq: u64,
    reporter: &dyn Reporter,
) -> Result<(), PullError> {
    sink.remove_incomplete(run_id).await?;
    let mut removed = 0;
    for object in sink.list(&format!("{run_id}/")).await? {
        let name = object.path.rsplit('/').next().unwrap_or(&object.path);
        let leftover = match crate::load::part_seq(name) {
            Some(seq) => seq >= from_seq,
            // Manifest, marker and anything else: only when the whole run is discarded.
            None => from_seq == 0,
        };
        if leftover {
            sink.delete(&object.path).await?;
            removed += 1;
        }
    }
    if removed > 0 && from_seq > 0 {
        reporter.report(Event::Warning {
            message: format!("resuming run {run_id}: removed {removed} file(s) written after its last checkpoint"),
        });
    }
    Ok(())
}

/// Write the load script and the manifest; for a run that succeeded, then `_SUCCESS`, and
/// mark the checkpoint complete. A partial run's checkpoint stays running (with its notes
/// saved), so a rerun resumes it; `partial_reasons` go into its manifest's warnings only.
async fn finalize(
    config: &PullConfig,
    sink: &dyn Sink,
    store: &mut CheckpointStore,
    cp: &mut Checkpoint,
    proven: &[ManifestIdentity],
    status: ManifestStatus,
    partial_reasons: Vec<String>,
) -> Result<Manifest, PullError> {
    let succeeded = status == ManifestStatus::Succeeded;
    // A run that delivered nothing new leaves the watermark where it was.
    if succeeded && cp.watermark.is_none() {
        cp.watermark = cp.since.clone();
    }
    let watermark = cp.watermark.as_ref().or(cp.since.as_ref());
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        tool: concat!("gatelake ", env!("CARGO_PKG_VERSION")).to_string(),
        job: config.job.clone(),
        run_id: cp.run_id.clone(),
        source: ManifestSource {
            url: cp.source_url.clone(),
            pagination: config.source.pagination.name().to_string(),
            records_path: config.source.records_path.clone(),
            auth: config.source.auth.kind().to_string(),
            pages: cp.pages,
            first_request: cp.first_request.clone(),
            last_request: cp.last_request.clone(),
        },
        destination: sink.url_of(&cp.run_id),
        format: config.output.encode.format,
        compression: config.output.encode.compression,
        extension: config.output.encode.extension(),
        schema: cp.schema.clone(),
        totals: Manifest::totals_of(&cp.files),
        files: cp.files.clone(),
        started_at: cp.started_at.clone(),
        finished_at: now_rfc3339(),
        identities: identities(config, sink, proven),
        schema_policy: ManifestSchemaPolicy {
            on_drift: config.output.schema.on_drift,
            flatten_depth: config.output.schema.flatten_depth,
            pinned: config.output.schema.pinned.is_some(),
            compared_with_run: cp.compared_with_run.clone(),
        },
        schema_changes: cp.schema_changes.clone(),
        watermark: watermark.map(|w| serde_json::json!({"field": w.field, "max": w.max})),
        load_sql: Some(join_path(&[&cp.run_id, LOAD_SQL])),
        rejected: cp.rejected.clone(),
        outcome: ManifestOutcome {
            status,
            warnings: cp
                .listing
                .warnings
                .iter()
                .cloned()
                .chain(partial_reasons)
                .collect(),
            page_size_shrinks: cp.listing.page_size_shrinks,
        },
    };
    // The load script, then the manifest, then `_SUCCESS`: a reader that waits for the
    // marker finds all three.
    sink.put(
        &join_path(&[&cp.run_id, LOAD_SQL]),
        Bytes::from(crate::load::sql::render_for_run(&manifest)),
        PutMode::Overwrite,
    )
    .await?;
    let json = manifest
        .to_json()
        .map_err(|e| PullError::Internal(format!("manifest: {e}")))?;
    sink.put(
        &join_path(&[&cp.run_id, MANIFEST]),
        Bytes::from(json),
        PutMode::Overwrite,
    )
    .await?;
    if succeeded {
        sink.put(
            &join_path(&[&cp.run_id, SUCCESS_MARKER]),
            Bytes::new(),
            PutMode::Overwrite,
        )
        .await?;
        cp.status = RunStatus::Complete;
    }
    cp.updated_at = now_rfc3339();
    store.save(cp).await?;
    Ok(manifest)
}

/// The identities a run used, by kind and name, never a secret: what the run knows, refined
/// by what the caller `proven` (an entry for the same role adds to it; another role is added).
fn identities(
    config: &PullConfig,
    sink: &dyn Sink,
    proven: &[ManifestIdentity],
) -> Vec<ManifestIdentity> {
    let mut out = vec![ManifestIdentity {
        role: "api".into(),
        kind: config.source.auth.kind().into(),
        name: match &config.source.auth {
            crate::config::ApiAuth::Iam { region } => Some(format!("execute-api in {region}")),
            _ => None,
        },
        ..Default::default()
    }];
    if let Some(kind) = sink.identity_kind() {
        out.push(ManifestIdentity {
            role: "storage".into(),
            kind: kind.into(),
            ..Default::default()
        });
    }
    for p in proven {
        match out.iter_mut().find(|o| o.role == p.role) {
            Some(o) => {
                o.name = p.name.clone().or(o.name.take());
                o.source = p.source.clone();
                o.object_id = p.object_id.clone();
                o.tenant = p.tenant.clone();
                o.role_arn = p.role_arn.clone();
                o.session_name = p.session_name.clone();
            }
            None => out.push(p.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiAuth, OutputConfig, RetryPolicy, SourceConfig};
    use crate::encode::{EncodeOptions, Format};
    use crate::sink::local::LocalSink;
    use crate::source::paginate::{CursorSource, Pagination, PaginationConfig};
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
                pagination: Pagination {
                    style: PaginationConfig::Cursor {
                        source: CursorSource::Body("next_cursor".into()),
                        param: "cursor".into(),
                    },
                    stop: Default::default(),
                },
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
            },
            output: OutputConfig {
                encode: EncodeOptions::new(Format::Jsonl, None),
                chunk_bytes: 1 << 30,
                chunk_rows: Some(100),
                schema: Default::default(),
            },
            upload_concurrency: 4,
            incremental: None,
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
