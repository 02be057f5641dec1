//! The README's usage blocks, run as written.
//!
//! Every fenced block of the README that shows a usage (a language tag: `sh`, `toml`, `yaml`,
//! `python`, `json`) is preceded by a marker line `<!-- readme-test: NAME -->` naming the test
//! function that runs it; `every_usage_block_names_a_test_that_exists` fails for a block
//! without one, or one naming a test that no file under `tests/` defines. Blocks without a
//! language tag are pictures (the lake's layout) and are not run.
//!
//! A block is run with only these substitutions, each of which must be found in the block (so a
//! README that changes a host or a placeholder fails here instead of silently sending traffic
//! off the machine):
//! - the example API URL → the local API Gateway stand-in (`tests/support/apigw.rs`);
//! - the example `abfss://` destination → a fresh container in Azurite;
//! - `…` placeholders for a secret → the stand-in's value;
//! - `cargo run --` → the `gatelake` binary this test run built (same code, no nested cargo).
//!
//! After the substitutions no `amazonaws.com` or `windows.net` host may remain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gatelake::sink::Sink;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use support::apigw::{ApiAuthCheck, ApiConfig, ApiGateway};
use support::azurite::azurite;
use support::run::text;

const README: &str = include_str!("../README.md");
const MARKER: &str = "<!-- readme-test:";
const EXAMPLE_API: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders";

#[derive(Debug)]
struct Block {
    lang: String,
    marker: Option<String>,
    text: String,
    line: usize,
}

/// Every fenced block of the README, with the marker on the line before its fence.
fn blocks() -> Vec<Block> {
    let lines: Vec<&str> = README.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let marker = i
            .checked_sub(1)
            .and_then(|p| lines[p].trim().strip_prefix(MARKER))
            .and_then(|rest| rest.trim().strip_suffix("-->"))
            .map(|name| name.trim().to_string());
        let start = i + 1;
        let mut end = start;
        while end < lines.len() && !lines[end].starts_with("```") {
            end += 1;
        }
        out.push(Block {
            lang: lang.trim().to_string(),
            marker,
            text: lines[start..end.min(lines.len())].join("\n") + "\n",
            line: i + 1,
        });
        i = end + 1;
    }
    out
}

/// The blocks whose marker names `test`, in README order.
fn blocks_for(test: &str) -> Vec<String> {
    let found: Vec<String> = blocks()
        .into_iter()
        .filter(|b| b.marker.as_deref() == Some(test))
        .map(|b| b.text)
        .collect();
    assert!(
        !found.is_empty(),
        "no README block is marked `{MARKER} {test} -->`"
    );
    found
}

/// Replace each `(from, to)` in `text`; every `from` must occur (the README changed otherwise).
fn localize(text: &str, substitutions: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in substitutions {
        assert!(
            out.contains(from),
            "the README block no longer contains {from:?} — update tests/readme.rs:\n{text}"
        );
        out = out.replace(from, to);
    }
    for host in ["amazonaws.com", "windows.net"] {
        assert!(
            !out.contains(host),
            "after substitution the block still names a {host} host; tests only reach loopback:\n{out}"
        );
    }
    out
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_gatelake"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Run `script` with bash (`-euo pipefail`, no stdin) in `dir`, with the built `gatelake` first
/// on `PATH` and the same hermetic environment as every other test (see `support::run`), plus
/// `env`.
fn run_script(dir: &Path, script: &str, env: &[(&str, String)]) -> Output {
    let file = dir.join("readme-block.sh");
    std::fs::write(&file, script).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = support::run::hermetic("bash");
    bash.current_dir(dir)
        .arg("-euo")
        .arg("pipefail")
        .arg(&file)
        .env("PATH", path)
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        bash.env(k, v);
    }
    bash.output().expect("run bash")
}

/// The commands of a shell block: lines joined across `\` continuations, blank lines dropped.
fn shell_commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    out
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The completed runs under `prefix/` in `sink`: each `<run>/` with a `_SUCCESS`, and the rows
/// of its manifest.
async fn completed_runs(sink: &dyn Sink, prefix: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for o in sink.list(&format!("{prefix}/")).await.unwrap() {
        let Some(run) = o
            .path
            .strip_prefix(&format!("{prefix}/"))
            .and_then(|p| p.strip_suffix("/_SUCCESS"))
        else {
            continue;
        };
        let manifest = sink
            .get(&format!("{prefix}/{run}/_manifest.json"))
            .await
            .unwrap()
            .expect("a completed run has a manifest");
        let m: Value = serde_json::from_slice(&manifest.data).unwrap();
        out.push((run.to_string(), m["totals"]["rows"].as_u64().unwrap()));
    }
    out
}

#[test]
fn every_usage_block_names_a_test_that_exists() {
    let mut sources = String::new();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            sources.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    let mut problems = Vec::new();
    let all = blocks();
    assert!(
        all.len() >= 8,
        "the README parser found only {} blocks",
        all.len()
    );
    for b in &all {
        if b.lang.is_empty() {
            continue; // a picture, not a usage
        }
        match &b.marker {
            None => problems.push(format!(
                "README.md:{}: a ```{} block with no `{MARKER} NAME -->` line before it",
                b.line, b.lang
            )),
            Some(name) if !sources.contains(&format!("fn {name}(")) => problems.push(format!(
                "README.md:{}: the block names test `{name}`, which no file in tests/ defines",
                b.line
            )),
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn marker_parser_reads_the_line_before_the_fence() {
    let b = blocks();
    let first = b.iter().find(|b| !b.lang.is_empty()).unwrap();
    assert_eq!(first.lang, "sh");
    assert!(first.marker.is_some(), "{first:?}");
}

/// `## Set up`: the demo on its embedded defaults in a fresh folder, and the test command,
/// which is what `.ci/run` runs (this test is part of it).
#[test]
fn readme_set_up() {
    let [block] = blocks_for("readme_set_up").try_into().unwrap();
    let test_line = block
        .lines()
        .find(|l| l.starts_with("scripts/test.sh"))
        .expect("the set-up block names the test command");
    let ci =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test.sh"),
        ".ci/run must run the README's test command ({test_line}):\n{ci}"
    );
    // The test command is this very run: execute the rest of the block.
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("scripts/test.sh"))
        .map(|l| format!("{l}\n"))
        .collect();
    let script = localize(&script, &[("cargo run --", "gatelake".into())]);
    let dir = tempfile::tempdir().unwrap();
    let out = run_script(dir.path(), &script, &[]);
    assert_ok(&out, "the README's set-up block");
    let demo = dir.path().join("lake/demo");
    let runs: Vec<PathBuf> = std::fs::read_dir(&demo)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("_SUCCESS").exists())
        .collect();
    assert_eq!(
        runs.len(),
        1,
        "one completed demo run in {}",
        demo.display()
    );
    for f in ["part-00000.jsonl.gz", "_manifest.json", "_SUCCESS"] {
        assert!(
            runs[0].join(f).exists(),
            "{f} missing in {}",
            runs[0].display()
        );
    }
    let m: Value =
        serde_json::from_slice(&std::fs::read(runs[0].join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(m["totals"]["rows"], 10_000, "the README says 10,000 orders");
}

/// `### From a shell`: an API-key pull of a cursor-paginated endpoint into ADLS (Azurite), with
/// the key from the environment.
#[tokio::test(flavor = "multi_thread")]
async fn readme_from_a_shell() {
    let api = ApiGateway::start(ApiConfig {
        records: 1234,
        auth: ApiAuthCheck::ApiKey("readme-key-7c1".into()),
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("readme-shell").await;
    let [block] = blocks_for("readme_from_a_shell").try_into().unwrap();
    let script = localize(
        &block,
        &[
            (
                "GATELAKE_API_KEY=…",
                "GATELAKE_API_KEY=readme-key-7c1".into(),
            ),
            (EXAMPLE_API, api.url("/prod/cursor")),
            (
                "abfss://raw@myaccount.dfs.core.windows.net/orders",
                azurite().dest_url(&container, "orders"),
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let env = [(
        "AZURE_STORAGE_CONNECTION_STRING",
        azurite().connection_string(),
    )];
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run_script(&dir, &script, &env)
    })
    .await
    .unwrap();
    assert_ok(&out, "the README's shell pull");
    let runs = completed_runs(&sink, "orders").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1, 1234);
    let listed = sink.list(&format!("orders/{}/", runs[0].0)).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|o| o.path.ends_with("part-00000.parquet")),
        "{listed:?}"
    );
    assert!(
        !text(&out.stderr).contains("readme-key-7c1"),
        "the key leaked on stderr"
    );
}

/// `### From a job file`: the TOML as written in `gatelake.toml` (IAM auth from the standard
/// AWS chain), then `gatelake pull --job orders`.
#[tokio::test(flavor = "multi_thread")]
async fn readme_from_a_job_file() {
    let api = ApiGateway::start(ApiConfig {
        records: 345,
        auth: ApiAuthCheck::SigV4 {
            access_key: "AKIDREADME".into(),
            secret_key: "readme-secret".into(),
            session_token: None,
            region: "us-east-1".into(),
        },
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("readme-job").await;
    let [toml, command] = blocks_for("readme_from_a_job_file").try_into().unwrap();
    let toml = localize(
        &toml,
        &[
            (EXAMPLE_API, api.url("/prod/cursor")),
            (
                "abfss://raw@myaccount.dfs.core.windows.net/orders",
                azurite().dest_url(&container, "orders"),
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gatelake.toml"), toml).unwrap();
    let env = [
        (
            "AZURE_STORAGE_CONNECTION_STRING",
            azurite().connection_string(),
        ),
        ("AWS_ACCESS_KEY_ID", "AKIDREADME".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "readme-secret".to_string()),
        // The stand-in's URL is on loopback, so the region cannot come from the host name.
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run_script(&dir, &command, &env)
    })
    .await
    .unwrap();
    assert_ok(&out, "the README's job-file pull");
    let runs = completed_runs(&sink, "orders").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1, 345);
}

/// `## What lands in the lake`: every key the documented `--output json` summary shows is in a
/// real summary (success), and the failure line's keys in a real failure.
#[test]
fn readme_summary_json() {
    let [success] = blocks_for("readme_summary_json").try_into().unwrap();
    // The failure object is shown inline, right after the block.
    let failure = README
        .split_once("On failure: `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(json, _)| json.to_string())
        .expect("the README shows the failure object after `On failure:`");
    let keys = |text: &str| -> Vec<String> {
        let mut keys = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find('"') {
            let after = &rest[i + 1..];
            let Some(j) = after.find('"') else { break };
            let word = &after[..j];
            if after[j + 1..].starts_with(':') {
                keys.push(word.to_string());
            }
            rest = &after[j + 1..];
        }
        keys
    };
    let dir = tempfile::tempdir().unwrap();
    let out = support::run::command()
        .current_dir(dir.path())
        .args([
            "demo",
            "--records",
            "300",
            "--output",
            "json",
            "--progress",
            "none",
        ])
        .output()
        .unwrap();
    assert_ok(&out, "demo");
    let real = support::run::summary(&out);
    for k in keys(&success) {
        assert!(
            real.pointer(&format!("/{k}")).is_some() || real["files"][0].get(&k).is_some(),
            "the README's summary shows {k:?}, a real one has no such key: {real}"
        );
    }
    let out = support::run::command()
        .current_dir(dir.path())
        .args([
            "pull",
            "--url",
            "http://127.0.0.1:9/prod/orders",
            "--max-retries",
            "0",
            "--output",
            "json",
            "--progress",
            "none",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let real = support::run::summary(&out);
    let failure_keys = keys(&failure);
    assert!(
        failure_keys.contains(&"error_kind".to_string()),
        "{failure}"
    );
    for k in failure_keys {
        assert!(
            real.get(&k).is_some(),
            "the README's failure object shows {k:?}, a real one has no such key: {real}"
        );
    }
}

/// `### The SQL`: each `gatelake sql` line of the README, against a completed parquet run in
/// Azurite.
#[tokio::test(flavor = "multi_thread")]
async fn readme_sql() {
    let api = ApiGateway::start(ApiConfig {
        records: 150,
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("readme-sql").await;
    let dest = azurite().dest_url(&container, "orders");
    let storage = [(
        "AZURE_STORAGE_CONNECTION_STRING",
        azurite().connection_string(),
    )];
    let pull = format!(
        "gatelake pull --url {} --paginate cursor --cursor-path next_cursor --records items \
         --format parquet --progress none --dest {dest}\n",
        api.url("/prod/cursor")
    );
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let (dir, env) = (dir.path().to_path_buf(), storage.clone());
        move || run_script(&dir, &pull, &env)
    })
    .await
    .unwrap();
    assert_ok(&out, "the pull before `gatelake sql`");
    let runs = completed_runs(&sink, "orders").await;
    assert_eq!(runs.len(), 1);

    let [block] = blocks_for("readme_sql").try_into().unwrap();
    let script = localize(
        &block,
        &[
            (
                "abfss://raw@myaccount.dfs.core.windows.net/orders",
                dest.clone(),
            ),
            ("--dest …", format!("--dest {dest}")),
        ],
    );
    let commands = shell_commands(&script);
    assert_eq!(commands.len(), 4, "{script}");
    // One command at a time, so each line's output is checked on its own.
    let expect = [
        vec![
            "COPY INTO [stage].[orders]",
            "IDENTITY = 'Managed Identity'",
        ],
        vec!["OPENROWSET", "CREATE EXTERNAL TABLE"],
        vec!["AUTO_CREATE_TABLE = 'ON'"],
        vec!["*.parquet"],
    ];
    for (line, wants) in commands.iter().zip(expect) {
        let out = tokio::task::spawn_blocking({
            let (dir, env, line) = (
                dir.path().to_path_buf(),
                storage.clone(),
                format!("{line}\n"),
            );
            move || run_script(&dir, &line, &env)
        })
        .await
        .unwrap();
        assert_ok(&out, line);
        let sql = text(&out.stdout);
        assert!(
            sql.contains(&runs[0].0),
            "{line}: the newest run's id is in the SQL:\n{sql}"
        );
        for want in wants {
            assert!(sql.contains(want), "{line}: no {want:?} in:\n{sql}");
        }
    }
}

/// `### In a notebook` (Loading into Synapse): the four lines as written, in a cell that has
/// `lake` and `run` from the cells before it, with the notebook stand-ins
/// (`tests/support/notebook/`: `mssparkutils.fs.head` and a `spark` that reads parquet with
/// pyarrow) against a local lake folder.
#[tokio::test(flavor = "multi_thread")]
async fn readme_notebook_manifest_snippet() {
    let api = ApiGateway::start(ApiConfig {
        records: 130,
        page_size: 20,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake/orders");
    let pull = format!(
        "gatelake pull --url {} --paginate cursor --cursor-path next_cursor --records items \
         --format parquet --chunk-rows 40 --output json --progress none --dest {}\n",
        api.url("/prod/cursor"),
        lake.display()
    );
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run_script(&dir, &pull, &[])
    })
    .await
    .unwrap();
    assert_ok(&out, "the pull before the notebook cell");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = summary["run_id"].as_str().unwrap().to_string();
    assert_eq!(summary["files"].as_array().unwrap().len(), 4);

    let [snippet] = blocks_for("readme_notebook_manifest_snippet")
        .try_into()
        .unwrap();
    // What the notebook's earlier cells define; then the README's lines, untouched, and a line
    // that shows the assertion really ran.
    let cell = format!(
        "lake = {:?}\nrun = {run:?}\n{snippet}print('rows', df.count())\n",
        lake.display().to_string()
    );
    let cell_file = dir.path().join("cell.py");
    std::fs::write(&cell_file, cell).unwrap();
    let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/notebook");
    let python = std::env::var("GATELAKE_TEST_PYTHON").expect(
        "GATELAKE_TEST_PYTHON is not set: run the suite with `bash scripts/test.sh`, which installs pyarrow",
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(support.join("run_cell.py"))
            .arg(&cell_file)
            .env("PYTHONPATH", &support)
            .env("GATELAKE_TEST_NOTEBOOK_FLAVOR", "synapse")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_ok(&out, "the README's notebook lines");
    assert_eq!(text(&out.stdout).trim(), "rows 130");
}

/// `## Copy an existing bucket prefix`: the command as written, from a bucket in moto's S3
/// into Azurite; only the objects the filters select land.
#[tokio::test(flavor = "multi_thread")]
async fn readme_copy_a_bucket_prefix() {
    use support::s3_bucket::{moto_env, TestBucket};
    let bucket = TestBucket::new("readme-copy", false).await;
    bucket
        .put_many(vec![
            ("orders/2026/12/01/part-1.csv.gz".into(), b"a".to_vec()),
            ("orders/2026/12/02/part-1.csv.gz".into(), b"bb".to_vec()),
            ("orders/2026/tmp/part-9.csv.gz".into(), b"skip".to_vec()),
            ("orders/2026/12/01/notes.txt".into(), b"skip".to_vec()),
        ])
        .await;
    let (container, sink) = azurite().new_container("readme-copy").await;
    let [block] = blocks_for("readme_copy_a_bucket_prefix")
        .try_into()
        .unwrap();
    let script = localize(
        &block,
        &[
            ("s3://acme-exports/", format!("s3://{}/", bucket.name)),
            (
                "abfss://raw@myaccount.dfs.core.windows.net/orders-exports",
                azurite().dest_url(&container, "orders-exports"),
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&'static str, String)> = vec![(
        "AZURE_STORAGE_CONNECTION_STRING",
        azurite().connection_string(),
    )];
    for (k, v) in moto_env() {
        let key: &'static str = match k.as_str() {
            "AWS_ENDPOINT_URL_S3" => "AWS_ENDPOINT_URL_S3",
            "AWS_ACCESS_KEY_ID" => "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY" => "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION" => "AWS_REGION",
            other => panic!("moto_env has a new variable {other}: name it here"),
        };
        env.push((key, v));
    }
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run_script(&dir, &script, &env)
    })
    .await
    .unwrap();
    assert_ok(&out, "the README's copy");
    let mut landed: Vec<String> = Vec::new();
    for o in sink.list("orders-exports/").await.unwrap() {
        let rest = &o.path["orders-exports/".len()..];
        if rest.starts_with('_') {
            continue;
        }
        if let Some((_, name)) = rest.split_once('/') {
            landed.push(name.to_string());
        }
    }
    landed.sort();
    assert_eq!(
        landed,
        [
            "12/01/part-1.csv.gz",
            "12/02/part-1.csv.gz",
            "_SUCCESS",
            "_manifest.json",
            "load.sql"
        ]
    );
}

/// `### Land the objects' records instead`: the command as written, from JSON lines (gzip)
/// and a JSON array (zstd) in moto's S3 into parquet chunks in Azurite.
#[tokio::test(flavor = "multi_thread")]
async fn readme_copy_records() {
    use support::s3_bucket::{moto_env, TestBucket};
    let bucket = TestBucket::new("readme-records", false).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut gz,
        b"{\"id\":1,\"kind\":\"a\"}\n{\"id\":2,\"kind\":\"b\"}\n",
    )
    .unwrap();
    let array = zstd::bulk::compress(br#"[{"id":3,"kind":"c"}]"#, 3).unwrap();
    bucket
        .put_many(vec![
            ("events/2026-12-01.jsonl.gz".into(), gz.finish().unwrap()),
            ("events/2026-12-02.json.zst".into(), array),
        ])
        .await;
    let (container, sink) = azurite().new_container("readme-records").await;
    let [block] = blocks_for("readme_copy_records").try_into().unwrap();
    let script = localize(
        &block,
        &[
            ("s3://acme-exports/", format!("s3://{}/", bucket.name)),
            (
                "abfss://raw@myaccount.dfs.core.windows.net/events",
                azurite().dest_url(&container, "events"),
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&'static str, String)> = vec![(
        "AZURE_STORAGE_CONNECTION_STRING",
        azurite().connection_string(),
    )];
    for (k, v) in moto_env() {
        let key: &'static str = match k.as_str() {
            "AWS_ENDPOINT_URL_S3" => "AWS_ENDPOINT_URL_S3",
            "AWS_ACCESS_KEY_ID" => "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY" => "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION" => "AWS_REGION",
            other => panic!("moto_env has a new variable {other}: name it here"),
        };
        env.push((key, v));
    }
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run_script(&dir, &script, &env)
    })
    .await
    .unwrap();
    assert_ok(&out, "the README's copy --land records");
    let mut chunks = Vec::new();
    let mut manifest = None;
    for o in sink.list("events/").await.unwrap() {
        if o.path.ends_with(".parquet") {
            chunks.push(o.path.clone());
        } else if o.path.ends_with("/_manifest.json") {
            manifest = Some(o.path.clone());
        }
    }
    assert_eq!(chunks.len(), 2, "one chunk per object: {chunks:?}");
    let m: Value =
        serde_json::from_slice(&sink.get(&manifest.unwrap()).await.unwrap().unwrap().data).unwrap();
    assert_eq!(m["land"], "records");
    assert_eq!(m["totals"]["rows"].as_u64(), Some(3));
}

/// The IAM policy `## Copy an existing bucket prefix` shows grants exactly what a copy of the
/// README's prefix asks for: ListBucket on the bucket limited to the prefix, GetObject below it.
#[test]
fn readme_copy_iam_policy() {
    let [block] = blocks_for("readme_copy_iam_policy").try_into().unwrap();
    let policy: Value = serde_json::from_str(&block).expect("the policy is JSON");
    let statements = policy["Statement"].as_array().unwrap();
    let list = statements
        .iter()
        .find(|s| s["Action"] == "s3:ListBucket")
        .expect("a ListBucket statement");
    assert_eq!(list["Resource"], "arn:aws:s3:::acme-exports");
    assert_eq!(
        list["Condition"]["StringLike"]["s3:prefix"][0],
        "orders/2026/*"
    );
    let get = statements
        .iter()
        .find(|s| {
            s["Action"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "s3:GetObject"))
        })
        .expect("a GetObject statement");
    assert_eq!(get["Resource"], "arn:aws:s3:::acme-exports/orders/2026/*");
    // The copy command above names the same bucket and prefix.
    let [copy] = blocks_for("readme_copy_a_bucket_prefix")
        .try_into()
        .unwrap();
    assert!(copy.contains("s3://acme-exports/orders/2026/"), "{copy}");
}
