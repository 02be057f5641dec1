//! Reading one record's raw JSON text without building a tree: the fields of an object are
//! visited as borrowed `(key, raw value text)` pairs, and a raw value is classified by its
//! first byte. csv, parquet and schema inference share this, so they agree on what a value is.
//!
//! Nothing here allocates per field except for keys or strings that contain escapes, which
//! must be unescaped.

use super::EncodeError;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// The JSON type of a raw value, decided by its first byte (the text is already validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    Null,
    Bool,
    /// A number written without fraction or exponent that fits an `i64`.
    Int,
    /// Any other number (fraction, exponent, or an integer beyond `i64`).
    Float,
    String,
    Object,
    Array,
}

impl JsonType {
    pub(crate) fn of(raw: &str) -> JsonType {
        match raw.as_bytes().first() {
            Some(b'n') => JsonType::Null,
            Some(b't' | b'f') => JsonType::Bool,
            Some(b'"') => JsonType::String,
            Some(b'{') => JsonType::Object,
            Some(b'[') => JsonType::Array,
            _ => {
                if parse_int(raw).is_some() {
                    JsonType::Int
                } else {
                    JsonType::Float
                }
            }
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Bool => "a boolean",
            JsonType::Int => "an integer",
            JsonType::Float => "a non-integer number",
            JsonType::String => "a string",
            JsonType::Object => "an object",
            JsonType::Array => "an array",
        }
    }
}

/// The value of a JSON integer literal, if it is one and fits an `i64`.
#[inline]
pub(crate) fn parse_int(raw: &str) -> Option<i64> {
    // `i64::from_str` accepts a leading '+', JSON does not write one; everything else it
    // accepts is a JSON integer. Fractions and exponents fail to parse, as they should.
    raw.parse::<i64>().ok()
}

/// The text of a JSON string literal, unescaped. Borrowed unless it contains escapes.
pub(crate) fn unescape(raw: &str) -> Result<Cow<'_, str>, serde_json::Error> {
    let inner = raw
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(raw);
    if super::scan::has_backslash(inner.as_bytes()) {
        serde_json::from_str::<String>(raw).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(inner))
    }
}

/// Valid JSON text with the insignificant whitespace removed; borrowed when there is none.
///
/// A hand-written pass rather than a serde round trip: a round trip through `Value` would
/// reorder keys and turn big or precise numbers into `f64`, and `RawValue` re-serialises
/// verbatim. Whitespace outside strings is the only thing removed.
pub(crate) fn minify(json: &str) -> Cow<'_, str> {
    let bytes = json.as_bytes();
    // Most values have no whitespace outside their strings (`{"name":"Jane Doe"}`): found
    // without copying, by jumping from string to string.
    let Some(first) = first_whitespace_outside_strings(bytes) else {
        return Cow::Borrowed(json);
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    // `first` is outside any string.
    let mut in_string = false;
    let mut escaped = false;
    for &b in &bytes[first..] {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !is_json_whitespace(b) {
            out.push(b);
        }
    }
    // Only ASCII whitespace bytes were removed, and never from inside a multi-byte sequence
    // (those are all >= 0x80), so the result is still UTF-8.
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(json),
    }
}

/// A non-string value as the encoders write it: [`minify`]d, unless the reader of the
/// record's page found its records compact ([`super::RecordMembers::compact`]), when it is
/// already.
#[inline]
pub(crate) fn compact_json<'a>(
    json: &'a str,
    known: Option<(&super::RecordMembers, usize)>,
) -> Cow<'a, str> {
    if super::RecordMembers::compact_in(known) {
        Cow::Borrowed(json)
    } else {
        minify(json)
    }
}

/// The first whitespace byte outside a string, if any (strings skipped a word at a time).
fn first_whitespace_outside_strings(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                i += 1;
                loop {
                    // An unterminated string: no whitespace outside it follows.
                    let at = i + super::scan::find_string_stop::<false>(b.get(i..)?)?;
                    if b[at] == b'"' {
                        i = at + 1;
                        break;
                    }
                    i = at + 2;
                }
            }
            c if is_json_whitespace(c) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[inline]
fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Call `on_field(key, raw_value)` for each field of the JSON object in `record`, in the
/// order written. `record_no` names the record in errors. A record that is not an object is
/// [`EncodeError::NotAnObject`]; an error returned by `on_field` stops the walk and is
/// returned as is.
pub(crate) fn for_each_field<'a, F>(
    record_no: u64,
    record: &'a str,
    on_field: F,
) -> Result<(), EncodeError>
where
    F: FnMut(&str, &'a RawValue) -> Result<(), EncodeError>,
{
    let first = record.bytes().find(|b| !is_json_whitespace(*b));
    if first != Some(b'{') {
        // Say "not JSON" rather than "not an object" for garbage, which is the likelier fault.
        return match serde_json::from_str::<&RawValue>(record) {
            Ok(_) => Err(EncodeError::NotAnObject { record: record_no }),
            Err(source) => Err(EncodeError::InvalidRecord {
                record: record_no,
                source,
            }),
        };
    }
    let mut visitor = FieldVisitor {
        on_field,
        failure: None,
    };
    let mut de = serde_json::Deserializer::from_str(record);
    let parsed = de::Deserializer::deserialize_map(&mut de, &mut visitor).and_then(|()| de.end());
    match (visitor.failure, parsed) {
        (Some(err), _) => Err(err),
        (None, Ok(())) => Ok(()),
        (None, Err(source)) => Err(EncodeError::InvalidRecord {
            record: record_no,
            source,
        }),
    }
}

/// Like [`for_each_field`], but with `depth > 0` a field whose value is an object is not
/// reported itself: its own fields are, named `parent.child`, down to `depth` levels of
/// objects (`--flatten`). Arrays, and objects below the depth, are reported whole. `name` is
/// a scratch buffer reused across calls so that flattening allocates nothing per field.
pub(crate) fn for_each_leaf<'a>(
    record_no: u64,
    record: &'a str,
    depth: usize,
    name: &mut String,
    on_field: &mut dyn FnMut(&str, &'a RawValue) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    if depth == 0 && name.is_empty() {
        return for_each_field(record_no, record, |k, v| on_field(k, v));
    }
    let base = name.len();
    for_each_field(record_no, record, |k, v| {
        name.truncate(base);
        name.push_str(k);
        let text: &'a str = v.get();
        let result = if depth > 0 && JsonType::of(text) == JsonType::Object {
            name.push('.');
            for_each_leaf(record_no, text, depth - 1, name, on_field)
        } else {
            on_field(name, v)
        };
        name.truncate(base);
        result
    })
}

struct FieldVisitor<F> {
    on_field: F,
    /// The callback's own error, kept aside so it is not flattened into a serde message.
    failure: Option<EncodeError>,
}

impl<'de, F> Visitor<'de> for &mut FieldVisitor<F>
where
    F: FnMut(&str, &'de RawValue) -> Result<(), EncodeError>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'de RawValue = map.next_value()?;
            if let Err(err) = (self.on_field)(&key, value) {
                self.failure = Some(err);
                return Err(de::Error::custom("stopped by the field callback"));
            }
        }
        Ok(())
    }
}

/// Deserialises an object key borrowed from the input when it has no escapes. (A plain
/// `Cow<str>` would always allocate.)
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The byte-by-byte minifier `minify` replaced, kept as the reference it must agree with.
    fn minify_reference(json: &str) -> String {
        let mut out = Vec::new();
        let (mut in_string, mut escaped) = (false, false);
        for &b in json.as_bytes() {
            if in_string {
                out.push(b);
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else if b == b'"' {
                in_string = true;
                out.push(b);
            } else if !is_json_whitespace(b) {
                out.push(b);
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn compact_json_minifies_unless_the_page_was_read_compact() {
        let spaced = r#"{ "a" : [1, 2] }"#;
        let mut members = super::super::RecordMembers::default();
        assert_eq!(compact_json(spaced, None), r#"{"a":[1,2]}"#);
        assert_eq!(compact_json(spaced, Some((&members, 0))), r#"{"a":[1,2]}"#);
        members.compact = true;
        let compact = r#"{"a":[1,"x y"]}"#;
        assert!(
            matches!(compact_json(compact, Some((&members, 0))), Cow::Borrowed(c) if c == compact)
        );
    }

    #[test]
    fn minify_agrees_with_the_reference() {
        let cases = [
            "",
            "{}",
            r#"{"name":"Jane Doe","tags":["a b","c\td"]}"#,
            r#"{ "a" : [ 1 , 2 ] }"#,
            "{\n  \"x\": \"in string \\n and \\\" quote \",\n  \"y\":\t[ ]\r\n}",
            r#"{"esc":"\\","next" : "v"}"#,
            r#"{"q":"\"","w": 1}"#,
            r#"["unterminated   "#,
            r#"["ends with backslash\"#,
            "  42  ",
            r#""only a string with spaces""#,
            "{\"caf\u{e9}\" : \"Zürich  日本\"}",
        ];
        for case in cases {
            assert_eq!(minify(case), minify_reference(case), "{case:?}");
        }
        // Borrowed whenever nothing outside strings is whitespace.
        assert!(matches!(minify(r#"{"n":"a b c"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn classifies_raw_values() {
        let cases = [
            ("null", JsonType::Null),
            ("true", JsonType::Bool),
            ("false", JsonType::Bool),
            ("0", JsonType::Int),
            ("-9223372036854775808", JsonType::Int),
            ("9223372036854775808", JsonType::Float),
            ("1.5", JsonType::Float),
            ("1e3", JsonType::Float),
            ("-0.0", JsonType::Float),
            ("\"x\"", JsonType::String),
            ("{}", JsonType::Object),
            ("[1]", JsonType::Array),
        ];
        for (raw, want) in cases {
            assert_eq!(JsonType::of(raw), want, "{raw}");
        }
    }

    #[test]
    fn unescapes_only_when_needed() {
        assert!(matches!(
            unescape("\"plain, text\"").unwrap(),
            Cow::Borrowed("plain, text")
        ));
        assert_eq!(unescape(r#""a\"b\nc\u00e9""#).unwrap(), "a\"b\ncé");
        assert_eq!(unescape(r#""\ud83d\ude00""#).unwrap(), "😀");
    }

    #[test]
    fn minifies_outside_strings_only() {
        let cases = [
            ("{\"a\":1}", "{\"a\":1}"),
            ("{ \"a\" : [ 1 , 2 ] }", "{\"a\":[1,2]}"),
            (
                "{\n  \"a b\": \"x \\\" y\\\\\",\r\n\t\"c\": {}\n}",
                "{\"a b\":\"x \\\" y\\\\\",\"c\":{}}",
            ),
            ("{\"é 😀\" : \"  \"}", "{\"é 😀\":\"  \"}"),
            ("12345678901234567890123", "12345678901234567890123"),
        ];
        for (input, want) in cases {
            assert_eq!(minify(input), want, "{input:?}");
        }
        assert!(matches!(minify("[1,2]"), Cow::Borrowed(_)));
    }

    #[test]
    fn walks_fields_in_order_with_escaped_keys() {
        let mut seen = Vec::new();
        for_each_field(0, r#" {"b": 1, "a\"k": {"x": [1]}, "c": null} "#, |k, v| {
            seen.push((k.to_owned(), v.get().to_owned()));
            Ok(())
        })
        .unwrap();
        let want = [("b", "1"), ("a\"k", "{\"x\": [1]}"), ("c", "null")];
        assert_eq!(seen.len(), want.len());
        for ((k, v), (wk, wv)) in seen.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
    }

    #[test]
    fn reports_bad_records() {
        let noop = |_: &str, _: &RawValue| Ok(());
        let cases = [
            ("[1,2]", "not a JSON object"),
            ("42", "not a JSON object"),
            ("{\"a\":", "not valid JSON"),
            ("{\"a\":1} x", "not valid JSON"),
            ("nope", "not valid JSON"),
        ];
        for (record, want) in cases {
            let err = for_each_field(7, record, noop).unwrap_err().to_string();
            assert!(
                err.contains("record 7") && err.contains(want),
                "{record}: {err}"
            );
        }
        let err = for_each_field(3, r#"{"a":1,"b":2}"#, |k, _| {
            if k == "b" {
                Err(EncodeError::SchemaMismatch {
                    record: 3,
                    message: "b".into(),
                })
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(matches!(err, EncodeError::SchemaMismatch { record: 3, .. }));
    }
}
