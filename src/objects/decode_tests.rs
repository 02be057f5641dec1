use super::*;
use std::io::Write;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd_of(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 3).unwrap()
}

/// A reader that hands out `step` bytes at a time, so every boundary case of the scanners is
/// hit (a record split across reads, a magic number split across reads).
struct Trickle {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn open_with(data: &[u8], step: usize, opts: &DecodeOptions) -> Result<RecordReader, DecodeError> {
    let input = Trickle {
        data: data.to_vec(),
        at: 0,
        step,
    };
    RecordReader::open("exports/a.dat", Box::new(input), opts)
}

fn read_all_with(
    data: &[u8],
    step: usize,
    opts: &DecodeOptions,
) -> Result<(Detected, Vec<String>), DecodeError> {
    let mut r = open_with(data, step, opts)?;
    let mut out = Vec::new();
    while let Some(rec) = r.next_record()? {
        out.push(rec.to_owned());
    }
    assert_eq!(r.records(), out.len() as u64);
    Ok((r.detected(), out))
}

fn read_all(data: &[u8]) -> Result<(Detected, Vec<String>), DecodeError> {
    read_all_with(data, 1 << 20, &DecodeOptions::default())
}

fn err_of(data: &[u8], opts: &DecodeOptions) -> String {
    let e = read_all_with(data, 7, opts).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("object exports/a.dat: "), "{text}");
    text
}

const JSONL: &[u8] =
    b"{\"id\":1,\"s\":\"a\\\"}\"}\n\n{\"id\":2}\r\n  {\"id\":3,\"n\":[1,{\"x\":\"]\"}]}";
const ARRAY: &[u8] =
    b" \n[ {\"id\":1,\"s\":\"a\\\"}\"} , {\"id\":2},\n{\"id\":3,\"n\":[1,{\"x\":\"]\"}]} ]\n";
const WANT: [&str; 3] = [
    "{\"id\":1,\"s\":\"a\\\"}\"}",
    "{\"id\":2}",
    "{\"id\":3,\"n\":[1,{\"x\":\"]\"}]}",
];

#[test]
fn every_layout_and_compression_gives_the_same_records_whatever_the_read_sizes() {
    let csv: &[u8] = b"id,name\n1,\"a, b\"\n2,\"say \"\"hi\"\"\"\n";
    let csv_want = [
        r#"{"id":"1","name":"a, b"}"#,
        r#"{"id":"2","name":"say \"hi\""}"#,
    ];
    let cases: [(&[u8], Layout, &[&str]); 3] = [
        (JSONL, Layout::JsonLines, &WANT),
        (ARRAY, Layout::JsonArray, &WANT),
        (csv, Layout::Csv, &csv_want),
    ];
    for (plain, layout, want) in cases {
        let variants = [
            (plain.to_vec(), SourceCompression::None),
            (gzip(plain), SourceCompression::Gzip),
            (zstd_of(plain), SourceCompression::Zstd),
        ];
        for (bytes, compression) in variants {
            for step in [1, 2, 3, 5, 64, 1 << 20] {
                let (det, recs) = read_all_with(&bytes, step, &DecodeOptions::default()).unwrap();
                assert_eq!(
                    det,
                    Detected {
                        compression,
                        layout
                    },
                    "step {step}"
                );
                assert_eq!(recs, want, "{layout:?} {compression:?} step {step}");
            }
        }
    }
}

#[test]
fn csv_columns_keep_the_header_order_and_values_are_escaped() {
    let data = "zeta,alpha,\"m \"\"q\"\"\"\n1,\"a\\b\ttab\",\"line\nbreak\u{1}\"\n";
    let (_, recs) = read_all(data.as_bytes()).unwrap();
    assert_eq!(
        recs,
        [r#"{"zeta":"1","alpha":"a\\b\ttab","m \"q\"":"line\nbreak\u0001"}"#]
    );
    let v: serde_json::Value = serde_json::from_str(&recs[0]).unwrap();
    assert_eq!(v["alpha"], "a\\b\ttab");
    assert_eq!(v["m \"q\""], "line\nbreak\u{1}");
}

#[test]
fn concatenated_gzip_members_and_zstd_frames_are_read_whole() {
    let mut two = gzip(b"{\"a\":1}\n");
    two.extend(gzip(b"{\"a\":2}\n"));
    assert_eq!(read_all(&two).unwrap().1, ["{\"a\":1}", "{\"a\":2}"]);
    let mut frames = zstd_of(b"[{\"a\":1},");
    frames.extend(zstd_of(b"{\"a\":2}]"));
    assert_eq!(read_all(&frames).unwrap().1, ["{\"a\":1}", "{\"a\":2}"]);
}

#[test]
fn records_under_a_path_are_found_past_other_members() {
    let doc = br#"{"meta":{"n":[1,2,{"rows":"no"}],"s":"x}]"},"data":{"count":2,"rows":[{"a":1},{"a":[2]}],"after":true},"z":null}"#;
    let opts = DecodeOptions {
        records_path: Some("data.rows".into()),
        ..Default::default()
    };
    for step in [1, 4, 1 << 20] {
        let (det, recs) = read_all_with(doc, step, &opts).unwrap();
        assert_eq!(det.layout, Layout::JsonArray);
        assert_eq!(recs, [r#"{"a":1}"#, r#"{"a":[2]}"#]);
    }
    let gz = gzip(doc);
    assert_eq!(read_all_with(&gz, 3, &opts).unwrap().1.len(), 2);
    // An empty array, with the document's end checked.
    let empty = br#"{"data":{"rows":[]}}"#;
    assert!(read_all_with(empty, 2, &opts).unwrap().1.is_empty());
}

#[test]
fn empty_objects_hold_no_records() {
    for data in [&b""[..], b"  \n\n", b"[]", b" [ ] \n", b"\xef\xbb\xbf"] {
        assert!(read_all(data).unwrap().1.is_empty(), "{data:?}");
        assert!(read_all(&gzip(data)).unwrap().1.is_empty());
        assert!(read_all(&zstd_of(data)).unwrap().1.is_empty());
    }
    // A header row alone: csv with no records.
    let (det, recs) = read_all(b"a,b\n").unwrap();
    assert_eq!(det.layout, Layout::Csv);
    assert!(recs.is_empty());
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let (det, recs) = read_all(b"\xef\xbb\xbf{\"a\":1}\n").unwrap();
    assert_eq!(det.layout, Layout::JsonLines);
    assert_eq!(recs, ["{\"a\":1}"]);
    let (det, recs) = read_all(b"\xef\xbb\xbfa\n1\n").unwrap();
    assert_eq!(det.layout, Layout::Csv);
    assert_eq!(recs, [r#"{"a":"1"}"#]);
}

#[test]
fn skipping_resumes_after_the_landed_records_and_fails_when_there_are_fewer() {
    let mut r = open_with(JSONL, 3, &DecodeOptions::default()).unwrap();
    r.skip(2).unwrap();
    assert_eq!(r.next_record().unwrap(), Some(WANT[2]));
    assert_eq!(r.next_record().unwrap(), None);
    let mut r = open_with(ARRAY, 3, &DecodeOptions::default()).unwrap();
    let e = r.skip(5).unwrap_err().to_string();
    assert!(
        e.contains("5 of its records") && e.contains("only 3") && e.contains("--restart"),
        "{e}"
    );
}

#[test]
fn malformed_objects_fail_clearly_naming_the_object_and_the_place() {
    let d = DecodeOptions::default();
    let cases: Vec<(Vec<u8>, DecodeOptions, &[&str])> = vec![
        // jsonl: a broken line, with its number.
        (
            b"{\"a\":1}\n{\"a\":\n".to_vec(),
            d.clone(),
            &["line 2", "not valid JSON"],
        ),
        // jsonl: one pretty-printed document: points at --records-path.
        (
            b"{\n  \"rows\": []\n}\n".to_vec(),
            d.clone(),
            &["line 1", "--records-path"],
        ),
        // jsonl: a record that is not an object.
        (
            b"{\"a\":1}\n[1,2]\n".to_vec(),
            d.clone(),
            &["line 2", "an array, not a JSON object"],
        ),
        // array: an element that is not an object.
        (
            b"[{\"a\":1}, 7]".to_vec(),
            d.clone(),
            &["record 2", "a number, not a JSON object"],
        ),
        // array: truncated.
        (b"[{\"a\":1}, {\"a\":".to_vec(), d.clone(), &["truncated"]),
        (b"[{\"a\":1}".to_vec(), d.clone(), &["truncated"]),
        // array: a missing comma.
        (
            b"[{\"a\":1} {\"a\":2}]".to_vec(),
            d.clone(),
            &["expected ',' or ']'"],
        ),
        // array: garbage after the end.
        (b"[{\"a\":1}] x".to_vec(), d.clone(), &["after the end"]),
        // array: a broken element.
        (
            b"[{\"a\":tru}]".to_vec(),
            d.clone(),
            &["record 1", "not valid JSON"],
        ),
        // csv: a row longer than the header.
        (
            b"a,b\n1,2\n3,4,5\n".to_vec(),
            d.clone(),
            &["line 3", "3 fields", "2 columns"],
        ),
        // csv: a duplicated column.
        (
            b"a,b,a\n1,2,3\n".to_vec(),
            d.clone(),
            &["'a' is named twice"],
        ),
        // binary content.
        (
            vec![
                0x50, 0x4b, 0x03, 0x04, 0xff, 0xfe, 0x00, 0x81, b'\n', 0xc3, 0x28,
            ],
            d.clone(),
            &["not UTF-8", "--land as-is"],
        ),
        // a truncated gzip stream.
        (
            gzip(JSONL)[..20].to_vec(),
            d.clone(),
            &["gzip", "truncated or corrupt"],
        ),
        // a zstd stream cut short.
        (
            {
                let z = zstd_of(ARRAY);
                z[..z.len() - 3].to_vec()
            },
            d.clone(),
            &["zstd", "truncated or corrupt"],
        ),
    ];
    for (data, opts, wants) in cases {
        let e = err_of(&data, &opts);
        for w in wants {
            assert!(e.contains(w), "{w:?} not in: {e}");
        }
    }
}

#[test]
fn a_records_path_that_leads_nowhere_says_what_is_there() {
    let opts = |p: &str| DecodeOptions {
        records_path: Some(p.into()),
        ..Default::default()
    };
    let doc = br#"{"data":{"count":2,"rowz":[]},"meta":1}"#;
    let e = err_of(doc, &opts("data.rows"));
    assert!(
        e.contains("'rows' is not there") && e.contains("'count', 'rowz'"),
        "{e}"
    );
    let e = err_of(doc, &opts("meta.rows"));
    assert!(e.contains("'meta' is not a JSON object"), "{e}");
    let e = err_of(doc, &opts("data.count"));
    assert!(e.contains("not an array of records"), "{e}");
    let e = err_of(b"[{\"a\":1}]", &opts("rows"));
    assert!(e.contains("drop --records-path"), "{e}");
    let e = err_of(br#"{"rows":[{"a":1}],"x":"#, &opts("rows"));
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn records_over_the_limit_are_refused_before_they_are_held() {
    let opts = DecodeOptions {
        max_record_bytes: 16,
        ..Default::default()
    };
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(1000));
    let e = err_of(format!("{{\"a\":1}}\n{big}\n").as_bytes(), &opts);
    assert!(
        e.contains("line 2") && e.contains("larger than 16 bytes"),
        "{e}"
    );
    let e = err_of(format!("[{big}]").as_bytes(), &opts);
    assert!(e.contains("larger than 16 bytes"), "{e}");
    let e = err_of(format!("a\n{}\n", "x".repeat(100)).as_bytes(), &opts);
    assert!(e.contains("larger than 16 bytes"), "{e}");
}

#[test]
fn a_large_object_streams_in_bounded_memory() {
    // 200k records through gzip: the reader never holds more than its buffer and a record.
    let mut plain = Vec::new();
    for i in 0..200_000u32 {
        plain.extend_from_slice(
            format!("{{\"id\":{i},\"pad\":\"{}\"}}\n", "y".repeat(20)).as_bytes(),
        );
    }
    let gz = gzip(&plain);
    let mut r =
        RecordReader::open("big", Box::new(Cursor::new(gz)), &DecodeOptions::default()).unwrap();
    let mut n = 0u32;
    while let Some(rec) = r.next_record().unwrap() {
        assert!(rec.starts_with(&format!("{{\"id\":{n},")));
        n += 1;
    }
    assert_eq!(n, 200_000);
}
