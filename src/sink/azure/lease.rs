//! The job lock on Azure: a blob lease on `_state/lock`, renewed in the background, whose
//! blob records the holder ([`LockHolder`]) and, at every renewal, when it last renewed — so
//! that a run that finds the job locked can say how many seconds of the lease are left, and
//! can tell a holder that crashed on this same machine (its process no longer exists) from a
//! live one. Such a lease is broken and taken over at once instead of blocking the job until
//! it runs out.
//!
//! Why a record write at each renewal: the lease's remaining time cannot be read from the
//! service (only broken, which would end a live run's lease), so the holder says it itself.

use super::{status_and_code, AzureSink, Op};
use crate::sink::{ETag, GetResult, LockGuard, LockHolder, PutMode, Sink, SinkError};
use async_trait::async_trait;
use azure_core::http::Etag;
use azure_storage_blob::models::{
    BlobClientAcquireLeaseOptions, BlobClientBreakLeaseOptions, BlockBlobClientUploadOptions,
};
use azure_storage_blob::{BlobClient, BlockBlobClient};
use bytes::Bytes;
use std::num::NonZero;
use std::time::{Duration, SystemTime};

/// How long a job lock's lease lasts without renewal: a crashed run on another machine
/// blocks the job this long.
pub const LEASE_SECONDS: i32 = 60;

/// Renewal period: a third of the lease, so two renewals may fail before it runs out.
const RENEW_EVERY: Duration = Duration::from_secs(LEASE_SECONDS as u64 / 3);

/// The outcome of one try at the lock.
enum Attempt {
    Taken(AzureLock),
    /// Another run holds it; what its blob says (with the blob's ETag), if readable.
    Held(Option<(LockHolder, ETag)>),
}

impl AzureSink {
    /// [`Sink::lock`] for Azure (see the module doc).
    pub(super) async fn lock_job(
        &self,
        path: &str,
        holder: &LockHolder,
    ) -> Result<Box<dyn LockGuard>, SinkError> {
        let url = self.url_of(path);
        let mut taken_over: Option<LockHolder> = None;
        // A break can race another run that takes the lock first: a few tries, then Busy.
        for _ in 0..3 {
            match self.try_lock(path, holder).await? {
                Attempt::Taken(mut lock) => {
                    lock.taken_over = taken_over;
                    return Ok(Box::new(lock));
                }
                Attempt::Held(Some((theirs, etag)))
                    if taken_over.is_none() && theirs.is_gone_from_this_machine() =>
                {
                    tracing::info!(
                        "the job's lock is held by {theirs}, which no longer exists on this machine: breaking its lease"
                    );
                    self.break_lease(path, &etag).await?;
                    taken_over = Some(theirs);
                }
                Attempt::Held(record) => return Err(busy(&url, record.map(|(h, _)| h))),
            }
        }
        Err(busy(&url, self.record(path).await.map(|(h, _)| h)))
    }

    /// The holder the lock blob names, and the blob's ETag.
    async fn record(&self, path: &str) -> Option<(LockHolder, ETag)> {
        match self.get(path).await {
            Ok(Some(GetResult { data, etag })) => LockHolder::parse(&data).map(|h| (h, etag)),
            _ => None,
        }
    }

    async fn try_lock(&self, path: &str, holder: &LockHolder) -> Result<Attempt, SinkError> {
        let url = self.url_of(path);
        let client = self.blob_client(path)?;
        // Describe ourselves in the lock blob. While another run holds the lease this put is
        // refused (412: lease present), which already answers the question.
        let me = holder.renewed_now(LEASE_SECONDS as u64);
        let record = Bytes::from(serde_json::to_vec(&me).unwrap_or_default());
        match self.put(path, record, PutMode::Overwrite).await {
            Ok(_) => {}
            Err(SinkError::PreconditionFailed { .. }) | Err(SinkError::AlreadyExists { .. }) => {
                return Ok(Attempt::Held(self.record(path).await));
            }
            Err(e) => return Err(e),
        }
        let lease_id = new_lease_id();
        let acquired = self
            .timed(&url, async {
                client
                    .acquire_lease(
                        LEASE_SECONDS,
                        Some(BlobClientAcquireLeaseOptions {
                            proposed_lease_id: Some(lease_id.clone()),
                            ..Default::default()
                        }),
                    )
                    .await
                    .map_err(|e| match status_and_code(&e) {
                        (Some(409), _) => SinkError::AlreadyExists { url: url.clone() },
                        _ => self.map_err(e, &url, Op::Other),
                    })
            })
            .await;
        match acquired {
            Ok(_) => {}
            Err(SinkError::AlreadyExists { .. }) => {
                return Ok(Attempt::Held(self.record(path).await))
            }
            Err(e) => return Err(e),
        }
        let task = spawn_renewals(
            self.blob_client(path)?,
            self.block_blob_client(path)?,
            lease_id.clone(),
            me,
            url.clone(),
        );
        Ok(Attempt::Taken(AzureLock {
            client,
            lease_id,
            url,
            stop: Some(task.0),
            task: task.1,
            taken_over: None,
        }))
    }

    /// Break the lease on the lock blob at once, only if the blob is still the version that
    /// named the dead holder (`etag`): a run that took the lock meanwhile keeps it.
    async fn break_lease(&self, path: &str, etag: &ETag) -> Result<(), SinkError> {
        let url = self.url_of(path);
        let client = self.blob_client(path)?;
        self.timed(&url, async {
            let options = BlobClientBreakLeaseOptions {
                break_period: Some(0),
                if_match: Some(Etag::from(etag.0.clone())),
                ..Default::default()
            };
            match client.break_lease(Some(options)).await {
                Ok(_) => Ok(()),
                // Changed meanwhile (412) or no lease any more (409): the next try decides.
                Err(e) if matches!(status_and_code(&e).0, Some(409 | 412)) => Ok(()),
                Err(e) => Err(self.map_err(e, &url, Op::Other)),
            }
        })
        .await
    }
}

/// A random lease id in the GUID form the service requires.
fn new_lease_id() -> String {
    let hex = format!("{:032x}", rand::random::<u128>());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Renew the lease every [`RENEW_EVERY`] and record the renewal in the blob, until stopped.
/// A renewal that fails is logged: correctness does not rest on the lease (the checkpoint's
/// conditional writes catch a second writer), only the early, friendly refusal does.
fn spawn_renewals(
    lease_client: BlobClient,
    record_client: BlockBlobClient,
    lease_id: String,
    holder: LockHolder,
    url: String,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tokio::time::sleep(RENEW_EVERY) => {
                    if let Err(e) = lease_client.renew_lease(lease_id.clone(), None).await {
                        tracing::warn!("could not renew the job lock's lease on {url}: {}", crate::secret::redact(&e.to_string()));
                        continue;
                    }
                    let me = holder.renewed_now(LEASE_SECONDS as u64);
                    let data = Bytes::from(serde_json::to_vec(&me).unwrap_or_default());
                    let whole = NonZero::new(data.len() as u64).unwrap_or(NonZero::<u64>::MIN);
                    let options = BlockBlobClientUploadOptions {
                        lease_id: Some(lease_id.clone()),
                        partition_size: Some(whole),
                        parallel: Some(NonZero::<usize>::MIN),
                        ..Default::default()
                    };
                    if let Err(e) = record_client.upload(data.into(), Some(options)).await {
                        // Only the "seconds left" estimate of a waiting run suffers.
                        tracing::debug!("could not record the lease renewal on {url}: {}", crate::secret::redact(&e.to_string()));
                    }
                }
            }
        }
    });
    (stop, task)
}

/// The error for a lock held by `record`'s holder, with how long its lease has left.
fn busy(url: &str, record: Option<LockHolder>) -> SinkError {
    let left = record
        .as_ref()
        .and_then(|h| h.lease_left(SystemTime::now()));
    let hint = match left {
        Some(left) => format!(
            "; its lease has {} s left (that run renews it every {} s while it lives; if it crashed, the job is free once the lease runs out). Pass --wait-for-lock [DURATION] to wait for it",
            left.as_secs(),
            RENEW_EVERY.as_secs()
        ),
        None => format!(
            "; if that run crashed, its lease expires within {LEASE_SECONDS} s. Pass --wait-for-lock [DURATION] to wait for it"
        ),
    };
    SinkError::Busy {
        url: url.to_string(),
        holder: record
            .map(|h| h.to_string())
            .unwrap_or_else(|| "an unknown process".into()),
        hint,
    }
}

/// A held lease on the job's lock blob, renewed in the background until released.
struct AzureLock {
    client: BlobClient,
    lease_id: String,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    taken_over: Option<LockHolder>,
}

impl std::fmt::Debug for AzureLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureLock")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl LockGuard for AzureLock {
    async fn release(mut self: Box<Self>) -> Result<(), SinkError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.client
            .release_lease(self.lease_id.clone(), None)
            .await
            .map(|_| ())
            .map_err(|e| SinkError::Http {
                url: self.url.clone(),
                status: e.http_status().map(u16::from).unwrap_or(0),
                message: format!(
                    "could not release the job lock's lease (it expires within {LEASE_SECONDS} s): {}",
                    crate::secret::redact(&e.to_string())
                ),
            })
    }

    fn taken_over_from(&self) -> Option<&LockHolder> {
        self.taken_over.as_ref()
    }
}

impl Drop for AzureLock {
    fn drop(&mut self) {
        // Not released (an error path): stop renewing, and the lease runs out by itself.
        self.task.abort();
    }
}
