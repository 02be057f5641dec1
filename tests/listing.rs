//! Listing integrity, end to end: the real binary against the API Gateway stand-in
//! (`support/apigw.rs`), into a local folder. A run that did not get the whole listing — a
//! wrong pagination pointer, a count short of the API's own total, a `--max-pages` cap — must
//! never end in exit 0 with `_SUCCESS` and nothing said; and a run under an ordinary fault mix
//! must not let its page size collapse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::Output;
use support::apigw::{self, ApiConfig, ApiGateway, RetryAfter};
use support::run::{command, gatelake, s, summary, text};

/// `gatelake pull --url <url> <args> --dest <lake> --output json --progress none`, run by the
/// binary under test, or by `GATELAKE_LISTING_TEST_BIN` when set (to show these tests failing
/// against an older build).
async fn pull(url: &str, args: &[&str], lake: &Path) -> Output {
    let mut a = s(&["pull", "--url", url]);
    a.extend(s(args));
    a.extend(s(&["--output", "json", "--progress", "none", "--dest"]));
    a.push(lake.display().to_string());
    let Ok(bin) = std::env::var("GATELAKE_LISTING_TEST_BIN") else {
        return gatelake(a, Vec::new()).await;
    };
    tokio::task::spawn_blocking(move || {
        // The same hermetic environment as `support::run::command`.
        let base = command();
        let mut cmd = std::process::Command::new(bin);
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.args(&a).output().expect("run gatelake")
    })
    .await
    .expect("join")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// The run's manifest (checked against the JSON Schema), and whether `_SUCCESS` is there.
fn manifest_of(lake: &Path, run_id: &str) -> (Value, bool) {
    let dir = lake.join(run_id);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("_manifest.json")).unwrap()).unwrap();
    support::manifest::check_manifest(&manifest);
    (manifest, dir.join("_SUCCESS").exists())
}

/// Every `_SUCCESS` under the lake.
fn success_markers(lake: &Path) -> usize {
    std::fs::read_dir(lake)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().join("_SUCCESS").exists())
                .count()
        })
        .unwrap_or(0)
}

/// The record ids in the manifest's files, each checked against what the server served.
fn landed_ids(lake: &Path, manifest: &Value) -> Vec<u64> {
    let mut ids = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let mut body = String::new();
        flate2::read::MultiGzDecoder::new(
            std::fs::File::open(lake.join(f["path"].as_str().unwrap())).unwrap(),
        )
        .read_to_string(&mut body)
        .unwrap();
        for line in body.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let id = record["id"].as_u64().unwrap();
            assert_eq!(record, apigw::record(id), "record {id} differs");
            ids.push(id);
        }
    }
    ids
}

fn assert_each_once(ids: &[u64], n: u64) {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..n).collect::<Vec<_>>(),
        "each of {n} records once"
    );
}

// --- the pointer rule ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_cursor_path_fails_on_page_one_naming_the_fields_it_has() {
    let api = ApiGateway::start(ApiConfig::default()).await;
    // With the page size in the URL (a full page), and without it (nothing tells): the
    // issue's `--cursor-path nxt` that used to end "Pulled 100 records in 1 pages", exit 0.
    for url in [api.url("/prod/cursor?limit=100"), api.url("/prod/cursor")] {
        let lake = tempfile::tempdir().unwrap();
        let out = pull(
            &url,
            &[
                "--paginate",
                "cursor",
                "--cursor-path",
                "nxt",
                "--records",
                "items",
            ],
            lake.path(),
        )
        .await;
        let v = summary(&out);
        let err = v["error"].as_str().unwrap_or_default();
        assert_eq!(code(&out), 4, "{v}\n{}", text(&out.stderr));
        assert!(
            err.contains("no body field 'nxt'")
                && err.contains("items, next_cursor")
                && err.contains("--cursor-path"),
            "{err}"
        );
        assert_eq!(success_markers(lake.path()), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_link_default_path_on_an_api_without_next_fails() {
    let api = ApiGateway::start(ApiConfig::default()).await;
    let lake = tempfile::tempdir().unwrap();
    // The API's link is at links.next; `--next-path` left at its default, `next`.
    let out = pull(
        &api.url("/prod/next-link?limit=100"),
        &["--paginate", "next-link", "--records", "data.rows"],
        lake.path(),
    )
    .await;
    let v = summary(&out);
    let err = v["error"].as_str().unwrap_or_default();
    assert_eq!(code(&out), 4, "{v}");
    assert!(
        err.contains("no body field 'next'")
            && err.contains("data, links")
            && err.contains("--next-path"),
        "{err}"
    );
    assert_eq!(success_markers(lake.path()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_cursor_or_link_header_missing_from_a_full_first_page_fails() {
    let api = ApiGateway::start(ApiConfig::default()).await;
    let cases: [(&str, &[&str], &str); 2] = [
        (
            "/prod/cursor-header?limit=100",
            &["--paginate", "cursor", "--cursor-header", "x-cursor"],
            "no 'x-cursor' header",
        ),
        // An offset endpoint pulled as if it sent Link headers.
        (
            "/prod/offset?limit=100",
            &["--paginate", "link-header", "--records", "items"],
            "no Link header",
        ),
    ];
    for (path, args, want) in cases {
        let lake = tempfile::tempdir().unwrap();
        let out = pull(&api.url(path), args, lake.path()).await;
        let v = summary(&out);
        assert_eq!(code(&out), 4, "{path}: {v}");
        let err = v["error"].as_str().unwrap_or_default();
        assert!(
            err.contains(want) && err.contains("the response headers are:"),
            "{err}"
        );
        assert_eq!(success_markers(lake.path()), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pointer_that_vanishes_from_a_later_full_page_is_recorded() {
    // From page index 3 on, the API leaves `next_cursor` out although more records follow.
    let api = ApiGateway::start(ApiConfig {
        omit_next_from: Some(3),
        ..ApiConfig::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let out = pull(
        &api.url("/prod/cursor?limit=100"),
        &[
            "--paginate",
            "cursor",
            "--cursor-path",
            "next_cursor",
            "--records",
            "items",
        ],
        lake.path(),
    )
    .await;
    let v = summary(&out);
    assert_eq!(code(&out), 0, "{v}\n{}", text(&out.stderr));
    assert_eq!(v["rows"], 400);
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings.len() == 1
            && warnings[0]
                .as_str()
                .unwrap()
                .contains("page 4 holds 100 records"),
        "{v}"
    );
    let (manifest, success) = manifest_of(lake.path(), v["run_id"].as_str().unwrap());
    assert!(success);
    assert_eq!(manifest["status"], "succeeded");
    assert_eq!(manifest["warnings"], v["warnings"]);
}

// --- --max-pages -----------------------------------------------------------------------------

fn cursor_args() -> Vec<&'static str> {
    vec![
        "--paginate",
        "cursor",
        "--cursor-path",
        "next_cursor",
        "--records",
        "items",
        "--chunk-rows",
        "150",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_run_is_partial_and_a_rerun_without_the_cap_finishes_it() {
    let api = ApiGateway::start(ApiConfig::default()).await;
    let lake = tempfile::tempdir().unwrap();
    let url = api.url("/prod/cursor?limit=100");
    let mut args = cursor_args();
    args.extend(["--max-pages", "3"]);
    let out = pull(&url, &args, lake.path()).await;
    let v = summary(&out);
    assert_eq!(code(&out), 4, "{v}\n{}", text(&out.stderr));
    assert_eq!(v["status"], "partial");
    assert_eq!(v["exit_code"], 4);
    assert_eq!(v["rows"], 300);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("--max-pages-complete"),
        "{v}"
    );
    let run = v["run_id"].as_str().unwrap().to_string();
    let (manifest, success) = manifest_of(lake.path(), &run);
    assert!(!success, "a capped run must not write _SUCCESS");
    assert_eq!(manifest["status"], "partial");
    assert!(manifest["warnings"][0]
        .as_str()
        .unwrap()
        .contains("--max-pages 3"));

    // The same cap again: still partial, nothing fetched.
    let before = api.requests().len();
    let again = pull(&url, &args, lake.path()).await;
    assert_eq!(code(&again), 4);
    assert_eq!(api.requests().len(), before);

    // Without the cap: the same run resumes after page 3 and completes.
    let out = pull(&url, &cursor_args(), lake.path()).await;
    let v = summary(&out);
    assert_eq!(code(&out), 0, "{v}\n{}", text(&out.stderr));
    assert_eq!(v["run_id"], run.as_str());
    assert_eq!(v["resumed"], true);
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["warnings"], serde_json::json!([]));
    let (manifest, success) = manifest_of(lake.path(), &run);
    assert!(success);
    assert_eq!(manifest["status"], "succeeded");
    assert_each_once(&landed_ids(lake.path(), &manifest), 1000);
    // No page was asked for twice.
    assert_eq!(api.requests().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pages_complete_takes_a_capped_run_as_complete_and_says_so() {
    let api = ApiGateway::start(ApiConfig::default()).await;
    let lake = tempfile::tempdir().unwrap();
    let mut args = cursor_args();
    args.extend(["--max-pages", "2", "--max-pages-complete"]);
    let out = pull(&api.url("/prod/cursor?limit=100"), &args, lake.path()).await;
    let v = summary(&out);
    assert_eq!(code(&out), 0, "{v}\n{}", text(&out.stderr));
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["rows"], 200);
    assert!(v["warnings"][0]
        .as_str()
        .unwrap()
        .contains("--max-pages-complete"));
    let (manifest, success) = manifest_of(lake.path(), v["run_id"].as_str().unwrap());
    assert!(success);
    assert_eq!(manifest["warnings"], v["warnings"]);

    // A cap the listing never reaches changes nothing.
    let lake = tempfile::tempdir().unwrap();
    let mut args = cursor_args();
    args.extend(["--max-pages", "50"]);
    let out = pull(&api.url("/prod/cursor?limit=100"), &args, lake.path()).await;
    let v = summary(&out);
    assert_eq!(code(&out), 0, "{v}");
    assert_eq!(v["warnings"], serde_json::json!([]));
    assert_eq!(v["rows"], 1000);
}

// --- counts ----------------------------------------------------------------------------------

fn offset_args() -> Vec<&'static str> {
    vec![
        "--paginate",
        "offset",
        "--page-size",
        "100",
        "--records",
        "items",
        "--total-path",
        "total",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_short_of_the_apis_total_fails_and_can_be_accepted_on_rerun() {
    // The API says 1200 records but lists 1000.
    let api = ApiGateway::start(ApiConfig {
        reported_total: Some(1200),
        ..ApiConfig::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let url = api.url("/prod/offset");
    let out = pull(&url, &offset_args(), lake.path()).await;
    let v = summary(&out);
    assert_eq!(code(&out), 4, "{v}\n{}", text(&out.stderr));
    assert_eq!(v["status"], "partial");
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("returned 1000 records, 200 fewer than the API's total ('total') of 1200"),
        "{err}"
    );
    let run = v["run_id"].as_str().unwrap().to_string();
    let (manifest, success) = manifest_of(lake.path(), &run);
    assert!(!success);
    assert_eq!(manifest["status"], "partial");

    // Accepting the mismatch finishes the same run without asking the API again.
    let before = api.requests().len();
    let mut args = offset_args();
    args.extend(["--on-count-mismatch", "warn"]);
    let out = pull(&url, &args, lake.path()).await;
    let v = summary(&out);
    assert_eq!(code(&out), 0, "{v}\n{}", text(&out.stderr));
    assert_eq!(api.requests().len(), before);
    assert_eq!(v["run_id"], run.as_str());
    assert!(v["warnings"][0].as_str().unwrap().contains("200 fewer"));
    let (manifest, success) = manifest_of(lake.path(), &run);
    assert!(success);
    assert_eq!(manifest["status"], "succeeded");
    assert_each_once(&landed_ids(lake.path(), &manifest), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_rows_is_checked_and_restart_pulls_again() {
    let api = ApiGateway::start(ApiConfig::default()).await;
    let lake = tempfile::tempdir().unwrap();
    let url = api.url("/prod/cursor?limit=100");
    let mut args = cursor_args();
    args.extend(["--expect-rows", "900"]);
    let out = pull(&url, &args, lake.path()).await;
    let v = summary(&out);
    assert_eq!(code(&out), 4, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("returned 1000 records, 100 more than --expect-rows of 900"),
        "{v}"
    );
    assert_eq!(success_markers(lake.path()), 0);
    // --restart discards the partial run and pulls again; the right count then succeeds.
    let mut args = cursor_args();
    args.extend(["--expect-rows", "1000", "--restart"]);
    let out = pull(&url, &args, lake.path()).await;
    let v = summary(&out);
    assert_eq!(code(&out), 0, "{v}\n{}", text(&out.stderr));
    assert_eq!(v["resumed"], false);
    assert_eq!(success_markers(lake.path()), 1);
    // A bad policy is a usage error naming both choices.
    let out = pull(&url, &["--on-count-mismatch", "ignore"], lake.path()).await;
    assert_eq!(code(&out), 2);
    assert!(summary(&out)["error"]
        .as_str()
        .unwrap()
        .contains("use fail"));
}

// --- the page size under faults --------------------------------------------------------------

/// The `limit` each request asked for, in order.
fn limits(api: &ApiGateway) -> Vec<u64> {
    api.requests()
        .iter()
        .filter_map(|r| r.query_param("limit").and_then(|v| v.parse().ok()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_size_recovers_under_an_ordinary_fault_mix() {
    // About 5% of requests get a 500/502/503/504, one in 37 is throttled (no Retry-After), and
    // 2% of pages arrive truncated: 50,000 records at 500 a page.
    let api = ApiGateway::start(ApiConfig {
        records: 50_000,
        error_rate: 0.05,
        throttle_every: Some(37),
        retry_after: RetryAfter::Omit,
        truncate_rate: 0.02,
        gzip_threshold: usize::MAX,
        // A seed whose draws include several 504s among the faults.
        seed: 4,
        ..ApiConfig::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = pull(
        &api.url("/prod/offset"),
        &[
            "--paginate",
            "offset",
            "--page-size",
            "500",
            "--records",
            "items",
            "--total-path",
            "total",
            "--chunk-rows",
            "10000",
        ],
        lake.path(),
    )
    .await;
    let v = summary(&out);
    assert_eq!(code(&out), 0, "{v}\n{}", text(&out.stderr));
    let asked = limits(&api);
    let requests = asked.len() as f64;
    // 100 pages; with ~9% of requests failing, a handful of shrunken pages on top.
    let pages = 100.0;
    assert!(
        requests <= pages * 1.09 * 1.5,
        "{requests} requests for {pages} pages' worth: the page size collapsed ({:?})",
        &asked[asked.len().saturating_sub(20)..]
    );
    // Never below the floor (1/16 of 500), and after each shrink back to full size within
    // a few pages: few requests ask for less than 500.
    assert!(asked.iter().all(|l| *l >= 500 / 16), "{asked:?}");
    let shrinks = v["page_size_shrinks"].as_u64().unwrap();
    assert!(shrinks >= 1, "the fault mix made no 504: pick another seed");
    let small = asked.iter().filter(|l| **l < 500).count() as u64;
    assert!(
        small <= 12 * shrinks,
        "{small} small requests after {shrinks} shrinks: {asked:?}"
    );
    let (manifest, success) = manifest_of(lake.path(), v["run_id"].as_str().unwrap());
    assert!(success);
    assert_eq!(manifest["page_size_shrinks"], v["page_size_shrinks"]);
    assert_each_once(&landed_ids(lake.path(), &manifest), 50_000);
    eprintln!(
        "{requests} requests, {shrinks} shrinks, {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_starts_again_at_the_configured_page_size() {
    // The integration times out above 100 records for its first 4 requests: the first run
    // shrinks 400 → 200 → 100 and stops at --max-pages 2 (partial, resumable).
    let api = ApiGateway::start(ApiConfig {
        records: 4000,
        timeout_above: Some(100),
        timeout_above_for: Some(4),
        ..ApiConfig::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let url = api.url("/prod/offset");
    let args = vec![
        "--paginate",
        "offset",
        "--page-size",
        "400",
        "--records",
        "items",
        "--total-path",
        "total",
        "--chunk-rows",
        "1",
    ];
    let mut capped = args.clone();
    capped.extend(["--max-pages", "2"]);
    let out = pull(&url, &capped, lake.path()).await;
    let v = summary(&out);
    assert_eq!(code(&out), 4, "{v}\n{}", text(&out.stderr));
    assert_eq!(v["page_size_shrinks"], 2, "{v}");
    let first_run = api.requests().len();
    assert_eq!(limits(&api)[..first_run], [400, 200, 100, 100]);

    // The resumed run asks for the configured 400 at once, not the 100 it stopped at.
    let out = pull(&url, &args, lake.path()).await;
    let v = summary(&out);
    assert_eq!(code(&out), 0, "{v}\n{}", text(&out.stderr));
    assert_eq!(v["resumed"], true);
    assert_eq!(limits(&api)[first_run], 400, "{:?}", limits(&api));
    // The whole run's shrinks are reported, the first invocation's included.
    assert_eq!(v["page_size_shrinks"], 2);
    let (manifest, _) = manifest_of(lake.path(), v["run_id"].as_str().unwrap());
    assert_each_once(&landed_ids(lake.path(), &manifest), 4000);
}

#[test]
fn the_new_settings_come_from_flags_env_and_the_job_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gatelake.toml"),
        "[jobs.orders]\nurl = \"https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders\"\non_count_mismatch = \"warn\"\nmax_pages_complete = true\nmax_pages = 3\n",
    )
    .unwrap();
    let out = command()
        .current_dir(dir.path())
        .args(["pull", "--job", "orders", "--show-settings"])
        .env("GATELAKE_EXPECT_ROWS", "42")
        .output()
        .unwrap();
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (key, value, origin) in [
        ("on-count-mismatch", "warn", "job file"),
        ("max-pages-complete", "true", "job file"),
        ("expect-rows", "42", "env GATELAKE_EXPECT_ROWS"),
    ] {
        let line = shown
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} missing in {shown}"));
        assert!(line.contains(value) && line.contains(origin), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_at_the_floor_fail_saying_to_lower_the_page_size() {
    // Every page over 10 records times out; the floor for --page-size 500 is 31.
    let api = ApiGateway::start(ApiConfig {
        timeout_above: Some(10),
        ..ApiConfig::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let out = pull(
        &api.url("/prod/offset"),
        &[
            "--paginate",
            "offset",
            "--page-size",
            "500",
            "--records",
            "items",
            "--max-retries",
            "5",
        ],
        lake.path(),
    )
    .await;
    let v = summary(&out);
    assert_eq!(code(&out), 4, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("smallest page size gatelake asks for, 31") && err.contains("--page-size"),
        "{err}"
    );
    assert_eq!(limits(&api), [500, 250, 125, 62, 31, 31]);
}
