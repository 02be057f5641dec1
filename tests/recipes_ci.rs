//! The CI recipes run as written: `examples/github/gatelake.yml`,
//! `examples/gitlab/.gitlab-ci.yml` and `examples/azure-devops/azure-pipelines.yml`, their
//! shell steps executed by a stand-in runner (`tests/support/ci_runner.py`) with the
//! environment the real runner gives them — the job's OIDC token from a local stand-in of
//! GitHub's token endpoint, GitLab's `id_tokens:` or Azure DevOps' `SYSTEM_OIDCREQUESTURI` —
//! and no secret at all. Each job installs gatelake as its recipe says (`pipx install` or
//! `pip install`: the stand-ins in `tests/support/ci_bin/` put the binary under test — the debug
//! build, not the wheel — where the installer would; the wheel itself is built and proved by
//! `scripts/dist.sh --check`), then reaches the lake (Azurite over HTTPS with OAuth)
//! through Entra with the CI token as a federated client assertion (`ci-oidc`), and the API
//! through STS with the same CI's token (`--web-identity github|gitlab|azure-devops`).
//!
//! What the runner's machine adds and the recipes do not set: the workspace's `gatelake.toml`
//! (the user's job file, pointing at the emulators), `AZURE_AUTHORITY_HOST` (the Entra
//! stand-in), `AWS_ENDPOINT_URL_STS`, `SSL_CERT_FILE` and `AWS_REGION` (the API emulator's URL
//! names no region). The recipes' tenant and client ids are the ones the Entra stand-in's app
//! registration has.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use support::apigw::{ApiAuthCheck, ApiConfig, ApiGateway, IssuedKeys};
use support::ci_oidc::{ado_issuer, AdoOidc, GitlabIdTokens, ADO_SERVICE_CONNECTION_ID, ADO_SUB};
use support::ci_oidc::{GITLAB_ISSUER, GITLAB_SUB};
use support::identity::{
    ca_file, claims, Entra, EntraConfig, FederatedCredential, GithubOidc, StsFront, TrustPolicy,
    GITHUB_ISSUER, GITHUB_SUB,
};
use support::recipe::{self, text};

const RECORDS: u64 = 140;
const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// One CI's world: its issuer trusted by an Entra app (for the lake) and by an IAM role (for
/// the API), the API, a lake container and the job's workspace.
struct Ci {
    entra: Entra,
    sts: StsFront,
    api: ApiGateway,
    container: String,
    dir: tempfile::TempDir,
}

/// `examples/gatelake.toml` with its API and lake placeholders pointed at the emulators.
fn example_job_file(api: &str, container: &str) -> String {
    let lake = format!("{}/{container}/orders", recipe::oauth_blob());
    recipe::substitute(
        &recipe::read_repo_file("examples/gatelake.toml"),
        &[
            (
                "\"https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders\"",
                &format!("{api:?}"),
            ),
            (
                "\"abfss://raw@mylake.dfs.core.windows.net/orders\"",
                &format!("{lake:?}"),
            ),
        ],
    )
}

async fn ci(issuer: &str, subject: &str, sts_audience: &str) -> Ci {
    let entra = Entra::start(EntraConfig {
        federated: Some(FederatedCredential {
            issuer: issuer.into(),
            subject: subject.into(),
            audience: EXCHANGE_AUDIENCE.into(),
        }),
        ..Default::default()
    })
    .await;
    let issued: IssuedKeys = Arc::new(Mutex::new(HashMap::new()));
    let sts = StsFront::start(
        TrustPolicy {
            issuer: issuer.into(),
            audience: sts_audience.into(),
            subject: subject.into(),
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
    let container = recipe::new_container("ci").await;
    let dir = tempfile::tempdir().unwrap();
    // The repository's job file (what the checkout brings): the README's example job file,
    // pointed at the emulators.
    std::fs::create_dir_all(dir.path().join("workspace")).unwrap();
    std::fs::write(
        dir.path().join("workspace/gatelake.toml"),
        example_job_file(&api.url("/prod/cursor"), &container),
    )
    .unwrap();
    Ci {
        entra,
        sts,
        api,
        container,
        dir,
    }
}

impl Ci {
    fn workspace(&self) -> std::path::PathBuf {
        self.dir.path().join("workspace")
    }

    /// Run the pipeline file with the stand-in runner, `extra` being what the CI injects.
    async fn run(
        &self,
        kind: &str,
        pipeline: &str,
        extra: &[(&str, String)],
    ) -> std::process::Output {
        let cargo_home = self.dir.path().join("cargo");
        let ci_bin = recipe::repo().join("tests/support/ci_bin");
        // Where the runner images' installers put commands, all on PATH: pipx's PIPX_BIN_DIR,
        // the image's Python scripts folder (pip) and cargo's.
        let pipx_bin = self.dir.path().join("pipx-bin");
        let pip_scripts = self.dir.path().join("python-bin");
        // gatelake is NOT on PATH: the job has to install it.
        let path = recipe::path_with(&[&ci_bin, &pipx_bin, &pip_scripts, &cargo_home.join("bin")]);
        let mut cmd = recipe::hermetic(recipe::python());
        cmd.arg(recipe::repo().join("tests/support/ci_runner.py"))
            .arg(kind)
            .arg(recipe::repo().join(pipeline))
            .current_dir(self.workspace())
            .env("PATH", path)
            .env("CARGO_HOME", &cargo_home)
            .env("PIPX_BIN_DIR", &pipx_bin)
            .env("GATELAKE_TEST_PIP_SCRIPTS", &pip_scripts)
            .env("GATELAKE_TEST_BINARY", env!("CARGO_BIN_EXE_gatelake"))
            .env("AZURE_AUTHORITY_HOST", self.entra.authority())
            .env("AWS_ENDPOINT_URL_STS", self.sts.url())
            .env("SSL_CERT_FILE", ca_file())
            .env("AWS_REGION", "us-east-1");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        recipe::run(cmd).await
    }

    /// The job succeeded, its summary says so, the lake holds the committed run, both
    /// exchanges used the CI's token, and nothing secret was printed or stored.
    async fn assert_landed(&self, out: &std::process::Output, ci_tokens: &[String], issuer: &str) {
        assert!(
            out.status.success(),
            "the job failed\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let summary: Value =
            serde_json::from_slice(&std::fs::read(self.workspace().join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["status"], "succeeded", "{summary}");
        assert_eq!(summary["rows"], RECORDS, "{summary}");
        let stored = recipe::stored_objects(&self.container).await;
        let manifest = recipe::committed_manifest(&stored);
        assert_eq!(manifest["totals"]["rows"], RECORDS);
        // Entra saw the CI's token as the client assertion (no secret, no file).
        let assertions = self.entra.assertions();
        assert!(!assertions.is_empty(), "Entra got no client assertion");
        assert!(
            assertions.iter().all(|a| claims(a)["iss"] == issuer),
            "an assertion not from {issuer}"
        );
        assert!(self.sts.exchanges() >= 1, "no STS exchange");
        assert!(self
            .api
            .requests()
            .iter()
            .all(|r| r.headers.contains_key("x-amz-security-token")));
        let mut secrets = ci_tokens.to_vec();
        secrets.extend(self.entra.issued());
        secrets.extend(self.sts.issued_secrets());
        let mut hay: Vec<(&str, &[u8])> = vec![("stdout", &out.stdout), ("stderr", &out.stderr)];
        for (p, d) in &stored {
            hay.push((p.as_str(), d.as_slice()));
        }
        let summary_bytes = std::fs::read(self.workspace().join("summary.json")).unwrap();
        hay.push(("summary.json", &summary_bytes));
        recipe::assert_no_secret(&secrets, &hay);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn github_workflow_recipe_runs_as_written() {
    let c = ci(GITHUB_ISSUER, GITHUB_SUB, "sts.amazonaws.com").await;
    let gh = GithubOidc::start().await;
    let out = c
        .run(
            "github",
            "examples/github/gatelake.yml",
            &[
                ("GATELAKE_TEST_CI_GITHUB_OIDC_URL", gh.request_url()),
                (
                    "GATELAKE_TEST_CI_GITHUB_OIDC_TOKEN",
                    gh.request_token.clone(),
                ),
            ],
        )
        .await;
    let mut tokens = gh.issued();
    tokens.push(gh.request_token.clone());
    c.assert_landed(&out, &tokens, GITHUB_ISSUER).await;
    // Two audiences from one job: Entra's and STS's.
    let auds: std::collections::HashSet<String> = gh
        .issued()
        .iter()
        .map(|t| claims(t)["aud"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        auds.contains(EXCHANGE_AUDIENCE) && auds.contains("sts.amazonaws.com"),
        "{auds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gitlab_pipeline_recipe_runs_as_written() {
    let c = ci(GITLAB_ISSUER, GITLAB_SUB, EXCHANGE_AUDIENCE).await;
    let gl = GitlabIdTokens::start().await;
    let out = c
        .run(
            "gitlab",
            "examples/gitlab/.gitlab-ci.yml",
            &[("GATELAKE_TEST_CI_GITLAB_ID_TOKEN_URL", gl.url())],
        )
        .await;
    c.assert_landed(&out, &gl.issued(), GITLAB_ISSUER).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_devops_pipeline_recipe_runs_as_written() {
    let c = ci(&ado_issuer(), ADO_SUB, EXCHANGE_AUDIENCE).await;
    let ado = AdoOidc::start().await;
    let cfg = c.entra.config();
    let out = c
        .run(
            "azure-devops",
            "examples/azure-devops/azure-pipelines.yml",
            &[
                (
                    "GATELAKE_TEST_CI_ADO_ACCESS_TOKEN",
                    ado.access_token.clone(),
                ),
                ("GATELAKE_TEST_CI_ADO_OIDC_URI", ado.request_uri()),
                (
                    "GATELAKE_TEST_CI_ADO_CONNECTION_NAME",
                    "gatelake-lake".into(),
                ),
                (
                    "GATELAKE_TEST_CI_ADO_CONNECTION_ID",
                    ADO_SERVICE_CONNECTION_ID.into(),
                ),
                ("GATELAKE_TEST_CI_ADO_CLIENT_ID", cfg.client_id.clone()),
                ("GATELAKE_TEST_CI_ADO_TENANT_ID", cfg.tenant.clone()),
            ],
        )
        .await;
    let mut tokens = ado.issued();
    tokens.push(ado.access_token.clone());
    c.assert_landed(&out, &tokens, &ado_issuer()).await;
    // A fresh token per exchange: at least one for Entra and one for STS.
    assert!(ado.issued().len() >= 2, "{} token(s)", ado.issued().len());
}

/// The README's CI and notebook usage blocks are the tested recipes, verbatim.
#[test]
fn readme_usage_blocks_are_the_tested_recipes() {
    let readme = recipe::read_repo_file("README.md");
    for (example, fence) in [
        ("examples/github/gatelake.yml", "```yaml\n"),
        ("examples/synapse/notebook.py", "```python\n"),
    ] {
        let body = recipe::read_repo_file(example);
        let block = format!("{fence}{body}```");
        assert!(
            readme.contains(&block),
            "README.md does not show {example} verbatim in a {} block: update one from the other",
            fence.trim()
        );
    }
}

/// Every file in the recipe folders of `examples/` is run by a test in this file,
/// tests/recipes_notebook.rs, tests/recipes_setup.rs, tests/scale_out_recipes.rs or
/// tests/spark_scale_out.rs (a new example needs a test first).
#[test]
fn every_recipe_file_has_a_test() {
    let tested = [
        "examples/github/gatelake.yml",
        "examples/gitlab/.gitlab-ci.yml",
        "examples/azure-devops/azure-pipelines.yml",
        "examples/synapse/notebook.py",
        "examples/fabric/notebook.py",
        "examples/aws/setup.sh",
        "examples/aws/invoke-policy.json",
        "examples/aws/trust-policy-entra.json",
        "examples/aws/trust-policy-notebook.json",
        "examples/aws/trust-policy-github.json",
        "examples/aws/trust-policy-gitlab.json",
        "examples/aws/trust-policy-azure-devops.json",
        "examples/azure/setup.sh",
        "examples/azure/federated-credential-aks.json",
        "examples/azure/federated-credential-github.json",
        "examples/azure/federated-credential-gitlab.json",
        "examples/kubernetes/gatelake-cronjob.yaml",
        // tests/scale_out_recipes.rs and tests/spark_scale_out.rs:
        "examples/kubernetes/indexed-job.yaml",
        "examples/github/scale-out.yml",
        "examples/synapse/scale_out_notebook.py",
    ];
    for folder in [
        "github",
        "gitlab",
        "azure-devops",
        "synapse",
        "fabric",
        "aws",
        "azure",
        "kubernetes",
    ] {
        for entry in std::fs::read_dir(recipe::repo().join("examples").join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(recipe::repo())
                .unwrap()
                .display()
                .to_string();
            assert!(tested.contains(&rel.as_str()), "{rel} is run by no test");
        }
    }
    assert!(Path::new(&recipe::repo().join("tests/support/ci_runner.py")).is_file());
}

/// What goes wrong in a CI job says what to fix, with the exit code for authentication, and
/// quotes no token: no CI token at all; an Entra app whose federated credential names another
/// branch; an Azure DevOps access token that is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ci_oidc_failures_name_the_fix_and_leak_nothing() {
    let c = ci(
        GITHUB_ISSUER,
        "repo:acme/data-jobs:ref:refs/heads/release",
        "sts.amazonaws.com",
    )
    .await;
    let cfg = c.entra.config();
    let gh = GithubOidc::start().await;
    let ado = AdoOidc::start().await;
    let pull = |extra: Vec<(String, String)>| {
        let mut cmd = recipe::hermetic(env!("CARGO_BIN_EXE_gatelake"));
        cmd.args([
            "pull",
            "--job",
            "orders",
            "--azure-auth",
            "ci-oidc",
            "--output",
            "json",
        ])
        .current_dir(c.workspace())
        .env("AZURE_AUTHORITY_HOST", c.entra.authority())
        .env("SSL_CERT_FILE", ca_file())
        .env("AWS_REGION", "us-east-1")
        .envs(extra);
        recipe::run(cmd)
    };
    let app = vec![
        ("AZURE_TENANT_ID".to_string(), cfg.tenant.clone()),
        ("AZURE_CLIENT_ID".to_string(), cfg.client_id.clone()),
    ];

    // 1. Not in a CI job that can issue a token.
    let out = pull(app.clone()).await;
    let err = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    for fix in ["id-token: write", "GITLAB_OIDC_TOKEN", "SYSTEM_ACCESSTOKEN"] {
        assert!(err.contains(fix), "{fix} missing from: {err}");
    }

    // 2. GitHub's token for `main`, an app that trusts `release`: Entra's refusal is shown
    // with the subject to compare.
    let mut env = app.clone();
    env.push(("ACTIONS_ID_TOKEN_REQUEST_URL".into(), gh.request_url()));
    env.push((
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(),
        gh.request_token.clone(),
    ));
    let out = pull(env).await;
    let err = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("AADSTS70021") && err.contains(GITHUB_SUB) && err.contains("subject (sub)"),
        "{err}"
    );
    let mut secrets = gh.issued();
    secrets.push(gh.request_token.clone());
    recipe::assert_no_secret(&secrets, &[("output", err.as_bytes())]);

    // 3. Azure DevOps refuses the access token.
    let mut env = app.clone();
    env.push(("SYSTEM_OIDCREQUESTURI".into(), ado.request_uri()));
    env.push((
        "SYSTEM_ACCESSTOKEN".into(),
        "not-the-job-token-12345".into(),
    ));
    env.push((
        "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID".into(),
        ADO_SERVICE_CONNECTION_ID.into(),
    ));
    let out = pull(env).await;
    let err = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("401") && err.contains("$(System.AccessToken)"),
        "{err}"
    );
    recipe::assert_no_secret(
        &[
            "not-the-job-token-12345".to_string(),
            ado.access_token.clone(),
        ],
        &[("output", err.as_bytes())],
    );
}

/// `examples/github/scale-out.yml` runs as written: its 8 matrix legs at once, each a worker
/// of one partitioned run with the job's OIDC token for both exchanges. The repository's job
/// file (the user's, here the example's plus a partitioned `orders_backfill`) splits the
/// listing into ranges. Exactly one leg commits; every record lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn github_scale_out_matrix_runs_as_written() {
    let c = ci(GITHUB_ISSUER, GITHUB_SUB, "sts.amazonaws.com").await;
    let gh = GithubOidc::start().await;
    let lake = format!("{}/{}/orders_backfill", recipe::oauth_blob(), c.container);
    let mut job_file = std::fs::read_to_string(c.workspace().join("gatelake.toml")).unwrap();
    job_file.push_str(&format!(
        r#"
[jobs.orders_backfill]
url = {url:?}
paginate = "offset"
page_size = 20
total_path = "total"
records = "items"
format = "jsonl"
dest = {lake:?}

[jobs.orders_backfill.partitions]
ranges = 7
"#,
        url = c.api.url("/prod/offset")
    ));
    std::fs::write(c.workspace().join("gatelake.toml"), job_file).unwrap();
    let out = c
        .run(
            "github",
            "examples/github/scale-out.yml",
            &[
                ("GATELAKE_TEST_CI_GITHUB_OIDC_URL", gh.request_url()),
                (
                    "GATELAKE_TEST_CI_GITHUB_OIDC_TOKEN",
                    gh.request_token.clone(),
                ),
            ],
        )
        .await;
    assert!(
        out.status.success(),
        "the matrix failed\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // Every leg's worker summary (each leg in its own workspace copy, ../leg-N).
    let legs: Vec<Value> = (1..=8)
        .map(|n| {
            let path = c.dir.path().join(format!("leg-{n}/worker.json"));
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(
        legs.iter().filter(|l| l["committed"] == true).count(),
        1,
        "{legs:?}"
    );
    // The status step ran in every leg and showed the run.
    assert!(
        text(&out.stdout).contains("partitions"),
        "{}",
        text(&out.stdout)
    );
    let stored = recipe::stored_objects(&c.container).await;
    let successes = stored
        .iter()
        .filter(|(p, _)| p.ends_with("/_SUCCESS"))
        .count();
    assert_eq!(successes, 1);
    let manifest = recipe::committed_manifest(&stored);
    assert_eq!(manifest["totals"]["rows"], RECORDS);
    assert_eq!(manifest["partitions"].as_array().unwrap().len(), 7);
    let mut ids: Vec<u64> = Vec::new();
    for (path, data) in stored.iter().filter(|(p, _)| p.contains("/part-")) {
        let mut body = Vec::new();
        if path.ends_with(".gz") {
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&data[..]),
                &mut body,
            )
            .unwrap();
        } else {
            body = data.clone();
        }
        for line in String::from_utf8(body).unwrap().lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            ids.push(record["id"].as_u64().unwrap());
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..RECORDS).collect::<Vec<_>>());
    let mut secrets = gh.issued();
    secrets.push(gh.request_token.clone());
    secrets.extend(c.entra.issued());
    secrets.extend(c.sts.issued_secrets());
    let mut hay: Vec<(&str, &[u8])> = vec![("stdout", &out.stdout), ("stderr", &out.stderr)];
    for (p, d) in &stored {
        hay.push((p.as_str(), d.as_slice()));
    }
    recipe::assert_no_secret(&secrets, &hay);
}
