//! Exactly-once staging under abuse: the real binary is killed with SIGKILL at random
//! moments (mid-fetch, mid-upload, between an upload and its checkpoint), interrupted with
//! SIGINT, run twice at once, and raced on its checkpoint — and the lake must end up with
//! every record exactly once, or the run must stop without overwriting anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gatelake::sink::local::LocalSink;
use gatelake::sink::{PutMode, Sink};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::apigw::{self, ApiConfig, ApiGateway};
use support::azurite::azurite;
use support::run::{command, gatelake, s, summary, text};

fn pull_args(api: &ApiGateway, dest: &str, chunk_rows: u64) -> Vec<String> {
    let mut a = s(&[
        "pull",
        "--url",
        &api.url("/prod/cursor"),
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
        "plain",
        "--dest",
    ]);
    a.push(dest.to_string());
    a
}

/// Every record id in the run named by `summary`, read from the files of its manifest (each
/// record checked against what the server served), and the names of the run folder's files
/// that are not in the manifest.
fn landed_ids(lake: &Path, summary: &Value) -> (Vec<u64>, Vec<String>) {
    let run_dir = lake.join(summary["run_id"].as_str().unwrap());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("_manifest.json")).unwrap()).unwrap();
    support::manifest::check_manifest(&manifest);
    let mut ids = Vec::new();
    let mut listed: Vec<String> = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let path = lake.join(f["path"].as_str().unwrap());
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let before = ids.len();
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let id = record["id"].as_u64().unwrap();
            assert_eq!(
                record,
                apigw::record(id),
                "record {id} differs from what was served"
            );
            ids.push(id);
        }
        assert_eq!(
            (ids.len() - before) as u64,
            f["rows"].as_u64().unwrap(),
            "{path:?}"
        );
        listed.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    // The load script and the lineage are named by the manifest too.
    if let Some(sql) = manifest["load_sql"].as_str() {
        listed.push(sql.rsplit('/').next().unwrap_or(sql).to_string());
    }
    if let Some(lineage) = manifest["lineage"]["path"].as_str() {
        listed.push(lineage.rsplit('/').next().unwrap_or(lineage).to_string());
    }
    let strays = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !listed.contains(n) && n != "_manifest.json" && n != "_SUCCESS")
        .collect();
    (ids, strays)
}

/// Wait (bounded) until the local checkpoint at `path` has at least `chunks` committed
/// chunks; returns it.
async fn wait_for_commits(path: &Path, chunks: u64) -> Option<Value> {
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let cp = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if cp
            .as_ref()
            .and_then(|v| v["next_seq"].as_u64())
            .unwrap_or(0)
            >= chunks
        {
            return cp;
        }
    }
    None
}

/// Ask the process `pid` to stop the way Ctrl-C does.
fn sigint(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The `next_seq` of the checkpoint under `sink` (0 when there is none yet).
async fn next_seq(sink: &dyn Sink) -> u64 {
    match sink.get("_state/checkpoint.json").await {
        Ok(Some(obj)) => serde_json::from_slice::<Value>(&obj.data)
            .ok()
            .and_then(|v| v["next_seq"].as_u64())
            .unwrap_or(0),
        _ => 0,
    }
}

/// SIGKILLs in one pull, each at a random moment; the README quotes this number
/// (`readme_states_the_kill_test_s_figures` checks that it does).
const KILLS: u32 = 24;
/// Records in that pull; the README quotes this number too.
const KILL_TEST_RECORDS: u64 = 50_000;

/// Every record id in the run named by `summary`, read through `sink` (rooted at the
/// destination) from the files of its manifest, each checked against what the server served;
/// and the names of the run folder's objects that are not in the manifest.
async fn landed_ids_in(sink: &dyn Sink, summary: &Value) -> (Vec<u64>, Vec<String>) {
    let run_id = summary["run_id"].as_str().unwrap();
    let read = |path: String| async move {
        sink.get(&path)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{path} is missing"))
            .data
    };
    let manifest: Value =
        serde_json::from_slice(&read(format!("{run_id}/_manifest.json")).await).unwrap();
    support::manifest::check_manifest(&manifest);
    let mut ids = Vec::new();
    let mut listed: Vec<String> = vec![
        format!("{run_id}/_manifest.json"),
        format!("{run_id}/_SUCCESS"),
    ];
    for f in manifest["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap().to_string();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(read(path.clone()).await.as_ref())
            .read_to_string(&mut text)
            .unwrap();
        let before = ids.len();
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let id = record["id"].as_u64().unwrap();
            assert_eq!(
                record,
                apigw::record(id),
                "record {id} differs from what was served"
            );
            ids.push(id);
        }
        assert_eq!(
            (ids.len() - before) as u64,
            f["rows"].as_u64().unwrap(),
            "{path}"
        );
        listed.push(path);
    }
    if let Some(sql) = manifest["load_sql"].as_str() {
        listed.push(sql.to_string());
    }
    if let Some(lineage) = manifest["lineage"]["path"].as_str() {
        listed.push(lineage.to_string());
    }
    let strays = sink
        .list(&format!("{run_id}/"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .filter(|p| !listed.contains(p))
        .collect();
    (ids, strays)
}

/// Kill a pull into `dest` with SIGKILL [`KILLS`] times at random moments, then let it
/// finish: every record must land exactly once, in served order, with no stray file.
/// `lease`: for a storage account, the container and blob of the job's lock, whose lease a
/// killed run leaves held for up to a minute; it is broken after each kill, as its expiry
/// would do, so the next attempt can start at once.
async fn sigkill_at_random_moments(
    dest: &str,
    env: Vec<(String, String)>,
    sink: &dyn Sink,
    lease: Option<(&str, &str)>,
) {
    // 1000 pages of at least 8 ms each: longer than the KILLS attempts can get through (at
    // most 260 ms each after their first request, bar the last two, which also wait for a
    // chunk of 10 pages), so the pull is killed exactly KILLS times before it can finish.
    let api = ApiGateway::start(ApiConfig {
        records: KILL_TEST_RECORDS,
        page_size: 50,
        latency: Duration::from_millis(8),
        ..Default::default()
    })
    .await;
    let args = pull_args(&api, dest, 500);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b696c6c);
    let (mut kills, mut resumed_runs, mut attempts) = (0u32, 0u32, 0u32);
    while kills < KILLS {
        attempts += 1;
        let mut child = command()
            .args(&args)
            .envs(env.clone())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The random moment counts from the attempt's first request: on a loaded machine a
        // debug binary's start-up alone can outlast the whole window, and no attempt would
        // ever be killed mid-pull. The last two attempts are killed only after they committed
        // a chunk of their own, so the final run always has a checkpoint to resume and one
        // killed attempt has resumed one (the test's two claims), however slow the machine.
        let requests_before = api.requests().len();
        let checkpoint_before = next_seq(sink).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let started = api.requests().len() > requests_before;
            let committed = kills + 2 < KILLS || next_seq(sink).await > checkpoint_before;
            if (started && committed) || child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "attempt {attempts} made no request or committed no chunk within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let delay = Duration::from_millis(rng.gen_range(40..260));
        tokio::time::sleep(delay).await;
        if let Some(status) = child.try_wait().unwrap() {
            let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
                .await
                .unwrap();
            panic!(
                "attempt {attempts} ended ({status}) after {kills} kills, before the test's {KILLS}: slow the emulator down. stderr: {}",
                text(&out.stderr)
            );
        }
        child.kill().unwrap(); // SIGKILL
        kills += 1;
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        if let Some((container, blob)) = lease {
            azurite().break_lease(container, blob).await;
        }
        if text(&out.stderr).contains("resuming after") {
            resumed_runs += 1;
        }
    }
    let out = gatelake(args, env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["rows"].as_u64(), Some(KILL_TEST_RECORDS));
    assert_eq!(
        sum["resumed"], true,
        "the final run must resume the killed one"
    );
    let (ids, strays) = landed_ids_in(sink, &sum).await;
    let mut seen = std::collections::HashSet::new();
    let duplicates = ids.iter().filter(|id| !seen.insert(**id)).count();
    let losses = (0..KILL_TEST_RECORDS)
        .filter(|id| !seen.contains(id))
        .count();
    eprintln!(
        "kill test into {dest}: {kills} SIGKILLs, {} resumed runs, {} records checked, {duplicates} duplicates, {losses} losses",
        resumed_runs + 1,
        ids.len()
    );
    assert_eq!(kills, KILLS);
    assert_eq!((duplicates, losses), (0, 0));
    assert_eq!(
        ids,
        (0..KILL_TEST_RECORDS).collect::<Vec<_>>(),
        "records in served order"
    );
    assert!(strays.is_empty(), "objects not in the manifest: {strays:?}");
    assert!(resumed_runs >= 1, "no killed attempt resumed a run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let sink = LocalSink::new(&lake);
    sigkill_at_random_moments(lake.to_str().unwrap(), vec![], &sink, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_in_azurite_loses_and_duplicates_nothing() {
    let (container, _) = azurite().new_container("kill").await;
    let dest = azurite().dest_url(&container, "job");
    let sink = azurite().sink(&container, "job", azurite().credential());
    let env = vec![(
        "AZURE_STORAGE_CONNECTION_STRING".to_string(),
        azurite().connection_string(),
    )];
    sigkill_at_random_moments(&dest, env, &sink, Some((&container, "job/_state/lock"))).await;
}

/// The README's sentence about the kill test quotes the test's own figures.
#[test]
fn readme_states_the_kill_test_s_figures() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let records = KILL_TEST_RECORDS.to_string();
    let (head, tail) = records.split_at(records.len() - 3);
    let claim = format!(
        "The test suite kills the binary {KILLS} times at random moments in one pull, into a local folder and into Azurite, and checks that each of {head},{tail} records lands exactly once."
    );
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains(&claim), "README.md must say: {claim}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_leaves_a_checkpoint_that_the_next_run_resumes() {
    let api = ApiGateway::start(ApiConfig {
        records: 6000,
        page_size: 100,
        latency: Duration::from_millis(15),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = pull_args(&api, lake.to_str().unwrap(), 300);
    let child = command()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let a few chunks commit, then ask it to stop like Ctrl-C does.
    let checkpoint = lake.join("_state/checkpoint.json");
    wait_for_commits(&checkpoint, 2).await;
    sigint(child.id());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let err = summary(&out);
    assert_eq!(err["error_kind"], "interrupted");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("Run the same command again to resume"),
        "{err}"
    );
    let cp: Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(cp["status"], "running");
    assert!(cp["next_seq"].as_u64().unwrap() >= 2);

    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["resumed"], true);
    assert_eq!(sum["run_id"], cp["run_id"]);
    let (ids, strays) = landed_ids(&lake, &sum);
    assert_eq!(ids, (0..6000).collect::<Vec<_>>());
    assert!(strays.is_empty(), "{strays:?}");
    // A finished job starts a new run next time.
    let again = summary(&gatelake(pull_args(&api, lake.to_str().unwrap(), 300), vec![]).await);
    assert_eq!(again["resumed"], false);
    assert_ne!(again["run_id"], sum["run_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_discards_the_unfinished_run() {
    let api = ApiGateway::start(ApiConfig {
        records: 4000,
        page_size: 100,
        latency: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = pull_args(&api, lake.to_str().unwrap(), 200);
    let mut child = command()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = lake.join("_state/checkpoint.json");
    let old_run = wait_for_commits(&checkpoint, 1)
        .await
        .map(|cp| cp["run_id"].as_str().unwrap().to_string());
    child.kill().unwrap();
    child.wait().unwrap();
    let old_run = old_run.expect("a chunk was committed before the kill");
    assert!(std::fs::read_dir(lake.join(&old_run)).unwrap().count() >= 1);

    let mut a = args.clone();
    a.push("--restart".into());
    let out = gatelake(a, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["resumed"], false);
    assert_ne!(sum["run_id"].as_str(), Some(old_run.as_str()));
    assert!(text(&out.stderr).contains(&format!("discarded the unfinished run {old_run}")));
    let left = LocalSink::new(&lake)
        .list(&format!("{old_run}/"))
        .await
        .unwrap();
    assert!(left.is_empty(), "the discarded run left {left:?}");
    let (ids, _) = landed_ids(&lake, &sum);
    assert_eq!(ids, (0..4000).collect::<Vec<_>>());
}

/// Wait until `path` exists in `sink` (bounded).
async fn wait_for(sink: &dyn Sink, path: &str, what: &str) -> Value {
    for _ in 0..500 {
        if let Some(got) = sink.get(path).await.unwrap() {
            if let Ok(v) = serde_json::from_slice::<Value>(&got.data) {
                return v;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} never appeared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_run_is_refused_naming_the_holder() {
    let api = ApiGateway::start(ApiConfig {
        records: 3000,
        page_size: 100,
        latency: Duration::from_millis(40),
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("lock").await;
    let dest = azurite().dest_url(&container, "job");
    let env = vec![(
        "AZURE_STORAGE_CONNECTION_STRING".to_string(),
        azurite().connection_string(),
    )];
    let first = command()
        .args(pull_args(&api, &dest, 500))
        .envs(env.clone())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first_pid = first.id();
    wait_for(
        &sink,
        "job/_state/checkpoint.json",
        "the first run's checkpoint",
    )
    .await;

    let out = gatelake(pull_args(&api, &dest, 500), env.clone()).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let err = summary(&out);
    assert_eq!(err["error_kind"], "busy");
    let msg = err["error"].as_str().unwrap();
    assert!(
        msg.contains("locked by another run") && msg.contains(&format!("process {first_pid}")),
        "{msg}"
    );

    let out = tokio::task::spawn_blocking(move || first.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["rows"], 3000);
    // The lease was released: the next run takes the lock at once.
    let out = gatelake(pull_args(&api, &dest, 500), env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_changed_by_another_writer_stops_the_run_without_overwriting_it() {
    let api = ApiGateway::start(ApiConfig {
        records: 4000,
        page_size: 100,
        latency: Duration::from_millis(30),
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("race").await;
    let dest = azurite().dest_url(&container, "job");
    let env = vec![(
        "AZURE_STORAGE_CONNECTION_STRING".to_string(),
        azurite().connection_string(),
    )];
    let child = command()
        .args(pull_args(&api, &dest, 100))
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut cp = wait_for(&sink, "job/_state/checkpoint.json", "the checkpoint").await;
    // Another writer (ignoring the lock) rewrites the checkpoint under the run's feet.
    cp["pages"] = Value::from(987_654);
    let theirs = serde_json::to_vec(&cp).unwrap();
    sink.put(
        "job/_state/checkpoint.json",
        theirs.clone().into(),
        PutMode::Overwrite,
    )
    .await
    .unwrap();

    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let msg = summary(&out)["error"].as_str().unwrap().to_string();
    assert!(msg.contains("changed by another writer"), "{msg}");
    let stored = sink
        .get("job/_state/checkpoint.json")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.data.as_ref(),
        theirs.as_slice(),
        "the other writer's checkpoint was overwritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_deliver_each_record_once_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let incremental = s(&[
        "--since-field",
        "created_at",
        "--since-param",
        "updated_since",
        "--lag",
        "10m",
    ]);
    let mut all_ids = Vec::new();
    // The API's data grows between runs: 500 records, then 800, still 800, then 900.
    let mut first_queries = Vec::new();
    for (records, expect_new) in [(500u64, 500u64), (800, 300), (800, 0), (900, 100)] {
        let api = ApiGateway::start(ApiConfig {
            records,
            page_size: 100,
            ..Default::default()
        })
        .await;
        let mut args = pull_args(&api, lake.to_str().unwrap(), 200);
        args.extend(incremental.clone());
        let out = gatelake(args, vec![]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let sum = summary(&out);
        assert_eq!(
            sum["rows"].as_u64(),
            Some(expect_new),
            "run over {records} records: {sum}"
        );
        if expect_new > 0 {
            let (ids, strays) = landed_ids(&lake, &sum);
            assert!(strays.is_empty());
            all_ids.extend(ids);
        }
        first_queries.push(api.requests()[0].query.clone().unwrap_or_default());
    }
    // Every record exactly once across the runs, in order.
    assert_eq!(all_ids, (0..900).collect::<Vec<_>>());
    // The first run asks for everything; the next asks from the previous watermark (record
    // 499's created_at) minus the 10-minute lag, so the API serves records 490.. again.
    assert!(
        !first_queries[0].contains("updated_since"),
        "{first_queries:?}"
    );
    let since = first_queries[1]
        .split('&')
        .find_map(|kv| kv.strip_prefix("updated_since="))
        .unwrap();
    let since = percent_encoding::percent_decode_str(since)
        .decode_utf8()
        .unwrap()
        .replace('+', " ");
    assert_eq!(
        apigw::first_index_since(&since).unwrap(),
        490,
        "asked from {since}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_stops_at_the_total_without_asking_past_the_end() {
    let api = ApiGateway::start(ApiConfig {
        records: 3000,
        page_size: 100,
        latency: Duration::from_millis(15),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut args = s(&[
        "pull",
        "--url",
        &api.url("/prod/offset"),
        "--paginate",
        "offset",
        "--page-size",
        "100",
        "--records",
        "items",
        "--total-path",
        "total",
        "--chunk-rows",
        "300",
        "--output",
        "json",
        "--progress",
        "none",
        "--dest",
    ]);
    args.push(lake.to_str().unwrap().to_string());
    let child = command()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = lake.join("_state/checkpoint.json");
    wait_for_commits(&checkpoint, 2).await;
    sigint(child.id());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));

    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["rows"], 3000);
    let past_end: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| {
            r.query_param("offset")
                .and_then(|o| o.parse::<u64>().ok())
                .is_some_and(|o| o >= 3000)
        })
        .map(|r| r.query.clone().unwrap_or_default())
        .collect();
    assert!(past_end.is_empty(), "asked past the total: {past_end:?}");
}
