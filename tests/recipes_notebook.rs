//! The notebook recipes run as written: `examples/synapse/notebook.py` and
//! `examples/fabric/notebook.py`, executed by Python with the stand-in `mssparkutils` /
//! `notebookutils` of `tests/support/notebook/` (which, like the real ones, only issue tokens
//! for their fixed audience keys, here from the local managed identity stand-in), the real
//! `gatelake` on `PATH`, and nothing else of an Azure workspace: no `IDENTITY_ENDPOINT`, no
//! IMDS. The storage token the notebook hands in must serve the lake (Azurite over HTTPS with
//! OAuth) *and* the AWS hop (STS behind a trust policy whose IAM OIDC provider audience is
//! `https://storage.azure.com` and whose `sub` is the workspace identity's object id), and the
//! API (the API Gateway emulator) must see SigV4 requests signed with the role's session.
//!
//! `examples/synapse_notebook.py` (the cell that loads one run) runs the same way, with a
//! stand-in `spark` that reads the files for real (pyarrow), over a local lake.
//!
//! The cells start with `%pip install gatelake==…`, run by `tests/support/notebook/run_cell.py`
//! as IPython would, with the stand-in `pip` of `tests/support/ci_bin/` on `PATH`: it installs
//! this repository's Python module and the binary under test (the debug build, not the wheel:
//! `scripts/dist.sh --check` proves the wheel) into the session's site-packages.
//!
//! The one substitution: the recipe's placeholders for the API's URL and the lake
//! (`API_URL = …`, `LAKE = …`) point at the emulators; STS and the CA come from the
//! environment (`AWS_ENDPOINT_URL_STS`, `SSL_CERT_FILE`, `AWS_REGION`), which the recipe does
//! not set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::apigw::{ApiAuthCheck, ApiConfig, ApiGateway, IssuedKeys};
use support::identity::{ca_file, Entra, EntraConfig, StsFront, TrustPolicy};
use support::recipe::{self, text};

const RECORDS: u64 = 120;

struct Workspace {
    entra: Entra,
    sts: StsFront,
    api: ApiGateway,
    dir: tempfile::TempDir,
}

async fn workspace() -> Workspace {
    let entra = Entra::start(EntraConfig::default()).await;
    let cfg = entra.config();
    let issued: IssuedKeys = Arc::new(Mutex::new(HashMap::new()));
    // The recipe's AWS trust: an IAM OIDC provider for the tenant's v1 issuer whose client id
    // is the storage audience, and a role bound to the workspace identity's object id.
    let sts = StsFront::start(
        TrustPolicy {
            issuer: format!("https://sts.windows.net/{}", cfg.tenant),
            audience: "https://storage.azure.com".into(),
            subject: cfg.object_id.clone(),
        },
        issued.clone(),
    )
    .await;
    let api = ApiGateway::start(ApiConfig {
        records: RECORDS,
        page_size: 20,
        auth: ApiAuthCheck::SigV4Issued {
            issued,
            region: "us-east-1".into(),
        },
        ..Default::default()
    })
    .await;
    Workspace {
        entra,
        sts,
        api,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// Run `example` (a path in the repository) with Python in notebook `flavor`, after the
/// placeholder substitution `subst`. `synapse+pyspark`: Synapse's utilities with a real local
/// Spark session as `spark` (tests/support/notebook/run_cell.py).
async fn run_notebook(
    ws: &Workspace,
    example: &str,
    flavor: &str,
    subst: &[(&str, &str)],
) -> std::process::Output {
    let source = recipe::substitute(&recipe::read_repo_file(example), subst);
    let script = ws.dir.path().join("cell.py");
    std::fs::write(&script, source).unwrap();
    // The session's site-packages: empty until the cell's `%pip install gatelake` (the stand-in
    // pip) puts the module there and the binary in its `bin/` (pip's `--target` layout, which
    // `gatelake.binary_path()` knows); gatelake is NOT on PATH.
    let site = ws.dir.path().join("site-packages");
    std::fs::create_dir_all(&site).unwrap();
    let support = recipe::repo().join("tests/support/notebook");
    let pythonpath = std::env::join_paths([&support, &site]).unwrap();
    let mut cmd = recipe::hermetic(recipe::python());
    cmd.arg(support.join("run_cell.py"))
        .arg(&script)
        .current_dir(ws.dir.path())
        .env(
            "PATH",
            recipe::path_with(&[&recipe::repo().join("tests/support/ci_bin")]),
        )
        .env("PYTHONPATH", pythonpath)
        .env("GATELAKE_TEST_BINARY", env!("CARGO_BIN_EXE_gatelake"))
        .env("GATELAKE_TEST_PIP_SITE", &site)
        .env("GATELAKE_TEST_PIP_SCRIPTS", site.join("bin"))
        .env(
            "GATELAKE_TEST_NOTEBOOK_FLAVOR",
            flavor.split('+').next().unwrap_or(flavor),
        )
        .env(
            "GATELAKE_TEST_NOTEBOOK_SPARK",
            flavor.split_once('+').map_or("standin", |(_, s)| s),
        )
        .env(
            "GATELAKE_TEST_NOTEBOOK_IDENTITY_ENDPOINT",
            ws.entra.identity_endpoint(),
        )
        .env(
            "GATELAKE_TEST_NOTEBOOK_IDENTITY_HEADER",
            ws.entra.config().identity_header,
        )
        .env("SSL_CERT_FILE", ca_file())
        .env("TMPDIR", ws.dir.path())
        .env("AWS_ENDPOINT_URL_STS", ws.sts.url())
        .env("AWS_REGION", "us-east-1");
    recipe::run(cmd).await
}

/// The summary the cell prints last (one JSON object per line).
fn printed_summary(out: &std::process::Output) -> Value {
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "the cell's last line is not the JSON summary ({e}):\nstdout: {stdout}\nstderr: {}",
            text(&out.stderr)
        )
    })
}

async fn assert_pulled_into_the_lake(ws: &Workspace, container: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "the cell failed\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let summary = printed_summary(out);
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(summary["rows"], RECORDS, "{summary}");
    let stored = recipe::stored_objects(container).await;
    let manifest = recipe::committed_manifest(&stored);
    assert_eq!(manifest["totals"]["rows"], RECORDS, "{manifest}");
    // The AWS hop really went through the trust policy, and every page was signed with the
    // role session it issued (the API emulator checks both).
    assert!(ws.sts.exchanges() >= 1, "no STS exchange happened");
    let requests = ws.api.requests();
    assert!(!requests.is_empty());
    assert!(requests
        .iter()
        .all(|r| r.headers.contains_key("x-amz-security-token")));
    // Nothing secret in the cell's output or the lake.
    let mut secrets = ws.entra.issued();
    secrets.extend(ws.sts.issued_secrets());
    let mut hay: Vec<(&str, &[u8])> = vec![("stdout", &out.stdout), ("stderr", &out.stderr)];
    for (p, d) in &stored {
        hay.push((p.as_str(), d.as_slice()));
    }
    recipe::assert_no_secret(&secrets, &hay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn synapse_notebook_recipe_runs_as_written() {
    let ws = workspace().await;
    let container = recipe::new_container("synapse").await;
    let lake = format!("{}/{container}/orders", recipe::oauth_blob());
    let api = ws.api.url("/prod/cursor");
    let out = run_notebook(
        &ws,
        "examples/synapse/notebook.py",
        "synapse",
        &[
            (
                "\"https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders\"",
                &format!("{api:?}"),
            ),
            (
                "\"abfss://raw@myaccount.dfs.core.windows.net/orders\"",
                &format!("{lake:?}"),
            ),
        ],
    )
    .await;
    assert_pulled_into_the_lake(&ws, &container, &out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fabric_notebook_recipe_runs_as_written() {
    let ws = workspace().await;
    let container = recipe::new_container("fabric").await;
    let lake = format!("{}/{container}/orders", recipe::oauth_blob());
    let api = ws.api.url("/prod/cursor");
    let out = run_notebook(
        &ws,
        "examples/fabric/notebook.py",
        "fabric",
        &[
            (
                "\"https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders\"",
                &format!("{api:?}"),
            ),
            (
                "\"abfss://raw@myaccount.dfs.core.windows.net/orders\"",
                &format!("{lake:?}"),
            ),
        ],
    )
    .await;
    assert_pulled_into_the_lake(&ws, &container, &out).await;
    // The token file the cell wrote (0600) is gone afterwards.
    let left: Vec<_> = std::fs::read_dir(ws.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("token"))
        .collect();
    assert!(left.is_empty(), "token files left behind: {left:?}");
}

/// The stand-ins refuse what the real utilities refuse: a recipe that needs an audience
/// outside the fixed keys (as the old one did: `api://AzureADTokenExchange` from a managed
/// identity endpoint the notebook cannot reach) fails here as in a workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notebook_stand_ins_only_know_the_fixed_audience_keys() {
    let ws = workspace().await;
    let probe = r#"
from notebookutils import mssparkutils
import notebookutils
results = []
for key in KEYS:
    try:
        token = mssparkutils.credentials.getToken(key)
        results.append(f"{key}=ok:{notebookutils.credentials.isValidToken(token)}")
    except Exception as e:
        results.append(f"{key}=error:{type(e).__name__}:{e}")
print("|".join(results))
"#;
    let cases = [
        (
            "synapse",
            r#"["Storage", "storage", "DW", "Synapse", "api://AzureADTokenExchange", "AzureADTokenExchange", "keyvault"]"#,
            vec![
                "Storage=ok:True",
                "storage=ok:True",
                "DW=ok:True",
                "Synapse=ok:True",
                "api://AzureADTokenExchange=error:Py4JJavaError:An error occurred while calling getToken: 400: Audience has invalid characters",
                "AzureADTokenExchange=error:Py4JJavaError:An error occurred while calling getToken: 'AzureADTokenExchange' is not a recognized alias",
                "keyvault=error:Py4JJavaError:An error occurred while calling getToken: 'keyvault' is not a recognized alias",
            ],
        ),
        (
            "fabric",
            r#"["storage", "pbi", "keyvault", "kusto", "Storage", "DW", "https://storage.azure.com"]"#,
            vec![
                "storage=ok:True",
                "pbi=ok:True",
                "keyvault=ok:True",
                "kusto=ok:True",
                "Storage=ok:True",
                "DW=error:Py4JJavaError:An error occurred while calling getToken: 'DW' is not a recognized alias",
                "https://storage.azure.com=error:Py4JJavaError:An error occurred while calling getToken: 400: Audience has invalid characters",
            ],
        ),
    ];
    for (flavor, keys, expected) in cases {
        let script = ws.dir.path().join(format!("probe-{flavor}.py"));
        std::fs::write(&script, format!("KEYS = {keys}\n{probe}")).unwrap();
        let mut cmd = recipe::hermetic(recipe::python());
        cmd.arg(&script)
            .env("PYTHONPATH", recipe::repo().join("tests/support/notebook"))
            .env("GATELAKE_TEST_NOTEBOOK_FLAVOR", flavor)
            .env(
                "GATELAKE_TEST_NOTEBOOK_IDENTITY_ENDPOINT",
                ws.entra.identity_endpoint(),
            )
            .env(
                "GATELAKE_TEST_NOTEBOOK_IDENTITY_HEADER",
                ws.entra.config().identity_header,
            )
            .env("SSL_CERT_FILE", ca_file());
        let out = recipe::run(cmd).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let got = text(&out.stdout);
        assert_eq!(
            got.trim().split('|').collect::<Vec<_>>(),
            expected,
            "{flavor}"
        );
    }
}

/// `examples/synapse_notebook.py`, the cell that loads one run, as written: with the stand-in
/// `spark` (files read for real by pyarrow) and `mssparkutils.fs` over a local lake that two
/// gatelake runs wrote, it must load exactly the newest completed run — the files its manifest
/// lists, not a stray file in the run's folder — and append that many rows to the table.
/// Substitution: the cell's `lake` placeholder is the local lake folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn synapse_loader_cell_loads_exactly_the_newest_run() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake/orders");
    let mut manifests = Vec::new();
    for records in [40u64, 70] {
        let api = ApiGateway::start(ApiConfig {
            records,
            page_size: 20,
            ..Default::default()
        })
        .await;
        let mut cmd = recipe::hermetic(env!("CARGO_BIN_EXE_gatelake"));
        cmd.args([
            "pull",
            "--url",
            &api.url("/prod/cursor"),
            "--paginate",
            "cursor",
            "--cursor-path",
            "next_cursor",
            "--records",
            "items",
            "--format",
            "parquet",
            "--chunk-rows",
            "25",
            "--dest",
            &lake.display().to_string(),
            "--output",
            "json",
            "--progress",
            "none",
        ]);
        let out = recipe::run(cmd).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        manifests.push(summary["run_id"].as_str().unwrap().to_string());
        // Run ids sort by their start second.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let newest = manifests.last().unwrap();
    // A stray file in the newest run's folder: a folder listing would trip over it.
    std::fs::write(lake.join(newest).join("stray.parquet"), b"not parquet").unwrap();

    let cell = recipe::substitute(
        &recipe::read_repo_file("examples/synapse_notebook.py"),
        &[(
            "\"abfss://raw@myaccount.dfs.core.windows.net/orders\"",
            &format!("{:?}", lake.display().to_string()),
        )],
    );
    let script = dir.path().join("cell.py");
    std::fs::write(&script, cell).unwrap();
    let tables = dir.path().join("tables.json");
    let support = recipe::repo().join("tests/support/notebook");
    let mut cmd = recipe::hermetic(recipe::python());
    cmd.arg(support.join("run_cell.py"))
        .arg(&script)
        .env("PYTHONPATH", &support)
        .env("GATELAKE_TEST_NOTEBOOK_FLAVOR", "synapse")
        .env("GATELAKE_TEST_SPARK_TABLES", &tables);
    let out = recipe::run(cmd).await;
    assert!(
        out.status.success(),
        "the cell failed\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let loaded: Value = serde_json::from_slice(&std::fs::read(&tables).unwrap()).unwrap();
    assert_eq!(loaded, serde_json::json!({"raw.orders": [70]}));
}

/// `examples/synapse/scale_out_notebook.py` runs as written with a real Spark session (pyspark
/// in local mode, 4 threads): 16 Spark tasks, each a gatelake worker, with the notebook's one
/// storage token on every worker's stdin (the lake, and the web identity for STS). The window
/// placeholders cover the emulator's records in 15-minute windows of its windowed route;
/// every record lands once and one worker commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn synapse_scale_out_notebook_runs_as_written_on_spark() {
    assert!(
        std::env::var_os("GATELAKE_TEST_PYSPARK_PYTHON").is_some(),
        "GATELAKE_TEST_PYSPARK_PYTHON is not set: run with `bash scripts/test.sh`, which installs pyspark (and checks for Java 17)"
    );
    let ws = workspace().await;
    let container = recipe::new_container("scale").await;
    let lake = format!("{}/{container}/orders_backfill", recipe::oauth_blob());
    let api = ws.api.url("/prod/windowed");
    let out = run_notebook(
        &ws,
        "examples/synapse/scale_out_notebook.py",
        "synapse+pyspark",
        &[
            (
                "API_URL = \"https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders\"",
                &format!("API_URL = {api:?}"),
            ),
            (
                "LAKE = \"abfss://raw@myaccount.dfs.core.windows.net/orders_backfill\"",
                &format!("LAKE = {lake:?}"),
            ),
            (
                "START, END, WINDOW = \"2025-01-01\", \"2026-01-01\", \"1d\"",
                "START, END, WINDOW = \"2026-01-02T03:00:00Z\", \"2026-01-02T05:15:00Z\", \"15m\"",
            ),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "the cell failed\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let printed = printed_summary(&out);
    assert_eq!(printed["committed"], true, "{printed}");
    assert_eq!(printed["rows"], RECORDS, "{printed}");
    let stored = recipe::stored_objects(&container).await;
    assert_eq!(
        stored
            .iter()
            .filter(|(p, _)| p.ends_with("/_SUCCESS"))
            .count(),
        1
    );
    let manifest = recipe::committed_manifest(&stored);
    assert_eq!(manifest["totals"]["rows"], RECORDS, "{manifest}");
    assert_eq!(
        manifest["partitions"].as_array().unwrap().len(),
        9,
        "{manifest}"
    );
    assert!(ws.sts.exchanges() >= 1, "no STS exchange happened");
    assert!(ws
        .api
        .requests()
        .iter()
        .all(|r| r.headers.contains_key("x-amz-security-token")));
    let mut secrets = ws.entra.issued();
    secrets.extend(ws.sts.issued_secrets());
    let mut hay: Vec<(&str, &[u8])> = vec![("stdout", &out.stdout), ("stderr", &out.stderr)];
    for (p, d) in &stored {
        hay.push((p.as_str(), d.as_slice()));
    }
    recipe::assert_no_secret(&secrets, &hay);
}
