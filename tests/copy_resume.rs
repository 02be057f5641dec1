//! `gatelake copy` under abuse: the real binary is killed with SIGKILL at random moments
//! while it copies a prefix (mid-listing, mid-part, between an object's landing and its
//! checkpoint), then run to the end — and the run folder must hold every object exactly
//! once, byte for byte, with a manifest that lists exactly what landed. Large objects are
//! cut in parts, so kills land between staged parts too and the resumed run stages only the
//! parts the storage does not hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gatelake::sink::local::LocalSink;
use gatelake::sink::Sink;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use support::azurite::azurite;
use support::manifest::check_manifest;
use support::run::{command, gatelake, s, summary, text};
use support::s3_bucket::{bytes_of, moto_env, sha256_hex, TestBucket};

/// SIGKILLs in one copy.
const KILLS: u32 = 12;

/// The source objects: three of 6 MiB (6 parts each at 1 MiB) listed first, then many
/// small ones; name → sha256.
async fn fill(bucket: &TestBucket) -> BTreeMap<String, String> {
    let mut want = BTreeMap::new();
    let mut puts = Vec::new();
    for i in 0..3u64 {
        let data = bytes_of(1000 + i, 6 << 20);
        want.insert(format!("big/{i}.bin"), sha256_hex(&data));
        puts.push((format!("src/big/{i}.bin"), data));
    }
    for i in 0..1200u64 {
        let data = bytes_of(i, 8192 + (i as usize * 37) % 16384);
        want.insert(format!("obj/{i:05}.bin"), sha256_hex(&data));
        puts.push((format!("src/obj/{i:05}.bin"), data));
    }
    bucket.put_many(puts).await;
    want
}

/// Objects the checkpoint calls landed (0 before it exists).
async fn landed(sink: &dyn Sink, job: &str) -> usize {
    let path = format!("{job}_state/checkpoint.json");
    match sink.get(&path).await {
        Ok(Some(got)) => serde_json::from_slice::<Value>(&got.data)
            .ok()
            .and_then(|cp| cp["objects"]["landed"].as_array().map(Vec::len))
            .unwrap_or(0),
        _ => 0,
    }
}

async fn sigkill_copy_at_random_moments(
    dest: &str,
    env: Vec<(String, String)>,
    sink: &dyn Sink,
    job: &str,
    lease: Option<(&str, String)>,
) {
    let bucket = TestBucket::new("copy-kill", false).await;
    let want = fill(&bucket).await;
    let args = {
        let mut a = s(&["copy", &bucket.uri("src/"), dest]);
        a.extend(s(&[
            "--part-size",
            "1MiB",
            "--concurrency",
            "2",
            "--output",
            "json",
            "--progress",
            "none",
        ]));
        a
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x636f7079);
    let (mut kills, mut attempts) = (0u32, 0u32);
    while kills < KILLS {
        attempts += 1;
        let before = landed(sink, job).await;
        let mut child = command()
            .args(&args)
            .envs(env.clone())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The moment counts from the attempt's first landed object, so a slow start-up
        // cannot let an attempt be killed before it did anything (every attempt moves on).
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while landed(sink, job).await <= before && child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "attempt {attempts} landed no object within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..120))).await;
        if let Some(status) = child.try_wait().unwrap() {
            let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
                .await
                .unwrap();
            panic!(
                "attempt {attempts} ended ({status}) after {kills} kills, before the test's {KILLS}: give it more objects. stderr: {}",
                text(&out.stderr)
            );
        }
        child.kill().unwrap(); // SIGKILL
        kills += 1;
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        if let Some((container, blob)) = &lease {
            azurite().break_lease(container, blob).await;
        }
    }
    let landed_before_last = landed(sink, job).await;
    let out = gatelake(args.clone(), env.clone()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(
        sum["resumed"], true,
        "the final run must resume the killed one"
    );
    assert_eq!(sum["objects"].as_u64(), Some(want.len() as u64));
    let run = sum["run_id"].as_str().unwrap().to_string();

    // Every object exactly once, byte for byte; nothing else in the run folder; no other run.
    let mut got = BTreeMap::new();
    let mut strays = Vec::new();
    for o in sink.list(&format!("{job}{run}/")).await.unwrap() {
        let name = o.path[format!("{job}{run}/").len()..].to_string();
        if ["_manifest.json", "_SUCCESS", "load.sql"].contains(&name.as_str()) {
            continue;
        }
        match want.get(&name) {
            Some(_) => {
                let data = sink.get(&o.path).await.unwrap().unwrap().data;
                got.insert(name, sha256_hex(&data));
            }
            None => strays.push(name),
        }
    }
    let runs: std::collections::BTreeSet<String> = sink
        .list(job)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| o.path[job.len()..].split('/').next().map(str::to_string))
        .filter(|r| !r.starts_with('_'))
        .collect();
    let manifest: Value = serde_json::from_slice(
        &sink
            .get(&format!("{job}{run}/_manifest.json"))
            .await
            .unwrap()
            .unwrap()
            .data,
    )
    .unwrap();
    check_manifest(&manifest);
    let mut listed = BTreeMap::new();
    for o in manifest["objects"].as_array().unwrap() {
        *listed
            .entry(o["name"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    let duplicates = listed.values().filter(|n| **n > 1).count();
    let losses = want.keys().filter(|k| !got.contains_key(*k)).count();
    let corrupt = want
        .iter()
        .filter(|(k, h)| got.get(*k).is_some_and(|g| g != *h))
        .count();
    eprintln!(
        "copy kill test into {dest}: {kills} SIGKILLs over {attempts} attempts, {} objects landed before the last run, {} objects checked, {duplicates} listed twice, {losses} lost, {corrupt} corrupt, {} strays",
        landed_before_last,
        got.len(),
        strays.len()
    );
    assert_eq!((duplicates, losses, corrupt), (0, 0, 0));
    assert!(strays.is_empty(), "files that are not objects: {strays:?}");
    assert_eq!(
        listed.len(),
        want.len(),
        "the manifest lists exactly what landed"
    );
    assert_eq!(runs.len(), 1, "one run folder: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_during_a_copy_lands_every_object_once() {
    let lake = tempfile::tempdir().unwrap();
    let root = lake.path().join("lake");
    let sink = LocalSink::new(&root);
    let dest = root.join("job");
    sigkill_copy_at_random_moments(dest.to_str().unwrap(), moto_env(), &sink, "job/", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_during_a_copy_into_azurite_lands_every_object_once() {
    let (container, sink) = azurite().new_container("copykill").await;
    let dest = azurite().dest_url(&container, "job");
    let mut env = moto_env();
    env.push((
        "AZURE_STORAGE_CONNECTION_STRING".into(),
        azurite().connection_string(),
    ));
    sigkill_copy_at_random_moments(
        &dest,
        env,
        &sink,
        "job/",
        Some((&container, "job/_state/lock".to_string())),
    )
    .await;
}
