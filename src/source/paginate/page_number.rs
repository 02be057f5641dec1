//! Page-number pagination: `?page=1&per_page=500`, then `page=2`, … The listing ends on an
//! empty page, or by the shared `has_more` / `total` rules.

use super::{
    query_param, with_query_param, Blind, PageView, PaginateError, Pages, Paginator, Setting,
    Style, StyleSettings, PAGE_SIZE,
};
use crate::source::extract::JsonDoc;
use reqwest::header::HeaderMap;
use url::Url;

pub(super) const STYLE: PageNumberStyle = PageNumberStyle;

const PAGE_PARAM: Setting = Setting::text(
    "page_param",
    "page-param",
    "GATELAKE_PAGE_PARAM",
    "NAME",
    "page: the page-number query parameter. [default: page]",
)
.or("page");
const START_PAGE: Setting = Setting::text(
    "start_page",
    "start-page",
    "GATELAKE_START_PAGE",
    "N",
    "page: the first page's number. [default: 1]",
)
.count()
.or("1");
const PAGE_SIZE_PARAM: Setting = Setting::text(
    "page_size_param",
    "page-size-param",
    "GATELAKE_PAGE_SIZE_PARAM",
    "NAME",
    "page: the page-size query parameter, e.g. per_page (sent with --page-size)",
);

const FROM_PAGE: Setting = Setting::text(
    "from_page",
    "from-page",
    "GATELAKE_FROM_PAGE",
    "N",
    "page: the page to begin at, when only part of the listing is pulled (a range of a split listing, --ranges, sets it). [default: --start-page]",
)
.count();

/// What the style reads, in the order it is resolved and shown.
const SETTINGS: &[Setting] = &[
    PAGE_PARAM,
    START_PAGE,
    PAGE_SIZE_PARAM,
    PAGE_SIZE.only_with(PAGE_SIZE_PARAM.key),
    FROM_PAGE,
];

/// `--paginate page`.
pub(super) struct PageNumberStyle;

impl Style for PageNumberStyle {
    fn name(&self) -> &'static str {
        "page"
    }

    fn about(&self) -> &'static str {
        "?page=N (--page-param, --start-page, optional --page-size-param)"
    }

    /// The next page number is this one plus one.
    fn pages(&self) -> Pages {
        Pages::Predictable
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn paginator(&self, s: &StyleSettings<'_>) -> Result<Box<dyn Paginator>, PaginateError> {
        let size = match s.text(PAGE_SIZE_PARAM.key) {
            Some(param) => Some((param, s.positive(PAGE_SIZE.key)?)),
            None => None,
        };
        let paginator = PageNumberPaginator::new(
            s.text(PAGE_PARAM.key).unwrap_or_default(),
            s.count(START_PAGE.key)?.unwrap_or(1),
            size,
        );
        Ok(Box::new(match s.count(FROM_PAGE.key)? {
            Some(page) => paginator.beginning_at(page),
            None => paginator,
        }))
    }

    /// Page `page` (0-based) is number `start + page`; its size is the API's unless a
    /// page-size parameter asks for one.
    fn start_at(
        &self,
        s: &StyleSettings<'_>,
        page: u64,
        size: u64,
    ) -> Result<Option<Vec<(&'static str, String)>>, PaginateError> {
        let start = s.count(START_PAGE.key)?.unwrap_or(1);
        let mut changed = vec![(FROM_PAGE.key, start.saturating_add(page).to_string())];
        if s.text(PAGE_SIZE_PARAM.key).is_some() {
            changed.push((PAGE_SIZE.key, size.to_string()));
        }
        Ok(Some(changed))
    }
}

#[derive(Debug)]
pub struct PageNumberPaginator {
    page_param: String,
    /// The API's first page number: page sizes are worked out from it (`resize`).
    start: u64,
    /// The page the listing begins at, when only part of it is pulled; else `start`.
    begin: Option<u64>,
    size: Option<(String, u64)>,
}

impl PageNumberPaginator {
    pub fn new(page_param: String, start: u64, size: Option<(String, u64)>) -> Self {
        Self {
            page_param,
            start,
            begin: None,
            size,
        }
    }

    /// The same paginator, beginning its listing at page `page` (numbered as the API does).
    pub fn beginning_at(mut self, page: u64) -> Self {
        self.begin = Some(page);
        self
    }

    /// `url` with the page number after its own.
    fn following(&self, url: &Url) -> Url {
        let current = query_param(url, &self.page_param)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(self.start);
        with_query_param(
            url,
            &self.page_param,
            &current.saturating_add(1).to_string(),
        )
    }
}

impl Paginator for PageNumberPaginator {
    fn first(&self, base: &Url) -> Url {
        let begin = self.begin.unwrap_or(self.start);
        let u = with_query_param(base, &self.page_param, &begin.to_string());
        match &self.size {
            Some((param, size)) => with_query_param(&u, param, &size.to_string()),
            None => u,
        }
    }

    fn next_blind(&self, url: &Url, _headers: &HeaderMap, _doc: Option<&JsonDoc<'_>>) -> Blind {
        let current = query_param(url, &self.page_param)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(self.start);
        Blind::Next(with_query_param(
            url,
            &self.page_param,
            &(current + 1).to_string(),
        ))
    }

    fn configured_page_size(&self) -> Option<u64> {
        self.size.as_ref().map(|(_, n)| *n)
    }

    fn page_size(&self, url: &Url) -> Option<u64> {
        let (size_param, _) = self.size.as_ref()?;
        query_param(url, size_param)?.parse::<u64>().ok()
    }

    /// Page `p` of size `s` holds the records from `(p - start) * s`; at size `n` the same
    /// record starts page `start + (p - start) * s / n` when `n` divides that offset, so
    /// nothing is skipped or repeated. Otherwise `None`.
    fn resize(&self, url: &Url, size: u64) -> Option<Url> {
        let (size_param, _) = self.size.as_ref()?;
        let current = self.page_size(url)?;
        let page = query_param(url, &self.page_param)?.parse::<u64>().ok()?;
        let first = page.checked_sub(self.start)?.checked_mul(current)?;
        if size == 0 || first % size != 0 {
            return None;
        }
        let u = with_query_param(url, size_param, &size.to_string());
        Some(with_query_param(
            &u,
            &self.page_param,
            &(self.start + first / size).to_string(),
        ))
    }

    fn next(&self, page: &PageView<'_>) -> Result<Option<Url>, PaginateError> {
        Ok(Some(self.following(page.url)))
    }

    /// The next page number: how many records a page holds does not matter.
    fn predict(&self, url: &Url, _page_records: Option<u64>) -> Option<Url> {
        Some(self.following(url))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::next_of;
    use super::super::StopRules;
    use super::*;

    #[test]
    fn counts_pages_and_stops() {
        let p = PageNumberPaginator::new("page".into(), 1, Some(("per_page".into(), 50)));
        let first = p.first(&Url::parse("https://api.example.com/prod/orders").unwrap());
        assert_eq!(
            first.as_str(),
            "https://api.example.com/prod/orders?page=1&per_page=50"
        );
        let s = StopRules {
            has_more_path: Some("has_more".into()),
            ..Default::default()
        };
        let next = next_of(&p, &s, first.as_str(), r#"{"has_more":true}"#, &[], 50)
            .unwrap()
            .unwrap();
        assert_eq!(
            next,
            "https://api.example.com/prod/orders?per_page=50&page=2"
        );
        assert_eq!(
            next_of(&p, &s, &next, r#"{"has_more":false}"#, &[], 50).unwrap(),
            None
        );
    }

    #[test]
    fn predicts_what_next_returns() {
        let s = StopRules::default();
        for p in [
            PageNumberPaginator::new("page".into(), 1, Some(("per_page".into(), 50))),
            PageNumberPaginator::new("p".into(), 0, None),
        ] {
            let mut url = p.first(&Url::parse("https://api.example.com/prod/orders?q=a").unwrap());
            for _ in 0..3 {
                let predicted = p.predict(&url, None).unwrap();
                let real = next_of(&p, &s, url.as_str(), "{}", &[], 50)
                    .unwrap()
                    .unwrap();
                assert_eq!(predicted.as_str(), real);
                // A short page is still followed by the next number.
                assert_eq!(p.predict(&url, Some(3)).unwrap(), predicted);
                url = predicted;
            }
            assert!(url
                .as_str()
                .ends_with(&format!("={}", if p.start == 1 { 4 } else { 3 })));
        }
        // After a 504 halved the page size, predictions go on from the smaller pages.
        let p = PageNumberPaginator::new("page".into(), 1, Some(("per_page".into(), 100)));
        let shrunk = p
            .resize(&Url::parse("https://h/p?page=3&per_page=100").unwrap(), 50)
            .unwrap();
        assert_eq!(
            p.predict(&shrunk, None).unwrap().as_str(),
            "https://h/p?per_page=50&page=6"
        );
    }

    #[test]
    fn resizing_keeps_the_same_records() {
        let p = PageNumberPaginator::new("page".into(), 1, Some(("per_page".into(), 100)));
        let at = |u: &str, n| p.resize(&Url::parse(u).unwrap(), n).map(|u| u.to_string());
        // Page 3 of 100 = records 200..300 = page 5 of 50; and back.
        assert_eq!(
            at("https://h/p?page=3&per_page=100", 50).as_deref(),
            Some("https://h/p?per_page=50&page=5")
        );
        assert_eq!(
            at("https://h/p?page=5&per_page=50", 100).as_deref(),
            Some("https://h/p?per_page=100&page=3")
        );
        // Page 6 of 50 starts at record 250: not the start of a page of 100.
        assert_eq!(at("https://h/p?page=6&per_page=50", 100), None);
        // Odd sizes cannot be halved without shifting page boundaries.
        assert_eq!(at("https://h/p?page=3&per_page=75", 37), None);
        let zero_based = PageNumberPaginator::new("page".into(), 0, Some(("per_page".into(), 100)));
        let u = Url::parse("https://h/p?page=2&per_page=100").unwrap();
        assert_eq!(
            zero_based.resize(&u, 50).unwrap().as_str(),
            "https://h/p?per_page=50&page=4"
        );
        assert_eq!(
            PageNumberPaginator::new("page".into(), 1, None).resize(&u, 50),
            None
        );
    }

    #[test]
    fn begins_part_way_and_still_resizes_from_the_apis_first_page() {
        let p = PageNumberPaginator::new("page".into(), 1, Some(("per_page".into(), 100)))
            .beginning_at(5);
        let first = p.first(&Url::parse("https://h/p").unwrap());
        assert_eq!(first.as_str(), "https://h/p?page=5&per_page=100");
        // Page 5 of 100 holds records 400..500; in pages of 50 that is page 9.
        assert_eq!(
            p.resize(&first, 50).unwrap().as_str(),
            "https://h/p?per_page=50&page=9"
        );
    }
}
