//! The commit of a partitioned run, once every partition is done: exactly one worker (the
//! holder of the commit lease, `_state/commit.json`) writes the manifest — every partition's
//! files, rows and what it covers, read from the partitions' checkpoints, which are the only
//! record of what was committed — then `load.sql` and `_SUCCESS` (`commit::put_run_files`),
//! and marks the run record complete. A worker that dies while committing leaves the commit
//! lease to expire; another takes it over and writes the same files again.
//!
//! Before writing, the committer removes strays: data files in the run's folder that no
//! partition's checkpoint lists (written by a holder after it lost its lease, or by one
//! killed between an upload and its checkpoint), so `<run>/*.<ext>` is exactly the run.

use super::commit::{put_run_files, RunFilesError};
use super::lease::{claim, unit_stop, Claim};
use super::worker::{FailedPartition, WorkerContext};
use crate::encode::schema::Schema;
use crate::load::manifest::{
    Manifest, ManifestIdentity, ManifestInput, ManifestPartition, ManifestStatus, ManifestTotals,
};
use crate::pipeline::PullError;
use crate::report::Event;
use crate::secret::redact_url;
use crate::sink::Sink;
use crate::state::checkpoint::ListingNotes;
use crate::state::partitions::{
    checkpoint_path, read_partitions, read_run_tagged, update_run, LeaseState, RunRecord,
    COMMIT_LEASE_PATH,
};
use crate::state::run_id::now_rfc3339;
use crate::state::{Checkpoint, CheckpointStore, RunStatus, StateError, CHECKPOINT_VERSION};
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::HashSet;
use std::sync::Arc;

/// Checkpoints read at once while assembling the manifest.
const READ_AT_ONCE: usize = 16;

/// How the run stood when this worker was through with it.
pub(super) enum CommitEnd {
    /// Committed, by this worker (`by_me`, with the run's totals) or another.
    Committed {
        by_me: bool,
        totals: Option<ManifestTotals>,
    },
    /// Partitions outside this worker's shard are not done yet; the last to finish commits.
    NotYet { done: usize },
    /// A partition was let go (a worker stopped) after this worker's loop ended: back to
    /// the loop.
    Unsettled,
    /// Some partitions failed: no commit.
    Failed {
        done: usize,
        failed: Vec<FailedPartition>,
    },
    /// Ctrl-C while waiting for the committer.
    Interrupted,
}

/// Commit the run if every partition is done and nobody else is committing it; wait for a
/// committer that holds the commit lease (taking over if it dies).
pub(super) async fn commit_when_done(
    ctx: &WorkerContext<'_>,
    record: &RunRecord,
    proven: &[ManifestIdentity],
) -> Result<CommitEnd, PullError> {
    loop {
        let statuses = read_partitions(ctx.sink.as_ref(), record).await?;
        let done = statuses
            .iter()
            .filter(|s| s.state == LeaseState::Done)
            .count();
        let failed: Vec<FailedPartition> = statuses
            .iter()
            .filter(|s| s.state == LeaseState::Failed)
            .map(|s| FailedPartition {
                id: s.id.clone(),
                error: s.error.clone().unwrap_or_default(),
            })
            .collect();
        if done < statuses.len() {
            // A worker of the whole list only gets here once every partition is settled;
            // then anything not done failed. A shard's worker leaves the rest to others.
            if !failed.is_empty() && done + failed.len() == statuses.len() {
                return Ok(CommitEnd::Failed { done, failed });
            }
            if ctx.options.shard.is_some() {
                return Ok(CommitEnd::NotYet { done });
            }
            // Without a shard every partition was settled when the loop ended; one that is
            // not settled now was let go by a worker that stopped.
            return Ok(CommitEnd::Unsettled);
        }
        let (lost_handle, _signal, forward) = unit_stop(ctx.stop.clone());
        let claimed = claim(
            &ctx.sink,
            COMMIT_LEASE_PATH,
            &record.run_id,
            "commit",
            &ctx.me,
            ctx.options.lease,
            lost_handle,
        )
        .await;
        forward.abort();
        match claimed? {
            Claim::Done => {
                mark_complete(ctx.sink.as_ref(), record).await?;
                return Ok(CommitEnd::Committed {
                    by_me: false,
                    totals: None,
                });
            }
            Claim::Busy | Claim::Failed => {
                if ctx.nap(ctx.poll()).await {
                    return Ok(CommitEnd::Interrupted);
                }
            }
            Claim::Claimed(held) => {
                match write_commit(ctx, record, proven).await {
                    Ok(manifest) => {
                        match held.finish(LeaseState::Done, |_| {}).await {
                            Ok(()) => {}
                            // Another worker took the commit over (this one was too slow):
                            // it writes the same files; the run is committed either way.
                            Err(StateError::LostRace { .. }) => {}
                            Err(e) => return Err(e.into()),
                        }
                        mark_complete(ctx.sink.as_ref(), record).await?;
                        return Ok(CommitEnd::Committed {
                            by_me: true,
                            totals: Some(manifest.totals),
                        });
                    }
                    Err(e) => {
                        let _ = held
                            .finish(LeaseState::Waiting, |l| l.expires_at = None)
                            .await;
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// Mark the run record complete (it may be already: another committer did).
async fn mark_complete(sink: &dyn Sink, record: &RunRecord) -> Result<(), PullError> {
    loop {
        let Some((mut current, etag)) = read_run_tagged(sink).await? else {
            return Err(PullError::Internal(format!(
                "the run record {} disappeared while committing run {}",
                sink.url_of(crate::state::partitions::RUN_RECORD_PATH),
                record.run_id
            )));
        };
        if current.run_id != record.run_id || current.status == RunStatus::Complete {
            return Ok(());
        }
        current.status = RunStatus::Complete;
        current.committed_at = Some(now_rfc3339());
        match update_run(sink, &current, &etag).await {
            Ok(_) => return Ok(()),
            // A worker joined with a new key meanwhile: read it again.
            Err(StateError::LostRace { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Assemble the manifest from the partitions' checkpoints, remove strays, and write the
/// run's files.
async fn write_commit(
    ctx: &WorkerContext<'_>,
    record: &RunRecord,
    proven: &[ManifestIdentity],
) -> Result<Manifest, PullError> {
    let sink = ctx.sink.clone();
    let checkpoints: Vec<Checkpoint> = stream::iter(record.partitions.iter())
        .map(|p| {
            let sink = sink.clone();
            async move {
                let mut store = CheckpointStore::at(sink, &checkpoint_path(&p.id));
                let cp = store.load().await?;
                match cp {
                    Some(cp) if cp.run_id == record.run_id && cp.next_request.is_none() => Ok(cp),
                    _ => Err(PullError::Internal(format!(
                        "partition {} is marked done but its checkpoint {} does not show its listing ended in run {}",
                        p.id,
                        store.url(),
                        record.run_id
                    ))),
                }
            }
        })
        .buffered(READ_AT_ONCE)
        .try_collect()
        .await?;
    let combined = combine(ctx, record, &checkpoints);
    let mut manifest = Manifest::assemble(ManifestInput {
        config: ctx.config,
        checkpoint: &combined,
        destination: sink.url_of(&record.run_id),
        storage_identity: sink.identity_kind(),
        proven,
        status: ManifestStatus::Succeeded,
        partial_reasons: Vec::new(),
        finished_at: now_rfc3339(),
    });
    manifest.partitions = record
        .partitions
        .iter()
        .zip(&checkpoints)
        .map(|(p, cp)| ManifestPartition {
            id: p.id.clone(),
            covers: serde_json::to_value(&p.covers).unwrap_or_default(),
            files: cp.files.iter().map(|f| f.path.clone()).collect(),
            rows: cp.rows(),
            pages: cp.pages,
        })
        .collect();
    let listed: HashSet<&str> = combined.files.iter().map(|f| f.path.as_str()).collect();
    remove_strays(ctx, &record.run_id, &listed).await?;
    put_run_files(sink.as_ref(), &record.run_id, &manifest, true)
        .await
        .map_err(|e| match e {
            RunFilesError::Sink(e) => PullError::from(e),
            RunFilesError::Manifest(m) => PullError::Internal(m),
        })?;
    Ok(manifest)
}

/// Data files in the run's folder that no checkpoint lists.
async fn remove_strays(
    ctx: &WorkerContext<'_>,
    run_id: &str,
    listed: &HashSet<&str>,
) -> Result<(), PullError> {
    let sink: &Arc<dyn Sink> = &ctx.sink;
    sink.remove_incomplete(run_id).await?;
    let mut removed = 0;
    for object in sink.list(&format!("{run_id}/")).await? {
        let name = object.path.rsplit('/').next().unwrap_or(&object.path);
        if name.starts_with("part-") && !listed.contains(object.path.as_str()) {
            sink.delete(&object.path).await?;
            removed += 1;
        }
    }
    if removed > 0 {
        ctx.reporter.report(Event::Warning {
            message: format!(
                "run {run_id}: removed {removed} data file(s) no partition's checkpoint lists (written by a worker after it lost its lease, or killed before its checkpoint)"
            ),
        });
    }
    Ok(())
}

/// One checkpoint standing for the whole run, for the manifest: every partition's files in
/// the run's partition order, pages and notes added up, the schemas merged.
fn combine(ctx: &WorkerContext<'_>, record: &RunRecord, cps: &[Checkpoint]) -> Checkpoint {
    let mut listing = ListingNotes::default();
    for (p, cp) in record.partitions.iter().zip(cps) {
        listing.received += cp.listing.received;
        listing.page_size_shrinks += cp.listing.page_size_shrinks;
        listing.warnings.extend(
            cp.listing
                .warnings
                .iter()
                .map(|w| format!("partition {}: {w}", p.id)),
        );
    }
    Checkpoint {
        version: CHECKPOINT_VERSION,
        job: ctx.config.job.clone(),
        run_id: record.run_id.clone(),
        status: RunStatus::Complete,
        source_url: redact_url(&ctx.config.source.url),
        next_seq: 0,
        next_request: None,
        last_request: cps.last().and_then(|c| c.last_request.clone()),
        pages: cps.iter().map(|c| c.pages).sum(),
        files: cps.iter().flat_map(|c| c.files.iter().cloned()).collect(),
        schema: merge_schemas(cps.iter().filter_map(|c| c.schema.as_ref())),
        schema_changes: cps
            .iter()
            .flat_map(|c| c.schema_changes.iter().cloned())
            .collect(),
        compared_with_run: None,
        rejected: cps
            .iter()
            .flat_map(|c| c.rejected.iter().cloned())
            .collect(),
        first_request: cps.first().and_then(|c| c.first_request.clone()),
        since: None,
        watermark: None,
        listing,
        objects: None,
        started_at: record.created_at.clone(),
        updated_at: now_rfc3339(),
    }
}

/// The columns of every partition: the first's, then columns only later ones have, each
/// with the longest string seen anywhere and nullable where any partition had nulls.
fn merge_schemas<'a>(schemas: impl Iterator<Item = &'a Schema>) -> Option<Schema> {
    let mut merged: Option<Schema> = None;
    for s in schemas {
        let Some(m) = merged.as_mut() else {
            merged = Some(s.clone());
            continue;
        };
        for f in &s.fields {
            match m.fields.iter_mut().find(|g| g.name == f.name) {
                Some(g) => {
                    g.nullable |= f.nullable;
                    g.max_length = match (g.max_length, f.max_length) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => {
                    let mut f = f.clone();
                    f.nullable = true;
                    m.fields.push(f);
                }
            }
        }
    }
    merged
}
