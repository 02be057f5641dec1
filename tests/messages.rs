//! What the user reads: the real binary's summary, progress lines, log lines and errors, each
//! checked for the wording a user was let down by (issue 14, item 11): plurals, float noise,
//! size units, job-file mistakes, TLS advice, colour codes in logs, `-v`, and `--progress bar`
//! without a terminal. The demo API serves the data where no emulator is needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

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

#[test]
fn one_record_page_and_file_are_singular() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(
        dir.path(),
        &[
            "demo",
            "--records",
            "1",
            "--page-size",
            "1",
            "--progress",
            "plain",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(o.contains("Pulled 1 record in 1 page into 1 file ("), "{o}");
    assert!(e.contains("chunk 0: 1 record,"), "{e}");
    assert!(e.contains("complete: 1 record in 1 file ("), "{e}");
    for wrong in ["1 records", "1 pages", "1 files"] {
        assert!(
            !o.contains(wrong) && !e.contains(wrong),
            "{wrong}:\n{o}\n{e}"
        );
    }
    // Plural stays plural.
    let out = gatelake(
        dir.path(),
        &["demo", "--records", "30", "--page-size", "10"],
        &[],
    );
    assert!(
        stdout(&out).contains("Pulled 30 records in 3 pages into 1 file ("),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_summary_seconds_have_at_most_millisecond_digits() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let out = gatelake(
            dir.path(),
            &["demo", "--records", "300", "--output", "json"],
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let raw = stdout(&out);
        let at = raw.find("\"seconds\":").expect("a seconds field") + "\"seconds\":".len();
        let number: String = raw[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == 'e' || *c == '-')
            .collect();
        let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(
            decimals <= 3 && !number.contains('e'),
            "seconds written as {number}"
        );
        let parsed: f64 = number.parse().unwrap();
        assert!(parsed > 0.0, "{number}");
    }
}

#[test]
fn a_bad_size_unit_echoes_the_input_and_lists_the_units() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(dir.path(), &["demo", "--chunk-size", "12XB"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("--chunk-size: '12XB': 'XB' is not a size unit")
            && e.contains("B, KB, KiB, MB, MiB, GB, GiB"),
        "{e}"
    );
}

#[test]
fn job_file_secrets_and_typos_get_actionable_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gatelake.toml"),
        "[jobs.orders]\nurl = \"http://127.0.0.1:9/prod/orders\"\napi_key = \"k-123-secret\"\n",
    )
    .unwrap();
    let out = gatelake(dir.path(), &["pull", "--job", "orders"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("secrets are not allowed in the job file")
            && e.contains("use api_key_file or GATELAKE_API_KEY"),
        "{e}"
    );
    assert!(!e.contains("k-123-secret"), "{e}");

    std::fs::write(
        dir.path().join("gatelake.toml"),
        "[jobs.orders]\nurl = \"http://127.0.0.1:9/prod/orders\"\npaginte = \"cursor\"\n",
    )
    .unwrap();
    let out = gatelake(dir.path(), &["pull", "--job", "orders"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("unknown key `paginte` (line 3); did you mean `paginate`?"),
        "{e}"
    );
}

#[test]
fn verbose_levels_add_the_promised_events() {
    let dir = tempfile::tempdir().unwrap();
    let run = |flags: &[&str]| {
        let mut args = vec![
            "demo",
            "--records",
            "200",
            "--page-size",
            "50",
            "--chunk-rows",
            "100",
            "--progress",
            "none",
        ];
        args.extend_from_slice(flags);
        let out = gatelake(dir.path(), &args, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let quiet = run(&[]);
    assert!(
        !quiet.contains("committed") && !quiet.contains("GET "),
        "{quiet}"
    );

    let v = run(&["-v"]);
    for want in [
        "chunk 0 committed: 100 records",
        "chunk 1 committed: 100 records",
        // Chunks may commit out of order; the checkpoint advances over the committed prefix.
        "checkpoint advanced next_seq=",
        "checkpoint advanced next_seq=2 pages=4 next_request=none",
        "storage: file://",
        "with the local file system",
        "API: --api-auth none",
        " INFO ",
    ] {
        assert!(v.contains(want), "-v lacks {want:?}:\n{v}");
    }
    assert!(!v.contains("GET http"), "-v shows requests:\n{v}");

    let vv = run(&["-vv"]);
    for want in ["page 1: GET http://127.0.0.1:", "page 1: 200 from", "DEBUG"] {
        assert!(vv.contains(want), "-vv lacks {want:?}:\n{vv}");
    }
}

#[test]
fn log_lines_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(
        dir.path(),
        &["demo", "--records", "100", "-vv", "--progress", "plain"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("DEBUG"), "no log lines to check:\n{e}");
    assert!(!e.contains('\u{1b}'), "escape codes on a pipe:\n{e:?}");
}

#[test]
fn progress_bar_without_a_terminal_falls_back_to_plain_lines_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(
        dir.path(),
        &["demo", "--records", "100", "--progress", "bar"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains(
            "--progress bar needs a terminal on stderr; showing plain progress lines instead"
        ),
        "{e}"
    );
    assert!(e.contains("gatelake: chunk 0: 100 records"), "{e}");
    assert!(e.contains("complete: 100 records in 1 file"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_tls_certificate_gets_ca_bundle_advice_not_dns() {
    let app = axum::Router::new().fallback(|| async {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"[{"id":1}]"#,
        )
    });
    let server = support::identity::serve_tls(app).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("https://127.0.0.1:{}/prod/orders", server.addr.port());
    let dest = dir.path().join("lake");
    let args = support::run::s(&[
        "pull",
        "--url",
        &url,
        "--output",
        "json",
        "-v",
        "--dest",
        dest.to_str().unwrap(),
    ]);
    let out = support::run::gatelake(args, vec![]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = support::run::summary(&out)["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("TLS certificate")
            && err.contains("--ca-bundle")
            && err.contains("SSL_CERT_FILE"),
        "{err}"
    );
    assert!(!err.contains("DNS"), "{err}");
    assert!(!stderr(&out).contains('\u{1b}'), "{:?}", stderr(&out));
    // The same API with its CA trusted is reached: the advice is the fix.
    let args = support::run::s(&[
        "pull",
        "--url",
        &url,
        "--output",
        "json",
        "--dest",
        dest.to_str().unwrap(),
        "--ca-bundle",
        support::identity::ca_file().to_str().unwrap(),
    ]);
    let out = support::run::gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(support::run::summary(&out)["rows"], 1);
}

#[test]
fn warnings_are_shown_with_progress_none() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(dir.path(), &["demo", "--records", "20"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Leave the job with an unfinished run, as a killed run does.
    let path = dir.path().join("lake/demo/_state/checkpoint.json");
    let mut cp: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cp["status"] = "running".into();
    std::fs::write(&path, serde_json::to_vec(&cp).unwrap()).unwrap();
    let out = gatelake(
        dir.path(),
        &["demo", "--records", "20", "--restart", "--progress", "none"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains(&format!(
            "--restart: discarded the unfinished run {}",
            cp["run_id"].as_str().unwrap()
        )),
        "{e}"
    );
}
