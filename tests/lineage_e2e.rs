//! Lineage end to end: the real binary pulls from the API Gateway emulator, which answers
//! every request with a request id and logs it, and the run's `_lineage.jsonl.gz` must hold
//! every logged request id exactly once per attempt (503s and broken bodies retried
//! included), name the run in every request's `User-Agent`, and put each page's records in
//! the chunk and rows where they really landed — also across a SIGKILL and the resume.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::apigw::{self, ApiConfig, ApiGateway};
use support::run::{command, gatelake, s, summary, text};

const PAGE: u64 = 50;

fn pull_args(api: &ApiGateway, dest: &Path, chunk_rows: u64) -> Vec<String> {
    let mut a = s(&[
        "pull",
        "--url",
        &api.url(&format!("/prod/cursor?limit={PAGE}")),
        "--paginate",
        "cursor",
        "--cursor-path",
        "next_cursor",
        "--records",
        "items",
        "--chunk-rows",
        &chunk_rows.to_string(),
        "--upload-concurrency",
        "3",
        "--output",
        "json",
        "--progress",
        "none",
        "--dest",
    ]);
    a.push(dest.to_str().unwrap().to_string());
    a
}

fn gunzip(data: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_string(&mut out)
        .expect("gunzip");
    out
}

/// The run's manifest (checked against its schema) and its lineage lines, after checking the
/// manifest's reference (lines, size, MD5) against the stored file.
fn manifest_and_lineage(lake: &Path, run_id: &str) -> (Value, Vec<Value>) {
    let run_dir = lake.join(run_id);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("_manifest.json")).unwrap()).unwrap();
    support::manifest::check_manifest(&manifest);
    let reference = &manifest["lineage"];
    assert_eq!(
        reference["path"],
        format!("{run_id}/_lineage.jsonl.gz"),
        "{manifest}"
    );
    let stored = std::fs::read(lake.join(reference["path"].as_str().unwrap())).unwrap();
    assert_eq!(reference["bytes"].as_u64(), Some(stored.len() as u64));
    use base64::Engine as _;
    use md5::Digest as _;
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&stored));
    assert_eq!(reference["md5"], md5.as_str());
    let lines: Vec<Value> = gunzip(&stored)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reference["lines"].as_u64(), Some(lines.len() as u64));
    // The pieces kept beside the chunks until the commit are gone.
    let pieces: Vec<String> = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("_lineage-"))
        .collect();
    assert!(pieces.is_empty(), "pieces left: {pieces:?}");
    (manifest, lines)
}

/// Each page line's records are the page's records, at the rows it names in the chunk it
/// names, and the pages' spans cover every row of every chunk exactly once. Returns the page
/// numbers in the order the lineage lists them.
fn check_chunks(lake: &Path, manifest: &Value, pages: &[&Value]) -> Vec<u64> {
    let mut chunks: HashMap<String, Vec<Value>> = HashMap::new();
    for f in manifest["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap().to_string();
        let rows = gunzip(&std::fs::read(lake.join(&path)).unwrap())
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        chunks.insert(path, rows);
    }
    let mut covered: HashMap<String, u64> = HashMap::new();
    let mut numbers = Vec::new();
    for p in pages {
        let n = p["page"].as_u64().unwrap();
        numbers.push(n);
        let records = p["records"].as_u64().unwrap();
        // The cursor route serves records (n-1)·PAGE onwards.
        let first_id = (n - 1) * PAGE;
        let chunk = p["chunk"]
            .as_str()
            .unwrap_or_else(|| panic!("page {n}: no chunk: {p}"));
        let rows = &chunks[chunk];
        let span = &p["rows"];
        let (first, count) = (
            span["first"].as_u64().unwrap(),
            span["count"].as_u64().unwrap(),
        );
        assert_eq!(count, records, "page {n}: {p}");
        for i in 0..count {
            let row = &rows[(first + i) as usize];
            assert_eq!(
                row,
                &apigw::record(first_id + i),
                "page {n}: row {} of {chunk}",
                first + i
            );
        }
        let next = covered.entry(chunk.to_string()).or_default();
        assert_eq!(
            *next, first,
            "page {n}: rows of {chunk} skipped or repeated"
        );
        *next += count;
    }
    for (chunk, rows) in &chunks {
        assert_eq!(
            covered.get(chunk).copied(),
            Some(rows.len() as u64),
            "{chunk}"
        );
    }
    numbers
}

fn request_ids(attempt: &Value) -> (String, String) {
    let ids = &attempt["request_ids"];
    (
        ids["x-amzn-requestid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        ids["apigw-requestid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_logged_request_id_is_in_the_lineage_once_per_attempt_with_its_chunk() {
    let records = 1010; // 21 pages: the last one short
    let api = ApiGateway::start(ApiConfig {
        records,
        page_size: PAGE,
        // Page index → 503s before it is served; a body cut short once.
        fail_first_n: HashMap::from([(3, 2), (7, 1)]),
        truncate_first_n: HashMap::from([(12, 1)]),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = gatelake(pull_args(&api, &lake, 200), vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    let run_id = sum["run_id"].as_str().unwrap().to_string();
    assert_eq!(sum["rows"].as_u64(), Some(records));
    let (manifest, lines) = manifest_and_lineage(&lake, &run_id);

    // The run line: the run, who it was, and the User-Agent its requests sent.
    let run = &lines[0];
    assert_eq!(run["type"], "run");
    assert_eq!(run["run_id"], run_id.as_str());
    let agent = format!("gatelake/{} run/{run_id}", env!("CARGO_PKG_VERSION"));
    assert_eq!(run["user_agent"], agent.as_str());
    assert_eq!(run["identities"], manifest["identities"]);

    // Every request the API logged carried the run's User-Agent, and its id is in the
    // lineage exactly once, in the same order (one request at a time).
    let logged = api.requests();
    for r in &logged {
        assert_eq!(r.headers["user-agent"], agent.as_str(), "{}", r.path);
    }
    let pages: Vec<&Value> = lines[1..].iter().collect();
    assert!(pages.iter().all(|p| p["type"] == "page"));
    let mut in_lineage = Vec::new();
    for p in &pages {
        for a in p["attempts"].as_array().unwrap() {
            let (rest, http) = request_ids(a);
            assert_eq!(rest, http, "both request-id headers carry the one id: {a}");
            in_lineage.push(rest);
        }
    }
    let logged_ids: Vec<String> = logged.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(in_lineage, logged_ids);
    let unique: std::collections::HashSet<&String> = in_lineage.iter().collect();
    assert_eq!(unique.len(), in_lineage.len());

    // Retries are attempts of their page, with their statuses and reasons.
    let page = |n: u64| *pages.iter().find(|p| p["page"] == n).unwrap();
    let statuses = |n: u64| -> Vec<Value> {
        page(n)["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status"].clone())
            .collect()
    };
    assert_eq!(statuses(4), vec![503, 503, 200]);
    assert_eq!(statuses(8), vec![503, 200]);
    assert_eq!(statuses(13), vec![200, 200]);
    assert!(page(13)["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .contains("reading the body failed"));
    assert!(page(4)["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("503"));
    assert_eq!(statuses(1), vec![200]);
    // The request as sent, without the host; the body's size; the page's records.
    assert_eq!(page(1)["request"]["method"], "GET");
    assert_eq!(page(1)["request"]["path"], "/prod/cursor");
    assert_eq!(
        page(1)["request"]["query"],
        format!("limit={PAGE}").as_str()
    );
    assert!(page(2)["request"]["query"]
        .as_str()
        .unwrap()
        .contains("cursor="));
    assert_eq!(page(21)["records"], 10);
    assert!(page(1)["bytes"].as_u64().unwrap() > 1000);

    // Each page's records are where the lineage says, and nothing else is in the chunks.
    let numbers = check_chunks(&lake, &manifest, &pages);
    assert_eq!(numbers, (1..=21).collect::<Vec<_>>());
}

/// Wait (bounded) until the local checkpoint has at least `chunks` committed chunks.
async fn wait_for_commits(path: &Path, chunks: u64) -> Value {
    for _ in 0..2000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let cp = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if let Some(cp) = cp.filter(|v| v["next_seq"].as_u64().unwrap_or(0) >= chunks) {
            return cp;
        }
    }
    panic!("no {chunks} chunks committed within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_keeps_the_lineage_of_its_committed_chunks_and_the_resume_adds_the_rest() {
    let records = 3000; // 60 pages of 50
    let api = ApiGateway::start(ApiConfig {
        records,
        page_size: PAGE,
        latency: Duration::from_millis(10),
        fail_first_n: HashMap::from([(2, 1), (40, 1)]),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = pull_args(&api, &lake, 150);
    let mut child = command()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cp = wait_for_commits(&lake.join("_state/checkpoint.json"), 3).await;
    child.kill().unwrap(); // SIGKILL: no clean-up of any kind
    let _ = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await;
    let run_id = cp["run_id"].as_str().unwrap().to_string();
    // The committed chunks' lineage is stored beside them already.
    let pieces = std::fs::read_dir(lake.join(&run_id))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("_lineage-part-")
        })
        .count() as u64;
    assert!(
        pieces >= cp["next_seq"].as_u64().unwrap(),
        "{pieces} pieces"
    );
    let killed_requests = api.requests().len();

    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["resumed"], true);
    assert_eq!(sum["run_id"], run_id.as_str());
    assert_eq!(sum["rows"].as_u64(), Some(records));
    let (manifest, lines) = manifest_and_lineage(&lake, &run_id);
    assert_eq!(lines[0]["run_id"], run_id.as_str());
    let pages: Vec<&Value> = lines[1..].iter().collect();
    // Each page exactly once, in order, each in the right chunk at the right rows: pages the
    // killed attempt fetched but never committed are told by the attempt that landed them.
    let numbers = check_chunks(&lake, &manifest, &pages);
    assert_eq!(numbers, (1..=60).collect::<Vec<_>>());

    // Every id in the lineage is one the API logged, once; the resumed invocation's requests
    // are all there (the killed one's only as far as its committed chunks go).
    let logged = api.requests();
    let agent = format!("gatelake/{} run/{run_id}", env!("CARGO_PKG_VERSION"));
    assert!(logged
        .iter()
        .all(|r| r.headers["user-agent"] == agent.as_str()));
    let mut seen = std::collections::HashSet::new();
    for p in &pages {
        for a in p["attempts"].as_array().unwrap() {
            let (id, _) = request_ids(a);
            assert!(seen.insert(id.clone()), "{id} twice");
            assert!(
                logged.iter().any(|r| r.request_id == id),
                "{id} never logged"
            );
        }
    }
    for r in &logged[killed_requests..] {
        assert!(seen.contains(&r.request_id), "{} missing", r.request_id);
    }
}

/// The README's example line (`## Lineage`), parsed: it reads as a lineage line, and it has
/// exactly the keys a real page line has (a retried page's, at its top level and in each of
/// its two attempts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_lineage_example() {
    const README: &str = include_str!("../README.md");
    let block = README
        .split_once("<!-- readme-test: readme_lineage_example -->\n```json\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(json, _)| json)
        .expect("the README's lineage example");
    let example: Value = serde_json::from_str(block).unwrap();
    let typed: gatelake::load::lineage::LineageLine =
        serde_json::from_value(example.clone()).unwrap();
    assert!(matches!(
        typed,
        gatelake::load::lineage::LineageLine::Page(_)
    ));

    let api = ApiGateway::start(ApiConfig {
        records: 120,
        page_size: PAGE,
        fail_first_n: HashMap::from([(0, 1)]),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = gatelake(pull_args(&api, &lake, 1000), vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run_id = summary(&out)["run_id"].as_str().unwrap().to_string();
    let (_, lines) = manifest_and_lineage(&lake, &run_id);
    let real = &lines[1];
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&example), keys(real), "{real}");
    for i in 0..2 {
        assert_eq!(
            keys(&example["attempts"][i]),
            keys(&real["attempts"][i]),
            "{real}"
        );
    }
    assert_eq!(keys(&example["request"]), keys(&real["request"]));
    assert_eq!(keys(&example["rows"]), keys(&real["rows"]));
}

/// With a role (`--aws-role-arn`, a web-identity token file, `--api-auth iam`), the role
/// session name and STS's `User-Agent` name the run; a resumed run, whose identity was proved
/// under the id minted for a new run, exchanges again under its own before its first signed
/// request, and its manifest and lineage name that session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_session_and_the_sts_user_agent_name_the_run_also_when_it_resumes() {
    use std::sync::{Arc, Mutex};
    use support::apigw::{ApiAuthCheck, IssuedKeys};
    use support::identity::{jwt, now, StsFront, TrustPolicy};
    let issuer = "https://token.actions.githubusercontent.example";
    let subject = "repo:org/lineage:ref:refs/heads/main";
    let issued: IssuedKeys = Arc::new(Mutex::new(HashMap::new()));
    let sts = StsFront::start(
        TrustPolicy {
            issuer: issuer.into(),
            audience: "sts.amazonaws.com".into(),
            subject: subject.into(),
        },
        issued.clone(),
    )
    .await;
    let api = ApiGateway::start(ApiConfig {
        records: 300,
        page_size: PAGE,
        auth: ApiAuthCheck::SigV4Issued {
            issued,
            region: "us-east-1".into(),
        },
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(
        &token,
        jwt(&serde_json::json!({
            "iss": issuer, "aud": "sts.amazonaws.com", "sub": subject, "exp": now() + 600,
        })),
    )
    .unwrap();
    let lake = dir.path().join("lake");
    let mut args = pull_args(&api, &lake, 100);
    args.extend(s(&[
        "--api-auth",
        "iam",
        "--region",
        "us-east-1",
        "--aws-role-arn",
        "arn:aws:iam::123456789012:role/lineage",
        "--web-identity",
        "file",
        "--web-identity-token-file",
        token.to_str().unwrap(),
    ]));
    let env = vec![("AWS_ENDPOINT_URL_STS".to_string(), sts.url())];
    let agent = |run: &str| format!("gatelake/{} run/{run}", env!("CARGO_PKG_VERSION"));

    // A run cut short by --max-pages is partial, unfinished: the next run resumes it.
    let mut first = args.clone();
    first.extend(s(&["--max-pages", "2"]));
    let out = gatelake(first, env.clone()).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let run_id = summary(&out)["run_id"].as_str().unwrap().to_string();
    let sessions = sts.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(
        sessions[0].0.starts_with("gatelake-") && sessions[0].0.ends_with(&format!("-{run_id}")),
        "{sessions:?}"
    );
    assert!(
        sessions[0].1.starts_with(&format!("{} ", agent(&run_id))),
        "{sessions:?}"
    );

    let out = gatelake(args, env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["resumed"], true);
    assert_eq!(sum["run_id"], run_id.as_str());
    let sessions = sts.sessions();
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    assert!(!sessions[1].0.ends_with(&run_id), "{sessions:?}");
    assert!(
        sessions[2].0.ends_with(&format!("-{run_id}")),
        "{sessions:?}"
    );
    assert!(sessions[2].1.starts_with(&agent(&run_id)), "{sessions:?}");
    let (manifest, lines) = manifest_and_lineage(&lake, &run_id);
    for identities in [&lines[0]["identities"], &manifest["identities"]] {
        let aws = identities
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["role"] == "aws")
            .unwrap_or_else(|| panic!("{identities}"));
        assert_eq!(aws["session_name"], sessions[2].0.as_str(), "{aws}");
        assert!(
            aws["name"].as_str().unwrap().ends_with(&sessions[2].0),
            "{aws}"
        );
    }
    // Every API request of both invocations named the run.
    assert!(api
        .requests()
        .iter()
        .all(|r| r.headers["user-agent"] == agent(&run_id).as_str()));
}
