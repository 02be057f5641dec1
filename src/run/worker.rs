//! A worker of a partitioned run: claim a free partition (unclaimed, abandoned by a worker
//! whose lease ran out, or failed before this worker started), pull it to its end under its
//! lease, mark it done, and claim the next, until every partition of its share is done or
//! failed. A partition held by another worker is looked at again every tenth of a lease (at
//! most a second), so a worker that dies is taken over by one still running.
//!
//! What a partition's outcome means for the worker:
//! - done: its checkpoint and lease say so; next partition.
//! - lost (the lease was taken over, or a checkpoint save lost the race): the taker owns it;
//!   nothing this worker wrote after that is listed (see `partition_unit`).
//! - failed (the API refused it, a bad page with `--on-bad-page fail`, a partial listing):
//!   marked failed with the error; the others go on; the run ends without `_SUCCESS`.
//! - storage trouble, or Ctrl-C: the lease is let go at once (back to waiting, so another
//!   worker takes it without waiting for it to expire) and the worker stops.

use super::lease::{claim, unit_stop, Claim, HeldLease, WorkerIdentity};
use super::partition_unit::PartitionUnit;
use super::unit::Unit;
use crate::config::PullConfig;
use crate::partition::Partition;
use crate::pipeline::{PullError, StopSignal};
use crate::report::{Event, Reporter};
use crate::sink::Sink;
use crate::source::client::ApiClient;
use crate::state::partitions::{lease_path, LeaseState, RunRecord};
use crate::state::run_id::now_rfc3339;
use crate::state::{RunStatus, StateError};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `--shard K/N`: this worker only claims the partitions whose index % N == K.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parse `K/N` (0 ≤ K < N).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || {
            format!("--shard {text:?}: expected K/N with 0 <= K < N, e.g. 0/4 (the worker takes partitions whose index % N == K)")
        };
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn takes(&self, index: usize) -> bool {
        index % self.count as usize == self.index as usize
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// How this process takes part in a partitioned run (not part of the job's definition).
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// `--worker`: one of many processes on the run (needs a run key).
    pub worker: bool,
    pub shard: Option<Shard>,
    /// `--run-key`: what identifies "this run" across its workers.
    pub run_key: Option<String>,
    /// `--lease`: how long a partition stays claimed without a renewal.
    pub lease: Duration,
    /// `--worker-id`: the name leases and `status` show (default `host/pid`).
    pub worker_id: Option<String>,
}

/// The default `--lease`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            worker: false,
            shard: None,
            run_key: None,
            lease: DEFAULT_LEASE,
            worker_id: None,
        }
    }
}

/// What this worker did with one partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionOutcome {
    pub id: String,
    /// `done`, `failed`, `lost` (taken over by another worker) or `interrupted`.
    pub outcome: &'static str,
    pub rows: u64,
    pub pages: u64,
    pub files: u64,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The worker whose expired lease this one took over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_over_from: Option<String>,
}

/// A partition of the run that failed.
#[derive(Debug, Clone, Serialize)]
pub struct FailedPartition {
    pub id: String,
    pub error: String,
}

/// What one worker did; printed as its JSON summary.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    /// `succeeded` (the run is committed), `shard_done` (this shard's partitions are done,
    /// others' are not yet), `nothing_left` (the run was already committed), `failed`,
    /// `interrupted`.
    pub status: &'static str,
    pub worker: String,
    pub job: String,
    pub run_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_key: Option<String>,
    /// The partitions this worker pulled (or tried to).
    pub partitions: Vec<PartitionOutcome>,
    /// Whether this worker wrote the run's manifest and `_SUCCESS`.
    pub committed: bool,
    /// The run's partitions that failed (a rerun retries them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedPartition>,
    /// Partitions of the run in all, and how many are done.
    pub partitions_total: usize,
    pub partitions_done: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_url: Option<String>,
    /// Records of the whole run, once committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_rows: Option<u64>,
    pub seconds: f64,
}

impl WorkerReport {
    pub fn rows(&self) -> u64 {
        self.partitions.iter().map(|p| p.rows).sum()
    }
}

/// What the worker loop works with.
pub(super) struct WorkerContext<'a> {
    pub(super) config: &'a PullConfig,
    pub(super) sink: Arc<dyn Sink>,
    pub(super) client: ApiClient,
    pub(super) reporter: Arc<dyn Reporter>,
    pub(super) options: &'a WorkerOptions,
    pub(super) me: WorkerIdentity,
    pub(super) stop: StopSignal,
}

impl WorkerContext<'_> {
    /// How often partitions held by others are looked at again. A worker left with only
    /// such partitions is waiting for them to end (or their holder to die); every worker
    /// exits only once it sees the run committed, so this is the tail every run pays: at
    /// most a second (a lease read per busy partition each time). At a quarter of the lease
    /// (5 s for `bench/scale.sh`'s 30 s leases) that tail was most of a short run's time.
    pub(super) fn poll(&self) -> Duration {
        (self.options.lease / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// Sleep `d`, or less when a stop is asked for; whether a stop was asked for.
    pub(super) async fn nap(&self, d: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => self.stop.is_stopped(),
            _ = stop.stopped() => true,
        }
    }
}

/// How the loop over this worker's share ended.
pub(super) enum LoopEnd {
    /// Every partition of the share is done or failed.
    Settled,
    /// Ctrl-C / SIGTERM.
    Interrupted,
}

/// Claim and pull partitions of `record` (this worker's share) until each is done or failed.
pub(super) async fn work_partitions(
    ctx: &WorkerContext<'_>,
    record: &RunRecord,
    outcomes: &mut Vec<PartitionOutcome>,
) -> Result<LoopEnd, PullError> {
    let mut pending: VecDeque<usize> = (0..record.partitions.len())
        .filter(|i| ctx.options.shard.is_none_or(|s| s.takes(*i)))
        .collect();
    // Workers started together would all race for the first partition; each starts at a
    // different place in the list instead (the list is still worked through in order).
    if !pending.is_empty() {
        let offset = rand::random::<usize>() % pending.len();
        pending.rotate_left(offset);
    }
    while !pending.is_empty() {
        let mut still = VecDeque::new();
        let mut progressed = false;
        while let Some(i) = pending.pop_front() {
            if ctx.stop.is_stopped() {
                return Ok(LoopEnd::Interrupted);
            }
            let p = &record.partitions[i];
            let (lost_handle, unit_signal, forward) = unit_stop(ctx.stop.clone());
            let claimed = claim(
                &ctx.sink,
                &lease_path(&p.id),
                &record.run_id,
                &p.id,
                &ctx.me,
                ctx.options.lease,
                lost_handle,
            )
            .await;
            let held = match claimed {
                Ok(Claim::Claimed(held)) => held,
                Ok(Claim::Done | Claim::Failed) => {
                    forward.abort();
                    continue;
                }
                Ok(Claim::Busy) => {
                    forward.abort();
                    still.push_back(i);
                    continue;
                }
                Err(e) => {
                    forward.abort();
                    return Err(e.into());
                }
            };
            progressed = true;
            let outcome = work_one(ctx, record, p, held, unit_signal).await;
            forward.abort();
            match outcome? {
                Worked::Final(o) => outcomes.push(o),
                Worked::Lost(o) => {
                    outcomes.push(o);
                    // Its new holder may die too: keep an eye on it.
                    still.push_back(i);
                }
                Worked::Interrupted(o) => {
                    outcomes.push(o);
                    return Ok(LoopEnd::Interrupted);
                }
            }
        }
        pending = still;
        if !pending.is_empty() && !progressed && ctx.nap(ctx.poll()).await {
            return Ok(LoopEnd::Interrupted);
        }
    }
    Ok(LoopEnd::Settled)
}

enum Worked {
    /// Done or failed: the partition's lease says so.
    Final(PartitionOutcome),
    /// Another worker holds it now.
    Lost(PartitionOutcome),
    /// Stopped by Ctrl-C; its lease let go.
    Interrupted(PartitionOutcome),
}

/// Pull one claimed partition and let its lease go with the outcome.
async fn work_one(
    ctx: &WorkerContext<'_>,
    record: &RunRecord,
    p: &Partition,
    held: HeldLease,
    stop: StopSignal,
) -> Result<Worked, PullError> {
    let started = Instant::now();
    let took_over_from = held.took_over_from.clone();
    if let Some(from) = &took_over_from {
        ctx.reporter.report(Event::Warning {
            message: format!(
                "partition {}: took it over from {from}, whose lease ran out; resuming its checkpoint",
                p.id
            ),
        });
    }
    tracing::info!(partition = %p.id, epoch = held.epoch(), "claimed partition");
    let outcome = |outcome: &'static str, error: Option<String>| PartitionOutcome {
        id: p.id.clone(),
        outcome,
        rows: 0,
        pages: 0,
        files: 0,
        seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        error,
        took_over_from: took_over_from.clone(),
    };
    let config = match crate::partition::apply(&ctx.config.source, p) {
        Ok(source) => PullConfig {
            source,
            ..ctx.config.clone()
        },
        Err(e) => {
            let error = crate::secret::redact(&e.to_string());
            return fail(ctx, p, held, outcome("failed", Some(error))).await;
        }
    };
    let epoch = held.epoch();
    let pulled = PartitionUnit {
        config: &config,
        sink: ctx.sink.clone(),
        client: ctx.client.clone(),
        reporter: ctx.reporter.clone(),
        stop,
        run_id: &record.run_id,
        partition: &p.id,
        epoch,
    }
    .work()
    .await;
    match pulled {
        Ok(mut end) => {
            if let Some(reason) = end.partial.take() {
                return fail(ctx, p, held, outcome("failed", Some(reason))).await;
            }
            // The partition's checkpoint marked complete: a conditional save, so a holder
            // that lost the lease finds out here at the latest.
            end.checkpoint.status = RunStatus::Complete;
            end.checkpoint.updated_at = now_rfc3339();
            if let Err(e) = end.store.save(&end.checkpoint).await {
                return lost_or(e, outcome("lost", None));
            }
            let cp = &end.checkpoint;
            let mut done = outcome("done", None);
            done.rows = cp.rows();
            done.pages = cp.pages;
            done.files = cp.files.len() as u64;
            let (files, rows, pages) = (done.files, done.rows, done.pages);
            match held
                .finish(LeaseState::Done, |l| {
                    l.files = Some(files);
                    l.rows = Some(rows);
                    l.pages = Some(pages);
                })
                .await
            {
                Ok(()) => Ok(Worked::Final(done)),
                Err(e) => lost_or(e, outcome("lost", None)),
            }
        }
        Err(PullError::Interrupted { .. }) if held.is_lost() => {
            Ok(Worked::Lost(outcome("lost", None)))
        }
        Err(PullError::Interrupted { .. }) => {
            // Ctrl-C: let the lease go now, so another worker need not wait for it.
            let _ = held
                .finish(LeaseState::Waiting, |l| l.expires_at = None)
                .await;
            Ok(Worked::Interrupted(outcome("interrupted", None)))
        }
        Err(PullError::State(StateError::LostRace { .. })) => {
            Ok(Worked::Lost(outcome("lost", None)))
        }
        Err(e) if stops_the_worker(&e) => {
            let _ = held
                .finish(LeaseState::Waiting, |l| l.expires_at = None)
                .await;
            Err(e)
        }
        Err(e) => {
            let error = crate::secret::redact(&crate::report::error_chain(&e));
            fail(ctx, p, held, outcome("failed", Some(error))).await
        }
    }
}

/// Storage and internal errors are not the partition's fault: the worker stops, and the
/// partition waits for another.
fn stops_the_worker(e: &PullError) -> bool {
    matches!(
        e,
        PullError::Sink(_) | PullError::State(_) | PullError::Internal(_)
    )
}

/// A lost race in `e` means the partition is another worker's now; anything else stops the
/// worker.
fn lost_or(e: StateError, lost: PartitionOutcome) -> Result<Worked, PullError> {
    match e {
        StateError::LostRace { .. } => Ok(Worked::Lost(lost)),
        e => Err(e.into()),
    }
}

/// Mark the partition failed with the outcome's error, and say so.
async fn fail(
    ctx: &WorkerContext<'_>,
    p: &Partition,
    held: HeldLease,
    outcome: PartitionOutcome,
) -> Result<Worked, PullError> {
    let error = outcome.error.clone().unwrap_or_default();
    ctx.reporter.report(Event::Warning {
        message: format!("partition {} failed: {error}", p.id),
    });
    match held
        .finish(LeaseState::Failed, |l| l.error = Some(error.clone()))
        .await
    {
        Ok(()) => Ok(Worked::Final(outcome)),
        Err(e) => lost_or(
            e,
            PartitionOutcome {
                outcome: "lost",
                ..outcome
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_divide() {
        let s = Shard::parse("1/4").unwrap();
        assert_eq!((s.index, s.count), (1, 4));
        assert!(s.takes(1) && s.takes(5) && !s.takes(4));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            let err = Shard::parse(bad).unwrap_err();
            assert!(err.contains("K/N"), "{bad}: {err}");
        }
    }
}
