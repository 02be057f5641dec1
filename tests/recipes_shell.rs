//! The README's identity recipe for a shell ("Identity" → "In a shell") runs as written: the
//! block is taken from README.md and run by `bash -e`, with a stand-in `az`
//! (`tests/support/cloud_cli/`: `az login`, then the `az account get-access-token` that
//! gatelake's Azure CLI credential runs, served by the local managed identity stand-in), the
//! real `gatelake` on `PATH`, and `examples/gatelake.toml` as the job file in the working
//! folder. Its Entra tokens must pass STS's trust for the tenant's issuer
//! (`trust-policy-entra.json`: audience `api://AzureADTokenExchange`, `sub` = the object id),
//! the API must see SigV4 signed with the role's session, and the lake (Azurite over HTTPS
//! with OAuth) must hold the committed run.
//!
//! Substitutions: the block's and the job file's placeholder API URL and lake URL point at the
//! emulators; STS, the CA and the region come from the environment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::apigw::{ApiAuthCheck, ApiConfig, ApiGateway, IssuedKeys};
use support::identity::{ca_file, Entra, EntraConfig, StsFront, TrustPolicy};
use support::recipe::{self, text};

const API_PLACEHOLDER: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders";
const LAKE_PLACEHOLDER: &str = "abfss://raw@mylake.dfs.core.windows.net/orders";

/// The body of the fenced block that follows `heading` in the README.
fn readme_block(heading: &str, fence: &str) -> String {
    let readme = recipe::read_repo_file("README.md");
    let at = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no {heading:?}"));
    let rest = &readme[at..];
    let open = format!("```{fence}\n");
    let start = rest.find(&open).unwrap() + open.len();
    let end = rest[start..].find("```").unwrap() + start;
    rest[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readme_identity_shell_recipe_runs_as_written() {
    let entra = Entra::start(EntraConfig::default()).await;
    let cfg = entra.config();
    let issued: IssuedKeys = Arc::new(Mutex::new(HashMap::new()));
    let sts = StsFront::start(
        TrustPolicy {
            issuer: format!("https://sts.windows.net/{}", cfg.tenant),
            audience: "api://AzureADTokenExchange".into(),
            subject: cfg.object_id.clone(),
        },
        issued.clone(),
    )
    .await;
    let api = ApiGateway::start(ApiConfig {
        records: 90,
        page_size: 30,
        auth: ApiAuthCheck::SigV4Issued {
            issued,
            region: "us-east-1".into(),
        },
        ..Default::default()
    })
    .await;
    let container = recipe::new_container("shell").await;
    let lake = format!("{}/{container}/orders", recipe::oauth_blob());
    let api_url = api.url("/prod/cursor");

    let dir = tempfile::tempdir().unwrap();
    let block = recipe::substitute(
        &readme_block("### In a shell\n", "sh"),
        &[(API_PLACEHOLDER, &api_url), (LAKE_PLACEHOLDER, &lake)],
    );
    assert!(block.contains("az login") && block.contains("gatelake pull --job orders"));
    std::fs::write(dir.path().join("recipe.sh"), &block).unwrap();
    std::fs::write(
        dir.path().join("gatelake.toml"),
        recipe::substitute(
            &recipe::read_repo_file("examples/gatelake.toml"),
            &[
                (&format!("{API_PLACEHOLDER:?}"), &format!("{api_url:?}")),
                (&format!("{LAKE_PLACEHOLDER:?}"), &format!("{lake:?}")),
            ],
        ),
    )
    .unwrap();
    let bin = recipe::bin_dir(dir.path());
    let stubs = recipe::repo().join("tests/support/cloud_cli");
    let log = dir.path().join("cli.log");
    let mut cmd = recipe::hermetic("bash");
    cmd.arg("-e")
        .arg(dir.path().join("recipe.sh"))
        .current_dir(dir.path())
        .env("PATH", recipe::path_with(&[&bin, &stubs]))
        .env("GATELAKE_TEST_CLI_LOG", &log)
        .env("GATELAKE_TEST_AZ_TOKEN_ENDPOINT", entra.identity_endpoint())
        .env("GATELAKE_TEST_AZ_TOKEN_HEADER", &cfg.identity_header)
        .env("SSL_CERT_FILE", ca_file())
        .env("AWS_ENDPOINT_URL_STS", sts.url())
        .env("AWS_REGION", "us-east-1");
    let out = recipe::run(cmd).await;
    assert!(
        out.status.success(),
        "the recipe failed\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    // auth check named the Azure CLI as the source, and every hop passed.
    assert!(
        text(&out.stdout).contains("Azure CLI"),
        "{}",
        text(&out.stdout)
    );
    let stored = recipe::stored_objects(&container).await;
    let manifest = recipe::committed_manifest(&stored);
    assert_eq!(manifest["totals"]["rows"], 90);
    assert!(stored.iter().any(|(p, _)| p.ends_with(".parquet")));
    assert!(sts.exchanges() >= 2, "auth check and pull each exchange");
    assert!(api
        .requests()
        .iter()
        .all(|r| r.headers.contains_key("x-amz-security-token")));
    let mut secrets = entra.issued();
    secrets.extend(sts.issued_secrets());
    let mut hay: Vec<(&str, &[u8])> = vec![("stdout", &out.stdout), ("stderr", stderr.as_bytes())];
    for (p, d) in &stored {
        hay.push((p.as_str(), d.as_slice()));
    }
    recipe::assert_no_secret(&secrets, &hay);
}
