//! The listing: where the records are in a page, how many pages at most, and how the run
//! checks that it got the whole listing.

use crate::cli::args::PullArgs;
use crate::cli::job_spec::JobSpec;
use crate::cli::resolver::{usage, Resolver, UsageError};
use gatelake::config::ListingChecks;

/// What the listing resolved to.
pub(super) struct Listing {
    pub records_path: String,
    pub max_pages: Option<u64>,
    pub checks: ListingChecks,
}

/// `--records`, `--max-pages`, and the completeness checks.
pub(super) fn resolve_listing(
    r: &mut Resolver<'_>,
    args: &PullArgs,
    job: &JobSpec,
) -> Result<Listing, UsageError> {
    let records_path = r
        .pick("records", args.records.clone(), job.records.clone(), None)
        .unwrap_or_default();
    let max_pages = r.pick("max_pages", args.max_pages, job.max_pages, None);
    if max_pages == Some(0) {
        return usage("--max-pages must be at least 1");
    }
    let checks = resolve_listing_checks(r, args, job)?;
    Ok(Listing {
        records_path,
        max_pages,
        checks,
    })
}

/// `--max-pages-complete`, `--expect-rows`, `--on-count-mismatch`: how the run checks that it
/// got the whole listing.
fn resolve_listing_checks(
    r: &mut Resolver<'_>,
    args: &PullArgs,
    job: &JobSpec,
) -> Result<ListingChecks, UsageError> {
    use gatelake::config::CountMismatchPolicy;
    let max_pages_complete = r
        .switch(
            "max_pages_complete",
            args.max_pages_complete,
            args.no_max_pages_complete,
            job.max_pages_complete,
            Some(false),
        )
        .unwrap_or(false);
    let expect_rows = r.pick("expect_rows", args.expect_rows, job.expect_rows, None);
    let on_count_mismatch = match r
        .pick(
            "on_count_mismatch",
            args.on_count_mismatch.clone(),
            job.on_count_mismatch.clone(),
            Some("fail".into()),
        )
        .as_deref()
    {
        Some("fail") | None => CountMismatchPolicy::Fail,
        Some("warn") => CountMismatchPolicy::Warn,
        Some(other) => {
            return usage(format!(
                "--on-count-mismatch {other}: use fail (the run is partial, exit 4) or warn (recorded in the manifest, exit 0)"
            ))
        }
    };
    Ok(ListingChecks {
        expect_rows,
        on_count_mismatch,
        max_pages_complete,
    })
}
