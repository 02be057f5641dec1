//! The previous completed run of a job: the newest run folder under the destination that has
//! a `_SUCCESS` marker. Its manifest gives the schema a new run is compared with (drift
//! across runs) and is what `gatelake sql` renders when no run is named.
//!
//! Run ids sort by start time, so "newest" is the greatest id. A folder without `_SUCCESS`
//! is a failed or running attempt and is never used.

use super::manifest::Manifest;
use super::{MANIFEST, SUCCESS_MARKER};
use crate::sink::{join_path, Sink, SinkError};

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

/// The manifest of the newest completed run, if there is one.
pub async fn latest_manifest(sink: &dyn Sink) -> Result<Option<Manifest>, PreviousRunError> {
    match completed_runs(sink).await?.pop() {
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
}
