//! How a job splits into partitions, as plain data: what the CLI resolves from `--window*`,
//! `--keys*` and `--ranges` (or the job file's `[partitions]` table) and a library user
//! builds directly. It lives beside [`crate::config::PullConfig`], which carries it, and
//! knows nothing of requests: planning the partition list and applying one partition to a
//! pull's source are `crate::partition`'s work.

use std::time::Duration;
use time::OffsetDateTime;

/// How a job splits. One kind per job.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionSpec {
    /// Consecutive time windows, each a pull with its bounds as query parameters.
    Windows(WindowSpec),
    /// A list of keys (tenants, regions…), substituted into the URL's path or sent as a query
    /// parameter, one partition per key or per group of keys.
    Keys(KeySpec),
    /// The API's reported total split into contiguous ranges of whole pages (offset and page
    /// number styles).
    Ranges(RangeSpec),
}

/// `--window-start`, `--window-end`, `--window`, `--window-params`, `--window-format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    /// The first window's start (inclusive).
    pub start: OffsetDateTime,
    /// The last window's end (exclusive): the last window is cut short there.
    pub end: WindowEnd,
    /// Each window's length.
    pub step: Duration,
    /// The query parameters carrying a window's start and end (`from`, `to`).
    pub from_param: String,
    pub to_param: String,
    /// How the bounds are written in those parameters.
    pub format: WindowFormat,
}

/// Where the windows end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowEnd {
    At(OffsetDateTime),
    /// The time the partition list is planned (once per run: every worker works from the
    /// run record's list, not from its own clock).
    Now,
}

/// `--window-format`: how a window's bounds are written in its query parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WindowFormat {
    /// `2026-01-01T00:00:00Z`
    #[default]
    Rfc3339,
    /// `2026-01-01` (windows must be whole days from midnight UTC)
    Date,
    /// Seconds since 1970 (`1767225600`)
    Epoch,
    /// Milliseconds since 1970 (`1767225600000`)
    EpochMs,
}

impl WindowFormat {
    /// Every format, with its `--window-format` name.
    pub const ALL: [(WindowFormat, &'static str); 4] = [
        (WindowFormat::Rfc3339, "rfc3339"),
        (WindowFormat::Date, "date"),
        (WindowFormat::Epoch, "epoch"),
        (WindowFormat::EpochMs, "epoch-ms"),
    ];

    /// Its `--window-format` name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("rfc3339", |(_, n)| n)
    }

    /// The format named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(f, _)| *f)
    }
}

/// `--keys` / `--keys-file`, `--key-param`, `--keys-per-partition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// The keys, in the order given (duplicates are refused when the list is planned).
    pub keys: Vec<String>,
    /// The query parameter carrying a partition's keys (comma-separated when several);
    /// `None`: each key replaces `{key}` in the URL's path.
    pub param: Option<String>,
    /// Keys per partition (at least 1; more than 1 needs `param`).
    pub per_partition: usize,
}

/// `--ranges N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeSpec {
    /// How many ranges to split the API's total into (fewer when it has fewer pages).
    pub count: u64,
}

impl PartitionSpec {
    /// The kind's name, as `--show-settings` and messages say it.
    pub fn kind(&self) -> &'static str {
        match self {
            PartitionSpec::Windows(_) => "windows",
            PartitionSpec::Keys(_) => "keys",
            PartitionSpec::Ranges(_) => "ranges",
        }
    }
}
