//! How a pull splits into partitions: `--window-start`/`--window-end`/`--window` (with
//! `--window-params` and `--window-format`), `--keys`/`--keys-file` (with `--key-param` and
//! `--keys-per-partition`), or `--ranges`. The flags (flattened into `pull`), the job file's
//! `[jobs.NAME.partitions]` table, and their resolution into the library's
//! [`PartitionSpec`], checked against the job's source before anything runs.

use super::resolver::{usage, Resolver, Shown, UsageError};
use clap::Args;
use gatelake::config::SourceConfig;
use gatelake::partition::{
    parse_key_list, parse_step, parse_time, KeySpec, PartitionSpec, RangeSpec, WindowEnd,
    WindowFormat, WindowSpec,
};
use serde::Deserialize;
use std::path::PathBuf;

/// The flags. Each is also a `GATELAKE_*` variable and a key of the job file's
/// `[jobs.NAME.partitions]` table.
#[derive(Debug, Clone, Default, Args)]
pub struct PartitionArgs {
    /// Split the pull into time windows from this time: RFC 3339 (2026-01-01T00:00:00Z) or a
    /// date (2026-01-01, midnight UTC). Needs --window.
    #[arg(long, env = "GATELAKE_WINDOW_START", value_name = "WHEN")]
    pub window_start: Option<String>,

    /// Where the windows end (exclusive): RFC 3339, a date, or now. [default: now]
    #[arg(long, env = "GATELAKE_WINDOW_END", value_name = "WHEN")]
    pub window_end: Option<String>,

    /// Each window's length: 1d, 6h, 15m, 30s. One partition per window.
    #[arg(long, env = "GATELAKE_WINDOW", value_name = "LENGTH")]
    pub window: Option<String>,

    /// The query parameters carrying a window's start and (exclusive) end. [default: from,to]
    #[arg(long, env = "GATELAKE_WINDOW_PARAMS", value_name = "FROM,TO")]
    pub window_params: Option<String>,

    /// How window bounds are written: rfc3339, date (whole days), epoch (seconds), epoch-ms.
    /// [default: rfc3339]
    #[arg(long, env = "GATELAKE_WINDOW_FORMAT", value_name = "FORMAT")]
    pub window_format: Option<String>,

    /// Split the pull by keys (comma-separated): each replaces {key} in the URL's path, or
    /// goes in --key-param. One partition per key (see --keys-per-partition).
    #[arg(long, env = "GATELAKE_KEYS", value_name = "A,B,C")]
    pub keys: Option<String>,

    /// Like --keys, from a file: one key per line; blank lines and lines starting with # are
    /// skipped.
    #[arg(long, env = "GATELAKE_KEYS_FILE", value_name = "FILE")]
    pub keys_file: Option<PathBuf>,

    /// Send each partition's key(s) as this query parameter (several comma-separated) instead
    /// of in the path's {key}.
    #[arg(long, env = "GATELAKE_KEY_PARAM", value_name = "NAME")]
    pub key_param: Option<String>,

    /// Keys per partition (more than 1 needs --key-param). [default: 1]
    #[arg(long, env = "GATELAKE_KEYS_PER_PARTITION", value_name = "N")]
    pub keys_per_partition: Option<usize>,

    /// Split the API's total (read from the first page at --total-path) into N ranges of
    /// whole pages (--paginate offset or page).
    #[arg(long, env = "GATELAKE_RANGES", value_name = "N")]
    pub ranges: Option<u64>,
}

/// `[jobs.NAME.partitions]`: the same settings, keys spelt with `_`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionJob {
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    pub window: Option<String>,
    /// `"from,to"` or `["from", "to"]`.
    pub window_params: Option<WindowParams>,
    pub window_format: Option<String>,
    pub keys: Option<Vec<String>>,
    pub keys_file: Option<PathBuf>,
    pub key_param: Option<String>,
    pub keys_per_partition: Option<usize>,
    pub ranges: Option<u64>,
}

/// The job file's `window_params`, as one string or a pair.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum WindowParams {
    Text(String),
    Pair([String; 2]),
}

impl WindowParams {
    fn text(&self) -> String {
        match self {
            WindowParams::Text(t) => t.clone(),
            WindowParams::Pair([a, b]) => format!("{a},{b}"),
        }
    }
}

/// The partition spec of a pull, or `None` when it is not split. Checked against `source`
/// (a `{key}` to substitute, a style that can start part-way, the number of partitions).
pub fn resolve_partitions(
    r: &mut Resolver<'_>,
    args: &PartitionArgs,
    job: Option<&PartitionJob>,
    source: &SourceConfig,
) -> Result<Option<PartitionSpec>, UsageError> {
    let empty = PartitionJob::default();
    let job = job.unwrap_or(&empty);
    let windows = args.window_start.is_some()
        || args.window.is_some()
        || job.window_start.is_some()
        || job.window.is_some();
    let keys = args.keys.is_some()
        || args.keys_file.is_some()
        || job.keys.is_some()
        || job.keys_file.is_some();
    let ranges = args.ranges.is_some() || job.ranges.is_some();
    let kinds: Vec<&str> = [
        (windows, "--window-start/--window"),
        (keys, "--keys/--keys-file"),
        (ranges, "--ranges"),
    ]
    .iter()
    .filter(|(given, _)| *given)
    .map(|(_, name)| *name)
    .collect();
    if kinds.len() > 1 {
        return usage(format!(
            "a pull splits one way: {} were all given; keep one",
            kinds.join(" and ")
        ));
    }
    let spec = if windows {
        resolve_windows(r, args, job)?
    } else if keys {
        resolve_keys(r, args, job)?
    } else if ranges {
        let count = r
            .pick("ranges", args.ranges, job.ranges, None)
            .unwrap_or_default();
        PartitionSpec::Ranges(RangeSpec { count })
    } else {
        stray_settings(args, job)?;
        if source.url.path().contains("%7Bkey%7D") {
            return usage(
                "the URL's path has {key} but no keys were given: pass --keys A,B,C or --keys-file FILE (one partition per key)",
            );
        }
        return Ok(None);
    };
    let count = spec.check(source).map_err(|e| UsageError(e.to_string()))?;
    let count = match count {
        Some(n) => format!("{n} partition(s)"),
        None => "partition count from the API's total when the run is planned".to_string(),
    };
    r.shown.push(Shown {
        key: "partitions".into(),
        value: format!("{}; {count}", spec.describe()),
        origin: "resolved".into(),
    });
    Ok(Some(spec))
}

/// A setting of one kind of split given without that kind.
fn stray_settings(args: &PartitionArgs, job: &PartitionJob) -> Result<(), UsageError> {
    let stray = [
        (
            "window-end",
            args.window_end.is_some() || job.window_end.is_some(),
        ),
        (
            "window-params",
            args.window_params.is_some() || job.window_params.is_some(),
        ),
        (
            "window-format",
            args.window_format.is_some() || job.window_format.is_some(),
        ),
        (
            "key-param",
            args.key_param.is_some() || job.key_param.is_some(),
        ),
        (
            "keys-per-partition",
            args.keys_per_partition.is_some() || job.keys_per_partition.is_some(),
        ),
    ];
    match stray.iter().find(|(_, given)| *given) {
        Some((flag, _)) if flag.starts_with("window") => usage(format!(
            "--{flag} shapes time windows, and no --window-start and --window were given: add them, or drop --{flag}"
        )),
        Some((flag, _)) => usage(format!(
            "--{flag} shapes a split by keys, and no --keys or --keys-file was given: add one, or drop --{flag}"
        )),
        None => Ok(()),
    }
}

fn resolve_windows(
    r: &mut Resolver<'_>,
    args: &PartitionArgs,
    job: &PartitionJob,
) -> Result<PartitionSpec, UsageError> {
    let start = r.pick(
        "window_start",
        args.window_start.clone(),
        job.window_start.clone(),
        None,
    );
    let step = r.pick("window", args.window.clone(), job.window.clone(), None);
    let (Some(start), Some(step)) = (start, step) else {
        return usage(
            "time windows need both --window-start (e.g. 2026-01-01) and --window (each window's length, e.g. 1d)",
        );
    };
    let end = r
        .pick(
            "window_end",
            args.window_end.clone(),
            job.window_end.clone(),
            Some("now".into()),
        )
        .unwrap_or_else(|| "now".into());
    let params = r
        .pick(
            "window_params",
            args.window_params.clone(),
            job.window_params.as_ref().map(WindowParams::text),
            Some("from,to".into()),
        )
        .unwrap_or_default();
    let format = r
        .pick(
            "window_format",
            args.window_format.clone(),
            job.window_format.clone(),
            Some("rfc3339".into()),
        )
        .unwrap_or_default();
    let start = parse_time(&start).map_err(|e| UsageError(format!("--window-start: {e}")))?;
    let end = if end.trim().eq_ignore_ascii_case("now") {
        WindowEnd::Now
    } else {
        WindowEnd::At(
            parse_time(&end).map_err(|e| UsageError(format!("--window-end: {e} (or now)")))?,
        )
    };
    let step = parse_step(&step).map_err(|e| UsageError(format!("--window: {e}")))?;
    let (from_param, to_param) = match params.split_once(',') {
        Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() && !b.contains(',') => {
            (a.trim().to_string(), b.trim().to_string())
        }
        _ => {
            return usage(format!(
                "--window-params '{params}': give the two query parameters of a window's start and end, comma-separated, e.g. from,to"
            ))
        }
    };
    if from_param == to_param {
        return usage(format!(
            "--window-params '{params}': the start and end parameters must differ"
        ));
    }
    let Some(format) = WindowFormat::parse(&format) else {
        let names: Vec<&str> = WindowFormat::ALL.iter().map(|(_, n)| *n).collect();
        return usage(format!(
            "--window-format '{format}': use one of {}",
            names.join(", ")
        ));
    };
    Ok(PartitionSpec::Windows(WindowSpec {
        start,
        end,
        step,
        from_param,
        to_param,
        format,
    }))
}

fn resolve_keys(
    r: &mut Resolver<'_>,
    args: &PartitionArgs,
    job: &PartitionJob,
) -> Result<PartitionSpec, UsageError> {
    let inline_cli = args.keys.as_deref().map(split_inline);
    let file_cli = args.keys_file.clone();
    let (keys, origin) = match (inline_cli, file_cli) {
        (Some(_), Some(_)) => {
            return usage("--keys and --keys-file were both given: keep one list of keys")
        }
        (Some(keys), None) => (keys, cli_origin(r, "keys")),
        (None, Some(file)) => (read_keys_file(&file)?, cli_origin(r, "keys_file")),
        (None, None) => match (&job.keys, &job.keys_file) {
            (Some(_), Some(_)) => {
                return usage(
                    "the job file's partitions table has both keys and keys_file: keep one list of keys",
                )
            }
            (Some(keys), None) => (keys.clone(), "job file".to_string()),
            (None, Some(file)) => (read_keys_file(file)?, "job file".to_string()),
            (None, None) => (Vec::new(), String::new()),
        },
    };
    if keys.is_empty() {
        return usage("the list of keys is empty: give at least one key (--keys A,B or a --keys-file with one key per line)");
    }
    let shown_keys = match keys.len() {
        1..=3 => keys.join(", "),
        n => format!("{}, … ({n} keys)", keys[..3].join(", ")),
    };
    r.shown.push(Shown {
        key: "keys".into(),
        value: shown_keys,
        origin,
    });
    let param = r.pick(
        "key_param",
        args.key_param.clone(),
        job.key_param.clone(),
        None,
    );
    let per_partition = r
        .pick(
            "keys_per_partition",
            args.keys_per_partition,
            job.keys_per_partition,
            Some(1),
        )
        .unwrap_or(1);
    Ok(PartitionSpec::Keys(KeySpec {
        keys,
        param,
        per_partition,
    }))
}

/// Where a flag's value came from, as the resolver says it.
fn cli_origin(r: &Resolver<'_>, id: &str) -> String {
    if r.given_in_env(id) {
        format!("env GATELAKE_{}", id.to_ascii_uppercase())
    } else {
        format!("flag --{}", id.replace('_', "-"))
    }
}

/// `--keys a,b,c`: trimmed; empty entries are kept so the plan can refuse them by name.
fn split_inline(text: &str) -> Vec<String> {
    text.split(',').map(|k| k.trim().to_string()).collect()
}

fn read_keys_file(path: &std::path::Path) -> Result<Vec<String>, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "--keys-file {}: cannot read it ({e}); give a text file with one key per line",
            path.display()
        ))
    })?;
    Ok(parse_key_list(&text))
}
