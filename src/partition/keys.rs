//! Key lists: one partition per key (or per group of `--keys-per-partition` keys), each key
//! put in place of `{key}` in the URL's path, or sent in a query parameter (a group's keys
//! comma-separated).
//!
//! A partition's id is `k-<slug>-<hash>`: a readable slug of its first key and 8 hex digits
//! of a hash of all its keys, so two keys with the same slug (`Acme`, `acme`) still differ.
//! When two groups would still share an id, every id takes 16 hex digits instead: the list
//! is the same on every worker either way, since it depends on the whole key list only.

use super::{Covers, KeySpec, Partition, PartitionError, PartitionRequest};
use crate::config::SourceConfig;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use url::Url;

/// `{key}` as it stands in a parsed URL's path (braces are percent-encoded there).
const PLACEHOLDER: &str = "%7Bkey%7D";

/// What is escaped in a key put in a path: all but RFC 3986's unreserved characters, so a
/// key holding `/`, `?` or `#` stays one path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The longest slug kept in an id.
const SLUG_MAX: usize = 24;

pub(super) fn plan(
    spec: &KeySpec,
    source: &SourceConfig,
) -> Result<Vec<Partition>, PartitionError> {
    check_placement(spec, &source.url)?;
    if spec.per_partition == 0 {
        return Err(invalid(
            "--keys-per-partition must be at least 1".to_string(),
        ));
    }
    let mut seen = HashSet::new();
    for key in &spec.keys {
        if key.trim().is_empty() {
            return Err(invalid(
                "--keys: a key is empty; remove the empty entry (a trailing comma?)".to_string(),
            ));
        }
        if !seen.insert(key.as_str()) {
            return Err(invalid(format!(
                "--keys: '{key}' is listed twice; each key must be listed once (its records would be pulled twice)"
            )));
        }
        if spec.per_partition > 1 && key.contains(',') {
            return Err(invalid(format!(
                "--keys: '{key}' holds a comma, which separates a group's keys in ?{}=; use --keys-per-partition 1 for such keys",
                spec.param.as_deref().unwrap_or("key")
            )));
        }
    }
    let groups: Vec<&[String]> = spec.keys.chunks(spec.per_partition).collect();
    let mut ids: Vec<String> = groups.iter().map(|g| id_of(g, 4)).collect();
    if ids.iter().collect::<HashSet<_>>().len() != ids.len() {
        ids = groups.iter().map(|g| id_of(g, 8)).collect();
    }
    if ids.iter().collect::<HashSet<_>>().len() != ids.len() {
        return Err(invalid(
            "--keys: two groups of keys hash to the same partition id; reorder the keys or change --keys-per-partition".to_string(),
        ));
    }
    Ok(groups
        .into_iter()
        .zip(ids)
        .map(|(group, id)| {
            let request = match &spec.param {
                Some(param) => PartitionRequest {
                    query: vec![(param.clone(), group.join(","))],
                    ..PartitionRequest::default()
                },
                None => PartitionRequest {
                    path_key: group.first().cloned(),
                    ..PartitionRequest::default()
                },
            };
            Partition {
                id,
                covers: Covers::Keys(group.to_vec()),
                request,
            }
        })
        .collect())
}

/// Keys go in exactly one place: `{key}` in the path, or `--key-param`.
fn check_placement(spec: &KeySpec, url: &Url) -> Result<(), PartitionError> {
    let in_path = url.path().contains(PLACEHOLDER);
    match (&spec.param, in_path) {
        (None, false) => Err(invalid(format!(
            "--keys: the URL's path has no {{key}} and no --key-param was given: put {{key}} where each key goes (e.g. https://api.example.com/prod/tenants/{{key}}/orders) or pass --key-param NAME to send it as ?NAME=<key> (URL: {})",
            crate::secret::redact_url(url)
        ))),
        (Some(param), true) => Err(invalid(format!(
            "--keys: the URL's path has {{key}} and --key-param {param} was given too: keep one (the path's {{key}}, or the query parameter)"
        ))),
        (None, true) if spec.per_partition > 1 => Err(invalid(format!(
            "--keys-per-partition {} needs --key-param NAME: a path's {{key}} holds one key",
            spec.per_partition
        ))),
        _ => Ok(()),
    }
}

/// `url` with `{key}` in its path replaced by `key`, percent-encoded as one segment.
pub(super) fn substitute(url: &Url, key: &str) -> Result<Url, PartitionError> {
    if !url.path().contains(PLACEHOLDER) {
        return Err(invalid(format!(
            "the partition's key '{key}' has no {{key}} to go in: the job's URL path changed since the run was planned; finish that run with its URL, or pass --restart"
        )));
    }
    let encoded = utf8_percent_encode(key, SEGMENT).to_string();
    let mut out = url.clone();
    out.set_path(&url.path().replace(PLACEHOLDER, &encoded));
    Ok(out)
}

/// A keys file's text: one key per line; blank lines and lines starting with `#` are
/// skipped; spaces around a key are trimmed.
pub fn parse_key_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// `k-<slug of the first key>-<hex of the group's hash, `bytes` bytes>`.
fn id_of(group: &[String], bytes: usize) -> String {
    let mut h = Sha256::new();
    for key in group {
        h.update(key.as_bytes());
        h.update([0u8]);
    }
    let hash = hex::encode(&h.finalize()[..bytes]);
    format!(
        "k-{}-{hash}",
        slug(group.first().map_or("", String::as_str))
    )
}

/// Lower-case ASCII letters and digits, other runs as one `-`, at most [`SLUG_MAX`].
fn slug(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= SLUG_MAX {
            break;
        }
    }
    let out = out.trim_matches('-');
    if out.is_empty() {
        "key".to_string()
    } else {
        out.to_string()
    }
}

pub(super) fn canonical(k: &KeySpec) -> String {
    let mut h = Sha256::new();
    for key in &k.keys {
        h.update(key.as_bytes());
        h.update([0u8]);
    }
    format!(
        "keys\ncount={}\nkeys={}\nparam={}\nper_partition={}\n",
        k.keys.len(),
        hex::encode(h.finalize()),
        k.param.as_deref().unwrap_or("{key}"),
        k.per_partition
    )
}

pub(super) fn describe(k: &KeySpec) -> String {
    let place = match &k.param {
        Some(p) => format!("sent as ?{p}="),
        None => "in the path's {key}".to_string(),
    };
    format!(
        "keys: {} key(s), {} per partition, {place}",
        k.keys.len(),
        k.per_partition
    )
}

fn invalid(msg: String) -> PartitionError {
    PartitionError::Invalid(msg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::source;
    use super::*;
    use crate::config::Pagination;

    fn spec(keys: &[&str], param: Option<&str>, per: usize) -> KeySpec {
        KeySpec {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            param: param.map(str::to_string),
            per_partition: per,
        }
    }

    #[test]
    fn ids_are_readable_distinct_and_stable() {
        let job = source("https://h/prod/t/{key}/orders", Pagination::single());
        let list = plan(&spec(&["Acme Corp", "acme-corp", "Ünïcode"], None, 1), &job).unwrap();
        let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
        assert!(
            ids[0].starts_with("k-acme-corp-") && ids[1].starts_with("k-acme-corp-"),
            "{ids:?}"
        );
        assert_ne!(ids[0], ids[1]);
        assert!(ids[2].starts_with("k-n-code-"), "{ids:?}");
        for id in &ids {
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{id}"
            );
            assert_eq!(id.rsplit('-').next().unwrap().len(), 8, "{id}");
        }
        let again = plan(&spec(&["Acme Corp", "acme-corp", "Ünïcode"], None, 1), &job).unwrap();
        assert_eq!(again, list);
        assert_eq!(slug(&"x".repeat(100)).len(), SLUG_MAX);
        assert_eq!(slug("日本"), "key");
    }

    #[test]
    fn where_the_keys_go_must_be_said_once() {
        let no_placeholder = source("https://h/prod/orders", Pagination::single());
        let placeholder = source("https://h/prod/t/{key}/orders", Pagination::single());
        let cases = [
            (&no_placeholder, spec(&["a"], None, 1), "no {key}"),
            (&placeholder, spec(&["a"], Some("t"), 1), "keep one"),
            (
                &placeholder,
                spec(&["a", "b"], None, 2),
                "needs --key-param",
            ),
            (
                &no_placeholder,
                spec(&["a", "a"], Some("t"), 1),
                "listed twice",
            ),
            (&no_placeholder, spec(&["a", ""], Some("t"), 1), "empty"),
            (
                &no_placeholder,
                spec(&["a,b", "c"], Some("t"), 2),
                "holds a comma",
            ),
            (&no_placeholder, spec(&["a"], Some("t"), 0), "at least 1"),
        ];
        for (job, spec, want) in cases {
            let err = plan(&spec, job).unwrap_err().to_string();
            assert!(err.contains(want), "{spec:?}: {err}");
        }
        // A comma in a key alone in its partition is just part of its value.
        assert!(plan(&spec(&["a,b"], Some("t"), 1), &no_placeholder).is_ok());
    }

    #[test]
    fn a_keys_file_skips_comments_and_blank_lines() {
        let text = "# tenants\nacme\n\n  globex  \n#old\ninitech\r\n";
        assert_eq!(parse_key_list(text), ["acme", "globex", "initech"]);
    }
}
