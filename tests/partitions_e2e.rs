//! Scale-out under abuse: one partitioned job pulled by several worker processes (the real
//! binary, `--worker`) against the local API Gateway server, with workers SIGKILLed at
//! random moments while they hold a partition and short leases, into Azurite and into a
//! local folder. The lake must end up with every record exactly once, one manifest and one
//! `_SUCCESS`, no stray data file, and no partition pulled to completion twice; a worker that
//! arrives after the commit finds nothing left; failed partitions stop the run without
//! `_SUCCESS`, and a rerun retries only those.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gatelake::sink::local::LocalSink;
use gatelake::sink::Sink;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::apigw::{self, ApiConfig, ApiGateway};
use support::azurite::azurite;
use support::run::{command, gatelake, s, summary, text};

/// Records served, pages of this many (slow ones, so that workers are killed mid-partition),
/// ranges (partitions).
const RECORDS: u64 = 3000;
const PAGE: u64 = 20;
const LATENCY: Duration = Duration::from_millis(250);
const RANGES: u64 = 12;
/// Workers running at once, and SIGKILLs in one run (the README and the closing
/// note quote these).
const WORKERS: usize = 6;
const KILLS: usize = 6;

fn job_args(api: &ApiGateway, dest: &str, key: &str) -> Vec<String> {
    job_args_paged(api, dest, key, PAGE)
}

fn job_args_paged(api: &ApiGateway, dest: &str, key: &str, page: u64) -> Vec<String> {
    let mut a = s(&[
        "pull",
        "--url",
        &api.url("/prod/offset"),
        "--paginate",
        "offset",
        "--page-size",
        &page.to_string(),
        "--total-path",
        "total",
        "--records",
        "items",
        "--ranges",
        &RANGES.to_string(),
        "--chunk-rows",
        "100",
        "--output",
        "json",
        "--progress",
        "none",
        "--run-key",
        key,
        "--dest",
    ]);
    a.push(dest.to_string());
    a
}

fn spawn_worker(args: &[String], env: &[(String, String)], id: &str) -> Child {
    command()
        .args(args)
        .args(["--worker", "--lease", "2s", "--worker-id", id])
        .envs(env.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a worker")
}

/// The lease of each partition, by partition id.
async fn leases(sink: &dyn Sink) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for o in sink.list("_state/partitions/").await.unwrap() {
        if o.path.ends_with("/lease.json") {
            if let Some(got) = sink.get(&o.path).await.unwrap() {
                let v: Value = serde_json::from_slice(&got.data).unwrap();
                out.insert(v["partition"].as_str().unwrap().to_string(), v);
            }
        }
    }
    out
}

/// What one job's workers did: their reports (killed ones have none).
struct Swarm {
    reports: Vec<Value>,
    kills: usize,
}

/// Run [`WORKERS`] workers on the job, SIGKILL one that holds a partition [`KILLS`] times
/// (each replaced by a new worker, as an engine retries a failed task), and wait for the
/// rest to finish.
async fn swarm(args: Vec<String>, env: Vec<(String, String)>, sink: Arc<dyn Sink>) -> Swarm {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5ca1e);
    let mut next_id = 0;
    let mut live: Vec<(String, Child)> = Vec::new();
    for _ in 0..WORKERS {
        let id = format!("w{next_id}");
        next_id += 1;
        live.push((id.clone(), spawn_worker(&args, &env, &id)));
    }
    let started = Instant::now();
    let mut kills = 0;
    let mut outputs: Vec<Output> = Vec::new();
    while kills < KILLS && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..500))).await;
        // A victim that is holding a partition, so that its lease must be taken over.
        let holders: Vec<String> = leases(sink.as_ref())
            .await
            .values()
            .filter(|l| l["state"] == "working")
            .filter_map(|l| l["worker"].as_str().map(str::to_string))
            .collect();
        let mut candidates = Vec::new();
        for (i, (id, child)) in live.iter_mut().enumerate() {
            if child.try_wait().unwrap().is_none() && holders.contains(id) {
                candidates.push(i);
            }
        }
        let victim =
            (!candidates.is_empty()).then(|| candidates[rng.gen_range(0..candidates.len())]);
        let Some(i) = victim else {
            if live
                .iter_mut()
                .all(|(_, c)| c.try_wait().unwrap().is_some())
            {
                break;
            }
            continue;
        };
        let (_, mut child) = live.remove(i);
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        kills += 1;
        let id = format!("w{next_id}");
        next_id += 1;
        live.push((id.clone(), spawn_worker(&args, &env, &id)));
    }
    for (id, child) in live {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "worker {id} failed ({}): {}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        outputs.push(out);
    }
    Swarm {
        reports: outputs.iter().map(summary).collect(),
        kills,
    }
}

/// Check the committed run in `sink`: one run folder with a manifest and `_SUCCESS`, every
/// record exactly once in the manifest's files (each as served), no data file the manifest
/// does not list, and the manifest's partitions adding up. Returns the run id.
async fn check_lake(sink: &dyn Sink) -> String {
    let all = sink.list("").await.unwrap();
    let manifests: Vec<&str> = all
        .iter()
        .map(|o| o.path.as_str())
        .filter(|p| p.ends_with("/_manifest.json"))
        .collect();
    assert_eq!(manifests.len(), 1, "exactly one manifest: {manifests:?}");
    let run = manifests[0].split('/').next().unwrap().to_string();
    let successes = all.iter().filter(|o| o.path.ends_with("/_SUCCESS")).count();
    assert_eq!(successes, 1, "exactly one _SUCCESS");
    let manifest: Value =
        serde_json::from_slice(&sink.get(manifests[0]).await.unwrap().unwrap().data).unwrap();
    support::manifest::check_manifest(&manifest);
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut listed = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        listed.push(path.to_string());
        let data = sink.get(path).await.unwrap().unwrap().data;
        let mut body = String::new();
        flate2::read::MultiGzDecoder::new(&data[..])
            .read_to_string(&mut body)
            .unwrap();
        let mut rows = 0;
        for line in body.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let id = record["id"].as_u64().unwrap();
            assert_eq!(record, apigw::record(id), "record {id} differs");
            *seen.entry(id).or_default() += 1;
            rows += 1;
        }
        assert_eq!(rows, f["rows"].as_u64().unwrap(), "{path}");
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "records landed more than once: {twice:?}");
    assert_eq!(seen.len() as u64, RECORDS, "every record once");
    let strays: Vec<&str> = all
        .iter()
        .map(|o| o.path.as_str())
        .filter(|p| p.starts_with(&format!("{run}/part-")) && !listed.iter().any(|l| l == p))
        .collect();
    assert!(
        strays.is_empty(),
        "data files the manifest does not list: {strays:?}"
    );
    let parts = manifest["partitions"].as_array().unwrap();
    assert_eq!(parts.len() as u64, RANGES);
    let rows: u64 = parts.iter().map(|p| p["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, RECORDS);
    assert!(
        parts.iter().all(|p| p["covers"]["range"].is_object()),
        "{parts:?}"
    );
    let run_record: Value =
        serde_json::from_slice(&sink.get("_state/run.json").await.unwrap().unwrap().data).unwrap();
    assert_eq!(run_record["status"], "complete");
    assert_eq!(run_record["run_id"], run.as_str());
    run
}

/// Each partition was pulled to completion by at most one worker, every worker's report is
/// well formed, and the run was committed by one of them (or by a worker killed after it
/// committed... which then left nothing for the others to commit: at most one says so).
fn check_reports(swarm: &Swarm, run: &str) {
    let mut done: HashMap<String, u32> = HashMap::new();
    let mut committed = 0;
    for r in &swarm.reports {
        assert_eq!(r["run_id"], run, "{r}");
        assert!(
            ["succeeded", "nothing_left"].contains(&r["status"].as_str().unwrap()),
            "{r}"
        );
        if r["committed"] == true {
            committed += 1;
        }
        for p in r["partitions"].as_array().unwrap() {
            assert!(
                ["done", "lost"].contains(&p["outcome"].as_str().unwrap()),
                "{p}"
            );
            if p["outcome"] == "done" {
                *done
                    .entry(p["id"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    assert!(committed <= 1, "more than one worker committed the run");
    let twice: Vec<_> = done.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "partitions pulled to completion twice: {twice:?}"
    );
    assert_eq!(
        swarm.kills, KILLS,
        "the test must kill {KILLS} workers holding partitions"
    );
}

/// Partitions whose lease was claimed more than once (taken over after a kill).
async fn taken_over(sink: &dyn Sink) -> usize {
    leases(sink)
        .await
        .values()
        .filter(|l| l["epoch"].as_u64().unwrap() >= 2)
        .count()
}

fn slow_api() -> ApiConfig {
    ApiConfig {
        records: RECORDS,
        page_size: PAGE,
        latency: LATENCY,
        ..ApiConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_workers_on_azurite_land_every_record_exactly_once() {
    let api = ApiGateway::start(slow_api()).await;
    let az = azurite();
    let (container, sink) = az.new_container("partitions").await;
    let sink: Arc<dyn Sink> = Arc::new(sink);
    let env = vec![(
        "AZURE_STORAGE_CONNECTION_STRING".to_string(),
        az.connection_string(),
    )];
    let args = job_args(&api, &az.dest_url(&container, ""), "run-a");
    let swarm = swarm(args.clone(), env.clone(), sink.clone()).await;
    let run = check_lake(sink.as_ref()).await;
    check_reports(&swarm, &run);
    assert!(
        taken_over(sink.as_ref()).await >= 1,
        "no partition was taken over"
    );

    // A worker of the same run arriving after the commit: nothing left, exit 0.
    let late = gatelake([args.clone(), s(&["--worker"])].concat(), env.clone()).await;
    assert!(late.status.success(), "{}", text(&late.stderr));
    let late = summary(&late);
    assert_eq!(late["status"], "nothing_left", "{late}");
    assert_eq!(late["run_id"], run.as_str());
    assert_eq!(check_lake(sink.as_ref()).await, run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_workers_on_a_local_folder_land_every_record_exactly_once() {
    let api = ApiGateway::start(slow_api()).await;
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
    let args = job_args(&api, dir.path().to_str().unwrap(), "run-b");
    let swarm = swarm(args.clone(), Vec::new(), sink.clone()).await;
    let run = check_lake(sink.as_ref()).await;
    check_reports(&swarm, &run);
    assert!(
        taken_over(sink.as_ref()).await >= 1,
        "no partition was taken over"
    );

    // A late worker of the same key finds nothing left; a worker without a key is refused,
    // saying how to give one.
    let out = gatelake([args.clone(), s(&["--worker"])].concat(), Vec::new()).await;
    assert!(out.status.success());
    let no_key: Vec<String> = args
        .iter()
        .filter(|a| *a != "--run-key" && *a != "run-b")
        .cloned()
        .collect();
    let out = gatelake([no_key, s(&["--worker"])].concat(), Vec::new()).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--run-key"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_partition_stops_the_run_without_success_and_a_rerun_retries_only_it() {
    // Page index 13 (records 650..700) is malformed every time: it is in range 2 of 12
    // (each range holds 250 records, 5 pages).
    let api = ApiGateway::start(ApiConfig {
        records: RECORDS,
        page_size: 50,
        malformed_page: Some(13),
        ..ApiConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sink = LocalSink::new(dir.path());
    let args = job_args_paged(&api, dir.path().to_str().unwrap(), "run-c", 50);
    let workers: Vec<Child> = (0..3)
        .map(|i| spawn_worker(&args, &[], &format!("f{i}")))
        .collect();
    let mut failed_ids = Vec::new();
    for child in workers {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
        let r = summary(&out);
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["exit_code"], 4);
        for f in r["failed"].as_array().unwrap() {
            failed_ids.push(f["id"].as_str().unwrap().to_string());
        }
        assert!(text(&out.stderr).contains("retry the failed partitions"));
    }
    failed_ids.sort();
    failed_ids.dedup();
    assert_eq!(failed_ids, vec!["r-000002".to_string()]);
    let all = sink.list("").await.unwrap();
    assert!(
        !all.iter().any(|o| o.path.ends_with("_SUCCESS")),
        "no _SUCCESS"
    );
    assert!(!all.iter().any(|o| o.path.ends_with("_manifest.json")));
    let lease = &leases(&sink).await["r-000002"];
    assert_eq!(lease["state"], "failed");
    assert!(lease["error"].as_str().unwrap().contains("page"), "{lease}");

    // A rerun (another key) joins the unfinished run and asks only for the failed range's
    // pages.
    let before = api.requests().len();
    let rerun: Vec<String> = args
        .iter()
        .map(|a| {
            if a == "run-c" {
                "run-c2".into()
            } else {
                a.clone()
            }
        })
        .collect();
    let out = gatelake([rerun, s(&["--worker"])].concat(), Vec::new()).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let r = summary(&out);
    let tried: Vec<&str> = r["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(tried, vec!["r-000002"], "{r}");
    for req in &api.requests()[before..] {
        let offset: u64 = req
            .query_param("offset")
            .unwrap_or_default()
            .parse()
            .unwrap_or(0);
        assert!(
            (500..750).contains(&offset),
            "the rerun asked for offset {offset}"
        );
    }
    let record: Value =
        serde_json::from_slice(&sink.get("_state/run.json").await.unwrap().unwrap().data).unwrap();
    assert_eq!(record["joined_keys"], serde_json::json!(["run-c2"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sharded_workers_take_only_their_share_and_one_commits() {
    let api = ApiGateway::start(ApiConfig {
        records: RECORDS,
        page_size: PAGE,
        ..ApiConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sink = LocalSink::new(dir.path());
    let args = job_args(&api, dir.path().to_str().unwrap(), "run-d");
    let workers: Vec<Child> = (0..3)
        .map(|k| {
            let shard = format!("{k}/3");
            let args = [args.clone(), s(&["--shard", &shard])].concat();
            spawn_worker(&args, &[], &format!("s{k}"))
        })
        .collect();
    let mut committed = 0;
    for (k, child) in workers.into_iter().enumerate() {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let r = summary(&out);
        assert!(
            ["succeeded", "shard_done"].contains(&r["status"].as_str().unwrap()),
            "{r}"
        );
        if r["committed"] == true {
            committed += 1;
        }
        let taken: Vec<u64> = r["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap()[2..].parse().unwrap())
            .collect();
        assert_eq!(taken.len() as u64, RANGES / 3, "{r}");
        assert!(
            taken.iter().all(|i| i % 3 == k as u64),
            "shard {k}/3 took {taken:?}"
        );
    }
    assert_eq!(committed, 1, "the last worker to finish commits, once");
    check_lake(&sink).await;
}
