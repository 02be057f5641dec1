//! The API client and the job lock under the conditions users meet: an upstream error that
//! quotes a secret back, credentials given without naming the auth kind, a rotated token file,
//! a `Retry-After` longer than the run should wait, and a job lock left behind by a crash or
//! held by a live run. Each test drives the real binary against the API Gateway stand-in (and
//! Azurite, where the lock is a blob lease).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;
use support::apigw::{ApiAuthCheck, ApiConfig, ApiGateway};
use support::run::{gatelake, s, summary, text};

const AK: &str = "AKIDEXAMPLECLIENTLOCK";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE-session-token-7f3a9c";
const WRONG_SECRET: &str = "wrong-secret-key-0b9e4d2c71a5";

/// Where `needle` appears in the run's outputs (stdout, stderr), by name only.
fn found_in(out: &Output, needle: &str) -> Vec<&'static str> {
    let mut places = Vec::new();
    if text(&out.stdout).contains(needle) {
        places.push("stdout");
    }
    if text(&out.stderr).contains(needle) {
        places.push("stderr");
    }
    places
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_mismatch_never_prints_the_session_token_or_the_secret() {
    let api = ApiGateway::start(ApiConfig {
        auth: ApiAuthCheck::SigV4 {
            access_key: AK.into(),
            secret_key: "the-real-secret-key".into(),
            session_token: Some(SESSION_TOKEN.into()),
            region: "eu-west-1".into(),
        },
        ..ApiConfig::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let out = gatelake(
        s(&[
            "pull",
            "-v",
            "--url",
            &api.url("/prod/offset"),
            "--paginate",
            "offset",
            "--records",
            "items",
            "--api-auth",
            "iam",
            "--region",
            "eu-west-1",
            "--output",
            "json",
            "--dest",
            lake.path().to_str().unwrap(),
        ]),
        vec![
            ("AWS_ACCESS_KEY_ID".into(), AK.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), WRONG_SECRET.into()),
            ("AWS_SESSION_TOKEN".into(), SESSION_TOKEN.into()),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // The stand-in quoted the canonical request, token included, as API Gateway does.
    assert!(api.requests().iter().any(|r| r
        .headers
        .get("x-amz-security-token")
        .is_some_and(|v| v.as_bytes() == SESSION_TOKEN.as_bytes())));
    for (name, value) in [
        ("session token", SESSION_TOKEN),
        ("secret key", WRONG_SECRET),
    ] {
        let places = found_in(&out, value);
        assert!(places.is_empty(), "the {name} was printed on {places:?}");
    }
    let err = summary(&out);
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("signature we calculated does not match"),
        "{message}"
    );
    assert!(
        message.contains("cut") && !message.contains("Canonical String"),
        "{message}"
    );
    assert!(
        message.contains("secret key"),
        "the hint is kept: {message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Credentials given without naming the auth kind (issue 14, item 5)
// ---------------------------------------------------------------------------------------------

const API_KEY: &str = "ak-inferred-3e8b1f07c2d9";
const BEARER: &str = "bearer-inferred-9a0c4d6e2f11";

/// `gatelake pull … --show-settings --output json` with `extra` flags and `env`: the settings
/// as (key, value, origin).
async fn settings_of(
    extra: &[&str],
    env: Vec<(String, String)>,
) -> (Output, Vec<(String, String, String)>) {
    let mut args = s(&[
        "pull",
        "--url",
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/orders",
        "--show-settings",
        "--output",
        "json",
    ]);
    args.extend(extra.iter().map(|a| a.to_string()));
    let out = gatelake(args, env).await;
    let rows = if out.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["key"].as_str().unwrap().to_string(),
                    r["value"].as_str().unwrap().to_string(),
                    r["origin"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    (out, rows)
}

fn setting<'a>(rows: &'a [(String, String, String)], key: &str) -> Option<(&'a str, &'a str)> {
    rows.iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, v, o)| (v.as_str(), o.as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_alone_is_sent_as_api_key_auth_and_says_it_was_inferred() {
    let api = ApiGateway::start(ApiConfig {
        records: 250,
        auth: ApiAuthCheck::ApiKey(API_KEY.into()),
        ..ApiConfig::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let env = vec![("GATELAKE_API_KEY".to_string(), API_KEY.to_string())];
    let out = gatelake(
        s(&[
            "pull",
            "--url",
            &api.url("/prod/offset"),
            "--paginate",
            "offset",
            "--records",
            "items",
            "--output",
            "json",
            "--dest",
            lake.path().to_str().unwrap(),
        ]),
        env.clone(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["rows"], 250);
    assert!(api
        .requests()
        .iter()
        .all(|r| r.headers.get("x-api-key").is_some_and(|v| v == API_KEY)));

    let (out, rows) = settings_of(&[], env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        setting(&rows, "api-auth"),
        Some(("api-key", "inferred from GATELAKE_API_KEY"))
    );

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, BEARER).unwrap();
    let (out, rows) = settings_of(
        &["--bearer-token-file", token_file.to_str().unwrap()],
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        setting(&rows, "api-auth"),
        Some(("bearer", "inferred from --bearer-token-file"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_the_auth_kind_would_not_use_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, API_KEY).unwrap();
    let key_env = || vec![("GATELAKE_API_KEY".to_string(), API_KEY.to_string())];
    let bearer_env = || vec![("GATELAKE_BEARER_TOKEN".to_string(), BEARER.to_string())];
    let both_env = || {
        let mut e = key_env();
        e.extend(bearer_env());
        e
    };
    type Env = Vec<(String, String)>;
    let cases: Vec<(Vec<&str>, Env, &[&str])> = vec![
        // Ambiguous: a key and a token, no kind.
        (
            vec![],
            both_env(),
            &["GATELAKE_API_KEY", "GATELAKE_BEARER_TOKEN", "--api-auth"],
        ),
        // SigV4 owns the Authorization header: the token cannot be sent.
        (
            vec!["--api-auth", "iam"],
            bearer_env(),
            &["--api-auth iam", "GATELAKE_BEARER_TOKEN"],
        ),
        (
            vec!["--api-auth", "none"],
            key_env(),
            &["--api-auth none", "GATELAKE_API_KEY"],
        ),
        (
            vec!["--api-auth", "api-key"],
            both_env(),
            &["--api-auth api-key", "GATELAKE_BEARER_TOKEN"],
        ),
        (
            vec![
                "--api-auth",
                "none",
                "--api-key-file",
                key_file.to_str().unwrap(),
            ],
            vec![],
            &["--api-auth none", "--api-key-file"],
        ),
    ];
    for (flags, env, named) in cases {
        let (out, _) = settings_of(&flags, env).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flags:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        for n in named {
            assert!(
                err.contains(n),
                "{flags:?}: the error should name {n}: {err}"
            );
        }
        assert!(!err.contains(API_KEY) && !err.contains(BEARER), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_with_iam_or_bearer_is_sent_as_the_usage_plan_key() {
    let api = ApiGateway::start(ApiConfig {
        records: 120,
        auth: ApiAuthCheck::Bearer(BEARER.into()),
        ..ApiConfig::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let out = gatelake(
        s(&[
            "pull",
            "--url",
            &api.url("/prod/offset"),
            "--paginate",
            "offset",
            "--records",
            "items",
            "--api-auth",
            "bearer",
            "--output",
            "json",
            "--dest",
            lake.path().to_str().unwrap(),
        ]),
        vec![
            ("GATELAKE_API_KEY".to_string(), API_KEY.to_string()),
            ("GATELAKE_BEARER_TOKEN".to_string(), BEARER.to_string()),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(api.requests().iter().all(|r| {
        r.headers.get("x-api-key").is_some_and(|v| v == API_KEY)
            && r.headers
                .get("authorization")
                .is_some_and(|v| v.as_bytes() == format!("Bearer {BEARER}").as_bytes())
    }));
    let (out, rows) = settings_of(
        &["--api-auth", "iam"],
        vec![("GATELAKE_API_KEY".to_string(), API_KEY.to_string())],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (value, origin) = setting(&rows, "api-key").expect("the key is shown");
    assert!(
        value.contains("***") && value.contains("usage plan"),
        "{value}"
    );
    assert_eq!(origin, "env GATELAKE_API_KEY");
}

// ---------------------------------------------------------------------------------------------
// Retry-After (issue 13, item 4)
// ---------------------------------------------------------------------------------------------

fn offset_pull(api: &ApiGateway, lake: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut a = s(&[
        "pull",
        "--url",
        &api.url("/prod/offset"),
        "--paginate",
        "offset",
        "--page-size",
        "100",
        "--records",
        "items",
        "--chunk-rows",
        "100",
        "--output",
        "json",
        "--progress",
        "none",
        "--dest",
        lake.to_str().unwrap(),
    ]);
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_past_the_maximum_stops_resumable_and_says_when_to_rerun() {
    use support::apigw::RetryAfter;
    let api = ApiGateway::start(ApiConfig {
        records: 600,
        page_size: 100,
        throttle_every: Some(4),
        retry_after: RetryAfter::Seconds(3),
        ..ApiConfig::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let before = time::OffsetDateTime::now_utc();
    let out = gatelake(
        offset_pull(&api, lake.path(), &["--max-retry-after", "2s"]),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = summary(&out);
    assert_eq!(err["error_kind"], "source");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("Retry-After") && message.contains("--max-retry-after"),
        "{message}"
    );
    // The absolute time to run again: at least the 3 s the API asked for from now.
    let at = message
        .split("at or after ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no rerun time in: {message}"));
    let at = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    assert!(
        at >= before + time::Duration::seconds(3),
        "{at} vs {before}"
    );
    assert!(
        at <= time::OffsetDateTime::now_utc() + time::Duration::seconds(5),
        "{at}"
    );
    // It stopped at once rather than waiting: no retry of the throttled request.
    assert_eq!(api.requests().len(), 4);
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.path().join("_state/checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(checkpoint["status"], "running");
    assert_eq!(checkpoint["next_seq"], 3);

    // Within the maximum the wait is honoured in full, and the rerun resumes.
    let out = gatelake(
        offset_pull(&api, lake.path(), &["--max-retry-after", "5s"]),
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    assert_eq!(sum["resumed"], true);
    assert_eq!(sum["rows"], 600);
    let requests = api.requests();
    let throttled = 7; // the 8th request overall: the rerun's 4th
    let gap = requests[throttled + 1].at - requests[throttled].at;
    assert!(
        gap >= std::time::Duration::from_secs(3),
        "waited only {gap:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Credential files re-read when they change (issue 13, item 4)
// ---------------------------------------------------------------------------------------------

/// Replace `path`'s content the way rotators do: a new file renamed over the old one.
fn rotate(path: &std::path::Path, value: &str) {
    let next = path.with_extension("new");
    std::fs::write(&next, value).unwrap();
    std::fs::rename(&next, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_file_rotated_mid_pull_is_re_read() {
    use std::sync::{Arc, Mutex};
    use support::apigw::Accepted;
    for (flag, old, new) in [
        (
            "--bearer-token-file",
            "bearer-before-rotation-1a2b",
            "bearer-after-rotation-3c4d",
        ),
        (
            "--api-key-file",
            "key-before-rotation-5e6f",
            "key-after-rotation-7a8b",
        ),
    ] {
        let accepted: Accepted = Arc::new(Mutex::new(vec![old.to_string()]));
        let auth = if flag == "--api-key-file" {
            ApiAuthCheck::ApiKeyAnyOf(accepted.clone())
        } else {
            ApiAuthCheck::BearerAnyOf(accepted.clone())
        };
        let api = ApiGateway::start(ApiConfig {
            records: 3000,
            page_size: 100,
            latency: std::time::Duration::from_millis(30),
            auth,
            ..ApiConfig::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credential");
        std::fs::write(&file, format!("{old}\n")).unwrap();
        let lake = dir.path().join("lake");
        let args = offset_pull(&api, &lake, &[flag, file.to_str().unwrap()]);
        let run = tokio::spawn(gatelake(args, vec![]));
        // Mid-pull: the new credential becomes valid, lands in the file, and the old one is
        // revoked — as a rotation with a short overlap does.
        for _ in 0..500 {
            if api.requests().len() >= 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            api.requests().len() >= 5,
            "{flag}: the pull never got going"
        );
        accepted.lock().unwrap().push(new.to_string());
        rotate(&file, new);
        *accepted.lock().unwrap() = vec![new.to_string()];
        let switched_at = api.requests().len();
        let out = run.await.unwrap();
        assert!(out.status.success(), "{flag}: {}", text(&out.stderr));
        assert_eq!(summary(&out)["rows"], 3000, "{flag}");
        let sent = |r: &support::apigw::RecordedRequest| {
            let h = if flag == "--api-key-file" {
                "x-api-key"
            } else {
                "authorization"
            };
            r.headers
                .get(h)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default()
        };
        let requests = api.requests();
        assert!(
            requests.len() > switched_at + 5,
            "{flag}: the rotation came too late"
        );
        assert!(
            requests[switched_at + 2..]
                .iter()
                .all(|r| sent(r).ends_with(new)),
            "{flag}: requests after the rotation did not carry the new value"
        );
        let printed: Vec<_> = found_in(&out, old)
            .into_iter()
            .chain(found_in(&out, new))
            .collect();
        assert!(
            printed.is_empty(),
            "{flag}: a credential was printed on {printed:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The job lock after a crash, and waiting for it (issue 14, item 6)
// ---------------------------------------------------------------------------------------------

fn cursor_pull(api: &ApiGateway, dest: &str, extra: &[&str]) -> Vec<String> {
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
        "300",
        "--output",
        "json",
        "--progress",
        "plain",
        "--dest",
        dest,
    ]);
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

/// Wait (bounded) until `path` exists in `sink`.
async fn wait_for_object(sink: &dyn gatelake::sink::Sink, path: &str) {
    for _ in 0..1000 {
        if sink.get(path).await.unwrap().is_some() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{path} never appeared");
}

fn azurite_env() -> Vec<(String, String)> {
    vec![(
        "AZURE_STORAGE_CONNECTION_STRING".to_string(),
        support::azurite::azurite().connection_string(),
    )]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runs_lease_is_taken_over_at_once_on_the_same_machine() {
    let api = ApiGateway::start(ApiConfig {
        records: 3000,
        page_size: 100,
        latency: std::time::Duration::from_millis(40),
        ..ApiConfig::default()
    })
    .await;
    let azurite = support::azurite::azurite();
    let (container, sink) = azurite.new_container("lock-takeover").await;
    let dest = azurite.dest_url(&container, "job");
    let mut first = support::run::command()
        .args(cursor_pull(&api, &dest, &[]))
        .envs(azurite_env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first_pid = first.id();
    wait_for_object(&sink, "job/_state/checkpoint.json").await;
    first.kill().unwrap(); // SIGKILL: the lease is left behind, unreleased
    first.wait().unwrap();

    let started = std::time::Instant::now();
    let out = gatelake(cursor_pull(&api, &dest, &[]), azurite_env()).await;
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Without the takeover this run would have stopped with exit 6 (the lease lasts 60 s).
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "took over the job's lock from process {first_pid}"
        )),
        "{err}"
    );
    let sum = summary(&out);
    assert_eq!(sum["resumed"], true);
    assert_eq!(sum["rows"], 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_holder_is_waited_for_then_reported_with_the_lease_left() {
    let api = ApiGateway::start(ApiConfig {
        records: 6000,
        page_size: 100,
        latency: std::time::Duration::from_millis(250),
        ..ApiConfig::default()
    })
    .await;
    let azurite = support::azurite::azurite();
    let (container, sink) = azurite.new_container("lock-wait").await;
    let dest = azurite.dest_url(&container, "job");
    let mut first = support::run::command()
        .args(cursor_pull(&api, &dest, &[]))
        .envs(azurite_env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first_pid = first.id();
    wait_for_object(&sink, "job/_state/checkpoint.json").await;

    let started = std::time::Instant::now();
    let out = gatelake(
        cursor_pull(&api, &dest, &["--wait-for-lock", "5s"]),
        azurite_env(),
    )
    .await;
    let waited = started.elapsed();
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        waited >= std::time::Duration::from_secs(5) && waited < std::time::Duration::from_secs(20),
        "waited {waited:?}"
    );
    let err = summary(&out);
    assert_eq!(err["error_kind"], "busy");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("process {first_pid}")),
        "{message}"
    );
    assert!(message.contains("waited 5 s"), "{message}");
    // How much of the lease is left, in seconds (at most the lease's 60).
    let left: u64 = message
        .split("its lease has ")
        .nth(1)
        .and_then(|r| r.split(" s left").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no seconds left in: {message}"));
    assert!(left <= 60, "{message}");
    assert!(
        text(&out.stderr).contains("waiting up to 5 s"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_wait_for_lock_flag_waits_for_a_local_lock_to_be_released() {
    use gatelake::sink::{LockHolder, Sink};
    let api = ApiGateway::start(ApiConfig {
        records: 300,
        ..ApiConfig::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let sink = gatelake::sink::local::LocalSink::new(lake.path());
    let held = sink
        .lock("_state/lock", &LockHolder::this_process("held-by-the-test"))
        .await
        .unwrap();
    // Without waiting: busy at once, with the way out named.
    let out = gatelake(
        cursor_pull(&api, lake.path().to_str().unwrap(), &[]),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(summary(&out)["error"]
        .as_str()
        .unwrap()
        .contains("--wait-for-lock"));

    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        held.release().await.unwrap();
    });
    let out = gatelake(
        cursor_pull(&api, lake.path().to_str().unwrap(), &["--wait-for-lock"]),
        vec![],
    )
    .await;
    release.await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["rows"], 300);
    let err = text(&out.stderr);
    assert!(err.contains("waiting up to 60 s"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_settings_come_from_flags_env_and_the_job_file() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, API_KEY).unwrap();
    let job = dir.path().join("gatelake.toml");
    std::fs::write(
        &job,
        format!(
            "[jobs.orders]\nurl = \"https://abc123.execute-api.eu-west-1.amazonaws.com/prod/orders\"\nwait_for_lock = \"lease\"\nmax_retry_after = \"10m\"\napi_key_file = {:?}\n",
            key_file.to_str().unwrap()
        ),
    )
    .unwrap();
    let config = job.to_str().unwrap();
    let (out, rows) = settings_of(&["--config", config, "--job", "orders"], vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(setting(&rows, "wait-for-lock"), Some(("lease", "job file")));
    assert_eq!(setting(&rows, "max-retry-after"), Some(("10m", "job file")));
    assert_eq!(
        setting(&rows, "api-auth"),
        Some(("api-key", "inferred from api_key_file in the job file"))
    );
    let (out, rows) = settings_of(
        &[
            "--config",
            config,
            "--job",
            "orders",
            "--wait-for-lock",
            "--max-retry-after",
            "1h",
        ],
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        setting(&rows, "wait-for-lock"),
        Some(("lease", "flag --wait-for-lock"))
    );
    assert_eq!(
        setting(&rows, "max-retry-after"),
        Some(("1h", "flag --max-retry-after"))
    );
    let (out, rows) = settings_of(
        &[],
        vec![("GATELAKE_WAIT_FOR_LOCK".to_string(), "90s".to_string())],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        setting(&rows, "wait-for-lock"),
        Some(("90s", "env GATELAKE_WAIT_FOR_LOCK"))
    );
    let (out, _) = settings_of(&["--wait-for-lock", "soon"], vec![]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--wait-for-lock"),
        "{}",
        text(&out.stderr)
    );
}
