use super::*;
use crate::encode::{EncodeOptions, Format};
use crate::objects::ObjectLocation;
use crate::sink::local::LocalSink;
use crate::sink::PutMode;
use std::io::Write;

#[derive(Default)]
struct NoReport;
impl Reporter for NoReport {
    fn report(&self, _event: Event) {}
}

/// Keeps every saved progress; fails the save numbered `fail_at` (0-based) as a killed
/// process would fail to record it.
#[derive(Default)]
struct MemorySaver {
    saved: Vec<RecordsProgress>,
    fail_at: Option<usize>,
    calls: usize,
}

#[async_trait]
impl ProgressSaver for MemorySaver {
    async fn save(&mut self, object: &ObjectRef, p: &RecordsProgress) -> Result<(), RecordsError> {
        let n = self.calls;
        self.calls += 1;
        if self.fail_at == Some(n) {
            return Err(RecordsError::Checkpoint {
                object: object.name.clone(),
                message: "killed".into(),
            });
        }
        self.saved.push(p.clone());
        Ok(())
    }
}

fn object(name: &str) -> ObjectRef {
    ObjectRef {
        location: ObjectLocation::S3 {
            bucket: "b".into(),
            key: format!("exports/{name}"),
        },
        name: name.into(),
        size: None,
        checksum: None,
        records: None,
        etag: Some("e1".into()),
        version_id: None,
        last_modified: None,
    }
}

fn output(format: Format, rows: u64) -> OutputConfig {
    OutputConfig {
        encode: EncodeOptions::new(format, None),
        chunk_bytes: 1 << 30,
        chunk_rows: Some(rows),
        schema: Default::default(),
    }
}

/// `data` cut into pieces of `piece` bytes, as ranged GETs deliver them.
fn stream_of(data: &[u8], piece: usize) -> ByteStream {
    let pieces: Vec<Result<Bytes, ReadFailure>> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(pieces).boxed()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Case<'a> {
    sink: Arc<dyn Sink>,
    object: &'a ObjectRef,
    data: &'a [u8],
    output: &'a OutputConfig,
    progress: RecordsProgress,
    stop: StopSignal,
}

async fn land(case: Case<'_>, saver: &mut MemorySaver) -> Result<RecordsEnd, RecordsError> {
    land_records(RecordsInput {
        object: case.object,
        bytes: stream_of(case.data, 1000),
        decode: DecodeOptions::default(),
        output: case.output,
        sink: case.sink,
        run_id: "run1",
        upload_concurrency: 3,
        progress: case.progress,
        schema: None,
        previous_schema: None,
        saver,
        reporter: Arc::new(NoReport),
        stop: case.stop,
    })
    .await
}

fn records(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| format!("{{\"id\":{i},\"name\":\"n{i}\",\"v\":{}.5}}", i % 7))
        .collect()
}

fn jsonl_of(recs: &[String]) -> Vec<u8> {
    let mut s = recs.join("\n");
    s.push('\n');
    s.into_bytes()
}

/// The ids in a landed jsonl.gz chunk, in order.
fn ids_in_jsonl_gz(dir: &std::path::Path, file: &ManifestFile) -> Vec<u64> {
    let bytes = std::fs::read(dir.join(&file.path)).unwrap();
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn every_output_format_from_every_layout_and_compression() {
    let recs = records(250);
    let jsonl = jsonl_of(&recs);
    let array = format!("[{}]", recs.join(",\n")).into_bytes();
    let mut csv = String::from("id,name,v\n");
    for i in 0..250 {
        csv.push_str(&format!("{i},n{i},{}.5\n", i % 7));
    }
    let inputs: [(&str, Vec<u8>); 3] = [
        ("jsonl", jsonl),
        ("array", array),
        ("csv", csv.into_bytes()),
    ];
    for (layout, plain) in inputs {
        let variants = [
            ("plain", plain.clone()),
            ("gz", gzip(&plain)),
            ("zst", zstd::bulk::compress(&plain, 3).unwrap()),
        ];
        for (codec, data) in variants {
            for format in [Format::JSONL, Format::CSV, Format::PARQUET] {
                let dir = tempfile::tempdir().unwrap();
                let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
                let mut obj = object(&format!("in/{layout}.{codec}"));
                obj.records = Some(250);
                let out = output(format, 100);
                let mut saver = MemorySaver::default();
                let end = land(
                    Case {
                        sink,
                        object: &obj,
                        data: &data,
                        output: &out,
                        progress: RecordsProgress::default(),
                        stop: StopSignal::never(),
                    },
                    &mut saver,
                )
                .await
                .unwrap_or_else(|e| panic!("{layout} {codec} {format}: {e}"));
                let p = &end.progress;
                assert!(p.done);
                assert_eq!(p.records, 250);
                assert_eq!(
                    p.files.iter().map(|f| f.rows).collect::<Vec<_>>(),
                    [100, 100, 50]
                );
                assert_eq!(saver.saved.last(), Some(p));
                for f in &p.files {
                    assert!(f.path.starts_with("run1/part-in-"), "{}", f.path);
                    assert!(f.path.ends_with(&out.encode.extension()));
                    let stored = std::fs::read(dir.path().join(&f.path)).unwrap();
                    assert_eq!(stored.len() as u64, f.bytes);
                }
                if format == Format::JSONL && layout != "csv" {
                    let ids: Vec<u64> = p
                        .files
                        .iter()
                        .flat_map(|f| ids_in_jsonl_gz(dir.path(), f))
                        .collect();
                    assert_eq!(ids, (0..250).collect::<Vec<u64>>());
                }
                if format == Format::PARQUET {
                    let bytes = std::fs::read(dir.path().join(&p.files[2].path)).unwrap();
                    let reader =
                        parquet::file::reader::SerializedFileReader::new(Bytes::from(bytes))
                            .unwrap();
                    use parquet::file::reader::FileReader;
                    assert_eq!(reader.metadata().file_metadata().num_rows(), 50);
                }
                let schema = end.schema.expect("a schema");
                let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
                assert_eq!(names, ["id", "name", "v"], "{layout} {codec} {format}");
                assert_eq!(
                    p.layout.as_deref(),
                    Some(match layout {
                        "array" => "json-array",
                        l => l,
                    })
                );
            }
        }
    }
}

/// A kill at every save: the killed attempt's chunk is on storage but not in the progress;
/// the rerun removes or overwrites it and every record lands exactly once, in order.
#[tokio::test]
async fn a_kill_at_any_save_then_a_rerun_lands_every_record_exactly_once() {
    let recs = records(1000);
    let data = gzip(&jsonl_of(&recs));
    let out = output(Format::JSONL, 90);
    let obj = object("big.jsonl.gz");
    for kill_at in 0..14 {
        let dir = tempfile::tempdir().unwrap();
        let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
        let mut first = MemorySaver {
            fail_at: Some(kill_at),
            ..Default::default()
        };
        let killed = land(
            Case {
                sink: sink.clone(),
                object: &obj,
                data: &data,
                output: &out,
                progress: RecordsProgress::default(),
                stop: StopSignal::never(),
            },
            &mut first,
        )
        .await;
        if killed.is_ok() {
            // Uploads run three at once, so one save may cover several chunks: fewer saves
            // than chunks. Every save before this one was a kill point.
            assert!(kill_at >= 5, "only {kill_at} saves");
            break;
        }
        // A killed process leaves no thread behind; here the killed attempt's uploads on
        // blocking threads may still be finishing: let them, as a real kill would have.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            matches!(killed, Err(RecordsError::Checkpoint { .. })),
            "kill at {kill_at}"
        );
        let resume_from = first.saved.last().cloned().unwrap_or_default();
        let mut second = MemorySaver::default();
        let end = land(
            Case {
                sink: sink.clone(),
                object: &obj,
                data: &data,
                output: &out,
                progress: resume_from.clone(),
                stop: StopSignal::never(),
            },
            &mut second,
        )
        .await
        .unwrap();
        let p = end.progress;
        assert!(p.done);
        assert_eq!(p.records, 1000);
        assert_eq!(p.files.len(), 12);
        assert_eq!(&p.files[..resume_from.files.len()], &resume_from.files[..]);
        let ids: Vec<u64> = p
            .files
            .iter()
            .flat_map(|f| ids_in_jsonl_gz(dir.path(), f))
            .collect();
        assert_eq!(ids, (0..1000).collect::<Vec<u64>>(), "kill at {kill_at}");
        // Nothing on storage but the progress's files.
        let stored: Vec<String> = sink
            .list("run1/")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.path)
            .collect();
        let listed: Vec<String> = p.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(stored, listed);
    }
}

#[tokio::test]
async fn leftovers_past_the_progress_are_removed_when_the_rerun_writes_fewer_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
    let obj = object("x.jsonl");
    let prefix = chunk_prefix("run1", &obj);
    for seq in 0..5 {
        sink.put(
            &format!("{prefix}{seq:05}.jsonl.gz"),
            Bytes::from_static(b"junk"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    }
    // Another object's chunk is left alone.
    let other = chunk_prefix("run1", &object("y.jsonl"));
    sink.put(
        &format!("{other}00003.jsonl.gz"),
        Bytes::from_static(b"keep"),
        PutMode::Overwrite,
    )
    .await
    .unwrap();
    let data = jsonl_of(&records(10));
    let out = output(Format::JSONL, 100);
    let end = land(
        Case {
            sink: sink.clone(),
            object: &obj,
            data: &data,
            output: &out,
            progress: RecordsProgress::default(),
            stop: StopSignal::never(),
        },
        &mut MemorySaver::default(),
    )
    .await
    .unwrap();
    assert_eq!(end.progress.files.len(), 1);
    let stored: Vec<String> = sink
        .list("run1/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.contains(&end.progress.files[0].path));
}

#[tokio::test]
async fn a_wrong_record_count_fails_after_landing_and_a_rerun_says_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
    let mut obj = object("short.jsonl");
    obj.records = Some(11);
    let data = jsonl_of(&records(10));
    let out = output(Format::JSONL, 4);
    let mut saver = MemorySaver::default();
    let e = land(
        Case {
            sink: sink.clone(),
            object: &obj,
            data: &data,
            output: &out,
            progress: RecordsProgress::default(),
            stop: StopSignal::never(),
        },
        &mut saver,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("short.jsonl holds 10 records but its source says 11"),
        "{e}"
    );
    let saved = saver.saved.last().cloned().unwrap();
    assert!(!saved.done && saved.records == 10);
    let e2 = land(
        Case {
            sink,
            object: &obj,
            data: &data,
            output: &out,
            progress: saved,
            stop: StopSignal::never(),
        },
        &mut MemorySaver::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert_eq!(e, e2);
}

#[tokio::test]
async fn an_object_that_changed_since_the_interrupted_attempt_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
    let mut obj = object("o.jsonl");
    obj.etag = Some("e2".into());
    let progress = RecordsProgress {
        etag: Some("e1".into()),
        records: 5,
        next_seq: 1,
        ..Default::default()
    };
    let data = jsonl_of(&records(10));
    let out = output(Format::JSONL, 4);
    let e = land(
        Case {
            sink,
            object: &obj,
            data: &data,
            output: &out,
            progress,
            stop: StopSignal::never(),
        },
        &mut MemorySaver::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("o.jsonl changed") && e.contains("was e1, is now e2") && e.contains("--restart"),
        "{e}"
    );
}

#[tokio::test]
async fn a_bad_object_fails_naming_it_and_keeps_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
    let obj = object("exports/bad.jsonl");
    let mut data = jsonl_of(&records(10));
    data.extend_from_slice(b"{\"id\": oops}\n");
    let out = output(Format::JSONL, 4);
    let mut saver = MemorySaver::default();
    let e = land(
        Case {
            sink,
            object: &obj,
            data: &data,
            output: &out,
            progress: RecordsProgress::default(),
            stop: StopSignal::never(),
        },
        &mut saver,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("object exports/bad.jsonl: line 11 is not valid JSON"),
        "{e}"
    );
    // The two full chunks before the bad line are committed and saved.
    assert_eq!(saver.saved.last().map(|p| p.records), Some(8));
}

#[tokio::test]
async fn a_read_failure_is_the_error_not_its_echo_in_the_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
    let obj = object("cut.jsonl.gz");
    let data = gzip(&jsonl_of(&records(100)));
    let pieces: Vec<Result<Bytes, ReadFailure>> = vec![
        Ok(Bytes::copy_from_slice(&data[..30])),
        Err("s3://b/exports/cut.jsonl.gz: 404 NoSuchKey".into()),
    ];
    let out = output(Format::JSONL, 4);
    let e = land_records(RecordsInput {
        object: &obj,
        bytes: futures::stream::iter(pieces).boxed(),
        decode: DecodeOptions::default(),
        output: &out,
        sink,
        run_id: "run1",
        upload_concurrency: 1,
        progress: RecordsProgress::default(),
        schema: None,
        previous_schema: None,
        saver: &mut MemorySaver::default(),
        reporter: Arc::new(NoReport),
        stop: StopSignal::never(),
    })
    .await
    .unwrap_err();
    assert!(matches!(e, RecordsError::Read { .. }), "{e}");
    assert!(e.to_string().contains("NoSuchKey"), "{e}");
}

#[tokio::test]
async fn a_stop_interrupts_with_the_progress_saved() {
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
    let obj = object("slow.jsonl");
    let (handle, stop) = StopSignal::new();
    handle.stop();
    let data = jsonl_of(&records(10));
    let out = output(Format::JSONL, 4);
    let e = land(
        Case {
            sink,
            object: &obj,
            data: &data,
            output: &out,
            progress: RecordsProgress::default(),
            stop,
        },
        &mut MemorySaver::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, RecordsError::Interrupted { .. }), "{e}");
    assert!(e.to_string().contains("run the same command again"), "{e}");
}

#[test]
fn chunk_names_are_file_safe_distinct_and_start_like_a_part() {
    let a = chunk_prefix("r", &object("exports/2026/a b.jsonl.gz"));
    let b = chunk_prefix("r", &object("exports/2026/a?b.jsonl.gz"));
    assert!(a.starts_with("r/part-exports-2026-a-b-jsonl-gz-"), "{a}");
    assert_ne!(a, b);
    let long = chunk_prefix("r", &object(&"x/".repeat(100)));
    assert!(long.len() < 80, "{long}");
    assert!(!long.contains("/part--"));
}
