//! The state of a partitioned run, shared by every worker through the sink's conditional puts
//! (no coordinator): the **run record** (`_state/run.json`), and per partition its
//! checkpoint (`_state/partitions/<id>/checkpoint.json`, an ordinary [`Checkpoint`]) and its
//! **lease** (`_state/partitions/<id>/lease.json`).
//!
//! - The run record is created once with `PutMode::Create`: a worker that loses the race
//!   reads the winner's. It holds the partition list, so every worker works from the same one
//!   even when it came from the API (ranges), and the spec's fingerprint, so a worker of
//!   another job definition refuses to join.
//! - A lease is only ever replaced with `PutMode::Update(etag)`: claiming one (unclaimed, or
//!   expired) raises its epoch, so of two workers that read the same lease only one claims it.
//!   Leases and checkpoints name the run they belong to: those of an earlier run of the job
//!   count as unclaimed and fresh for the current one.
//! - The commit of the run is itself a lease (`_state/commit.json`), so exactly one worker
//!   writes the manifest and `_SUCCESS`, and another takes over if that worker dies.
//!
//! This module reads and writes these objects; what a worker does with them (claim, pull,
//! renew, mark done, commit) is `crate::run::partitioned`. `gatelake status` reads them with
//! [`read_run`] and [`read_partitions`].

use super::checkpoint::RunStatus;
use super::store::StateError;
use crate::partition::Partition;
use crate::sink::{ETag, LockHolder, PutMode, Sink, SinkError};
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The format version of the run record and of leases.
pub const RUN_RECORD_VERSION: u32 = 1;
pub const RUN_RECORD_PATH: &str = "_state/run.json";
pub const COMMIT_LEASE_PATH: &str = "_state/commit.json";
pub const PARTITIONS_DIR: &str = "_state/partitions";

/// Leases read at once by [`read_partitions`].
const READ_AT_ONCE: usize = 16;

/// `_state/partitions/<id>/checkpoint.json`.
pub fn checkpoint_path(partition: &str) -> String {
    format!("{PARTITIONS_DIR}/{partition}/checkpoint.json")
}

/// `_state/partitions/<id>/lease.json`.
pub fn lease_path(partition: &str) -> String {
    format!("{PARTITIONS_DIR}/{partition}/lease.json")
}

/// `_state/run.json`: the partitioned run the job's workers are working on (or finished).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub version: u32,
    pub job: String,
    pub run_id: String,
    /// The key of the invocation that created the run (`--run-key`): a worker with this key
    /// (or one of `joined_keys`) that arrives after the commit finds nothing left instead of
    /// starting another run. `None`: created without a key (a plain pull).
    pub run_key: Option<String>,
    /// Keys of later invocations that joined the unfinished run (a rerun after failed
    /// partitions), so their late workers also find nothing left after the commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined_keys: Vec<String>,
    /// The partition spec's fingerprint: a worker of another job definition refuses to join.
    pub spec_fingerprint: String,
    /// `running` until the commit, then `complete`.
    pub status: RunStatus,
    /// Every partition, in order; a worker of `--shard K/N` takes those whose index % N == K.
    pub partitions: Vec<Partition>,
    pub created_at: String,
    /// When the run was committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
}

impl RunRecord {
    /// Whether an invocation with `key` belongs to this run.
    pub fn has_key(&self, key: &str) -> bool {
        self.run_key.as_deref() == Some(key) || self.joined_keys.iter().any(|k| k == key)
    }
}

/// Where a partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Nobody has claimed it (or its holder let it go).
    Waiting,
    /// A worker holds it until `expires_at` (renewed while it works).
    Working,
    /// Pulled to its end; its checkpoint lists its files.
    Done,
    /// Failed permanently; `error` says why. A worker started after the failure retries it.
    Failed,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Waiting => "waiting",
            LeaseState::Working => "working",
            LeaseState::Done => "done",
            LeaseState::Failed => "failed",
        }
    }
}

/// `_state/partitions/<id>/lease.json` (and `_state/commit.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub version: u32,
    /// The run the lease belongs to: a lease of another run counts as unclaimed.
    pub run_id: String,
    /// The partition's id (`commit` for the commit lease).
    pub partition: String,
    pub state: LeaseState,
    /// Raised by every claim: two workers that read the same lease cannot both claim it, and
    /// a chunk's name carries the epoch it was written under, so a holder that lost its lease
    /// never overwrites a file of the one that took over.
    pub epoch: u64,
    /// The process holding (or that last held) the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<LockHolder>,
    /// The holding worker's id (`--worker-id`, else host/pid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// RFC 3339: after this a `working` lease may be taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Why the partition failed (`failed`), as the user sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Files, records and pages of the partition once `done` (its checkpoint is the truth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u64>,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
}

impl Lease {
    /// An unclaimed lease of `partition` in `run_id` (what a missing lease object means).
    pub fn unclaimed(run_id: &str, partition: &str) -> Lease {
        Lease {
            version: RUN_RECORD_VERSION,
            run_id: run_id.to_string(),
            partition: partition.to_string(),
            state: LeaseState::Waiting,
            epoch: 0,
            holder: None,
            worker: None,
            expires_at: None,
            error: None,
            files: None,
            rows: None,
            pages: None,
            updated_at: super::run_id::now_rfc3339(),
        }
    }

    /// The expiry as a time (`None`: none recorded or unreadable, i.e. expired).
    pub fn expires(&self) -> Option<time::OffsetDateTime> {
        time::OffsetDateTime::parse(
            self.expires_at.as_deref()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    }

    /// Whether a `working` lease has run out at `now` (clocks of two machines differ a
    /// little: leases are long against that).
    pub fn expired_at(&self, now: time::OffsetDateTime) -> bool {
        self.expires().is_none_or(|t| t <= now)
    }

    /// When the lease last changed.
    pub fn updated(&self) -> Option<time::OffsetDateTime> {
        time::OffsetDateTime::parse(
            &self.updated_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    }

    /// Who holds it, for messages and `status`.
    pub fn holder_name(&self) -> Option<String> {
        match (&self.worker, &self.holder) {
            (Some(w), _) => Some(w.clone()),
            (None, Some(h)) => Some(h.to_string()),
            (None, None) => None,
        }
    }
}

/// A lease as read, with the ETag its next conditional write must match (`None`: no lease
/// object yet, so the next write creates it).
#[derive(Debug, Clone)]
pub struct LeaseRead {
    pub lease: Lease,
    pub etag: Option<ETag>,
}

/// One partition as `gatelake status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionStatus {
    /// The partition's place in the run's list (what `--shard K/N` divides).
    pub index: usize,
    pub id: String,
    /// What it covers (window, keys, range).
    pub covers: crate::partition::Covers,
    /// `waiting`, `working`, `done` or `failed`; a `working` lease past its expiry is still
    /// `working` here with `expired: true` (the next worker to look takes it over).
    pub state: LeaseState,
    pub expired: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub epoch: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u64>,
    pub updated_at: String,
}

/// Read the job's run record; `Ok(None)` when the job never ran partitioned.
pub async fn read_run(sink: &dyn Sink) -> Result<Option<RunRecord>, StateError> {
    Ok(read_run_tagged(sink).await?.map(|(r, _)| r))
}

/// The run record with its ETag.
pub async fn read_run_tagged(sink: &dyn Sink) -> Result<Option<(RunRecord, ETag)>, StateError> {
    let Some(got) = sink.get(RUN_RECORD_PATH).await? else {
        return Ok(None);
    };
    let record: RunRecord = parse(sink, RUN_RECORD_PATH, &got.data)?;
    Ok(Some((record, got.etag)))
}

/// Every partition of `run` with its lease, in the run's order (leases of another run
/// count as waiting).
pub async fn read_partitions(
    sink: &dyn Sink,
    run: &RunRecord,
) -> Result<Vec<PartitionStatus>, StateError> {
    let now = time::OffsetDateTime::now_utc();
    stream::iter(run.partitions.iter().enumerate())
        .map(|(index, p)| async move {
            let read = read_lease(sink, &lease_path(&p.id), &run.run_id, &p.id).await?;
            let l = read.lease;
            Ok::<_, StateError>(PartitionStatus {
                index,
                id: p.id.clone(),
                covers: p.covers.clone(),
                state: l.state,
                expired: l.state == LeaseState::Working && l.expired_at(now),
                worker: l.holder_name(),
                expires_at: l.expires_at.clone(),
                epoch: l.epoch,
                error: l.error.clone(),
                files: l.files,
                rows: l.rows,
                pages: l.pages,
                updated_at: l.updated_at,
            })
        })
        .buffered(READ_AT_ONCE)
        .try_collect()
        .await
}

/// Read the lease at `path` for `partition` of `run_id`: a missing lease, or one of another
/// run, reads as unclaimed (keeping the ETag, so a claim replaces it conditionally).
pub async fn read_lease(
    sink: &dyn Sink,
    path: &str,
    run_id: &str,
    partition: &str,
) -> Result<LeaseRead, StateError> {
    let Some(got) = sink.get(path).await? else {
        return Ok(LeaseRead {
            lease: Lease::unclaimed(run_id, partition),
            etag: None,
        });
    };
    let lease: Lease = parse(sink, path, &got.data)?;
    let lease = if lease.run_id == run_id {
        lease
    } else {
        // An earlier run's: keep its epoch rising, so chunk names never repeat.
        Lease {
            epoch: lease.epoch,
            ..Lease::unclaimed(run_id, partition)
        }
    };
    Ok(LeaseRead {
        lease,
        etag: Some(got.etag),
    })
}

/// Write `lease` at `path` conditionally on `etag` (create when `None`). A conflict is
/// [`StateError::LostRace`]: another worker changed the lease since it was read.
pub async fn write_lease(
    sink: &dyn Sink,
    path: &str,
    lease: &Lease,
    etag: Option<&ETag>,
) -> Result<ETag, StateError> {
    let mode = match etag {
        Some(e) => PutMode::Update(e.clone()),
        None => PutMode::Create,
    };
    put_json(sink, path, lease, mode).await
}

/// Create the run record; [`StateError::LostRace`] when another worker created one first.
pub async fn create_run(sink: &dyn Sink, record: &RunRecord) -> Result<ETag, StateError> {
    put_json(sink, RUN_RECORD_PATH, record, PutMode::Create).await
}

/// Replace the run record last read with `etag`; [`StateError::LostRace`] on a conflict.
pub async fn update_run(
    sink: &dyn Sink,
    record: &RunRecord,
    etag: &ETag,
) -> Result<ETag, StateError> {
    put_json(sink, RUN_RECORD_PATH, record, PutMode::Update(etag.clone())).await
}

/// A time `ttl` from `now`, as a lease's `expires_at`.
pub fn expiry(now: time::OffsetDateTime, ttl: Duration) -> String {
    super::run_id::rfc3339(now + ttl)
}

async fn put_json<T: Serialize>(
    sink: &dyn Sink,
    path: &str,
    value: &T,
    mode: PutMode,
) -> Result<ETag, StateError> {
    let mut data = serde_json::to_vec_pretty(value).map_err(|e| StateError::Corrupt {
        url: sink.url_of(path),
        reason: e.to_string(),
    })?;
    data.push(b'\n');
    let data = Bytes::from(data);
    match sink.put(path, data.clone(), mode).await {
        Ok(put) => Ok(put.etag),
        Err(SinkError::AlreadyExists { .. } | SinkError::PreconditionFailed { .. }) => {
            // A retried write may report a conflict for its own first attempt's success.
            match sink.get(path).await? {
                Some(current) if current.data == data => Ok(current.etag),
                _ => Err(StateError::LostRace {
                    url: sink.url_of(path),
                }),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    sink: &dyn Sink,
    path: &str,
    data: &[u8],
) -> Result<T, StateError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let url = sink.url_of(path);
    let version = serde_json::from_slice::<VersionOnly>(data)
        .map_err(|e| StateError::Corrupt {
            url: url.clone(),
            reason: e.to_string(),
        })?
        .version;
    if version != RUN_RECORD_VERSION {
        return Err(StateError::Version {
            url,
            found: version,
        });
    }
    serde_json::from_slice(data).map_err(|e| StateError::Corrupt {
        url,
        reason: e.to_string(),
    })
}
