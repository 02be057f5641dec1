//! `gatelake pull ... --sample N`, the real binary against the API Gateway emulator: it asks
//! for exactly N pages, writes nothing to the destination (a preview folder at most), and
//! reports per-page figures, the columns with their nulls and widths, every format and codec
//! on the sample, and — from the API's total — the run's size and a chunk size for Synapse.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::io::Read;
use support::apigw::{record, ApiConfig, ApiGateway};
use support::run::{gatelake, s, summary, text};

/// The offset route with its total: 1000 records, 100 a page.
async fn api() -> ApiGateway {
    ApiGateway::start(ApiConfig {
        records: 1000,
        page_size: 100,
        ..ApiConfig::default()
    })
    .await
}

fn offset_args(url: &str, dest: &str) -> Vec<String> {
    s(&[
        "pull",
        "--url",
        url,
        "--paginate",
        "offset",
        "--page-size",
        "100",
        "--records",
        "items",
        "--total-path",
        "total",
        "--dest",
        dest,
        "--progress",
        "none",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_fetches_n_pages_writes_nothing_and_reports() {
    let server = api().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let mut args = offset_args(&server.url("/prod/offset"), dest.to_str().unwrap());
    args.extend(s(&[
        "--sample", "3", "--output", "json", "--format", "parquet",
    ]));
    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = summary(&out);

    // Exactly three requests, nothing at the destination.
    assert_eq!(server.requests().len(), 3, "{:?}", server.requests());
    assert!(!dest.exists(), "a sample wrote to the destination");

    assert_eq!(r["status"], "sampled");
    assert_eq!(r["pages"], 3);
    assert_eq!(r["records"], 300);
    assert_eq!(r["listing_ended"], false);
    assert_eq!(r["api_total"], 1000);
    let per_page = r["per_page"].as_array().unwrap();
    assert_eq!(per_page.len(), 3);
    let expected_bytes: u64 = (0..100).map(|i| record(i).to_string().len() as u64).sum();
    assert_eq!(per_page[0]["records"], 100);
    assert_eq!(per_page[0]["record_bytes"], expected_bytes);
    let sampled: u64 = (0..300).map(|i| record(i).to_string().len() as u64).sum();
    assert_eq!(r["record_bytes"], sampled);

    // Columns: types, nulls and widths from the 300 records served.
    let col = |name: &str| -> Value {
        r["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no column {name}: {}", r["columns"]))
    };
    assert_eq!(col("id")["kind"], "int64");
    assert_eq!(col("id")["nulls"], 0);
    assert_eq!(col("id")["max_width"], 3);
    assert_eq!(col("created_at")["kind"], "timestamp");
    let note_nulls = (0..300).filter(|i| record(*i)["note"].is_null()).count();
    assert_eq!(col("note")["nulls"], note_nulls as u64);
    let widest_note = (0..300)
        .filter_map(|i| record(i)["note"].as_str().map(|n| n.chars().count()))
        .max()
        .unwrap();
    assert_eq!(col("note")["max_width"], widest_note as u64);
    let big_nulls = (0..300).filter(|i| record(*i)["big"].is_null()).count();
    assert_eq!(col("big")["nulls"], big_nulls as u64);

    // Every format and codec, the configured one marked, each with a size and a speed.
    let encodings = r["encodings"].as_array().unwrap();
    assert!(encodings.len() >= 7, "{encodings:?}");
    for e in encodings {
        assert!(e["error"].is_null(), "{e}");
        assert!(e["bytes"].as_u64().unwrap() > 0, "{e}");
        assert!(e["mb_per_s"].as_f64().unwrap() > 0.0, "{e}");
    }
    let configured: Vec<&Value> = encodings
        .iter()
        .filter(|e| e["configured"] == true)
        .collect();
    assert_eq!(configured.len(), 1);
    assert_eq!(configured[0]["format"], "parquet");
    assert_eq!(configured[0]["compression"], "snappy");
    let plain = encodings
        .iter()
        .find(|e| e["format"] == "jsonl" && e["compression"] == "none")
        .unwrap();
    assert_eq!(plain["bytes"], sampled + 300, "records plus a newline each");
    let gz = encodings
        .iter()
        .find(|e| e["format"] == "jsonl" && e["compression"] == "gzip")
        .unwrap();
    assert!(gz["ratio"].as_f64().unwrap() < 0.5, "{gz}");

    // The estimate from the API's total: ten pages of the same records.
    let est = &r["estimate"];
    assert_eq!(est["basis"], "api-total");
    assert_eq!(est["records"], 1000);
    assert_eq!(est["pages"], 10);
    let per_record = sampled as f64 / 300.0;
    let want = (per_record * 1000.0).round() as u64;
    assert_eq!(est["record_bytes"], want);
    assert_eq!(est["chunks"], 1, "1000 small records fit one 128MiB chunk");
    let ratio = configured[0]["ratio"].as_f64().unwrap();
    let landed = est["landed_bytes"].as_u64().unwrap();
    assert_eq!(landed, (want as f64 * ratio).round() as u64);
    // A run this small is one file: the recommendation covers the whole run.
    let chunk = &r["chunk_size"];
    assert!(
        chunk["recommended_bytes"].as_u64().unwrap() >= want,
        "{chunk}"
    );
    assert!(
        chunk["note"].as_str().unwrap().contains("one file"),
        "{chunk}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_folder_holds_the_encoded_sample_and_the_report() {
    let server = api().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let preview = dir.path().join("preview");
    let mut args = offset_args(&server.url("/prod/offset"), dest.to_str().unwrap());
    args.extend(s(&[
        "--sample",
        "2",
        "--preview-dir",
        preview.to_str().unwrap(),
    ]));
    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dest.exists(), "a sample wrote to the destination");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Sampled 2 pages: 200 records"), "{stdout}");
    assert!(stdout.contains("<- this pull"), "{stdout}");
    assert!(stdout.contains("--chunk-size"), "{stdout}");
    assert!(stdout.contains("Nothing was written to"), "{stdout}");

    // The default format: jsonl.gz holding exactly the records served, in order.
    let file = preview.join("sample-00000.jsonl.gz");
    let mut lines = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap())
        .read_to_string(&mut lines)
        .unwrap();
    let got: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<Value> = (0..200).map(record).collect();
    assert_eq!(got, want);
    let report: Value =
        serde_json::from_slice(&std::fs::read(preview.join("sample.json")).unwrap()).unwrap();
    assert_eq!(report["records"], 200);
    let listed: Vec<_> = std::fs::read_dir(&preview).unwrap().collect();
    assert_eq!(listed.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_total_there_is_no_estimate_unless_the_listing_ended() {
    let server = ApiGateway::start(ApiConfig {
        records: 250,
        page_size: 100,
        ..ApiConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let cursor = |n: &str| {
        s(&[
            "pull",
            "--url",
            &server.url("/prod/cursor"),
            "--paginate",
            "cursor",
            "--cursor-path",
            "next_cursor",
            "--records",
            "items",
            "--dest",
            dest.to_str().unwrap(),
            "--progress",
            "none",
            "--output",
            "json",
            "--sample",
            n,
        ])
    };
    let out = gatelake(cursor("2"), vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = summary(&out);
    assert_eq!(
        (r["pages"].as_u64(), r["listing_ended"].as_bool()),
        (Some(2), Some(false))
    );
    assert!(r["estimate"].is_null(), "{r}");
    assert!(
        r["warnings"].to_string().contains("--total-path"),
        "{}",
        r["warnings"]
    );

    // Asked for more pages than there are: the whole listing is the estimate's basis.
    let out = gatelake(cursor("9"), vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = summary(&out);
    assert_eq!(r["pages"], 3);
    assert_eq!(r["records"], 250);
    assert_eq!(r["listing_ended"], true);
    assert_eq!(r["estimate"]["basis"], "listing-ended");
    assert_eq!(r["estimate"]["records"], 250);

    // A pull capped at one page previews one page, however many the sample asks for.
    let mut capped = cursor("9");
    capped.extend(s(&["--max-pages", "1"]));
    let before = server.requests().len();
    let out = gatelake(capped, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = summary(&out);
    assert_eq!(
        (r["pages"].as_u64(), r["listing_ended"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(server.requests().len() - before, 1);
    assert!(!dest.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_that_cannot_take_the_records_says_why_and_bad_input_is_refused() {
    let server = api().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    // A pinned schema the records do not fit: csv and parquet say so, jsonl still measures.
    let schema = dir.path().join("schema.json");
    std::fs::write(
        &schema,
        r#"[{"name":"id","kind":"boolean","nullable":false}]"#,
    )
    .unwrap();
    let mut args = offset_args(&server.url("/prod/offset"), dest.to_str().unwrap());
    args.extend(s(&[
        "--sample",
        "1",
        "--output",
        "json",
        "--format",
        "parquet",
        "--schema",
        schema.to_str().unwrap(),
    ]));
    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = summary(&out);
    for e in r["encodings"].as_array().unwrap() {
        if e["format"] == "jsonl" {
            assert!(e["error"].is_null(), "{e}");
        } else {
            assert!(e["error"].as_str().is_some_and(|m| m.contains("id")), "{e}");
        }
    }

    // --sample 0 and --preview-dir alone are usage errors.
    let mut zero = offset_args(&server.url("/prod/offset"), dest.to_str().unwrap());
    zero.extend(s(&["--sample", "0"]));
    let out = gatelake(zero, vec![]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let mut alone = offset_args(&server.url("/prod/offset"), dest.to_str().unwrap());
    alone.extend(s(&["--preview-dir", "x"]));
    let out = gatelake(alone, vec![]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--sample"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dest.exists());
}

/// The README's "Try a sample first" block, run as written against the emulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_sample_run() {
    let server = api().await;
    let readme = support::recipe::read_repo_file("README.md");
    let marker = "<!-- readme-test: readme_sample_run -->";
    let after = readme
        .split_once(marker)
        .expect("the README marks its sample block")
        .1;
    let body = after
        .split_once("```sh\n")
        .unwrap()
        .1
        .split_once("```")
        .unwrap()
        .0;
    let script = support::recipe::substitute(
        body,
        &[(
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders",
            &server.url("/prod/offset"),
        )],
    );
    assert!(
        !script.contains("amazonaws.com") && !script.contains("windows.net"),
        "{script}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("block.sh");
    std::fs::write(&file, &script).unwrap();
    let mut bash = support::recipe::hermetic("bash");
    bash.current_dir(dir.path())
        .args(["-euo", "pipefail"])
        .arg(&file)
        .env(
            "PATH",
            support::recipe::path_with(&[&support::recipe::bin_dir(dir.path())]),
        );
    let out = support::recipe::run(bash).await;
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Sampled 3 pages"), "{stdout}");
    assert!(stdout.contains("Estimate (1000 records"), "{stdout}");
    assert!(dir.path().join("preview/sample.json").exists());
    assert!(
        !dir.path().join("lake").exists(),
        "the README's sample wrote a lake"
    );
    assert_eq!(server.requests().len(), 3);
}
