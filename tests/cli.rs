//! The real binary, run the way users run it, against the built-in demo API and a local
//! folder: the README's first command, usage errors and their exit codes, `--show-settings`
//! masking secrets, and the JSON summary's shape. (Pulls into Azurite and from the API
//! Gateway test server are in `pull_e2e.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::path::Path;
use std::process::Output;

fn gatelake(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    support::run::command()
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run gatelake")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn gunzip(path: &Path) -> String {
    let mut out = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[test]
fn demo_lands_every_record_once_with_manifest_and_success() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(
        dir.path(),
        &[
            "demo",
            "--records",
            "2345",
            "--page-size",
            "100",
            "--chunk-rows",
            "1000",
            "--output",
            "json",
        ],
        &[],
    );
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let summary: serde_json::Value =
        serde_json::from_str(stdout(&out).trim()).expect("one JSON object on stdout");
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["rows"], 2345);
    assert_eq!(summary["pages"], 24);
    let run_id = summary["run_id"].as_str().unwrap();
    let run_dir = dir.path().join("lake/demo").join(run_id);
    assert!(run_dir.join("_SUCCESS").exists());

    // Whole pages per chunk: 10 pages (1000 records) then rotate.
    let files = summary["files"].as_array().unwrap();
    let rows: Vec<u64> = files.iter().map(|f| f["rows"].as_u64().unwrap()).collect();
    assert_eq!(rows, vec![1000, 1000, 345]);

    // Every order exactly once, byte for byte as served, in order.
    let mut ids = Vec::new();
    for f in files {
        let path = dir
            .path()
            .join("lake/demo")
            .join(f["path"].as_str().unwrap());
        for line in gunzip(&path).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = v["order_id"].as_u64().unwrap();
            assert_eq!(v, gatelake::demo::demo_order(id));
            ids.push(id);
        }
    }
    assert_eq!(ids, (0..2345).collect::<Vec<_>>());

    // The manifest agrees with the files on disk.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["totals"]["rows"], 2345);
    support::manifest::check_manifest(&manifest);
    for f in manifest["files"].as_array().unwrap() {
        let data = std::fs::read(
            dir.path()
                .join("lake/demo")
                .join(f["path"].as_str().unwrap()),
        )
        .unwrap();
        assert_eq!(f["bytes"].as_u64().unwrap(), data.len() as u64);
        use sha2::Digest;
        assert_eq!(
            f["sha256"].as_str().unwrap(),
            hex::encode(sha2::Sha256::digest(&data))
        );
    }
}

#[test]
fn usage_errors_exit_2_with_a_named_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["pull"], "pass --url"),
        (
            &["pull", "--url", "http://example.com/x"],
            "uses plain HTTP",
        ),
        (
            &["pull", "--url", "https://x/o", "--paginate", "cursor"],
            "--cursor-path",
        ),
        (
            &["pull", "--url", "https://x/o", "--format", "xml"],
            "use jsonl, csv or parquet",
        ),
        (
            &["pull", "--url", "https://x/o", "--chunk-size", "12 parsecs"],
            "--chunk-size",
        ),
        (
            &["pull", "--url", "https://x/o", "--api-auth", "api-key"],
            "GATELAKE_API_KEY",
        ),
        (&["pull", "--job", "orders"], "no job file"),
    ];
    for (args, want) in cases {
        let out = gatelake(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    // Plain HTTP to a remote host only with the explicit override.
    let out = gatelake(
        dir.path(),
        &[
            "pull",
            "--url",
            "http://example.com/x",
            "--allow-insecure-http",
            "--show-settings",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // clap's own errors are usage errors too.
    assert_eq!(
        gatelake(dir.path(), &["pull", "--no-such-flag"], &[])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn job_file_settings_and_show_settings_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gatelake.toml"),
        "[jobs.orders]\nurl = \"https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders\"\npaginate = \"cursor\"\ncursor_path = \"next_cursor\"\nrecords = \"items\"\nformat = \"parquet\"\napi_auth = \"api-key\"\n",
    )
    .unwrap();
    let out = gatelake(
        dir.path(),
        &[
            "pull",
            "--job",
            "orders",
            "--format",
            "csv",
            "--show-settings",
            "-H",
            "X-Tenant: tenant-secret-42",
        ],
        &[
            ("GATELAKE_API_KEY", "key-secret-99"),
            ("GATELAKE_CHUNK_SIZE", "8MiB"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for (key, value, origin) in [
        ("paginate", "cursor", "job file"),
        ("format", "csv", "flag --format"),
        ("chunk-size", "8MiB", "env GATELAKE_CHUNK_SIZE"),
        ("api-key", "***", "env GATELAKE_API_KEY"),
        ("dest", "./lake/orders", "default"),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} missing in {text}"));
        assert!(line.contains(value) && line.contains(origin), "{line}");
    }
    assert!(
        !text.contains("key-secret-99") && !text.contains("tenant-secret-42"),
        "{text}"
    );
    assert!(!stderr(&out).contains("key-secret-99"));
}

#[test]
fn unreachable_endpoint_exits_4_and_writes_no_success() {
    let dir = tempfile::tempdir().unwrap();
    // Bind then drop a listener: nothing listens on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/prod/orders");
    let out = gatelake(
        dir.path(),
        &[
            "pull",
            "--url",
            &url,
            "--max-retries",
            "1",
            "--output",
            "json",
            "--progress",
            "none",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error_kind"], "source");
    assert!(
        v["error"].as_str().unwrap().contains("could not reach"),
        "{v}"
    );
    let success = walk(&dir.path().join("lake"))
        .into_iter()
        .any(|p| p.ends_with("_SUCCESS"));
    assert!(!success, "a failed run must not write _SUCCESS");
}

#[test]
fn help_explains_flags_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(dir.path(), &["pull", "--help"], &[]);
    assert!(out.status.success());
    let help = stdout(&out);
    for flag in [
        "--paginate",
        "--cursor-path",
        "--records",
        "--chunk-size",
        "--dest",
        "--api-auth",
        "--concurrency",
        "GATELAKE_CONCURRENCY",
        "GATELAKE_URL",
    ] {
        assert!(help.contains(flag), "{flag} not in help");
    }
    let top = stdout(&gatelake(dir.path(), &["--help"], &[]));
    assert!(
        top.contains("Exit codes") && top.contains("gatelake demo"),
        "{top}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_killed_demo_does_not_block_the_next_one() {
    // The demo API takes a new port each time, so the unfinished run of a killed demo cannot
    // be resumed; the next demo must start afresh instead of refusing.
    let dir = tempfile::tempdir().unwrap();
    let mut child = support::run::command()
        .current_dir(dir.path())
        .args([
            "demo",
            "--records",
            "400000",
            "--page-size",
            "100",
            "--progress",
            "none",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = dir.path().join("lake/demo/_state/checkpoint.json");
    for _ in 0..200 {
        if checkpoint.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let cp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(cp["status"], "running", "the demo was killed mid-run");

    let out = gatelake(
        dir.path(),
        &["demo", "--records", "500", "--output", "json"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(summary["rows"], 500);
    assert_ne!(summary["run_id"], cp["run_id"]);
}
