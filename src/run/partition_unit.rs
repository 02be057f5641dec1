//! One partition of a partitioned run as a [`Unit`]: an ordinary pull of the partition's
//! source (the job's source with the partition applied) from the partition's own checkpoint
//! (`_state/partitions/<id>/checkpoint.json`), its chunks named
//! `<run>/part-<partition>-<epoch>-NNNNN.<ext>`.
//!
//! Before any chunk is written the unit saves the partition's checkpoint. That save is what
//! fences a holder that lost the lease: its next conditional save of the same checkpoint
//! fails, so nothing it commits after the takeover is listed; and the epoch in chunk names
//! means it can never overwrite a file the checkpoint lists.

use super::resume::{new_checkpoint, start_of};
use super::unit::Unit;
use crate::config::PullConfig;
use crate::pipeline::{PullError, StopSignal, UnitEnd, UnitInput};
use crate::report::Reporter;
use crate::secret::redact_url;
use crate::sink::Sink;
use crate::source::client::ApiClient;
use crate::state::partitions::checkpoint_path;
use crate::state::run_id::now_rfc3339;
use crate::state::{CheckpointStore, RunStatus, StateError};
use std::sync::Arc;

/// Attempts at the fencing save when the previous holder saved in between.
const FENCE_ATTEMPTS: u32 = 5;

/// A partition, claimed under lease epoch `epoch`, to pull to its end.
pub(super) struct PartitionUnit<'a> {
    /// The job with the partition's source.
    pub(super) config: &'a PullConfig,
    pub(super) sink: Arc<dyn Sink>,
    pub(super) client: ApiClient,
    pub(super) reporter: Arc<dyn Reporter>,
    /// Fires on Ctrl-C and when the lease is lost.
    pub(super) stop: StopSignal,
    pub(super) run_id: &'a str,
    pub(super) partition: &'a str,
    pub(super) epoch: u64,
}

impl Unit for PartitionUnit<'_> {
    async fn work(self) -> Result<UnitEnd, PullError> {
        let mut store = CheckpointStore::at(self.sink.clone(), &checkpoint_path(self.partition));
        let cp = fence(&mut store, self.config, self.run_id).await?;
        let start = start_of(&cp, self.config)?;
        crate::pipeline::pull_unit(UnitInput {
            config: self.config,
            sink: self.sink,
            client: self.client,
            reporter: self.reporter,
            stop: self.stop,
            store,
            checkpoint: cp,
            start,
            previous_schema: None,
            chunk_stem: chunk_stem(self.partition, self.epoch),
        })
        .await
    }
}

/// `part-<partition>-<epoch>`: the partition keeps its chunks apart from the others', the
/// epoch from those of an earlier holder of its lease.
pub(super) fn chunk_stem(partition: &str, epoch: u64) -> String {
    format!("part-{partition}-{epoch}")
}

/// Read the partition's checkpoint and save it again (a fresh one when there is none, or
/// it is an earlier run's), so that the previous holder's next save fails. A save that
/// loses to the previous holder's is retried on what it saved.
async fn fence(
    store: &mut CheckpointStore,
    config: &PullConfig,
    run_id: &str,
) -> Result<crate::state::Checkpoint, PullError> {
    let source_url = redact_url(&config.source.url);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut cp = match store.load().await? {
            Some(cp) if cp.run_id == run_id => {
                if cp.source_url != source_url {
                    return Err(PullError::SourceChanged {
                        run_id: run_id.to_string(),
                        saved: cp.source_url,
                        configured: source_url,
                    });
                }
                cp
            }
            _ => new_checkpoint(config, run_id.to_string(), None)?,
        };
        cp.status = RunStatus::Running;
        cp.updated_at = now_rfc3339();
        match store.save(&cp).await {
            Ok(()) => return Ok(cp),
            Err(StateError::LostRace { .. }) if attempt < FENCE_ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
