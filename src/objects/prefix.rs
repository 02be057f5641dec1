//! The objects below an `s3://bucket/prefix`: ListObjectsV2, every page, filtered by
//! `--include`/`--exclude` globs and `--modified-since`, sorted by key.
//!
//! An object's name (its path under the run's folder) is its key below the prefix's last
//! `/`: `s3://b/exports/2024` lists `exports/2024-01.json` as `2024-01.json`. A glob without
//! a `/` matches the name's last segment (`*.json` at any depth), one with a `/` the whole
//! name; `*` never crosses a `/`, `**` does. Keys ending in `/` (folder markers) are skipped;
//! a key whose name cannot be a path in the lake (`..`, empty segments) is an error naming it,
//! not silently left out.

use super::error::ObjectError;
use super::read::ObjectReader;
use super::s3::classify_sdk;
use super::url::S3Uri;
use super::{ObjectLocation, ObjectRef};
use crate::retry::{Attempt, Retrier};
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use time::OffsetDateTime;

/// Which listed objects to take.
#[derive(Debug, Clone, Default)]
pub struct PrefixFilter {
    include: Option<(GlobSet, GlobSet)>,
    exclude: Option<(GlobSet, GlobSet)>,
    modified_since: Option<OffsetDateTime>,
}

/// Globs split into those matched against the last segment and those matched against the
/// whole name.
fn globs(patterns: &[String]) -> Result<Option<(GlobSet, GlobSet)>, ObjectError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let (mut base, mut full) = (GlobSetBuilder::new(), GlobSetBuilder::new());
    for p in patterns {
        let glob: Glob = GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| ObjectError::InvalidFilter {
                pattern: p.clone(),
                reason: e.kind().to_string(),
            })?;
        if p.contains('/') {
            full.add(glob);
        } else {
            base.add(glob);
        }
    }
    let build = |b: GlobSetBuilder| {
        b.build().map_err(|e| ObjectError::InvalidFilter {
            pattern: patterns.join(" "),
            reason: e.to_string(),
        })
    };
    Ok(Some((build(base)?, build(full)?)))
}

fn matches((base, full): &(GlobSet, GlobSet), name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    base.is_match(last) || full.is_match(name)
}

impl PrefixFilter {
    /// `include`: when not empty, only names matching one of them; `exclude`: never names
    /// matching one of them; `modified_since`: only objects modified at or after it.
    pub fn new(
        include: &[String],
        exclude: &[String],
        modified_since: Option<OffsetDateTime>,
    ) -> Result<PrefixFilter, ObjectError> {
        Ok(PrefixFilter {
            include: globs(include)?,
            exclude: globs(exclude)?,
            modified_since,
        })
    }

    /// Whether an object named `name`, modified at `modified`, is taken.
    pub fn accepts(&self, name: &str, modified: Option<OffsetDateTime>) -> bool {
        if self.include.as_ref().is_some_and(|g| !matches(g, name)) {
            return false;
        }
        if self.exclude.as_ref().is_some_and(|g| matches(g, name)) {
            return false;
        }
        match (self.modified_since, modified) {
            (Some(since), Some(m)) => m >= since,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}

/// Why `name` cannot be a relative path in the lake, if it cannot.
fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.starts_with('/') || name.split('/').any(|s| s.is_empty()) {
        return Some("it has an empty path segment ('//' or a leading '/')");
    }
    if name.split('/').any(|s| s == "." || s == "..") {
        return Some("it has a '.' or '..' segment");
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Some("it has a control character or a backslash");
    }
    None
}

/// Every object below `uri` that `filter` accepts, sorted by key.
pub async fn list_prefix(
    reader: &ObjectReader,
    uri: &S3Uri,
    filter: &PrefixFilter,
) -> Result<Vec<ObjectRef>, ObjectError> {
    let shown = uri.to_string();
    reader.check_bucket(&uri.bucket, &shown)?;
    let client = reader.s3_client().ok_or_else(|| ObjectError::NoS3Client {
        object: shown.clone(),
    })?;
    // The name is the key below the prefix's last '/'.
    let base = match uri.key.rfind('/') {
        Some(i) => &uri.key[..=i],
        None => "",
    };
    let retrier = Retrier::new(super::read::object_retry_policy());
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = retrier
            .run(&format!("listing {shown}"), |_| {
                let request = client
                    .list_objects_v2()
                    .bucket(&uri.bucket)
                    .prefix(&uri.key)
                    .set_continuation_token(token.clone());
                async move {
                    match request.send().await {
                        Ok(p) => Attempt::Done(p),
                        Err(e) => match classify_sdk(&e) {
                            f @ super::s3::Failure::Transient { .. } => Attempt::Transient {
                                error: f,
                                after: None,
                            },
                            f => Attempt::Fatal(f),
                        },
                    }
                }
            })
            .await
            .map_err(|g| match g.error {
                super::s3::Failure::Transient { cause, .. } => ObjectError::GaveUp {
                    object: shown.clone(),
                    attempts: g.attempts,
                    elapsed: g.elapsed,
                    cause,
                },
                super::s3::Failure::Denied { code, message } => ObjectError::Denied {
                    object: shown.clone(),
                    code,
                    message,
                    hint: "listing needs s3:ListBucket on the bucket (scoped to the prefix with an s3:prefix condition)",
                },
                f => f.into_error(&shown, ""),
            })?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            if key.ends_with('/') {
                continue;
            }
            let name = key.strip_prefix(base).unwrap_or(key);
            let modified = o
                .last_modified()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok());
            if !filter.accepts(name, modified) {
                continue;
            }
            let object = format!("s3://{}/{key}", uri.bucket);
            if let Some(reason) = unsafe_name(name) {
                return Err(ObjectError::UnsafeName {
                    object,
                    name: name.to_string(),
                    reason: reason.to_string(),
                });
            }
            out.push(ObjectRef {
                location: ObjectLocation::S3 {
                    bucket: uri.bucket.clone(),
                    key: key.to_string(),
                },
                name: name.to_string(),
                size: o.size().and_then(|s| u64::try_from(s).ok()),
                checksum: None,
                records: None,
                etag: o.e_tag().map(|e| e.trim_matches('"').to_string()),
                version_id: None,
                last_modified: o
                    .last_modified()
                    .and_then(|t| t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()),
            });
        }
        token = page
            .next_continuation_token()
            .filter(|_| page.is_truncated() == Some(true))
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    out.sort_by(|a, b| match (&a.location, &b.location) {
        (ObjectLocation::S3 { key: x, .. }, ObjectLocation::S3 { key: y, .. }) => x.cmp(y),
        _ => a.name.cmp(&b.name),
    });
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_the_last_segment_or_the_whole_name() {
        let f = PrefixFilter::new(
            &["*.json".into(), "logs/**/*.gz".into()],
            &["*tmp*".into()],
            None,
        )
        .unwrap();
        for (name, ok) in [
            ("a.json", true),
            ("deep/er/a.json", true),
            ("a.csv", false),
            ("logs/2024/01/x.gz", true),
            ("other/x.gz", false),
            ("a.tmp.json", false),
        ] {
            assert_eq!(f.accepts(name, None), ok, "{name}");
        }
        assert!(PrefixFilter::new(&["a[".into()], &[], None).is_err());
    }

    #[test]
    fn modified_since_is_inclusive() {
        let since = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let f = PrefixFilter::new(&[], &[], Some(since)).unwrap();
        assert!(f.accepts("a", Some(since)));
        assert!(!f.accepts("a", Some(since - time::Duration::seconds(1))));
        assert!(!f.accepts("a", None));
        assert!(PrefixFilter::default().accepts("a", None));
    }

    #[test]
    fn names_that_cannot_be_paths_are_named() {
        for bad in ["", "a//b", "/a", "a/../b", "./a", "a\\b"] {
            assert!(unsafe_name(bad).is_some(), "{bad}");
        }
        assert!(unsafe_name("a/b c/d.json").is_none());
    }
}
