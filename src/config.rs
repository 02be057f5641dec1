//! The plain, documented configuration of one pull: what the CLI resolves (flag >
//! `GATELAKE_*` env > job file > default) and hands to the engine. No clap here; a library
//! user builds it directly.

use crate::encode::drift::SchemaOptions;
use crate::encode::{EncodeOptions, SynapseFileType};
use crate::secret::{Secret, SecretSource};
use std::collections::BTreeMap;
use std::time::Duration;
use url::Url;

pub mod partitions;
pub use partitions::PartitionSpec;

/// How requests to the API are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAuth {
    None,
    /// `x-api-key` header (API Gateway usage plans); a key file is re-read when it changes.
    ApiKey(SecretSource),
    /// `Authorization: Bearer …` (API Gateway JWT or Lambda authorizers); a token file is
    /// re-read when it changes.
    Bearer(SecretSource),
    /// SigV4, service `execute-api`, with credentials from the AWS credential chain.
    Iam {
        region: String,
    },
    /// `Authorization: Bearer …` with an Entra token for `audience`, fetched (and renewed)
    /// from the Azure identity given to the client (`ApiClient::with_bearer_credential`).
    BearerFromAzure {
        audience: String,
    },
    /// `Authorization: Bearer …` with an access token from an OAuth2 provider's token
    /// endpoint (Cognito, Okta), cached and renewed (`identity::oauth2`).
    /// Boxed: its settings are larger than every other variant's.
    OAuth2(Box<crate::identity::oauth2::OAuth2Config>),
}

impl ApiAuth {
    pub fn kind(&self) -> &'static str {
        match self {
            ApiAuth::None => "none",
            ApiAuth::ApiKey(_) => "api-key",
            ApiAuth::Bearer(_) | ApiAuth::BearerFromAzure { .. } => "bearer",
            ApiAuth::Iam { .. } => "iam",
            ApiAuth::OAuth2(_) => "oauth2",
        }
    }
}

/// Bounds on retrying one request (the one retry module's policy; the API client's flags
/// fill it in).
pub use crate::retry::RetryPolicy;

/// How the API is paged, as plain data: the style's `--paginate` name, the settings given to
/// it (by key: the flag's long name with `_`, e.g. `cursor_path`), and the stop rules every
/// style shares. It names no paginator: `source::paginate` builds one from it through its
/// registry of styles, where each style reads and checks its own settings, so a new style
/// changes nothing here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pagination {
    /// The style's name, e.g. `cursor` or `offset` (see `source::paginate::STYLES`).
    pub style: String,
    /// The style's settings; a setting left out takes the style's default.
    pub settings: BTreeMap<String, String>,
    pub stop: StopRules,
}

impl Pagination {
    /// One request: the endpoint returns everything.
    pub fn single() -> Self {
        Self::new("none")
    }

    /// Style `style` with its default settings and no stop rules.
    pub fn new(style: &str) -> Self {
        Self {
            style: style.to_string(),
            settings: BTreeMap::new(),
            stop: StopRules::default(),
        }
    }

    /// This pagination with setting `key` set to `value`.
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.settings.insert(key.to_string(), value.to_string());
        self
    }

    /// The style's `--paginate` name.
    pub fn name(&self) -> &str {
        &self.style
    }
}

/// Stop rules every style shares, from flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopRules {
    /// Body path of a boolean: stop when it is false (`has_more`, `meta.has_next`).
    pub has_more_path: Option<String>,
    /// Body path of the total record count: stop once that many records were fetched.
    pub total_path: Option<String>,
    /// Stop once this many records were fetched: the end of a range of a split listing
    /// (`partition`; no flag sets it).
    pub max_records: Option<u64>,
}

/// Everything the source needs to fetch pages.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// The first page's URL (query parameters allowed).
    pub url: Url,
    pub pagination: Pagination,
    /// Where the records are in a page body: `items`, `data.rows`; empty = the body is the array.
    pub records_path: String,
    pub auth: ApiAuth,
    /// An `x-api-key` sent alongside `iam` or `bearer` auth: API Gateway methods can require
    /// both an authorizer and a usage-plan key. (With `ApiAuth::ApiKey` the key is there.)
    pub usage_plan_key: Option<SecretSource>,
    /// Extra request headers (name, value); values are treated as secrets in output.
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Stop after this many pages (a safety net, and a way to sample an API). A run stopped
    /// by it with pages left is partial unless `checks.max_pages_complete` says otherwise.
    pub max_pages: Option<u64>,
    /// How the run checks that it got the whole listing.
    pub checks: ListingChecks,
    /// Refuse a page whose decompressed body is larger than this.
    pub max_page_bytes: u64,
    /// What to do with a page whose records cannot be read.
    pub on_bad_page: BadPagePolicy,
    /// Page requests in flight at once, for styles whose next requests can be worked out
    /// ahead (offset, page number; see `source::paginate::Pages`). Pages still reach the
    /// encoder one by one, in order. Other styles fetch one page at a time whatever this is.
    pub concurrency: usize,
    /// Start a cursor or link page's next request from its pointer as soon as the page is
    /// in, while it is parsed; its answer is used only if the parsed page asks for exactly
    /// that request (see `source::paginate::guess`).
    pub read_ahead: bool,
    /// How each request is made: `GET`, or `POST` with a JSON body template into which the
    /// style places its pointer, and query templates (see `source::request`).
    pub request: RequestTemplate,
}

/// How a request is made, as configured (`--method`, `--body`, `--query`); placeholders not
/// yet filled. The default is a plain `GET` of the position URL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestTemplate {
    /// `POST` sends a JSON body (the template, or `{}`); `GET` sends none.
    pub post: bool,
    /// The body template: a JSON object.
    pub body: Option<serde_json::Value>,
    /// Query parameters set on every request, values possibly with placeholders.
    pub query: Vec<(String, String)>,
}

/// How a run checks that it got the whole listing (see `pipeline::listing`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingChecks {
    /// `--expect-rows`: the records the API should return in this run.
    pub expect_rows: Option<u64>,
    /// `--on-count-mismatch`: what a run whose record count differs from the API's total
    /// (`--total-path`) or `expect_rows` does.
    pub on_count_mismatch: CountMismatchPolicy,
    /// `--max-pages-complete`: a run stopped by `--max-pages` with pages left is complete
    /// (`_SUCCESS`, exit 0) rather than partial.
    pub max_pages_complete: bool,
}

/// `--on-count-mismatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CountMismatchPolicy {
    /// The run is partial: no `_SUCCESS`, a resumable checkpoint, exit 4.
    #[default]
    Fail,
    /// The run completes with the mismatch recorded as a warning.
    Warn,
}

/// `--on-bad-page`: stop at a page whose records cannot be read, or set it aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadPagePolicy {
    /// Stop with an error naming the page; the checkpoint stays at the last good chunk.
    #[default]
    Fail,
    /// Keep the page's raw body under `<run>/_rejected/`, record it in the manifest, and go
    /// on — when the next request can be known without the page's records.
    Skip,
}

/// Where chunks go and how big they get.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub encode: EncodeOptions,
    /// Rotate after a page once this many uncompressed record bytes are in the chunk.
    pub chunk_bytes: u64,
    /// Rotate after a page once this many records are in the chunk.
    pub chunk_rows: Option<u64>,
    /// Schema drift policy, flattening, and a pinned schema (csv/parquet).
    pub schema: SchemaOptions,
}

/// Incremental runs: where the watermark comes from and how the next run asks for news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incremental {
    /// Record path of the value that grows (`updated_at`, `meta.seq`).
    pub field: String,
    /// Query parameter the next run sends the watermark in (`updated_since`).
    pub param: String,
    /// Ask again this far before the watermark, to catch late arrivals.
    pub lag: Duration,
}

/// One pull, fully resolved.
#[derive(Debug, Clone)]
pub struct PullConfig {
    /// The job's name: recorded in the manifest and used in the run's folder name.
    pub job: String,
    pub source: SourceConfig,
    pub output: OutputConfig,
    /// How many chunks may be uploading at once.
    pub upload_concurrency: usize,
    /// Incremental runs (`--since-field`), or every run pulls everything.
    pub incremental: Option<Incremental>,
    /// How the job splits into partitions (`--window*`, `--keys*`, `--ranges`), or one
    /// listing.
    pub partitions: Option<PartitionSpec>,
}

/// The chunk size (record JSON, uncompressed) of `--synapse-optimized`. Synapse wants files
/// of at least 4 MB, and parquet of 256 MB or more needs no splitting: parquet chunks hold
/// 1 GiB of record JSON, about 256 MB stored at the usual 4:1. For gzip csv, which loads
/// fastest in a multiple of 60 files, an expected size picks the chunk size giving such a
/// count (chunks end on whole pages, so the count is close, not exact); otherwise 256 MiB.
pub fn synapse_chunk_bytes(encode: &EncodeOptions, expected: Option<u64>) -> u64 {
    const GIB: u64 = 1 << 30;
    const TARGET_CSV: u64 = 256 << 20;
    // A parquet file is read in parallel (by row groups); delimited text is not.
    if encode.format.synapse().file_type == SynapseFileType::Parquet {
        return GIB;
    }
    match expected {
        Some(total) if total > 0 => {
            let groups = total.div_ceil(60 * TARGET_CSV).max(1);
            total.div_ceil(60 * groups).max(1)
        }
        _ => TARGET_CSV,
    }
}

/// Parse a byte size: `128MiB`, `64MB`, `500k`, `1048576`.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("'{s}' is not a size: use a number with an optional unit, e.g. 128MiB")
    })?;
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        // Echo the unit as typed (not lower-cased): the user must find it in their input.
        _ => {
            return Err(format!(
                "'{t}': '{unit}' is not a size unit; use one of B, KB, KiB, MB, MiB, GB, GiB (or K, M, G), e.g. 128MiB"
            ))
        }
    };
    let bytes = n * mult as f64;
    if bytes.is_nan() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("'{s}' must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

/// Parse a duration: `30s`, `5m`, `1h`, `250ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration: use e.g. 30s, 5m, 1h or 250ms"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "'{other}' is not a duration unit: use ms, s, m or h"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("'{s}' is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        let ok = [
            ("128MiB", 128 << 20),
            ("64MB", 64_000_000),
            ("500k", 500_000),
            ("1048576", 1_048_576),
            ("1.5GiB", 3 << 29),
            (" 2 KiB ", 2048),
        ];
        for (s, want) in ok {
            assert_eq!(parse_byte_size(s), Ok(want), "{s}");
        }
        for bad in ["", "MiB", "12 parsecs", "0", "-5MB"] {
            assert!(parse_byte_size(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn a_bad_size_unit_echoes_what_was_typed_and_lists_the_units() {
        let err = parse_byte_size("12XB").unwrap_err();
        assert!(err.contains("'12XB'"), "{err}");
        assert!(err.contains("'XB' is not a size unit"), "{err}");
        for unit in ["B", "KB", "KiB", "MB", "MiB", "GB", "GiB"] {
            assert!(err.contains(unit), "{err}");
        }
        assert!(!err.contains("'xb'"), "{err}");
    }

    #[test]
    fn synapse_chunk_sizes() {
        use crate::encode::Format;
        let parquet = EncodeOptions::new(Format::PARQUET, None);
        let csv = EncodeOptions::new(Format::CSV, None);
        assert_eq!(synapse_chunk_bytes(&parquet, Some(1)), 1 << 30);
        assert_eq!(synapse_chunk_bytes(&csv, None), 256 << 20);
        // 6 GB: one group of 60 files of 100 MB each.
        assert_eq!(synapse_chunk_bytes(&csv, Some(6_000_000_000)), 100_000_000);
        // 40 GiB: 180 files (three groups of 60), each under 256 MiB.
        let each = synapse_chunk_bytes(&csv, Some(40 << 30));
        assert_eq!((40u64 << 30).div_ceil(each), 180);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
    }
}
