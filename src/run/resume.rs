//! Start, resume or restart: what a run does with the checkpoint it finds once it holds the
//! job's lock. An unfinished run from the same source resumes under its id, after the files
//! its killed attempt wrote past the last checkpoint are removed; `--restart` discards it (its
//! files go too); otherwise a new run starts, from the last complete run's watermark when the
//! job is incremental, and its checkpoint is saved before the first request.

use crate::config::PullConfig;
use crate::load::part_seq;
use crate::pipeline::PullError;
use crate::report::{Event, Reporter};
use crate::secret::redact_url;
use crate::sink::Sink;
use crate::state::checkpoint::{restore_request, save_request, ListingNotes};
use crate::state::run_id::{new_run_id, rfc3339};
use crate::state::watermark::since_value;
use crate::state::{Checkpoint, CheckpointStore, RunStatus, CHECKPOINT_VERSION};
use url::Url;

/// The run this invocation works on.
pub(super) struct Opened {
    /// Its checkpoint, as saved.
    pub(super) checkpoint: Checkpoint,
    /// Whether it resumes an interrupted run.
    pub(super) resumed: bool,
}

/// Resume the unfinished run `previous` describes, or discard it (`restart`) and start a new
/// one, or start a new one after a complete run (or none). A new run takes the id `minted`
/// for it before the run started (the one its requests already name), if any.
pub(super) async fn open(
    config: &PullConfig,
    sink: &dyn Sink,
    store: &mut CheckpointStore,
    previous: Option<&Checkpoint>,
    restart: bool,
    minted: Option<String>,
    reporter: &dyn Reporter,
) -> Result<Opened, PullError> {
    let source_url = redact_url(&config.source.url);
    let unfinished = previous.filter(|cp| cp.status == RunStatus::Running);
    let (cp, resumed) = match unfinished {
        Some(cp) if !restart => {
            if cp.source_url != source_url {
                return Err(PullError::SourceChanged {
                    run_id: cp.run_id.clone(),
                    saved: cp.source_url.clone(),
                    configured: source_url,
                });
            }
            remove_leftovers(sink, &cp.run_id, cp.next_seq, reporter).await?;
            (cp.clone(), true)
        }
        _ => {
            if let Some(old) = unfinished {
                // --restart: the abandoned run's files go, so no reader mistakes them for data.
                remove_leftovers(sink, &old.run_id, 0, reporter).await?;
                reporter.report(Event::Warning {
                    message: format!("--restart: discarded the unfinished run {}", old.run_id),
                });
            }
            let since = previous.and_then(|p| match p.status {
                RunStatus::Complete => p.watermark.clone(),
                RunStatus::Running => p.since.clone(),
            });
            let run_id = minted
                .filter(|id| previous.is_none_or(|p| p.run_id != *id))
                .unwrap_or_else(|| new_run_id(time::OffsetDateTime::now_utc()));
            let cp = new_checkpoint(config, run_id, since)?;
            // Saved before the first request: a run killed at any point after this resumes
            // under the same id instead of leaving an orphan folder.
            store.save(&cp).await?;
            (cp, false)
        }
    };
    Ok(Opened {
        checkpoint: cp,
        resumed,
    })
}

/// A new run's checkpoint (not yet saved): its first request (from `since`, the previous
/// run's watermark, when the job is incremental), nothing committed. A partition's first
/// checkpoint is one too, under the partitioned run's id.
pub(super) fn new_checkpoint(
    config: &PullConfig,
    run_id: String,
    since: Option<crate::state::Watermark>,
) -> Result<Checkpoint, PullError> {
    let paginator = crate::pipeline::paginator_for(&config.source)?;
    let mut first = paginator.first(&config.source.url);
    if let (Some(inc), Some(since)) = (&config.incremental, &since) {
        first = crate::source::paginate::with_query_param(
            &first,
            &inc.param,
            &since_value(since, inc.lag)?,
        );
    }
    let now = rfc3339(time::OffsetDateTime::now_utc());
    // The request template is filled in for this run (its id and start time) before the
    // first request is saved, so a resume replays the same request.
    let request = crate::pipeline::request_for(&config.source, &run_id, &now)?;
    let (first_url, first_body) = save_request(&request, &first);
    Ok(Checkpoint {
        version: CHECKPOINT_VERSION,
        job: config.job.clone(),
        run_id,
        status: RunStatus::Running,
        source_url: redact_url(&config.source.url),
        next_seq: 0,
        next_request: Some(first_url.clone()),
        next_body: first_body,
        last_request: None,
        pages: 0,
        files: Vec::new(),
        schema: None,
        schema_changes: Vec::new(),
        compared_with_run: None,
        rejected: Vec::new(),
        first_request: Some(first_url),
        since,
        watermark: None,
        listing: ListingNotes::default(),
        objects: None,
        started_at: now.clone(),
        updated_at: now,
    })
}

/// The request the run picks up from: its checkpoint's saved next request, with the masked
/// query values restored from the configured URL; `None` when the listing already ended.
pub(super) fn start_of(cp: &Checkpoint, config: &PullConfig) -> Result<Option<Url>, PullError> {
    let source_url = redact_url(&config.source.url);
    let request = crate::pipeline::request_for(&config.source, &cp.run_id, &cp.started_at)?;
    let start = match &cp.next_request {
        Some(saved) => Some(
            restore_request(saved, cp.next_body.as_deref(), &config.source.url, &request).map_err(
                |reason| PullError::SourceChanged {
                    run_id: cp.run_id.clone(),
                    saved: saved.clone(),
                    configured: format!("{source_url} ({reason})"),
                },
            )?,
        ),
        None => None,
    };
    Ok(start)
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
        // A chunk's lineage piece goes with the chunk.
        let name = crate::load::lineage::chunk_name_of_piece(name).unwrap_or(name);
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
