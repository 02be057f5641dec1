//! A run that fails before it lands anything leaves the job's folder as it found it.
//!
//! A run takes the job's lock and saves its first checkpoint before the first request, so that
//! a killed run resumes instead of leaving an orphan. But when the very first page fails (a
//! wrong URL, a refused credential), that checkpoint vouches for nothing, and in a job folder
//! that did not exist before it only leaves `_state/` behind, which looks like a job that ran.
//! So a job with no checkpoint before the run gets its state removed again when the run fails
//! with nothing committed. Anything else in the folder (another job's files, earlier runs) keeps
//! the state where it is.

use super::{Checkpoint, CHECKPOINT_PATH, LOCK_PATH};
use crate::sink::{LockGuard, Sink};

/// Whether the job has never run at this destination (no checkpoint). Read before the lock
/// is taken; a failed read counts as "has run", which keeps whatever is there.
pub async fn never_ran(sink: &dyn Sink) -> bool {
    matches!(sink.get(CHECKPOINT_PATH).await, Ok(None))
}

/// Release the job's lock; when `failed_fresh` (the job had never run here and this run
/// failed), first remove this run's state if it is all the folder holds and it vouches for no
/// committed chunk. Nothing here fails the run: the run's own error is what the user needs.
pub async fn release(sink: &dyn Sink, lock: Box<dyn LockGuard>, failed_fresh: bool) {
    let remove = failed_fresh && holds_only_empty_state(sink).await;
    let mut lock_removed = false;
    if remove {
        if let Err(e) = sink.delete(CHECKPOINT_PATH).await {
            tracing::debug!("could not remove the failed run's checkpoint: {e}");
        }
        // A local lock file can go while it is held, so its path is free before the lock is;
        // a leased blob refuses deletion until its lease is released, below.
        lock_removed = sink.delete(LOCK_PATH).await.is_ok() && sink_has_no(sink, LOCK_PATH).await;
    }
    if let Err(e) = lock.release().await {
        tracing::warn!("{e}");
    }
    if remove && !lock_removed {
        // Another run that takes the lock in between holds a new lease, which refuses this
        // delete: its lock is never removed under it.
        if let Err(e) = sink.delete(LOCK_PATH).await {
            tracing::debug!("could not remove the failed run's lock: {e}");
        }
    }
}

async fn sink_has_no(sink: &dyn Sink, path: &str) -> bool {
    matches!(sink.get(path).await, Ok(None))
}

/// The folder holds the lock and a checkpoint with no committed chunk, and nothing else.
async fn holds_only_empty_state(sink: &dyn Sink) -> bool {
    let Ok(objects) = sink.list("").await else {
        return false;
    };
    if objects
        .iter()
        .any(|o| o.path != CHECKPOINT_PATH && o.path != LOCK_PATH)
    {
        return false;
    }
    let Ok(Some(got)) = sink.get(CHECKPOINT_PATH).await else {
        // No checkpoint at all: only the lock to remove.
        return true;
    };
    match serde_json::from_slice::<Checkpoint>(&got.data) {
        Ok(cp) => cp.next_seq == 0 && cp.files.is_empty() && cp.rejected.is_empty(),
        Err(_) => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sink::local::LocalSink;
    use crate::sink::{LockHolder, PutMode};
    use bytes::Bytes;

    fn checkpoint_json(next_seq: u64) -> Bytes {
        let cp = serde_json::json!({
            "version": crate::state::CHECKPOINT_VERSION,
            "job": "orders",
            "run_id": "r1",
            "status": "running",
            "source_url": "https://x/o",
            "next_seq": next_seq,
            "next_request": "https://x/o",
            "pages": 0,
            "files": [],
            "started_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        });
        Bytes::from(serde_json::to_vec(&cp).unwrap())
    }

    async fn failed_run(sink: &LocalSink, next_seq: u64) {
        let lock = sink
            .lock(LOCK_PATH, &LockHolder::this_process("orders"))
            .await
            .unwrap();
        sink.put(
            CHECKPOINT_PATH,
            checkpoint_json(next_seq),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
        release(sink, lock, true).await;
    }

    #[tokio::test]
    async fn state_of_a_run_that_landed_nothing_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalSink::new(dir.path().join("orders"));
        assert!(never_ran(&sink).await);
        failed_run(&sink, 0).await;
        assert!(sink.list("").await.unwrap().is_empty());
        // The lock can be taken again.
        let lock = sink
            .lock(LOCK_PATH, &LockHolder::this_process("orders"))
            .await
            .unwrap();
        lock.release().await.unwrap();
    }

    #[tokio::test]
    async fn state_that_vouches_for_chunks_or_sits_beside_files_stays() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalSink::new(dir.path().join("orders"));
        failed_run(&sink, 1).await;
        assert!(sink.get(CHECKPOINT_PATH).await.unwrap().is_some());
        assert!(!never_ran(&sink).await);

        let sink = LocalSink::new(dir.path().join("other"));
        sink.put("keep.txt", Bytes::from_static(b"x"), PutMode::Create)
            .await
            .unwrap();
        failed_run(&sink, 0).await;
        assert!(sink.get(CHECKPOINT_PATH).await.unwrap().is_some());
        assert!(sink.get("keep.txt").await.unwrap().is_some());
    }
}
