//! No pagination: the endpoint returns everything in one response.

use super::{Blind, PageView, PaginateError, Pages, Paginator, Style, StyleSettings};
use crate::source::extract::JsonDoc;
use reqwest::header::HeaderMap;
use url::Url;

pub(super) const STYLE: SingleStyle = SingleStyle;

/// `--paginate none`.
pub(super) struct SingleStyle;

impl Style for SingleStyle {
    fn name(&self) -> &'static str {
        "none"
    }
    fn about(&self) -> &'static str {
        "One request; the endpoint returns everything"
    }
    fn pages(&self) -> Pages {
        Pages::Single
    }
    fn paginator(&self, _: &StyleSettings<'_>) -> Result<Box<dyn Paginator>, PaginateError> {
        Ok(Box::new(SinglePage))
    }
}

/// No pagination: one request.
#[derive(Debug)]
struct SinglePage;

impl Paginator for SinglePage {
    fn next_blind(&self, _url: &Url, _headers: &HeaderMap, _doc: Option<&JsonDoc<'_>>) -> Blind {
        Blind::End
    }
    fn first(&self, base: &Url) -> Url {
        base.clone()
    }
    fn next(&self, _page: &PageView<'_>) -> Result<Option<Url>, PaginateError> {
        Ok(None)
    }
}
