//! Pagination: given the page just fetched, what is the next request? One file per style:
//! its [`Style`] (name, help, settings, whether its pages are predictable, how it builds its
//! paginator) and its [`Paginator`]. Adding a style is adding a file and one line to the
//! registry below; the CLI's `--paginate`, its help, the style flags, the job file and
//! settings resolution all read the registry.
//!
//! The next request is always a full URL. That keeps the seam small, and makes the saved
//! position of a run (the checkpoint) one URL that can be replayed exactly.
//!
//! Two rules are enforced here for every style, so no style can forget them:
//! - the shared stop rules ([`StopRules`]): an empty page, `has_more` false, a total reached;
//! - the pointer rule ([`pointer`]): a next-page pointer that is absent from a full page is
//!   an error on page 1 and a recorded warning later, never a silent end of the listing;
//! - host pinning ([`same_origin`]): a next URL on another scheme, host or port is refused
//!   before any request is made, so no credential is ever sent to a host the user did not name.

pub mod pointer;
mod read_ahead;
mod style;

/// The registry: every style, one line each, in the order `--paginate` lists them. Each line
/// declares the style's file and registers the `STYLE` it defines; nothing else in the
/// program names a style.
macro_rules! registry {
    ($($module:ident),* $(,)?) => {
        $(mod $module;)*
        /// Every pagination style, in the order `--paginate` lists them.
        pub static STYLES: &[&dyn Style] = &[$(&$module::STYLE),*];
    };
}

registry! {
    single,
    cursor,
    next_link,
    link_header,
    offset,
    page_number,
}

pub use crate::config::{Pagination, StopRules};
pub use cursor::{CursorPaginator, CursorSource};
pub use link_header::LinkHeaderPaginator;
pub use next_link::NextLinkPaginator;
pub use offset::OffsetPaginator;
pub use page_number::PageNumberPaginator;
pub use pointer::MissingPointer;
pub use read_ahead::{guess, PointerAt};
pub use style::{Pages, Setting, SettingKind, Style, StyleSettings, PAGE_SIZE};

use super::extract::{ExtractError, JsonDoc};
pub use super::request::BodyField;
pub use crate::http::same_origin;
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
    /// This page's number in the run (1-based; a resumed run counts on).
    pub page: u64,
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
    /// A next-page pointer absent from page 1 (see [`pointer`]).
    #[error("{0}")]
    PointerMissing(String),
    #[error("{0}")]
    Body(#[from] ExtractError),
    /// A [`Pagination`] its style cannot use (a missing or invalid setting).
    #[error("{0}")]
    Settings(String),
}

/// The outcome of working out the request after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The next request; `None` when the listing ends with this page.
    pub next: Option<Url>,
    /// Something the run must record: the listing ended on a page that looked full.
    pub warning: Option<String>,
}

impl Step {
    fn to(next: Option<Url>) -> Self {
        Self {
            next,
            warning: None,
        }
    }
}

/// A pagination style.
pub trait Paginator: Send + Sync + std::fmt::Debug {
    /// The first request, derived from the configured URL (e.g. adding `offset=0&limit=N`).
    fn first(&self, base: &Url) -> Url;

    /// The request after `page`, or `None` when the style says the listing is done. The
    /// shared stop rules and host pinning are applied by [`next_request`], not here.
    fn next(&self, page: &PageView<'_>) -> Result<Option<Url>, PaginateError>;

    /// After [`Paginator::next`] said `None`: whether that is because the pointer is not in
    /// the page at all (rather than present and null or empty). Styles that do not read a
    /// pointer from the page (offset, page number) never miss one.
    fn missing_pointer(
        &self,
        _page: &PageView<'_>,
    ) -> Result<Option<MissingPointer>, PaginateError> {
        Ok(None)
    }

    /// The page size the style was configured with, when it has one to move: an API that
    /// times out on big pages (API Gateway's 504 after its 29-second integration limit) is
    /// asked for smaller ones (see `source::page_size`). `None` for styles without a size.
    fn configured_page_size(&self) -> Option<u64> {
        None
    }

    /// The page size `url` asks for.
    fn page_size(&self, _url: &Url) -> Option<u64> {
        None
    }

    /// The same part of the listing as `url`, asked for in pages of `size`: the same first
    /// record, so nothing is skipped or repeated. `None` when the style cannot say that at
    /// `size` (no page size, or a page number that is not on a boundary of both sizes).
    fn resize(&self, _url: &Url, _size: u64) -> Option<Url> {
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

    /// Where the style reads its next request from, when the page's pointer alone decides it
    /// (with the page's URL): the pull then starts that request as soon as the page is in,
    /// while the page is parsed ([`guess`]). `None` (the default) for styles that work their
    /// next request out from the URL and the records (offset, page number).
    fn pointer_at(&self) -> Option<PointerAt<'_>> {
        None
    }

    /// The query parameters this paginator's pointers travel in the request body instead
    /// (its `*_body_path` settings; see `source::request`). None by default.
    fn body_fields(&self) -> Vec<BodyField> {
        Vec::new()
    }

    /// The query parameters that carry this paginator's position (a cursor, an offset, a
    /// page number). A saved request keeps their values even where the name looks like a
    /// secret's (`page_token`, `next_token`): they are where the listing is, not a
    /// credential, and a masked one could not be restored on resume. None by default.
    fn position_params(&self) -> Vec<String> {
        Vec::new()
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

/// The style named `name`.
pub fn style(name: &str) -> Option<&'static dyn Style> {
    STYLES.iter().copied().find(|s| s.name() == name)
}

/// The paginator for `pagination`, built by its style from its settings. A style that is
/// not registered, or a setting the style does not read or cannot use, is an error.
pub fn paginator(pagination: &Pagination) -> Result<Box<dyn Paginator>, PaginateError> {
    let Some(style) = style(&pagination.style) else {
        let known: Vec<&str> = STYLES.iter().map(|s| s.name()).collect();
        return Err(PaginateError::Settings(format!(
            "unknown --paginate {}: use one of {}",
            pagination.style,
            known.join(", ")
        )));
    };
    let declared = style.settings();
    if let Some(key) = pagination
        .settings
        .keys()
        .find(|k| !declared.iter().any(|s| s.key == k.as_str()))
    {
        return Err(PaginateError::Settings(format!(
            "--paginate {} does not read --{}",
            style.name(),
            key.replace('_', "-")
        )));
    }
    style.paginator(&StyleSettings::new(&pagination.settings, declared))
}

/// The settings (only those that change) that begin `pagination`'s listing at its `page`-th
/// page (0-based) in pages of `size` records, as its style says; `None` when the style's
/// pages cannot be addressed. A range of a split listing (`partition`) is pulled this way.
pub fn start_at(
    pagination: &Pagination,
    page: u64,
    size: u64,
) -> Result<Option<std::collections::BTreeMap<String, String>>, PaginateError> {
    let Some(style) = style(&pagination.style) else {
        return Ok(None);
    };
    let settings = StyleSettings::new(&pagination.settings, style.settings());
    Ok(style.start_at(&settings, page, size)?.map(|changed| {
        changed
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }))
}

/// The next request after `page`: the shared stop rules first, then the style, then the
/// pointer rule, then host pinning against `origin` (the configured URL) and a no-progress
/// check.
pub fn next_request(
    paginator: &dyn Paginator,
    stop: &StopRules,
    origin: &Url,
    page: &PageView<'_>,
) -> Result<Step, PaginateError> {
    if page.records == 0 {
        return Ok(Step::to(None));
    }
    if let Some(path) = &stop.has_more_path {
        if page.doc.get_bool(path)? == Some(false) {
            return Ok(Step::to(None));
        }
    }
    if stop
        .max_records
        .is_some_and(|limit| page.records_so_far >= limit)
    {
        return Ok(Step::to(None));
    }
    if let Some(path) = &stop.total_path {
        if let Some(total) = page.doc.get_u64(path)? {
            if page.records_so_far >= total {
                return Ok(Step::to(None));
            }
        }
    }
    let Some(next) = paginator.next(page)? else {
        let Some(missing) = paginator.missing_pointer(page)? else {
            return Ok(Step::to(None));
        };
        return match pointer::judge(&missing, page, stop)? {
            pointer::Verdict::End => Ok(Step::to(None)),
            pointer::Verdict::EndWithWarning(w) => Ok(Step {
                next: None,
                warning: Some(w),
            }),
            pointer::Verdict::Refuse(why) => Err(PaginateError::PointerMissing(why)),
        };
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
    Ok(Step::to(Some(next)))
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
            page: 2,
        };
        let origin = Url::parse("https://api.example.com/prod/orders").unwrap();
        Ok(next_request(paginator, stop, &origin, &view)?
            .next
            .map(|u| u.to_string()))
    }

    /// [`next_request`] over a page numbered `page` in the run.
    #[allow(clippy::too_many_arguments)]
    fn step_of(
        paginator: &dyn Paginator,
        stop: &StopRules,
        url: &str,
        body: &str,
        headers: &[(&str, &str)],
        records: u64,
        page: u64,
    ) -> Result<Step, PaginateError> {
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
            records_so_far: records * page,
            page,
        };
        let origin = Url::parse("https://api.example.com/prod/orders").unwrap();
        next_request(paginator, stop, &origin, &view)
    }

    /// What the pointer rule makes of each case: `Ok(None)` a quiet end, `Ok(Some(w))` an end
    /// with a warning containing `w`, `Err(e)` a refusal containing `e`.
    #[test]
    #[allow(clippy::type_complexity)] // a table of cases
    fn an_absent_pointer_on_a_full_page_is_never_a_quiet_end() {
        let typo = CursorPaginator::new(CursorSource::Body("nxt".into()), "cursor".into());
        let header = CursorPaginator::new(CursorSource::Header("x-next".into()), "cursor".into());
        let link = NextLinkPaginator::new("next".into());
        let none = StopRules::default();
        let has_more = StopRules {
            has_more_path: Some("more".into()),
            ..Default::default()
        };
        let total = StopRules {
            total_path: Some("total".into()),
            ..Default::default()
        };
        let sized = "https://api.example.com/prod/orders?limit=2";
        let unsized_ = "https://api.example.com/prod/orders";
        let body = r#"{"items":[{},{}],"next_cursor":"abc","total":10,"more":true}"#;
        type Want = Result<Option<&'static str>, &'static str>;
        let cases: Vec<(
            &str,
            &dyn Paginator,
            &StopRules,
            &str,
            &str,
            &[(&str, &str)],
            u64,
            u64,
            Want,
        )> = vec![
            (
                "full first page",
                &typo,
                &none,
                sized,
                body,
                &[],
                2,
                1,
                Err("no body field 'nxt'"),
            ),
            (
                "the refusal lists the fields",
                &typo,
                &none,
                sized,
                body,
                &[],
                2,
                1,
                Err("the page's fields are: items, next_cursor, total, more"),
            ),
            (
                "short first page",
                &typo,
                &none,
                sized,
                body,
                &[],
                1,
                1,
                Ok(None),
            ),
            (
                "first page, size unknown",
                &typo,
                &none,
                unsized_,
                body,
                &[],
                2,
                1,
                Err("--paginate none"),
            ),
            (
                "has_more true",
                &typo,
                &has_more,
                unsized_,
                body,
                &[],
                2,
                1,
                Err("'more' is true"),
            ),
            (
                "total says more",
                &typo,
                &total,
                unsized_,
                body,
                &[],
                2,
                3,
                Ok(Some("'total' says 10 records, 6 so far")),
            ),
            (
                "full later page",
                &typo,
                &none,
                sized,
                body,
                &[],
                2,
                4,
                Ok(Some("may be incomplete")),
            ),
            (
                "later page, size unknown",
                &typo,
                &none,
                unsized_,
                body,
                &[],
                2,
                4,
                Ok(None),
            ),
            (
                "present and null",
                &typo,
                &none,
                sized,
                r#"{"nxt":null}"#,
                &[],
                2,
                1,
                Ok(None),
            ),
            (
                "present and empty",
                &typo,
                &none,
                sized,
                r#"{"nxt":""}"#,
                &[],
                2,
                1,
                Ok(None),
            ),
            (
                "next-link default path",
                &link,
                &none,
                sized,
                r#"{"data":[],"links":{}}"#,
                &[],
                2,
                1,
                Err("the page's fields are: data, links"),
            ),
            (
                "header cursor",
                &header,
                &none,
                sized,
                "[]",
                &[("x-next-cursor", "c"), ("content-type", "j")],
                2,
                1,
                Err("the response headers are: content-type, x-next-cursor"),
            ),
            (
                "no Link header at all",
                &LinkHeaderPaginator,
                &none,
                sized,
                "[]",
                &[],
                2,
                1,
                Err("no Link header"),
            ),
            (
                "a Link header without next",
                &LinkHeaderPaginator,
                &none,
                sized,
                "[]",
                &[("link", r#"</p?page=1>; rel="first""#)],
                2,
                1,
                Ok(None),
            ),
        ];
        for (name, p, stop, url, body, headers, records, page, want) in cases {
            let got = step_of(p, stop, url, body, headers, records, page);
            match (got, want) {
                (Ok(step), Ok(w)) => {
                    assert_eq!(step.next, None, "{name}");
                    match (step.warning, w) {
                        (None, None) => {}
                        (Some(got), Some(w)) => assert!(got.contains(w), "{name}: {got}"),
                        (got, w) => panic!("{name}: warning {got:?}, wanted {w:?}"),
                    }
                }
                (Err(e), Err(w)) => {
                    assert!(
                        matches!(e, PaginateError::PointerMissing(_)),
                        "{name}: {e:?}"
                    );
                    assert!(e.to_string().contains(w), "{name}: {e}");
                }
                (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
            }
        }
        // A present pointer is followed whatever the page size.
        let ok = step_of(&typo, &none, sized, r#"{"nxt":"c2"}"#, &[], 2, 1).unwrap();
        assert!(ok.next.unwrap().as_str().ends_with("cursor=c2"));
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
        // Every registered style, with its defaults, or else with one of the settings that
        // have none (a cursor needs to know where it is).
        let styles = STYLES.iter().map(|style| {
            let plain = Pagination::new(style.name());
            std::iter::once(plain.clone())
                .chain(
                    style
                        .settings()
                        .iter()
                        .filter(|s| s.default.is_none())
                        .map(|s| plain.clone().with(s.key, "next")),
                )
                .find(|p| paginator(p).is_ok())
                .unwrap()
        });
        for p in styles {
            let style = style(p.name()).unwrap();
            let paginator = paginator(&p).unwrap();
            let first = paginator.first(&base);
            // `predictable` (what --concurrency is checked against) says what `predict` does.
            assert_eq!(
                paginator.predict(&first, None).is_some(),
                style.pages().predictable(),
                "{}",
                p.name()
            );
            assert_eq!(
                style.pages().predictable(),
                matches!(p.name(), "offset" | "page"),
                "{}",
                p.name()
            );
        }
    }

    /// Every style's settings are spelt the same way as a key, a flag and a variable, and a
    /// setting two styles share (the page size) is one setting.
    #[test]
    fn settings_are_named_alike_and_shared_settings_agree() {
        let mut seen: Vec<&Setting> = Vec::new();
        for style in STYLES {
            for s in style.settings() {
                assert_eq!(s.flag, s.key.replace('_', "-"), "{}", s.key);
                assert_eq!(s.env, format!("GATELAKE_{}", s.key.to_ascii_uppercase()));
                if let Some(other) = s.only_with {
                    assert!(
                        style.settings().iter().any(|o| o.key == other),
                        "{}: {other}",
                        s.key
                    );
                }
                match seen.iter().find(|o| o.key == s.key) {
                    Some(o) => assert_eq!(
                        (o.help, o.kind, o.default, o.value_name),
                        (s.help, s.kind, s.default, s.value_name),
                        "{}",
                        s.key
                    ),
                    None => seen.push(s),
                }
            }
        }
        let names: Vec<&str> = STYLES.iter().map(|s| s.name()).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names, unique);
    }

    /// A description its style cannot use is refused with the setting's flag, as the CLI
    /// shows it.
    #[test]
    fn styles_check_their_settings() {
        for (p, want) in [
            (
                Pagination::new("cursor"),
                "--paginate cursor needs where the cursor is",
            ),
            (
                Pagination::new("cursor")
                    .with("cursor_path", "a")
                    .with("cursor_header", "b"),
                "not both",
            ),
            (
                Pagination::new("offset").with("page_size", 0),
                "--page-size must be at least 1",
            ),
            (
                Pagination::new("page")
                    .with("page_size_param", "per_page")
                    .with("page_size", "x"),
                "--page-size: 'x' is not a whole number",
            ),
            (
                Pagination::new("offset").with("cursor_path", "a"),
                "--paginate offset does not read --cursor-path",
            ),
            (
                Pagination::new("no-such-style"),
                "unknown --paginate no-such-style",
            ),
        ] {
            let err = paginator(&p).unwrap_err().to_string();
            assert!(err.contains(want), "{p:?}: {err}");
        }
        // Defaults fill what is not given.
        let base = Url::parse("https://h/p").unwrap();
        let first = paginator(&Pagination::new("offset")).unwrap().first(&base);
        assert_eq!(first.as_str(), "https://h/p?offset=0&limit=100");
        let page = Pagination::new("page").with("page_size_param", "per_page");
        let first = paginator(&page).unwrap().first(&base);
        assert_eq!(first.as_str(), "https://h/p?page=1&per_page=100");
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

    #[test]
    fn a_range_ends_after_its_records() {
        let p = OffsetPaginator::new("offset".into(), "limit".into(), 100, 0);
        let stop = StopRules {
            max_records: Some(200),
            ..Default::default()
        };
        let url = "https://api.example.com/prod/orders?offset=100&limit=100";
        let page = |n| step_of(&p, &stop, url, "{}", &[], 100, n).unwrap().next;
        assert!(page(1).is_some(), "100 of 200 records: go on");
        assert_eq!(page(2), None, "200 of 200 records: the range is done");
    }

    #[test]
    fn styles_with_addressable_pages_say_how_to_begin_part_way() {
        let offset = Pagination::new("offset").with("page_size", 50);
        let begun = start_at(&offset, 3, 40).unwrap().unwrap();
        assert_eq!(begun.get("start_offset").map(String::as_str), Some("120"));
        assert_eq!(begun.get("page_size").map(String::as_str), Some("40"));
        let page = Pagination::new("page").with("start_page", 0);
        let begun = start_at(&page, 3, 40).unwrap().unwrap();
        assert_eq!(begun.get("from_page").map(String::as_str), Some("3"));
        let cursor = Pagination::new("cursor").with("cursor_path", "next");
        assert_eq!(start_at(&cursor, 3, 40).unwrap(), None);
        assert_eq!(start_at(&Pagination::single(), 0, 1).unwrap(), None);
    }
}
