//! A scanner that finds the top-level members of a record already known to be valid JSON,
//! for jsonl's descriptive schema, which only needs each member's name and the kind of its
//! value. Parsing every record a second time with serde (validating every byte and walking
//! every nested value through a visitor) was about a fifth of a jsonl pull's CPU; this finds
//! the same `(key, raw value)` pairs by jumping from quote to quote (eight bytes at a time)
//! and counting brackets.
//!
//! A pull's records mostly do not come here: the page scanner that validated their page
//! (`source::page_scan`) noted their members as it went and hands them over as
//! [`RecordMembers`]; this scanner reads the records it did not cover and those of other
//! sources (objects' records).
//!
//! It trusts what the pull guarantees: a record handed to the chunk writer was cut out of a
//! page that the extractor parsed and validated (`source::extract`). The top level is still
//! checked against the JSON grammar (object braces, string keys, `:` and `,`, literals
//! spelled out, numbers as JSON writes them, nothing after the object), and anything the
//! scanner does not accept — a key with an escape or a control character, a value it cannot
//! place, nesting deeper than [`MAX_DEPTH`] — is *declined*, never guessed: the caller then
//! reads the record with serde, as before. What it does not re-validate is the inside of
//! nested objects and arrays and the characters of string values; on text that is not JSON
//! there (which a pull never hands over), the member is described as `json`/`utf8` where
//! serde would have left the record out of the description.

/// Nesting deeper than this inside a member is declined (serde's own limit is 128 levels;
/// past it serde fails the record, so the scanner leaves such records to serde).
pub(crate) const MAX_DEPTH: usize = 100;

/// Where one top-level member is in its record: byte ranges of the key (between its quotes)
/// and of the raw value text (no surrounding whitespace, exactly as serde's `RawValue` has
/// it). Both ranges start and end next to ASCII bytes, so slicing the record with them is
/// always on character boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    key: (usize, usize),
    value: (usize, usize),
}

impl Member {
    pub(crate) fn key<'a>(&self, record: &'a str) -> &'a str {
        record.get(self.key.0..self.key.1).unwrap_or_default()
    }

    pub(crate) fn value<'a>(&self, record: &'a str) -> &'a str {
        record.get(self.value.0..self.value.1).unwrap_or_default()
    }
}

/// Where the top-level members of each record of a page are, found by whoever read the page
/// (the pull's page scanner finds them while validating it) and handed to the encoder so that
/// it does not walk each record again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordMembers {
    /// Per member: `[key start, key end, value start, value end]`, byte offsets into its
    /// record (the key between its quotes, the value as `Member` has it).
    pub spans: Vec<[u32; 4]>,
    /// Per record, in order: the range of `spans` that holds its members, or `None` where the
    /// encoder is to find them itself (a record that is not an object, or has a key with an
    /// escape).
    pub of_record: Vec<Option<(u32, u32)>>,
    /// Whether the records hold no whitespace outside their strings (their reader saw none):
    /// every value in them is then already compact JSON, as the encoders write values, and
    /// needs no minifying. `false` when not known.
    pub compact: bool,
}

impl RecordMembers {
    /// Whether the record `known` describes came from a page read compact (see
    /// [`Self::compact`]); `false` when nothing is known of it.
    #[inline]
    pub(crate) fn compact_in(known: Option<(&RecordMembers, usize)>) -> bool {
        known.is_some_and(|(members, _)| members.compact)
    }

    /// How many records this describes (known or not).
    pub fn len(&self) -> usize {
        self.of_record.len()
    }

    pub fn is_empty(&self) -> bool {
        self.of_record.is_empty()
    }

    /// Record `index`'s members into `out` (cleared first), when they are known and lie
    /// within `record`; `false` otherwise (then `out` is meaningless).
    pub(crate) fn of(&self, index: usize, record: &str, out: &mut Vec<Member>) -> bool {
        let Some(Some((from, to))) = self.of_record.get(index) else {
            return false;
        };
        let Some(spans) = self.spans.get(*from as usize..*to as usize) else {
            return false;
        };
        // Offsets past the record (a caller's mistake) leave it to the scanner.
        if spans.last().is_some_and(|s| s[3] as usize > record.len()) {
            return false;
        }
        out.clear();
        out.extend(spans.iter().map(|&[k0, k1, v0, v1]| Member {
            key: (k0 as usize, k1 as usize),
            value: (v0 as usize, v1 as usize),
        }));
        true
    }
}

/// The top-level members of the JSON object `record`, in the order written, into `out`
/// (cleared first; a buffer reused across records so that nothing is allocated per record).
/// Returns `false` when the scanner declines the record (see the module docs); `out` is then
/// meaningless.
pub(crate) fn top_level_members(record: &str, out: &mut Vec<Member>) -> bool {
    out.clear();
    let b = record.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return false;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return skip_ws(b, i + 1) == b.len();
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return false;
        }
        let Some(key_end) = string_end(b, i) else {
            return false;
        };
        // An escaped key must be unescaped (serde does it), and a raw control character is
        // invalid JSON: both are left to serde.
        if b[i + 1..key_end - 1]
            .iter()
            .any(|&c| c == b'\\' || c < 0x20)
        {
            return false;
        }
        let key = (i + 1, key_end - 1);
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return false;
        }
        i = skip_ws(b, i + 1);
        let Some(value_end) = value_end(b, i) else {
            return false;
        };
        out.push(Member {
            key,
            value: (i, value_end),
        });
        i = skip_ws(b, value_end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return skip_ws(b, i + 1) == b.len(),
            _ => return false,
        }
    }
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// The index just past the closing quote of the string whose opening quote is at `start`.
#[inline]
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        let at = i + find_string_stop::<false>(b.get(i..)?)?;
        if b[at] == b'"' {
            return Some(at + 1);
        }
        // A backslash escapes the next byte (`\"`, `\\`, `\u…`: the hex digits need no care).
        i = at + 2;
    }
}

/// Whether two field names are the same bytes, compared a word at a time in line: the
/// schema's observer and row reader ask it of every member of every record (their "is it the
/// next field, as in the last record" test), where the names are a few bytes long and a call
/// to the C library's `memcmp` cost more than the comparison (issue 20).
#[inline]
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// [`same_name`] of bytes.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| s.get(at..).and_then(<[u8]>::first_chunk::<8>).copied();
    if n >= 8 {
        // Whole words from the start, then the last word (overlapping the one before it).
        let mut at = 0;
        while at + 8 < n {
            if word(a, at) != word(b, at) {
                return false;
            }
            at += 8;
        }
        return word(a, n - 8) == word(b, n - 8);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// A byte of value 1 in every lane of a word.
const ONES: u64 = 0x0101_0101_0101_0101;

/// The "has a byte below n" word test: marks (sets the high bit of) each byte of `v` below
/// `n`. A borrow can mark a byte above a true match, never below one, so the lowest mark is
/// exact. A byte of `x ^ (ONES * c)` is zero, below 1, where `x` has the byte `c`.
#[inline]
fn below(v: u64, n: u64) -> u64 {
    v.wrapping_sub(ONES * n) & !v & (ONES * 0x80)
}

/// The index of the first byte in `b` that ends a run of plain string text: `"`, `\`, and
/// with `CONTROLS` also a control character (below 0x20), which a string may not hold raw.
/// In line, sixteen bytes at a time on x86-64 (SSE2, which every x86-64 CPU has), then eight
/// (a word), then byte by byte: a record's strings are mostly short, where a library search
/// (`memchr2`) spends more on setting up than on searching. Shared with the page scanner
/// (`source::page_scan`), which validates and so stops at control characters too.
#[inline]
pub(crate) fn find_string_stop<const CONTROLS: bool>(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    while let Some(block) = b.get(i..).and_then(<[u8]>::first_chunk::<16>) {
        let marks = sse2::string_stops::<CONTROLS>(block);
        if marks != 0 {
            return Some(i + marks.trailing_zeros() as usize);
        }
        i += 16;
    }
    while let Some(word) = b.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_le_bytes(bytes);
        let mut marks =
            below(x ^ (ONES * u64::from(b'"')), 1) | below(x ^ (ONES * u64::from(b'\\')), 1);
        if CONTROLS {
            marks |= below(x, 0x20);
        }
        if marks != 0 {
            return Some(i + (marks.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || (CONTROLS && c < 0x20))
        .map(|at| i + at)
}

/// [`find_string_stop`]'s sixteen-byte step.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// One bit per byte of `block`, set where the byte is `"` or `\` or, with `CONTROLS`,
    /// below 0x20.
    #[inline]
    pub(super) fn string_stops<const CONTROLS: bool>(block: &[u8; 16]) -> u32 {
        // SAFETY: SSE2 is part of the x86-64 baseline (every x86-64 target enables it), so
        // its intrinsics are available; the load reads the array's sixteen bytes, and
        // `loadu` has no alignment requirement.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            let byte = |c: u8| _mm_set1_epi8(c as i8);
            let mut marks = _mm_or_si128(
                _mm_cmpeq_epi8(x, byte(b'"')),
                _mm_cmpeq_epi8(x, byte(b'\\')),
            );
            if CONTROLS {
                // Unsigned x <= 0x1f exactly where min(x, 0x1f) == x.
                marks = _mm_or_si128(marks, _mm_cmpeq_epi8(_mm_min_epu8(x, byte(0x1f)), x));
            }
            // The sign bit of each byte: the sixteen low bits.
            _mm_movemask_epi8(marks) as u32 & 0xffff
        }
    }
}

/// Whether `b` holds a backslash (a string value with an escape), a word at a time in line:
/// asked of every string value a csv or parquet column or a timestamp check reads, where the
/// values are a few dozen bytes and `memchr`'s vector set-up cost more than its search.
#[inline]
pub(crate) fn has_backslash(b: &[u8]) -> bool {
    let mut words = b.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        if below(u64::from_le_bytes(bytes) ^ (ONES * u64::from(b'\\')), 1) != 0 {
            return true;
        }
    }
    words.remainder().contains(&b'\\')
}

/// The index just past the value starting at `i`, or `None` to decline.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => container_end(b, i),
        b't' => literal_end(b, i, b"true"),
        b'f' => literal_end(b, i, b"false"),
        b'n' => literal_end(b, i, b"null"),
        b'-' | b'0'..=b'9' => number_end(b, i),
        _ => None,
    }
}

#[inline]
fn literal_end(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b.get(i..i + word.len())
        .filter(|w| *w == word)
        .map(|_| i + word.len())
}

/// A number as JSON writes it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, starting at
/// `i`: the index just past it, or `None` where no number starts there.
#[inline]
pub(crate) fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| -> Option<usize> {
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > from).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(b, i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

/// The index just past the object or array opening at `i`: brackets counted outside
/// strings, strings jumped over. The inside is trusted (see the module docs).
fn container_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *b.get(i)? {
            b'"' => {
                i = string_end(b, i)?;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return None;
                }
            }
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::encode::record::for_each_field;

    /// What serde's walk (`for_each_field`) finds, or `None` when it fails the record.
    fn serde_members(record: &str) -> Option<Vec<(String, String)>> {
        let mut found = Vec::new();
        for_each_field(0, record, |k, v| {
            found.push((k.to_owned(), v.get().to_owned()));
            Ok(())
        })
        .ok()
        .map(|()| found)
    }

    fn scan(record: &str) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        top_level_members(record, &mut out).then(|| {
            out.iter()
                .map(|m| (m.key(record).to_owned(), m.value(record).to_owned()))
                .collect()
        })
    }

    /// Valid records: the scanner either agrees with serde member by member or declines.
    const VALID: &[&str] = &[
        "{}",
        " { } ",
        "\t{\n}\r\n",
        r#"{"a":1}"#,
        r#"{ "a" : 1 , "b" : "x" }"#,
        r#"{"n":-0,"m":0.5,"e":1e10,"E":-2.5E-3,"p":1e+2,"big":123456789012345678901234567890}"#,
        r#"{"t":true,"f":false,"z":null}"#,
        r#"{"s":"tab\tquote\" back\\ slash\\","u":"\u00e9\ud83d\ude00 😀 Zürich"}"#,
        r#"{"s":"ends with backslash \\"}"#,
        r#"{"s":"\\\"","after":1}"#,
        r#"{"o":{"x":{"y":[1,{"z":"]}"}]}},"a":[[],[[]],{}],"next":"}"}"#,
        r#"{"brackets in strings":"{[","v":["]","}",{"k":"{"}]}"#,
        r#"{"dup":1,"dup":"two"}"#,
        r#"{"":0}"#,
        r#"{"ts":"2026-12-01T10:00:00Z","when":"2026-12-01T10:00:00+01:00"}"#,
        r#"{"k\"ey":1}"#,
        r#"{"caf\u00e9":1}"#,
        r#"{"deep":[[[[[[[[[[1]]]]]]]]]]}"#,
        "{\"pretty\": [\n  1,\n  2\n],\n \"x\": {\n \"y\" : null\n}\n}",
    ];

    /// Not valid JSON at the top level, or not an object: the scanner declines, and serde
    /// fails or (for non-objects) reports no members.
    const DECLINED: &[&str] = &[
        "",
        "   ",
        "[1,2]",
        "\"text\"",
        "42",
        "null",
        "{",
        "}",
        r#"{"a"}"#,
        r#"{"a":}"#,
        r#"{"a":1,}"#,
        r#"{,"a":1}"#,
        r#"{"a":1 "b":2}"#,
        r#"{"a":1}}"#,
        r#"{"a":1} x"#,
        r#"{"a":tru}"#,
        r#"{"a":truex}"#,
        r#"{"a":nul}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":-}"#,
        r#"{"a":1e}"#,
        r#"{"a":+1}"#,
        r#"{"a":"unterminated}"#,
        r#"{"a":[1,2}"#,
        r#"{a:1}"#,
        r#"{"a":'x'}"#,
        "{\"new\nline\":1}",
        r#"{"a":1}{"b":2}"#,
    ];

    #[test]
    fn same_name_is_byte_equality_at_every_length() {
        let names: Vec<String> = (0..40)
            .map(|n| "abcdefghij".repeat(4)[..n].to_string())
            .collect();
        for a in &names {
            for b in &names {
                assert_eq!(same_name(a, b), a == b, "{a:?} {b:?}");
            }
            // One byte changed anywhere, at every length.
            for at in 0..a.len() {
                let mut c = a.clone().into_bytes();
                c[at] = b'#';
                let c = String::from_utf8(c).unwrap();
                assert!(!same_name(a, &c) && !same_name(&c, a), "{a:?} at {at}");
            }
        }
        assert!(same_name("café", "café") && !same_name("café", "cafe\u{301}"));
    }

    #[test]
    fn has_backslash_finds_one_anywhere() {
        for len in 0..=24usize {
            for fill in [b'a', b'[', b']', b'"', 0x5b, 0x5d, 0x7f, 0x80, 0xff, 0x00] {
                let plain = vec![fill; len];
                assert!(!has_backslash(&plain), "{plain:?}");
                for at in 0..len {
                    let mut b = plain.clone();
                    b[at] = b'\\';
                    assert!(has_backslash(&b), "{b:?}");
                }
            }
        }
    }

    #[test]
    fn finds_the_first_stop_at_every_position() {
        // Every length up to two sixteen-byte blocks and a word, each stop byte (or none) at
        // every position, among bytes next to the stop bytes, where a borrow in the word test
        // or a signed comparison in the block test would show; with and without control
        // characters as stops.
        let fillers = [
            b'a', b'!', b'#', b'[', b']', b' ', 0x7f, 0x80, 0x9f, 0xa0, 0xff,
        ];
        for len in 0..=40usize {
            for at in 0..=len {
                for &fill in &fillers {
                    for target in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                        let mut b = vec![fill; len];
                        if at < len {
                            b[at] = target;
                        }
                        // A later stop must not win over the first.
                        if at + 3 < len {
                            b[at + 3] = b'"';
                        }
                        let stop = |c: u8, controls: bool| {
                            c == b'"' || c == b'\\' || (controls && c < 0x20)
                        };
                        let with = b.iter().position(|&c| stop(c, true));
                        let without = b.iter().position(|&c| stop(c, false));
                        assert_eq!(find_string_stop::<true>(&b), with, "{b:?}");
                        assert_eq!(find_string_stop::<false>(&b), without, "{b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_serde_on_valid_records() {
        for record in VALID {
            let want = serde_members(record).unwrap_or_else(|| panic!("not valid: {record}"));
            match scan(record) {
                Some(got) => assert_eq!(got, want, "{record}"),
                // Only escaped keys are declined among valid records.
                None => assert!(
                    record.contains(r#"\"ey"#) || record.contains(r"caf\u"),
                    "{record}"
                ),
            }
        }
    }

    #[test]
    fn declines_what_is_not_a_valid_object() {
        for record in DECLINED {
            assert!(scan(record).is_none(), "accepted {record:?}");
            let serde = serde_members(record);
            assert!(serde.is_none(), "serde accepted {record:?}: {serde:?}");
        }
    }

    #[test]
    fn declines_nesting_past_the_limit() {
        let deep = format!(
            r#"{{"a":{}1{}}}"#,
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(scan(&deep).is_none());
        let ok = format!(
            r#"{{"a":{}1{}}}"#,
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert_eq!(scan(&ok).map(|m| m.len()), Some(1));
    }

    #[test]
    fn agrees_with_serde_on_generated_records() {
        // Members of every kind, with escapes and brackets inside strings, at varied spacing.
        let values = [
            "0",
            "-12",
            "3.25e-7",
            "true",
            "null",
            r#""plain""#,
            r#""esc \" \\ \n \u0041 ] } ""#,
            r#"{"in":[1,"]",{"x":"}"}],"s":"\\"}"#,
            "[]",
            r#"[{"a":[[]]},"{"]"#,
        ];
        let spaces = ["", " ", "\n  ", "\t"];
        for n in 0..200usize {
            let mut record = String::from("{");
            for m in 0..(n % 7) {
                let v = values[(n * 7 + m * 3) % values.len()];
                let s = spaces[(n + m) % spaces.len()];
                if m > 0 {
                    record.push(',');
                }
                record.push_str(&format!("{s}\"k{m}\"{s}:{s}{v}{s}"));
            }
            record.push('}');
            let want = serde_members(&record).unwrap_or_else(|| panic!("not valid: {record}"));
            assert_eq!(scan(&record), Some(want), "{record}");
        }
    }
}
