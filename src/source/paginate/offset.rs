//! Offset/limit pagination: `?offset=0&limit=500`, then `offset=500`, … The next offset
//! advances by the records actually received, not by the limit asked for, so an API that
//! caps the page size below `limit` loses nothing. The listing ends on an empty page (or by
//! the shared `total` rule).

use super::{query_param, with_query_param, Blind, PageView, PaginateError, Paginator};
use crate::source::extract::JsonDoc;
use reqwest::header::HeaderMap;
use url::Url;

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
}

impl Paginator for OffsetPaginator {
    fn name(&self) -> &'static str {
        "offset"
    }

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

    fn shrink(&self, url: &Url) -> Option<Url> {
        let limit = query_param(url, &self.limit_param)?.parse::<u64>().ok()?;
        (limit > 1).then(|| with_query_param(url, &self.limit_param, &(limit / 2).to_string()))
    }

    fn next(&self, page: &PageView<'_>) -> Result<Option<Url>, PaginateError> {
        let current = query_param(page.url, &self.offset_param)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(self.start);
        let next = current + page.records;
        Ok(Some(with_query_param(
            page.url,
            &self.offset_param,
            &next.to_string(),
        )))
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
    fn shrinks_by_halving_the_limit_at_the_same_offset() {
        let p = OffsetPaginator::new("offset".into(), "limit".into(), 100, 0);
        let u = Url::parse("https://h/p?offset=300&limit=100").unwrap();
        let small = p.shrink(&u).unwrap();
        assert_eq!(small.as_str(), "https://h/p?offset=300&limit=50");
        let one = Url::parse("https://h/p?offset=300&limit=1").unwrap();
        assert_eq!(p.shrink(&one), None);
    }
}
