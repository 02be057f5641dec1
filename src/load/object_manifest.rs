//! The manifest of a run whose units are S3 objects: the same `_manifest.json` as a run of
//! pages (its JSON Schema is `docs/manifest.schema.json`), whose `source` names the objects'
//! listing, with `land` and, for objects landed as-is, one `objects` entry per object (its
//! source without a query string, version id, ETag, size, checksum, landed path and mode).
//! Objects landed as records are chunks like a pull's, listed under `files`.

use super::manifest::{
    merge_identities, Manifest, ManifestIdentity, ManifestOutcome, ManifestSchemaPolicy,
    ManifestSource, ManifestStatus, MANIFEST_VERSION,
};
use super::LOAD_SQL;
use crate::config::OutputConfig;
use crate::sink::join_path;
use crate::state::Checkpoint;

/// What an object run's manifest is assembled from.
pub struct ObjectManifestInput<'a> {
    pub job: &'a str,
    /// The run's checkpoint once every object is landed.
    pub checkpoint: &'a Checkpoint,
    /// The listing's kind (`s3-prefix`, `api-references`, `export`).
    pub listing: &'a str,
    /// How the objects were read: `iam` (the run's AWS credentials), or the API's auth kind.
    pub auth: &'a str,
    /// The job's output settings (the chunks of `--land records`).
    pub output: &'a OutputConfig,
    /// `as-is` or `records`.
    pub land: &'a str,
    /// The run's folder (redacted URL).
    pub destination: String,
    pub storage_identity: Option<&'a str>,
    pub proven: &'a [ManifestIdentity],
    pub status: ManifestStatus,
    /// Why the run is partial, added to its warnings.
    pub partial_reasons: Vec<String>,
    /// RFC 3339.
    pub finished_at: String,
}

impl Manifest {
    /// The manifest of the object run `input` describes.
    pub fn assemble_objects(input: ObjectManifestInput<'_>) -> Manifest {
        let cp = input.checkpoint;
        let progress = cp.objects.clone().unwrap_or_default();
        let reader = ManifestIdentity {
            role: "objects".into(),
            kind: input.auth.into(),
            ..Default::default()
        };
        let proven: Vec<ManifestIdentity> = input
            .proven
            .iter()
            .filter(|p| p.role != "api")
            .cloned()
            .collect();
        Manifest {
            manifest_version: MANIFEST_VERSION,
            tool: concat!("gatelake ", env!("CARGO_PKG_VERSION")).to_string(),
            job: input.job.to_string(),
            run_id: cp.run_id.clone(),
            source: ManifestSource {
                url: cp.source_url.clone(),
                pagination: input.listing.to_string(),
                records_path: String::new(),
                auth: input.auth.to_string(),
                pages: cp.pages,
                first_request: cp.first_request.clone(),
                last_request: cp.last_request.clone(),
            },
            destination: input.destination,
            format: input.output.encode.format,
            compression: input.output.encode.compression,
            extension: input.output.encode.extension(),
            schema: cp.schema.clone(),
            totals: Manifest::totals_of(&cp.files),
            files: cp.files.clone(),
            started_at: cp.started_at.clone(),
            finished_at: input.finished_at,
            identities: merge_identities(vec![reader], input.storage_identity, &proven),
            schema_policy: ManifestSchemaPolicy {
                on_drift: input.output.schema.on_drift,
                flatten_depth: input.output.schema.flatten_depth,
                pinned: input.output.schema.pinned.is_some(),
                compared_with_run: cp.compared_with_run.clone(),
            },
            schema_changes: cp.schema_changes.clone(),
            watermark: None,
            load_sql: Some(join_path(&[&cp.run_id, LOAD_SQL])),
            rejected: Vec::new(),
            land: Some(input.land.to_string()),
            objects: progress.landed,
            objects_skipped: progress.skipped,
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
                page_size_shrinks: 0,
            },
        }
    }
}
