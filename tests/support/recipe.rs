//! Running the project's recipes (`examples/`, README usage blocks) as a user would: the real
//! `gatelake` binary on `PATH` under its own name, the commands run by `bash` or the test
//! bed's Python, with a hermetic environment (nothing from the machine's identity, gatelake,
//! AWS, Azure or CI variables leaks in), and the lake read back from Azurite over HTTPS.
//!
//! Substitutions are allowed only for a recipe's placeholders (account names, URLs of real
//! services): [`substitute`] fails when a placeholder is not found exactly once, so a recipe
//! that drifts from its test fails loudly instead of being run half-changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::identity::ca_file;
use gatelake::sink::azure::{AzureLocation, AzureSink, AzureSinkBuilder, StorageCredential};
use gatelake::sink::Sink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Read a file of the repository (an example, the README).
pub fn read_repo_file(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// `text` with each `(placeholder, value)` replaced; every placeholder must occur exactly once.
pub fn substitute(text: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (from, to) in pairs {
        let n = out.matches(from).count();
        assert_eq!(
            n, 1,
            "the recipe's placeholder {from:?} occurs {n} times (expected once): the recipe and its test drifted apart"
        );
        out = out.replace(from, to);
    }
    out
}

/// The test bed's Python (`GATELAKE_TEST_PYTHON`, set by `scripts/test.sh`); fails loudly.
pub fn python() -> PathBuf {
    PathBuf::from(std::env::var("GATELAKE_TEST_PYTHON").expect(
        "GATELAKE_TEST_PYTHON is not set: run the suite with `bash scripts/test.sh`, which sets up the Python venv",
    ))
}

/// The OAuth (HTTPS) Azurite's Blob endpoint; fails loudly.
pub fn oauth_blob() -> String {
    std::env::var("GATELAKE_TEST_AZURITE_OAUTH_BLOB").expect(
        "GATELAKE_TEST_AZURITE_OAUTH_BLOB is not set: run the suite with `bash scripts/test.sh`, which starts Azurite with OAuth over HTTPS",
    )
}

/// A directory holding `gatelake` (a link to the binary under test), for `PATH`.
pub fn bin_dir(root: &Path) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("gatelake");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gatelake"), &link).unwrap();
    }
    bin
}

/// `PATH` with `first` in front of the machine's.
pub fn path_with(first: &[&Path]) -> String {
    let mut parts: Vec<PathBuf> = first.iter().map(|p| p.to_path_buf()).collect();
    parts.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(parts)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// [`super::run::hermetic`] with no standard input, as a CI step or notebook cell has none.
pub fn hermetic(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = super::run::hermetic(program);
    cmd.stdin(Stdio::null());
    cmd
}

/// Run a prepared command off the async runtime (the stand-ins are served by this process).
pub async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run the recipe"))
        .await
        .expect("join")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A sink on `container` of the OAuth Azurite with the account key (what a set-up script
/// with admin rights would use), trusting the test CA.
pub fn admin_sink(container: &str) -> AzureSink {
    let loc = AzureLocation::parse(&format!("{}/{container}", oauth_blob())).unwrap();
    let http = gatelake::http::storage_client(&gatelake::http::HttpOptions {
        ca_bundles: vec![ca_file()],
        ..Default::default()
    })
    .unwrap();
    AzureSinkBuilder::new(loc)
        .with_credential(StorageCredential::SharedKey {
            account: gatelake::sink::azure::auth::DEV_ACCOUNT.into(),
            key: gatelake::secret::Secret::new(gatelake::sink::azure::auth::DEV_ACCOUNT_KEY),
        })
        .with_http_client(http)
        .build()
        .unwrap()
}

/// A new container on the OAuth Azurite, as `examples/azure/setup.sh` creates it.
pub async fn new_container(prefix: &str) -> String {
    let name = format!("{prefix}-{:08x}", rand::random::<u32>());
    admin_sink(&name)
        .create_container_if_missing()
        .await
        .unwrap_or_else(|e| panic!("could not create container {name}: {e}"));
    name
}

/// Every object under `container`, with its bytes.
pub async fn stored_objects(container: &str) -> Vec<(String, Vec<u8>)> {
    let sink = admin_sink(container);
    let mut out = Vec::new();
    for o in sink.list("").await.unwrap() {
        let data = sink.get(&o.path).await.unwrap().unwrap().data.to_vec();
        out.push((o.path, data));
    }
    out
}

/// The run's manifest among `stored`, parsed; fails when the run left no `_SUCCESS`.
pub fn committed_manifest(stored: &[(String, Vec<u8>)]) -> serde_json::Value {
    let names: Vec<&String> = stored.iter().map(|(p, _)| p).collect();
    assert!(
        stored.iter().any(|(p, _)| p.ends_with("/_SUCCESS")),
        "no _SUCCESS in the lake: {names:?}"
    );
    let (_, bytes) = stored
        .iter()
        .find(|(p, _)| p.ends_with("/_manifest.json"))
        .unwrap_or_else(|| panic!("no _manifest.json in the lake: {names:?}"));
    serde_json::from_slice(bytes).unwrap()
}

/// No secret (of 8 characters or more) appears in any haystack.
pub fn assert_no_secret(secrets: &[String], haystacks: &[(&str, &[u8])]) {
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        for (what, bytes) in haystacks {
            assert!(
                !String::from_utf8_lossy(bytes).contains(secret.as_str()),
                "a secret ({}…) appears in {what}",
                &secret[..6]
            );
        }
    }
}
