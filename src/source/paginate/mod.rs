//! Pagination: given the page just fetched, what is the next request? One file per style
//! behind the [`Paginator`] trait; adding a style is adding a file.
//!
//! The next request is always a full URL. That keeps the seam small, and makes the saved
//! position of a run (the checkpoint) one URL that can be replayed exactly.
//!
//! Two rules are enforced here for every style, so no style can forget them:
//! - the shared stop rules ([`StopRules`]): an empty page, `has_more` false, a total reached;
//! - host pinning ([`same_origin`]): a next URL on another scheme, host or port is refused
//!   before any request is made, so no credential is ever sent to a host the user did not name.

mod cursor;
mod link_header;
mod next_link;
mod offset;
mod page_number;

pub use cursor::{CursorPaginator, CursorSource};
pub use link_header::LinkHeaderPaginator;
pub use next_link::NextLinkPaginator;
pub use offset::OffsetPaginator;
pub use page_number::PageNumberPaginator;

use super::extract::{ExtractError, JsonDoc};
use crate::secret::redact_url;
use reqwest::header::HeaderMap;
use url::Url;

/// What a paginator sees of the page just fetched.
pub struct PageView<'a> {
    /// The URL this page was fetched from.
    pub url: &'a Url,
    pub headers: &'a HeaderMap,
    pub doc: &'a JsonDoc<'a>,
    /// Records on this page.
    pub records: u64,
    /// Records on all pages so far, this one included.
    pub records_so_far: u64,
}

/// Why the next request could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum PaginateError {
    #[error("the next-page link {next} leaves {origin}: refusing to follow it (no request was sent, no credential exposed). If the API really pages across hosts, point --url at that host instead.")]
    ForeignHost { next: String, origin: String },
    #[error("the next-page link {value:?} is not a valid URL: {reason}")]
    BadLink { value: String, reason: String },
    #[error("the next-page URL {0} is the same as this page's: the API would be asked for the same page forever")]
    NoProgress(String),
    #[error("{0}")]
    Body(#[from] ExtractError),
}

/// A pagination style.
pub trait Paginator: Send + Sync + std::fmt::Debug {
    /// The style's name, as given to `--paginate`.
    fn name(&self) -> &'static str;

    /// The first request, derived from the configured URL (e.g. adding `offset=0&limit=N`).
    fn first(&self, base: &Url) -> Url;

    /// The request after `page`, or `None` when the style says the listing is done. The
    /// shared stop rules and host pinning are applied by [`next_request`], not here.
    fn next(&self, page: &PageView<'_>) -> Result<Option<Url>, PaginateError>;

    /// The same part of the listing asked for in smaller pages (half the page size), for an
    /// API that times out on big pages (API Gateway's 504 after its 29-second integration
    /// limit). `None` when the style has no page size to shrink, or it is already 1.
    fn shrink(&self, _url: &Url) -> Option<Url> {
        None
    }

    /// The request after a page whose records could not be read (`--on-bad-page skip`),
    /// from what is still known: the URL, the headers, and the body if it is at least valid
    /// JSON. [`Blind::Unknown`] when the next request is inside an unreadable body.
    fn next_blind(&self, url: &Url, headers: &HeaderMap, doc: Option<&JsonDoc<'_>>) -> Blind;

    /// The request after `url` *if `url`'s page is full*, worked out before that page has
    /// arrived, so that several pages can be in flight at once (`--concurrency`).
    /// `page_records` is how many records a full page holds, as last seen (an API may serve
    /// fewer than it was asked for); `None` before any page arrived: the size asked for.
    ///
    /// It must equal what [`Paginator::next`] returns for a page of `url` holding
    /// `page_records` records, because a prediction is only used when it equals the real
    /// next request; any other guess costs a wasted request, never a record. `None` (the
    /// default) for styles whose next request is only known from the page itself (cursors,
    /// links).
    fn predict(&self, _url: &Url, _page_records: Option<u64>) -> Option<Url> {
        None
    }
}

/// The next request after a bad page, as far as it can be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blind {
    Next(Url),
    /// The listing ends with this page.
    End,
    /// The next request is in the part of the page that could not be read.
    Unknown,
}

/// [`Paginator::next_blind`], then host pinning and the no-progress check, as for a good page.
pub fn next_after_bad_page(
    paginator: &dyn Paginator,
    origin: &Url,
    url: &Url,
    headers: &HeaderMap,
    doc: Option<&JsonDoc<'_>>,
) -> Result<Blind, PaginateError> {
    match paginator.next_blind(url, headers, doc) {
        Blind::Next(next) => {
            if !same_origin(origin, &next) {
                return Err(PaginateError::ForeignHost {
                    next: redact_url(&next),
                    origin: origin_of(origin),
                });
            }
            if &next == url {
                return Err(PaginateError::NoProgress(redact_url(&next)));
            }
            Ok(Blind::Next(next))
        }
        other => Ok(other),
    }
}

/// Stop rules every style shares, from flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopRules {
    /// Body path of a boolean: stop when it is false (`has_more`, `meta.has_next`).
    pub has_more_path: Option<String>,
    /// Body path of the total record count: stop once that many records were fetched.
    pub total_path: Option<String>,
}

/// The configured pagination, as resolved from flags or the job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaginationConfig {
    /// The endpoint returns everything in one response.
    Single,
    Cursor {
        source: CursorSource,
        /// Query parameter the cursor is sent back in.
        param: String,
    },
    NextLink {
        /// Body path of the next page's URL (absolute, or relative to the current page).
        path: String,
    },
    LinkHeader,
    Offset {
        offset_param: String,
        limit_param: String,
        limit: u64,
        start: u64,
    },
    PageNumber {
        page_param: String,
        start: u64,
        /// Page-size parameter and value, when the API takes one.
        size: Option<(String, u64)>,
    },
}

/// Pagination plus the shared stop rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pagination {
    pub style: PaginationConfig,
    pub stop: StopRules,
}

impl Pagination {
    pub fn single() -> Self {
        Self {
            style: PaginationConfig::Single,
            stop: StopRules::default(),
        }
    }

    /// The style's `--paginate` name.
    pub fn name(&self) -> &'static str {
        match &self.style {
            PaginationConfig::Single => "none",
            PaginationConfig::Cursor { .. } => "cursor",
            PaginationConfig::NextLink { .. } => "next-link",
            PaginationConfig::LinkHeader => "link-header",
            PaginationConfig::Offset { .. } => "offset",
            PaginationConfig::PageNumber { .. } => "page",
        }
    }

    /// Whether the next requests can be worked out before the pages arrive (offset and page
    /// number), so that `--concurrency` can keep several in flight. Cursor and link styles
    /// learn the next request from each page: they are sequential by nature.
    pub fn predictable(&self) -> bool {
        matches!(
            self.style,
            PaginationConfig::Offset { .. } | PaginationConfig::PageNumber { .. }
        )
    }

    /// Build the paginator for this configuration.
    pub fn paginator(&self) -> Box<dyn Paginator> {
        match &self.style {
            PaginationConfig::Single => Box::new(SinglePage),
            PaginationConfig::Cursor { source, param } => {
                Box::new(CursorPaginator::new(source.clone(), param.clone()))
            }
            PaginationConfig::NextLink { path } => Box::new(NextLinkPaginator::new(path.clone())),
            PaginationConfig::LinkHeader => Box::new(LinkHeaderPaginator),
            PaginationConfig::Offset {
                offset_param,
                limit_param,
                limit,
                start,
            } => Box::new(OffsetPaginator::new(
                offset_param.clone(),
                limit_param.clone(),
                *limit,
                *start,
            )),
            PaginationConfig::PageNumber {
                page_param,
                start,
                size,
            } => Box::new(PageNumberPaginator::new(
                page_param.clone(),
                *start,
                size.clone(),
            )),
        }
    }
}

/// No pagination: one request.
#[derive(Debug)]
struct SinglePage;

impl Paginator for SinglePage {
    fn name(&self) -> &'static str {
        "none"
    }
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

/// The next request after `page`: the shared stop rules first, then the style, then host
/// pinning against `origin` (the configured URL) and a no-progress check.
pub fn next_request(
    paginator: &dyn Paginator,
    stop: &StopRules,
    origin: &Url,
    page: &PageView<'_>,
) -> Result<Option<Url>, PaginateError> {
    if page.records == 0 {
        return Ok(None);
    }
    if let Some(path) = &stop.has_more_path {
        if page.doc.get_bool(path)? == Some(false) {
            return Ok(None);
        }
    }
    if let Some(path) = &stop.total_path {
        if let Some(total) = page.doc.get_u64(path)? {
            if page.records_so_far >= total {
                return Ok(None);
            }
        }
    }
    let Some(next) = paginator.next(page)? else {
        return Ok(None);
    };
    if !same_origin(origin, &next) {
        return Err(PaginateError::ForeignHost {
            next: redact_url(&next),
            origin: origin_of(origin),
        });
    }
    if &next == page.url {
        return Err(PaginateError::NoProgress(redact_url(&next)));
    }
    Ok(Some(next))
}

/// Same scheme, host and port (default ports made explicit).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

fn origin_of(u: &Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
        (Some(h), None) => format!("{}://{h}", u.scheme()),
        _ => u.scheme().to_string(),
    }
}

/// `url` with query parameter `name` set to `value` (replacing any existing value). The
/// value is percent-encoded here, exactly once.
pub fn with_query_param(url: &Url, name: &str, value: &str) -> Url {
    let mut out = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = out.query_pairs_mut();
        q.clear();
        q.extend_pairs(kept);
        q.append_pair(name, value);
    }
    out
}

/// The value of query parameter `name` in `url`, decoded.
pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Resolve a link from a body or header against the page it came from.
pub fn resolve_link(current: &Url, link: &str) -> Result<Url, PaginateError> {
    current
        .join(link.trim())
        .map_err(|e| PaginateError::BadLink {
            value: crate::secret::redact_url_str(link),
            reason: e.to_string(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// Run `paginator` over a page with `body` and `headers` fetched from `url`.
    pub(crate) fn next_of(
        paginator: &dyn Paginator,
        stop: &StopRules,
        url: &str,
        body: &str,
        headers: &[(&str, &str)],
        records: u64,
    ) -> Result<Option<String>, PaginateError> {
        let url = Url::parse(url).unwrap();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let doc = JsonDoc::parse(body).unwrap();
        let view = PageView {
            url: &url,
            headers: &map,
            doc: &doc,
            records,
            records_so_far: records,
        };
        let origin = Url::parse("https://api.example.com/prod/orders").unwrap();
        Ok(next_request(paginator, stop, &origin, &view)?.map(|u| u.to_string()))
    }

    #[test]
    fn query_params_are_encoded_once_and_replaced() {
        let u = Url::parse("https://h/p?cursor=old&x=1").unwrap();
        let n = with_query_param(&u, "cursor", "a+b/c=d e%");
        assert_eq!(n.as_str(), "https://h/p?x=1&cursor=a%2Bb%2Fc%3Dd+e%25");
        assert_eq!(query_param(&n, "cursor").as_deref(), Some("a+b/c=d e%"));
        // Setting it again does not double-encode.
        let again = with_query_param(&n, "cursor", &query_param(&n, "cursor").unwrap());
        assert_eq!(again, n);
    }

    #[test]
    fn origins() {
        let a = Url::parse("https://api.example.com/prod").unwrap();
        for (b, same) in [
            ("https://API.example.com:443/other?x=1", true),
            ("http://api.example.com/prod", false),
            ("https://api.example.com:8443/prod", false),
            ("https://evil.example.com/prod", false),
            ("https://api.example.com.evil.io/prod", false),
        ] {
            assert_eq!(same_origin(&a, &Url::parse(b).unwrap()), same, "{b}");
        }
    }

    #[test]
    fn shared_stop_rules() {
        let p = NextLinkPaginator::new("next".into());
        let body = r#"{"next":"/prod/orders?p=2","has_more":false,"total":10}"#;
        let none = StopRules::default();
        let url = "https://api.example.com/prod/orders";
        assert!(next_of(&p, &none, url, body, &[], 5).unwrap().is_some());
        assert!(
            next_of(&p, &none, url, body, &[], 0).unwrap().is_none(),
            "empty page stops"
        );
        let has_more = StopRules {
            has_more_path: Some("has_more".into()),
            ..Default::default()
        };
        assert!(next_of(&p, &has_more, url, body, &[], 5).unwrap().is_none());
        let total = StopRules {
            total_path: Some("total".into()),
            ..Default::default()
        };
        assert!(next_of(&p, &total, url, body, &[], 5).unwrap().is_some());
        assert!(next_of(&p, &total, url, body, &[], 10).unwrap().is_none());
    }

    #[test]
    fn the_page_after_a_bad_one() {
        let url =
            Url::parse("https://api.example.com/prod/orders?offset=200&limit=100&page=4").unwrap();
        let origin = Url::parse("https://api.example.com/prod/orders").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "link",
            r#"</prod/orders?page=5>; rel="next""#.parse().unwrap(),
        );
        headers.insert("x-next-cursor", "c5".parse().unwrap());
        let body =
            r#"{"items": "not an array", "next_cursor": "c9", "next": "/prod/orders?after=9"}"#;
        let doc = JsonDoc::parse(body).unwrap();
        let next = |p: &dyn Paginator, doc: Option<&JsonDoc<'_>>| match next_after_bad_page(
            p, &origin, &url, &headers, doc,
        )
        .unwrap()
        {
            Blind::Next(u) => Some(u.to_string()),
            Blind::End => Some("end".into()),
            Blind::Unknown => None,
        };
        let offset = OffsetPaginator::new("offset".into(), "limit".into(), 100, 0);
        assert!(
            next(&offset, None).unwrap().contains("offset=300"),
            "advances by the page size asked for"
        );
        let page = PageNumberPaginator::new("page".into(), 1, None);
        assert!(next(&page, None).unwrap().ends_with("page=5"));
        assert!(next(&LinkHeaderPaginator, None)
            .unwrap()
            .ends_with("/prod/orders?page=5"));
        let header_cursor = CursorPaginator::new(
            CursorSource::Header("x-next-cursor".into()),
            "cursor".into(),
        );
        assert!(next(&header_cursor, None).unwrap().ends_with("cursor=c5"));
        let body_cursor =
            CursorPaginator::new(CursorSource::Body("next_cursor".into()), "cursor".into());
        assert!(
            next(&body_cursor, Some(&doc))
                .unwrap()
                .ends_with("cursor=c9"),
            "valid JSON: the cursor is readable"
        );
        assert_eq!(
            next(&body_cursor, None),
            None,
            "broken body: the cursor is lost"
        );
        let link = NextLinkPaginator::new("next".into());
        assert!(next(&link, Some(&doc)).unwrap().ends_with("after=9"));
        assert_eq!(next(&link, None), None);
    }

    #[test]
    fn only_offset_and_page_number_are_predictable() {
        let base = Url::parse("https://api.example.com/prod/orders").unwrap();
        let styles = [
            PaginationConfig::Single,
            PaginationConfig::Cursor {
                source: CursorSource::Body("next".into()),
                param: "cursor".into(),
            },
            PaginationConfig::NextLink {
                path: "next".into(),
            },
            PaginationConfig::LinkHeader,
            PaginationConfig::Offset {
                offset_param: "offset".into(),
                limit_param: "limit".into(),
                limit: 100,
                start: 0,
            },
            PaginationConfig::PageNumber {
                page_param: "page".into(),
                start: 1,
                size: None,
            },
        ];
        for style in styles {
            let p = Pagination {
                style,
                stop: StopRules::default(),
            };
            let paginator = p.paginator();
            let first = paginator.first(&base);
            // `predictable` (what --concurrency is checked against) says what `predict` does.
            assert_eq!(
                paginator.predict(&first, None).is_some(),
                p.predictable(),
                "{}",
                p.name()
            );
            assert_eq!(
                p.predictable(),
                matches!(p.name(), "offset" | "page"),
                "{}",
                p.name()
            );
        }
    }

    #[test]
    fn foreign_and_stuck_links_are_refused() {
        let p = NextLinkPaginator::new("next".into());
        let none = StopRules::default();
        let url = "https://api.example.com/prod/orders";
        let err = next_of(
            &p,
            &none,
            url,
            r#"{"next":"https://127.0.0.2/steal?sig=x"}"#,
            &[],
            1,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, PaginateError::ForeignHost { .. }));
        assert!(
            msg.contains("leaves https://api.example.com") && msg.contains("sig=***"),
            "{msg}"
        );
        let err = next_of(&p, &none, url, r#"{"next":"/prod/orders"}"#, &[], 1).unwrap_err();
        assert!(matches!(err, PaginateError::NoProgress(_)));
    }
}
