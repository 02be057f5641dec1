//! An object run's plan: the source's objects, less those an earlier run of the job copied
//! (`_state/copied.json`), saved in the checkpoint before a byte is read, so a resumed run
//! lands the same objects. Objects behind presigned URLs are planned without their
//! signatures and found again by name in a fresh listing ([`relist`]).

use super::object_job::ObjectRunError;
use super::object_progress::SharedCheckpoint;
use crate::load::{LOAD_SQL, MANIFEST, SUCCESS_MARKER};
use crate::objects::land::{checksum_entry, checksum_of, source_of};
use crate::objects::source::ObjectSource;
use crate::objects::{ObjectLocation, ObjectRef};
use crate::report::Reporter;
use crate::sink::Sink;
use crate::state::objects::{CopiedLedger, PlannedObject};
use std::collections::HashMap;

/// Names a run writes beside its objects: an object may not take them.
const RUN_FILES: [&str; 3] = [MANIFEST, SUCCESS_MARKER, LOAD_SQL];

/// The objects behind presigned URLs, by name, as the source last listed them.
pub(super) type Live = HashMap<String, ObjectRef>;

/// The run's plan: listed, filtered by the ledger and saved, unless the checkpoint has it.
/// Returns the live references of URL objects (their signatures are never saved).
pub(super) async fn plan(
    source: &dyn ObjectSource,
    shared: &SharedCheckpoint,
    sink: &dyn Sink,
    reporter: &dyn Reporter,
) -> Result<Live, ObjectRunError> {
    let progress = shared.progress();
    if let Some(planned) = &progress.planned {
        let unlanded_urls = planned
            .iter()
            .any(|p| !progress.is_landed(&p.name) && !p.source.starts_with("s3://"));
        return if unlanded_urls {
            relist(source, shared, reporter).await
        } else {
            Ok(Live::new())
        };
    }
    let listing = source.list(shared, reporter).await?;
    let ledger = CopiedLedger::load(sink).await?;
    let mut planned = Vec::new();
    let mut live = Live::new();
    let mut skipped = 0;
    let mut names = std::collections::HashSet::new();
    for object in listing.objects {
        let src = source_of(&object);
        check_name(&object.name, &src)?;
        if !names.insert(object.name.clone()) {
            return Err(ObjectRunError::BadName {
                source_uri: src,
                name: object.name,
                reason: "another object of the listing has the same name".into(),
            });
        }
        if ledger.copied(&src, object.version_id.as_deref(), object.etag.as_deref()) {
            skipped += 1;
            continue;
        }
        planned.push(planned_of(&object));
        if matches!(object.location, ObjectLocation::Url { .. }) {
            live.insert(object.name.clone(), object);
        }
    }
    let warnings = listing.warnings;
    let pages = listing.pages;
    shared
        .update_checkpoint(|cp| {
            cp.pages = pages;
            cp.listing.warnings.extend(warnings);
            let p = cp.objects.get_or_insert_with(Default::default);
            p.planned = Some(planned);
            p.skipped = skipped;
        })
        .await?;
    Ok(live)
}

/// Ask the source again for the live references of URL objects (after a resume or an
/// expired URL).
pub(super) async fn relist(
    source: &dyn ObjectSource,
    shared: &SharedCheckpoint,
    reporter: &dyn Reporter,
) -> Result<Live, ObjectRunError> {
    let listing = source.list(shared, reporter).await?;
    Ok(listing
        .objects
        .into_iter()
        .filter(|o| matches!(o.location, ObjectLocation::Url { .. }))
        .map(|o| (o.name.clone(), o))
        .collect())
}

/// An object's name must be a relative path the run's folder can hold beside its own files.
fn check_name(name: &str, source: &str) -> Result<(), ObjectRunError> {
    let bad = |reason: &str| ObjectRunError::BadName {
        source_uri: source.to_string(),
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') {
        return Err(bad("it is empty, absolute or a folder marker"));
    }
    if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(bad("it has an empty, '.' or '..' segment"));
    }
    if RUN_FILES.contains(&name) {
        return Err(bad("the run writes a file of that name itself"));
    }
    Ok(())
}

fn planned_of(o: &ObjectRef) -> PlannedObject {
    PlannedObject {
        name: o.name.clone(),
        source: source_of(o),
        size: o.size,
        checksum: o.checksum.as_ref().map(checksum_entry),
        records: o.records,
        etag: o.etag.clone(),
        version_id: o.version_id.clone(),
        last_modified: o.last_modified.clone(),
    }
}

/// The reference to read a planned object through: its `s3://` URI as planned, or the
/// source's live URL for it.
pub(super) fn reference_of(
    p: &PlannedObject,
    live: &Live,
    run_id: &str,
) -> Result<ObjectRef, ObjectRunError> {
    let location = match p.source.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            ObjectLocation::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            }
        }
        None => match live.get(&p.name) {
            Some(o) => o.location.clone(),
            None => {
                return Err(ObjectRunError::Vanished {
                    name: p.name.clone(),
                    source_uri: p.source.clone(),
                    run_id: run_id.to_string(),
                })
            }
        },
    };
    Ok(ObjectRef {
        location,
        name: p.name.clone(),
        size: p.size,
        checksum: p.checksum.as_ref().and_then(checksum_of),
        records: p.records,
        etag: p.etag.clone(),
        version_id: p.version_id.clone(),
        last_modified: p.last_modified.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_sit_in_a_run_folder_are_refused() {
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "./a",
            "a/../b",
            "_manifest.json",
            "load.sql",
            "_SUCCESS",
        ] {
            assert!(check_name(bad, "s3://b/p/x").is_err(), "{bad:?}");
        }
        for good in [
            "a",
            "dir/a.csv",
            "_other",
            "x/_SUCCESS",
            "part-00001.jsonl.gz",
        ] {
            assert!(check_name(good, "s3://b/p/x").is_ok(), "{good:?}");
        }
    }
}
