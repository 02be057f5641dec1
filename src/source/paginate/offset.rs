//! Offset/limit pagination: `?offset=0&limit=500`, then `offset=500`, … The next offset
//! advances by the records actually received, not by the limit asked for, so an API that
//! caps the page size below `limit` loses nothing. The listing ends on an empty page (or by
//! the shared `total` rule).

use super::{
    query_param, with_query_param, Blind, PageView, PaginateError, Pages, Paginator, Setting,
    Style, StyleSettings, PAGE_SIZE,
};
use crate::source::extract::JsonDoc;
use reqwest::header::HeaderMap;
use url::Url;

pub(super) const STYLE: OffsetStyle = OffsetStyle;

const OFFSET_PARAM: Setting = Setting::text(
    "offset_param",
    "offset-param",
    "GATELAKE_OFFSET_PARAM",
    "NAME",
    "offset: the offset query parameter. [default: offset]",
)
.or("offset");
const LIMIT_PARAM: Setting = Setting::text(
    "limit_param",
    "limit-param",
    "GATELAKE_LIMIT_PARAM",
    "NAME",
    "offset: the limit query parameter. [default: limit]",
)
.or("limit");

const START_OFFSET: Setting = Setting::text(
    "start_offset",
    "start-offset",
    "GATELAKE_START_OFFSET",
    "N",
    "offset: the first request's offset (a range of a split listing, --ranges, sets it). [default: 0]",
)
.count()
.or("0");

/// What the style reads, in the order it is resolved and shown.
const SETTINGS: &[Setting] = &[OFFSET_PARAM, LIMIT_PARAM, PAGE_SIZE, START_OFFSET];

/// `--paginate offset`.
pub(super) struct OffsetStyle;

impl Style for OffsetStyle {
    fn name(&self) -> &'static str {
        "offset"
    }

    fn about(&self) -> &'static str {
        "?offset=N&limit=M (--offset-param, --limit-param, --page-size)"
    }

    /// The next offset is this one plus a full page.
    fn pages(&self) -> Pages {
        Pages::Predictable
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn paginator(&self, s: &StyleSettings<'_>) -> Result<Box<dyn Paginator>, PaginateError> {
        Ok(Box::new(OffsetPaginator::new(
            s.text(OFFSET_PARAM.key).unwrap_or_default(),
            s.text(LIMIT_PARAM.key).unwrap_or_default(),
            s.positive(PAGE_SIZE.key)?,
            s.count(START_OFFSET.key)?.unwrap_or(0),
        )))
    }

    /// Offsets are absolute: page `page` of `size` records begins at `start + page * size`.
    fn start_at(
        &self,
        s: &StyleSettings<'_>,
        page: u64,
        size: u64,
    ) -> Result<Option<Vec<(&'static str, String)>>, PaginateError> {
        let start = s.count(START_OFFSET.key)?.unwrap_or(0);
        let offset = page
            .checked_mul(size)
            .and_then(|o| o.checked_add(start))
            .ok_or_else(|| PaginateError::Settings(format!("page {page} of {size} records is past any offset")))?;
        Ok(Some(vec![
            (START_OFFSET.key, offset.to_string()),
            (PAGE_SIZE.key, size.to_string()),
        ]))
    }
}

#[derive(Debug)]
pub struct OffsetPaginator {
    offset_param: String,
    limit_param: String,
    limit: u64,
    start: u64,
}

impl OffsetPaginator {
    pub fn new(offset_param: String, limit_param: String, limit: u64, start: u64) -> Self {
        Self {
            offset_param,
            limit_param,
            limit,
            start,
        }
    }

    /// `url` with its offset moved on by `records`.
    fn advance(&self, url: &Url, records: u64) -> Url {
        let current = query_param(url, &self.offset_param)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(self.start);
        with_query_param(
            url,
            &self.offset_param,
            &current.saturating_add(records).to_string(),
        )
    }
}

impl Paginator for OffsetPaginator {
    fn first(&self, base: &Url) -> Url {
        let u = with_query_param(base, &self.offset_param, &self.start.to_string());
        with_query_param(&u, &self.limit_param, &self.limit.to_string())
    }

    /// A bad page's records cannot be counted: advance by the page size asked for.
    fn next_blind(&self, url: &Url, _headers: &HeaderMap, _doc: Option<&JsonDoc<'_>>) -> Blind {
        let offset = query_param(url, &self.offset_param).and_then(|v| v.parse::<u64>().ok());
        let limit = query_param(url, &self.limit_param).and_then(|v| v.parse::<u64>().ok());
        match (offset, limit) {
            (Some(o), Some(l)) => Blind::Next(with_query_param(
                url,
                &self.offset_param,
                &(o + l).to_string(),
            )),
            _ => Blind::Unknown,
        }
    }

    fn configured_page_size(&self) -> Option<u64> {
        Some(self.limit)
    }

    fn page_size(&self, url: &Url) -> Option<u64> {
        query_param(url, &self.limit_param)?.parse::<u64>().ok()
    }

    /// Any size: the offset names the first record whatever the limit.
    fn resize(&self, url: &Url, size: u64) -> Option<Url> {
        self.page_size(url)?;
        (size > 0).then(|| with_query_param(url, &self.limit_param, &size.to_string()))
    }

    fn next(&self, page: &PageView<'_>) -> Result<Option<Url>, PaginateError> {
        Ok(Some(self.advance(page.url, page.records)))
    }

    /// The offset after a full page: the records last seen per page, or else the limit.
    fn predict(&self, url: &Url, page_records: Option<u64>) -> Option<Url> {
        let step = match page_records {
            Some(n) => n,
            None => query_param(url, &self.limit_param)?.parse::<u64>().ok()?,
        };
        (step > 0).then(|| self.advance(url, step))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::next_of;
    use super::super::StopRules;
    use super::*;

    #[test]
    fn advances_by_records_received() {
        let p = OffsetPaginator::new("offset".into(), "limit".into(), 100, 0);
        let first = p.first(&Url::parse("https://api.example.com/prod/orders?x=1").unwrap());
        assert_eq!(
            first.as_str(),
            "https://api.example.com/prod/orders?x=1&offset=0&limit=100"
        );
        let s = StopRules::default();
        let next = next_of(&p, &s, first.as_str(), "{}", &[], 80)
            .unwrap()
            .unwrap();
        assert_eq!(
            next,
            "https://api.example.com/prod/orders?x=1&limit=100&offset=80"
        );
        assert_eq!(next_of(&p, &s, &next, "{}", &[], 0).unwrap(), None);
    }

    #[test]
    fn predicts_what_next_returns_for_a_full_page() {
        let p = OffsetPaginator::new("offset".into(), "limit".into(), 100, 0);
        let s = StopRules::default();
        let mut url = p.first(&Url::parse("https://api.example.com/prod/orders?x=1").unwrap());
        // Predicted from the limit asked for, and then again from each predicted URL: the
        // chain must be exactly the URLs a sequential walk over full pages asks for.
        for want_offset in [100, 200, 300] {
            let predicted = p.predict(&url, None).unwrap();
            let real = next_of(&p, &s, url.as_str(), "{}", &[], 100)
                .unwrap()
                .unwrap();
            assert_eq!(predicted.as_str(), real);
            assert_eq!(
                query_param(&predicted, "offset").as_deref(),
                Some(want_offset.to_string().as_str())
            );
            url = predicted;
        }
        // An API that serves 40 records when asked for 100: predicted from what it serves.
        let capped = p.predict(&url, Some(40)).unwrap();
        let real = next_of(&p, &s, url.as_str(), "{}", &[], 40)
            .unwrap()
            .unwrap();
        assert_eq!(capped.as_str(), real);
        assert!(real.ends_with("offset=340"), "{real}");
        // A short page is not what was predicted.
        let short = next_of(&p, &s, url.as_str(), "{}", &[], 7)
            .unwrap()
            .unwrap();
        assert_ne!(p.predict(&url, None).unwrap().as_str(), short);
        // Nothing to step by: no prediction.
        assert_eq!(p.predict(&url, Some(0)), None);
        let no_limit = Url::parse("https://h/p?offset=5").unwrap();
        assert_eq!(p.predict(&no_limit, None), None);
        assert!(p
            .predict(&no_limit, Some(10))
            .unwrap()
            .as_str()
            .ends_with("offset=15"));
    }

    #[test]
    fn resizes_the_limit_at_the_same_offset() {
        let p = OffsetPaginator::new("offset".into(), "limit".into(), 100, 0);
        let u = Url::parse("https://h/p?offset=300&limit=100").unwrap();
        assert_eq!(p.page_size(&u), Some(100));
        let small = p.resize(&u, 50).unwrap();
        assert_eq!(small.as_str(), "https://h/p?offset=300&limit=50");
        assert_eq!(p.resize(&u, 0), None);
        assert_eq!(
            p.resize(&Url::parse("https://h/p?offset=3").unwrap(), 50),
            None
        );
    }

    #[test]
    fn begins_at_its_start_offset() {
        let p = super::super::paginator(
            &crate::config::Pagination::new("offset")
                .with("start_offset", 300)
                .with("page_size", 50),
        )
        .unwrap();
        let first = p.first(&Url::parse("https://h/p").unwrap());
        assert_eq!(first.as_str(), "https://h/p?offset=300&limit=50");
        // Shrinking keeps the same first record: offsets are absolute.
        assert_eq!(
            p.resize(&first, 25).unwrap().as_str(),
            "https://h/p?offset=300&limit=25"
        );
    }
}
