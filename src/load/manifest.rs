//! The run manifest. Versioned (`manifest_version`); fields are only ever added. It holds
//! no secret: URLs are redacted and identities are names, never tokens or keys. Its JSON
//! Schema is `docs/manifest.schema.json`; a Synapse notebook reads it to load exactly the
//! run's files (`examples/synapse_notebook.py`). [`Manifest::assemble`] builds it from the
//! run's checkpoint once every chunk is committed; the run's commit writes it.

use crate::config::PullConfig;
use crate::encode::drift::{OnSchemaDrift, SchemaChange};
use crate::encode::schema::Schema;
use crate::encode::{Compression, Format};
use crate::load::LOAD_SQL;
use crate::sink::join_path;
use crate::state::Checkpoint;
use serde::{Deserialize, Serialize};

// A run's entries are recorded in its checkpoint as chunks commit, then listed in the manifest.
pub use crate::state::entries::{ManifestFile, RejectedPage};
// A run whose units are S3 objects lists each object it landed (see `load::object_manifest`).
pub use crate::state::objects::{ManifestObject, ObjectChecksum};

pub const MANIFEST_VERSION: u32 = 1;

/// An identity the run used: what it was for and its kind, never a secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ManifestIdentity {
    /// `api`, `storage` or `aws` (the web-identity exchange).
    pub role: String,
    /// e.g. `api-key`, `iam`, `shared-key`, `sas`, `azure-cli`, `entra-token`,
    /// `sts-web-identity`.
    pub kind: String,
    /// A non-secret name: the assumed role's ARN (AWS), the app (client) id (Azure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where an Azure identity came from (e.g. `managed identity (IDENTITY_ENDPOINT)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The Entra object id (`oid`) the tokens were issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// The Entra tenant (`tid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The role ARN asked for (`--aws-role-arn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The role session's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// The OAuth client id the API's tokens were issued to (`--api-auth oauth2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The manifest's reference to the run's lineage file (written by `load::lineage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestLineage {
    /// Relative to the destination: `<run>/_lineage.jsonl.gz`.
    pub path: String,
    /// JSON lines in it (the run line included).
    pub lines: u64,
    /// Size as stored (gzip).
    pub bytes: u64,
    /// Base64 MD5 of the stored bytes, as Azure reports it in `Content-MD5`.
    pub md5: String,
}

/// How the run's columns were found and held.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ManifestSchemaPolicy {
    pub on_drift: OnSchemaDrift,
    /// Levels of nested objects expanded into `parent.child` columns (0: none).
    pub flatten_depth: usize,
    /// Whether the schema was pinned with `--schema`.
    pub pinned: bool,
    /// The previous completed run whose schema this run was compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared_with_run: Option<String>,
}

/// Where the data came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestSource {
    /// The configured URL (redacted).
    pub url: String,
    pub pagination: String,
    pub records_path: String,
    pub auth: String,
    pub pages: u64,
    /// The first and last requests of the run (redacted).
    pub first_request: Option<String>,
    pub last_request: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestTotals {
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub raw_bytes: u64,
}

/// How a run ended, as far as its listing goes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ManifestStatus {
    /// The listing was read to its end (or the user said a capped run is complete):
    /// `_SUCCESS` is written.
    #[default]
    Succeeded,
    /// The run stopped short of its listing (`--max-pages`, a record count that differs
    /// from the API's total): no `_SUCCESS`, and the checkpoint lets a rerun finish it.
    Partial,
}

impl ManifestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ManifestStatus::Succeeded => "succeeded",
            ManifestStatus::Partial => "partial",
        }
    }
}

/// The manifest's account of whether the run got the whole listing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ManifestOutcome {
    /// Manifests written before this field count as `succeeded` (they had a `_SUCCESS`).
    #[serde(default)]
    pub status: ManifestStatus,
    /// What the run recorded instead of failing (see `ListingNotes::warnings`).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Times a 504 made the run halve its page size.
    #[serde(default)]
    pub page_size_shrinks: u64,
}

/// `_manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub manifest_version: u32,
    /// `gatelake <version>`.
    pub tool: String,
    pub job: String,
    pub run_id: String,
    pub source: ManifestSource,
    /// The run's root (redacted URL).
    pub destination: String,
    pub format: Format,
    pub compression: Compression,
    pub extension: String,
    /// The columns of csv/parquet files; for jsonl a descriptive schema (inferred over every
    /// record, never enforced); `null` when the run had no records.
    pub schema: Option<Schema>,
    pub files: Vec<ManifestFile>,
    pub totals: ManifestTotals,
    /// RFC 3339 times.
    pub started_at: String,
    pub finished_at: String,
    /// Identities used (kinds and names only).
    #[serde(default)]
    pub identities: Vec<ManifestIdentity>,
    #[serde(default)]
    pub schema_policy: ManifestSchemaPolicy,
    /// Schema changes: widenings and new columns (evolve), values kept in `_extra` (warn),
    /// columns of the previous run this run never filled.
    #[serde(default)]
    pub schema_changes: Vec<SchemaChange>,
    /// The incremental watermark the run ended at (`{"field": …, "max": …}`); `null` when the
    /// job is not incremental.
    #[serde(default)]
    pub watermark: Option<serde_json::Value>,
    /// The load script beside the manifest (`<run>/load.sql`), when one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_sql: Option<String>,
    /// Pages set aside by `--on-bad-page skip`, with where their bodies were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedPage>,
    /// How a run whose units are S3 objects landed them (`as-is` or `records`); absent
    /// for a run of pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub land: Option<String>,
    /// The objects landed as-is, each with its source, version, size, checksum and path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ManifestObject>,
    /// Objects the listing held that an earlier run of the job already copied.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub objects_skipped: u64,
    /// A partitioned run's partitions, in order: what each covers (its window, keys or
    /// range), its files and records. Absent for a run that is not partitioned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<ManifestPartition>,
    /// The run's lineage file (`<run>/_lineage.jsonl.gz`: every request, attempt and API
    /// request id, and the chunk each page landed in); see `load::lineage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<ManifestLineage>,
    /// `status`, `warnings` and `page_size_shrinks`, at the top level.
    #[serde(flatten)]
    pub outcome: ManifestOutcome,
}

/// One partition of a partitioned run, in its manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestPartition {
    pub id: String,
    /// `{"window": {"from", "to"}}`, `{"keys": […]}` or `{"range": {"first", "last"}}`.
    pub covers: serde_json::Value,
    /// Its data files (paths relative to the job's destination, as in `files`).
    pub files: Vec<String>,
    pub rows: u64,
    pub pages: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a run's manifest is assembled from: the job's definition, the run's checkpoint once
/// every chunk is committed, and what only the caller knows.
pub struct ManifestInput<'a> {
    pub config: &'a PullConfig,
    pub checkpoint: &'a Checkpoint,
    /// The run's folder (redacted URL).
    pub destination: String,
    /// The kind of credential the storage hop used (`None`: none, as for a local folder).
    pub storage_identity: Option<&'a str>,
    /// Who the caller proved the run is at each hop; refines what the run knows.
    pub proven: &'a [ManifestIdentity],
    pub status: ManifestStatus,
    /// Why the run is partial, added to its warnings.
    pub partial_reasons: Vec<String>,
    /// RFC 3339.
    pub finished_at: String,
}

impl Manifest {
    /// The manifest of the run `input` describes.
    pub fn assemble(input: ManifestInput<'_>) -> Manifest {
        let (config, cp) = (input.config, input.checkpoint);
        let watermark = cp.watermark.as_ref().or(cp.since.as_ref());
        Manifest {
            manifest_version: MANIFEST_VERSION,
            tool: concat!("gatelake ", env!("CARGO_PKG_VERSION")).to_string(),
            job: config.job.clone(),
            run_id: cp.run_id.clone(),
            source: ManifestSource {
                url: cp.source_url.clone(),
                pagination: config.source.pagination.name().to_string(),
                records_path: config.source.records_path.clone(),
                auth: config.source.auth.kind().to_string(),
                pages: cp.pages,
                first_request: cp.first_request.clone(),
                last_request: cp.last_request.clone(),
            },
            destination: input.destination,
            format: config.output.encode.format,
            compression: config.output.encode.compression,
            extension: config.output.encode.extension(),
            schema: cp.schema.clone(),
            totals: Manifest::totals_of(&cp.files),
            files: cp.files.clone(),
            started_at: cp.started_at.clone(),
            finished_at: input.finished_at,
            identities: identities(config, input.storage_identity, input.proven),
            schema_policy: ManifestSchemaPolicy {
                on_drift: config.output.schema.on_drift,
                flatten_depth: config.output.schema.flatten_depth,
                pinned: config.output.schema.pinned.is_some(),
                compared_with_run: cp.compared_with_run.clone(),
            },
            schema_changes: cp.schema_changes.clone(),
            watermark: watermark.map(|w| serde_json::json!({"field": w.field, "max": w.max})),
            load_sql: Some(join_path(&[&cp.run_id, LOAD_SQL])),
            rejected: cp.rejected.clone(),
            land: None,
            objects: Vec::new(),
            objects_skipped: 0,
            partitions: Vec::new(),
            lineage: None,
            outcome: ManifestOutcome {
                status: input.status,
                warnings: cp
                    .listing
                    .warnings
                    .iter()
                    .cloned()
                    .chain(input.partial_reasons)
                    .collect(),
                page_size_shrinks: cp.listing.page_size_shrinks,
            },
        }
    }

    /// Totals computed from the file list, so the two can never disagree.
    pub fn totals_of(files: &[ManifestFile]) -> ManifestTotals {
        ManifestTotals {
            files: files.len() as u64,
            rows: files.iter().map(|f| f.rows).sum(),
            bytes: files.iter().map(|f| f.bytes).sum(),
            raw_bytes: files.iter().map(|f| f.raw_bytes).sum(),
        }
    }

    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = serde_json::to_vec_pretty(self)?;
        out.push(b'\n');
        Ok(out)
    }
}

/// The identities a run used, by kind and name, never a secret: what the run knows, refined
/// by what the caller `proven` (an entry for the same role adds to it; another role is added).
fn identities(
    config: &PullConfig,
    storage_identity: Option<&str>,
    proven: &[ManifestIdentity],
) -> Vec<ManifestIdentity> {
    let api = ManifestIdentity {
        role: "api".into(),
        kind: config.source.auth.kind().into(),
        name: match &config.source.auth {
            crate::config::ApiAuth::Iam { region } => Some(format!("execute-api in {region}")),
            // The OAuth client id: which app the API's logs name as the caller.
            crate::config::ApiAuth::OAuth2(c) => Some(c.client_id.clone()),
            _ => None,
        },
        ..Default::default()
    };
    merge_identities(vec![api], storage_identity, proven)
}

/// `out` (what the run knows), with the storage hop's kind, refined by what the caller
/// `proven` (an entry for the same role adds to it; another role is added).
pub(crate) fn merge_identities(
    mut out: Vec<ManifestIdentity>,
    storage_identity: Option<&str>,
    proven: &[ManifestIdentity],
) -> Vec<ManifestIdentity> {
    if let Some(kind) = storage_identity {
        out.push(ManifestIdentity {
            role: "storage".into(),
            kind: kind.into(),
            ..Default::default()
        });
    }
    for p in proven {
        match out.iter_mut().find(|o| o.role == p.role) {
            Some(o) => {
                o.name = p.name.clone().or(o.name.take());
                o.source = p.source.clone();
                o.object_id = p.object_id.clone();
                o.tenant = p.tenant.clone();
                o.role_arn = p.role_arn.clone();
                o.session_name = p.session_name.clone();
                o.client_id = p.client_id.clone().or(o.client_id.take());
            }
            None => out.push(p.clone()),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_and_json_round_trips() {
        let files: Vec<ManifestFile> = (0..3)
            .map(|i| ManifestFile {
                path: format!("r/part-{i:05}.jsonl.gz"),
                url: format!("file:///lake/r/part-{i:05}.jsonl.gz"),
                seq: i,
                rows: 10 + i,
                bytes: 100,
                raw_bytes: 1000,
                sha256: "00".into(),
                content_md5: "AA==".into(),
                columns: None,
            })
            .collect();
        let m = Manifest {
            manifest_version: MANIFEST_VERSION,
            tool: "gatelake 0".into(),
            job: "orders".into(),
            run_id: "r".into(),
            source: ManifestSource {
                url: "https://api/prod/orders".into(),
                pagination: "cursor".into(),
                records_path: "items".into(),
                auth: "none".into(),
                pages: 4,
                first_request: None,
                last_request: None,
            },
            destination: "file:///lake".into(),
            format: Format::JSONL,
            compression: Compression::Gzip,
            extension: "jsonl.gz".into(),
            schema: None,
            totals: Manifest::totals_of(&files),
            files,
            started_at: "2026-11-24T23:00:00Z".into(),
            finished_at: "2026-11-24T23:01:00Z".into(),
            identities: vec![ManifestIdentity {
                role: "api".into(),
                kind: "none".into(),
                ..Default::default()
            }],
            schema_policy: ManifestSchemaPolicy::default(),
            schema_changes: Vec::new(),
            watermark: None,
            load_sql: None,
            rejected: vec![],
            land: None,
            objects: vec![],
            objects_skipped: 0,
            partitions: Vec::new(),
            lineage: None,
            outcome: ManifestOutcome {
                status: ManifestStatus::Partial,
                warnings: vec!["stopped at --max-pages 4".into()],
                page_size_shrinks: 2,
            },
        };
        assert_eq!(m.totals.rows, 33);
        assert_eq!(m.totals.files, 3);
        let json = m.to_json().unwrap();
        let back: Manifest = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, m);
        // The outcome is at the top level; a manifest without it reads as a succeeded run.
        let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["status"], "partial");
        assert_eq!(v["page_size_shrinks"], 2);
        for k in ["status", "warnings", "page_size_shrinks"] {
            v.as_object_mut().unwrap().remove(k);
        }
        let old: Manifest = serde_json::from_value(v).unwrap();
        assert_eq!(old.outcome, ManifestOutcome::default());
    }
}
