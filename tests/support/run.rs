//! Running the real `gatelake` binary from integration tests: a hermetic environment (no
//! `GATELAKE_*`, `AWS_*` or `AZURE_*` variables leak in from the machine), off the async
//! runtime so that emulators served from the test process keep answering, and the shapes of
//! its output (`--output json` summary, stderr text).

use std::process::{Command, Output};

/// A command for `program` with the machine's gatelake, AWS, Azure, managed identity and CI
/// variables removed (so only what a test sets applies: a CI job's OIDC variables would
/// otherwise make `auto` pick `ci-oidc`), and no metadata probe leaving loopback.
pub fn hermetic(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    const CI: [&str; 7] = [
        "GITHUB_",
        "ACTIONS_",
        "GITLAB_",
        "CI_",
        "SYSTEM_",
        "AZURESUBSCRIPTION_",
        "TF_BUILD",
    ];
    for (k, _) in std::env::vars() {
        if k.starts_with("GATELAKE_")
            || k.starts_with("AWS_")
            || k.starts_with("AZURE_")
            || k.starts_with("IDENTITY_")
            || CI.iter().any(|p| k.starts_with(p))
            || k == "SSL_CERT_FILE"
            || k == "PYTHONPATH"
        {
            cmd.env_remove(k);
        }
    }
    // Tests talk to loopback only: no instance-metadata probe may leave the machine (AWS's is
    // disabled; Azure's `auto` probe is pointed at a closed loopback port).
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd.env("IMDS_ENDPOINT", "http://127.0.0.1:9");
    cmd
}

/// The binary, run hermetically (see [`hermetic`]).
pub fn command() -> Command {
    hermetic(env!("CARGO_BIN_EXE_gatelake"))
}

/// Run the binary to completion off the async runtime.
pub async fn gatelake(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        command()
            .args(&args)
            .envs(env)
            .output()
            .expect("run gatelake")
    })
    .await
    .expect("join")
}

/// Owned strings from string slices.
pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The one JSON object printed by `--output json`.
pub fn summary(out: &Output) -> serde_json::Value {
    serde_json::from_str(text(&out.stdout).trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}
