//! Taking the job's lock (`_state/lock`) for a run, optionally waiting for it.
//!
//! The sink decides what "held" means ([`Sink::lock`]: a blob lease, an OS file lock) and
//! takes over at once a lock whose holder was a process on this machine that no longer
//! exists. This adds waiting: with `wait`, a busy lock is tried again every
//! [`POLL_EVERY`] until it is free or `wait` has passed, so a CI retry after a crash need not
//! guess a sleep. Both a takeover and a wait are reported.

use super::LOCK_PATH;
use crate::report::{Event, Reporter};
use crate::sink::{LockGuard, LockHolder, Sink, SinkError};
use std::time::{Duration, Instant};

/// How often a busy lock is tried again while waiting.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// Take the job's lock for `holder`, waiting up to `wait` (none: fail at once) while another
/// run holds it.
pub async fn acquire(
    sink: &dyn Sink,
    holder: &LockHolder,
    wait: Option<Duration>,
    reporter: &dyn Reporter,
) -> Result<Box<dyn LockGuard>, SinkError> {
    let started = Instant::now();
    let mut said_waiting = false;
    loop {
        match sink.lock(LOCK_PATH, holder).await {
            Ok(guard) => {
                if let Some(gone) = guard.taken_over_from() {
                    reporter.report(Event::Warning {
                        message: format!(
                            "took over the job's lock from {gone}: that process no longer exists on this machine, so its run crashed or was killed; resuming its checkpoint"
                        ),
                    });
                } else if said_waiting {
                    reporter.report(Event::Warning {
                        message: format!(
                            "got the job's lock after waiting {} s",
                            started.elapsed().as_secs()
                        ),
                    });
                }
                return Ok(guard);
            }
            Err(SinkError::Busy {
                url,
                holder: who,
                hint,
            }) => {
                let Some(wait) = wait else {
                    return Err(SinkError::Busy {
                        url,
                        holder: who,
                        hint,
                    });
                };
                let waited = started.elapsed();
                if waited >= wait {
                    return Err(SinkError::Busy {
                        url,
                        holder: who,
                        hint: format!(
                            "; waited {} s for it (--wait-for-lock {} s){}",
                            waited.as_secs(),
                            wait.as_secs(),
                            hint.replace(" Pass --wait-for-lock [DURATION] to wait for it", "")
                        ),
                    });
                }
                if !said_waiting {
                    said_waiting = true;
                    reporter.report(Event::Warning {
                        message: format!(
                            "the job is locked by {who}; waiting up to {} s for it (--wait-for-lock){}",
                            wait.as_secs(),
                            hint.split(". Pass --wait-for-lock").next().unwrap_or_default()
                        ),
                    });
                }
                tokio::time::sleep(POLL_EVERY.min(wait - waited)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::SilentReporter;
    use crate::sink::local::LocalSink;

    fn holder(pid: u32) -> LockHolder {
        LockHolder {
            host: "host-a".into(),
            pid,
            job: "orders".into(),
            since: "2026-12-06T00:00:00Z".into(),
            ..LockHolder::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waits_for_a_lock_that_is_released_and_gives_up_on_one_that_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalSink::new(dir.path());
        let held = sink.lock(LOCK_PATH, &holder(1)).await.unwrap();
        // No wait: busy at once.
        let err = acquire(&sink, &holder(2), None, &SilentReporter)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--wait-for-lock"), "{err}");
        // A wait that runs out: busy, saying how long it waited.
        let started = Instant::now();
        let err = acquire(
            &sink,
            &holder(2),
            Some(Duration::from_millis(1500)),
            &SilentReporter,
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(1500));
        let msg = err.to_string();
        assert!(
            msg.contains("waited 1 s") && msg.contains("process 1 on host-a"),
            "{msg}"
        );
        // Released while waiting: taken.
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            held.release().await.unwrap();
        });
        let started = Instant::now();
        let got = acquire(
            &sink,
            &holder(2),
            Some(Duration::from_secs(10)),
            &SilentReporter,
        )
        .await
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        release.await.unwrap();
        got.release().await.unwrap();
    }
}
