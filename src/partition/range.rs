//! Ranges: the API's reported total (`--total-path`, read from the first page) split into
//! contiguous ranges of whole pages, for styles whose pages can be addressed (offset, page
//! number). Each range starts at its first page (the style says how: `paginate::start_at`)
//! and its pull stops after its records, expecting exactly that many.
//!
//! Ranges are cut on page boundaries, in pages of the size the API really serves (the
//! first page's count when the API caps below the size asked for), so no page straddles two
//! ranges. The total is read once, when the run is planned: records added later are left to
//! the next run, as for any snapshot.

use super::{Covers, Partition, PartitionError, PartitionRequest, RangeSpec, MAX_PARTITIONS};
use crate::config::SourceConfig;
use crate::report::SilentReporter;
use crate::secret::redact_url;
use crate::source::client::ApiClient;
use crate::source::extract::JsonDoc;
use crate::source::paginate;

/// What can be known before asking the API: a count in bounds, a total to read, a style
/// whose listing can start part-way.
pub(super) fn check(spec: &RangeSpec, source: &SourceConfig) -> Result<(), PartitionError> {
    if spec.count == 0 {
        return Err(PartitionError::Invalid(
            "--ranges must be at least 1".to_string(),
        ));
    }
    if spec.count > MAX_PARTITIONS as u64 {
        return Err(PartitionError::Invalid(format!(
            "--ranges {} is more than {MAX_PARTITIONS} partitions: ask for fewer ranges",
            spec.count
        )));
    }
    if source.pagination.stop.total_path.is_none() {
        return Err(PartitionError::Invalid(
            "--ranges splits the API's total, and no --total-path says where the first page gives it: pass --total-path PATH (e.g. total or meta.count)".to_string(),
        ));
    }
    if paginate::start_at(&source.pagination, 0, 1)?.is_none() {
        return Err(PartitionError::Invalid(format!(
            "--ranges needs a listing that can start part-way (--paginate offset or page); a --paginate {} listing cannot: split it by --window-start/--window-end/--window or by --keys instead",
            source.pagination.name()
        )));
    }
    Ok(())
}

/// Ask the API for its total (the first page, with the pull's own client) and cut it.
pub(super) async fn plan(
    spec: &RangeSpec,
    source: &SourceConfig,
    client: &ApiClient,
) -> Result<Vec<Partition>, PartitionError> {
    check(spec, source)?;
    let total_path = source
        .pagination
        .stop
        .total_path
        .as_deref()
        .unwrap_or("total");
    let paginator = paginate::paginator(&source.pagination)?;
    let first = paginator.first(&source.url);
    let page = client
        .fetch(&first, 1, &SilentReporter)
        .await
        .map_err(PartitionError::Probe)?;
    let shown = redact_url(&page.url);
    let text = std::str::from_utf8(&page.body).map_err(|_| {
        PartitionError::Invalid(format!(
            "--ranges: the first page of {shown} is not UTF-8 text, so its total cannot be read"
        ))
    })?;
    let body = |source| PartitionError::ProbeBody {
        url: shown.clone(),
        source,
    };
    let doc = JsonDoc::parse_with_records(text, &source.records_path).map_err(body)?;
    let Some(total) = doc.get_u64(total_path).map_err(body)? else {
        return Err(PartitionError::Invalid(format!(
            "--ranges: the first page of {shown} has no whole number at --total-path '{total_path}' (top-level keys: {}); point --total-path at the record count",
            doc.top_level_keys().join(", ")
        )));
    };
    let on_page = doc.records(&source.records_path).map_err(body)?.len() as u64;
    let size = page_size(paginator.configured_page_size(), on_page, total)?;
    cut(spec, source, total, size)
}

/// The size of the pages the ranges are made of.
fn page_size(asked: Option<u64>, on_page: u64, total: u64) -> Result<u64, PartitionError> {
    if total == 0 {
        return Err(PartitionError::Invalid(
            "--ranges: the API reports a total of 0 records, so there is nothing to split; run the job without --ranges".to_string(),
        ));
    }
    match asked {
        // The API serves fewer than asked (a cap): its pages are what ranges are made of.
        Some(asked) if on_page > 0 && on_page < asked && on_page < total => Ok(on_page),
        Some(asked) => Ok(asked),
        None if on_page > 0 => Ok(on_page),
        None => Err(PartitionError::Invalid(format!(
            "--ranges: the first page holds no records while the API reports a total of {total}, so the page size is unknown; pass --page-size (with --page-size-param for --paginate page)"
        ))),
    }
}

/// `total` records in pages of `size`, cut into at most `spec.count` ranges of whole pages.
pub(super) fn cut(
    spec: &RangeSpec,
    source: &SourceConfig,
    total: u64,
    size: u64,
) -> Result<Vec<Partition>, PartitionError> {
    let pages = total.div_ceil(size.max(1));
    let n = spec.count.min(pages);
    let mut list = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (p0, p1) = (i * pages / n, (i + 1) * pages / n);
        let first = p0 * size;
        let last = (p1 * size).min(total) - 1;
        let settings = paginate::start_at(&source.pagination, p0, size)?.ok_or_else(|| {
            PartitionError::Invalid(format!(
                "--ranges: a --paginate {} listing cannot start part-way",
                source.pagination.name()
            ))
        })?;
        list.push(Partition {
            id: format!("r-{i:06}"),
            covers: Covers::Range { first, last },
            request: PartitionRequest {
                settings,
                records: Some(last - first + 1),
                ..PartitionRequest::default()
            },
        });
    }
    Ok(list)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::source;
    use super::*;
    use crate::config::Pagination;

    fn offset_job() -> SourceConfig {
        let mut job = source(
            "https://h/prod/offset",
            Pagination::new("offset").with("page_size", 100),
        );
        job.pagination.stop.total_path = Some("total".into());
        job
    }

    fn bounds(list: &[Partition]) -> Vec<(u64, u64)> {
        list.iter()
            .map(|p| match p.covers {
                Covers::Range { first, last } => (first, last),
                _ => panic!("not a range: {p:?}"),
            })
            .collect()
    }

    #[test]
    fn ranges_are_whole_pages_that_tile_the_total() {
        let job = offset_job();
        let list = cut(&RangeSpec { count: 3 }, &job, 1_050, 100).unwrap();
        assert_eq!(bounds(&list), [(0, 299), (300, 699), (700, 1_049)]);
        let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["r-000000", "r-000001", "r-000002"]);
        assert_eq!(
            list[1]
                .request
                .settings
                .get("start_offset")
                .map(String::as_str),
            Some("300")
        );
        // More ranges than pages: one range per page.
        let list = cut(&RangeSpec { count: 10 }, &job, 250, 100).unwrap();
        assert_eq!(bounds(&list), [(0, 99), (100, 199), (200, 249)]);
        // Every record in exactly one range, for awkward shapes too.
        for (total, size, n) in [(1, 100, 4), (999, 7, 13), (100_000, 100, 64)] {
            let list = cut(&RangeSpec { count: n }, &job, total, size).unwrap();
            let mut next = 0;
            for (first, last) in bounds(&list) {
                assert_eq!(first, next);
                assert_eq!(first % size, 0, "a range starts on a page boundary");
                next = last + 1;
            }
            assert_eq!(next, total);
        }
    }

    #[test]
    fn page_numbered_ranges_count_from_the_apis_first_page() {
        let mut job = source(
            "https://h/prod/page",
            Pagination::new("page").with("start_page", 1),
        );
        job.pagination.stop.total_path = Some("total".into());
        let list = cut(&RangeSpec { count: 2 }, &job, 400, 50).unwrap();
        assert_eq!(
            list[1]
                .request
                .settings
                .get("from_page")
                .map(String::as_str),
            Some("5")
        );
        // No page-size parameter: the API's own size is not asked for.
        assert!(!list[1].request.settings.contains_key("page_size"));
        let s = super::super::apply(&job, &list[1]).unwrap();
        let first = paginate::paginator(&s.pagination).unwrap().first(&s.url);
        assert_eq!(first.as_str(), "https://h/prod/page?page=5");
    }

    #[test]
    fn what_ranges_need_is_asked_for_by_name() {
        let mut no_total = offset_job();
        no_total.pagination.stop.total_path = None;
        let mut cursor = source(
            "https://h/prod/cursor",
            Pagination::new("cursor")
                .with("cursor_path", "next")
                .with("cursor_param", "c"),
        );
        cursor.pagination.stop.total_path = Some("total".into());
        let cases = [
            (RangeSpec { count: 0 }, offset_job(), "at least 1"),
            (
                RangeSpec { count: 200_000 },
                offset_job(),
                "more than 100000",
            ),
            (RangeSpec { count: 4 }, no_total, "--total-path"),
            (RangeSpec { count: 4 }, cursor, "cannot"),
        ];
        for (spec, job, want) in cases {
            let err = check(&spec, &job).unwrap_err().to_string();
            assert!(err.contains(want), "{spec:?}: {err}");
        }
    }

    #[test]
    fn the_page_size_is_what_the_api_serves() {
        // Asked 100, the API caps at 40: ranges are made of pages of 40.
        assert_eq!(page_size(Some(100), 40, 1_000).unwrap(), 40);
        // A first page that is the whole listing: the size asked for.
        assert_eq!(page_size(Some(100), 40, 40).unwrap(), 100);
        assert_eq!(page_size(Some(100), 100, 1_000).unwrap(), 100);
        // No size asked for (page numbers without a size parameter): the first page's.
        assert_eq!(page_size(None, 25, 1_000).unwrap(), 25);
        assert!(page_size(None, 0, 1_000)
            .unwrap_err()
            .to_string()
            .contains("--page-size"));
        assert!(page_size(Some(100), 0, 0)
            .unwrap_err()
            .to_string()
            .contains("total of 0"));
    }
}
