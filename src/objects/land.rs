//! `--land as-is`: an object copied byte for byte to `<run>/<name>`, its size and checksum
//! verified, through the sink's multi-part writes.
//!
//! ```text
//! head (pins ETag / version) ─► one streamed GET ─► part 0..n ─► stage_part  (up to
//!                                                     │                      `concurrency`
//!                                                     └─► verifier, in order  parts in flight,
//!                              ─► verify ─► commit_parts (atomic)            every object)
//! ```
//!
//! - One GET per object, read a part at a time ([`ObjectReader::sequential`]), rather than a
//!   ranged GET per part: some endpoints read the whole object for every range (moto), every
//!   range is a request more, and the verifier wants the bytes in order anyway. Parts are
//!   staged in parallel with the read of the next ones.
//! - Memory is bounded by the run's part permits: a part takes its permit before its bytes
//!   are read and gives it back once staged, so at most `concurrency × part_size` bytes are
//!   in this process whatever the objects' sizes. While an object waits for a permit its
//!   GET is not read (TCP holds the sender back). A stage never waits on anything but the
//!   storage, so every permit comes back.
//! - A resumed object stages only the parts the storage does not hold (the checkpoint's
//!   record is checked against [`Sink::staged_parts`]); the parts it holds are read again to
//!   be hashed, never staged twice.
//! - `--copy-mode server`: the storage reads presigned range URLs itself (`Put Block From
//!   URL`), so the bytes never pass through here; only the size is checked (the service
//!   copies exactly the ranges asked for, from the object as `head` saw it).
//! - An object no larger than one part is one atomic `put`.

use super::{Checksum, ObjectLocation, ObjectsConfig};
use super::{CopyMode, ObjectError, ObjectHead, ObjectReader, ObjectRef, ObjectVerifier};
use crate::sink::{PutMode, Sink, SinkError};
use crate::state::objects::{ManifestObject, ObjectChecksum, StagingObject};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use futures::FutureExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Azure's most blocks in one blob.
pub const MAX_PARTS: u64 = 50_000;
/// How long a presigned range URL handed to the storage service stays valid.
const PRESIGNED_FOR: Duration = Duration::from_secs(3600);

/// Why an object did not land. Every variant names the object.
#[derive(Debug, thiserror::Error)]
pub enum LandError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("object {object}: {source}")]
    Sink {
        object: String,
        #[source]
        source: SinkError,
    },
    #[error("object {object} is {size} bytes: at --part-size {part_size} that is {parts} parts, more than the {MAX_PARTS} blocks a blob can hold. Use --part-size {suggested}MiB or more")]
    TooManyParts {
        object: String,
        size: u64,
        part_size: u64,
        parts: u64,
        suggested: u64,
    },
    #[error("object {object}: saving its progress: {message}")]
    Progress { object: String, message: String },
    #[error("object {object}: internal error: {message}")]
    Internal { object: String, message: String },
}

impl LandError {
    /// The source's own error, when the object's read failed.
    pub fn object_error(&self) -> Option<&ObjectError> {
        match self {
            LandError::Object(e) => Some(e),
            _ => None,
        }
    }
}

/// Where the run keeps an object's staged parts (its checkpoint). A record may be lost in a
/// kill: the storage's own list of staged parts is what a resume trusts.
#[async_trait]
pub trait PartLedger: Send + Sync {
    async fn staged(&self, staging: &StagingObject, part: u32) -> Result<(), String>;
}

/// Lands objects as they are. Cheap to clone; every clone shares the run's part permits.
#[derive(Debug, Clone)]
pub struct AsIsLander {
    reader: ObjectReader,
    sink: Arc<dyn Sink>,
    mode: CopyMode,
    part_size: u64,
    permits: Arc<Semaphore>,
}

/// One object to land, and where.
pub struct LandJob<'a> {
    pub object: &'a ObjectRef,
    /// `<run>/<name>`.
    pub path: String,
    /// The run's id, part of the multi-part write's id.
    pub run_id: &'a str,
    /// The checkpoint's record of the object's staged parts, from an interrupted attempt.
    pub resume: Option<&'a StagingObject>,
    pub ledger: Arc<dyn PartLedger>,
}

impl AsIsLander {
    pub fn new(reader: ObjectReader, sink: Arc<dyn Sink>, config: &ObjectsConfig) -> Self {
        Self {
            reader,
            sink,
            mode: config.copy_mode,
            part_size: config.part_size.max(1),
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
        }
    }

    /// Land one object; returns its manifest entry.
    pub async fn land(&self, job: LandJob<'_>) -> Result<ManifestObject, LandError> {
        let object = job.object;
        let shown = source_of(object);
        // A listed object no larger than a part: one GET pinned to the listed ETag, no HEAD.
        if self.mode == CopyMode::Client
            && job.resume.is_none()
            && object.size.is_some_and(|s| s <= self.part_size)
        {
            let permit = self.permit(&shown).await?;
            if let Some((head, data)) = self.reader.get_whole(object).await? {
                let checks = self.put_one(&job, &head, data).await?;
                drop(permit);
                return Ok(self.entry_of(&job, shown, &head, checks));
            }
        }
        let head = self.reader.head(object).await?;
        // A resumed object keeps the part size it was cut with, so its staged parts fit.
        let part_size = job
            .resume
            .map(|s| s.part_size)
            .filter(|p| *p > 0)
            .unwrap_or(self.part_size);
        let parts = head.size.div_ceil(part_size).max(1);
        if parts > MAX_PARTS {
            return Err(LandError::TooManyParts {
                object: shown,
                size: head.size,
                part_size,
                parts,
                suggested: head.size.div_ceil(MAX_PARTS).div_ceil(1 << 20),
            });
        }
        let sink_err = |source| LandError::Sink {
            object: shown.clone(),
            source,
        };
        // An empty object has no range for the service to copy: both modes put it.
        let one_put = (parts == 1 && self.mode == CopyMode::Client) || head.size == 0;
        let (verified, checksum) = if one_put {
            // One part: one GET, one atomic put.
            let permit = self.permit(&shown).await?;
            let data = self.read(object, &head, 0..head.size).await?;
            let checks = self.put_one(&job, &head, data).await?;
            drop(permit);
            checks
        } else {
            let staging = StagingObject {
                name: object.name.clone(),
                upload: upload_id(job.run_id, &object.name, part_size),
                part_size,
                parts: parts as u32,
                staged: Vec::new(),
            };
            let staged = self.staged_before(&job, &staging).await?;
            let checks = match self.mode {
                CopyMode::Client => {
                    self.copy_parts(&job, &head, &staging, &staged, &shown)
                        .await?
                }
                CopyMode::Server => {
                    self.server_parts(&job, &head, &staging, &staged, &shown)
                        .await?
                }
            };
            self.sink
                .commit_parts(
                    &job.path,
                    &staging.upload,
                    staging.parts,
                    PutMode::Overwrite,
                )
                .await
                .map_err(sink_err)?;
            checks
        };
        Ok(self.entry_of(&job, shown, &head, (verified, checksum)))
    }

    /// Verify an object read whole, then put it in one atomic write.
    async fn put_one(
        &self,
        job: &LandJob<'_>,
        head: &ObjectHead,
        data: Bytes,
    ) -> Result<(Vec<String>, Option<Checksum>), LandError> {
        let mut verifier = ObjectVerifier::new(job.object, head)?;
        verifier.update(&data);
        let verified = verifier.finish()?;
        self.sink
            .put(&job.path, data, PutMode::Overwrite)
            .await
            .map_err(|source| LandError::Sink {
                object: source_of(job.object),
                source,
            })?;
        Ok((
            names_of(&verified.checksums),
            verified.checksums.first().cloned(),
        ))
    }

    /// The manifest's entry for an object landed at `job.path`.
    fn entry_of(
        &self,
        job: &LandJob<'_>,
        shown: String,
        head: &ObjectHead,
        (verified, checksum): (Vec<String>, Option<Checksum>),
    ) -> ManifestObject {
        let object = job.object;
        let mut checked = vec!["size".to_string()];
        checked.extend(verified);
        ManifestObject {
            name: object.name.clone(),
            source: shown,
            version_id: head.version_id.clone().or(object.version_id.clone()),
            etag: head.etag.clone().or(object.etag.clone()),
            size: head.size,
            checksum: checksum.map(|c| checksum_entry(&c)),
            verified: checked,
            path: job.path.clone(),
            url: self.sink.url_of(&job.path),
            land: "as-is".into(),
            mode: match self.mode {
                CopyMode::Client => "client".into(),
                CopyMode::Server => "server".into(),
            },
        }
    }

    async fn permit(&self, object: &str) -> Result<OwnedSemaphorePermit, LandError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| LandError::Internal {
                object: object.to_string(),
                message: format!("part permits: {e}"),
            })
    }

    async fn read(
        &self,
        object: &ObjectRef,
        head: &ObjectHead,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, LandError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        Ok(self.reader.get_range(object, head, range).await?)
    }

    /// The parts an interrupted attempt staged that the storage still holds.
    async fn staged_before(
        &self,
        job: &LandJob<'_>,
        staging: &StagingObject,
    ) -> Result<Vec<u32>, LandError> {
        let Some(saved) = job
            .resume
            .filter(|s| s.upload == staging.upload && s.parts == staging.parts)
        else {
            return Ok(Vec::new());
        };
        let held = self
            .sink
            .staged_parts(&job.path, &staging.upload)
            .await
            .map_err(|source| LandError::Sink {
                object: source_of(job.object),
                source,
            })?;
        Ok(saved
            .staged
            .iter()
            .copied()
            .filter(|p| held.binary_search(p).is_ok())
            .collect())
    }

    /// Client mode: the object read in order through one streamed GET, a part at a time
    /// (each under a permit taken before its bytes are read), fed to the verifier as it
    /// comes, and staged (in parallel with the read of the next parts) unless the storage
    /// holds it already. A part's permit is released once it is staged.
    async fn copy_parts(
        &self,
        job: &LandJob<'_>,
        head: &ObjectHead,
        staging: &StagingObject,
        staged: &[u32],
        shown: &str,
    ) -> Result<(Vec<String>, Option<Checksum>), LandError> {
        let mut verifier = ObjectVerifier::new(job.object, head)?;
        let mut stream = self.reader.sequential(job.object, head, 0..head.size)?;
        let mut in_flight: FuturesUnordered<tokio::task::JoinHandle<Result<(), LandError>>> =
            FuturesUnordered::new();
        let task_error = |e: tokio::task::JoinError| LandError::Internal {
            object: shown.to_string(),
            message: format!("part task: {e}"),
        };
        for part in 0..staging.parts {
            // A failed stage stops the read at the next part.
            while let Some(Some(done)) = in_flight.next().now_or_never() {
                done.map_err(task_error)??;
            }
            let permit = self.permit(shown).await?;
            let range = part_range(part, staging.part_size, head.size);
            let data = stream.next_part(range.end - range.start).await?;
            verifier.update(&data);
            if staged.binary_search(&part).is_ok() {
                continue;
            }
            let (lander, object) = (self.clone(), job.object.clone());
            let (path, rec, ledger) = (job.path.clone(), staging.clone(), job.ledger.clone());
            in_flight.push(tokio::spawn(async move {
                lander
                    .stage(&object, &path, &rec, part, data, &*ledger)
                    .await?;
                drop(permit);
                Ok::<_, LandError>(())
            }));
        }
        while let Some(done) = in_flight.next().await {
            done.map_err(task_error)??;
        }
        let verified = verifier.finish()?;
        Ok((
            names_of(&verified.checksums),
            verified.checksums.first().cloned(),
        ))
    }

    /// Server mode: the storage reads each part's range from a presigned URL itself.
    async fn server_parts(
        &self,
        job: &LandJob<'_>,
        head: &ObjectHead,
        staging: &StagingObject,
        staged: &[u32],
        shown: &str,
    ) -> Result<(Vec<String>, Option<Checksum>), LandError> {
        if let Some(stated) = job.object.size.filter(|s| *s != head.size) {
            return Err(ObjectError::Mismatch {
                object: shown.to_string(),
                what: "size (the reference's)".into(),
                expected: format!("{stated} bytes"),
                actual: format!("{} bytes", head.size),
            }
            .into());
        }
        let url = self.reader.presigned_url(job.object, PRESIGNED_FOR).await?;
        let url = Arc::new(url);
        let mut tasks = FuturesOrdered::new();
        let mut next: u32 = 0;
        loop {
            tokio::select! {
                biased;
                Some(done) = tasks.next(), if !tasks.is_empty() => {
                    match done {
                        Ok(r) => r?,
                        Err(e) => return Err(LandError::Internal {
                            object: shown.to_string(),
                            message: format!("part task: {e}"),
                        }),
                    }
                }
                permit = self.permit(shown), if next < staging.parts => {
                    let permit = permit?;
                    let part = next;
                    next += 1;
                    if staged.binary_search(&part).is_ok() {
                        continue;
                    }
                    let range = part_range(part, staging.part_size, head.size);
                    let (sink, url, path) = (self.sink.clone(), url.clone(), job.path.clone());
                    let (rec, object, ledger) = (staging.clone(), shown.to_string(), job.ledger.clone());
                    tasks.push_back(tokio::spawn(async move {
                        sink.stage_part_from_url(&path, &rec.upload, part, &url, range)
                            .await
                            .map_err(|source| LandError::Sink { object: object.clone(), source })?;
                        drop(permit);
                        ledger
                            .staged(&rec, part)
                            .await
                            .map_err(|message| LandError::Progress { object, message })
                    }));
                }
                else => break,
            }
        }
        Ok((Vec::new(), None))
    }

    /// Stage one part and record it.
    async fn stage(
        &self,
        object: &ObjectRef,
        path: &str,
        staging: &StagingObject,
        part: u32,
        data: Bytes,
        ledger: &dyn PartLedger,
    ) -> Result<(), LandError> {
        self.sink
            .stage_part(path, &staging.upload, part, data)
            .await
            .map_err(|source| LandError::Sink {
                object: source_of(object),
                source,
            })?;
        ledger
            .staged(staging, part)
            .await
            .map_err(|message| LandError::Progress {
                object: source_of(object),
                message,
            })
    }
}

/// Bytes of part `part` of an object of `size` bytes cut in `part_size` parts.
pub fn part_range(part: u32, part_size: u64, size: u64) -> std::ops::Range<u64> {
    let start = (part as u64 * part_size).min(size);
    start..(start + part_size).min(size)
}

/// The id of an object's multi-part write: the same for every attempt of the same run at
/// the same part size, so a resumed run finds the parts; `[0-9a-f]`, 32 characters.
pub fn upload_id(run_id: &str, name: &str, part_size: u64) -> String {
    let mut h = Sha256::new();
    for piece in [run_id.as_bytes(), name.as_bytes(), &part_size.to_be_bytes()] {
        h.update((piece.len() as u64).to_be_bytes());
        h.update(piece);
    }
    hex::encode(&h.finalize()[..16])
}

/// How an object is named in manifests and messages: `s3://bucket/key`, or its URL without
/// the query string (a presigned URL's signature is a secret).
pub fn source_of(object: &ObjectRef) -> String {
    match &object.location {
        ObjectLocation::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        ObjectLocation::Url { url } => strip_query(url),
    }
}

/// A URL without its query string and fragment.
pub fn strip_query(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_string(),
    }
}

/// The checksums' names for the manifest's `verified` (e.g. `crc32c`, `md5`).
fn names_of(checksums: &[Checksum]) -> Vec<String> {
    checksums
        .iter()
        .map(|c| checksum_entry(c).algorithm)
        .collect()
}

/// A checksum as the checkpoint and manifest keep it.
pub fn checksum_entry(c: &Checksum) -> ObjectChecksum {
    let (algorithm, value) = match c {
        Checksum::Crc32(v) => ("crc32", v),
        Checksum::Crc32c(v) => ("crc32c", v),
        Checksum::Crc64nvme(v) => ("crc64nvme", v),
        Checksum::Sha1(v) => ("sha1", v),
        Checksum::Sha256(v) => ("sha256", v),
        Checksum::Md5(v) => ("md5", v),
    };
    ObjectChecksum {
        algorithm: algorithm.into(),
        value: value.clone(),
    }
}

/// A checksum from its checkpoint form.
pub fn checksum_of(c: &ObjectChecksum) -> Option<Checksum> {
    let v = c.value.clone();
    Some(match c.algorithm.as_str() {
        "crc32" => Checksum::Crc32(v),
        "crc32c" => Checksum::Crc32c(v),
        "crc64nvme" => Checksum::Crc64nvme(v),
        "sha1" => Checksum::Sha1(v),
        "sha256" => Checksum::Sha256(v),
        "md5" => Checksum::Md5(v),
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_object_exactly() {
        assert_eq!(part_range(0, 10, 25), 0..10);
        assert_eq!(part_range(2, 10, 25), 20..25);
        assert_eq!(part_range(0, 10, 0), 0..0);
        let size: u64 = 100 * (1 << 20) + 7;
        let n = size.div_ceil(8 << 20) as u32;
        let total: u64 = (0..n)
            .map(|p| part_range(p, 8 << 20, size))
            .map(|r| r.end - r.start)
            .sum();
        assert_eq!(total, size);
    }

    #[test]
    fn upload_ids_are_stable_short_and_distinct() {
        let a = upload_id("20261207T000000Z-1a2b", "dir/a.csv", 8 << 20);
        assert_eq!(a, upload_id("20261207T000000Z-1a2b", "dir/a.csv", 8 << 20));
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, upload_id("20261207T000000Z-1a2b", "dir/a.csv", 16 << 20));
        assert_ne!(a, upload_id("20261207T000000Z-1a2b", "dir/b.csv", 8 << 20));
    }

    #[test]
    fn presigned_urls_are_named_without_their_signature() {
        let o = ObjectRef {
            location: ObjectLocation::Url {
                url: "https://b.s3.amazonaws.com/k/a.gz?X-Amz-Signature=abc&X-Amz-Credential=x"
                    .into(),
            },
            name: "a.gz".into(),
            size: None,
            checksum: None,
            records: None,
            etag: None,
            version_id: None,
            last_modified: None,
        };
        assert_eq!(source_of(&o), "https://b.s3.amazonaws.com/k/a.gz");
        for c in [
            Checksum::Crc32c("AAAAAA==".into()),
            Checksum::Md5("00ff".into()),
        ] {
            assert_eq!(checksum_of(&checksum_entry(&c)), Some(c));
        }
    }
}
