//! A job split into partitions: the deterministic partition list of a [`PartitionSpec`]
//! (time windows, key lists, ranges of the API's total) and the source config of one
//! partition ([`apply`]). One file per kind: `window.rs`, `keys.rs`, `range.rs`.
//!
//! Every worker of a run must work from the same list, so a partition is self-contained
//! data: its id, what it covers (for the manifest and `status`) and how its requests differ
//! from the job's ([`PartitionRequest`]). The run record stores the list; a worker applies
//! the stored partitions, never re-plans them (ranges depend on the API's total, `now` on the
//! clock). [`PartitionSpec::fingerprint`] identifies the job definition, so a worker started
//! with another one refuses to join.
//!
//! This module sits above `source` (ranges ask the API for its total with the pull's own
//! client) and below `run`/`state`: it never names the sink, the checkpoint or the run.

mod keys;
mod range;
mod window;

pub use crate::config::partitions::{
    KeySpec, PartitionSpec, RangeSpec, WindowEnd, WindowFormat, WindowSpec,
};
pub use keys::parse_key_list;
pub use window::{format_bound, parse_step, parse_time};

use crate::config::SourceConfig;
use crate::source::client::{ApiClient, SourceError};
use crate::source::extract::ExtractError;
use crate::source::paginate::{with_query_param, PaginateError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// More partitions than this is refused: each one is a lease, a checkpoint and a few state
/// writes, and a list this long is almost always a window or a key list given by mistake.
pub const MAX_PARTITIONS: usize = 100_000;

/// One partition of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Deterministic from the spec, file-name safe, short: `w-20260101T000000Z`,
    /// `k-<slug>-<8 hex of the keys' hash>`, `r-000003`. Used in state paths and chunk names.
    pub id: String,
    /// What it covers, for the manifest and `status`.
    pub covers: Covers,
    /// How its requests differ from the job's ([`apply`]).
    #[serde(default)]
    pub request: PartitionRequest,
}

/// What a partition covers: `{"window": {"from", "to"}}` (RFC 3339, `to` exclusive) |
/// `{"keys": [...]}` | `{"range": {"first", "last"}}` (record positions, both inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Covers {
    Window { from: String, to: String },
    Keys(Vec<String>),
    Range { first: u64, last: u64 },
}

/// How one partition's pull differs from the job's, as data (so the run record carries it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRequest {
    /// Query parameters set on the first request (window bounds, keys), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<(String, String)>,
    /// The value that replaces `{key}` in the URL's path (percent-encoded there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_key: Option<String>,
    /// Pagination settings replaced: where a range starts, its page size.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
    /// The records a range holds: its pull stops after that many and expects exactly that
    /// many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
}

/// Why a job could not be split, or a partition applied.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// A spec that cannot split this job; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// `--ranges` asked the API for its total and the request failed.
    #[error("--ranges: asking the API for its total failed: {0}")]
    Probe(#[source] SourceError),
    /// `--ranges`: the first page's body could not be read.
    #[error("--ranges: the first page of {url} could not be read: {source}")]
    ProbeBody {
        url: String,
        #[source]
        source: ExtractError,
    },
    /// The pagination settings cannot be used (checked as for any pull).
    #[error("{0}")]
    Pagination(#[from] PaginateError),
}

impl PartitionSpec {
    /// The partitions, in order. Windows and keys need no request; ranges ask the API for its
    /// total once (with the pull's own client), hence async.
    pub async fn plan(
        &self,
        source: &SourceConfig,
        client: &ApiClient,
    ) -> Result<Vec<Partition>, PartitionError> {
        let list = match self {
            PartitionSpec::Ranges(spec) => range::plan(spec, source, client).await?,
            _ => self
                .plan_offline(source, time::OffsetDateTime::now_utc())?
                .unwrap_or_default(),
        };
        check_count(list.len(), self)?;
        Ok(list)
    }

    /// The partitions of a spec that needs no request (windows, keys), `now` standing for a
    /// window end of `now`; `None` for ranges, whose list needs the API's total.
    pub fn plan_offline(
        &self,
        source: &SourceConfig,
        now: time::OffsetDateTime,
    ) -> Result<Option<Vec<Partition>>, PartitionError> {
        let list = match self {
            PartitionSpec::Windows(spec) => window::plan(spec, now)?,
            PartitionSpec::Keys(spec) => keys::plan(spec, source)?,
            PartitionSpec::Ranges(spec) => {
                range::check(spec, source)?;
                return Ok(None);
            }
        };
        check_count(list.len(), self)?;
        Ok(Some(list))
    }

    /// Everything that can be checked before any request: the spec against the job's
    /// source (a `{key}` to substitute, a style that can start part-way…) and the number of
    /// partitions where it is known without the API (`None` for ranges).
    pub fn check(&self, source: &SourceConfig) -> Result<Option<usize>, PartitionError> {
        Ok(self
            .plan_offline(source, time::OffsetDateTime::now_utc())?
            .map(|list| list.len()))
    }

    /// A stable fingerprint of the spec (not of the partition list): a worker started with
    /// another job definition refuses to join a run. 16 hex digits.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.canonical().as_bytes());
        hex::encode(&h.finalize()[..8])
    }

    /// One line per setting, in a fixed order: what the fingerprint hashes.
    fn canonical(&self) -> String {
        match self {
            PartitionSpec::Windows(w) => window::canonical(w),
            PartitionSpec::Keys(k) => keys::canonical(k),
            PartitionSpec::Ranges(r) => format!("ranges\ncount={}\n", r.count),
        }
    }

    /// A one-line description for `--show-settings` and messages.
    pub fn describe(&self) -> String {
        match self {
            PartitionSpec::Windows(w) => window::describe(w),
            PartitionSpec::Keys(k) => keys::describe(k),
            PartitionSpec::Ranges(r) => format!(
                "ranges: the API's total split into {} range(s) of whole pages",
                r.count
            ),
        }
    }
}

fn check_count(n: usize, spec: &PartitionSpec) -> Result<(), PartitionError> {
    if n == 0 {
        return Err(PartitionError::Invalid(format!(
            "the {} split makes no partitions: {}",
            spec.kind(),
            spec.describe()
        )));
    }
    if n > MAX_PARTITIONS {
        return Err(PartitionError::Invalid(format!(
            "the {} split makes {n} partitions, more than {MAX_PARTITIONS}: use longer windows (--window), more keys per partition (--keys-per-partition) or fewer ranges",
            spec.kind()
        )));
    }
    Ok(())
}

/// The source config of one partition: `{key}` substituted in the path (percent-encoded),
/// window bounds / keys as query parameters, a range's start and page size in the
/// pagination settings with a bound on its records (so the pull stops at the range's end).
///
/// A job's `--expect-rows` counts the whole run, not one partition, so it is not checked per
/// partition; a range's pull expects exactly its own records instead, and its API total
/// (`--total-path`, the whole listing's) is not compared with one range's count.
pub fn apply(source: &SourceConfig, p: &Partition) -> Result<SourceConfig, PartitionError> {
    let mut s = source.clone();
    s.checks.expect_rows = None;
    if let Some(key) = &p.request.path_key {
        s.url = keys::substitute(&s.url, key)?;
    }
    for (name, value) in &p.request.query {
        s.url = with_query_param(&s.url, name, value);
    }
    for (key, value) in &p.request.settings {
        s.pagination.settings.insert(key.clone(), value.clone());
    }
    if let Some(records) = p.request.records {
        s.pagination.stop.max_records = Some(records);
        s.pagination.stop.total_path = None;
        s.checks.expect_rows = Some(records);
    }
    // The partition's pagination must still be one its style accepts.
    crate::source::paginate::paginator(&s.pagination)?;
    Ok(s)
}
