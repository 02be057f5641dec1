//! Validating run manifests against `docs/manifest.schema.json`, with Python's `jsonschema`
//! (installed into `.testbed/venv` by `scripts/test.sh`, found through
//! `GATELAKE_TEST_PYTHON`), so the documented schema and what gatelake writes cannot drift
//! apart. A missing interpreter or package fails the test; it never skips the check.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Fail the test, showing every violation, unless `manifest` matches the JSON Schema.
pub fn check_manifest(manifest: &Value) {
    let python = std::env::var("GATELAKE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "GATELAKE_TEST_PYTHON is not set: manifests are validated with Python's jsonschema. \
             Run the tests with `bash scripts/test.sh`, which installs it into .testbed/venv."
        )
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("_manifest.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(manifest).expect("manifest JSON"),
    )
    .expect("write manifest");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(root.join("tests/support/check_manifest.py"))
        .arg(root.join("docs/manifest.schema.json"))
        .arg(&path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "the manifest does not match docs/manifest.schema.json (is jsonschema installed? \
         `bash scripts/test.sh` installs it):\n{}{}\n{manifest:#}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
