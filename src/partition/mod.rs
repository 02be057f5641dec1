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
        // Every check that needs no request first, for every kind.
        let list = match self.plan_offline(source, time::OffsetDateTime::now_utc())? {
            Some(list) => list,
            None => match self {
                PartitionSpec::Ranges(spec) => range::plan(spec, source, client).await?,
                // Only ranges need the API; an empty list is refused below.
                _ => Vec::new(),
            },
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
        if let Some(n) = source.checks.expect_rows {
            return Err(PartitionError::Invalid(format!(
                "--expect-rows {n} counts one whole listing, and this job is split into {}: drop --expect-rows (each range of --ranges is checked against its own count)",
                self.kind()
            )));
        }
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
/// A range's pull expects exactly its own records, and its API total (`--total-path`, the
/// whole listing's) is not compared with one range's count. (A split job has no
/// `--expect-rows` of its own: planning refuses it.)
pub fn apply(source: &SourceConfig, p: &Partition) -> Result<SourceConfig, PartitionError> {
    let mut s = source.clone();
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{ApiAuth, ListingChecks, Pagination, RetryPolicy};
    use std::time::Duration;
    use time::macros::datetime;
    use time::OffsetDateTime;

    /// A job's source at `url`, paged by `pagination`.
    pub(crate) fn source(url: &str, pagination: Pagination) -> SourceConfig {
        SourceConfig {
            url: url::Url::parse(url).unwrap(),
            pagination,
            records_path: "items".into(),
            auth: ApiAuth::None,
            usage_plan_key: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            max_pages: None,
            checks: ListingChecks::default(),
            max_page_bytes: 1 << 20,
            on_bad_page: Default::default(),
            concurrency: 1,
            read_ahead: true,
            request: Default::default(),
        }
    }

    fn windows(step_secs: u64) -> PartitionSpec {
        PartitionSpec::Windows(WindowSpec {
            start: datetime!(2026-01-01 00:00 UTC),
            end: WindowEnd::At(datetime!(2026-01-03 00:00 UTC)),
            step: Duration::from_secs(step_secs),
            from_param: "from".into(),
            to_param: "to".into(),
            format: WindowFormat::Rfc3339,
        })
    }

    fn keys(list: &[&str], param: Option<&str>, per: usize) -> PartitionSpec {
        PartitionSpec::Keys(KeySpec {
            keys: list.iter().map(|k| k.to_string()).collect(),
            param: param.map(str::to_string),
            per_partition: per,
        })
    }

    fn first_url(s: &SourceConfig) -> String {
        crate::source::paginate::paginator(&s.pagination)
            .unwrap()
            .first(&s.url)
            .to_string()
    }

    #[test]
    fn the_fingerprint_follows_the_spec_and_nothing_else() {
        assert_eq!(windows(86_400).fingerprint(), windows(86_400).fingerprint());
        assert_eq!(windows(86_400).fingerprint().len(), 16);
        let different = [
            windows(3_600),
            keys(&["a", "b"], None, 1),
            keys(&["a", "c"], None, 1),
            keys(&["a", "b"], Some("tenant"), 1),
            keys(&["a", "b"], Some("tenant"), 2),
            PartitionSpec::Ranges(RangeSpec { count: 4 }),
            PartitionSpec::Ranges(RangeSpec { count: 5 }),
        ];
        let mut seen = std::collections::HashSet::new();
        seen.insert(windows(86_400).fingerprint());
        for spec in &different {
            assert!(seen.insert(spec.fingerprint()), "{spec:?}");
        }
        // `now` is part of the definition, not the time it stands for.
        let mut now = windows(86_400);
        if let PartitionSpec::Windows(w) = &mut now {
            w.end = WindowEnd::Now;
        }
        assert_ne!(now.fingerprint(), windows(86_400).fingerprint());
    }

    #[test]
    fn a_window_partition_sends_its_bounds_in_the_query() {
        let job = source(
            "https://api.example.com/prod/orders?status=open",
            Pagination::new("cursor")
                .with("cursor_path", "next")
                .with("cursor_param", "cursor"),
        );
        let list = windows(86_400)
            .plan_offline(&job, OffsetDateTime::now_utc())
            .unwrap()
            .unwrap();
        assert_eq!(list.len(), 2);
        let s = apply(&job, &list[1]).unwrap();
        assert_eq!(
            s.url.as_str(),
            "https://api.example.com/prod/orders?status=open&from=2026-01-02T00%3A00%3A00Z&to=2026-01-03T00%3A00%3A00Z"
        );
        assert_eq!(
            serde_json::to_value(&list[1].covers).unwrap(),
            serde_json::json!({"window": {"from": "2026-01-02T00:00:00Z", "to": "2026-01-03T00:00:00Z"}})
        );
    }

    #[test]
    fn a_key_goes_in_the_path_percent_encoded_as_one_segment() {
        let job = source(
            "https://api.example.com/prod/tenants/{key}/orders",
            Pagination::single(),
        );
        let list = keys(&["acme", "a/b c?"], None, 1)
            .plan_offline(&job, OffsetDateTime::now_utc())
            .unwrap()
            .unwrap();
        let urls: Vec<String> = list
            .iter()
            .map(|p| apply(&job, p).unwrap().url.to_string())
            .collect();
        assert_eq!(
            urls,
            [
                "https://api.example.com/prod/tenants/acme/orders",
                "https://api.example.com/prod/tenants/a%2Fb%20c%3F/orders",
            ]
        );
        assert_eq!(
            serde_json::to_value(&list[0].covers).unwrap(),
            serde_json::json!({"keys": ["acme"]})
        );
    }

    #[test]
    fn keys_in_a_query_parameter_go_in_groups() {
        let job = source("https://api.example.com/prod/orders", Pagination::single());
        let list = keys(&["a", "b", "c"], Some("tenant"), 2)
            .plan_offline(&job, OffsetDateTime::now_utc())
            .unwrap()
            .unwrap();
        let urls: Vec<String> = list
            .iter()
            .map(|p| apply(&job, p).unwrap().url.to_string())
            .collect();
        assert_eq!(
            urls,
            [
                "https://api.example.com/prod/orders?tenant=a%2Cb",
                "https://api.example.com/prod/orders?tenant=c",
            ]
        );
    }

    #[test]
    fn a_range_begins_part_way_stops_at_its_end_and_expects_its_own_records() {
        let mut job = source(
            "https://api.example.com/prod/offset",
            Pagination::new("offset").with("page_size", 100),
        );
        job.pagination.stop.total_path = Some("total".into());
        let list = range::cut(&RangeSpec { count: 3 }, &job, 1_050, 100).unwrap();
        let s = apply(&job, &list[2]).unwrap();
        assert_eq!(
            first_url(&s),
            "https://api.example.com/prod/offset?offset=700&limit=100"
        );
        assert_eq!(s.pagination.stop.max_records, Some(350));
        assert_eq!(s.checks.expect_rows, Some(350));
        // The whole listing's total is not one range's count.
        assert_eq!(s.pagination.stop.total_path, None);
        // A job's own --expect-rows counts one listing: a split job refuses it.
        job.checks.expect_rows = Some(1_050);
        let err = windows(86_400)
            .plan_offline(&job, OffsetDateTime::now_utc())
            .unwrap_err()
            .to_string();
        assert!(err.contains("drop --expect-rows"), "{err}");
        let err = PartitionSpec::Ranges(RangeSpec { count: 3 })
            .check(&job)
            .unwrap_err()
            .to_string();
        assert!(err.contains("drop --expect-rows"), "{err}");
    }

    #[test]
    fn a_partition_survives_the_run_record() {
        let job = source(
            "https://api.example.com/prod/offset",
            Pagination::new("offset"),
        );
        let mut all = windows(86_400)
            .plan_offline(&job, OffsetDateTime::now_utc())
            .unwrap()
            .unwrap();
        all.extend(range::cut(&RangeSpec { count: 2 }, &job, 500, 100).unwrap());
        let text = serde_json::to_string(&all).unwrap();
        let back: Vec<Partition> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, all);
        // A record written with only id and covers still reads.
        let bare: Partition =
            serde_json::from_str(r#"{"id":"r-000000","covers":{"range":{"first":0,"last":9}}}"#)
                .unwrap();
        assert_eq!(bare.request, PartitionRequest::default());
    }

    #[test]
    fn too_many_or_no_partitions_are_refused_with_what_to_change() {
        let job = source("https://api.example.com/prod/orders", Pagination::single());
        let err = windows(1)
            .plan_offline(&job, OffsetDateTime::now_utc())
            .unwrap_err()
            .to_string();
        assert!(err.contains("172800 partitions"), "{err}");
        assert!(err.contains("longer windows"), "{err}");
        let err = keys(&[], Some("k"), 1)
            .plan_offline(&job, OffsetDateTime::now_utc())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no partitions"), "{err}");
    }
}
