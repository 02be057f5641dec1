//! Page-number pagination: `?page=1&per_page=500`, then `page=2`, … The listing ends on an
//! empty page, or by the shared `has_more` / `total` rules.

use super::{query_param, with_query_param, PageView, PaginateError, Paginator};
use url::Url;

#[derive(Debug)]
pub struct PageNumberPaginator {
    page_param: String,
    start: u64,
    size: Option<(String, u64)>,
}

impl PageNumberPaginator {
    pub fn new(page_param: String, start: u64, size: Option<(String, u64)>) -> Self {
        Self {
            page_param,
            start,
            size,
        }
    }
}

impl Paginator for PageNumberPaginator {
    fn name(&self) -> &'static str {
        "page"
    }

    fn first(&self, base: &Url) -> Url {
        let u = with_query_param(base, &self.page_param, &self.start.to_string());
        match &self.size {
            Some((param, size)) => with_query_param(&u, param, &size.to_string()),
            None => u,
        }
    }

    fn next(&self, page: &PageView<'_>) -> Result<Option<Url>, PaginateError> {
        let current = query_param(page.url, &self.page_param)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(self.start);
        Ok(Some(with_query_param(
            page.url,
            &self.page_param,
            &(current + 1).to_string(),
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
}
