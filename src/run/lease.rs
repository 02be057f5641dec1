//! Holding a partition's lease (or the commit's) while working on it: claim it with a
//! conditional write, renew it every third of its length, and let it go (done, failed, or
//! back to waiting) with a conditional write too.
//!
//! Losing the lease is detected by the renewal: a renewal that finds the lease changed
//! (another worker took it over after it expired) or that cannot get through before the
//! lease runs out fires the holder's stop signal at once. The holder then stops at its next
//! page boundary; whatever it still uploads is named with its own, now stale, epoch and its
//! checkpoint save fails (the taker saved the checkpoint first), so nothing it writes after
//! losing the lease is ever listed.

use crate::pipeline::{StopHandle, StopSignal};
use crate::sink::{ETag, LockHolder, Sink};
use crate::state::partitions::{expiry, read_lease, write_lease, Lease, LeaseState};
use crate::state::run_id::now_rfc3339;
use crate::state::StateError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

/// Who a worker is, as its leases record it.
#[derive(Debug, Clone)]
pub struct WorkerIdentity {
    /// A short name for messages and `status` (`host/pid` unless given).
    pub name: String,
    pub holder: LockHolder,
    /// When the worker started: a partition that failed before this is retried by it (a
    /// rerun), one that failed after is left alone (another worker of the same run just
    /// failed it).
    pub started: time::OffsetDateTime,
}

/// What a look at a lease found.
pub(super) enum Claim {
    /// This worker holds it now.
    Claimed(HeldLease),
    /// Pulled to its end (its lease says how much).
    Done,
    /// Failed while this worker was running; left for a rerun.
    Failed,
    /// Another worker holds it (its lease runs to `expires_at`), or just claimed it.
    Busy,
}

/// A lease this worker holds, renewed in the background until it is let go.
pub(super) struct HeldLease {
    sink: Arc<dyn Sink>,
    path: String,
    current: Arc<Mutex<(Lease, ETag)>>,
    lost: Arc<AtomicBool>,
    /// Tells the renewal to end (between renewals, never in the middle of one: a renewal cut
    /// off mid-write would leave this side with a stale ETag).
    quit: watch::Sender<bool>,
    renewer: Option<JoinHandle<()>>,
    epoch: u64,
    /// The holder whose expired lease this claim took over.
    pub(super) took_over_from: Option<String>,
}

impl HeldLease {
    /// The epoch of this claim (in the names of the chunks written under it).
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether the renewal found the lease taken over or could not keep it.
    pub(super) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Let the lease go in `state` (done, failed, waiting), with `fill` adding what the
    /// lease records about the outcome. [`StateError::LostRace`] when another worker took it
    /// over meanwhile.
    pub(super) async fn finish(
        mut self,
        state: LeaseState,
        fill: impl FnOnce(&mut Lease),
    ) -> Result<(), StateError> {
        let _ = self.quit.send(true);
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.await;
        }
        if self.lost.load(Ordering::SeqCst) {
            return Err(StateError::LostRace {
                url: self.sink.url_of(&self.path),
            });
        }
        let current = self.current.lock().await;
        let (lease, etag) = &*current;
        let mut next = lease.clone();
        next.state = state;
        next.updated_at = now_rfc3339();
        if state != LeaseState::Working {
            next.expires_at = None;
        }
        fill(&mut next);
        write_lease(self.sink.as_ref(), &self.path, &next, Some(etag)).await?;
        Ok(())
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        // Not let go explicitly (an error on the way): stop renewing, so it expires.
        let _ = self.quit.send(true);
    }
}

/// Look at the lease at `path` of `partition` in `run_id` and claim it when it is free:
/// unclaimed (or an earlier run's), waiting, expired, or failed before this worker started.
/// `stop` is fired when the lease is lost afterwards.
pub(super) async fn claim(
    sink: &Arc<dyn Sink>,
    path: &str,
    run_id: &str,
    partition: &str,
    me: &WorkerIdentity,
    ttl: Duration,
    stop: Arc<StopHandle>,
) -> Result<Claim, StateError> {
    let read = read_lease(sink.as_ref(), path, run_id, partition).await?;
    let lease = read.lease;
    let now = time::OffsetDateTime::now_utc();
    let mut took_over_from = None;
    match lease.state {
        LeaseState::Done => return Ok(Claim::Done),
        LeaseState::Failed => {
            if lease.updated().is_some_and(|t| t >= me.started) {
                return Ok(Claim::Failed);
            }
        }
        LeaseState::Working => {
            if !lease.expired_at(now) {
                return Ok(Claim::Busy);
            }
            took_over_from = lease.holder_name();
        }
        LeaseState::Waiting => {}
    }
    let claimed = Lease {
        state: LeaseState::Working,
        epoch: lease.epoch + 1,
        holder: Some(me.holder.clone()),
        worker: Some(me.name.clone()),
        expires_at: Some(expiry(now, ttl)),
        error: None,
        files: None,
        rows: None,
        pages: None,
        updated_at: now_rfc3339(),
        ..lease
    };
    let etag = match write_lease(sink.as_ref(), path, &claimed, read.etag.as_ref()).await {
        Ok(etag) => etag,
        // Another worker claimed (or renewed) it between the read and the write.
        Err(StateError::LostRace { .. }) => return Ok(Claim::Busy),
        Err(e) => return Err(e),
    };
    let epoch = claimed.epoch;
    let current = Arc::new(Mutex::new((claimed, etag)));
    let lost = Arc::new(AtomicBool::new(false));
    let (quit, quit_rx) = watch::channel(false);
    let renewer = tokio::spawn(renew(
        Renewal {
            sink: sink.clone(),
            path: path.to_string(),
            current: current.clone(),
            lost: lost.clone(),
            ttl,
            stop,
        },
        quit_rx,
    ));
    Ok(Claim::Claimed(HeldLease {
        sink: sink.clone(),
        path: path.to_string(),
        current,
        lost,
        quit,
        renewer: Some(renewer),
        epoch,
        took_over_from,
    }))
}

/// Renew the lease every third of `ttl` until aborted. A renewal refused because the lease
/// changed, or none getting through until a sixth of `ttl` before it runs out, marks it lost
/// and fires `stop`.
struct Renewal {
    sink: Arc<dyn Sink>,
    path: String,
    current: Arc<Mutex<(Lease, ETag)>>,
    lost: Arc<AtomicBool>,
    ttl: Duration,
    stop: Arc<StopHandle>,
}

async fn renew(r: Renewal, mut quit: watch::Receiver<bool>) {
    let Renewal {
        sink,
        path,
        current,
        lost,
        ttl,
        stop,
    } = r;
    let every = ttl / 3;
    let retry_every = (ttl / 12).max(Duration::from_millis(50));
    let mut wait = every;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = quit.wait_for(|q| *q) => return,
        }
        let mut guard = current.lock().await;
        let now = time::OffsetDateTime::now_utc();
        let mut next = guard.0.clone();
        next.expires_at = Some(expiry(now, ttl));
        next.updated_at = now_rfc3339();
        match write_lease(sink.as_ref(), &path, &next, Some(&guard.1)).await {
            Ok(etag) => {
                *guard = (next, etag);
                wait = every;
            }
            Err(StateError::LostRace { .. }) => {
                tracing::warn!("lease {path} was taken over by another worker; stopping");
                lost.store(true, Ordering::SeqCst);
                stop.stop();
                return;
            }
            Err(e) => {
                let left = guard
                    .0
                    .expires()
                    .map(|t| t - now)
                    .and_then(|d| Duration::try_from(d).ok())
                    .unwrap_or(Duration::ZERO);
                if left <= ttl / 6 {
                    tracing::warn!("cannot renew lease {path} ({e}); it runs out: stopping");
                    lost.store(true, Ordering::SeqCst);
                    stop.stop();
                    return;
                }
                tracing::warn!("renewing lease {path}: {e}; trying again");
                wait = retry_every;
            }
        }
    }
}

/// A stop signal for one partition's unit: fires when `outer` (Ctrl-C) does, or when the
/// returned handle is fired (its lease was lost). The forwarding task ends with the unit.
pub(super) fn unit_stop(mut outer: StopSignal) -> (Arc<StopHandle>, StopSignal, JoinHandle<()>) {
    let (handle, signal) = StopSignal::new();
    let handle = Arc::new(handle);
    let forward = {
        let handle = handle.clone();
        tokio::spawn(async move {
            outer.stopped().await;
            handle.stop();
        })
    };
    (handle, signal, forward)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sink::local::LocalSink;

    fn me(name: &str) -> WorkerIdentity {
        WorkerIdentity {
            name: name.into(),
            holder: LockHolder::this_process("orders"),
            started: time::OffsetDateTime::now_utc(),
        }
    }

    async fn try_claim(sink: &Arc<dyn Sink>, who: &str, ttl: Duration) -> (Claim, StopSignal) {
        let (handle, signal) = StopSignal::new();
        let got = claim(
            sink,
            "_state/partitions/p/lease.json",
            "run1",
            "p",
            &me(who),
            ttl,
            Arc::new(handle),
        )
        .await
        .unwrap();
        (got, signal)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_claim_wins_an_expired_lease_is_taken_over_and_the_stale_holder_finds_out() {
        let dir = tempfile::tempdir().unwrap();
        let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
        let ttl = Duration::from_millis(1200);
        let (Claim::Claimed(a), a_stop) = try_claim(&sink, "a", ttl).await else {
            panic!("an unclaimed lease is claimed");
        };
        assert_eq!(a.epoch(), 1);
        // Held and renewed: another worker finds it busy, well past the first expiry.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(matches!(try_claim(&sink, "b", ttl).await.0, Claim::Busy));
        assert!(!a.is_lost() && !a_stop.is_stopped());
        // Its holder stops renewing (a process that hangs): once it runs out, b takes it
        // over with the next epoch.
        let _ = a.quit.send(true);
        tokio::time::sleep(Duration::from_millis(1400)).await;
        let (Claim::Claimed(b), _b_stop) = try_claim(&sink, "b", ttl).await else {
            panic!("an expired lease is taken over");
        };
        assert_eq!(b.epoch(), 2);
        assert_eq!(b.took_over_from.as_deref(), Some("a"));
        // The stale holder cannot mark it done.
        let err = a.finish(LeaseState::Done, |_| {}).await.unwrap_err();
        assert!(matches!(err, StateError::LostRace { .. }), "{err}");
        b.finish(LeaseState::Done, |l| l.rows = Some(7))
            .await
            .unwrap();
        assert!(matches!(try_claim(&sink, "c", ttl).await.0, Claim::Done));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_renewal_that_finds_the_lease_taken_fires_the_holder_s_stop() {
        let dir = tempfile::tempdir().unwrap();
        let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
        let ttl = Duration::from_millis(1200);
        let (Claim::Claimed(a), a_stop) = try_claim(&sink, "a", ttl).await else {
            panic!("claimed");
        };
        // Someone rewrites the lease behind a's back (as a taker after expiry would).
        let path = "_state/partitions/p/lease.json";
        let read = read_lease(sink.as_ref(), path, "run1", "p").await.unwrap();
        let mut stolen = read.lease.clone();
        stolen.epoch += 1;
        stolen.worker = Some("thief".into());
        write_lease(sink.as_ref(), path, &stolen, read.etag.as_ref())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(a.is_lost());
        assert!(a_stop.is_stopped());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_partition_failed_before_a_worker_started_is_retried_by_it_not_by_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
        let ttl = Duration::from_secs(5);
        let old = me("old");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (Claim::Claimed(a), _s) = try_claim(&sink, "a", ttl).await else {
            panic!("claimed");
        };
        a.finish(LeaseState::Failed, |l| l.error = Some("404".into()))
            .await
            .unwrap();
        let (handle, _signal) = StopSignal::new();
        let path = "_state/partitions/p/lease.json";
        let got = claim(&sink, path, "run1", "p", &old, ttl, Arc::new(handle))
            .await
            .unwrap();
        assert!(
            matches!(got, Claim::Failed),
            "a worker older than the failure leaves it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (got, _s) = try_claim(&sink, "rerun", ttl).await;
        let Claim::Claimed(again) = got else {
            panic!("a worker started after the failure retries it");
        };
        assert_eq!(again.epoch(), 2);
        // A lease of another run reads as unclaimed, its epoch kept rising.
        let read = read_lease(sink.as_ref(), path, "run2", "p").await.unwrap();
        assert_eq!(read.lease.state, LeaseState::Waiting);
        assert_eq!(read.lease.epoch, 2);
    }
}
