//! Errors about the job file that a user can act on at once: a secret written into it gets
//! the documented refusal (naming the key and what to use instead, never the value), and a
//! misspelt key gets the nearest known key of its table, instead of serde's generic
//! "unknown field … expected one of" list of forty names.
//!
//! Kept apart from `job_spec.rs` so that the file's shape stays readable there; this file
//! only looks at the raw TOML and at the deserializer's error.

use std::path::Path;

/// Keys that would hold a secret, per table (`""` is `[jobs.NAME]` itself), and what to use
/// instead. A job file is easily committed, so these are refused even when the value looks
/// like a placeholder.
const SECRET_KEYS: &[(&str, &str, &str)] = &[
    ("", "api_key", "use api_key_file or GATELAKE_API_KEY"),
    (
        "",
        "bearer_token",
        "use bearer_token_file or GATELAKE_BEARER_TOKEN",
    ),
    (
        "azure",
        "token",
        "use token_file, --azure-token-stdin or GATELAKE_AZURE_TOKEN",
    ),
    (
        "azure",
        "client_secret",
        "use AZURE_CLIENT_SECRET, or a certificate (AZURE_CLIENT_CERTIFICATE_PATH)",
    ),
    (
        "aws",
        "secret_access_key",
        "use the standard AWS chain (AWS_SECRET_ACCESS_KEY, a profile) or aws.role_arn",
    ),
    (
        "aws",
        "session_token",
        "use the standard AWS chain (AWS_SESSION_TOKEN, a profile) or aws.role_arn",
    ),
    (
        "aws",
        "web_identity_token",
        "use web_identity_token_file or GATELAKE_WEB_IDENTITY_TOKEN",
    ),
];

/// The documented refusal for the first secret found under `[jobs.*]`, if any. Only key names
/// are inspected; values are never read into a message.
pub fn secret_refusal(text: &str, path: &Path) -> Option<String> {
    let value: toml::Table = toml::from_str(text).ok()?;
    let jobs = value.get("jobs")?.as_table()?;
    for (job, spec) in jobs {
        let Some(spec) = spec.as_table() else {
            continue;
        };
        for (table, key, fix) in SECRET_KEYS {
            let holder = if table.is_empty() {
                Some(spec)
            } else {
                spec.get(*table).and_then(toml::Value::as_table)
            };
            if holder.is_some_and(|t| t.contains_key(*key)) {
                let where_ = if table.is_empty() {
                    format!("[jobs.{job}] {key}")
                } else {
                    format!("[jobs.{job}.{table}] {key}")
                };
                return Some(format!(
                    "job file {}: {where_}: secrets are not allowed in the job file (it is easily committed); {fix}",
                    path.display()
                ));
            }
        }
    }
    None
}

/// A readable message for a TOML/serde error in the job file: an unknown key names the line
/// and, when one is close, the key that was probably meant.
pub fn explain(err: &toml::de::Error, text: &str, path: &Path) -> String {
    let line = err
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
    if let Some((unknown, expected)) = parse_unknown_field(err.message()) {
        let hint = match nearest(&unknown, &expected) {
            Some(near) => format!("; did you mean `{near}`?"),
            None => ".".to_owned(),
        };
        return format!(
            "job file {}: unknown key `{unknown}`{at}{hint} Keys are the long flag names with _ for - (see `gatelake pull --help`)",
            path.display()
        );
    }
    format!("job file {}: {err}", path.display())
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`"), split into the
/// field and the expected names.
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((field.to_owned(), expected))
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo: at
/// most a third of the word's length (and at least 1, at most 3 edits).
fn nearest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Edit distance (optimal string alignment: insertions, deletions, substitutions and swaps
/// of two neighbours each count 1), case-insensitive, with `-` and `_` treated alike (a flag
/// name written into the file is then a distance of 0 from its key).
fn edit_distance(a: &str, b: &str) -> usize {
    let norm = |s: &str| -> Vec<char> {
        s.chars()
            .map(|c| {
                if c == '-' {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    };
    let (a, b) = (norm(a), norm(b));
    // d[i][j]: the distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("cursor_paht", "cursor_path", 1),
            ("auht", "auth", 1),
            ("kitten", "sitting", 3),
            ("chunksize", "chunk_size", 1),
            ("chunk-size", "chunk_size", 0),
            ("", "url", 3),
            ("url", "url", 0),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} / {b}");
        }
    }

    #[test]
    fn parses_serde_unknown_field_messages() {
        let (f, e) =
            parse_unknown_field("unknown field `paht`, expected one of `url`, `paginate`").unwrap();
        assert_eq!(f, "paht");
        assert_eq!(e, ["url", "paginate"]);
        let (f, e) = parse_unknown_field("unknown field `x`, expected `jobs`").unwrap();
        assert_eq!((f.as_str(), e), ("x", vec!["jobs".to_string()]));
        assert!(parse_unknown_field("invalid type: string").is_none());
    }
}
