//! Reading and writing the checkpoint through any [`Sink`], with the sink's conditional puts:
//! creating fails if a checkpoint appeared meanwhile, updating fails if it changed since this
//! run last wrote it. Either means another writer is at work on the job, and this run stops
//! rather than overwrite its progress.
//!
//! A retried conditional write can report a conflict for the writer's own success (the first
//! attempt committed, the response was lost, the retry found the new ETag). So a conflict is
//! checked against the stored bytes before it is believed.

use super::checkpoint::{Checkpoint, CHECKPOINT_VERSION};
use super::CHECKPOINT_PATH;
use crate::sink::{ETag, PutMode, Sink, SinkError};
use bytes::Bytes;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the checkpoint {url} was changed by another writer while this run was using it; stopping without overwriting it. Is another gatelake run working on this job?")]
    LostRace { url: String },
    #[error("the checkpoint {url} is not readable: {reason}. Move it aside to start the job afresh (its run's chunks stay in place)")]
    Corrupt { url: String, reason: String },
    #[error("the checkpoint {url} has format version {found}; this gatelake reads version {CHECKPOINT_VERSION}. Use a newer gatelake")]
    Version { url: String, found: u32 },
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// The checkpoint of one job, with the ETag this run last saw.
#[derive(Debug)]
pub struct CheckpointStore {
    sink: Arc<dyn Sink>,
    /// `_state/checkpoint.json`, or a partition's own.
    path: String,
    etag: Option<ETag>,
}

impl CheckpointStore {
    pub fn new(sink: Arc<dyn Sink>) -> Self {
        Self::at(sink, CHECKPOINT_PATH)
    }

    /// The checkpoint at `path` (a partition's, `_state/partitions/<id>/checkpoint.json`).
    pub fn at(sink: Arc<dyn Sink>, path: &str) -> Self {
        Self {
            sink,
            path: path.to_string(),
            etag: None,
        }
    }

    pub fn url(&self) -> String {
        self.sink.url_of(&self.path)
    }

    /// Read the checkpoint (and remember its ETag for the next write).
    pub async fn load(&mut self) -> Result<Option<Checkpoint>, StateError> {
        let Some(got) = self.sink.get(&self.path).await? else {
            self.etag = None;
            return Ok(None);
        };
        let url = self.url();
        #[derive(serde::Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let version = serde_json::from_slice::<VersionOnly>(&got.data)
            .map_err(|e| StateError::Corrupt {
                url: url.clone(),
                reason: e.to_string(),
            })?
            .version;
        if version != CHECKPOINT_VERSION {
            return Err(StateError::Version {
                url,
                found: version,
            });
        }
        let cp = serde_json::from_slice(&got.data).map_err(|e| StateError::Corrupt {
            url,
            reason: e.to_string(),
        })?;
        self.etag = Some(got.etag);
        Ok(Some(cp))
    }

    /// Write `cp`: create it if this run has not seen a checkpoint, else replace the version
    /// it last saw.
    pub async fn save(&mut self, cp: &Checkpoint) -> Result<(), StateError> {
        let mut data = serde_json::to_vec_pretty(cp).map_err(|e| StateError::Corrupt {
            url: self.url(),
            reason: e.to_string(),
        })?;
        data.push(b'\n');
        let data = Bytes::from(data);
        let mode = match &self.etag {
            None => PutMode::Create,
            Some(etag) => PutMode::Update(etag.clone()),
        };
        match self.sink.put(&self.path, data.clone(), mode).await {
            Ok(put) => {
                self.etag = Some(put.etag);
                Ok(())
            }
            Err(SinkError::AlreadyExists { .. } | SinkError::PreconditionFailed { .. }) => {
                // Our own write may have landed on an earlier attempt: believe the conflict
                // only if the stored bytes are not ours.
                match self.sink.get(&self.path).await? {
                    Some(current) if current.data == data => {
                        self.etag = Some(current.etag);
                        Ok(())
                    }
                    _ => Err(StateError::LostRace { url: self.url() }),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}
