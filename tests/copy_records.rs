//! `gatelake copy --land records` end to end: the real binary reads objects from moto's S3 —
//! jsonl, a JSON array, csv; gzip, zstd or plain, detected by content — and lands their
//! records as chunks of every output format into a local folder and into Azurite, checked
//! record by record; a bad object fails naming it; SIGKILLs at random moments, then a rerun,
//! land every record exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gatelake::sink::local::LocalSink;
use gatelake::sink::Sink;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;
use support::azurite::azurite;
use support::manifest::check_manifest;
use support::run::{command, gatelake, s, summary, text};
use support::s3_bucket::{moto_env, TestBucket};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd_of(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 3).unwrap()
}

/// Records `from..to`: `{"id":N,"name":"nN","amount":N.25}`.
fn recs(from: u64, to: u64) -> Vec<String> {
    (from..to)
        .map(|i| format!("{{\"id\":{i},\"name\":\"n{i}\",\"amount\":{i}.25}}"))
        .collect()
}

fn jsonl(from: u64, to: u64) -> Vec<u8> {
    let mut t = recs(from, to).join("\n");
    t.push('\n');
    t.into_bytes()
}

fn array(from: u64, to: u64) -> Vec<u8> {
    format!("[\n{}\n]", recs(from, to).join(",\n")).into_bytes()
}

fn csv(from: u64, to: u64) -> Vec<u8> {
    let mut t = String::from("id,name,amount\n");
    for i in from..to {
        t.push_str(&format!("{i},n{i},{i}.25\n"));
    }
    t.into_bytes()
}

/// The JSON objects (every layout and compression) and the ids they hold.
fn json_objects() -> (Vec<(String, Vec<u8>)>, u64) {
    let objects = vec![
        ("json/a.jsonl.gz".to_string(), gzip(&jsonl(0, 1500))),
        ("json/b.json".into(), array(1500, 1700)),
        ("json/c.dat".into(), zstd_of(&array(1700, 2300))),
        ("json/d.jsonl.zst".into(), zstd_of(&jsonl(2300, 2400))),
        ("json/e-empty.jsonl".into(), Vec::new()),
        ("json/f.txt".into(), gzip(&array(2400, 2500))),
    ];
    (objects, 2500)
}

/// The csv objects (with a header row; every value a string) and the ids they hold.
fn csv_objects() -> (Vec<(String, Vec<u8>)>, u64) {
    let objects = vec![
        ("csv/a.csv".to_string(), csv(0, 900)),
        ("csv/b.csv.gz".into(), gzip(&csv(900, 1600))),
        ("csv/c".into(), zstd_of(&csv(1600, 2000))),
    ];
    (objects, 2000)
}

fn copy_args(uri: &str, dest: &str, extra: &[&str]) -> Vec<String> {
    let mut a = s(&[
        "copy",
        uri,
        dest,
        "--land",
        "records",
        "--output",
        "json",
        "--progress",
        "none",
    ]);
    a.extend(s(extra));
    a
}

/// The ids in one landed chunk, whatever its format.
fn ids_in(path: &str, data: &[u8]) -> Vec<u64> {
    let plain = |d: &[u8]| -> String {
        let mut t = String::new();
        if path.ends_with(".gz") {
            flate2::read::MultiGzDecoder::new(d)
                .read_to_string(&mut t)
                .unwrap();
        } else if path.ends_with(".zst") {
            t = String::from_utf8(zstd::stream::decode_all(d).unwrap()).unwrap();
        } else {
            t = String::from_utf8(d.to_vec()).unwrap();
        }
        t
    };
    if path.ends_with(".parquet") {
        use arrow_array::{Array, Int64Array, StringArray};
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(data))
            .unwrap()
            .build()
            .unwrap();
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let col = batch.column_by_name("id").expect("an id column");
            if let Some(ints) = col.as_any().downcast_ref::<Int64Array>() {
                out.extend(ints.iter().map(|v| v.unwrap() as u64));
            } else if let Some(strs) = col.as_any().downcast_ref::<StringArray>() {
                out.extend(strs.iter().map(|v| v.unwrap().parse::<u64>().unwrap()));
            } else {
                panic!("id is {:?}", col.data_type());
            }
        }
        out
    } else if path.contains(".csv") {
        let text = plain(data);
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let at = r.headers().unwrap().iter().position(|h| h == "id").unwrap();
        r.records()
            .map(|rec| rec.unwrap()[at].parse::<f64>().unwrap() as u64)
            .collect()
    } else {
        plain(data)
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["id"]
                    .as_u64()
                    .or_else(|| v["id"].as_str().and_then(|s| s.parse().ok()))
                    .unwrap()
            })
            .collect()
    }
}

/// Every id in the run's chunks, counted; and the run folder's other files.
async fn landed_ids(sink: &dyn Sink, run_folder: &str) -> (BTreeMap<u64, u32>, Vec<String>) {
    let mut ids = BTreeMap::new();
    let mut others = Vec::new();
    for o in sink.list(run_folder).await.unwrap() {
        let name = o.path[run_folder.len()..].to_string();
        if name.starts_with("part-") {
            let data = sink.get(&o.path).await.unwrap().unwrap().data;
            for id in ids_in(&name, &data) {
                *ids.entry(id).or_insert(0) += 1;
            }
        } else {
            others.push(name);
        }
    }
    (ids, others)
}

fn exactly_once(ids: &BTreeMap<u64, u32>, n: u64) {
    let missing: Vec<u64> = (0..n).filter(|i| !ids.contains_key(i)).take(5).collect();
    let twice: Vec<u64> = ids
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(i, _)| *i)
        .take(5)
        .collect();
    assert!(missing.is_empty(), "missing ids, e.g. {missing:?}");
    assert!(twice.is_empty(), "ids landed twice, e.g. {twice:?}");
    assert_eq!(ids.len() as u64, n, "ids beyond 0..{n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_layout_and_compression_lands_as_every_format_into_a_local_folder() {
    let bucket = TestBucket::new("rec-local", false).await;
    let (json, json_n) = json_objects();
    let (csvs, csv_n) = csv_objects();
    let mut puts = json.clone();
    puts.extend(csvs.clone());
    bucket
        .put_many(
            puts.into_iter()
                .map(|(k, v)| (format!("in/{k}"), v))
                .collect(),
        )
        .await;
    let lake = tempfile::tempdir().unwrap();
    let sink = LocalSink::new(lake.path());
    let cases = [
        ("jsonl", "jsonl.gz", "json", &json, json_n),
        ("csv", "csv.gz", "json", &json, json_n),
        ("parquet", "parquet", "json", &json, json_n),
        ("jsonl", "jsonl.gz", "csv", &csvs, csv_n),
        ("csv", "csv.gz", "csv", &csvs, csv_n),
        ("parquet", "parquet", "csv", &csvs, csv_n),
    ];
    for (format, ext, layout, objects, n) in cases {
        let dest = lake.path().join(format!("{layout}-{format}"));
        let out = gatelake(
            copy_args(
                &bucket.uri(&format!("in/{layout}/")),
                dest.to_str().unwrap(),
                &[
                    "--format",
                    format,
                    "--chunk-size",
                    "20KB",
                    "--part-size",
                    "64KiB",
                ],
            ),
            moto_env(),
        )
        .await;
        assert!(
            out.status.success(),
            "{layout} as {format}: {}",
            text(&out.stderr)
        );
        let sum = summary(&out);
        assert_eq!(sum["status"], "succeeded");
        assert_eq!(sum["land"], "records");
        assert_eq!(sum["objects"].as_u64(), Some(objects.len() as u64));
        assert_eq!(sum["rows"].as_u64(), Some(n), "{sum}");
        let run = sum["run_id"].as_str().unwrap().to_string();

        let (ids, mut others) = landed_ids(&sink, &format!("{layout}-{format}/{run}/")).await;
        exactly_once(&ids, n);
        others.sort();
        assert_eq!(others, ["_SUCCESS", "_manifest.json", "load.sql"]);
        let m: Value =
            serde_json::from_slice(&std::fs::read(dest.join(&run).join("_manifest.json")).unwrap())
                .unwrap();
        check_manifest(&m);
        assert_eq!(m["land"], "records");
        assert_eq!(m["totals"]["rows"].as_u64(), Some(n));
        let files = m["files"].as_array().unwrap();
        assert!(
            files.len() > objects.len(),
            "chunks of 20KB: {}",
            files.len()
        );
        for f in files {
            assert!(f["path"].as_str().unwrap().ends_with(ext), "{f}");
        }
        let listed: Vec<&str> = m["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                assert_eq!(o["land"], "records");
                o["name"].as_str().unwrap()
            })
            .collect();
        assert_eq!(listed.len(), objects.len());
        if format != "jsonl" {
            let names: Vec<&str> = m["schema"]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["id", "name", "amount"], "{format}");
        }
        let sql = std::fs::read_to_string(dest.join(&run).join("load.sql")).unwrap();
        assert!(
            sql.contains(&format!("/*.{ext}")) || sql.contains(ext),
            "{sql}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_under_a_path_land_into_azurite_and_a_bad_object_fails_naming_it() {
    let bucket = TestBucket::new("rec-azure", false).await;
    let doc = |from: u64, to: u64| {
        format!(
            "{{\"meta\":{{\"count\":{}}},\"data\":{{\"rows\":{}}}}}",
            to - from,
            String::from_utf8(array(from, to)).unwrap()
        )
        .into_bytes()
    };
    bucket.put("docs/1.json.gz", gzip(&doc(0, 700))).await;
    bucket.put("docs/2.json", doc(700, 1000)).await;
    let (container, sink) = azurite().new_container("records").await;
    let dest = azurite().dest_url(&container, "job");
    let mut env = moto_env();
    env.push((
        "AZURE_STORAGE_CONNECTION_STRING".into(),
        azurite().connection_string(),
    ));
    let out = gatelake(
        copy_args(
            &bucket.uri("docs/"),
            &dest,
            &["--object-records-path", "data.rows", "--format", "parquet"],
        ),
        env.clone(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["rows"].as_u64(), Some(1000));
    let run = sum["run_id"].as_str().unwrap();
    let (ids, others) = landed_ids(&sink, &format!("job/{run}/")).await;
    exactly_once(&ids, 1000);
    assert!(others.contains(&"_SUCCESS".to_string()), "{others:?}");

    // Without the path, a document is not JSON lines: the error names the object and the fix.
    bucket.put("bad/ok.jsonl", jsonl(0, 10)).await;
    bucket.put("bad/zz-doc.json", doc(0, 5)).await;
    let out = gatelake(
        copy_args(
            &bucket.uri("bad/"),
            &azurite().dest_url(&container, "bad"),
            &[],
        ),
        env.clone(),
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("zz-doc.json") && err.contains("--records-path"),
        "{err}"
    );
    assert!(sink.get("bad/_SUCCESS").await.unwrap().is_none());
    let listing = sink.list("bad/").await.unwrap();
    assert!(
        !listing.iter().any(|o| o.path.ends_with("_SUCCESS")),
        "no _SUCCESS after a failure"
    );

    // Binary content: refused, pointing at --land as-is.
    bucket
        .put(
            "bin/x.bin",
            vec![0xff, 0xfe, 0x00, 0x81, 0x90, b'\n', 0xc3, 0x28],
        )
        .await;
    let out = gatelake(
        copy_args(
            &bucket.uri("bin/"),
            &azurite().dest_url(&container, "bin"),
            &[],
        ),
        env,
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("x.bin") && err.contains("--land as-is"),
        "{err}"
    );
}

/// Records the checkpoint calls committed: in landed objects' chunks and in progress.
async fn committed(sink: &dyn Sink, job: &str) -> u64 {
    let Ok(Some(got)) = sink.get(&format!("{job}_state/checkpoint.json")).await else {
        return 0;
    };
    let Ok(cp) = serde_json::from_slice::<Value>(&got.data) else {
        return 0;
    };
    let files: u64 = cp["files"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["rows"].as_u64()).sum())
        .unwrap_or(0);
    let partial: u64 = cp["objects"]["records"]
        .as_object()
        .map(|m| m.values().filter_map(|p| p["records"].as_u64()).sum())
        .unwrap_or(0);
    files + partial
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_then_a_rerun_lands_every_record_exactly_once() {
    const KILLS: u32 = 10;
    let bucket = TestBucket::new("rec-kill", false).await;
    // A few large objects (many chunks each: kills land mid-object) and small ones.
    let mut puts = Vec::new();
    let mut next = 0u64;
    for i in 0..4 {
        let n = 40_000;
        let body = match i % 2 {
            0 => gzip(&jsonl(next, next + n)),
            _ => zstd_of(&csv(next, next + n)),
        };
        puts.push((format!("k/big-{i}"), body));
        next += n;
    }
    for i in 0..40 {
        puts.push((format!("k/small-{i:03}.json"), array(next, next + 50)));
        next += 50;
    }
    let total = next;
    bucket.put_many(puts).await;

    let lake = tempfile::tempdir().unwrap();
    let sink = LocalSink::new(lake.path());
    let dest = lake.path().join("job");
    let args = copy_args(
        &bucket.uri("k/"),
        dest.to_str().unwrap(),
        &[
            "--chunk-size",
            "64KB",
            "--part-size",
            "256KiB",
            "--concurrency",
            "2",
        ],
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7265_6373);
    let (mut kills, mut attempts) = (0u32, 0u32);
    while kills < KILLS {
        attempts += 1;
        let before = committed(&sink, "job/").await;
        let mut child = command()
            .args(&args)
            .envs(moto_env())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Count from the attempt's first progress, so every attempt moves on.
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while committed(&sink, "job/").await <= before && child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "attempt {attempts} committed nothing within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..150))).await;
        if child.try_wait().unwrap().is_some() {
            let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
                .await
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
            break;
        }
        child.kill().unwrap(); // SIGKILL
        kills += 1;
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
    }
    assert!(
        kills >= 6,
        "only {kills} kills before the copy finished: give it more records"
    );
    let before_last = committed(&sink, "job/").await;
    let out = gatelake(args.clone(), moto_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    let run = sum["run_id"].as_str().unwrap().to_string();
    let runs: std::collections::BTreeSet<String> = std::fs::read_dir(&dest)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('_'))
        .collect();
    let (ids, _) = landed_ids(&sink, &format!("job/{run}/")).await;
    let twice = ids.values().filter(|c| **c > 1).count();
    let lost = total - ids.len() as u64;
    eprintln!(
        "records kill test: {kills} SIGKILLs over {attempts} attempts, {before_last} of {total} records committed before the last run, {} records checked, {twice} twice, {lost} lost",
        ids.len()
    );
    exactly_once(&ids, total);
    assert_eq!(runs.len(), 1, "one run folder: {runs:?}");
    let m: Value =
        serde_json::from_slice(&std::fs::read(dest.join(&run).join("_manifest.json")).unwrap())
            .unwrap();
    check_manifest(&m);
    assert_eq!(m["totals"]["rows"].as_u64(), Some(total));
    assert_eq!(m["objects"].as_array().unwrap().len(), 44);
    // The manifest lists exactly the chunks in the folder.
    let mut listed: Vec<String> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    let mut stored: Vec<String> = sink
        .list(&format!("job/{run}/part-"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.path["job/".len()..].to_string())
        .collect();
    listed.sort();
    stored.sort();
    assert_eq!(listed, stored);
}
