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

/// The line of `--show-settings` output `text` that shows setting `key`.
fn shown<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{key} ")))
        .unwrap_or_else(|| panic!("{key} missing in {text}"))
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
    // A missing API key is a credential missing: exit 3 (missing_or_unusable_credentials_exit_3_on_every_hop).
    let cases: [(&[&str], &str); 7] = [
        (&["pull"], "pass --url"),
        // A page size that no parameter would carry is refused, not silently dropped.
        (
            &[
                "pull",
                "--url",
                "https://x/o",
                "--paginate",
                "page",
                "--page-size",
                "50",
            ],
            "--page-size 50 is sent only with --page-size-param",
        ),
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
        let line = shown(&text, key);
        assert!(line.contains(value) && line.contains(origin), "{line}");
    }
    assert!(
        !text.contains("key-secret-99") && !text.contains("tenant-secret-42"),
        "{text}"
    );
    assert!(!stderr(&out).contains("key-secret-99"));
}

/// A page size that no parameter would carry (page numbers without `--page-size-param`) is
/// refused before any request, wherever it was given (flag above, variable or job file here),
/// and taken once the parameter is named.
#[test]
fn a_page_size_without_its_parameter_is_refused_wherever_it_was_set() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gatelake.toml"),
        "[jobs.pages]\nurl = \"https://x/o\"\npaginate = \"page\"\npage_size = 40\n",
    )
    .unwrap();
    let job = ["pull", "--job", "pages", "--show-settings"];
    let out = gatelake(dir.path(), &job, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--page-size 40 is sent only with --page-size-param"),
        "{}",
        stderr(&out)
    );
    let bare = [
        "pull",
        "--url",
        "https://x/o",
        "--paginate",
        "page",
        "--show-settings",
    ];
    let out = gatelake(dir.path(), &bare, &[("GATELAKE_PAGE_SIZE", "30")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("GATELAKE_PAGE_SIZE"),
        "{}",
        stderr(&out)
    );

    // With the parameter named, the size is read (and shown where it came from).
    let out = gatelake(
        dir.path(),
        &[&job[..], &["--page-size-param", "per_page"]].concat(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = shown(&text, "page-size");
    assert!(line.contains("40") && line.contains("job file"), "{line}");
}

/// A folder whose gatelake.toml has job `orders` with every switch a job file can turn on
/// (but `export`, which needs an export API) set to true.
fn job_with_every_switch_on() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gatelake.toml"),
        "[jobs.orders]\nurl = \"https://x/o\"\npaginate = \"cursor\"\ncursor_path = \"next\"\n\
         flatten = true\nsynapse_optimized = true\nmax_pages_complete = true\nno_read_ahead = true\n",
    )
    .unwrap();
    dir
}

/// A switch a job file turns on can be turned off for one run by its variable set to false
/// (a CI step overriding the checked-in job); without the variable the job file's holds.
#[test]
fn a_switch_variable_set_to_false_overrides_the_job_files_true() {
    let dir = job_with_every_switch_on();
    let switches = [
        ("flatten", "GATELAKE_FLATTEN"),
        ("synapse-optimized", "GATELAKE_SYNAPSE_OPTIMIZED"),
        ("max-pages-complete", "GATELAKE_MAX_PAGES_COMPLETE"),
        ("no-read-ahead", "GATELAKE_NO_READ_AHEAD"),
    ];
    let args = ["pull", "--job", "orders", "--show-settings"];
    let show = |env: &[(&str, &str)]| {
        let out = gatelake(dir.path(), &args, env);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let text = show(&[]);
    for (key, _) in switches {
        let l = shown(&text, key);
        assert!(l.contains("true") && l.contains("job file"), "{l}");
    }
    let off: Vec<(&str, &str)> = switches.iter().map(|(_, var)| (*var, "false")).collect();
    let text = show(&off);
    for (key, var) in switches {
        let l = shown(&text, key);
        assert!(
            l.contains("false") && l.contains(&format!("env {var}")),
            "{l}"
        );
    }
}

/// A switch a job file turns on is turned off for one run by its twin on the command line
/// (`--no-flatten`; `--read-ahead` for `--no-read-ahead`), which beats the switch's variable;
/// of a switch and its twin the later wins.
#[test]
fn a_switchs_twin_turns_off_the_job_files_true_and_the_later_of_the_two_wins() {
    let dir = job_with_every_switch_on();
    let twins = [
        ("flatten", "--no-flatten"),
        ("synapse-optimized", "--no-synapse-optimized"),
        ("max-pages-complete", "--no-max-pages-complete"),
        ("no-read-ahead", "--read-ahead"),
    ];
    let show = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["pull", "--job", "orders", "--show-settings"];
        args.extend_from_slice(extra);
        let out = gatelake(dir.path(), &args, env);
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        stdout(&out)
    };
    // (csv: jsonl, the default without synapse_optimized, refuses the job's flatten.)
    let twins_csv = twins.map(|(key, twin)| (key, [twin, "--format", "csv"]));
    // Each twin alone, with the switch's variable saying true: the flag wins.
    for (key, args) in &twins_csv {
        let var = format!("GATELAKE_{}", key.replace('-', "_").to_ascii_uppercase());
        let text = show(args, &[(&var, "true")]);
        let l = shown(&text, key);
        assert!(
            l.contains("false") && l.contains(&format!("flag {}", args[0])),
            "{args:?}: {l}"
        );
    }
    // Both on one command line: the later wins.
    for (key, twin) in twins {
        let switch = format!("--{key}");
        let l = shown(&show(&[twin, &switch, "--format", "csv"], &[]), key).to_owned();
        assert!(
            l.contains("true") && l.contains(&format!("flag {switch}")),
            "{l}"
        );
        let l = shown(&show(&[&switch, twin, "--format", "csv"], &[]), key).to_owned();
        assert!(
            l.contains("false") && l.contains(&format!("flag {twin}")),
            "{l}"
        );
    }
    // What follows from a switch follows its twin too: the job's synapse_optimized makes
    // parquet the default format; without it the default is jsonl again.
    assert!(shown(&show(&[], &[]), "format").contains("parquet"));
    let text = show(&["--no-synapse-optimized", "--no-flatten"], &[]);
    assert!(shown(&text, "format").contains("jsonl"), "{text}");
    // A flatten depth implies --flatten: with --no-flatten that is a contradiction, named.
    let out = gatelake(
        dir.path(),
        &[
            "pull",
            "--job",
            "orders",
            "--no-flatten",
            "--flatten-depth",
            "2",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--no-flatten contradicts flag --flatten-depth"),
        "{}",
        stderr(&out)
    );
}

/// A job file's `export = true` turned off for one run, by `--no-export` or
/// `GATELAKE_EXPORT=false`: a pull of records, the job's export settings left for the runs that
/// export (the variable was refused before, as an export without object fields).
#[test]
fn a_job_files_export_is_turned_off_by_its_twin_or_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let job = "[jobs.ex]\nurl = \"https://x/o\"\nexport = true\nexport_body = \"{}\"\n";
    let objects = "object_url_field = \"url\"\nobjects_path = \"objects\"\n";
    let show = |toml: &str, extra: &[&str], env: &[(&str, &str)]| {
        std::fs::write(dir.path().join("gatelake.toml"), toml).unwrap();
        let mut args = vec!["pull", "--job", "ex", "--show-settings"];
        args.extend_from_slice(extra);
        gatelake(dir.path(), &args, env)
    };
    for toml in [job.to_owned(), format!("{job}{objects}")] {
        let on = show(&toml, &[], &[]);
        if toml.contains("objects_path") {
            let text = stdout(&on);
            assert!(shown(&text, "export").contains("job file"), "{text}");
            assert!(shown(&text, "export-body").contains("{}"), "{text}");
        } else {
            // An export needs the field that locates each object: the job alone is refused.
            assert_eq!(on.status.code(), Some(2), "{}", stderr(&on));
        }
        for (extra, env, origin) in [
            (&["--no-export"][..], &[][..], "flag --no-export"),
            (
                &[][..],
                &[("GATELAKE_EXPORT", "false")][..],
                "env GATELAKE_EXPORT",
            ),
            (
                &["--export", "--no-export"][..],
                &[][..],
                "flag --no-export",
            ),
        ] {
            let out = show(&toml, extra, env);
            assert!(out.status.success(), "{extra:?} {env:?}: {}", stderr(&out));
            let text = stdout(&out);
            let l = shown(&text, "export");
            assert!(l.contains("false") && l.contains(origin), "{l}");
            assert!(!text.contains("export-body"), "{text}");
        }
    }
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

// ---- Issue 14 (no silent failure): destinations, JSON errors, exit codes, leftovers ----

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// (arguments, environment, a phrase the error must contain)
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

/// The one JSON object `--output json` must print, whatever happened.
fn json_object(o: &Output) -> serde_json::Value {
    let text = stdout(o);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {text:?}\nstderr: {}",
            stderr(o)
        )
    });
    assert!(v.is_object(), "{v}");
    v
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn unknown_destination_schemes_are_refused_and_make_no_folder() {
    let cases = [
        ("s3://bucket/path", "S3 destinations are not supported yet"),
        ("s3a://bucket/path", "S3 destinations are not supported yet"),
        ("gs://bucket/path", "unknown scheme gs:"),
        ("hdfs://namenode/lake", "unknown scheme hdfs:"),
        ("ftp://host/lake", "unknown scheme ftp:"),
    ];
    for (dest, phrase) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = gatelake(
            dir.path(),
            &[
                "demo",
                "--records",
                "10",
                "--dest",
                dest,
                "--output",
                "json",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{dest}: {}", stderr(&out));
        let v = json_object(&out);
        assert_eq!(v["error_kind"], "usage", "{dest}: {v}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(phrase), "{dest}: {error}");
        // The list of accepted forms, so the user can fix it without the README.
        for form in [
            "abfss://",
            "wasbs://",
            "onelake.dfs.fabric.microsoft.com",
            "file://",
        ] {
            assert!(error.contains(form), "{dest}: {form} not listed: {error}");
        }
        assert!(
            entries(dir.path()).is_empty(),
            "{dest}: made {:?}",
            entries(dir.path())
        );
    }
}

#[test]
fn azure_destination_forms_show_what_they_mean() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "abfs://raw@acct.dfs.core.windows.net/orders",
            "https://acct.blob.core.windows.net/raw/orders",
        ),
        (
            "abfss://raw@acct.dfs.core.windows.net/orders",
            "https://acct.blob.core.windows.net/raw/orders",
        ),
        (
            "wasbs://raw@acct.blob.core.windows.net/orders",
            "https://acct.blob.core.windows.net/raw/orders",
        ),
        (
            "wasb://raw@acct.blob.core.windows.net/orders",
            "https://acct.blob.core.windows.net/raw/orders",
        ),
        (
            "https://acct.dfs.core.windows.net/raw/orders",
            "https://acct.blob.core.windows.net/raw/orders",
        ),
        (
            "https://acct.dfs.core.chinacloudapi.cn/raw/orders",
            "https://acct.blob.core.chinacloudapi.cn/raw/orders",
        ),
        (
            "abfss://Sales@onelake.dfs.fabric.microsoft.com/lh.Lakehouse/Files/orders",
            "https://onelake.blob.fabric.microsoft.com/Sales/lh.Lakehouse/Files/orders",
        ),
        (
            "https://onelake.dfs.fabric.microsoft.com/Sales/lh.Lakehouse/Files/orders",
            "https://onelake.blob.fabric.microsoft.com/Sales/lh.Lakehouse/Files/orders",
        ),
    ];
    for (dest, means) in cases {
        let out = gatelake(
            dir.path(),
            &[
                "pull",
                "--url",
                "https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders",
                "--dest",
                dest,
                "--show-settings",
            ],
            &[],
        );
        assert!(out.status.success(), "{dest}: {}", stderr(&out));
        let text = stdout(&out);
        let line = shown(&text, "dest");
        assert!(line.contains(means), "{dest}: {line}");
    }
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn file_urls_and_plain_paths_are_local_folders() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("my lake");
    let url = url::Url::from_file_path(&target).unwrap().to_string();
    assert!(url.starts_with("file:///"), "{url}");
    for dest in [url.as_str(), "plain/lake"] {
        let out = gatelake(
            dir.path(),
            &[
                "demo",
                "--records",
                "30",
                "--dest",
                dest,
                "--output",
                "json",
            ],
            &[],
        );
        assert!(out.status.success(), "{dest}: {}", stderr(&out));
        let v = json_object(&out);
        assert_eq!(v["rows"], 30);
    }
    let run_dirs = |root: &Path| {
        entries(root)
            .into_iter()
            .filter(|e| !e.starts_with('_'))
            .collect::<Vec<_>>()
    };
    assert_eq!(run_dirs(&target).len(), 1, "{:?}", entries(&target));
    assert_eq!(run_dirs(&dir.path().join("plain/lake")).len(), 1);
    assert_eq!(entries(dir.path()), vec!["my lake", "plain"]);
}

#[test]
fn malformed_azure_destination_is_a_usage_error_before_any_identity_probe() {
    // A stand-in for the VM metadata address that counts who knocks.
    let imds = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    imds.set_nonblocking(true).unwrap();
    let imds_url = format!("http://{}", imds.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let api = format!("http://127.0.0.1:{}/prod/orders", closed_port());
    for dest in [
        "abfss://acct.dfs.core.windows.net/orders",
        "https://acct.blob.core.windows.net",
        "https://example.com/raw/orders",
        "abfss://raw@acct/orders",
    ] {
        for cmd in [&["pull"][..], &["auth", "check"][..]] {
            let mut args: Vec<&str> = cmd.to_vec();
            args.extend(["--url", &api, "--dest", dest, "--output", "json"]);
            let out = gatelake(dir.path(), &args, &[("IMDS_ENDPOINT", &imds_url)]);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd:?} {dest}: {}",
                stderr(&out)
            );
            let v = json_object(&out);
            assert_eq!(v["error_kind"], "usage", "{v}");
            assert!(
                v["error"].as_str().unwrap().contains("invalid destination"),
                "{v}"
            );
            assert!(!stderr(&out).contains("identity"), "{}", stderr(&out));
        }
    }
    assert!(
        imds.accept().is_err(),
        "an identity probe was made before the destination was checked"
    );
}

#[test]
fn json_output_for_argument_errors_on_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let url = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders";
    // (args, env, a phrase the error must contain)
    let cases: Vec<Case> = vec![
        (
            vec!["pull", "--no-such-flag", "--output", "json"],
            vec![],
            "--no-such-flag",
        ),
        (
            vec!["pull", "--paginate", "sideways", "--output", "json"],
            vec![],
            "sideways",
        ),
        (
            vec!["pull", "--output=json", "--max-pages", "many"],
            vec![],
            "--max-pages",
        ),
        (
            vec!["pull", "--paginate", "sideways"],
            vec![("GATELAKE_OUTPUT", "json")],
            "sideways",
        ),
        (
            vec!["pull", "--url", url, "--output", "json"],
            vec![("GATELAKE_PAGINATE", "sideways")],
            "GATELAKE_PAGINATE=sideways",
        ),
        (
            vec!["pull", "--url", url, "--output", "json"],
            vec![("GATELAKE_FORMAT", "xml")],
            "GATELAKE_FORMAT=xml:",
        ),
        (
            vec!["pull", "--url", url],
            vec![
                ("GATELAKE_OUTPUT", "json"),
                ("GATELAKE_CHUNK_SIZE", "12 parsecs"),
            ],
            "GATELAKE_CHUNK_SIZE=12 parsecs",
        ),
        (
            vec!["pull", "--url", url, "--output", "json"],
            vec![("GATELAKE_CREATE_CONTAINER", "maybe")],
            "GATELAKE_CREATE_CONTAINER=maybe",
        ),
        (
            vec!["pull", "--url", url, "--output", "json"],
            vec![("GATELAKE_DEST", "s3://bucket/orders")],
            "GATELAKE_DEST=s3://bucket/orders: invalid destination",
        ),
        (
            vec!["demo", "--records", "lots", "--output", "json"],
            vec![],
            "--records",
        ),
        (
            vec!["demo", "--output", "json"],
            vec![("GATELAKE_PROGRESS", "fancy")],
            "GATELAKE_PROGRESS=fancy",
        ),
        (
            vec!["demo", "--format", "xml"],
            vec![("GATELAKE_OUTPUT", "json")],
            "--format",
        ),
        (
            vec!["auth", "check", "--bogus", "--output", "json"],
            vec![],
            "--bogus",
        ),
        (
            vec!["auth", "check", "--output", "json"],
            vec![("GATELAKE_WEB_IDENTITY", "carrier-pigeon")],
            "GATELAKE_WEB_IDENTITY=carrier-pigeon",
        ),
        (
            // `sql --output json` is a real flag now (it was an unexpected argument); an
            // argument error next to it is still one JSON object.
            vec![
                "sql", "--dest", "./lake/x", "--output", "json", "--pool", "huge",
            ],
            vec![],
            "huge",
        ),
        (
            vec!["sql", "--pool", "huge"],
            vec![("GATELAKE_OUTPUT", "json")],
            "huge",
        ),
        (
            vec!["sql", "--dest", "./nothing"],
            vec![("GATELAKE_OUTPUT", "json")],
            "no completed run",
        ),
        (
            vec!["sql", "--dest", "s3://b/p"],
            vec![("GATELAKE_OUTPUT", "json")],
            "S3 destinations",
        ),
        (vec!["--output", "json"], vec![], "--output"),
        (
            vec!["auth"],
            vec![("GATELAKE_OUTPUT", "json")],
            "subcommand",
        ),
    ];
    for (args, env, phrase) in cases {
        let out = gatelake(dir.path(), &args, &env);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} {env:?}: {}",
            stderr(&out)
        );
        let v = json_object(&out);
        assert_eq!(v["status"], "failed", "{args:?}: {v}");
        assert_eq!(v["error_kind"], "usage", "{args:?}: {v}");
        assert_eq!(v["exit_code"], 2, "{args:?}: {v}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(phrase), "{args:?} {env:?}: {error}");
        // The readable line is still on stderr.
        assert!(
            stderr(&out).contains("error:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }

    // Without JSON, stdout stays empty and the variable is named on stderr.
    let out = gatelake(
        dir.path(),
        &["pull", "--url", url],
        &[("GATELAKE_FORMAT", "xml")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("GATELAKE_FORMAT=xml"),
        "{}",
        stderr(&out)
    );

    // --help and --version keep printing text, and succeed.
    for args in [
        &["pull", "--help", "--output", "json"][..],
        &["--version"][..],
        &["sql", "--help"][..],
    ] {
        let out = gatelake(dir.path(), args, &[("GATELAKE_OUTPUT", "json")]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            serde_json::from_str::<serde_json::Value>(stdout(&out).trim()).is_err(),
            "{args:?}: {}",
            stdout(&out)
        );
        assert!(stdout(&out).contains("gatelake"), "{args:?}");
    }
    // A secret's value from the environment is never repeated in an error.
    let out = gatelake(
        dir.path(),
        &[
            "pull",
            "--url",
            url,
            "--api-auth",
            "api-key",
            "--output",
            "json",
        ],
        &[
            ("GATELAKE_API_KEY", "key-secret-77"),
            ("GATELAKE_FORMAT", "xml"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!stdout(&out).contains("key-secret-77") && !stderr(&out).contains("key-secret-77"));
    for dest in [
        "https://acct.blob.core.windows.net/raw/orders?sv=2024&sig=sas-secret-55",
        "wasbs://raw:key-secret-55@acct.blob.core.windows.net/orders",
    ] {
        let out = gatelake(
            dir.path(),
            &["pull", "--url", url, "--output", "json"],
            &[("GATELAKE_DEST", dest)],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(all.contains("GATELAKE_DEST="), "{all}");
        assert!(!all.contains("secret-55"), "{all}");
    }
}

#[test]
fn missing_or_unusable_credentials_exit_3_on_every_hop() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-key");
    std::fs::write(&empty, "\n").unwrap();
    let empty = empty.to_str().unwrap();
    let url = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders";
    let cases: Vec<Case> = vec![
        (
            vec!["pull", "--url", url, "--api-auth", "api-key"],
            vec![],
            "GATELAKE_API_KEY",
        ),
        (
            vec!["pull", "--url", url],
            vec![("GATELAKE_API_AUTH", "api-key")],
            "GATELAKE_API_AUTH=api-key needs the key",
        ),
        (
            vec!["pull", "--url", url, "--api-auth", "bearer"],
            vec![],
            "GATELAKE_BEARER_TOKEN",
        ),
        (
            vec![
                "pull",
                "--url",
                url,
                "--api-auth",
                "api-key",
                "--api-key-file",
                empty,
            ],
            vec![],
            "is empty",
        ),
        // An empty (or blank) key or token in the environment is not a credential: it
        // must not be sent as one.
        (
            vec!["pull", "--url", url, "--api-auth", "api-key"],
            vec![("GATELAKE_API_KEY", "")],
            "GATELAKE_API_KEY is empty",
        ),
        (
            vec!["pull", "--url", url],
            vec![("GATELAKE_API_KEY", "  ")],
            "GATELAKE_API_KEY is empty",
        ),
        (
            vec!["pull", "--url", url, "--api-auth", "bearer"],
            vec![("GATELAKE_BEARER_TOKEN", "")],
            "GATELAKE_BEARER_TOKEN is empty",
        ),
        (
            vec![
                "pull",
                "--url",
                url,
                "--api-auth",
                "bearer",
                "--bearer-token-file",
                "/nonexistent/token",
            ],
            vec![],
            "cannot read the bearer token file",
        ),
        (
            vec!["auth", "check", "--url", url, "--api-auth", "api-key"],
            vec![],
            "GATELAKE_API_KEY",
        ),
        // Storage with no Azure identity at all (the metadata address is closed in tests).
        (
            vec![
                "pull",
                "--url",
                url,
                "--dest",
                "https://acct.blob.core.windows.net/raw/orders",
            ],
            vec![],
            "Azure",
        ),
    ];
    for (mut args, env, phrase) in cases {
        args.extend(["--output", "json"]);
        let out = gatelake(dir.path(), &args, &env);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        let v = json_object(&out);
        if args[0] == "pull" {
            assert_eq!(v["error_kind"], "auth", "{v}");
            assert!(
                v["error"].as_str().unwrap().contains(phrase),
                "{args:?}: {v}"
            );
        } else {
            assert!(stdout(&out).contains(phrase), "{args:?}: {v}");
        }
        assert_eq!(v["exit_code"], 3, "{v}");
    }
}

/// Every documented exit code from a real invocation (1, "a bug", has no honest trigger: the
/// README's table is checked against the code's enum by a unit test in `exit_code.rs`).
#[test]
fn every_documented_exit_code_comes_from_a_real_run() {
    let dir = tempfile::tempdir().unwrap();
    let json = |args: &[&str], env: &[(&str, &str)], want: i32| {
        let mut args = args.to_vec();
        args.extend(["--output", "json", "--progress", "none"]);
        let out = gatelake(dir.path(), &args, env);
        assert_eq!(out.status.code(), Some(want), "{args:?}: {}", stderr(&out));
        let v = json_object(&out);
        if want != 0 {
            assert_eq!(v["exit_code"], want, "{v}");
        }
        v
    };
    // 0
    assert_eq!(
        json(&["demo", "--records", "20"], &[], 0)["status"],
        "succeeded"
    );
    // 2
    json(&["pull", "--url", "https://x/o", "--format", "xml"], &[], 2);
    // 3: a credential missing
    json(
        &["pull", "--url", "https://x/o", "--api-auth", "bearer"],
        &[],
        3,
    );
    // 4: the API unreachable
    let api = format!("http://127.0.0.1:{}/prod/orders", closed_port());
    json(&["pull", "--url", &api, "--max-retries", "0"], &[], 4);
    // 5: storage unreachable (an emulator address nothing listens on)
    let store = format!(
        "http://127.0.0.1:{}/devstoreaccount1/c1/orders",
        closed_port()
    );
    json(
        &[
            "pull",
            "--url",
            &api,
            "--dest",
            &store,
            "--azure-auth",
            "key",
        ],
        &[
            ("AZURE_STORAGE_ACCOUNT", "devstoreaccount1"),
            ("AZURE_STORAGE_KEY", "a2V5LWZvci10ZXN0cw=="),
        ],
        5,
    );
    // 6: another run holds the job's lock
    let state = dir.path().join("lake/demo/_state");
    std::fs::create_dir_all(&state).unwrap();
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.join("lock"))
        .unwrap();
    held.try_lock().unwrap();
    json(&["demo", "--records", "20"], &[], 6);
    drop(held);
    // 130: interrupted (SIGINT), the checkpoint saved
    let run_dir = tempfile::tempdir().unwrap();
    let child = support::run::command()
        .current_dir(run_dir.path())
        .args([
            "demo",
            "--records",
            "2000000",
            "--page-size",
            "100",
            "--output",
            "json",
            "--progress",
            "none",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = run_dir.path().join("lake/demo/_state/checkpoint.json");
    for _ in 0..500 {
        if checkpoint.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(checkpoint.exists(), "the demo never started");
    // SAFETY: kill(2) with the pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_eq!(json_object(&out)["exit_code"], 130);
}

#[test]
fn help_examples_keep_their_lines_and_every_value_and_default_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    // A narrow terminal: clap re-wraps what it may; the examples must survive as written.
    let top = stdout(&gatelake(dir.path(), &["--help"], &[("COLUMNS", "50")]));
    for line in [
        "  gatelake pull \\",
        "      --url https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders \\",
        "      --paginate cursor --cursor-path next_cursor --records items \\",
        "      --dest abfss://raw@myaccount.dfs.core.windows.net/orders",
        "  gatelake pull --job orders",
    ] {
        assert!(
            top.lines().any(|l| l == line),
            "{line:?} not intact in:\n{top}"
        );
    }
    for code in ["0", "1", "2", "3", "4", "5", "6", "130"] {
        assert!(
            top.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code}  "))),
            "exit code {code} missing:\n{top}"
        );
    }
    assert!(top.contains("is always 3"), "{top}");

    let pull = stdout(&gatelake(dir.path(), &["pull", "--help"], &[]));
    let section = |flag: &str| {
        let start = pull.find(&format!("      {flag} <")).unwrap();
        let rest = &pull[start..];
        let end = rest[1..].find("\n      --").map_or(rest.len(), |e| e + 1);
        rest[..end].to_string()
    };
    let progress = section("--progress");
    for value in ["- auto:", "- bar:", "- plain:", "- none:"] {
        let line = progress.lines().find(|l| l.trim_start().starts_with(value));
        let line = line.unwrap_or_else(|| panic!("{value} missing in {progress}"));
        assert!(
            line.len() > value.len() + 8,
            "{value} has no description: {line:?}"
        );
    }
    assert!(progress.contains("[default: auto]"), "{progress}");
    assert!(
        section("--output").contains("[default: text]"),
        "{}",
        section("--output")
    );
    assert!(
        pull.contains("Exit codes:"),
        "pull --help states the exit codes"
    );
}

#[test]
fn a_failed_run_leaves_no_new_job_folder() {
    let api = format!("http://127.0.0.1:{}/prod/orders", closed_port());
    let pull = |dir: &Path, dest: Option<&str>| {
        let mut args = vec![
            "pull",
            "--url",
            &api,
            "--max-retries",
            "0",
            "--progress",
            "none",
        ];
        if let Some(d) = dest {
            args.extend(["--dest", d]);
        }
        let out = gatelake(dir, &args, &[]);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    };
    // The default ./lake/<job>: neither it nor ./lake stays behind.
    let dir = tempfile::tempdir().unwrap();
    pull(dir.path(), None);
    assert!(
        entries(dir.path()).is_empty(),
        "left {:?}",
        walk(dir.path())
    );

    // A folder the user made stays, emptied of this run's state.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mine")).unwrap();
    pull(dir.path(), Some("mine"));
    assert_eq!(entries(dir.path()), vec!["mine"]);
    assert!(
        entries(&dir.path().join("mine")).is_empty(),
        "{:?}",
        walk(dir.path())
    );

    // A job folder with earlier content keeps all of it.
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(
        dir.path(),
        &["demo", "--records", "20", "--dest", "lake/orders"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let before = walk(dir.path());
    pull(dir.path(), Some("lake/orders"));
    let after = walk(dir.path());
    for p in &before {
        assert!(after.contains(p), "{} was removed", p.display());
    }
}

#[test]
fn auth_check_leaves_no_probe_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(dir.path(), &["auth", "check", "--output", "json"], &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let v = json_object(&out);
    let lake = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hop"] == "lake")
        .unwrap_or_else(|| panic!("no lake hop: {v}"));
    assert_eq!(lake["status"], "ok", "{v}");
    assert!(
        entries(dir.path()).is_empty(),
        "left {:?}",
        walk(dir.path())
    );

    // Into an existing folder: nothing added.
    std::fs::create_dir_all(dir.path().join("lake/orders/run1")).unwrap();
    std::fs::write(dir.path().join("lake/orders/run1/part-0.jsonl.gz"), b"x").unwrap();
    let out = gatelake(dir.path(), &["auth", "check", "--dest", "lake/orders"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(entries(&dir.path().join("lake/orders")), vec!["run1"]);
}

#[test]
fn sql_prints_one_json_object_with_gatelake_output_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(
        dir.path(),
        &[
            "demo",
            "--records",
            "40",
            "--format",
            "parquet",
            "--output",
            "json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let run_id = json_object(&out)["run_id"].as_str().unwrap().to_string();
    let out = gatelake(
        dir.path(),
        &["sql", "--dest", "lake/demo"],
        &[("GATELAKE_OUTPUT", "json")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_object(&out);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["run"], run_id.as_str(), "{v}");
    assert!(v["sql"].as_str().unwrap().contains("COPY INTO"), "{v}");
    // Without it, the script itself, as before.
    let out = gatelake(dir.path(), &["sql", "--dest", "lake/demo"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("COPY INTO"));
    assert!(serde_json::from_str::<serde_json::Value>(stdout(&out).trim()).is_err());
}

#[test]
fn sql_prints_one_json_object_with_output_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(
        dir.path(),
        &[
            "demo",
            "--records",
            "40",
            "--format",
            "parquet",
            "--output",
            "json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let run_id = json_object(&out)["run_id"].as_str().unwrap().to_string();
    let out = gatelake(
        dir.path(),
        &["sql", "--dest", "lake/demo", "--output", "json"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_object(&out);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["run"], run_id.as_str(), "{v}");
    assert!(v["sql"].as_str().unwrap().contains("COPY INTO"), "{v}");
    // The flag beats the variable, as for every setting.
    let out = gatelake(
        dir.path(),
        &["sql", "--dest", "lake/demo", "--output", "text"],
        &[("GATELAKE_OUTPUT", "json")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("COPY INTO"));
    assert!(serde_json::from_str::<serde_json::Value>(stdout(&out).trim()).is_err());
    // A failure is one JSON object too: a destination with no completed run.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = gatelake(
        dir.path(),
        &["sql", "--dest", "empty", "--output", "json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v = json_object(&out);
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["exit_code"], 2, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("no completed run"),
        "{v}"
    );
}

/// `gatelake pull --show-settings | head -1`: a reader that stops early closes the pipe. The
/// rest of the answer is dropped quietly: no panic, no "Broken pipe" message, exit 0.
#[test]
fn a_reader_that_stops_early_is_no_error() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let url = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders";
    for output in ["text", "json"] {
        let mut child = support::run::command()
            .current_dir(dir.path())
            .args(["pull", "--url", url, "--show-settings", "--output", output])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run gatelake");
        // Close the reading end before the process writes its answer.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{output}: {err}");
        assert!(!err.contains("panicked"), "{output}: {err}");
        assert!(
            !err.to_lowercase().contains("broken pipe"),
            "{output}: {err}"
        );
    }
}
