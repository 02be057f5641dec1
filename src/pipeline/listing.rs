//! Did the run get the whole listing? Decided once, when the fetch stage has stopped and
//! every page is committed, from what the run saw ([`ListingNotes`]) and what the user asked
//! for ([`crate::config::ListingChecks`]). A run that did not is *partial*: its manifest says
//! so, no `_SUCCESS` is written, the checkpoint stays open so a rerun can finish it, and the
//! caller gets [`super::PullError::Incomplete`] (exit code 4) — never a quiet success.
//!
//! - `--max-pages N` with pages left: partial, unless `--max-pages-complete` says the capped
//!   run is what the user wanted (then it succeeds with a warning saying it was capped).
//! - A record count that differs from the API's total (`--total-path`) or `--expect-rows`:
//!   partial with `--on-count-mismatch fail` (the default), a recorded warning with `warn`.
//!   A shortfall in a run that set pages aside (`--on-bad-page skip`, whose records cannot be
//!   counted) is a warning: skipping them was the user's choice, and the manifest lists them.
//!   The count is of records the API returned over the whole run (a resumed run included),
//!   before an incremental run drops the boundary records the previous run delivered: an
//!   incremental API's total counts its filtered listing, which includes them.

use crate::config::{CountMismatchPolicy, SourceConfig};
use crate::state::checkpoint::ListingNotes;

/// How the fetch stage stopped.
#[derive(Debug)]
pub(super) struct FetchEnd {
    /// The listing ended (or was capped): false when stopped by a signal or a failure
    /// downstream.
    pub ended: bool,
    /// `Some(N)` when `--max-pages N` cut the listing with a next request still to make.
    pub capped: Option<u64>,
    /// The run's notes after its last page.
    pub notes: ListingNotes,
}

/// What [`judge`] decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Verdict {
    /// Warnings to record (the run still succeeds when `partial` is `None`).
    pub warnings: Vec<String>,
    /// Why the run is partial, as the error message the user sees.
    pub partial: Option<String>,
}

/// Judge a run whose listing ended (or was capped).
pub(super) fn judge(
    source: &SourceConfig,
    notes: &ListingNotes,
    capped: Option<u64>,
    set_aside: usize,
) -> Verdict {
    let checks = &source.checks;
    let mut verdict = Verdict::default();
    if let Some(cap) = capped {
        if checks.max_pages_complete {
            verdict.warnings.push(format!(
                "the listing was cut at --max-pages {cap} with pages left; --max-pages-complete took the {} records fetched as the complete run",
                notes.received
            ));
        } else {
            verdict.partial = Some(format!(
                "stopped at --max-pages {cap} with the listing unfinished: the {} records fetched are committed, the run's manifest says \"partial\", and no _SUCCESS was written. Pass --max-pages-complete if a capped sample is what you want; run again without --max-pages to finish the listing (it resumes this run), or pass --restart to discard it",
                notes.received
            ));
        }
        // A capped listing is short of any total by design: no count check.
        return verdict;
    }
    let expected = [
        checks.expect_rows.map(|n| (n, "--expect-rows".to_string())),
        notes.api_total.map(|n| {
            let path = source
                .pagination
                .stop
                .total_path
                .as_deref()
                .unwrap_or("total");
            (n, format!("the API's total ('{path}')"))
        }),
    ];
    for (want, what) in expected.into_iter().flatten() {
        let got = notes.received;
        if got == want {
            continue;
        }
        let (diff, word) = if got < want {
            (want - got, "fewer")
        } else {
            (got - want, "more")
        };
        if got < want && set_aside > 0 {
            verdict.warnings.push(format!(
                "the API returned {got} records, {diff} fewer than {what} of {want}; {set_aside} page(s) were set aside by --on-bad-page skip and their records are not counted (see the manifest's rejected)"
            ));
            continue;
        }
        match checks.on_count_mismatch {
            CountMismatchPolicy::Warn => verdict.warnings.push(format!(
                "the API returned {got} records, {diff} {word} than {what} of {want} (--on-count-mismatch warn: the run is complete anyway)"
            )),
            CountMismatchPolicy::Fail => {
                verdict.partial.get_or_insert(format!(
                    "the API returned {got} records, {diff} {word} than {what} of {want}: the records are committed, the run's manifest says \"partial\", and no _SUCCESS was written. Pass --restart to pull the listing again, or --on-count-mismatch warn to accept these records (a rerun with it completes this run without pulling again)"
                ));
            }
        }
    }
    verdict
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{ApiAuth, ListingChecks, RetryPolicy};
    use crate::source::paginate::{Pagination, StopRules};
    use std::time::Duration;

    fn source(checks: ListingChecks, total_path: Option<&str>) -> SourceConfig {
        SourceConfig {
            url: url::Url::parse("https://api.example.com/prod/orders").unwrap(),
            pagination: Pagination {
                stop: StopRules {
                    total_path: total_path.map(str::to_string),
                    ..Default::default()
                },
                ..Pagination::single()
            },
            records_path: String::new(),
            auth: ApiAuth::None,
            usage_plan_key: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            max_pages: None,
            checks,
            max_page_bytes: 1,
            on_bad_page: Default::default(),
            concurrency: 1,
            read_ahead: true,
            request: Default::default(),
        }
    }

    fn notes(received: u64, api_total: Option<u64>) -> ListingNotes {
        ListingNotes {
            received,
            api_total,
            ..Default::default()
        }
    }

    #[test]
    #[allow(clippy::type_complexity)] // a table of cases
    fn counts_and_caps() {
        let fail = ListingChecks::default();
        let warn = ListingChecks {
            on_count_mismatch: CountMismatchPolicy::Warn,
            ..Default::default()
        };
        let expect = |n| ListingChecks {
            expect_rows: Some(n),
            ..Default::default()
        };
        let complete = ListingChecks {
            max_pages_complete: true,
            ..Default::default()
        };
        // Pages set aside explain a shortfall, not an excess.
        let v = judge(
            &source(fail.clone(), Some("total")),
            &notes(400, Some(500)),
            None,
            2,
        );
        assert!(
            v.partial.is_none() && v.warnings[0].contains("2 page(s) were set aside"),
            "{v:?}"
        );
        let v = judge(
            &source(fail.clone(), Some("total")),
            &notes(600, Some(500)),
            None,
            2,
        );
        assert!(v.partial.is_some(), "{v:?}");
        // (checks, notes, capped) → (warning contains, partial contains)
        let cases: Vec<(
            ListingChecks,
            ListingNotes,
            Option<u64>,
            Option<&str>,
            Option<&str>,
        )> = vec![
            (fail.clone(), notes(500, None), None, None, None),
            (fail.clone(), notes(500, Some(500)), None, None, None),
            (
                fail.clone(),
                notes(400, Some(500)),
                None,
                None,
                Some("returned 400 records, 100 fewer than the API's total ('total') of 500"),
            ),
            (
                fail.clone(),
                notes(600, Some(500)),
                None,
                None,
                Some("100 more"),
            ),
            (
                warn.clone(),
                notes(400, Some(500)),
                None,
                Some("100 fewer"),
                None,
            ),
            (
                expect(450),
                notes(500, None),
                None,
                None,
                Some("50 more than --expect-rows of 450"),
            ),
            (expect(500), notes(500, Some(500)), None, None, None),
            (
                fail.clone(),
                notes(300, Some(1000)),
                Some(3),
                None,
                Some("--max-pages 3"),
            ),
            (
                complete,
                notes(300, Some(1000)),
                Some(3),
                Some("--max-pages-complete"),
                None,
            ),
        ];
        for (checks, notes, capped, warning, partial) in cases {
            let v = judge(&source(checks.clone(), Some("total")), &notes, capped, 0);
            let ctx = format!("{checks:?} {notes:?} {capped:?}: {v:?}");
            match warning {
                Some(w) => assert!(v.warnings.len() == 1 && v.warnings[0].contains(w), "{ctx}"),
                None => assert!(v.warnings.is_empty(), "{ctx}"),
            }
            match partial {
                Some(p) => assert!(v.partial.as_deref().unwrap_or("").contains(p), "{ctx}"),
                None => assert!(v.partial.is_none(), "{ctx}"),
            }
        }
    }
}
