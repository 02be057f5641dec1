//! `gatelake demo` as a first-time user meets it (issue 14, item 10): interrupted with
//! Ctrl-C, it says "run the same command again to resume it" — and running it again resumes
//! the run; its `load.sql` in a local folder says that it is illustrative; `--show-settings`
//! says which values are the demo's defaults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

fn gatelake(dir: &Path, args: &[&str]) -> Output {
    support::run::command()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run gatelake")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every order id in a completed demo run, in file order.
fn landed_order_ids(lake: &Path, run_id: &str) -> Vec<u64> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(lake.join(run_id).join("_manifest.json")).unwrap())
            .unwrap();
    let mut ids = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(
            std::fs::File::open(lake.join(f["path"].as_str().unwrap())).unwrap(),
        )
        .read_to_string(&mut text)
        .unwrap();
        for line in text.lines() {
            let order: Value = serde_json::from_str(line).unwrap();
            let id = order["order_id"].as_u64().unwrap();
            assert_eq!(order, gatelake::demo::demo_order(id));
            ids.push(id);
        }
    }
    ids
}

#[test]
fn an_interrupted_demo_resumes_when_the_same_command_is_run_again() {
    const RECORDS: u64 = 300_000;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "--records",
        "300000",
        "--page-size",
        "50",
        "--chunk-rows",
        "1000",
        "--output",
        "json",
        "--progress",
        "plain",
    ];
    let child = support::run::command()
        .current_dir(dir.path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = dir.path().join("lake/demo/_state/checkpoint.json");
    let mut committed = 0;
    for _ in 0..1000 {
        std::thread::sleep(Duration::from_millis(10));
        committed = std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|cp| cp["next_seq"].as_u64())
            .unwrap_or(0);
        if committed >= 2 {
            break;
        }
    }
    assert!(committed >= 2, "no chunks were committed");
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let stopped = support::run::summary(&out);
    let message = stopped["error"].as_str().unwrap();
    assert!(
        message.contains("Run the same command again to resume it"),
        "{message}"
    );
    let cp: Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(cp["status"], "running");

    // The same command again: the run resumes, nothing is discarded.
    let out = gatelake(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(!e.contains("--restart") && !e.contains("discarded"), "{e}");
    assert!(e.contains("resuming after"), "{e}");
    let sum = support::run::summary(&out);
    assert_eq!(sum["resumed"], true, "{sum}");
    assert_eq!(sum["run_id"], cp["run_id"]);
    assert_eq!(sum["rows"], RECORDS);
    let ids = landed_order_ids(
        &dir.path().join("lake/demo"),
        sum["run_id"].as_str().unwrap(),
    );
    assert_eq!(
        ids,
        (0..RECORDS).collect::<Vec<_>>(),
        "each order once, in order"
    );
}

#[test]
fn an_unfinished_demo_run_of_other_data_is_replaced_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake/demo");
    // An unfinished run's checkpoint for 50 orders (as a killed run leaves it).
    let out = gatelake(
        dir.path(),
        &["demo", "--records", "50", "--page-size", "10"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let path = lake.join("_state/checkpoint.json");
    let mut cp: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cp["status"] = "running".into();
    std::fs::write(&path, serde_json::to_vec(&cp).unwrap()).unwrap();

    let out = gatelake(
        dir.path(),
        &[
            "demo",
            "--records",
            "60",
            "--page-size",
            "10",
            "--output",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains(&format!(
            "the unfinished run {} pulled other data",
            cp["run_id"].as_str().unwrap()
        )) && e.contains("not --records 60 --page-size 10"),
        "{e}"
    );
    let sum = support::run::summary(&out);
    assert_eq!(
        (sum["resumed"].clone(), sum["rows"].clone()),
        (false.into(), 60.into())
    );
}

#[test]
fn demo_load_sql_in_a_local_folder_says_it_is_illustrative() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(dir.path(), &["demo", "--records", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let o = stdout(&out);
    assert!(
        o.contains("load.sql is illustrative only: Synapse cannot read a local folder"),
        "{o}"
    );
    let run = o
        .lines()
        .find_map(|l| l.strip_prefix("Run:"))
        .unwrap()
        .trim()
        .to_string();
    let sql =
        std::fs::read_to_string(dir.path().join("lake/demo").join(&run).join("load.sql")).unwrap();
    assert!(
        sql.starts_with(
            "-- ILLUSTRATIVE ONLY: this run is in a local folder, which Synapse cannot read"
        ),
        "{sql}"
    );
    assert!(sql.contains("gatelake sql --dest abfss://"), "{sql}");
}

#[test]
fn demo_show_settings_tells_demo_defaults_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let origin = |out: &Output, key: &str| -> String {
        let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
        shown
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key} not shown: {shown}"))["origin"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let out = gatelake(dir.path(), &["demo", "--show-settings", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(origin(&out, "records"), "demo default");
    assert_eq!(origin(&out, "page-size"), "demo default");

    let out = gatelake(
        dir.path(),
        &[
            "demo",
            "--records",
            "7",
            "--show-settings",
            "--output",
            "json",
        ],
    );
    assert_eq!(origin(&out, "records"), "flag --records");
    assert_eq!(origin(&out, "page-size"), "demo default");
}
