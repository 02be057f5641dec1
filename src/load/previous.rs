//! The previous completed run of a job: the newest run folder under the destination that has
//! a `_SUCCESS` marker. Its manifest gives the schema a new run is compared with (drift
//! across runs) and is what `gatelake sql` renders when no run is named.
//!
//! Run ids sort by start time, so "newest" is the greatest id. A folder without `_SUCCESS`
//! is a failed or running attempt and is never used.
//!
//! Finding it must not cost a listing of the whole destination (every chunk of every run):
//! the job's checkpoint names the last run and whether it completed, so when it says
//! `complete` one read of the checkpoint and one of that run's `_SUCCESS` settle it. Only a
//! destination without a usable checkpoint (written by hand, or its checkpoint moved aside)
//! or whose checkpoint describes a run still in progress falls back to listing.

use super::manifest::Manifest;
use super::{MANIFEST, SUCCESS_MARKER};
use crate::sink::{join_path, Sink, SinkError};
use crate::state::{Checkpoint, RunStatus, CHECKPOINT_PATH};

/// Errors while finding or reading a run's manifest.
#[derive(Debug, thiserror::Error)]
pub enum PreviousRunError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{url}: not a gatelake manifest: {source}")]
    Manifest {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("run {run} has no {MANIFEST} under {root} (is it complete? only runs with {SUCCESS_MARKER} are loadable)")]
    Missing { run: String, root: String },
}

/// Ids of the completed runs under the sink's root, oldest first.
pub async fn completed_runs(sink: &dyn Sink) -> Result<Vec<String>, SinkError> {
    let mut runs: Vec<String> = sink
        .list("")
        .await?
        .into_iter()
        .filter_map(|o| {
            let (run, name) = o.path.rsplit_once('/')?;
            (name == SUCCESS_MARKER && !run.contains('/') && !run.starts_with('_'))
                .then(|| run.to_owned())
        })
        .collect();
    runs.sort();
    runs.dedup();
    Ok(runs)
}

/// The manifest of run `run`.
pub async fn read_manifest(sink: &dyn Sink, run: &str) -> Result<Manifest, PreviousRunError> {
    let path = join_path(&[run, MANIFEST]);
    let Some(got) = sink.get(&path).await? else {
        return Err(PreviousRunError::Missing {
            run: run.to_owned(),
            root: sink.root_url(),
        });
    };
    serde_json::from_slice(&got.data).map_err(|source| PreviousRunError::Manifest {
        url: sink.url_of(&path),
        source,
    })
}

/// The run a checkpoint names as complete, if its `_SUCCESS` is really there.
async fn completed_run_of(
    sink: &dyn Sink,
    status: RunStatus,
    run_id: &str,
) -> Result<Option<String>, SinkError> {
    if status != RunStatus::Complete || run_id.is_empty() || run_id.contains('/') {
        return Ok(None);
    }
    let marker = join_path(&[run_id, SUCCESS_MARKER]);
    Ok(sink.get(&marker).await?.map(|_| run_id.to_owned()))
}

/// The id of the newest completed run: from the job's checkpoint when it names a completed
/// run (two small reads), otherwise by listing the destination.
pub async fn latest_completed_run(sink: &dyn Sink) -> Result<Option<String>, SinkError> {
    #[derive(serde::Deserialize)]
    struct Head {
        run_id: String,
        status: RunStatus,
    }
    if let Some(got) = sink.get(CHECKPOINT_PATH).await? {
        // A checkpoint this version cannot read is not an error here: listing still works.
        if let Ok(head) = serde_json::from_slice::<Head>(&got.data) {
            if let Some(run) = completed_run_of(sink, head.status, &head.run_id).await? {
                return Ok(Some(run));
            }
        }
    }
    Ok(completed_runs(sink).await?.pop())
}

/// The manifest of the newest completed run, if there is one.
pub async fn latest_manifest(sink: &dyn Sink) -> Result<Option<Manifest>, PreviousRunError> {
    match latest_completed_run(sink).await? {
        Some(run) => Ok(Some(read_manifest(sink, &run).await?)),
        None => Ok(None),
    }
}

/// [`latest_manifest`] for a run that has already replaced the job's checkpoint with its own:
/// `before` is the checkpoint as it was when the run started.
pub async fn latest_manifest_before(
    sink: &dyn Sink,
    before: Option<&Checkpoint>,
) -> Result<Option<Manifest>, PreviousRunError> {
    let known = match before {
        Some(cp) => completed_run_of(sink, cp.status, &cp.run_id).await?,
        None => None,
    };
    let run = match known {
        Some(run) => Some(run),
        None => completed_runs(sink).await?.pop(),
    };
    match run {
        Some(run) => Ok(Some(read_manifest(sink, &run).await?)),
        None => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sink::local::LocalSink;
    use crate::sink::PutMode;
    use bytes::Bytes;

    #[tokio::test]
    async fn finds_the_newest_run_with_a_success_marker() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalSink::new(dir.path());
        assert!(latest_manifest(&sink).await.unwrap().is_none());
        for (run, done) in [
            ("20260101T000000Z-aaaa", true),
            ("20260102T000000Z-bbbb", true),
            ("20260103T000000Z-cccc", false),
        ] {
            let manifest = format!("{{\"run_id\":\"{run}\"}}");
            sink.put(
                &format!("{run}/{MANIFEST}"),
                Bytes::from(manifest),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
            if done {
                sink.put(
                    &format!("{run}/{SUCCESS_MARKER}"),
                    Bytes::new(),
                    PutMode::Overwrite,
                )
                .await
                .unwrap();
            }
        }
        assert_eq!(
            completed_runs(&sink).await.unwrap(),
            ["20260101T000000Z-aaaa", "20260102T000000Z-bbbb"]
        );
        // Not a full manifest: the error names the file.
        let err = latest_manifest(&sink).await.unwrap_err().to_string();
        assert!(
            err.contains("20260102T000000Z-bbbb/_manifest.json")
                && err.contains("not a gatelake manifest"),
            "{err}"
        );
        let err = read_manifest(&sink, "nope").await.unwrap_err().to_string();
        assert!(err.contains("run nope has no _manifest.json"), "{err}");
    }

    /// A sink that counts listings, to prove the checkpoint path lists nothing.
    #[derive(Debug)]
    struct CountingSink {
        inner: LocalSink,
        lists: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Sink for CountingSink {
        fn root_url(&self) -> String {
            self.inner.root_url()
        }
        fn url_of(&self, path: &str) -> String {
            self.inner.url_of(path)
        }
        async fn check(&self) -> Result<(), SinkError> {
            self.inner.check().await
        }
        async fn ensure_root(&self) -> Result<(), SinkError> {
            self.inner.ensure_root().await
        }
        async fn put(
            &self,
            path: &str,
            data: Bytes,
            mode: PutMode,
        ) -> Result<crate::sink::PutResult, SinkError> {
            self.inner.put(path, data, mode).await
        }
        async fn get(&self, path: &str) -> Result<Option<crate::sink::GetResult>, SinkError> {
            self.inner.get(path).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<crate::sink::ObjectMeta>, SinkError> {
            self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.list(prefix).await
        }
        async fn delete(&self, path: &str) -> Result<(), SinkError> {
            self.inner.delete(path).await
        }
        async fn stage_part(&self, p: &str, u: &str, n: u32, d: Bytes) -> Result<(), SinkError> {
            self.inner.stage_part(p, u, n, d).await
        }
        async fn staged_parts(&self, p: &str, u: &str) -> Result<Vec<u32>, SinkError> {
            self.inner.staged_parts(p, u).await
        }
        async fn commit_parts(
            &self,
            p: &str,
            u: &str,
            n: u32,
            mode: PutMode,
        ) -> Result<crate::sink::PutResult, SinkError> {
            self.inner.commit_parts(p, u, n, mode).await
        }
        async fn stage_part_from_url(
            &self,
            p: &str,
            u: &str,
            n: u32,
            src: &str,
            r: std::ops::Range<u64>,
        ) -> Result<(), SinkError> {
            self.inner.stage_part_from_url(p, u, n, src, r).await
        }
        async fn lock(
            &self,
            path: &str,
            holder: &crate::sink::LockHolder,
        ) -> Result<Box<dyn crate::sink::LockGuard>, SinkError> {
            self.inner.lock(path, holder).await
        }
    }

    #[tokio::test]
    async fn a_complete_checkpoint_names_the_run_without_listing() {
        let dir = tempfile::tempdir().unwrap();
        let sink = CountingSink {
            inner: LocalSink::new(dir.path()),
            lists: Default::default(),
        };
        let lists = || sink.lists.load(std::sync::atomic::Ordering::SeqCst);
        for run in ["20260101T000000Z-aaaa", "20260102T000000Z-bbbb"] {
            for name in [SUCCESS_MARKER, MANIFEST] {
                sink.put(&join_path(&[run, name]), Bytes::new(), PutMode::Overwrite)
                    .await
                    .unwrap();
            }
        }
        // No checkpoint: listed.
        assert_eq!(
            latest_completed_run(&sink).await.unwrap().as_deref(),
            Some("20260102T000000Z-bbbb")
        );
        assert_eq!(lists(), 1);
        // A complete checkpoint: named, not listed (even when it is not the greatest id).
        let checkpoint = |run: &str, status: &str| {
            Bytes::from(format!(
                r#"{{"version":1,"run_id":"{run}","status":"{status}","other":"ignored"}}"#
            ))
        };
        sink.put(
            CHECKPOINT_PATH,
            checkpoint("20260101T000000Z-aaaa", "complete"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
        assert_eq!(
            latest_completed_run(&sink).await.unwrap().as_deref(),
            Some("20260101T000000Z-aaaa")
        );
        assert_eq!(lists(), 1);
        // Running, or naming a run without _SUCCESS: listed.
        for (run, status) in [
            ("20260103T000000Z-cccc", "running"),
            ("20260104T000000Z-dddd", "complete"),
        ] {
            sink.put(CHECKPOINT_PATH, checkpoint(run, status), PutMode::Overwrite)
                .await
                .unwrap();
            assert_eq!(
                latest_completed_run(&sink).await.unwrap().as_deref(),
                Some("20260102T000000Z-bbbb")
            );
        }
        assert_eq!(lists(), 3);
    }
}
