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

mod error;
mod listing;
mod messages;
mod stop;
mod summary;

pub use error::PullError;
pub use stop::{StopHandle, StopSignal};
pub use summary::RunSummary;

use messages::{PageMsg, ReadyChunk, Resume, UploadMsg};

use crate::config::{BadPagePolicy, PullConfig};
use crate::encode::chunk::{ChunkLimits, ChunkWriter};
use crate::encode::drift::{SchemaChange, SchemaOptions};
use crate::encode::schema::Schema;
use crate::encode::Format;
use crate::load::manifest::{
    Manifest, ManifestIdentity, ManifestOutcome, ManifestSchemaPolicy, ManifestSource,
    ManifestStatus, MANIFEST_VERSION,
};
use crate::load::{LOAD_SQL, MANIFEST, SUCCESS_MARKER};
use crate::report::{Event, Reporter};
use crate::secret::redact_url;
use crate::sink::{join_path, LockHolder, PutMode, Sink, SinkError};
use crate::source::client::{ApiClient, FetchedPage, SourceError};
use crate::source::extract::{ExtractError, ExtractedPage, JsonDoc};
use crate::source::paginate::{
    next_after_bad_page, next_request, Blind, PageView, PaginateError, Paginator,
};
use crate::state::checkpoint::{restore_url, save_url, ListingNotes, Watermark};
use crate::state::entries::{ManifestFile, RejectedPage};
pub use crate::state::run_id::new_run_id;
use crate::state::run_id::{now_rfc3339, rfc3339};
use crate::state::watermark::{since_value, WatermarkTracker};
use crate::state::{Checkpoint, CheckpointStore, RunStatus, StateError, CHECKPOINT_VERSION};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use url::Url;

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

/// The data-file name of chunk `seq`.
fn part_name(seq: u64, extension: &str) -> String {
    format!("part-{seq:05}.{extension}")
}

/// The sequence number of a data-file name (`part-00012.jsonl.gz` → 12).
fn part_seq(name: &str) -> Option<u64> {
    name.strip_prefix("part-")?.split('.').next()?.parse().ok()
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
    let fetch = tokio::spawn(fetch_stage(
        config.source.clone(),
        client,
        reporter.clone(),
        page_tx,
        start,
        (cp.pages, cp.listing.clone(), cp.rows()),
        stop.clone(),
    ));
    let encode = {
        let options = config.output.encode;
        let limits = ChunkLimits {
            max_bytes: config.output.chunk_bytes,
            max_rows: config.output.chunk_rows,
        };
        let first_seq = cp.next_seq;
        let schema = cp.schema.clone();
        let tracker = match &config.incremental {
            Some(inc) => Some(WatermarkTracker::new(
                &inc.field,
                inc.lag,
                cp.since.as_ref(),
                cp.watermark.as_ref(),
            )?),
            None => None,
        };
        let schema_options = config.output.schema.clone();
        let previous = previous_schema.map(|(_, s)| s);
        tokio::task::spawn_blocking(move || {
            encode_stage(
                options,
                limits,
                first_seq,
                schema,
                (schema_options, previous),
                tracker,
                page_rx,
                chunk_tx,
            )
        })
    };
    let upload = tokio::spawn(upload_stage(
        sink.clone(),
        store,
        cp,
        extension.clone(),
        config.upload_concurrency.max(1),
        reporter.clone(),
        chunk_rx,
    ));

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
        let leftover = match part_seq(name) {
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

/// A page request started ahead of its turn (`--concurrency`): the URL asked for and the task
/// fetching it. Dropping it cancels the request, so a discarded guess or a stopped run leaves
/// nothing running.
struct InFlight {
    url: Url,
    task: tokio::task::JoinHandle<Result<FetchedPage, SourceError>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Walk the pages from `start` (none: the listing already ended): fetch, locate records,
/// work out the next request, hand the page on. Returns whether the listing ended (false:
/// stopped by the signal or by a downstream failure).
///
/// With `source.concurrency` above 1 and a style that can predict its next requests (offset,
/// page number), the requests for the pages after the current one are started before it
/// arrives, up to that many in flight. Pages are still located and handed on one by one, in
/// order, each with the next request worked out from the page itself; a prediction is used
/// only when it is exactly that request. When it is not (a short page, a page size halved
/// after a 504, an API serving fewer records than asked for) or the listing ends, the
/// requests ahead are cancelled and their answers, even errors, are never looked at. So
/// records, their order and the resume points are the same as one page at a time.
async fn fetch_stage(
    source: crate::config::SourceConfig,
    client: ApiClient,
    reporter: Arc<dyn Reporter>,
    pages: mpsc::Sender<PageMsg>,
    start: Option<Url>,
    // Pages, listing notes and records in committed chunks: a resumed run counts on from
    // there, so a `--total-path` rule still compares the whole run's records with the total.
    before: (u64, ListingNotes, u64),
    mut stop: StopSignal,
) -> Result<listing::FetchEnd, PullError> {
    let source = &source;
    let client = Arc::new(client);
    let paginator: Arc<dyn Paginator> = Arc::from(source.pagination.paginator());
    let stop_rules = Arc::new(source.pagination.stop.clone());
    let origin = Arc::new(source.url.clone());
    let records_path: Arc<str> = Arc::from(source.records_path.as_str());
    let concurrency = source.concurrency.max(1);
    // The page size as 504s shrink it and successes grow it back, from the configured size
    // (never from the size a resumed request was saved with).
    let sizing = crate::source::page_size::PageSizing::new(paginator.clone()).map(Arc::new);
    let start_fetch = |url: Url, page_no: u64| {
        let (client, reporter, sizing) = (client.clone(), reporter.clone(), sizing.clone());
        let task_url = url.clone();
        InFlight {
            url,
            task: tokio::spawn(async move {
                client
                    .fetch_shrinking(&task_url, page_no, reporter.as_ref(), sizing.as_deref())
                    .await
            }),
        }
    };
    // Requests in flight, in page order: the front one is the current page's.
    let mut window: VecDeque<InFlight> = VecDeque::new();
    // What predictions go by: the records a full page held (the last page that had a next
    // one), and the listing's total once a page gave it (`--total-path`).
    let mut full_page: Option<u64> = None;
    let mut total: Option<u64> = None;

    let mut next = start;
    let (mut page_no, mut notes, rows) = before;
    // A checkpoint from before the notes were kept: the records landed are the best count.
    if notes.received == 0 {
        notes.received = rows;
    }
    let mut records_so_far = notes.received;
    let shrinks_before = notes.page_size_shrinks;
    let stopped = |notes: ListingNotes| listing::FetchEnd {
        ended: false,
        capped: None,
        notes,
    };
    let mut capped = None;
    while let Some(url) = next.take() {
        if let Some(m) = source.max_pages.filter(|m| page_no >= *m) {
            // There is a next page: the listing is cut here, not ended.
            capped = Some(m);
            break;
        }
        if stop.is_stopped() {
            return Ok(stopped(notes));
        }
        let url = match &sizing {
            Some(sizing) => sizing.apply(&url),
            None => url,
        };
        page_no += 1;
        if window.front().is_some_and(|f| f.url != url) {
            // Not the request that was predicted: every guess after the last page was wrong.
            window.clear();
        }
        if window.is_empty() {
            window.push_back(start_fetch(url.clone(), page_no));
        }
        while window.len() < concurrency {
            let ahead = window.len() as u64;
            if source.max_pages.is_some_and(|m| page_no + ahead > m) {
                break;
            }
            // Past the total, a walk one page at a time would not ask (full pages assumed).
            if let (Some(total), Some(per_page)) = (total, full_page) {
                if records_so_far.saturating_add(ahead.saturating_mul(per_page)) >= total {
                    break;
                }
            }
            // A prediction only changes the query of a URL already on the origin; checked
            // anyway, as every next request is, before anything is sent.
            let Some(predicted) = window
                .back()
                .and_then(|last| paginator.predict(&last.url, full_page))
                .map(|p| sizing.as_ref().map_or_else(|| p.clone(), |s| s.apply(&p)))
                .filter(|p| crate::source::paginate::same_origin(&origin, p))
            else {
                break;
            };
            window.push_back(start_fetch(predicted, page_no + ahead));
        }
        let Some(mut current) = window.pop_front() else {
            return Err(PullError::Internal("no request for the next page".into()));
        };
        let skip = source.on_bad_page == BadPagePolicy::Skip;
        let fetched = tokio::select! {
            f = &mut current.task => f.map_err(|e| PullError::Internal(format!("page fetch task: {e}")))?,
            _ = stop.stopped() => return Ok(stopped(notes)),
        };
        drop(current);
        let fetched = match fetched {
            Ok(f) => f,
            Err(SourceError::TooLarge { limit, .. }) if skip => {
                // Not read whole: set aside without a body, if the next page can be found.
                let reason = format!("larger than --max-page-bytes ({limit} bytes)");
                let blind =
                    next_after_bad_page(&*paginator, &origin, &url, &HeaderMap::new(), None)
                        .map_err(|source| PullError::Paginate {
                            page: page_no,
                            url: redact_url(&url),
                            source,
                        })?;
                let msg = rejected_msg(
                    page_no,
                    &url,
                    blind,
                    reason,
                    None,
                    "next request",
                    notes.clone(),
                )?;
                if pages.send(msg.0).await.is_err() {
                    return Ok(stopped(notes));
                }
                next = msg.1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // The URL that answered: a 504 may have made the client ask for smaller pages.
        let url = fetched.url.clone();
        let shown = redact_url(&url);
        let body_len = fetched.body.len() as u64;
        // A skipped page needs its body and headers after the parser has consumed the page.
        let kept = skip.then(|| (fetched.body.clone(), fetched.headers.clone()));
        // Parsing a page is CPU work that must not hold up other tasks. On the pull's
        // multi-threaded runtime it runs right here, with this worker's other tasks handed to
        // another (`block_in_place`): the next request of a cursor listing waits for this
        // parse, and a hand-off to the blocking pool would add a thread wake-up to every page.
        let parse = {
            let (paginator, stop_rules) = (paginator.clone(), stop_rules.clone());
            let (origin, records_path) = (origin.clone(), records_path.clone());
            move || {
                locate(
                    fetched,
                    &*paginator,
                    &stop_rules,
                    &origin,
                    &records_path,
                    (records_so_far, page_no),
                )
            }
        };
        let located = if tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(parse)
        } else {
            tokio::task::spawn_blocking(parse)
                .await
                .map_err(|e| PullError::Internal(format!("page parser: {e}")))?
        };
        let Located {
            page,
            next: page_next,
            total: page_total,
            warning,
        } = match located {
            Ok(found) => found,
            Err(LocateError::Extract(source)) => match kept {
                Some((body, headers)) => {
                    let reason = source.to_string();
                    let text = std::str::from_utf8(&body).ok();
                    let doc = text.and_then(|t| JsonDoc::parse(t).ok());
                    let blind =
                        next_after_bad_page(&*paginator, &origin, &url, &headers, doc.as_ref())
                            .map_err(|source| PullError::Paginate {
                                page: page_no,
                                url: shown.clone(),
                                source,
                            })?;
                    let what = if doc.is_some() {
                        "next request"
                    } else {
                        "cursor or link"
                    };
                    let msg = rejected_msg(
                        page_no,
                        &url,
                        blind,
                        reason,
                        Some(body),
                        what,
                        notes.clone(),
                    )?;
                    reporter.report(Event::PageFetched {
                        page: page_no,
                        records: 0,
                        bytes: body_len,
                    });
                    if pages.send(msg.0).await.is_err() {
                        return Ok(stopped(notes));
                    }
                    next = msg.1;
                    continue;
                }
                None => {
                    return Err(PullError::Extract {
                        page: page_no,
                        url: shown.clone(),
                        source,
                    })
                }
            },
            Err(LocateError::Paginate(source)) => {
                return Err(PullError::Paginate {
                    page: page_no,
                    url: shown.clone(),
                    source,
                })
            }
        };
        let records = page.len() as u64;
        records_so_far += records;
        if records > 0 && page_next.is_some() {
            full_page = Some(records);
        }
        total = page_total.or(total);
        notes.received = records_so_far;
        notes.api_total = page_total.or(notes.api_total);
        if let Some(sizing) = &sizing {
            notes.page_size_shrinks = shrinks_before + sizing.shrinks();
        }
        reporter.report(Event::PageFetched {
            page: page_no,
            records,
            bytes: body_len,
        });
        if let Some(message) = warning {
            reporter.report(Event::Warning {
                message: message.clone(),
            });
            notes.warnings.push(message);
        }
        let msg = PageMsg::Page {
            page,
            number: page_no,
            url,
            next: page_next.clone(),
            notes: notes.clone(),
        };
        if pages.send(msg).await.is_err() {
            // The encoder stopped; its error is the one to report.
            return Ok(stopped(notes));
        }
        next = page_next;
    }
    // Requests still in flight were guesses past the end: cancel them before saying so.
    window.clear();
    // A failed send means the encoder stopped and reports its own error.
    let ended = pages.send(PageMsg::End).await.is_ok();
    Ok(listing::FetchEnd {
        ended,
        capped,
        notes,
    })
}

/// The message for a page set aside, and the request after it.
#[allow(clippy::too_many_arguments)] // one page's facts, each used once
fn rejected_msg(
    number: u64,
    url: &Url,
    blind: Blind,
    reason: String,
    body: Option<Bytes>,
    what: &'static str,
    notes: ListingNotes,
) -> Result<(PageMsg, Option<Url>), PullError> {
    let next = match blind {
        Blind::Next(n) => Some(n),
        Blind::End => None,
        Blind::Unknown => {
            return Err(PullError::Unskippable {
                page: number,
                url: redact_url(url),
                reason,
                what,
            })
        }
    };
    let rejected = RejectedPage {
        page: number,
        request: redact_url(url),
        reason,
        body_path: None,
        bytes: body.as_ref().map_or(0, |b| b.len() as u64),
    };
    let msg = PageMsg::Rejected {
        number,
        url: url.clone(),
        next: next.clone(),
        rejected,
        body,
        notes,
    };
    Ok((msg, next))
}

enum LocateError {
    Extract(ExtractError),
    Paginate(PaginateError),
}

/// A page's records, the request after it, and the listing's total when `--total-path`
/// names one (it bounds how far ahead requests are started).
struct Located {
    page: ExtractedPage,
    next: Option<Url>,
    total: Option<u64>,
    /// The pointer rule's warning: the listing ended on a page that looked full.
    warning: Option<String>,
}

fn locate(
    fetched: FetchedPage,
    paginator: &dyn Paginator,
    stop: &crate::source::paginate::StopRules,
    origin: &Url,
    records_path: &str,
    (records_before, page_no): (u64, u64),
) -> Result<Located, LocateError> {
    let (ranges, step, total) = {
        let text = std::str::from_utf8(&fetched.body)
            .map_err(|_| LocateError::Extract(ExtractError::NotUtf8))?;
        let doc = JsonDoc::parse_with_records(text, records_path).map_err(LocateError::Extract)?;
        let records = doc.records(records_path).map_err(LocateError::Extract)?;
        let view = PageView {
            url: &fetched.url,
            headers: &fetched.headers,
            doc: &doc,
            records: records.len() as u64,
            records_so_far: records_before + records.len() as u64,
            page: page_no,
        };
        let step = next_request(paginator, stop, origin, &view).map_err(LocateError::Paginate)?;
        // `next_request` has read it already when it matters; a bad value only loses the bound.
        let total = stop
            .total_path
            .as_deref()
            .and_then(|path| doc.get_u64(path).ok().flatten());
        (ExtractedPage::ranges_of(text, &records), step, total)
    };
    Ok(Located {
        page: ExtractedPage {
            body: fetched.body,
            ranges,
        },
        next: step.next,
        total,
        warning: step.warning,
    })
}

/// Feed pages into the chunk writer; hand finished chunks on with their resume points. Runs
/// on a blocking thread.
#[allow(clippy::too_many_arguments)] // the stage's inputs, each used once
fn encode_stage(
    options: crate::encode::EncodeOptions,
    limits: ChunkLimits,
    first_seq: u64,
    schema: Option<Schema>,
    (schema_options, previous): (SchemaOptions, Option<Schema>),
    mut tracker: Option<WatermarkTracker>,
    mut pages: mpsc::Receiver<PageMsg>,
    chunks: mpsc::Sender<UploadMsg>,
) -> Result<(), PullError> {
    let mut writer = ChunkWriter::new(options, limits, first_seq, schema)
        .map_err(|source| PullError::Encode {
            seq: first_seq,
            source,
        })?
        .with_schema_options(schema_options, previous);
    // The resume point after each page handed to the writer and not yet in an emitted chunk;
    // `resumes[0]` is the writer's page `first_page`. A chunk names the pages it holds (a drift
    // policy may close it before the page just written), and its resume point is its last
    // page's; pages up to it are then dropped, so this holds a chunk's worth of pages, not
    // the run's.
    let mut resumes: VecDeque<Resume> = VecDeque::new();
    let mut first_page: u64 = 0;
    while let Some(msg) = pages.blocking_recv() {
        let finished = match msg {
            PageMsg::Page {
                page,
                number,
                url,
                next,
                notes,
            } => {
                let mut records = page.records();
                if let Some(t) = tracker.as_mut() {
                    let mut kept = Vec::with_capacity(records.len());
                    for r in records {
                        if t.keep(r)? {
                            kept.push(r);
                        }
                    }
                    records = kept;
                }
                resumes.push_back(Resume {
                    last_request: url,
                    next_request: next,
                    pages: number,
                    notes,
                });
                writer
                    .write_page(&records)
                    .map_err(|source| PullError::Encode {
                        seq: writer.next_seq(),
                        source: source.at_run_page(number),
                    })?
            }
            PageMsg::Rejected {
                number,
                url,
                next,
                rejected,
                body,
                notes,
            } => {
                if chunks
                    .blocking_send(UploadMsg::Rejected(rejected, body))
                    .is_err()
                {
                    return Ok(());
                }
                resumes.push_back(Resume {
                    last_request: url,
                    next_request: next,
                    pages: number,
                    notes,
                });
                // An empty page: the rejected page's place in the chunk's page range.
                writer.write_page(&[]).map_err(|source| PullError::Encode {
                    seq: writer.next_seq(),
                    source,
                })?
            }
            PageMsg::End => writer.finish().map_err(|source| PullError::Encode {
                seq: writer.next_seq(),
                source,
            })?,
        };
        let Some(chunk) = finished else { continue };
        let covered = chunk
            .pages
            .end
            .checked_sub(first_page)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=resumes.len()).contains(n));
        let Some(covered) = covered else {
            return Err(PullError::Internal(format!(
                "chunk {} names pages {:?} that were never written",
                chunk.seq, chunk.pages
            )));
        };
        // `covered` is at least 1 (checked above), so there is a last page; dropping the drain
        // removes the rest of the chunk's pages too.
        let Some(resume) = resumes.drain(..covered).next_back() else {
            return Err(PullError::Internal(format!(
                "chunk {} holds no page",
                chunk.seq
            )));
        };
        first_page = chunk.pages.end;
        let ready = ReadyChunk {
            chunk,
            resume,
            schema: writer.schema_with_stats(),
            changes: writer.schema_changes(),
            watermark: tracker.as_ref().and_then(WatermarkTracker::snapshot),
        };
        if chunks.blocking_send(UploadMsg::Chunk(ready)).is_err() {
            // The uploader stopped and reports why.
            return Ok(());
        }
    }
    Ok(())
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
async fn upload_stage(
    sink: Arc<dyn Sink>,
    mut store: CheckpointStore,
    mut cp: Checkpoint,
    extension: String,
    concurrency: usize,
    reporter: Arc<dyn Reporter>,
    mut chunks: mpsc::Receiver<UploadMsg>,
) -> Result<(CheckpointStore, Checkpoint), PullError> {
    type Done = (
        ManifestFile,
        Resume,
        Option<Schema>,
        Vec<SchemaChange>,
        Option<Watermark>,
    );
    let base_changes = cp.schema_changes.clone();
    let mut in_flight: JoinSet<Result<Done, SinkError>> = JoinSet::new();
    // Committed, but waiting for an earlier chunk before the checkpoint may include them.
    let mut waiting: BTreeMap<u64, Done> = BTreeMap::new();
    let mut more = true;
    while more || !in_flight.is_empty() {
        // Report each upload as soon as it completes, and take a new chunk only while a slot
        // is free (so at most `concurrency` chunks are held here).
        tokio::select! {
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                let done = joined.map_err(|e| PullError::Internal(format!("upload task: {e}")))??;
                let file = &done.0;
                reporter.report(Event::ChunkCommitted {
                    seq: file.seq,
                    url: file.url.clone(),
                    rows: file.rows,
                    bytes: file.bytes,
                });
                waiting.insert(file.seq, done);
                let mut advanced = false;
                while let Some((file, resume, schema, changes, watermark)) = waiting.remove(&cp.next_seq) {
                    cp.files.push(file);
                    cp.next_seq += 1;
                    cp.pages = resume.pages;
                    cp.last_request = Some(save_url(&resume.last_request));
                    cp.next_request = resume.next_request.as_ref().map(save_url);
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
                Some(UploadMsg::Chunk(ReadyChunk { chunk, resume, schema, changes, watermark })) => {
                    let sink = sink.clone();
                    let path = join_path(&[&cp.run_id, &part_name(chunk.seq, &extension)]);
                    in_flight.spawn(async move {
                        let bytes = chunk.data.len() as u64;
                        // Overwrite: a chunk's name is deterministic, and a leftover of an
                        // interrupted attempt at the same chunk must be replaced, not kept.
                        let put = sink.put(&path, chunk.data, PutMode::Overwrite).await?;
                        let file = ManifestFile {
                            path,
                            url: put.url,
                            seq: chunk.seq,
                            rows: chunk.rows,
                            bytes,
                            raw_bytes: chunk.raw_bytes,
                            sha256: chunk.sha256,
                            content_md5: chunk.content_md5,
                            columns: chunk.columns,
                        };
                        Ok((file, resume, schema, changes, watermark))
                    });
                }
                None => more = false,
            },
        }
    }
    Ok((store, cp))
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
