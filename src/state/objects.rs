//! What a run whose units are S3 objects records in its checkpoint ([`ObjectsProgress`]), and
//! what the job remembers across runs ([`CopiedLedger`], `_state/copied.json`), so that:
//! - a killed run resumes with the same objects (its plan, saved before the first byte is
//!   read), lands each one not yet landed, and stages again only the parts of a large object
//!   that the storage does not hold;
//! - a later run of the same job copies only what no earlier run copied (key + version id or
//!   ETag).
//!
//! The entries are plain data: the objects' own vocabulary (`crate::objects`) sits above the
//! state, and the run's driver converts between the two. Nothing here is a secret: an object
//! behind a presigned URL is recorded by its URL without the query string, and found again
//! after a resume by its name.

use crate::sink::{PutMode, Sink, SinkError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the job's ledger of copied objects lives, relative to the destination.
pub const COPIED_PATH: &str = "_state/copied.json";

/// A checksum as a source stated it (`algorithm`: crc32, crc32c, sha1, sha256, md5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChecksum {
    pub algorithm: String,
    pub value: String,
}

/// One object the run is to land, as planned at its start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedObject {
    /// Its name under the run's folder.
    pub name: String,
    /// `s3://bucket/key`, or the object's URL without its query string.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ObjectChecksum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// A large object whose parts are being staged: which ones the run knows are staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingObject {
    pub name: String,
    /// The multi-part write's id (`Sink::stage_part`).
    pub upload: String,
    /// Bytes per part: a resumed run must cut the object the same way.
    pub part_size: u64,
    pub parts: u32,
    /// Parts staged, sorted.
    pub staged: Vec<u32>,
}

/// One object landed, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestObject {
    /// Its name under the run's folder.
    pub name: String,
    /// Where it came from: `s3://bucket/key`, or its URL without the query string.
    pub source: String,
    #[serde(default)]
    pub version_id: Option<String>,
    /// The source's ETag (quotes removed).
    #[serde(default)]
    pub etag: Option<String>,
    pub size: u64,
    /// The checksum the bytes were verified against, when the source stated one.
    #[serde(default)]
    pub checksum: Option<ObjectChecksum>,
    /// What was checked: always `size`, then each checksum that matched (e.g. `crc32c`,
    /// `md5`, `etag-md5`).
    #[serde(default)]
    pub verified: Vec<String>,
    /// Path relative to the job's destination (`<run>/<name>`).
    pub path: String,
    /// Full URL of the landed object (redacted).
    pub url: String,
    /// `as-is`.
    pub land: String,
    /// `client` (this process moved the bytes) or `server` (the storage account did).
    pub mode: String,
}

/// The objects part of a run's checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectsProgress {
    /// What the objects' source saved before or while listing (e.g. an export's status URL,
    /// so a resumed run polls the same export); never a secret.
    #[serde(default)]
    pub source_notes: BTreeMap<String, String>,
    /// The run's objects, fixed once listed (`None`: not listed yet).
    #[serde(default)]
    pub planned: Option<Vec<PlannedObject>>,
    /// Objects the listing held that an earlier run already copied (not in `planned`).
    #[serde(default)]
    pub skipped: u64,
    /// Landed objects, in the order they landed.
    #[serde(default)]
    pub landed: Vec<ManifestObject>,
    /// Large objects with parts staged and not yet committed.
    #[serde(default)]
    pub staging: Vec<StagingObject>,
    /// `--land records`: each object's progress (a record offset within it), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub records: BTreeMap<String, crate::state::records::RecordsProgress>,
}

impl ObjectsProgress {
    pub fn is_landed(&self, name: &str) -> bool {
        self.landed.iter().any(|o| o.name == name)
    }

    pub fn staging_of(&self, name: &str) -> Option<&StagingObject> {
        self.staging.iter().find(|s| s.name == name)
    }

    /// Record `object` landed (replacing an earlier record of the same name) and forget its
    /// staged parts.
    pub fn record_landed(&mut self, object: ManifestObject) {
        self.staging.retain(|s| s.name != object.name);
        self.landed.retain(|o| o.name != object.name);
        self.landed.push(object);
    }

    /// Record part `part` of `staging.name` staged.
    pub fn record_staged(&mut self, staging: &StagingObject, part: u32) {
        let entry = match self.staging.iter_mut().find(|s| s.name == staging.name) {
            Some(e) if e.upload == staging.upload => e,
            _ => {
                self.staging.retain(|s| s.name != staging.name);
                self.staging.push(StagingObject {
                    staged: Vec::new(),
                    ..staging.clone()
                });
                let last = self.staging.len() - 1;
                &mut self.staging[last]
            }
        };
        if let Err(at) = entry.staged.binary_search(&part) {
            entry.staged.insert(at, part);
        }
    }
}

/// What identifies the exact bytes of a copied object: its version id, else its ETag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiedVersion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The run that copied it.
    pub run_id: String,
}

impl CopiedVersion {
    /// Whether an object listed with `version_id`/`etag` is this copy (a version id decides
    /// when both have one; else the ETag; with neither, nothing proves it unchanged).
    pub fn is(&self, version_id: Option<&str>, etag: Option<&str>) -> bool {
        match (self.version_id.as_deref(), version_id) {
            (Some(a), Some(b)) => a == b,
            _ => matches!((self.etag.as_deref(), etag), (Some(a), Some(b)) if a == b),
        }
    }
}

/// `_state/copied.json`: every object a completed run of the job copied, by source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiedLedger {
    pub version: u32,
    pub objects: BTreeMap<String, CopiedVersion>,
}

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the job's record of copied objects {url} is not readable: {reason}. Move it aside to copy every object again")]
    Corrupt { url: String, reason: String },
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl CopiedLedger {
    /// The job's ledger (empty when no run has copied anything yet).
    pub async fn load(sink: &dyn Sink) -> Result<CopiedLedger, LedgerError> {
        match sink.get(COPIED_PATH).await? {
            None => Ok(CopiedLedger {
                version: 1,
                ..Default::default()
            }),
            Some(got) => serde_json::from_slice(&got.data).map_err(|e| LedgerError::Corrupt {
                url: sink.url_of(COPIED_PATH),
                reason: e.to_string(),
            }),
        }
    }

    /// Whether an earlier run copied exactly this version of `source`.
    pub fn copied(&self, source: &str, version_id: Option<&str>, etag: Option<&str>) -> bool {
        self.objects
            .get(source)
            .is_some_and(|c| c.is(version_id, etag))
    }

    /// Add a run's landed objects: (source, version id, ETag) each. Written by the run's
    /// commit, under the job's lock, before the checkpoint is marked complete: a commit
    /// killed midway writes it again on resume.
    pub fn add(
        &mut self,
        run_id: &str,
        landed: impl IntoIterator<Item = (String, Option<String>, Option<String>)>,
    ) {
        for (source, version_id, etag) in landed {
            self.objects.insert(
                source,
                CopiedVersion {
                    version_id,
                    etag,
                    run_id: run_id.to_string(),
                },
            );
        }
    }

    pub async fn save(&self, sink: &dyn Sink) -> Result<(), LedgerError> {
        let mut data = serde_json::to_vec_pretty(self).map_err(|e| LedgerError::Corrupt {
            url: sink.url_of(COPIED_PATH),
            reason: e.to_string(),
        })?;
        data.push(b'\n');
        sink.put(COPIED_PATH, Bytes::from(data), PutMode::Overwrite)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn landed(name: &str, version: Option<&str>, etag: Option<&str>) -> ManifestObject {
        ManifestObject {
            name: name.into(),
            source: format!("s3://b/p/{name}"),
            version_id: version.map(Into::into),
            etag: etag.map(Into::into),
            size: 1,
            checksum: None,
            verified: vec!["size".into()],
            path: format!("r/{name}"),
            url: format!("file:///l/r/{name}"),
            land: "as-is".into(),
            mode: "client".into(),
        }
    }

    #[test]
    fn staged_parts_are_kept_sorted_and_forgotten_on_landing() {
        let mut p = ObjectsProgress::default();
        let s = StagingObject {
            name: "big".into(),
            upload: "u1".into(),
            part_size: 8,
            parts: 4,
            staged: vec![],
        };
        for part in [2, 0, 2, 1] {
            p.record_staged(&s, part);
        }
        assert_eq!(p.staging_of("big").unwrap().staged, [0, 1, 2]);
        // Another upload of the same object starts over.
        p.record_staged(
            &StagingObject {
                upload: "u2".into(),
                ..s.clone()
            },
            3,
        );
        assert_eq!(p.staging_of("big").unwrap().staged, [3]);
        p.record_landed(landed("big", None, Some("e")));
        assert!(p.staging_of("big").is_none() && p.is_landed("big"));
        p.record_landed(landed("big", None, Some("e")));
        assert_eq!(p.landed.len(), 1);
    }

    #[test]
    fn a_version_id_decides_then_the_etag() {
        let mut l = CopiedLedger::default();
        l.add(
            "r1",
            [
                landed("a", Some("v1"), Some("e1")),
                landed("b", None, Some("e2")),
                landed("c", None, None),
            ]
            .into_iter()
            .map(|o| (o.source, o.version_id, o.etag)),
        );
        assert!(l.copied("s3://b/p/a", Some("v1"), Some("other")));
        assert!(!l.copied("s3://b/p/a", Some("v2"), Some("e1")));
        assert!(l.copied("s3://b/p/b", None, Some("e2")));
        assert!(!l.copied("s3://b/p/b", None, Some("e3")));
        assert!(!l.copied("s3://b/p/c", None, None));
        assert!(!l.copied("s3://b/p/zz", None, Some("e2")));
    }
}
