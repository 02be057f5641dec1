//! The run-level commit, once every unit is done: the load script, then the manifest, then
//! `_SUCCESS`, then the checkpoint marked complete, so a reader that waits for the marker finds
//! all three. Written by the one process that holds the job's lock.

use crate::config::PullConfig;
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
/// `proven`: who the caller proved the run is at each hop.
pub(super) async fn commit(
    config: &PullConfig,
    sink: &dyn Sink,
    proven: &[ManifestIdentity],
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
    let manifest = Manifest::assemble(ManifestInput {
        config,
        checkpoint: cp,
        destination: sink.url_of(&cp.run_id),
        storage_identity: sink.identity_kind(),
        proven,
        status,
        partial_reasons: unit.partial.iter().cloned().collect(),
        finished_at: now_rfc3339(),
    });
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
    unit.store.save(cp).await?;
    Ok(manifest)
}
