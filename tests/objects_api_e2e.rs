//! End to end: the real `gatelake pull` lands the S3 objects an API hands back — references
//! in cursor-paged pages, and an asynchronous export's file list — from moto's S3 (behind
//! the export emulator's S3 front, `support/exports.rs`) into Azurite, and every object is
//! read back and compared. Also: an export started exactly once across a SIGKILL, expired
//! presigned URLs re-listed once (then a clear failure), and a URL on a foreign loopback port
//! refused with no request sent to it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gatelake::sink::Sink;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use support::azurite::azurite;
use support::exports::{
    put_objects, ExportApi, ExportConfig, ExportObject, RefForm, S3Front, Tripwire, ACCESS_KEY,
    SECRET_KEY,
};
use support::run::{command, gatelake, s, summary, text};

/// Objects of 0 bytes, 1 byte, a few KiB and 3 MiB (several parts at the 1 MiB part size the
/// tests use), with names in folders.
fn contents(tag: &str) -> Vec<(String, Vec<u8>)> {
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    vec![
        (format!("{tag}/empty.bin"), Vec::new()),
        (format!("{tag}/one.bin"), b"x".to_vec()),
        (
            format!("{tag}/2026/12/part-0.jsonl"),
            (0..100)
                .map(|i| format!("{{\"id\":{i}}}\n"))
                .collect::<String>()
                .into_bytes(),
        ),
        (format!("{tag}/2026/12/part-1.bin"), big),
        (format!("{tag}/last.txt"), b"the end\n".to_vec()),
    ]
}

/// Storage (Azurite) and S3 (the front, static keys moto accepts) for the binary.
fn env(front: &S3Front) -> Vec<(String, String)> {
    vec![
        (
            "AZURE_STORAGE_CONNECTION_STRING".into(),
            azurite().connection_string(),
        ),
        ("AWS_ENDPOINT_URL_S3".into(), front.url()),
        ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ]
}

/// The reference flags of the emulator's listings.
fn ref_flags(form: RefForm) -> Vec<String> {
    let location = match form {
        RefForm::Presigned => ["--object-url-field", "url"],
        RefForm::S3Uri => ["--object-uri-field", "s3_uri"],
    };
    let mut flags = s(&[
        "--paginate",
        "cursor",
        "--cursor-path",
        "next_cursor",
        "--cursor-param",
        "cursor",
        "--objects-path",
        "files",
        "--object-size-field",
        "size",
        "--object-checksum-field",
        "md5",
        "--object-name-field",
        "name",
        "--part-size",
        "1MiB",
        "--output",
        "json",
    ]);
    flags.extend(s(&location));
    flags
}

/// Every object landed under the run's folder exactly as it is in S3, and nothing else.
async fn assert_landed(sink: &dyn Sink, run_id: &str, expected: &[(String, Vec<u8>)]) {
    for (name, bytes) in expected {
        let got = sink
            .get(&format!("{run_id}/{name}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} did not land"));
        assert_eq!(got.data.len(), bytes.len(), "{name}");
        assert!(got.data.as_ref() == bytes.as_slice(), "{name}: other bytes");
    }
    let files: Vec<String> = sink
        .list(&format!("{run_id}/"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .filter(|p| {
            !p.rsplit('/').next().unwrap_or("").starts_with('_') && !p.ends_with("load.sql")
        })
        .collect();
    assert_eq!(files.len(), expected.len(), "{files:?}");
}

async fn manifest(sink: &dyn Sink, run_id: &str) -> Value {
    let m = sink
        .get(&format!("{run_id}/_manifest.json"))
        .await
        .unwrap()
        .expect("manifest");
    serde_json::from_slice(&m.data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_in_cursor_paged_pages_land_in_azurite() {
    let content = contents("refs");
    let objects = put_objects("refs-e2e", &content).await;
    let front = S3Front::start().await;
    let mut config = ExportConfig::new(objects, &front.url());
    config.page_size = 2;
    let api = ExportApi::start(config).await;
    let (container, sink) = azurite().new_container("refs").await;
    let dest = azurite().dest_url(&container, "");

    let mut args = s(&["pull", "--url", &api.url("/prod/files"), "--dest", &dest]);
    args.extend(ref_flags(RefForm::Presigned));
    let out = gatelake(args, env(&front)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["status"], "succeeded", "{sum}");
    assert_eq!(sum["objects"], 5, "{sum}");
    let run_id = sum["run_id"].as_str().unwrap();
    let expected: Vec<(String, Vec<u8>)> = content;
    assert_landed(&sink, run_id, &expected).await;
    // Three pages of references, one listing; no signature anywhere in the manifest.
    assert_eq!(api.listings(), 1);
    assert_eq!(api.requests().len(), 3);
    let m = manifest(&sink, run_id).await;
    let text_of_manifest = m.to_string();
    assert!(
        !text_of_manifest.contains("X-Amz-Signature"),
        "{text_of_manifest}"
    );
    assert!(
        !text_of_manifest.contains("X-Amz-Credential"),
        "{text_of_manifest}"
    );
    // Nor in the job's state, nor in what the run printed.
    for state in sink.list("_state/").await.unwrap() {
        if let Some(o) = sink.get(&state.path).await.unwrap() {
            assert!(!text(&o.data).contains("X-Amz-Signature"), "{}", state.path);
        }
    }
    assert!(!text(&out.stdout).contains("X-Amz-Signature"));
    assert!(!text(&out.stderr).contains("X-Amz-Signature"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_started_exactly_once_across_a_sigkill() {
    let content = contents("export");
    let objects = put_objects("export-e2e", &content).await;
    let front = S3Front::start().await;
    let mut config = ExportConfig::new(objects, &front.url());
    config.form = RefForm::S3Uri;
    config.page_size = 3;
    config.polls_before_done = 6;
    let api = ExportApi::start(config).await;
    let (container, sink) = azurite().new_container("export").await;
    let dest = azurite().dest_url(&container, "job");
    let mut args = s(&[
        "pull",
        "--url",
        &api.url("/prod/exports"),
        "--export",
        "--export-body",
        r#"{"table":"orders"}"#,
        "--export-poll-interval",
        "200ms",
        "--dest",
        &dest,
    ]);
    args.extend(ref_flags(RefForm::S3Uri));

    // Killed while it waits for the export it started.
    let mut child = command()
        .args(&args)
        .envs(env(&front))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while api.polls() < 2 {
        assert!(
            std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "the first attempt never polled its export"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let killed = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(!killed.status.success());
    azurite().break_lease(&container, "job/_state/lock").await;
    assert_eq!(api.exports_started(), 1);

    let out = gatelake(args.clone(), env(&front)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["objects"], 5, "{sum}");
    assert_eq!(sum["resumed"], true, "{sum}");
    assert_eq!(
        api.exports_started(),
        1,
        "the rerun started a second export"
    );
    let polled: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.clone())
        .collect();
    assert!(
        polled.iter().all(|p| p == "/prod/exports/exp-1"),
        "{polled:?}"
    );
    let run_sink = azurite().sink(&container, "job", azurite().credential());
    let run_id = sum["run_id"].as_str().unwrap();
    assert_landed(&run_sink, run_id, &content).await;
    let start = &api.requests()[0];
    assert_eq!(start.method, "POST");
    assert_eq!(start.body.as_ref(), br#"{"table":"orders"}"#);
    drop(sink);

    // The next run of the job is a new run: a new export, and nothing copied twice.
    let again = gatelake(args, env(&front)).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(api.exports_started(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_urls_are_relisted_once_then_fail_clearly() {
    let content = contents("expired");
    let objects = put_objects("expired-e2e", &content).await;

    // The first listing's URLs have expired: one fresh listing, and the run succeeds.
    let front = S3Front::start().await;
    let mut config = ExportConfig::new(objects.clone(), &front.url());
    config.expired_listings = 1;
    let api = ExportApi::start(config).await;
    let (container, sink) = azurite().new_container("expired").await;
    let dest = azurite().dest_url(&container, "");
    let mut args = s(&["pull", "--url", &api.url("/prod/files"), "--dest", &dest]);
    args.extend(ref_flags(RefForm::Presigned));
    let out = gatelake(args, env(&front)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(api.listings(), 2, "one listing, one fresh listing");
    assert!(front.expired() >= 1);
    let sum = summary(&out);
    assert_landed(&sink, sum["run_id"].as_str().unwrap(), &content).await;

    // Every listing's URLs have expired: one fresh listing, then a clear failure.
    let front = S3Front::start().await;
    let mut config = ExportConfig::new(objects, &front.url());
    config.expired_listings = u64::MAX;
    let api = ExportApi::start(config).await;
    let (container, _sink) = azurite().new_container("expired-again").await;
    let dest = azurite().dest_url(&container, "");
    let mut args = s(&["pull", "--url", &api.url("/prod/files"), "--dest", &dest]);
    args.extend(ref_flags(RefForm::Presigned));
    let out = gatelake(args, env(&front)).await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("has expired"), "{err}");
    assert!(!err.contains("X-Amz-Signature"), "{err}");
    assert_eq!(api.listings(), 2, "re-listed exactly once: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_on_a_foreign_loopback_port_is_refused_with_no_request_sent() {
    let objects: Vec<ExportObject> = put_objects("foreign-e2e", &contents("foreign")).await;
    let front = S3Front::start().await;
    let tripwire = Tripwire::start().await;
    let mut config = ExportConfig::new(objects, &front.url());
    config.url_base = Some(tripwire.url());
    let api = ExportApi::start(config).await;
    let (container, _sink) = azurite().new_container("foreign").await;
    let dest = azurite().dest_url(&container, "");
    let mut args = s(&["pull", "--url", &api.url("/prod/files"), "--dest", &dest]);
    args.extend(ref_flags(RefForm::Presigned));
    let out = gatelake(args, env(&front)).await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("refused to read") && err.contains("--allow-object-host"),
        "{err}"
    );
    assert!(!err.contains("X-Amz-Signature"), "{err}");
    assert_eq!(
        tripwire.connections(),
        0,
        "a request reached the foreign host"
    );
    assert!(front.requests().is_empty(), "{:?}", front.requests());
}

// ---------------------------------------------------------------------------------------------
// The README's section "An export API that hands back S3 objects", run as written
// ---------------------------------------------------------------------------------------------

/// The README block after `<!-- readme-test: NAME -->`, shell continuations kept.
fn readme_block(name: &str) -> String {
    let readme = support::recipe::read_repo_file("README.md");
    let marker = format!("<!-- readme-test: {name} -->");
    let after = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("no README block is marked {marker}"))
        .1;
    let fence = after.split_once("```").unwrap().1;
    let body = fence.split_once('\n').unwrap().1;
    body.split_once("```").unwrap().0.to_string()
}

/// Run a README shell block with `gatelake` on `PATH`, the substitutions made (each must be
/// found exactly once), in the environment of these tests.
async fn run_readme_block(
    name: &str,
    pairs: &[(&str, &str)],
    front: &S3Front,
) -> std::process::Output {
    let script = support::recipe::substitute(&readme_block(name), pairs);
    for host in ["amazonaws.com", "windows.net"] {
        assert!(
            !script.contains(host),
            "the block still names {host}:\n{script}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("block.sh");
    std::fs::write(&file, &script).unwrap();
    let mut bash = support::recipe::hermetic("bash");
    bash.current_dir(dir.path())
        .args(["-euo", "pipefail"])
        .arg(&file)
        .env(
            "PATH",
            support::recipe::path_with(&[&support::recipe::bin_dir(dir.path())]),
        )
        .envs(env(front));
    let out = support::recipe::run(bash).await;
    drop(dir);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_object_references_in_pages() {
    let content = contents("readme-refs");
    let objects = put_objects("readme-refs", &content).await;
    let front = S3Front::start().await;
    let mut config = ExportConfig::new(objects, &front.url());
    config.page_size = 2;
    let api = ExportApi::start(config).await;
    let (container, sink) = azurite().new_container("readme-refs").await;
    let dest = azurite().dest_url(&container, "files");
    let url = api.url("/prod/files");
    let out = run_readme_block(
        "readme_object_references_in_pages",
        &[
            (
                "https://abc123.execute-api.us-east-1.amazonaws.com/prod/files",
                &url,
            ),
            ("abfss://raw@myaccount.dfs.core.windows.net/files", &dest),
        ],
        &front,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run_sink = azurite().sink(&container, "files", azurite().credential());
    let runs: Vec<String> = run_sink
        .list("")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| o.path.strip_suffix("/_SUCCESS").map(str::to_string))
        .collect();
    let [run_id] = runs.try_into().unwrap();
    assert_landed(&run_sink, &run_id, &content).await;
    assert_eq!(api.listings(), 1);
    drop(sink);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_an_export_api() {
    let content = contents("readme-export");
    let objects = put_objects("readme-export", &content).await;
    let front = S3Front::start().await;
    let mut config = ExportConfig::new(objects, &front.url());
    config.form = RefForm::S3Uri;
    config.page_size = 2;
    config.polls_before_done = 1;
    let api = ExportApi::start(config).await;
    let (container, _sink) = azurite().new_container("readme-export").await;
    let dest = azurite().dest_url(&container, "orders");
    let url = api.url("/prod/exports");
    let out = run_readme_block(
        "readme_an_export_api",
        &[
            (
                "https://abc123.execute-api.us-east-1.amazonaws.com/prod/exports",
                &url,
            ),
            ("abfss://raw@myaccount.dfs.core.windows.net/orders", &dest),
        ],
        &front,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(api.exports_started(), 1);
    let start = &api.requests()[0];
    let body: Value = serde_json::from_slice(&start.body).unwrap();
    assert_eq!(body["table"], "orders");
    let run_sink = azurite().sink(&container, "orders", azurite().credential());
    let runs: Vec<String> = run_sink
        .list("")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| o.path.strip_suffix("/_SUCCESS").map(str::to_string))
        .collect();
    let [run_id] = runs.try_into().unwrap();
    assert_landed(&run_sink, &run_id, &content).await;
}

#[test]
fn readme_export_iam_policy() {
    let policy: Value = serde_json::from_str(&readme_block("readme_export_iam_policy"))
        .expect("the policy is JSON");
    let statements = policy["Statement"].as_array().unwrap();
    let get = statements
        .iter()
        .find(|s| {
            s["Action"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "s3:GetObject"))
        })
        .expect("a GetObject statement");
    assert_eq!(get["Resource"], "arn:aws:s3:::acme-exports/orders/*");
    let list = statements
        .iter()
        .find(|s| s["Action"] == "s3:ListBucket")
        .expect("a ListBucket statement");
    assert_eq!(list["Resource"], "arn:aws:s3:::acme-exports");
    assert_eq!(list["Condition"]["StringLike"]["s3:prefix"][0], "orders/*");
    // Nothing beyond reading: no write, delete or wildcard action.
    for s in statements {
        assert_eq!(s["Effect"], "Allow");
        let actions = s["Action"].to_string();
        assert!(
            !actions.contains('*') && !actions.contains("Put") && !actions.contains("Delete"),
            "{actions}"
        );
    }
}

/// Settings that would be silently ignored are refused before anything runs (exit 2).
#[tokio::test]
async fn settings_that_cannot_apply_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake").display().to_string();
    let base = [
        "pull",
        "--url",
        "http://127.0.0.1:9/prod/files",
        "--dest",
        &dest,
    ];
    let refs = ["--objects-path", "files", "--object-url-field", "url"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--records", "items"], "say where with --objects-path"),
        (
            vec!["--max-pages", "3"],
            "--max-pages applies to a pull of records",
        ),
        (
            vec!["--object-uri-field", "s3_uri"],
            "either a URL or an s3:// URI",
        ),
        (vec!["--export-timeout", "1h"], "add --export"),
    ];
    for (extra, want) in cases {
        let mut args: Vec<String> = s(&base);
        args.extend(s(&refs));
        args.extend(s(&extra));
        let out = gatelake(args, Vec::new()).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(want),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
    // Object flags on a pull of records.
    let mut args: Vec<String> = s(&base);
    args.extend(s(&["--part-size", "16MiB"]));
    let out = gatelake(args, Vec::new()).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--part-size says how S3 objects land"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !std::path::Path::new(&dest).exists(),
        "something was written"
    );
}

/// Starting an export is retried only when it cannot have reached the backend (429), never
/// after a 5xx that may have started one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_an_export_is_retried_only_when_it_cannot_have_started_one() {
    let content = contents("start");
    let objects = put_objects("start-e2e", &content).await;
    let front = S3Front::start().await;
    let posts = |api: &ExportApi| api.requests().iter().filter(|r| r.method == "POST").count();
    for (failures, succeeds, expected_posts) in [(vec![429, 429], true, 3), (vec![503], false, 1)] {
        let mut config = ExportConfig::new(objects.clone(), &front.url());
        config.form = RefForm::S3Uri;
        config.polls_before_done = 0;
        config.start_failures = failures.clone();
        let api = ExportApi::start(config).await;
        let (container, _sink) = azurite().new_container("start").await;
        let dest = azurite().dest_url(&container, "");
        let mut args = s(&[
            "pull",
            "--url",
            &api.url("/prod/exports"),
            "--export",
            "--dest",
            &dest,
        ]);
        args.extend(ref_flags(RefForm::S3Uri));
        let out = gatelake(args, env(&front)).await;
        assert_eq!(
            out.status.success(),
            succeeds,
            "{failures:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(posts(&api), expected_posts, "{failures:?}");
        if !succeeds {
            let err = text(&out.stderr);
            assert!(err.contains("is not sent again"), "{err}");
            assert_eq!(out.status.code(), Some(4), "{err}");
        }
    }
}

/// `--land records`: the content of the export's objects (jsonl, gzip jsonl, csv) goes through
/// the encode path into chunks, each record once, the reference's record count checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exports_objects_land_as_records() {
    let jsonl: String = (0..50)
        .map(|i| format!("{{\"id\":{i},\"kind\":\"a\"}}\n"))
        .collect();
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let more: String = (50..120)
            .map(|i| format!("{{\"id\":{i},\"kind\":\"b\"}}\n"))
            .collect();
        e.write_all(more.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let csv: String = std::iter::once("id,kind\n".to_string())
        .chain((120..150).map(|i| format!("{i},c\n")))
        .collect();
    let content = vec![
        ("records/a.jsonl".to_string(), jsonl.into_bytes()),
        ("records/b.jsonl.gz".to_string(), gz),
        ("records/c.csv".to_string(), csv.into_bytes()),
    ];
    let mut objects = put_objects("records-e2e", &content).await;
    for (o, n) in objects.iter_mut().zip([50, 70, 30]) {
        o.records = Some(n);
    }
    let front = S3Front::start().await;
    let mut config = ExportConfig::new(objects, &front.url());
    config.form = RefForm::S3Uri;
    config.polls_before_done = 1;
    let api = ExportApi::start(config).await;
    let (container, sink) = azurite().new_container("records").await;
    let dest = azurite().dest_url(&container, "");
    let mut args = s(&[
        "pull",
        "--url",
        &api.url("/prod/exports"),
        "--export",
        "--export-poll-interval",
        "100ms",
        "--land",
        "records",
        "--object-records-field",
        "records",
        "--format",
        "jsonl",
        "--dest",
        &dest,
    ]);
    args.extend(ref_flags(RefForm::S3Uri));
    let out = gatelake(args, env(&front)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["land"], "records", "{sum}");
    assert_eq!(sum["rows"], 150, "{sum}");
    let run_id = sum["run_id"].as_str().unwrap();
    let mut ids = Vec::new();
    for o in sink.list(&format!("{run_id}/")).await.unwrap() {
        if !o.path.ends_with(".jsonl.gz") {
            continue;
        }
        let data = sink.get(&o.path).await.unwrap().unwrap().data;
        let mut raw = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(data.as_ref()),
            &mut raw,
        )
        .unwrap();
        for line in raw.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            ids.push(
                v["id"]
                    .to_string()
                    .trim_matches('"')
                    .parse::<u64>()
                    .unwrap(),
            );
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..150).collect::<Vec<u64>>());
    assert_eq!(api.exports_started(), 1);
}
