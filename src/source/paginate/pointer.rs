//! The pointer rule: what an *absent* next-page pointer means. Styles that read the next
//! request from the page (a body cursor or link, a cursor header, a `Link` header) can only
//! say "no next page" by leaving the pointer out or setting it to null/empty. Null or empty is
//! the API saying "the end". Absent is ambiguous: it is how some APIs end a listing, and it is
//! also exactly what a mistyped `--cursor-path` looks like — a run that stops after page 1
//! and reports success. So absence is judged by whether the page was full:
//!
//! - a short page (fewer records than asked for, `has_more` false, the total reached): the end;
//! - a full page (as many records as asked for, `has_more` true, fewer than the total so far),
//!   or page 1 when nothing tells whether it is full: on page 1 an error naming what the page
//!   does have; on a later page the listing ends with a warning (the run records it);
//! - a later page whose fullness is unknown: the end (the pointer was there before, and an
//!   API that drops it on its last page looks just like this).
//!
//! Nothing here reads secrets: header *names* are listed, never their values.

use super::{PageView, StopRules};
use crate::source::extract::{ExtractError, JsonDoc};
use reqwest::header::HeaderMap;
use url::Url;

/// A pointer that is not in the page at all (as opposed to present and null or empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPointer {
    /// What was looked for, e.g. "body field 'nxt'" or "a Link header".
    pub what: String,
    /// What the page has instead, e.g. "the page's fields are: items, next_cursor".
    pub found: String,
    /// The setting that names the pointer, e.g. "--cursor-path".
    pub setting: &'static str,
}

/// Whether a page held as many records as the API would serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fullness {
    /// Full, and why we know (for messages).
    Full(String),
    /// Short: the listing may well end here.
    Short,
    /// Nothing tells.
    Unknown,
}

/// Query parameters that usually carry the page size, compared with `_`, `-` and `$`
/// removed and case ignored (`page_size`, `pageSize`, `$top`, `max-results`).
const SIZE_PARAMS: [&str; 8] = [
    "limit",
    "pagesize",
    "perpage",
    "maxresults",
    "maxitems",
    "top",
    "size",
    "count",
];

/// The page size a request asked for, when its query names one in a usual way.
pub fn asked_page_size(url: &Url) -> Option<(String, u64)> {
    url.query_pairs().find_map(|(k, v)| {
        let norm: String = k
            .chars()
            .filter(|c| !matches!(c, '_' | '-' | '$'))
            .flat_map(char::to_lowercase)
            .collect();
        if SIZE_PARAMS.contains(&norm.as_str()) {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(|n| (k.into_owned(), n))
        } else {
            None
        }
    })
}

/// How full `page` was, from the shared stop rules first (the API's own word), then the page
/// size its request asked for.
pub fn fullness(page: &PageView<'_>, stop: &StopRules) -> Result<Fullness, ExtractError> {
    if let Some(path) = &stop.has_more_path {
        match page.doc.get_bool(path)? {
            Some(true) => return Ok(Fullness::Full(format!("'{path}' is true"))),
            Some(false) => return Ok(Fullness::Short),
            None => {}
        }
    }
    if let Some(path) = &stop.total_path {
        if let Some(total) = page.doc.get_u64(path)? {
            return Ok(if page.records_so_far < total {
                Fullness::Full(format!(
                    "'{path}' says {total} records, {} so far",
                    page.records_so_far
                ))
            } else {
                Fullness::Short
            });
        }
    }
    Ok(match asked_page_size(page.url) {
        Some((param, n)) if page.records >= n => {
            Fullness::Full(format!("as many records as asked for, {param}={n}"))
        }
        Some(_) => Fullness::Short,
        None => Fullness::Unknown,
    })
}

/// What an absent pointer means for this page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The listing ends here, as the API meant.
    End,
    /// The listing ends here, but the page looked full: the run records this warning.
    EndWithWarning(String),
    /// Page 1: refuse, with this explanation (the `PaginateError::PointerMissing` text).
    Refuse(String),
}

/// Judge an absent pointer (see the module docs).
pub fn judge(
    missing: &MissingPointer,
    page: &PageView<'_>,
    stop: &StopRules,
) -> Result<Verdict, ExtractError> {
    let full = fullness(page, stop)?;
    let first = page.page <= 1;
    Ok(match (full, first) {
        (Fullness::Short, _) => Verdict::End,
        (Fullness::Full(why), true) => Verdict::Refuse(format!(
            "page 1 holds {} records ({why}), so there are more pages, but it has no {} to find the next page from; {}. Check {}",
            page.records, missing.what, missing.found, missing.setting
        )),
        (Fullness::Unknown, true) => Verdict::Refuse(format!(
            "page 1 holds {} records but has no {} to find the next page from; {}. Check {}. If this endpoint really returns everything in one page and leaves the pointer out at the end, use --paginate none, or let gatelake tell a last page from a full one: put the page size in --url (e.g. limit=N), or pass --has-more-path or --total-path",
            page.records, missing.what, missing.found, missing.setting
        )),
        (Fullness::Full(why), false) => Verdict::EndWithWarning(format!(
            "page {} holds {} records ({why}) but has no {} (it was there on earlier pages): the listing ended there and may be incomplete. {}",
            page.page, page.records, missing.what, missing.found
        )),
        (Fullness::Unknown, false) => Verdict::End,
    })
}

/// "the page's fields are: …" for a body path: the keys of the deepest object on the path
/// that exists (the top level for `next`, `meta`'s keys for `meta.next` when `meta` exists).
pub fn fields_near(doc: &JsonDoc<'_>, path: &str) -> String {
    let segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
    for depth in (1..segments.len()).rev() {
        let parent = segments[..depth].join(".");
        if let Ok(Some(raw)) = doc.get(&parent) {
            if let Ok(map) =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw.get())
            {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                return format!("'{parent}' has the fields: {}", list(&keys));
            }
        }
    }
    let keys = doc.top_level_keys();
    if keys.is_empty() {
        "the page body is not an object".into()
    } else {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        format!("the page's fields are: {}", list(&keys))
    }
}

/// "the response headers are: …" (names only: values may be secrets).
pub fn header_names(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    format!("the response headers are: {}", list(&names))
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn page_size_params_are_recognised() {
        for (url, want) in [
            ("https://h/p?limit=500", Some(500)),
            ("https://h/p?pageSize=20&x=1", Some(20)),
            ("https://h/p?%24top=7", Some(7)),
            ("https://h/p?max-results=9", Some(9)),
            ("https://h/p?per_page=0", None),
            ("https://h/p?cursor=abc", None),
            ("https://h/p", None),
        ] {
            let got = asked_page_size(&Url::parse(url).unwrap()).map(|(_, n)| n);
            assert_eq!(got, want, "{url}");
        }
    }

    #[test]
    fn fields_are_listed_where_the_path_stops() {
        let doc = JsonDoc::parse(r#"{"items":[],"meta":{"cursor":"x","count":2}}"#).unwrap();
        assert_eq!(
            fields_near(&doc, "nxt"),
            "the page's fields are: items, meta"
        );
        assert_eq!(
            fields_near(&doc, "meta.next"),
            "'meta' has the fields: count, cursor"
        );
        let arr = JsonDoc::parse("[{}]").unwrap();
        assert_eq!(fields_near(&arr, "next"), "the page body is not an object");
    }
}
