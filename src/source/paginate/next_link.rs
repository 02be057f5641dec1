//! Next-link pagination: the body carries the next page's URL, absolute or relative to the
//! current page (`{"links":{"next":"/prod/orders?after=42"}}`). Null or empty means the end;
//! absent is judged by the pointer rule (`pointer.rs`).

use super::pointer::fields_near;
use super::{
    resolve_link, Blind, MissingPointer, PageView, PaginateError, Pages, Paginator, Setting, Style,
    StyleSettings,
};
use crate::source::extract::JsonDoc;
use reqwest::header::HeaderMap;
use url::Url;

pub(super) const STYLE: NextLinkStyle = NextLinkStyle;

const NEXT_PATH: Setting = Setting::text(
    "next_path",
    "next-path",
    "GATELAKE_NEXT_PATH",
    "PATH",
    "next-link: body path of the next page's URL, e.g. links.next. [default: next]",
)
.or("next");

/// What the style reads, in the order it is resolved and shown.
const SETTINGS: &[Setting] = &[NEXT_PATH];

/// `--paginate next-link`.
pub(super) struct NextLinkStyle;

impl Style for NextLinkStyle {
    fn name(&self) -> &'static str {
        "next-link"
    }

    fn about(&self) -> &'static str {
        "The next page's URL in the body (--next-path), absolute or relative"
    }

    fn pages(&self) -> Pages {
        Pages::Sequential
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn paginator(&self, s: &StyleSettings<'_>) -> Result<Box<dyn Paginator>, PaginateError> {
        let path = s.text(NEXT_PATH.key).unwrap_or_default();
        Ok(Box::new(NextLinkPaginator::new(path)))
    }
}

#[derive(Debug)]
pub struct NextLinkPaginator {
    path: String,
}

impl NextLinkPaginator {
    pub fn new(path: String) -> Self {
        Self { path }
    }
}

impl Paginator for NextLinkPaginator {
    fn first(&self, base: &Url) -> Url {
        base.clone()
    }

    fn next_blind(&self, url: &Url, _headers: &HeaderMap, doc: Option<&JsonDoc<'_>>) -> Blind {
        match doc.map(|d| d.get_text(&self.path)) {
            Some(Ok(Some(link))) => match resolve_link(url, &link) {
                Ok(next) => Blind::Next(next),
                Err(_) => Blind::Unknown,
            },
            Some(Ok(None)) => Blind::End,
            _ => Blind::Unknown,
        }
    }

    fn next(&self, page: &PageView<'_>) -> Result<Option<Url>, PaginateError> {
        match page.doc.get_text(&self.path)? {
            Some(link) => resolve_link(page.url, &link).map(Some),
            None => Ok(None),
        }
    }

    fn pointer_at(&self) -> Option<super::PointerAt<'_>> {
        Some(super::PointerAt::Body(&self.path))
    }

    fn missing_pointer(
        &self,
        page: &PageView<'_>,
    ) -> Result<Option<MissingPointer>, PaginateError> {
        Ok(page.doc.get(&self.path)?.is_none().then(|| MissingPointer {
            what: format!("body field '{}'", self.path),
            found: fields_near(page.doc, &self.path),
            setting: "--next-path (the body path of the next page's URL; default: next)",
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::next_of;
    use super::super::StopRules;
    use super::*;

    #[test]
    fn absolute_and_relative_links() {
        let p = NextLinkPaginator::new("links.next".into());
        let s = StopRules::default();
        let u = "https://api.example.com/prod/orders?after=1";
        let cases = [
            (
                r#"{"links":{"next":"https://api.example.com/prod/orders?after=2"}}"#,
                Some("https://api.example.com/prod/orders?after=2"),
            ),
            (
                r#"{"links":{"next":"/prod/orders?after=3"}}"#,
                Some("https://api.example.com/prod/orders?after=3"),
            ),
            (
                r#"{"links":{"next":"orders?after=4"}}"#,
                Some("https://api.example.com/prod/orders?after=4"),
            ),
            (r#"{"links":{"next":null}}"#, None),
            (r#"{"links":{}}"#, None),
        ];
        for (body, want) in cases {
            assert_eq!(
                next_of(&p, &s, u, body, &[], 1).unwrap().as_deref(),
                want,
                "{body}"
            );
        }
    }
}
