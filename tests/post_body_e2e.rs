//! End to end: APIs that page through a POST body (`--method POST --body …` with each style's
//! `*-body-path`), against the API Gateway emulator's search routes (`support/apigw_body.rs`),
//! signed with SigV4 over the body's hash. Every record must land exactly once, every request
//! must carry the template with the run's values filled in and the pointer in the body, and a
//! killed run must resume by replaying the saved request (URL and body) exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::apigw::{self, ApiAuthCheck, ApiConfig, ApiGateway};
use support::run::{command, gatelake, s, summary, text};

const ACCESS_KEY: &str = "AKIDPOSTBODYTEST";
const SECRET_KEY: &str = "b0dy/Secret+key";
const REGION: &str = "eu-west-1";

fn sigv4() -> ApiAuthCheck {
    ApiAuthCheck::SigV4 {
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        session_token: None,
        region: REGION.into(),
    }
}

fn aws_env() -> Vec<(String, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
    ]
}

/// The pull of `route` (a search route) into `lake` with `style` flags, signed with SigV4.
fn pull_args(api: &ApiGateway, route: &str, lake: &Path, style: &[&str]) -> Vec<String> {
    let mut a = s(&[
        "pull",
        "--url",
        &api.url(route),
        "--method",
        "post",
        "--query",
        "trace=run-{run_id}",
        "--api-auth",
        "iam",
        "--region",
        REGION,
        "--output",
        "json",
        "--progress",
        "plain",
        "--dest",
        lake.to_str().unwrap(),
    ]);
    a.extend(s(style));
    a
}

/// Every record id the run in `summary` landed, in order, each checked against what the
/// server served.
fn landed_ids(lake: &Path, summary: &Value) -> Vec<u64> {
    let run = lake.join(summary["run_id"].as_str().unwrap());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run.join("_manifest.json")).unwrap()).unwrap();
    support::manifest::check_manifest(&manifest);
    let mut ids = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(
            std::fs::File::open(lake.join(f["path"].as_str().unwrap())).unwrap(),
        )
        .read_to_string(&mut text)
        .unwrap();
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let id = record["id"].as_u64().unwrap();
            assert_eq!(record, apigw::record(id));
            ids.push(id);
        }
    }
    ids
}

fn body_of(r: &apigw::RecordedRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// Whether request `i`'s body carries the pointer where the style puts it.
type PointerCheck = fn(&Value, usize) -> bool;

#[tokio::test]
async fn each_style_pages_through_the_body_signed_over_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let template = r#"{"query":{"status":"open"},"as_of":"{run_started}","paging":{"size":40}}"#;
    // (route, style flags, where the pointer is in each body)
    let cases: Vec<(&str, Vec<&str>, PointerCheck)> = vec![
        (
            "/prod/search/cursor",
            vec![
                "--paginate",
                "cursor",
                "--cursor-path",
                "next_page_token",
                "--cursor-body-path",
                "page_token",
                "--records",
                "items",
            ],
            |b, i| {
                // The first page has none yet; later ones carry the opaque token as a string,
                // exactly as served (it holds '+', '/' and '=').
                (i == 0) == b["page_token"].is_null()
                    && (i == 0 || apigw::decode_cursor(b["page_token"].as_str().unwrap()).is_some())
            },
        ),
        (
            "/prod/search/offset",
            vec![
                "--paginate",
                "offset",
                "--offset-body-path",
                "from",
                "--limit-body-path",
                "size",
                "--page-size",
                "40",
                "--records",
                "items",
                "--total-path",
                "total",
                "--concurrency",
                "3",
            ],
            |b, _| b["from"].is_u64() && b["size"] == 40,
        ),
        (
            "/prod/search/page",
            vec![
                "--paginate",
                "page",
                "--page-body-path",
                "paging.number",
                "--page-size-param",
                "per_page",
                "--page-size",
                "40",
                "--page-size-body-path",
                "paging.size",
                "--has-more-path",
                "has_more",
                "--records",
                "results",
            ],
            |b, i| b["paging"]["number"] == i as u64 + 1 && b["paging"]["size"] == 40,
        ),
    ];
    for (route, style, pointer_ok) in cases {
        let api = ApiGateway::start(ApiConfig {
            records: 230,
            page_size: 40,
            auth: sigv4(),
            ..Default::default()
        })
        .await;
        let lake = dir.path().join(route.rsplit('/').next().unwrap());
        let mut args = pull_args(&api, route, &lake, &style);
        args.extend(s(&["--body", template]));
        let out = gatelake(args, aws_env()).await;
        assert!(out.status.success(), "{route}: {}", text(&out.stderr));
        let sum = summary(&out);
        assert_eq!(
            landed_ids(&lake, &sum),
            (0..230).collect::<Vec<_>>(),
            "{route}"
        );
        let run_id = sum["run_id"].as_str().unwrap().to_string();
        // In page order (offset fetches ahead: sort by where each page starts).
        let mut requests = api.requests();
        assert!(requests.len() >= 6, "{route}: {}", requests.len());
        requests.sort_by_key(|r| {
            let b = body_of(r);
            b["from"]
                .as_u64()
                .or(b["paging"]["number"].as_u64())
                .unwrap_or(0)
        });
        let as_of = body_of(&requests[0])["as_of"].clone();
        assert!(as_of.as_str().unwrap().ends_with('Z'), "{as_of}");
        for (i, r) in requests.iter().enumerate() {
            assert_eq!(r.method, "POST", "{route}");
            assert_eq!(r.headers["content-type"], "application/json", "{route}");
            // The query template, filled with the run's id; no pointer left in the query.
            assert_eq!(
                r.query.as_deref(),
                Some(format!("trace=run-{run_id}").as_str()),
                "{route}"
            );
            let b = body_of(r);
            assert_eq!(b["query"], json!({"status": "open"}), "{route}");
            assert_eq!(
                b["as_of"], as_of,
                "{route}: the run's start, the same on every page"
            );
            if route.ends_with("/cursor") || i < 6 {
                assert!(pointer_ok(&b, i), "{route} request {i}: {b}");
            }
        }
    }
}

/// Wait (bounded) until the checkpoint at `path` has `chunks` committed chunks.
async fn wait_for_commits(path: &Path, chunks: u64) -> Value {
    for _ in 0..1000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let cp = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if let Some(cp) = cp.filter(|c| c["next_seq"].as_u64().unwrap_or(0) >= chunks) {
            return cp;
        }
    }
    panic!("no {chunks} committed chunks in {path:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_post_run_resumes_by_replaying_the_saved_request() {
    let api = ApiGateway::start(ApiConfig {
        records: 3000,
        page_size: 100,
        auth: sigv4(),
        latency: Duration::from_millis(15),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let secret = "client-s3cr3t-in-body";
    let body = format!(
        r#"{{"query":{{"text":"orders"}},"as_of":"{{run_started}}","client_secret":"{secret}"}}"#
    );
    let style = [
        "--paginate",
        "cursor",
        "--cursor-path",
        "next_page_token",
        "--cursor-body-path",
        "page_token",
        "--records",
        "items",
        "--chunk-rows",
        "300",
    ];
    let mut args = pull_args(&api, "/prod/search/cursor", &lake, &style);
    args.extend(s(&["--body", &body]));
    let mut child = command()
        .args(&args)
        .envs(aws_env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = lake.join("_state/checkpoint.json");
    wait_for_commits(&checkpoint, 2).await;
    child.kill().unwrap();
    let _ = child.wait();
    let seen_before = api.requests().len();

    // The checkpoint holds the whole next request: the URL as sent (no pointer in it) and the
    // body with the pointer, the template and the run's values, and no secret.
    let saved = std::fs::read_to_string(&checkpoint).unwrap();
    assert!(!saved.contains(secret), "{saved}");
    let cp: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(cp["status"], "running");
    let next_url = cp["next_request"].as_str().unwrap();
    assert!(
        next_url.ends_with(&format!(
            "/prod/search/cursor?trace=run-{}",
            cp["run_id"].as_str().unwrap()
        )),
        "{next_url}"
    );
    let next_body: Value = serde_json::from_str(cp["next_body"].as_str().unwrap()).unwrap();
    assert_eq!(next_body["client_secret"], "***");
    let token = next_body["page_token"].as_str().unwrap();
    let committed_rows: u64 = cp["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(apigw::decode_cursor(token), Some(committed_rows));

    // A resume with another body would mix two searches in one run: refused.
    let mut changed = pull_args(&api, "/prod/search/cursor", &lake, &style);
    changed.extend(s(&["--body", r#"{"query":{"text":"invoices"}}"#]));
    let out = gatelake(changed, aws_env()).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = summary(&out);
    assert!(
        err["error"].as_str().unwrap().contains("would send"),
        "{err}"
    );
    assert!(!text(&out.stderr).contains(secret));
    assert_eq!(api.requests().len(), seen_before, "nothing was sent");

    // The same command resumes: its first request is the saved one, byte for byte (with the
    // secret the checkpoint masked put back from the template).
    let out = gatelake(args, aws_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["resumed"], true);
    assert_eq!(sum["run_id"], cp["run_id"]);
    let first = &api.requests()[seen_before];
    let mut sent = body_of(first);
    assert_eq!(sent["client_secret"], secret);
    sent["client_secret"] = json!("***");
    assert_eq!(sent, next_body);
    assert_eq!(
        format!(
            "{}?{}",
            api.url(&first.path),
            first.query.as_deref().unwrap()
        ),
        next_url
    );
    assert_eq!(landed_ids(&lake, &sum), (0..3000).collect::<Vec<_>>());
    assert!(!text(&out.stderr).contains(secret));
}

#[tokio::test]
async fn templates_that_cannot_work_are_refused_before_any_request() {
    let api = ApiGateway::start(ApiConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let base = |extra: &[&str]| {
        let mut a = s(&[
            "pull",
            "--url",
            &api.url("/prod/search/cursor"),
            "--paginate",
            "cursor",
            "--cursor-path",
            "next_page_token",
            "--output",
            "json",
            "--dest",
            lake.to_str().unwrap(),
        ]);
        a.extend(s(extra));
        a
    };
    for (extra, want) in [
        (
            vec!["--cursor-body-path", "page_token"],
            "add --method POST",
        ),
        (vec!["--body", r#"{"q":1}"#], "only with --method POST"),
        (
            vec!["--method", "post", "--body", "[1]"],
            "must be a JSON object",
        ),
        (
            vec!["--method", "post", "--body", r#"{"as_of":"{run_start}"}"#],
            "unknown placeholder {run_start}",
        ),
        (
            vec![
                "--method",
                "post",
                "--body",
                r#"{"page_token":"x"}"#,
                "--cursor-body-path",
                "page_token.value",
            ],
            "'page_token' in the body template is a string",
        ),
        (
            vec!["--method", "post", "--body", "@/nonexistent/body.json"],
            "--body @/nonexistent/body.json: cannot read",
        ),
        (
            vec!["--method", "post", "--query", "nameless"],
            "NAME=VALUE",
        ),
    ] {
        let out = gatelake(base(&extra), vec![]).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        let err = summary(&out);
        assert_eq!(err["error_kind"], "usage", "{extra:?}: {err}");
        assert!(
            err["error"].as_str().unwrap().contains(want),
            "{extra:?}: {err}"
        );
    }
    assert!(api.requests().is_empty());
}

/// A body from `@file`; a page whose POST fails with a 503 is retried with the same body (a
/// search reads, it starts nothing).
#[tokio::test]
async fn a_body_from_a_file_and_a_retried_page() {
    let api = ApiGateway::start(ApiConfig {
        records: 50,
        page_size: 20,
        fail_first_n: [(1, 2)].into_iter().collect(),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("search.json");
    std::fs::write(&file, r#"{"query":{"text":"from a file"}}"#).unwrap();
    let lake = dir.path().join("lake");
    let args = |method: &str| {
        s(&[
            "pull",
            "--url",
            &api.url("/prod/search/offset"),
            "--method",
            method,
            "--paginate",
            "offset",
            "--offset-body-path",
            "from",
            "--limit-body-path",
            "size",
            "--page-size",
            "20",
            "--records",
            "items",
            "--output",
            "json",
            "--dest",
            lake.to_str().unwrap(),
        ])
    };
    let mut post = args("POST");
    post.extend(s(&["--body", &format!("@{}", file.display())]));
    let out = gatelake(post, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        landed_ids(&lake, &summary(&out)),
        (0..50).collect::<Vec<_>>()
    );
    let requests = api.requests();
    for r in &requests {
        assert_eq!(body_of(r)["query"]["text"], "from a file");
        assert_eq!(r.query, None, "nothing left in the query");
    }
    // Offsets 0, 20 (failed twice, then answered), 40 (10 records), 50 (empty: the end).
    let froms: Vec<u64> = requests
        .iter()
        .map(|r| body_of(r)["from"].as_u64().unwrap())
        .collect();
    assert_eq!(froms, [0, 20, 20, 20, 40, 50]);
    assert_eq!(
        requests[1].body, requests[3].body,
        "the retry sends the same body"
    );
}

/// The lineage records each page's request as it was sent: the method POST, the path, the
/// query with its template filled in and without the pointer (which travels in the body).
#[tokio::test]
async fn the_lineage_records_the_post_as_sent() {
    let api = ApiGateway::start(ApiConfig {
        records: 50,
        page_size: 20,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = gatelake(
        s(&[
            "pull",
            "--url",
            &api.url("/prod/search/offset"),
            "--method",
            "POST",
            "--body",
            r#"{"query":{"status":"open"}}"#,
            "--query",
            "trace=run-{run_id}",
            "--paginate",
            "offset",
            "--offset-body-path",
            "from",
            "--limit-body-path",
            "size",
            "--page-size",
            "20",
            "--records",
            "items",
            "--output",
            "json",
            "--dest",
            lake.to_str().unwrap(),
        ]),
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run_id = summary(&out)["run_id"].as_str().unwrap().to_string();
    let stored = std::fs::read(lake.join(&run_id).join("_lineage.jsonl.gz")).unwrap();
    let mut lineage = String::new();
    flate2::read::MultiGzDecoder::new(&stored[..])
        .read_to_string(&mut lineage)
        .unwrap();
    let pages: Vec<Value> = lineage
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "page")
        .collect();
    // Offsets 0, 20, 40 and 50 (empty: the end).
    assert_eq!(pages.len(), 4, "{lineage}");
    let trace = format!("trace=run-{run_id}");
    for line in &pages {
        let request = &line["request"];
        assert_eq!(request["method"], "POST", "{line}");
        assert_eq!(request["path"], "/prod/search/offset", "{line}");
        let query = request["query"].as_str().unwrap_or_default();
        assert!(query.contains(&trace), "the filled-in template: {line}");
        assert!(
            !query.contains("from="),
            "the pointer is in the body: {line}"
        );
    }
    assert_eq!(api.requests().len(), 4);
}

/// The README block marked `readme_a_search_api`, as written.
fn readme_block(name: &str) -> String {
    const README: &str = include_str!("../README.md");
    let marker = format!("<!-- readme-test: {name} -->");
    let after = README
        .split_once(marker.as_str())
        .unwrap_or_else(|| panic!("no README block marked {marker}"))
        .1;
    let fenced = after.split_once("```sh\n").unwrap().1;
    fenced.split_once("```").unwrap().0.to_string()
}

/// `## A search API that pages through its request body`: the block run as written by bash,
/// against the emulator's search route (SigV4 over the body) and Azurite.
#[tokio::test(flavor = "multi_thread")]
async fn readme_a_search_api() {
    use gatelake::sink::Sink;
    use support::azurite::azurite;
    let api = ApiGateway::start(ApiConfig {
        records: 321,
        page_size: 50,
        auth: ApiAuthCheck::SigV4 {
            access_key: "AKIDREADMESEARCH".into(),
            secret_key: "readme-search-secret".into(),
            session_token: None,
            region: "us-east-1".into(),
        },
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("readme-search").await;
    let block = readme_block("readme_a_search_api");
    let mut script = block.clone();
    for (from, to) in [
        (
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/search",
            api.url("/prod/search/cursor"),
        ),
        (
            "abfss://raw@myaccount.dfs.core.windows.net/search",
            azurite().dest_url(&container, "search"),
        ),
    ] {
        assert!(script.contains(from), "the README block changed:\n{block}");
        script = script.replace(from, &to);
    }
    assert!(!script.contains("amazonaws.com") && !script.contains("windows.net"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("readme-block.sh");
    std::fs::write(&file, &script).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_gatelake"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = support::run::hermetic("bash");
    bash.current_dir(dir.path())
        .args(["-euo", "pipefail"])
        .arg(&file)
        .env("PATH", path)
        .env(
            "AZURE_STORAGE_CONNECTION_STRING",
            azurite().connection_string(),
        )
        .env("AWS_ACCESS_KEY_ID", "AKIDREADMESEARCH")
        .env("AWS_SECRET_ACCESS_KEY", "readme-search-secret")
        // The stand-in is on loopback: the region cannot come from the host name.
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || bash.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = sink.list("search/").await.unwrap();
    let success: Vec<_> = listed
        .iter()
        .filter(|o| o.path.ends_with("/_SUCCESS"))
        .collect();
    assert_eq!(success.len(), 1, "{listed:?}");
    let run = success[0].path.trim_end_matches("/_SUCCESS");
    let manifest = sink
        .get(&format!("{run}/_manifest.json"))
        .await
        .unwrap()
        .unwrap();
    let m: Value = serde_json::from_slice(&manifest.data).unwrap();
    assert_eq!(m["totals"]["rows"], 321);
    for r in api.requests() {
        assert_eq!(r.method, "POST");
        assert_eq!(body_of(&r)["query"], json!({"status": "open"}));
        assert!(r.query.as_deref().unwrap().starts_with("trace=gatelake-"));
    }
}

/// The job file takes the same settings: `method`, `body`, a `query` table and a style's
/// `*_body_path` keys.
#[tokio::test]
async fn a_job_file_describes_the_same_request() {
    let api = ApiGateway::start(ApiConfig {
        records: 95,
        page_size: 30,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let config = dir.path().join("gatelake.toml");
    std::fs::write(
        &config,
        format!(
            r#"[jobs.search]
url = "{url}"
method = "POST"
body = '{{"query": {{"text": "job file"}}}}'
paginate = "page"
page_body_path = "paging.number"
page_size_param = "per_page"
page_size = 30
page_size_body_path = "paging.size"
has_more_path = "has_more"
records = "results"
dest = "{dest}"

[jobs.search.query]
index = "orders-{{run_id}}"
"#,
            url = api.url("/prod/search/page"),
            dest = lake.display()
        ),
    )
    .unwrap();
    let args = s(&[
        "pull",
        "--config",
        config.to_str().unwrap(),
        "--job",
        "search",
        "--output",
        "json",
    ]);
    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(landed_ids(&lake, &sum), (0..95).collect::<Vec<_>>());
    let index = format!("index=orders-{}", sum["run_id"].as_str().unwrap());
    let requests = api.requests();
    assert_eq!(requests.len(), 4);
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(r.query.as_deref(), Some(index.as_str()));
        let b = body_of(r);
        assert_eq!(b["query"]["text"], "job file");
        assert_eq!(b["paging"], json!({"number": i + 1, "size": 30}));
    }
}
