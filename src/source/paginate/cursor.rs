//! Cursor pagination: the page carries an opaque token (in the body, or a response header)
//! that is sent back as a query parameter to get the next page. Null or empty means the end;
//! absent is judged by the pointer rule (`pointer.rs`).

use super::pointer::{fields_near, header_names};
use super::{
    with_query_param, Blind, MissingPointer, PageView, PaginateError, Pages, Paginator, Setting,
    Style, StyleSettings,
};
use crate::source::extract::JsonDoc;
use reqwest::header::HeaderMap;

fn header_cursor(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}
use url::Url;

/// Where the cursor is found in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorSource {
    /// A body path, e.g. `next_cursor` or `meta.cursor.next`.
    Body(String),
    /// A response header, e.g. `x-next-cursor`.
    Header(String),
}

pub(super) const STYLE: CursorStyle = CursorStyle;

const CURSOR_PATH: Setting = Setting::text(
    "cursor_path",
    "cursor-path",
    "GATELAKE_CURSOR_PATH",
    "PATH",
    "cursor: body path of the next cursor, e.g. next_cursor or meta.next",
);
const CURSOR_HEADER: Setting = Setting::text(
    "cursor_header",
    "cursor-header",
    "GATELAKE_CURSOR_HEADER",
    "NAME",
    "cursor: response header carrying the next cursor, e.g. x-next-cursor",
);
const CURSOR_PARAM: Setting = Setting::text(
    "cursor_param",
    "cursor-param",
    "GATELAKE_CURSOR_PARAM",
    "NAME",
    "cursor: query parameter the cursor is sent in. [default: cursor]",
)
.or("cursor");

const CURSOR_BODY_PATH: Setting = Setting::text(
    "cursor_body_path",
    "cursor-body-path",
    "GATELAKE_CURSOR_BODY_PATH",
    "PATH",
    "cursor: with --method POST, send the cursor at this path of the request body (e.g. page_token or paging.cursor) instead of the query",
);

/// What the style reads, in the order it is resolved and shown.
const SETTINGS: &[Setting] = &[CURSOR_PATH, CURSOR_HEADER, CURSOR_PARAM, CURSOR_BODY_PATH];

/// `--paginate cursor`.
pub(super) struct CursorStyle;

impl Style for CursorStyle {
    fn name(&self) -> &'static str {
        "cursor"
    }

    fn about(&self) -> &'static str {
        "A cursor from the body (--cursor-path) or a header (--cursor-header), sent back as --cursor-param"
    }

    fn pages(&self) -> Pages {
        Pages::Sequential
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn paginator(&self, s: &StyleSettings<'_>) -> Result<Box<dyn Paginator>, PaginateError> {
        let source = match (s.text(CURSOR_PATH.key), s.text(CURSOR_HEADER.key)) {
            (Some(p), None) => CursorSource::Body(p),
            (None, Some(h)) => CursorSource::Header(h),
            (Some(_), Some(_)) => {
                return Err(PaginateError::Settings(
                    "--paginate cursor: give --cursor-path or --cursor-header, not both".into(),
                ))
            }
            (None, None) => return Err(PaginateError::Settings(
                "--paginate cursor needs where the cursor is: --cursor-path PATH (in the body, e.g. next_cursor) or --cursor-header NAME".into(),
            )),
        };
        let param = s.text(CURSOR_PARAM.key).unwrap_or_default();
        let mut paginator = CursorPaginator::new(source, param);
        paginator.body_path = s.text(CURSOR_BODY_PATH.key);
        Ok(Box::new(paginator))
    }
}

#[derive(Debug)]
pub struct CursorPaginator {
    source: CursorSource,
    param: String,
    /// Where the cursor goes in a POST body (`--cursor-body-path`); `None`: the query.
    body_path: Option<String>,
}

impl CursorPaginator {
    pub fn new(source: CursorSource, param: String) -> Self {
        Self {
            source,
            param,
            body_path: None,
        }
    }
}

impl Paginator for CursorPaginator {
    fn first(&self, base: &Url) -> Url {
        base.clone()
    }

    fn next_blind(&self, url: &Url, headers: &HeaderMap, doc: Option<&JsonDoc<'_>>) -> Blind {
        let cursor = match &self.source {
            CursorSource::Body(path) => match doc {
                Some(doc) => match doc.get_text(path) {
                    Ok(c) => c,
                    Err(_) => return Blind::Unknown,
                },
                None => return Blind::Unknown,
            },
            CursorSource::Header(name) => header_cursor(headers, name),
        };
        match cursor {
            Some(c) => Blind::Next(with_query_param(url, &self.param, &c)),
            None => Blind::End,
        }
    }

    fn next(&self, page: &PageView<'_>) -> Result<Option<Url>, PaginateError> {
        let cursor = match &self.source {
            CursorSource::Body(path) => page.doc.get_text(path)?,
            CursorSource::Header(name) => header_cursor(page.headers, name),
        };
        Ok(cursor.map(|c| with_query_param(page.url, &self.param, &c)))
    }

    fn pointer_at(&self) -> Option<super::PointerAt<'_>> {
        Some(match &self.source {
            CursorSource::Body(path) => super::PointerAt::Body(path),
            CursorSource::Header(_) => super::PointerAt::Headers,
        })
    }

    fn position_params(&self) -> Vec<String> {
        vec![self.param.clone()]
    }

    fn body_fields(&self) -> Vec<super::BodyField> {
        self.body_path
            .iter()
            .map(|path| super::BodyField {
                param: self.param.clone(),
                path: path.clone(),
                number: false,
                flag: "--cursor-body-path",
            })
            .collect()
    }

    fn missing_pointer(
        &self,
        page: &PageView<'_>,
    ) -> Result<Option<MissingPointer>, PaginateError> {
        Ok(match &self.source {
            CursorSource::Body(path) => page.doc.get(path)?.is_none().then(|| MissingPointer {
                what: format!("body field '{path}'"),
                found: fields_near(page.doc, path),
                setting: "--cursor-path (the body path of the next cursor)",
            }),
            CursorSource::Header(name) => {
                (!page.headers.contains_key(name.as_str())).then(|| MissingPointer {
                    what: format!("'{name}' header"),
                    found: header_names(page.headers),
                    setting: "--cursor-header (the response header carrying the next cursor)",
                })
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::next_of;
    use super::super::StopRules;
    use super::*;

    #[test]
    fn body_cursor() {
        let p = CursorPaginator::new(CursorSource::Body("next_cursor".into()), "cursor".into());
        let s = StopRules::default();
        let u = "https://api.example.com/prod/orders?limit=2";
        assert_eq!(
            next_of(&p, &s, u, r#"{"items":[],"next_cursor":"eyJ+/="}"#, &[], 2)
                .unwrap()
                .as_deref(),
            Some("https://api.example.com/prod/orders?limit=2&cursor=eyJ%2B%2F%3D")
        );
        // The cursor replaces the previous one rather than piling up.
        let u2 = "https://api.example.com/prod/orders?limit=2&cursor=abc";
        assert_eq!(
            next_of(&p, &s, u2, r#"{"next_cursor":"def"}"#, &[], 2)
                .unwrap()
                .as_deref(),
            Some("https://api.example.com/prod/orders?limit=2&cursor=def")
        );
        for end in [r#"{"next_cursor":null}"#, r#"{"next_cursor":""}"#, r#"{}"#] {
            assert_eq!(next_of(&p, &s, u, end, &[], 2).unwrap(), None, "{end}");
        }
        // Numeric cursors are sent as written.
        assert!(next_of(&p, &s, u, r#"{"next_cursor":1234}"#, &[], 2)
            .unwrap()
            .unwrap()
            .ends_with("cursor=1234"));
    }

    #[test]
    fn header_cursor() {
        let p = CursorPaginator::new(CursorSource::Header("x-next-cursor".into()), "after".into());
        let s = StopRules::default();
        let u = "https://api.example.com/prod/orders";
        assert_eq!(
            next_of(&p, &s, u, "[]", &[("x-next-cursor", "k 1")], 3)
                .unwrap()
                .as_deref(),
            Some("https://api.example.com/prod/orders?after=k+1")
        );
        assert_eq!(next_of(&p, &s, u, "[]", &[], 3).unwrap(), None);
    }
}
