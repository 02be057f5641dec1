//! Running the real `gatelake` binary from integration tests: a hermetic environment (no
//! `GATELAKE_*`, `AWS_*` or `AZURE_*` variables leak in from the machine), off the async
//! runtime so that emulators served from the test process keep answering, and the shapes of
//! its output (`--output json` summary, stderr text).

use std::process::{Command, Output};

/// The binary, with the machine's identity and gatelake variables removed (gatelake, AWS,
/// Azure, managed identity, GitHub Actions, a CA bundle), so only what a test sets applies.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatelake"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GATELAKE_")
            || k.starts_with("AWS_")
            || k.starts_with("AZURE_")
            || k.starts_with("ACTIONS_")
            || k.starts_with("IDENTITY_")
            || k == "SSL_CERT_FILE"
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
