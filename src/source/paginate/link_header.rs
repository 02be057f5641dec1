//! RFC 8288 `Link` header pagination: `Link: <https://…?page=2>; rel="next", <…>; rel="last"`.
//! Several links may share one header and several headers may be sent; `rel` may hold more
//! than one relation type. A `Link` header without a `next` link means the end; no `Link`
//! header at all is judged by the pointer rule (`pointer.rs`): the API may not page this way.

use super::pointer::header_names;
use super::{
    resolve_link, Blind, MissingPointer, PageView, PaginateError, Pages, Paginator, Style,
    StyleSettings,
};
use crate::source::extract::JsonDoc;
use reqwest::header::HeaderMap;
use url::Url;

pub(super) const STYLE: LinkHeaderStyle = LinkHeaderStyle;

/// `--paginate link-header`.
pub(super) struct LinkHeaderStyle;

impl Style for LinkHeaderStyle {
    fn name(&self) -> &'static str {
        "link-header"
    }

    fn about(&self) -> &'static str {
        "RFC 8288 `Link: <…>; rel=\"next\"` response header"
    }

    fn pages(&self) -> Pages {
        Pages::Sequential
    }

    fn paginator(&self, _: &StyleSettings<'_>) -> Result<Box<dyn Paginator>, PaginateError> {
        Ok(Box::new(LinkHeaderPaginator))
    }
}

#[derive(Debug)]
pub struct LinkHeaderPaginator;

impl Paginator for LinkHeaderPaginator {
    fn first(&self, base: &Url) -> Url {
        base.clone()
    }

    fn next_blind(&self, url: &Url, headers: &HeaderMap, _doc: Option<&JsonDoc<'_>>) -> Blind {
        match next_link(url, headers) {
            Ok(Some(next)) => Blind::Next(next),
            Ok(None) => Blind::End,
            Err(_) => Blind::Unknown,
        }
    }

    fn next(&self, page: &PageView<'_>) -> Result<Option<Url>, PaginateError> {
        next_link(page.url, page.headers)
    }

    fn pointer_at(&self) -> Option<super::PointerAt<'_>> {
        Some(super::PointerAt::Headers)
    }

    fn missing_pointer(
        &self,
        page: &PageView<'_>,
    ) -> Result<Option<MissingPointer>, PaginateError> {
        Ok(
            (!page.headers.contains_key(reqwest::header::LINK)).then(|| MissingPointer {
                what: "Link header".into(),
                found: header_names(page.headers),
                setting: "--paginate (this API may not page with Link headers)",
            }),
        )
    }
}

fn next_link(url: &Url, headers: &HeaderMap) -> Result<Option<Url>, PaginateError> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        if let Some(target) = find_rel(value, "next") {
            return resolve_link(url, target).map(Some);
        }
    }
    Ok(None)
}

/// The target of the first link in `header` whose `rel` includes `wanted`.
pub(crate) fn find_rel<'a>(header: &'a str, wanted: &str) -> Option<&'a str> {
    let mut rest = header;
    loop {
        let open = rest.find('<')?;
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        // Parameters run until the next link, which starts with ',' followed by '<'.
        let after = &rest[close + 1..];
        let params_end = next_link_start(after).unwrap_or(after.len());
        let params = &after[..params_end];
        if params.split(';').any(|p| rel_matches(p, wanted)) {
            return Some(target);
        }
        rest = &after[params_end..];
    }
}

fn next_link_start(s: &str) -> Option<usize> {
    let mut in_quotes = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes && s[i + 1..].trim_start().starts_with('<') => return Some(i),
            _ => {}
        }
    }
    None
}

fn rel_matches(param: &str, wanted: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else {
        return false;
    };
    name.trim().eq_ignore_ascii_case("rel")
        && value
            .trim()
            .trim_matches('"')
            .split_ascii_whitespace()
            .any(|r| r.eq_ignore_ascii_case(wanted))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::next_of;
    use super::super::StopRules;
    use super::*;

    #[test]
    fn parses_rel_next() {
        let cases = [
            (
                r#"<https://h/p?page=2>; rel="next""#,
                Some("https://h/p?page=2"),
            ),
            (
                r#"<https://h/p?page=1>; rel="prev", <https://h/p?page=3>; rel="next""#,
                Some("https://h/p?page=3"),
            ),
            (
                r#"<https://h/p?a=1,2>; rel="last", </p?page=9>; title="x, y"; rel="next last""#,
                Some("/p?page=9"),
            ),
            (
                r#"<https://h/p?page=5>; REL=next"#,
                Some("https://h/p?page=5"),
            ),
            (r#"<https://h/p?page=1>; rel="prev""#, None),
            ("", None),
            ("garbage", None),
        ];
        for (header, want) in cases {
            assert_eq!(find_rel(header, "next"), want, "{header}");
        }
    }

    #[test]
    fn follows_header_across_multiple_values() {
        let s = StopRules::default();
        let u = "https://api.example.com/prod/orders";
        let got = next_of(
            &LinkHeaderPaginator,
            &s,
            u,
            "[]",
            &[
                (
                    "link",
                    r#"<https://api.example.com/prod/orders?page=1>; rel="first""#,
                ),
                ("link", r#"</prod/orders?page=2>; rel="next""#),
            ],
            1,
        )
        .unwrap();
        assert_eq!(
            got.as_deref(),
            Some("https://api.example.com/prod/orders?page=2")
        );
        assert_eq!(
            next_of(&LinkHeaderPaginator, &s, u, "[]", &[], 1).unwrap(),
            None
        );
    }
}
