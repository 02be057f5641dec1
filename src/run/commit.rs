//! The run-level commit, once every unit is done: the lineage (`_lineage.jsonl.gz`, from the
//! pieces stored beside the chunks), the load script, then the manifest, then `_SUCCESS`, then
//! the checkpoint marked complete, so a reader that waits for the marker finds all of them.
//! Written by the one process that holds the job's lock.

use crate::config::PullConfig;
use crate::load::lineage::{self, RunLine};
use crate::load::manifest::{Manifest, ManifestIdentity, ManifestInput, ManifestStatus};
use crate::load::{LOAD_SQL, MANIFEST, SUCCESS_MARKER};
use crate::pipeline::{PullError, UnitEnd};
use crate::sink::{join_path, PutMode, Sink};
use crate::state::run_id::now_rfc3339;
use crate::state::RunStatus;
use bytes::Bytes;

/// Write the load script and the manifest; for a run that succeeded, then `_SUCCESS`, and
/// mark the checkpoint complete. A partial run's checkpoint stays running (with its notes
/// saved), so a rerun resumes it; why it is partial goes into its manifest's warnings only.
/// `proven`: who the caller proved the run is at each hop; `user_agent`: what its requests
/// sent.
pub(super) async fn commit(
    config: &PullConfig,
    sink: &dyn Sink,
    proven: &[ManifestIdentity],
    user_agent: &str,
    unit: &mut UnitEnd,
) -> Result<Manifest, PullError> {
    let status = match unit.partial {
        Some(_) => ManifestStatus::Partial,
        None => ManifestStatus::Succeeded,
    };
    let cp = &mut unit.checkpoint;
    let succeeded = status == ManifestStatus::Succeeded;
    // A run that delivered nothing new leaves the watermark where it was.
    if succeeded && cp.watermark.is_none() {
        cp.watermark = cp.since.clone();
    }
    let mut manifest = Manifest::assemble(ManifestInput {
        config,
        checkpoint: cp,
        destination: sink.url_of(&cp.run_id),
        storage_identity: sink.identity_kind(),
        proven,
        status,
        partial_reasons: unit.partial.iter().cloned().collect(),
        finished_at: now_rfc3339(),
    });
    let chunks: Vec<String> = cp.files.iter().map(|f| f.path.clone()).collect();
    let run_line = RunLine {
        run_id: cp.run_id.clone(),
        job: config.job.clone(),
        tool: manifest.tool.clone(),
        user_agent: user_agent.to_string(),
        source: manifest.source.url.clone(),
        identities: manifest.identities.clone(),
        started_at: manifest.started_at.clone(),
        finished_at: manifest.finished_at.clone(),
    };
    let tail = std::mem::take(&mut unit.lineage_tail);
    let lineage = lineage::assemble(sink, &cp.run_id, run_line, &chunks, tail).await?;
    if !lineage.missing.is_empty() {
        manifest.outcome.warnings.push(format!(
            "{} of {} lineage: no lineage was kept for {} chunk(s) written before this version of gatelake (first: {})",
            cp.run_id,
            lineage::LINEAGE,
            lineage.missing.len(),
            lineage.missing[0]
        ));
    }
    manifest.lineage = Some(lineage.reference);
    put_run_files(sink, &cp.run_id, &manifest, succeeded)
        .await
        .map_err(|e| match e {
            RunFilesError::Sink(e) => PullError::from(e),
            RunFilesError::Manifest(m) => PullError::Internal(m),
        })?;
    if succeeded {
        cp.status = RunStatus::Complete;
    }
    cp.updated_at = now_rfc3339();
    unit.store.save(cp).await?;
    // The pieces are in `_lineage.jsonl.gz` now; a partial run keeps them for its rerun's
    // commit.
    if succeeded {
        lineage::remove_pieces(sink, &chunks).await;
    }
    Ok(manifest)
}

/// Why a run's own files could not be written.
pub(super) enum RunFilesError {
    Sink(crate::sink::SinkError),
    Manifest(String),
}

/// Write a run's own files: the load script, then the manifest, then (when it succeeded)
/// `_SUCCESS`, so a reader that waits for the marker finds all three. Shared by every kind
/// of run (a pull's listing, objects).
pub(super) async fn put_run_files(
    sink: &dyn Sink,
    run_id: &str,
    manifest: &Manifest,
    succeeded: bool,
) -> Result<(), RunFilesError> {
    sink.put(
        &join_path(&[run_id, LOAD_SQL]),
        Bytes::from(crate::load::sql::render_for_run(manifest)),
        PutMode::Overwrite,
    )
    .await
    .map_err(RunFilesError::Sink)?;
    let json = manifest
        .to_json()
        .map_err(|e| RunFilesError::Manifest(format!("manifest: {e}")))?;
    sink.put(
        &join_path(&[run_id, MANIFEST]),
        Bytes::from(json),
        PutMode::Overwrite,
    )
    .await
    .map_err(RunFilesError::Sink)?;
    if succeeded {
        sink.put(
            &join_path(&[run_id, SUCCESS_MARKER]),
            Bytes::new(),
            PutMode::Overwrite,
        )
        .await
        .map_err(RunFilesError::Sink)?;
    }
    Ok(())
}
