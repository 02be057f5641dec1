//! A validating scanner for the usual page shape, an object with the records array as one of
//! its members (`{"items":[{...},...],"next_cursor":"..."}`): one pass over the body checks it
//! against the JSON grammar and finds where each top-level member and each record is, and
//! where each record's own top-level members are ([`RecordMembers`], which the encoder reads
//! records by). Validating pages with serde and then walking every record again for its
//! members was about a fifth of a jsonl pull's CPU.
//!
//! It accepts exactly what serde_json accepts when it reads a page into raw values (strings
//! without raw control characters, escapes of `"\/bfnrt` or `u` with four hex digits, numbers
//! as JSON writes them, the three literals, nothing after the root but whitespace) and
//! *declines* whatever it is not sure of: a top-level key with an escape (serde unescapes it),
//! nesting deeper than [`MAX_DEPTH`], a root that is not an object. It also declines every
//! body that is not valid JSON, so that serde reads it again and the error message is serde's.
//! The caller (`extract::JsonDoc`) then parses the page with serde, as it always did.

// Nesting deeper than the encoder's scanner takes (counted here from the page's root) is
// declined: well under serde's 128 levels either way.
use crate::buffers::SizeHint;
use crate::encode::scan::{find_string_stop, number_end, same_bytes, MAX_DEPTH};
use crate::encode::RecordMembers;
use std::ops::Range;

/// How many records, and record members, the last page scanned had: the next page's vectors
/// are made that size (plus an eighth) at once instead of doubling their way there, which
/// copied them a dozen times per page.
static RECORDS: SizeHint = SizeHint::new();
static SPANS: SizeHint = SizeHint::new();

/// What the scanner found in a page.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ScannedPage {
    /// The root's members in order, as (key between its quotes, raw value) byte ranges; a
    /// repeated key keeps its first value.
    pub members: Vec<(Range<usize>, Range<usize>)>,
    /// The records member, when the page has one.
    pub records: Option<ScannedRecords>,
}

/// The records member as found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ScannedRecords {
    /// An array: the byte range of each element, and the top-level members of those that
    /// are objects.
    Array(Vec<Range<usize>>, RecordMembers),
    /// Something else, in the words `extract::kind_of` uses.
    Not(&'static str),
}

/// Scan `text` (a page body without surrounding whitespace) whose records are the top-level
/// member `records_key`. `None`: declined (see the module docs).
pub(crate) fn scan_page(text: &str, records_key: &str) -> Option<ScannedPage> {
    let mut c = Cursor {
        b: text.as_bytes(),
        i: 0,
        spaced: false,
    };
    c.eat(b'{')?;
    let mut members: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    let mut records = None;
    c.ws();
    if c.peek()? == b'}' {
        c.i += 1;
    } else {
        loop {
            let key = c.key(true)?;
            let key_text = text.get(key.clone())?;
            let first = !members
                .iter()
                .any(|(k, _)| text.get(k.clone()) == Some(key_text));
            c.ws();
            let start = c.i;
            if first && key_text == records_key {
                records = Some(c.records()?);
            } else {
                c.value(1)?;
            }
            if first {
                members.push((key, start..c.i));
            }
            if !c.next_or_close(b'}')? {
                break;
            }
        }
    }
    c.ws();
    (c.i == c.b.len()).then_some(ScannedPage { members, records })
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
    /// Whether [`Cursor::ws`] has skipped any whitespace (since the records array opened).
    spaced: bool,
}

impl Cursor<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.i += 1)
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
            self.spaced = true;
        }
    }

    /// After a member or an element: a `,` (another follows: `true`, the cursor on it) or
    /// `close` (`false`, the cursor past it); anything else declines.
    #[inline]
    fn next_or_close(&mut self, close: u8) -> Option<bool> {
        self.ws();
        match self.peek()? {
            b',' => {
                self.i += 1;
                self.ws();
                Some(true)
            }
            found if found == close => {
                self.i += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// A key and its `:`: the range between its quotes. A top-level key (`top`) with an
    /// escape is declined (serde unescapes those keys, and the caller compares them as
    /// written); nested keys are only validated.
    fn key(&mut self, top: bool) -> Option<Range<usize>> {
        let start = self.i + 1;
        if self.peek()? != b'"' || (self.string()? && top) {
            return None;
        }
        let key = start..self.i - 1;
        self.ws();
        self.eat(b':')?;
        Some(key)
    }

    /// The records member: an array split into its elements, or the kind of anything else.
    fn records(&mut self) -> Option<ScannedRecords> {
        let found = match self.peek()? {
            b'[' => {
                self.i += 1;
                self.ws();
                // Whitespace from here to the array's end (between records too, to keep the
                // check simple) means the records may not be compact.
                self.spaced = false;
                let mut elements = Vec::with_capacity(RECORDS.capacity());
                let mut members = RecordMembers {
                    spans: Vec::with_capacity(SPANS.capacity()),
                    of_record: Vec::with_capacity(RECORDS.capacity()),
                    compact: false,
                };
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(ScannedRecords::Array(elements, members));
                }
                loop {
                    let start = self.i;
                    let found = if self.peek()? == b'{' {
                        // The record before, when its keys were all plain: its keys are
                        // what this record's keys most likely are.
                        let before = match (elements.last(), members.of_record.last()) {
                            (Some(range), Some(&Some((from, to)))) => {
                                Some((range.start, from as usize, to as usize))
                            }
                            _ => None,
                        };
                        self.record(&mut members.spans, before)?
                    } else {
                        // Root 1, the array 2: a record is nested two levels down.
                        self.value(2)?;
                        None
                    };
                    members.of_record.push(found);
                    elements.push(start..self.i);
                    if !self.next_or_close(b']')? {
                        members.compact = !self.spaced;
                        RECORDS.record(elements.len());
                        SPANS.record(members.spans.len());
                        return Some(ScannedRecords::Array(elements, members));
                    }
                }
            }
            b'{' => "an object",
            b'"' => "a string",
            b't' | b'f' => "a boolean",
            b'n' => "null",
            _ => "a number",
        };
        self.value(1)?;
        Some(ScannedRecords::Not(found))
    }

    /// A record (an object, at the cursor's `{`), noting its top-level members in `spans`.
    /// Returns the range of `spans` they take, or `Some(None)` when a key has an escape (the
    /// record is still validated whole; its members are left to the encoder).
    ///
    /// `before` is the record before it (where it starts, and the range of `spans` its
    /// members take), when all its keys were plain. Records of one API list the same keys in
    /// the same order, so each key is first compared, quotes included, with the key in the
    /// same place there: the same bytes are a string already validated and without escapes,
    /// and the search for its end is skipped.
    fn record(
        &mut self,
        spans: &mut Vec<[u32; 4]>,
        before: Option<(usize, usize, usize)>,
    ) -> Option<Option<(u32, u32)>> {
        let base = self.i;
        let first = spans.len();
        let offset = |at: usize| u32::try_from(at - base).ok();
        let mut plain = true;
        self.i += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                let key_start = self.i + 1;
                if self.peek()? != b'"' {
                    return None;
                }
                match self.same_key_as(spans, first, before) {
                    Some(len) => self.i += len,
                    None => plain &= !self.string()?,
                }
                let key_end = self.i - 1;
                self.ws();
                self.eat(b':')?;
                self.ws();
                let value_start = self.i;
                // Root 1, the array 2, the record 3.
                self.value(3)?;
                spans.push([
                    offset(key_start)?,
                    offset(key_end)?,
                    offset(value_start)?,
                    offset(self.i)?,
                ]);
                if !self.next_or_close(b'}')? {
                    break;
                }
            }
        }
        if !plain {
            spans.truncate(first);
            return Some(None);
        }
        let end = u32::try_from(spans.len()).ok()?;
        Some(Some((u32::try_from(first).ok()?, end)))
    }

    /// When the key at the cursor (at its opening quote) is, byte for byte and quotes
    /// included, the key in the same place in the record `before` (see [`Cursor::record`];
    /// this record's members so far start at `first` in `spans`): that key's length, quotes
    /// included.
    #[inline]
    fn same_key_as(
        &self,
        spans: &[[u32; 4]],
        first: usize,
        before: Option<(usize, usize, usize)>,
    ) -> Option<usize> {
        let (base, from, to) = before?;
        let at = from + (spans.len() - first);
        let [key_start, key_end, _, _] = *spans.get(at).filter(|_| at < to)?;
        let key = self
            .b
            .get(base + key_start as usize - 1..base + key_end as usize + 1)?;
        let here = self.b.get(self.i..self.i + key.len())?;
        same_bytes(key, here).then_some(key.len())
    }

    /// One value of any kind starting at the cursor (no whitespace before it), nested
    /// `depth` levels below the root; the cursor ends just past it.
    fn value(&mut self, depth: usize) -> Option<()> {
        // Which open containers are objects, one bit per level below `depth`.
        let mut objects: u128 = 0;
        let mut open = 0usize;
        loop {
            // One value, or the opening of a container (whose first member or element is
            // then the next value).
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                open_byte @ (b'{' | b'[') => {
                    if depth + open >= MAX_DEPTH {
                        return None;
                    }
                    let object = open_byte == b'{';
                    objects = (objects & !(1 << open)) | (u128::from(object) << open);
                    open += 1;
                    self.i += 1;
                    self.ws();
                    let close = if object { b'}' } else { b']' };
                    if self.peek()? != close {
                        if object {
                            self.key(false)?;
                            self.ws();
                        }
                        continue;
                    }
                    self.i += 1;
                    open -= 1;
                }
                _ => return None,
            }
            // A value is complete: close what it completes, up to the next one.
            loop {
                if open == 0 {
                    return Some(());
                }
                self.ws();
                let object = objects & (1 << (open - 1)) != 0;
                match (self.peek()?, object) {
                    (b',', _) => {
                        self.i += 1;
                        self.ws();
                        if object {
                            self.key(false)?;
                            self.ws();
                        }
                        break;
                    }
                    (b'}', true) | (b']', false) => {
                        self.i += 1;
                        open -= 1;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// A string starting at the cursor's quote; the cursor ends past its closing quote.
    /// Returns whether it has an escape; `None` for a raw control character, a bad escape or
    /// no closing quote.
    fn string(&mut self) -> Option<bool> {
        let mut i = self.i + 1;
        let mut escaped = false;
        loop {
            i += find_string_stop::<true>(self.b.get(i..)?)?;
            match self.b[i] {
                b'"' => {
                    self.i = i + 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    match *self.b.get(i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => {
                            // Four hex digits; like serde reading into a raw value, the code
                            // point itself is not checked (a lone surrogate is kept as
                            // written).
                            let hex = self.b.get(i + 2..i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            i += 6;
                        }
                        _ => return None,
                    }
                }
                // A raw control character.
                _ => return None,
            }
        }
    }

    /// A number as JSON writes it (see [`number_end`]).
    #[inline]
    fn number(&mut self) -> Option<()> {
        self.i = number_end(self.b, self.i)?;
        Some(())
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ranges(text: &str, page: &ScannedPage) -> (Vec<(String, String)>, Option<Vec<String>>) {
        let members = page
            .members
            .iter()
            .map(|(k, v)| (text[k.clone()].to_owned(), text[v.clone()].to_owned()))
            .collect();
        let records = match &page.records {
            Some(ScannedRecords::Array(r, _)) => {
                Some(r.iter().map(|r| text[r.clone()].to_owned()).collect())
            }
            _ => None,
        };
        (members, records)
    }

    #[test]
    fn finds_members_and_records() {
        let text = r#"{ "items" : [ {"a":1} , {"b":[2,{"c":"]"}]} ] , "next" : "x\"y", "items": 5 , "n":null}"#;
        let page = scan_page(text, "items").unwrap();
        let (members, records) = ranges(text, &page);
        assert_eq!(
            members,
            [
                (
                    "items".into(),
                    r#"[ {"a":1} , {"b":[2,{"c":"]"}]} ]"#.into()
                ),
                ("next".into(), r#""x\"y""#.into()),
                ("n".into(), "null".into()),
            ]
        );
        assert_eq!(records.unwrap(), [r#"{"a":1}"#, r#"{"b":[2,{"c":"]"}]}"#]);
        for (body, found) in [
            (r#"{"items":null}"#, "null"),
            (r#"{"items":{"a":[]}}"#, "an object"),
            (r#"{"items":"x"}"#, "a string"),
            (r#"{"items":false}"#, "a boolean"),
            (r#"{"items":-1.5e3}"#, "a number"),
        ] {
            let page = scan_page(body, "items").unwrap();
            assert_eq!(page.records, Some(ScannedRecords::Not(found)), "{body}");
        }
        assert_eq!(scan_page(r#"{"other":[]}"#, "items").unwrap().records, None);
        assert_eq!(
            scan_page(r#"{"items":[]}"#, "items").unwrap().records,
            Some(ScannedRecords::Array(vec![], RecordMembers::default()))
        );
        assert_eq!(scan_page("{}", "items").unwrap().members, vec![]);
    }

    /// Each record's top-level members as (key, value) texts, as the scanner noted them;
    /// `None` where it left them to the encoder.
    fn described(text: &str) -> Vec<Option<Vec<(&str, &str)>>> {
        let page = scan_page(text, "items").unwrap();
        let Some(ScannedRecords::Array(ranges, members)) = page.records else {
            panic!("no records");
        };
        ranges
            .iter()
            .zip(&members.of_record)
            .map(|(range, of)| {
                let record = &text[range.clone()];
                of.map(|(from, to)| {
                    members.spans[from as usize..to as usize]
                        .iter()
                        .map(|[k0, k1, v0, v1]| {
                            (
                                &record[*k0 as usize..*k1 as usize],
                                &record[*v0 as usize..*v1 as usize],
                            )
                        })
                        .collect()
                })
            })
            .collect()
    }

    #[test]
    fn keys_compared_with_the_record_befores_are_read_as_keys() {
        // The same keys in the same order; another order; keys that only start like the
        // ones before, and the other way round; more keys, then fewer; an escaped key (its
        // record's members left to the encoder), after which keys are searched again.
        let text = r#"{"items":[{"id":1,"name":"a"},{"id":2,"name":"b"},{"name":"c","id":3},{"idx":4,"nam":"d"},{"id":5,"name":"e","x":6},{"id":7},{"i\u0064":8,"name":"f"},{"id":9,"name":"g"},{"id":10,"name":"h"}]}"#;
        assert_eq!(
            described(text),
            [
                Some(vec![("id", "1"), ("name", r#""a""#)]),
                Some(vec![("id", "2"), ("name", r#""b""#)]),
                Some(vec![("name", r#""c""#), ("id", "3")]),
                Some(vec![("idx", "4"), ("nam", r#""d""#)]),
                Some(vec![("id", "5"), ("name", r#""e""#), ("x", "6")]),
                Some(vec![("id", "7")]),
                None,
                Some(vec![("id", "9"), ("name", r#""g""#)]),
                Some(vec![("id", "10"), ("name", r#""h""#)]),
            ]
        );
        // A key as before followed by no colon, or cut off; one with a raw control character
        // where the key before ended.
        for bad in [
            r#"{"items":[{"id":1},{"id" 2}]}"#.to_string(),
            r#"{"items":[{"id":1},{"id"#.to_string(),
            "{\"items\":[{\"id\":1},{\"id\u{1}\":1}]}".to_string(),
        ] {
            assert!(scan_page(&bad, "items").is_none(), "{bad}");
        }
    }

    #[test]
    fn notes_each_records_top_level_members() {
        let text =
            r#"{"items":[ {"a" : 1, "b":{"c":[2]} ,"s":"x\"}"} ,7,{},{"k\"":1,"d":2},{"e":null}]}"#;
        assert_eq!(
            described(text),
            [
                Some(vec![("a", "1"), ("b", r#"{"c":[2]}"#), ("s", r#""x\"}""#)]),
                None,
                Some(vec![]),
                None,
                Some(vec![("e", "null")]),
            ]
        );
    }

    #[test]
    fn records_are_called_compact_only_when_none_has_whitespace_outside_its_strings() {
        // Whitespace outside strings, byte by byte.
        let spaced = |record: &str| {
            let (mut in_string, mut escaped) = (false, false);
            record.bytes().any(|b| {
                if in_string {
                    (in_string, escaped) = (escaped || b != b'"', !escaped && b == b'\\');
                    false
                } else {
                    in_string = b == b'"';
                    b.is_ascii_whitespace()
                }
            })
        };
        let compact = |text: &str| -> bool {
            let page = scan_page(text, "items").unwrap();
            let Some(ScannedRecords::Array(ranges, members)) = page.records else {
                panic!("no records: {text}");
            };
            // Never called compact when a record has whitespace outside its strings.
            if members.compact {
                for range in ranges {
                    assert!(!spaced(&text[range]), "{text}");
                }
            }
            members.compact
        };
        for text in [
            r#"{"items":[{"a":1,"b":{"c":[2,"x y"]},"s":"\t \n"}]}"#,
            r#"{"items":[{"a":1},7,"a b",{"k\"":[]}],"next":"x"}"#,
            // Whitespace outside the records array does not count.
            "{ \"n\" : 1 ,\n \"items\" : [\n{\"a\":1}] , \"m\" : [ 2 ] }",
        ] {
            assert!(compact(text), "{text}");
        }
        for text in [
            r#"{"items":[{"a": 1}]}"#,
            r#"{"items":[{"a":1,"b":{"c":[2, 3]}}]}"#,
            r#"{"items":[{"a":1},{"b":{ }}]}"#,
            "{\"items\":[{\"a\":1}\n,{\"b\":2}]}",
            "{\"items\":[{\"a\":1},\r\n{\"b\":2}]}",
            "{\"items\":[{\"a\":1}\t]}",
            r#"{"items":[1, 2]}"#,
            r#"{"items":[{"a":1}, {"k\"" :1}]}"#,
        ] {
            assert!(!compact(text), "{text}");
        }
    }

    #[test]
    fn declines_escaped_top_level_keys_and_deep_nesting() {
        assert!(scan_page(r#"{"it\u0065ms":[]}"#, "items").is_none());
        let deep = |n: usize| {
            format!(
                r#"{{"items":[{{"a":{}1{}}}]}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        // Root, array, record: three levels before the member's own.
        assert!(scan_page(&deep(MAX_DEPTH - 3), "items").is_some());
        assert!(scan_page(&deep(MAX_DEPTH - 2), "items").is_none());
    }
}
