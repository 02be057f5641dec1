//! Finding things in a page body without re-serialising it: a path (`items`, `data.rows`,
//! `meta.next_cursor`, `results.0.id`) is walked through borrowed [`RawValue`]s, so the records
//! handed to the encoder are byte ranges of the body exactly as the API sent it.
//!
//! Records are returned as offsets into the body ([`ExtractedPage`]) so a page can cross a
//! thread boundary (fetch task → encoder thread) without copying or parsing it twice.

use super::page_scan::{scan_page, ScannedRecords};
use crate::encode::RecordMembers;
use bytes::Bytes;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// Why a page body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("the response body is not valid UTF-8 JSON")]
    NotUtf8,
    #[error("the response body is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("the records path '{path}' matched nothing{keys}")]
    RecordsNotFound { path: String, keys: String },
    #[error("{what} is {found}, not an array of records{keys}")]
    RecordsNotArray {
        /// "the records path 'items'" or "the page body".
        what: String,
        found: &'static str,
        keys: String,
    },
    #[error("record {index} is {found}, not a JSON object")]
    RecordNotObject { index: usize, found: &'static str },
}

/// A parsed view of one page body.
///
/// Parsing validates the whole body once and, when it is an object (the usual page shape:
/// `{"items":[...],"next_cursor":"..."}`), keeps its members. The records path, the cursor
/// and the stop-rule fields are then looked up among them, without scanning the body again.
/// Parsed with [`JsonDoc::parse_with_records`], the records array (a top-level member) is also
/// split into its records in that same pass, so a page is read once: by the page scanner
/// (`page_scan`), which also notes each record's top-level members for the encoder
/// ([`JsonDoc::take_record_members`]), or by serde when the scanner leaves the page to it.
pub struct JsonDoc<'a> {
    /// The body without surrounding whitespace.
    text: &'a str,
    top: Top<'a>,
    /// The records member, split during parsing (see [`JsonDoc::parse_with_records`]).
    records: Option<(&'a str, Split<'a>)>,
    /// Each record's top-level members, when the scanner read the page.
    record_members: Option<RecordMembers>,
}

/// The records member as found while parsing.
enum Split<'a> {
    /// An array: its elements' raw texts.
    Array(Vec<&'a str>),
    /// Something else, named as [`kind_of`] would.
    Not(&'static str),
}

enum Top<'a> {
    /// The members of an object root, in order (a repeated key keeps its first value); the
    /// value is `None` for the records member when it was split while parsing.
    Object(Vec<(Cow<'a, str>, Option<&'a RawValue>)>),
    /// Any other root (an array, usually).
    Other(&'a RawValue),
}

impl<'a> JsonDoc<'a> {
    /// Parse (validate) the body. Whitespace around the value is allowed.
    pub fn parse(text: &'a str) -> Result<Self, ExtractError> {
        Self::parse_with_records(text, "")
    }

    /// [`JsonDoc::parse`], splitting the records at `records_path` in the same pass when it
    /// names a top-level member (`items`; not `data.rows`, which [`JsonDoc::records`] walks to
    /// afterwards). The result is the same either way; this only saves a pass.
    pub fn parse_with_records(text: &'a str, records_path: &'a str) -> Result<Self, ExtractError> {
        let text = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
        let records_key =
            (!records_path.is_empty() && !records_path.contains('.')).then_some(records_path);
        if let Some(doc) = records_key.and_then(|key| Self::scanned(text, key)) {
            return Ok(doc);
        }
        let mut records = None;
        let top = if text.starts_with('{') {
            let mut de = serde_json::Deserializer::from_str(text);
            let visitor = Members {
                records_key,
                records: &mut records,
            };
            let members = serde::Deserializer::deserialize_map(&mut de, visitor)
                .map_err(ExtractError::InvalidJson)?;
            de.end().map_err(ExtractError::InvalidJson)?;
            Top::Object(members)
        } else {
            Top::Other(serde_json::from_str(text).map_err(ExtractError::InvalidJson)?)
        };
        Ok(Self {
            text,
            top,
            records: records.and_then(|split| records_key.map(|k| (k, split))),
            record_members: None,
        })
    }

    /// The page read by the scanner (`page_scan`), when it takes it: the same members and
    /// records as serde's reading below, in one pass. `None` sends the page to serde.
    fn scanned(text: &'a str, records_key: &'a str) -> Option<Self> {
        let page = scan_page(text, records_key)?;
        let mut members = Vec::with_capacity(page.members.len());
        for (key, value) in page.members {
            let key = text.get(key)?;
            let value = if key == records_key {
                None
            } else {
                // The other members are small (a cursor, a count): serde reads them into the
                // raw values the paths are walked through.
                Some(serde_json::from_str::<&RawValue>(text.get(value)?).ok()?)
            };
            members.push((Cow::Borrowed(key), value));
        }
        let mut record_members = None;
        let records = match page.records {
            Some(ScannedRecords::Array(ranges, of_records)) => {
                // Every range lies between ASCII delimiters; one that did not would put the
                // members out of step with the records, so such a page goes to serde.
                let texts = ranges
                    .into_iter()
                    .map(|r| text.get(r))
                    .collect::<Option<Vec<_>>>()?;
                record_members = Some(of_records);
                Some(Split::Array(texts))
            }
            Some(ScannedRecords::Not(kind)) => Some(Split::Not(kind)),
            None => None,
        };
        Some(Self {
            text,
            top: Top::Object(members),
            records: records.map(|split| (records_key, split)),
            record_members,
        })
    }

    /// The top-level members of the records at `path`, as the scanner found them while
    /// reading the page (`None` when serde read it, or for another path).
    pub fn take_record_members(&mut self, path: &str) -> Option<RecordMembers> {
        match &self.records {
            Some((key, Split::Array(_))) if *key == path => self.record_members.take(),
            _ => None,
        }
    }

    /// The whole body as a raw value.
    pub fn root(&self) -> Result<&'a RawValue, ExtractError> {
        match &self.top {
            Top::Other(raw) => Ok(raw),
            // Only asked for when the records path is empty on an object page (an error
            // message), so the second pass is not worth keeping the value for.
            Top::Object(_) => serde_json::from_str(self.text).map_err(ExtractError::InvalidJson),
        }
    }

    /// The value at a dot-separated path; the empty path is the root. Numeric segments index
    /// arrays. `Ok(None)` when any segment is missing.
    pub fn get(&self, path: &str) -> Result<Option<&'a RawValue>, ExtractError> {
        let mut segments = path.split('.').filter(|s| !s.is_empty());
        let mut current = match (&self.top, segments.next()) {
            (_, None) => return self.root().map(Some),
            (Top::Object(members), Some(first)) => match members.iter().find(|(k, _)| k == first) {
                Some((_, Some(v))) => *v,
                // The records member, split while parsing: walk to it in the whole body (a
                // second pass, only for paths that go into the records array).
                Some((_, None)) => match find_key(self.root()?, first)? {
                    Some(v) => v,
                    None => return Ok(None),
                },
                None => return Ok(None),
            },
            (Top::Other(raw), Some(first)) => match step(raw, first)? {
                Some(v) => v,
                None => return Ok(None),
            },
        };
        for segment in segments {
            match step(current, segment)? {
                Some(v) => current = v,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// The value at `path` as a string: JSON strings unquoted, numbers as written; `None` for
    /// missing, null and empty strings (each of which means "no next page" to a paginator).
    pub fn get_text(&self, path: &str) -> Result<Option<String>, ExtractError> {
        let Some(raw) = self.get(path)? else {
            return Ok(None);
        };
        let text = raw.get();
        if text.starts_with('"') {
            let s: String = serde_json::from_str(text).map_err(ExtractError::InvalidJson)?;
            Ok(if s.is_empty() { None } else { Some(s) })
        } else if text == "null" {
            Ok(None)
        } else if kind_of(raw) == "a number" {
            Ok(Some(text.to_string()))
        } else {
            Ok(None)
        }
    }

    /// The value at `path` as a boolean, if it is one (also accepts "true"/"false" strings).
    pub fn get_bool(&self, path: &str) -> Result<Option<bool>, ExtractError> {
        Ok(match self.get(path)?.map(|r| r.get()) {
            Some("true") | Some("\"true\"") => Some(true),
            Some("false") | Some("\"false\"") => Some(false),
            _ => None,
        })
    }

    /// The value at `path` as an unsigned integer, if it is one (or a string holding one).
    pub fn get_u64(&self, path: &str) -> Result<Option<u64>, ExtractError> {
        Ok(self.get_text(path)?.and_then(|t| t.parse().ok()))
    }

    /// The top-level keys, for error messages that help pick a records path.
    pub fn top_level_keys(&self) -> Vec<String> {
        match &self.top {
            Top::Object(members) => members.iter().map(|(k, _)| k.to_string()).collect(),
            Top::Other(_) => Vec::new(),
        }
    }

    /// The records at `path` (the root when empty), each required to be a JSON object.
    pub fn records(&self, path: &str) -> Result<Vec<&'a str>, ExtractError> {
        let keys_hint = |doc: &Self| {
            let keys = doc.top_level_keys();
            if keys.is_empty() {
                String::new()
            } else {
                format!(
                    " (the page's top-level keys are: {}); set --records to the path of the array",
                    keys.join(", ")
                )
            }
        };
        if let Some((key, split)) = &self.records {
            if *key == path {
                return match split {
                    Split::Array(records) => objects_only(records.clone()),
                    Split::Not("null") => Err(ExtractError::RecordsNotFound {
                        path: path.to_string(),
                        keys: keys_hint(self),
                    }),
                    Split::Not(found) => Err(ExtractError::RecordsNotArray {
                        what: format!("the records path '{path}'"),
                        found,
                        keys: keys_hint(self),
                    }),
                };
            }
        }
        let Some(raw) = self.get(path)? else {
            return Err(ExtractError::RecordsNotFound {
                path: path.to_string(),
                keys: keys_hint(self),
            });
        };
        let found = kind_of(raw);
        if found != "an array" {
            if found == "null" {
                return Err(ExtractError::RecordsNotFound {
                    path: path.to_string(),
                    keys: keys_hint(self),
                });
            }
            return Err(ExtractError::RecordsNotArray {
                what: if path.is_empty() {
                    "the page body".into()
                } else {
                    format!("the records path '{path}'")
                },
                found,
                keys: keys_hint(self),
            });
        }
        let records: Vec<&'a RawValue> =
            serde_json::from_str(raw.get()).map_err(ExtractError::InvalidJson)?;
        objects_only(records.into_iter().map(RawValue::get).collect())
    }
}

/// `records`, if every one is a JSON object.
fn objects_only(records: Vec<&str>) -> Result<Vec<&str>, ExtractError> {
    if let Some((index, bad)) = records
        .iter()
        .enumerate()
        .find(|(_, r)| !r.starts_with('{'))
    {
        return Err(ExtractError::RecordNotObject {
            index,
            found: kind_of_text(bad),
        });
    }
    Ok(records)
}

/// What kind of JSON value a raw value is, as words for messages.
pub fn kind_of(raw: &RawValue) -> &'static str {
    kind_of_text(raw.get())
}

/// [`kind_of`] for the text of a valid JSON value.
fn kind_of_text(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't') | Some(b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// One path segment down from `current`: a key of an object or an index of an array.
fn step<'a>(current: &'a RawValue, segment: &str) -> Result<Option<&'a RawValue>, ExtractError> {
    match kind_of(current) {
        "an object" => find_key(current, segment),
        "an array" => match segment.parse::<usize>() {
            Ok(index) => find_index(current, index),
            Err(_) => Ok(None),
        },
        _ => Ok(None),
    }
}

/// Collects an object's members as borrowed raw values (validating each), and splits the
/// records member into its elements on the way.
struct Members<'k, 'r, 'de> {
    records_key: Option<&'k str>,
    records: &'r mut Option<Split<'de>>,
}

impl<'de> Visitor<'de> for Members<'_, '_, 'de> {
    type Value = Vec<(Cow<'de, str>, Option<&'de RawValue>)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Self::Value = Vec::new();
        while let Some(k) = map.next_key::<Cow<'de, str>>()? {
            if members.iter().any(|(have, _)| *have == k) {
                // A repeated key: the first value counts; this one is only validated.
                map.next_value::<IgnoredAny>()?;
            } else if self.records_key.is_some_and(|r| r == k) {
                *self.records = Some(map.next_value_seed(SplitSeed)?);
                members.push((k, None));
            } else {
                let v = map.next_value::<&'de RawValue>()?;
                members.push((k, Some(v)));
            }
        }
        Ok(members)
    }
}

/// Reads a value as an array of raw elements, or notes what else it is.
struct SplitSeed;

impl<'de> serde::de::DeserializeSeed<'de> for SplitSeed {
    type Value = Split<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(SplitVisitor)
    }
}

struct SplitVisitor;

impl<'de> Visitor<'de> for SplitVisitor {
    type Value = Split<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element::<&'de RawValue>()? {
            out.push(v.get());
        }
        Ok(Split::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Split::Not("an object"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Split::Not("a string"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Split::Not("a boolean"))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Split::Not("null"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Split::Not("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Split::Not("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Split::Not("a number"))
    }
}

/// Scan an object for one key, skipping every other value without building it.
fn find_key<'a>(object: &'a RawValue, key: &str) -> Result<Option<&'a RawValue>, ExtractError> {
    struct FindKey<'k>(&'k str);
    impl<'de> Visitor<'de> for FindKey<'_> {
        type Value = Option<&'de RawValue>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                if found.is_none() && k == self.0 {
                    found = Some(map.next_value::<&'de RawValue>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_str(object.get());
    serde::Deserializer::deserialize_map(&mut de, FindKey(key)).map_err(ExtractError::InvalidJson)
}

/// The element at `index` of an array.
fn find_index(array: &RawValue, index: usize) -> Result<Option<&RawValue>, ExtractError> {
    struct FindIndex(usize);
    impl<'de> Visitor<'de> for FindIndex {
        type Value = Option<&'de RawValue>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            let mut i = 0;
            while let Some(v) = seq.next_element::<&'de RawValue>()? {
                if i == self.0 {
                    found = Some(v);
                }
                i += 1;
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_str(array.get());
    serde::Deserializer::deserialize_seq(&mut de, FindIndex(index))
        .map_err(ExtractError::InvalidJson)
}

/// A page whose records have been located: the body plus the byte range of each record.
/// A page's body as text, when it is UTF-8: checked with the CPU's vector instructions
/// (`simdutf8`), faster than the standard library's check on these mostly ASCII bodies;
/// every page's body is checked twice, once where it is read and once where the encoder
/// takes its records (issue 20).
pub fn body_text(body: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(body).ok()
}

/// Sent from the fetch task to the encoder; [`ExtractedPage::records`] borrows from the body.
#[derive(Debug, Clone)]
pub struct ExtractedPage {
    pub body: Bytes,
    pub ranges: Vec<Range<usize>>,
    /// The records' top-level members, when the page's reading found them (see
    /// [`JsonDoc::take_record_members`]).
    pub members: Option<RecordMembers>,
}

impl ExtractedPage {
    /// Locate the records of `body` at `path`.
    pub fn new(body: Bytes, path: &str) -> Result<Self, ExtractError> {
        let text = body_text(&body).ok_or(ExtractError::NotUtf8)?;
        let mut doc = JsonDoc::parse_with_records(text, path)?;
        let ranges = Self::ranges_of(text, &doc.records(path)?);
        let members = doc.take_record_members(path);
        Ok(Self {
            body,
            ranges,
            members,
        })
    }

    /// Byte ranges of `records` (slices of `text`) within `text`.
    pub fn ranges_of(text: &str, records: &[&str]) -> Vec<Range<usize>> {
        let base = text.as_ptr() as usize;
        records
            .iter()
            .map(|r| {
                // Every record is a sub-slice of `text` (borrowed from it by the reading), so
                // the difference of the pointers is its offset.
                let start = r.as_ptr() as usize - base;
                start..start + r.len()
            })
            .collect()
    }

    /// The records' raw JSON texts.
    pub fn records(&self) -> Vec<&str> {
        // The body was validated as UTF-8 when the page was built, and every range lies on
        // character boundaries of a JSON value.
        let text = body_text(&self.body).unwrap_or("");
        self.ranges
            .iter()
            .filter_map(|r| text.get(r.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_walk_objects_and_arrays() {
        let body = r#" {"items":[{"id":1},{"id":2}],"meta":{"next":"a+b/c=","n":3,"more":true},"x\"y":1} "#;
        let doc = JsonDoc::parse(body).unwrap();
        assert_eq!(
            doc.get_text("meta.next").unwrap().as_deref(),
            Some("a+b/c=")
        );
        assert_eq!(doc.get_u64("meta.n").unwrap(), Some(3));
        assert_eq!(doc.get_bool("meta.more").unwrap(), Some(true));
        assert_eq!(doc.get("items.1.id").unwrap().unwrap().get(), "2");
        assert!(doc.get("meta.missing").unwrap().is_none());
        assert!(doc.get("items.x").unwrap().is_none());
        assert_eq!(doc.get("x\"y").unwrap().unwrap().get(), "1");
        assert_eq!(doc.top_level_keys(), vec!["items", "meta", "x\"y"]);
    }

    #[test]
    fn object_pages_are_validated_whole_and_looked_up_by_member() {
        // The first value of a repeated key wins, as a scan from the start would find it.
        let doc = JsonDoc::parse(r#"{"c":"one","items":[],"c":"two"}"#).unwrap();
        assert_eq!(doc.get_text("c").unwrap().as_deref(), Some("one"));
        assert_eq!(doc.top_level_keys(), vec!["c", "items"]);
        // Anything invalid anywhere, or after the value, fails the parse.
        for bad in [
            r#"{"items":[{"id":1},{"id":]}"#,
            r#"{"items":[],"next":"a\qb"}"#,
            r#"{"items":[]} {"more":1}"#,
            r#"{"items":[]}]"#,
            "{\"items\":[],\"s\":\"tab\there\"}",
        ] {
            assert!(
                matches!(JsonDoc::parse(bad), Err(ExtractError::InvalidJson(_))),
                "{bad}"
            );
        }
        // Array roots still walk by index, and the root of an object page is reachable.
        let arr = JsonDoc::parse(" [{\"id\":7}]\n").unwrap();
        assert_eq!(arr.get("0.id").unwrap().unwrap().get(), "7");
        assert_eq!(arr.records("").unwrap().len(), 1);
        let obj = JsonDoc::parse("\t{\"a\":1}\r\n").unwrap();
        assert_eq!(obj.get("").unwrap().unwrap().get(), r#"{"a":1}"#);
    }

    #[test]
    fn records_split_while_parsing_match_the_two_pass_walk() {
        let bodies = [
            r#"{"items":[{"id":1},{"id":2,"x":[1,{"y":"]"}]}],"next":"c"}"#,
            r#"{"next":"c","items":[]}"#,
            r#"{"items":null}"#,
            r#"{"items":{"id":1}}"#,
            r#"{"items":"text"}"#,
            r#"{"items":12.5}"#,
            r#"{"items":true}"#,
            r#"{"other":[]}"#,
            r#"{"items":[{"id":1},2]}"#,
            r#"{"items":[{"id":1}],"items":[{"id":2},{"id":3}]}"#,
            r#" [{"id":1}] "#,
        ];
        let show = |r: Result<Vec<&str>, ExtractError>| match r {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("error: {e}"),
        };
        for body in bodies {
            for path in ["items", ""] {
                let once = JsonDoc::parse_with_records(body, path).unwrap();
                let twice = JsonDoc::parse(body).unwrap();
                assert_eq!(
                    show(once.records(path)),
                    show(twice.records(path)),
                    "{body} at '{path}'"
                );
                // Other lookups still see the records member.
                assert_eq!(
                    once.get("items.0.id").unwrap().map(|v| v.get().to_owned()),
                    twice.get("items.0.id").unwrap().map(|v| v.get().to_owned()),
                    "{body}"
                );
                assert_eq!(once.top_level_keys(), twice.top_level_keys());
            }
        }
        // The first of two `items` counts, and the second is still validated.
        let doc = JsonDoc::parse_with_records(r#"{"items":[{"a":1}],"items":[{"b":2}]}"#, "items");
        assert_eq!(doc.unwrap().records("items").unwrap()[0], r#"{"a":1}"#);
        let bad = JsonDoc::parse_with_records(r#"{"items":[{"a":1}],"items":[{"b":]}"#, "items");
        assert!(matches!(bad, Err(ExtractError::InvalidJson(_))));
        // Invalid JSON inside the records fails the parse itself.
        let bad = JsonDoc::parse_with_records(r#"{"items":[{"a":01}],"next":"c"}"#, "items");
        assert!(matches!(bad, Err(ExtractError::InvalidJson(_))));
    }

    /// Everything a lookup can see of a page, from one reading of it.
    fn seen(doc: Result<JsonDoc<'_>, ExtractError>) -> Result<String, String> {
        let doc = doc.map_err(|e| e.to_string())?;
        let records = doc.records("items").map_err(|e| e.to_string());
        let next = doc.get_text("next").map_err(|e| e.to_string());
        let first = doc
            .get("items.0")
            .map(|v| v.map(|v| v.get().to_owned()))
            .map_err(|e| e.to_string());
        Ok(format!(
            "keys {:?} records {records:?} next {next:?} first {first:?}",
            doc.top_level_keys()
        ))
    }

    #[test]
    fn the_scanner_reads_pages_as_serde_does_or_leaves_them_to_serde() {
        // Valid pages of every shape the scanner takes, then every one of them broken at every
        // byte (dropped, or replaced by a byte that matters to the grammar): whenever the
        // scanner takes a page, serde reads the same page the same way; and it takes no page
        // that serde refuses.
        let pages = [
            r#"{"items":[{"id":1,"s":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\udc00","n":-0.5e+10,"t":true,"f":false,"z":null,"o":{"k":[1,[2,{"q":"]}"}]]}}],"next":"c2"}"#,
            " {\t\"next\" : 12 ,\n\"items\" :\r[ { } , {\"a\":[ ]} ] , \"items\": [1] } ",
            r#"{"items":[],"next":null,"meta":{"a":[1,2,{"b":"x"}]}}"#,
            r#"{"items":{"not":"an array"},"next":"x"}"#,
            r#"{"items":[{"k\"ey":1,"caf\u00e9":"\u20AC","emoji":"😀 Zürich"}],"next":""}"#,
            r#"{"items":[{"a":1},2,"s",null],"next":"n"}"#,
            r#"{}"#,
            r#"{"items":[{"big":123456789012345678901234567890,"e":1E-7,"z":0}]}"#,
            // Records with the keys of the record before (compared with them, not searched).
            r#"{"items":[{"id":1,"nm":"a"},{"id":2,"nm":"b"},{"id":3,"n":{}},{"id":4}],"n":1}"#,
        ];
        let replacements = [
            b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'0', b'1', b'-', b'+', b'.',
            b'e', b'x', b'u', b't', b'n', 0x01, 0x1f, b'\n', 0x7f,
        ];
        let mut bodies: Vec<String> = Vec::new();
        for page in pages {
            assert!(
                JsonDoc::scanned(page.trim(), "items").is_some(),
                "the scanner declined {page}"
            );
            bodies.push(page.to_owned());
            let bytes = page.as_bytes();
            for at in 0..bytes.len() {
                let mut dropped = bytes.to_vec();
                dropped.remove(at);
                bodies.extend(String::from_utf8(dropped).ok());
                for &r in &replacements {
                    let mut changed = bytes.to_vec();
                    changed[at] = r;
                    bodies.extend(String::from_utf8(changed).ok());
                }
            }
        }
        let (mut taken, mut refused) = (0, 0);
        for body in &bodies {
            let by_serde = seen(JsonDoc::parse(body));
            let text = body.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
            match JsonDoc::scanned(text, "items") {
                Some(doc) => {
                    taken += 1;
                    assert!(by_serde.is_ok(), "scanned what serde refuses: {body:?}");
                    assert_eq!(seen(Ok(doc)), by_serde, "{body:?}");
                }
                None => {
                    if by_serde.is_err() {
                        refused += 1;
                    }
                }
            }
            // Whichever reads it, the page reads the same through `parse_with_records` (serde's
            // two ways of reading may word an error differently).
            assert_eq!(
                seen(JsonDoc::parse_with_records(body, "items")).map_err(|_| ()),
                by_serde.map_err(|_| ()),
                "{body:?}"
            );
        }
        // Both sides were exercised: many variants stay valid, and most break.
        assert!(
            taken > 200 && refused > 1000,
            "{taken} taken, {refused} refused"
        );
    }

    #[test]
    fn null_and_empty_text_mean_none() {
        let doc = JsonDoc::parse(r#"{"a":null,"b":"","c":false,"d":12}"#).unwrap();
        for p in ["a", "b", "c", "zz"] {
            assert_eq!(doc.get_text(p).unwrap(), None, "{p}");
        }
        assert_eq!(doc.get_text("d").unwrap().as_deref(), Some("12"));
    }

    #[test]
    fn records_are_byte_exact_slices() {
        let body = Bytes::from_static(
            b"{\"data\":{\"rows\":[ {\"a\": 1.50,\"s\":\"x\\u00e9\"} ,{\"b\":[1, 2]}]}}",
        );
        let page = ExtractedPage::new(body, "data.rows").unwrap();
        assert_eq!(
            page.records(),
            vec![r#"{"a": 1.50,"s":"x\u00e9"}"#, r#"{"b":[1, 2]}"#]
        );
        let top = ExtractedPage::new(Bytes::from_static(b"[{\"a\":1}]"), "").unwrap();
        assert_eq!(top.records(), vec![r#"{"a":1}"#]);
        let empty = ExtractedPage::new(Bytes::from_static(b"{\"items\":[]}"), "items").unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn records_errors_name_the_problem() {
        let cases: [(&[u8], &str, &str); 6] = [
            (b"{\"items\":[1]}", "items", "record 0 is a number"),
            (
                b"{\"data\":[]}",
                "items",
                "matched nothing (the page's top-level keys are: data)",
            ),
            (
                b"{\"items\":{\"a\":1}}",
                "items",
                "the records path 'items' is an object, not an array",
            ),
            (b"{\"items\":null}", "items", "matched nothing"),
            (b"{\"items\":[}", "items", "not valid JSON"),
            (b"{\"items\":[]}", "", "the page body is an object"),
        ];
        for (body, path, want) in cases {
            let err = ExtractedPage::new(Bytes::from_static(body), path)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
        let err = ExtractedPage::new(Bytes::from_static(b"\xff"), "").unwrap_err();
        assert!(matches!(err, ExtractError::NotUtf8));
    }
}
