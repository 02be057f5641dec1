//! `--concurrency N`: offset and page-number pulls keep up to N page requests in flight, and
//! the real binary must still land every record exactly once, in served order, whatever the
//! API does to the guesses it makes ahead: a short last page, pages halved after a 504, an
//! API serving fewer records than asked for, faults and throttling mid-listing, errors past
//! the end, Ctrl-C. Cursor and link styles are sequential by nature and refuse the flag.
//! Everything runs against the API Gateway emulator (`support/apigw.rs`) into a local folder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::apigw::{self, ApiConfig, ApiGateway, RetryAfter};
use support::run::{command, gatelake, s, summary, text};

/// `gatelake pull` of `path` on `api` into `lake`, in chunks of 300 records.
fn pull(api: &ApiGateway, path: &str, lake: &Path, style: &[&str], extra: &[&str]) -> Vec<String> {
    let mut a = s(&["pull", "--url", &api.url(path)]);
    a.extend(s(style));
    a.extend(s(&[
        "--chunk-rows",
        "300",
        "--output",
        "json",
        "--progress",
        "plain",
        "--dest",
        lake.to_str().unwrap(),
    ]));
    a.extend(s(extra));
    a
}

/// Run `args`, require success (naming `what` on failure) and return the JSON summary.
async fn pull_ok(args: Vec<String>, what: &str) -> Value {
    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{what}: {}", text(&out.stderr));
    summary(&out)
}

const OFFSET: &[&str] = &[
    "--paginate",
    "offset",
    "--records",
    "items",
    "--total-path",
    "total",
];

const CURSOR: &[&str] = &[
    "--paginate",
    "cursor",
    "--cursor-path",
    "next_cursor",
    "--records",
    "items",
];

const PAGE: &[&str] = &[
    "--paginate",
    "page",
    "--page-size-param",
    "per_page",
    "--records",
    "results",
    "--has-more-path",
    "has_more",
];

/// The record ids of the run in `summary`, in file and line order, each record checked
/// against what the server served.
fn landed_ids(lake: &Path, summary: &Value) -> Vec<u64> {
    assert_eq!(summary["status"], "succeeded", "{summary}");
    let run_dir = lake.join(summary["run_id"].as_str().unwrap());
    assert!(run_dir.join("_SUCCESS").exists());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("_manifest.json")).unwrap()).unwrap();
    ids_of_files(lake, manifest["files"].as_array().unwrap())
}

fn ids_of_files(lake: &Path, files: &[Value]) -> Vec<u64> {
    let mut ids = Vec::new();
    for f in files {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(
            std::fs::File::open(lake.join(f["path"].as_str().unwrap())).unwrap(),
        )
        .read_to_string(&mut text)
        .unwrap();
        let before = ids.len();
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let id = record["id"].as_u64().unwrap();
            assert_eq!(record, apigw::record(id), "record {id} differs");
            ids.push(id);
        }
        assert_eq!((ids.len() - before) as u64, f["rows"].as_u64().unwrap());
    }
    ids
}

/// How often each value of query parameter `name` was asked for.
fn asked(api: &ApiGateway, name: &str) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    for r in api.requests() {
        if let Some(v) = r.query_param(name).and_then(|v| v.parse::<u64>().ok()) {
            *seen.entry(v).or_insert(0) += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_pages_land_once_in_order_with_several_in_flight() {
    // 49 pages of 50, the last one short (37 records), each answered after 30 ms.
    const RECORDS: u64 = 2437;
    for concurrency in [4u64, 8] {
        let api = ApiGateway::start(ApiConfig {
            records: RECORDS,
            latency: Duration::from_millis(30),
            ..Default::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let n = concurrency.to_string();
        let args = pull(
            &api,
            "/prod/offset",
            &lake,
            OFFSET,
            &["--page-size", "50", "--concurrency", &n],
        );
        let sum = pull_ok(args, "").await;
        assert_eq!(sum["rows"], RECORDS);
        assert_eq!(sum["pages"], 49);
        assert_eq!(
            landed_ids(&lake, &sum),
            (0..RECORDS).collect::<Vec<_>>(),
            "c={concurrency}"
        );
        let in_flight = api.max_in_flight();
        assert!(
            (2..=concurrency).contains(&in_flight),
            "c={concurrency}: {in_flight} requests were answered at once"
        );
        // Full pages and a known total: every guess was right, nothing was asked twice and
        // nothing past the total (the short last page ends the listing by the total).
        let offsets = asked(&api, "offset");
        let mut keys: Vec<u64> = offsets.keys().copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..49).map(|p| p * 50).collect::<Vec<_>>());
        assert!(offsets.values().all(|n| *n == 1), "{offsets:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_numbers_land_once_in_order_with_several_in_flight() {
    const RECORDS: u64 = 2437;
    let api = ApiGateway::start(ApiConfig {
        records: RECORDS,
        latency: Duration::from_millis(30),
        // Guesses past the last page get a 400: they must be dropped, not reported.
        reject_past_end: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = pull(
        &api,
        "/prod/page",
        &lake,
        PAGE,
        &["--page-size", "50", "--concurrency", "8"],
    );
    let sum = pull_ok(args, "").await;
    assert_eq!(landed_ids(&lake, &sum), (0..RECORDS).collect::<Vec<_>>());
    assert_eq!(sum["pages"], 49);
    assert!(api.max_in_flight() >= 2, "{}", api.max_in_flight());
    let pages = asked(&api, "page");
    assert!((1..=49).all(|p| pages.get(&p) == Some(&1)), "{pages:?}");
    assert!(
        pages.keys().any(|p| *p > 49),
        "no guess past the end was made, so the 400s were not exercised: {pages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_serving_fewer_records_than_asked_is_followed_without_waste() {
    // Asked for 100 per page, the API serves 30: the first guesses (offset 100, 200, …) are
    // wrong; from then on the guesses step by what the API serves.
    const RECORDS: u64 = 1500;
    for (path, style) in [("/prod/offset", OFFSET), ("/prod/page", PAGE)] {
        let api = ApiGateway::start(ApiConfig {
            records: RECORDS,
            latency: Duration::from_millis(10),
            max_page_size: Some(30),
            ..Default::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let args = pull(
            &api,
            path,
            &lake,
            style,
            &["--page-size", "100", "--concurrency", "4"],
        );
        let sum = pull_ok(args, path).await;
        assert_eq!(
            landed_ids(&lake, &sum),
            (0..RECORDS).collect::<Vec<_>>(),
            "{path}"
        );
        assert_eq!(sum["pages"], 50, "{path}");
        // 50 pages; a few wrong guesses at the start and past the end, not 3 per page.
        let requests = api.requests().len();
        assert!(
            requests <= 50 + 2 * 4,
            "{path}: {requests} requests for 50 pages"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_halved_after_a_504_are_followed_from_the_smaller_size() {
    // Pages over 120 records time out: asked for 400, the pull retries with 200, then 100,
    // while the guesses for 400-record pages ahead are dropped.
    const RECORDS: u64 = 1000;
    for (path, style) in [("/prod/offset", OFFSET), ("/prod/page", PAGE)] {
        let api = ApiGateway::start(ApiConfig {
            records: RECORDS,
            latency: Duration::from_millis(10),
            timeout_above: Some(120),
            ..Default::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let args = pull(
            &api,
            path,
            &lake,
            style,
            &["--page-size", "400", "--concurrency", "4"],
        );
        let out = gatelake(args, vec![]).await;
        assert!(out.status.success(), "{path}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("asking for smaller pages"),
            "{path}: {}",
            text(&out.stderr)
        );
        let sum = summary(&out);
        assert_eq!(
            landed_ids(&lake, &sum),
            (0..RECORDS).collect::<Vec<_>>(),
            "{path}"
        );
        assert_eq!(sum["pages"], 10, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_throttling_mid_listing_are_retried_per_request() {
    // Every 5th request throttled, 5% random gateway errors, page index 7 failing twice.
    const RECORDS: u64 = 3000;
    let mut fail_first_n = HashMap::new();
    fail_first_n.insert(7, 2);
    let api = ApiGateway::start(ApiConfig {
        records: RECORDS,
        latency: Duration::from_millis(5),
        throttle_every: Some(5),
        retry_after: RetryAfter::Seconds(0),
        error_rate: 0.05,
        fail_first_n,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = pull(
        &api,
        "/prod/offset",
        &lake,
        OFFSET,
        &["--page-size", "50", "--concurrency", "8"],
    );
    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("429 throttled"),
        "{}",
        text(&out.stderr)
    );
    let sum = summary(&out);
    assert_eq!(landed_ids(&lake, &sum), (0..RECORDS).collect::<Vec<_>>());
    assert!(
        api.requests().len() > 60 + 12,
        "expected retried requests, saw {}",
        api.requests().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_page_stops_the_run_after_the_pages_before_it() {
    // Page index 20 is invalid JSON: pages 1-20 are committed, page 21 is named, nothing of
    // the pages fetched ahead of it lands.
    let api = ApiGateway::start(ApiConfig {
        records: 5000,
        latency: Duration::from_millis(10),
        malformed_page: Some(20),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = pull(
        &api,
        "/prod/offset",
        &lake,
        OFFSET,
        &["--page-size", "50", "--concurrency", "8"],
    );
    let out = gatelake(args, vec![]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = summary(&out);
    assert!(
        err["error"].as_str().unwrap().contains("page 21 from"),
        "{err}"
    );
    let cp: Value =
        serde_json::from_slice(&std::fs::read(lake.join("_state/checkpoint.json")).unwrap())
            .unwrap();
    let ids = ids_of_files(&lake, cp["files"].as_array().unwrap());
    assert_eq!(
        ids,
        (0..900).collect::<Vec<_>>(),
        "chunks of 300 before page 21"
    );
    assert_eq!(cp["pages"], 18);
    assert!(cp["next_request"].as_str().unwrap().contains("offset=900"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_page_set_aside_keeps_the_requests_ahead() {
    // --on-bad-page skip: the page after a broken one is offset + limit, the request already
    // in flight for it; the other pages land once, in order.
    let api = ApiGateway::start(ApiConfig {
        records: 2000,
        latency: Duration::from_millis(10),
        malformed_page: Some(12),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = pull(
        &api,
        "/prod/offset",
        &lake,
        OFFSET,
        &[
            "--page-size",
            "50",
            "--concurrency",
            "8",
            "--on-bad-page",
            "skip",
        ],
    );
    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("page 13 set aside"),
        "{}",
        text(&out.stderr)
    );
    let sum = summary(&out);
    assert_eq!(
        landed_ids(&lake, &sum),
        (0..600).chain(650..2000).collect::<Vec<_>>()
    );
    let offsets = asked(&api, "offset");
    assert!(offsets.values().all(|n| *n == 1), "{offsets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_promptly_and_the_resumed_run_completes() {
    const RECORDS: u64 = 20_000;
    let api = ApiGateway::start(ApiConfig {
        records: RECORDS,
        latency: Duration::from_millis(40),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = pull(
        &api,
        "/prod/offset",
        &lake,
        OFFSET,
        &["--page-size", "50", "--concurrency", "8"],
    );
    let child = command()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = lake.join("_state/checkpoint.json");
    let mut committed = false;
    for _ in 0..1000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        committed = std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|cp| cp["next_seq"].as_u64())
            .is_some_and(|n| n >= 2);
        if committed {
            break;
        }
    }
    assert!(committed, "no chunk committed");
    let asked_at = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let took = asked_at.elapsed();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    let cp: Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert!(
        cp["pages"].as_u64().unwrap() < RECORDS / 50,
        "the pull had finished before Ctrl-C: make it longer"
    );

    let sum = pull_ok(args, "").await;
    assert_eq!(sum["resumed"], true);
    assert_eq!(landed_ids(&lake, &sum), (0..RECORDS).collect::<Vec<_>>());
}

#[tokio::test]
async fn sequential_styles_refuse_the_flag_and_ignore_the_environment_variable() {
    let api = ApiGateway::start(ApiConfig {
        records: 250,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = gatelake(
        pull(&api, "/prod/cursor", &lake, CURSOR, &["--concurrency", "4"]),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = summary(&out)["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("--concurrency 4") && err.contains("sequential by nature"),
        "{err}"
    );
    assert!(api.requests().is_empty(), "a refused run sent requests");

    // A scheduler's environment applies to every job: a cursor job runs one page at a time.
    let out = gatelake(
        pull(&api, "/prod/cursor", &lake, CURSOR, &[]),
        vec![("GATELAKE_CONCURRENCY".into(), "4".into())],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: GATELAKE_CONCURRENCY=4 is ignored"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        landed_ids(&lake, &summary(&out)),
        (0..250).collect::<Vec<_>>()
    );
    assert_eq!(api.max_in_flight(), 1);

    // Out of range, whatever the style.
    for n in ["0", "65"] {
        let out = gatelake(
            pull(&api, "/prod/offset", &lake, OFFSET, &["--concurrency", n]),
            vec![],
        )
        .await;
        assert_eq!(out.status.code(), Some(2), "{n}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("between 1 and 64"),
            "{}",
            text(&out.stdout)
        );
    }
}

#[tokio::test]
async fn the_job_file_sets_concurrency_and_a_cursor_job_with_it_is_refused() {
    let api = ApiGateway::start(ApiConfig {
        records: 400,
        latency: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let job_file = dir.path().join("gatelake.toml");
    std::fs::write(
        &job_file,
        format!(
            "[jobs.orders]\nurl = \"{}\"\npaginate = \"offset\"\nrecords = \"items\"\npage_size = 20\nconcurrency = 4\n\n\
             [jobs.feed]\nurl = \"{}\"\npaginate = \"cursor\"\ncursor_path = \"next_cursor\"\nrecords = \"items\"\nconcurrency = 4\n",
            api.url("/prod/offset"),
            api.url("/prod/cursor")
        ),
    )
    .unwrap();
    let lake = dir.path().join("lake");
    let run = |job: &str, extra: &[&str]| {
        let mut a = s(&[
            "pull",
            "--config",
            job_file.to_str().unwrap(),
            "--job",
            job,
            "--output",
            "json",
            "--progress",
            "none",
            "--dest",
            lake.to_str().unwrap(),
        ]);
        a.extend(s(extra));
        a
    };
    let out = gatelake(run("orders", &["--show-settings"]), vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let setting = shown.iter().find(|s| s["key"] == "concurrency").unwrap();
    assert_eq!(
        (&setting["value"], &setting["origin"]),
        (&Value::from("4"), &Value::from("job file"))
    );
    let out = gatelake(run("orders", &[]), vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        landed_ids(&lake, &summary(&out)),
        (0..400).collect::<Vec<_>>()
    );
    assert!(api.max_in_flight() >= 2, "{}", api.max_in_flight());

    let out = gatelake(run("feed", &[]), vec![]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        summary(&out)["error"]
            .as_str()
            .unwrap()
            .contains("concurrency = 4 in the job file: --paginate cursor is sequential by nature"),
        "{}",
        text(&out.stdout)
    );
}

// ---------------------------------------------------------------------------------------------
// Reading ahead: a cursor page's next request started from its pointer before the page is
// parsed (`source::paginate::read_ahead`). At most one request is in flight either way.
// ---------------------------------------------------------------------------------------------

/// What the debug log says when a request read ahead turns out not to be the page's next.
const MISSED: &str = "is not the one the page asks for";

/// A cursor pull, with the debug log on, of the 1,000 records of an API started with
/// `config`, checked to land each record once, in order, from 10 pages: the API (for its
/// request log) and the pull's log.
async fn pull_every_record(config: ApiConfig, extra: &[&str]) -> (ApiGateway, String) {
    let api = ApiGateway::start(config).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = pull(&api, "/prod/cursor", &lake, CURSOR, extra);
    let env = vec![("GATELAKE_LOG".to_string(), "gatelake=debug".to_string())];
    let out = gatelake(args, env).await;
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    let sum = summary(&out);
    assert_eq!(landed_ids(&lake, &sum), (0..1000).collect::<Vec<_>>());
    assert_eq!(sum["pages"], 10);
    (api, log)
}

/// The cursor values asked for, in order (`None`: the first page, without one).
fn cursors_asked(api: &ApiGateway) -> Vec<Option<String>> {
    api.requests()
        .iter()
        .map(|r| r.query_param("cursor"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_pages_read_ahead_are_each_asked_for_once() {
    // 10 pages of 100, the cursor after the records: every request read ahead is the page's
    // next, so its answer is used and nothing is asked twice.
    let config = ApiConfig {
        latency: Duration::from_millis(5),
        ..Default::default()
    };
    let (api, log) = pull_every_record(config, &[]).await;
    let asked = cursors_asked(&api);
    assert_eq!(asked.len(), 10, "{asked:?}");
    let distinct: std::collections::HashSet<_> = asked.iter().collect();
    assert_eq!(distinct.len(), 10, "a page was asked for twice: {asked:?}");
    assert!(!log.contains(MISSED), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_page_that_says_so_with_has_more_gets_no_request_read_ahead() {
    // The API keeps a cursor on its last page, pointing past the end, and says the end with
    // has_more false: the pull asks for its ten pages and nothing after them (a request read
    // ahead from the last page's cursor reached the API before the parse cancelled it).
    let config = ApiConfig {
        cursor_past_end: true,
        latency: Duration::from_millis(5),
        ..Default::default()
    };
    let (api, log) = pull_every_record(config, &["--has-more-path", "has_more"]).await;
    let asked = cursors_asked(&api);
    assert_eq!(asked.len(), 10, "{asked:?}");
    let past_end = Some(apigw::encode_cursor(1000));
    assert!(!asked.contains(&past_end), "{asked:?}");
    assert!(!log.contains(MISSED), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pointer_guessed_wrong_is_dropped_once_and_the_run_waits_for_each_parse() {
    // The cursor comes first and a later member repeats its key with a value that is not a
    // cursor: the request read ahead from page 1 asks for that value (400 invalid cursor),
    // is dropped unread, and no page after it is guessed.
    let decoy = || ApiConfig {
        decoy_cursor: true,
        ..Default::default()
    };
    let (api, log) = pull_every_record(decoy(), &[]).await;
    assert_eq!(log.matches(MISSED).count(), 1, "{log}");
    let asked = cursors_asked(&api);
    let decoys = asked
        .iter()
        .filter(|c| c.as_deref() == Some("not-a-cursor"))
        .count();
    // Cancelled as soon as page 1 is parsed: it may not have been sent yet.
    assert!(decoys <= 1, "{asked:?}");
    assert_eq!(asked.len(), 10 + decoys, "{asked:?}");

    // --no-read-ahead waits for every parse: no guess, no miss.
    let (api, log) = pull_every_record(decoy(), &["--no-read-ahead"]).await;
    assert!(!log.contains(MISSED), "{log}");
    let asked = cursors_asked(&api);
    assert_eq!(asked.len(), 10, "{asked:?}");
    assert!(asked.iter().all(|c| c.as_deref() != Some("not-a-cursor")));
}
