//! Reading ahead on a sequential listing. A cursor or link page carries its next request, but
//! finding it by parsing the page (every record walked to cut the records out) holds that
//! request back for as long as the parse takes, and the next page's round trip after it.
//! [`guess`] reads only the pointer — from the headers, or from the last occurrence of its
//! key in the body, where APIs put it after the records — and asks the style what request it
//! would make from it, so the pull can start that request while the page is parsed.
//!
//! A guess is never trusted: the pull uses its answer only when the parsed page asks for
//! exactly that request (the shared stop rules and the pointer rule included), and otherwise
//! cancels it unread. A wrong guess therefore costs one request, never a record; the pull
//! stops guessing after the first one (see `pipeline::fetch`). A page whose `has_more` says
//! it is the last gets no guess, though it still carries a pointer: the request past the end
//! would reach the API before the parse cancelled it.

use super::{same_origin, PageView, Paginator};
use crate::config::StopRules;
use crate::source::extract::JsonDoc;
use reqwest::header::HeaderMap;
use url::Url;

/// Where a style reads its next request from, when the page's pointer alone decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerAt<'a> {
    /// A dot-separated body path (`next_cursor`, `links.next`).
    Body(&'a str),
    /// The response headers (`Link`, a cursor header).
    Headers,
}

/// The request `paginator` would make after the page fetched from `url`, from its pointer
/// alone; `None` when the style has no such pointer, the pointer could not be found without
/// a parse, it says the listing ends, `stop`'s `has_more` path reads false, or the request
/// would leave `origin` or repeat `url`.
///
/// A guess from the body must also keep `url`'s path: what is found by searching the body
/// may be a record's field, and a link in a record is not sent anywhere the listing itself
/// is not (a cursor only changes the query; a next link that changes the path waits for the
/// parse).
pub fn guess(
    paginator: &dyn Paginator,
    stop: &StopRules,
    origin: &Url,
    url: &Url,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Url> {
    if let Some(path) = &stop.has_more_path {
        // Read the same way as the pointer (the last member of its name); a `has_more` found
        // in a record instead only costs this page's guess, and one not found decides nothing.
        if let Some(text) = pointer_doc(path, body) {
            let more = JsonDoc::parse(&text).map(|doc| doc.get_bool(path));
            if matches!(more, Ok(Ok(Some(false)))) {
                return None;
            }
        }
    }
    let (text, same_path) = match paginator.pointer_at()? {
        PointerAt::Headers => ("{}".to_string(), false),
        PointerAt::Body(path) => (pointer_doc(path, body)?, true),
    };
    let doc = JsonDoc::parse(&text).ok()?;
    // The record counts are not known before the parse; the styles that read a pointer do not
    // look at them (the stop rules that do are applied to the parsed page, which decides).
    let view = PageView {
        url,
        headers,
        doc: &doc,
        records: 1,
        records_so_far: 1,
        page: 0,
    };
    let next = paginator.next(&view).ok().flatten()?;
    let kept_path = !same_path || next.path() == url.path();
    (same_origin(origin, &next) && kept_path && &next != url).then_some(next)
}

/// A small JSON document holding only the value at `path` in `body` (`{"meta":{"next":"x"}}`
/// for `meta.next`), found as the last occurrence of the path's last key; `None` when the
/// path has a segment that is not a plain object key, or no such key is found.
fn pointer_doc(path: &str, body: &[u8]) -> Option<String> {
    let segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| !plain_key(s)) {
        return None;
    }
    let value = std::str::from_utf8(last_value_of(body, segments.last()?)?).ok()?;
    let mut text = String::with_capacity(value.len() + path.len() + 6 * segments.len());
    for segment in &segments {
        text.push_str("{\"");
        text.push_str(segment);
        text.push_str("\":");
    }
    text.push_str(value);
    text.extend(std::iter::repeat_n('}', segments.len()));
    Some(text)
}

/// A key written as itself in JSON (no escapes) that is not an array index.
fn plain_key(segment: &str) -> bool {
    !segment.bytes().all(|b| b.is_ascii_digit())
        && !segment.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

/// How many occurrences of the key, from the end, are looked at before giving up: a key
/// that is also a field of the records is found there first when the pointer comes before
/// them, and the guess is better skipped than searched for through the whole page.
const TRIES: usize = 4;

/// The raw JSON value of the last member named `key` in `body`.
fn last_value_of<'a>(body: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let needle = format!("\"{key}\"");
    let finder = memchr::memmem::FinderRev::new(needle.as_bytes());
    let mut end = body.len();
    for _ in 0..TRIES {
        let at = finder.rfind(&body[..end])?;
        if let Some(value) = value_after(body, at, needle.len()) {
            return Some(value);
        }
        end = at;
    }
    None
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The value of the member whose quoted key starts at `at` and is `len` bytes long, if what
/// is there reads as a member (`{` or `,` before, `:` after).
fn value_after(body: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    let before = body[..at].iter().rev().find(|b| !is_space(**b))?;
    if !matches!(before, b'{' | b',') {
        return None;
    }
    let skip = |mut i: usize| {
        while body.get(i).is_some_and(|b| is_space(*b)) {
            i += 1;
        }
        i
    };
    let colon = skip(at + len);
    if body.get(colon) != Some(&b':') {
        return None;
    }
    let start = skip(colon + 1);
    if body.get(start) == Some(&b'"') {
        // A string: up to the first quote not escaped by an odd run of backslashes.
        let mut from = start + 1;
        loop {
            let quote = from + memchr::memchr(b'"', &body[from..])?;
            let slashes = body[from..quote]
                .iter()
                .rev()
                .take_while(|b| **b == b'\\')
                .count();
            if slashes % 2 == 0 {
                return Some(&body[start..=quote]);
            }
            from = quote + 1;
        }
    }
    // A number, null or a boolean (anything else fails the small document's parse).
    let end = body[start..]
        .iter()
        .position(|b| matches!(b, b',' | b'}' | b']') || is_space(*b))
        .map_or(body.len(), |p| start + p);
    (end > start).then(|| &body[start..end])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::next_of;
    use super::super::{
        CursorPaginator, CursorSource, LinkHeaderPaginator, NextLinkPaginator, OffsetPaginator,
        StopRules,
    };
    use super::*;

    const URL: &str = "https://api.example.com/prod/orders?limit=2";

    fn guess_of(p: &dyn Paginator, body: &str, headers: &[(&str, &str)]) -> Option<String> {
        guess_under(p, &StopRules::default(), body, headers)
    }

    fn guess_under(
        p: &dyn Paginator,
        stop: &StopRules,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Option<String> {
        let url = Url::parse(URL).unwrap();
        let origin = Url::parse("https://api.example.com/prod/orders").unwrap();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        guess(p, stop, &origin, &url, &map, body.as_bytes()).map(|u| u.to_string())
    }

    fn cursor(path: &str) -> CursorPaginator {
        CursorPaginator::new(CursorSource::Body(path.into()), "cursor".into())
    }

    /// Every guess that is made must be the request the parsed page asks for.
    fn agrees(p: &dyn Paginator, body: &str, headers: &[(&str, &str)]) -> Option<String> {
        let guessed = guess_of(p, body, headers);
        if guessed.is_some() {
            let parsed = next_of(p, &StopRules::default(), URL, body, headers, 2).unwrap();
            assert_eq!(guessed, parsed, "{body}");
        }
        guessed
    }

    #[test]
    fn a_cursor_after_the_records_is_read_without_a_parse() {
        let p = cursor("next_cursor");
        let body =
            r#"{"items":[{"id":1,"next_cursor":"in a record"},{"id":2}],"next_cursor":"eyJ+/="}"#;
        assert_eq!(
            agrees(&p, body, &[]).as_deref(),
            Some("https://api.example.com/prod/orders?limit=2&cursor=eyJ%2B%2F%3D")
        );
        // Whitespace around the colon, escapes inside the value, numbers.
        let spaced = "{\"items\":[1,2],\n  \"next_cursor\" :  \"a\\\"b\\\\\" \n}";
        assert!(agrees(&p, spaced, &[])
            .unwrap()
            .ends_with("cursor=a%22b%5C"));
        let number = r#"{"items":[1,2],"next_cursor":1234}"#;
        assert!(agrees(&p, number, &[]).unwrap().ends_with("cursor=1234"));
    }

    #[test]
    fn nested_paths_and_links_are_read_from_their_last_key() {
        let p = cursor("meta.page.next");
        let body = r#"{"data":[{"next":"x"},{"id":2}],"meta":{"page":{"size":2,"next":"c2"}}}"#;
        assert!(agrees(&p, body, &[]).unwrap().ends_with("cursor=c2"));
        let link = NextLinkPaginator::new("links.next".into());
        let body = r#"{"data":[1,2],"links":{"self":"/a","next":"/prod/orders?after=42"}}"#;
        assert_eq!(
            agrees(&link, body, &[]).as_deref(),
            Some("https://api.example.com/prod/orders?after=42")
        );
    }

    #[test]
    fn headers_give_the_guess_without_the_body() {
        let p = CursorPaginator::new(CursorSource::Header("x-next-cursor".into()), "after".into());
        assert_eq!(
            agrees(&p, "[1,2]", &[("x-next-cursor", "k 1")]).as_deref(),
            Some("https://api.example.com/prod/orders?limit=2&after=k+1")
        );
        let link = LinkHeaderPaginator;
        let header = r#"<https://api.example.com/prod/orders?page=3>; rel="next""#;
        assert_eq!(
            agrees(&link, "[1,2]", &[("link", header)]).as_deref(),
            Some("https://api.example.com/prod/orders?page=3")
        );
    }

    #[test]
    fn a_page_whose_has_more_says_it_is_the_last_gets_no_guess() {
        // APIs that say their end with has_more alone keep a pointer on the last page.
        let p = cursor("next_cursor");
        let stop = |path: &str| StopRules {
            has_more_path: Some(path.into()),
            ..StopRules::default()
        };
        let last = r#"{"items":[1,2],"next_cursor":"past-the-end","has_more":false}"#;
        assert_eq!(guess_under(&p, &stop("has_more"), last, &[]), None);
        // The parse agrees: the listing ends there.
        let parsed = next_of(&p, &stop("has_more"), URL, last, &[], 2).unwrap();
        assert_eq!(parsed, None);
        // Without the rule, or with more to come (a string "true" too), the guess stands.
        assert!(guess_of(&p, last, &[]).is_some());
        for more in [r#""has_more":true"#, r#""has_more":"true""#, r#""other":1"#] {
            let body = format!(r#"{{"items":[1,2],"next_cursor":"c2",{more}}}"#);
            assert!(
                guess_under(&p, &stop("has_more"), &body, &[])
                    .unwrap()
                    .ends_with("cursor=c2"),
                "{body}"
            );
        }
        // Nested, before the records, as a string; a Link header's guess too.
        let nested = r#"{"meta":{"has_next":"false"},"items":[1,2],"next_cursor":"c2"}"#;
        assert_eq!(guess_under(&p, &stop("meta.has_next"), nested, &[]), None);
        let header = r#"<https://api.example.com/prod/orders?page=3>; rel="next""#;
        let links = [("link", header)];
        let done = r#"{"rows":[1,2],"has_more":false}"#;
        assert_eq!(
            guess_under(&LinkHeaderPaginator, &stop("has_more"), done, &links),
            None
        );
        assert!(guess_of(&LinkHeaderPaginator, done, &links).is_some());
    }

    #[test]
    fn no_guess_where_the_pointer_is_not_plainly_there() {
        let p = cursor("next_cursor");
        for body in [
            // The end of the listing, absent, empty.
            r#"{"items":[1,2],"next_cursor":null}"#,
            r#"{"items":[1,2]}"#,
            r#"{"items":[1,2],"next_cursor":""}"#,
            // The key as a value, not a member; inside a string; an object value.
            r#"{"items":["next_cursor"],"other":1}"#,
            r#"{"items":["say \"next_cursor\": 5"]}"#,
            r#"{"items":[1,2],"next_cursor":{"a":1}}"#,
            // Cut short.
            r#"{"items":[1,2],"next_cursor":"abc"#,
        ] {
            assert_eq!(guess_of(&p, body, &[]), None, "{body}");
        }
        // Array indexes and escaped keys are left to the parse.
        assert_eq!(
            guess_of(&cursor("pages.0.next"), r#"{"next":"a"}"#, &[]),
            None
        );
        // A link to another host is never guessed (nor sent), nor one to another path of
        // the API's host: it may be a record's link, found where the pointer was looked for.
        let link = NextLinkPaginator::new("next".into());
        assert_eq!(
            guess_of(&link, r#"{"next":"https://elsewhere.example/x"}"#, &[]),
            None
        );
        let body = r#"{"next":"/prod/orders?after=2","data":[{"next":"/prod/admin/purge"}]}"#;
        assert_eq!(guess_of(&link, body, &[]), None);
        // The parse finds the page's own link.
        let parsed = next_of(&link, &StopRules::default(), URL, body, &[], 2).unwrap();
        assert!(parsed.unwrap().ends_with("/prod/orders?after=2"));
        // Styles that work their next request out from the URL do not read ahead this way.
        let offset = OffsetPaginator::new("offset".into(), "limit".into(), 2, 0);
        assert_eq!(guess_of(&offset, r#"{"items":[1,2]}"#, &[]), None);
    }

    #[test]
    fn a_pointer_before_the_records_can_be_guessed_wrong_and_the_parse_decides() {
        // The records carry the same key after the real pointer: the guess reads a record's.
        // This is the case the pull's check exists for (and why it stops guessing after a
        // miss); here it is only shown that the guess and the parse disagree.
        let p = cursor("next_cursor");
        let body = r#"{"next_cursor":"real","items":[{"next_cursor":"fake"},{"id":2}]}"#;
        let guessed = guess_of(&p, body, &[]);
        let parsed = next_of(&p, &StopRules::default(), URL, body, &[], 2).unwrap();
        assert!(guessed.unwrap().ends_with("cursor=fake"));
        assert!(parsed.unwrap().ends_with("cursor=real"));
    }
}
