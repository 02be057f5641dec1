//! `gatelake copy s3://bucket/prefix DEST` end to end: the real binary copies from moto's S3
//! into a local folder and into Azurite — objects of 0 bytes, 1 byte and 100 MiB (a
//! multipart source object, landed in parallel parts), a thousand small objects, a
//! versioned bucket — and every landed object is read back and compared byte for byte; a
//! later run copies only what is new or changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gatelake::sink::Sink;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use support::azurite::azurite;
use support::manifest::check_manifest;
use support::run::{gatelake, s, summary, text};
use support::s3_bucket::{bytes_of, moto_env, sha256_hex, TestBucket};

fn copy_args(uri: &str, dest: &str, extra: &[&str]) -> Vec<String> {
    let mut args = s(&["copy", uri, dest, "--output", "json", "--progress", "none"]);
    args.extend(s(extra));
    args
}

/// The run's manifest as JSON, from a local job folder.
fn local_manifest(job: &Path, run_id: &str) -> Value {
    let text = std::fs::read_to_string(job.join(run_id).join("_manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// name → (size, source) of the manifest's objects; each name once.
fn manifest_objects(m: &Value) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    for o in m["objects"].as_array().cloned().unwrap_or_default() {
        let name = o["name"].as_str().unwrap().to_string();
        let prev = out.insert(
            name.clone(),
            (
                o["size"].as_u64().unwrap(),
                o["source"].as_str().unwrap().to_string(),
            ),
        );
        assert!(prev.is_none(), "{name} listed twice in the manifest");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copy_into_a_local_folder_lands_every_object_verified_then_only_new_ones() {
    let bucket = TestBucket::new("copy-local", false).await;
    let mut want: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    want.insert("a/empty.bin".into(), Vec::new());
    want.insert("a/one.txt".into(), b"x".to_vec());
    want.insert("b/orders.csv".into(), bytes_of(7, 300_000));
    for i in 0..1000u64 {
        want.insert(
            format!("many/obj-{i:04}.json"),
            bytes_of(100 + i, 200 + (i as usize % 50)),
        );
    }
    let mut puts: Vec<(String, Vec<u8>)> = want
        .iter()
        .map(|(k, v)| (format!("data/{k}"), v.clone()))
        .collect();
    puts.push(("data/scratch.tmp".into(), b"leave me".to_vec()));
    puts.push(("elsewhere/x.bin".into(), b"not below the prefix".to_vec()));
    bucket.put_many(puts).await;

    let lake = tempfile::tempdir().unwrap();
    let job = lake.path().join("data");
    let dest = job.to_str().unwrap().to_string();
    let uri = bucket.uri("data/");
    let args = copy_args(
        &uri,
        &dest,
        &[
            "--exclude",
            "*.tmp",
            "--part-size",
            "64KiB",
            "--concurrency",
            "16",
        ],
    );
    let out = gatelake(args.clone(), moto_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["status"], "succeeded");
    assert_eq!(sum["objects"].as_u64(), Some(want.len() as u64));
    assert_eq!(sum["skipped"].as_u64(), Some(0));
    let run_id = sum["run_id"].as_str().unwrap().to_string();

    // Every object, byte for byte, under its name; nothing else beside the run's own files.
    for (name, data) in &want {
        let got = std::fs::read(job.join(&run_id).join(name)).unwrap();
        assert!(got == *data, "{name} differs");
    }
    let mut files = Vec::new();
    for entry in walk(&job.join(&run_id)) {
        files.push(entry);
    }
    let mut expected: Vec<String> = want.keys().cloned().collect();
    expected.extend(s(&["_SUCCESS", "_manifest.json", "load.sql"]));
    expected.sort();
    files.sort();
    assert_eq!(files, expected);

    let m = local_manifest(&job, &run_id);
    check_manifest(&m);
    assert_eq!(m["land"], "as-is");
    assert_eq!(m["source"]["url"], uri);
    let objects = manifest_objects(&m);
    assert_eq!(objects.len(), want.len());
    for (name, data) in &want {
        let (size, source) = &objects[name];
        assert_eq!(*size, data.len() as u64, "{name}");
        assert_eq!(source, &format!("s3://{}/data/{name}", bucket.name));
    }
    for o in m["objects"].as_array().unwrap() {
        assert_eq!(o["mode"], "client");
        assert!(o["etag"].is_string(), "{o}");
        let verified: Vec<&str> = o["verified"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(verified.contains(&"size"), "{o}");
    }
    let sql = std::fs::read_to_string(job.join(&run_id).join("load.sql")).unwrap();
    assert!(sql.contains("as-is"), "{sql}");

    // A second run copies nothing; a new object and a changed one are all a third copies.
    let out = gatelake(args.clone(), moto_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["objects"].as_u64(), Some(0));
    assert_eq!(sum["skipped"].as_u64(), Some(want.len() as u64));
    bucket.put("data/a/one.txt", b"y".to_vec()).await;
    bucket.put("data/new/late.json", b"{}".to_vec()).await;
    let out = gatelake(args, moto_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["objects"].as_u64(), Some(2), "{sum}");
    let third = sum["run_id"].as_str().unwrap();
    let m = local_manifest(&job, third);
    let names: Vec<String> = manifest_objects(&m).into_keys().collect();
    assert_eq!(names, ["a/one.txt", "new/late.json"]);
    assert_eq!(
        std::fs::read(job.join(third).join("a/one.txt")).unwrap(),
        b"y"
    );

    // --include picks by file name; --modified-since in the future picks nothing.
    let only = lake.path().join("only-csv");
    let out = gatelake(
        copy_args(&uri, only.to_str().unwrap(), &["--include", "*.csv"]),
        moto_env(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["objects"].as_u64(), Some(1));
    let future = lake.path().join("future");
    let out = gatelake(
        copy_args(
            &uri,
            future.to_str().unwrap(),
            &["--modified-since", "2999-01-01"],
        ),
        moto_env(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["objects"].as_u64(), Some(0));
}

/// Files below `dir`, relative, `/`-separated, hidden ones included.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(rel);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_versioned_bucket_lands_the_current_version_and_a_new_version_is_copied_again() {
    let bucket = TestBucket::new("copy-versions", true).await;
    bucket.put("v/k.json", b"{\"v\":1}".to_vec()).await;
    let v2 = bucket.put("v/k.json", b"{\"v\":2}".to_vec()).await.unwrap();
    let lake = tempfile::tempdir().unwrap();
    let job = lake.path().join("v");
    let args = copy_args(&bucket.uri("v/"), job.to_str().unwrap(), &[]);
    let out = gatelake(args.clone(), moto_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = summary(&out)["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read(job.join(&run).join("k.json")).unwrap(),
        b"{\"v\":2}"
    );
    let m = local_manifest(&job, &run);
    check_manifest(&m);
    assert_eq!(m["objects"][0]["version_id"].as_str(), Some(v2.as_str()));

    let v3 = bucket.put("v/k.json", b"{\"v\":3}".to_vec()).await.unwrap();
    let out = gatelake(args, moto_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["objects"].as_u64(), Some(1));
    let run = sum["run_id"].as_str().unwrap();
    assert_eq!(
        local_manifest(&job, run)["objects"][0]["version_id"].as_str(),
        Some(v3.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copy_into_azurite_lands_empty_tiny_and_100_mib_objects_byte_for_byte() {
    let bucket = TestBucket::new("copy-azurite", false).await;
    let big = bytes_of(42, 100 << 20);
    bucket.put("p/empty", Vec::new()).await;
    bucket.put("p/one", b"1".to_vec()).await;
    bucket.put_multipart("p/big/blob.bin", &big, 16 << 20).await;

    let (container, sink) = azurite().new_container("copy").await;
    let dest = azurite().dest_url(&container, "job");
    let mut env = moto_env();
    env.push((
        "AZURE_STORAGE_CONNECTION_STRING".into(),
        azurite().connection_string(),
    ));
    let out = gatelake(
        copy_args(
            &bucket.uri("p/"),
            &dest,
            &["--part-size", "8MiB", "--concurrency", "6"],
        ),
        env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["objects"].as_u64(), Some(3));
    assert_eq!(sum["bytes"].as_u64(), Some((100 << 20) + 1));
    let run = sum["run_id"].as_str().unwrap();

    for (name, data) in [
        ("empty", &b""[..]),
        ("one", &b"1"[..]),
        ("big/blob.bin", &big[..]),
    ] {
        let got = sink
            .get(&format!("job/{run}/{name}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} is not in Azurite"));
        assert_eq!(got.data.len(), data.len(), "{name}");
        assert_eq!(sha256_hex(&got.data), sha256_hex(data), "{name}");
    }
    let m: Value = serde_json::from_slice(
        &sink
            .get(&format!("job/{run}/_manifest.json"))
            .await
            .unwrap()
            .unwrap()
            .data,
    )
    .unwrap();
    check_manifest(&m);
    let objects = manifest_objects(&m);
    assert_eq!(objects["big/blob.bin"].0, 100 << 20);
    assert!(sink
        .get(&format!("job/{run}/_SUCCESS"))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_fail_clearly_and_never_exit_0() {
    let lake = tempfile::tempdir().unwrap();
    let dest = lake.path().join("j");
    let out = gatelake(
        copy_args("https://bucket/prefix", dest.to_str().unwrap(), &[]),
        moto_env(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("s3://bucket/prefix"),
        "{}",
        text(&out.stderr)
    );

    let out = gatelake(
        copy_args(
            "s3://no-such-bucket-gatelake/x/",
            dest.to_str().unwrap(),
            &[],
        ),
        moto_env(),
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no-such-bucket-gatelake"),
        "{}",
        text(&out.stderr)
    );
    // A first run that failed with nothing landed leaves no state behind.
    assert!(!dest.join("_state/checkpoint.json").exists());

    let bucket = TestBucket::new("copy-refuse", false).await;
    bucket.put("p/a", b"a".to_vec()).await;
    let out = gatelake(
        copy_args(
            &bucket.uri("p/"),
            dest.to_str().unwrap(),
            &["--allow-bucket", "some-other-bucket"],
        ),
        moto_env(),
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--allow-bucket"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn land_records_reads_jsonl_json_and_csv_objects_into_chunks_then_only_new_ones() {
    use std::io::Write;
    let bucket = TestBucket::new("copy-records", false).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..500 {
        writeln!(gz, "{{\"id\":{i},\"kind\":\"gz\"}}").unwrap();
    }
    let gz = gz.finish().unwrap();
    bucket
        .put_many(vec![
            ("r/a.jsonl.gz".into(), gz),
            (
                "r/b.json".into(),
                b"[{\"id\":1000,\"kind\":\"array\"},{\"id\":1001,\"kind\":\"array\"}]".to_vec(),
            ),
            (
                "r/c.csv".into(),
                b"id,kind\n2000,csv\n2001,csv\n2002,csv\n".to_vec(),
            ),
        ])
        .await;
    let lake = tempfile::tempdir().unwrap();
    let job = lake.path().join("r");
    let args = copy_args(
        &bucket.uri("r/"),
        job.to_str().unwrap(),
        &[
            "--land",
            "records",
            "--format",
            "jsonl",
            "--compression",
            "none",
            "--part-size",
            "64KiB",
        ],
    );
    let out = gatelake(args.clone(), moto_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["land"], "records");
    assert_eq!(sum["objects"].as_u64(), Some(3));
    assert_eq!(sum["rows"].as_u64(), Some(505));
    let run = sum["run_id"].as_str().unwrap().to_string();
    let m = local_manifest(&job, &run);
    check_manifest(&m);
    assert_eq!(m["land"], "records");
    assert_eq!(m["totals"]["rows"].as_u64(), Some(505), "{m:#}");
    // Every record once, across the run's chunks.
    let mut ids = Vec::new();
    for f in m["files"].as_array().unwrap() {
        let body = std::fs::read_to_string(job.join(f["path"].as_str().unwrap())).unwrap();
        for line in body.lines() {
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
    let want: Vec<u64> = (0..500).chain(1000..1002).chain(2000..2003).collect();
    assert_eq!(ids, want);
    assert!(job.join(&run).join("_SUCCESS").exists());

    // Incremental as for as-is: nothing new, nothing copied.
    let out = gatelake(args, moto_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m = local_manifest(&job, summary(&out)["run_id"].as_str().unwrap());
    assert_eq!(m["totals"]["rows"].as_u64(), Some(0));
    assert_eq!(m["objects_skipped"].as_u64(), Some(3));
}

/// `--copy-mode server` where the storage cannot read the source itself: a local folder says
/// so and how to fix it; Azurite cannot reach moto's presigned URL, and the failure names the
/// object without the URL's signature. Neither exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_mode_fails_clearly_where_the_storage_cannot_read_the_source() {
    let bucket = TestBucket::new("copy-server", false).await;
    bucket.put("s/big.bin", bytes_of(3, 3 << 20)).await;
    bucket.put("s/empty", Vec::new()).await;
    let lake = tempfile::tempdir().unwrap();
    let args = |dest: &str| {
        copy_args(
            &bucket.uri("s/"),
            dest,
            &["--copy-mode", "server", "--part-size", "1MiB"],
        )
    };
    let out = gatelake(args(lake.path().join("j").to_str().unwrap()), moto_env()).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("--copy-mode client"), "{err}");

    let (container, _) = azurite().new_container("copy-server").await;
    let mut env = moto_env();
    env.push((
        "AZURE_STORAGE_CONNECTION_STRING".into(),
        azurite().connection_string(),
    ));
    let out = gatelake(args(&azurite().dest_url(&container, "job")), env).await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("big.bin"), "{err}");
    for secret in ["X-Amz-Signature", "X-Amz-Credential"] {
        assert!(!err.contains(secret), "{secret} leaked: {err}");
        assert!(!text(&out.stdout).contains(secret), "{secret} leaked");
    }
}

/// The copy's S3 requests are signed with credentials from the web-identity exchange
/// (`--aws-role-arn` + a token file, through a trust-policy front to moto's STS): no static
/// key is in the binary's environment, and the exchanged keys never reach its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_reads_s3_with_credentials_from_the_web_identity_exchange_not_static_keys() {
    use support::identity::{jwt, moto_url, now, StsFront, TrustPolicy};
    let issuer = "https://token.actions.githubusercontent.example";
    let subject = "repo:org/lake:ref:refs/heads/main";
    let sts = StsFront::start(
        TrustPolicy {
            issuer: issuer.into(),
            audience: "sts.amazonaws.com".into(),
            subject: subject.into(),
        },
        Default::default(),
    )
    .await;
    let bucket = TestBucket::new("copy-federated", false).await;
    let data = bytes_of(5, 3 << 20);
    bucket.put("in/a.bin", data.clone()).await;
    bucket.put("in/b.txt", b"hello".to_vec()).await;

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        jwt(&serde_json::json!({
            "iss": issuer, "aud": "sts.amazonaws.com", "sub": subject, "exp": now() + 600,
        })),
    )
    .unwrap();
    let lake = dir.path().join("lake");
    let env: Vec<(String, String)> = vec![
        ("AWS_ENDPOINT_URL_S3".into(), moto_url()),
        ("AWS_ENDPOINT_URL_STS".into(), sts.url()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ];
    assert!(env.iter().all(|(k, _)| !k.starts_with("AWS_ACCESS_KEY")));
    let token_path = token_file.display().to_string();
    let out = gatelake(
        copy_args(
            &bucket.uri("in/"),
            &lake.display().to_string(),
            &[
                "--aws-role-arn",
                "arn:aws:iam::123456789012:role/lake-copier",
                "--web-identity",
                "file",
                "--web-identity-token-file",
                &token_path,
                "--part-size",
                "1MiB",
            ],
        ),
        env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(sts.exchanges() >= 1, "no web-identity exchange was made");
    let sum = summary(&out);
    assert_eq!(sum["objects"].as_u64(), Some(2));
    let run = sum["run_id"].as_str().unwrap();
    let job = lake.clone();
    assert_eq!(std::fs::read(job.join(run).join("a.bin")).unwrap(), data);
    assert_eq!(
        std::fs::read(job.join(run).join("b.txt")).unwrap(),
        b"hello"
    );
    let m = local_manifest(&job, run);
    check_manifest(&m);
    assert_eq!(manifest_objects(&m).len(), 2);
    // The exchanged credentials are secrets: not in stdout, stderr or the manifest.
    let shown = format!("{}{}{m}", text(&out.stdout), text(&out.stderr));
    for secret in sts.issued_secrets() {
        assert!(!shown.contains(&secret), "an exchanged secret was shown");
    }
}
