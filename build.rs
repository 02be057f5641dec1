//! Build facts for `gatelake --version`: the git commit, the target triple and the build
//! profile, handed to the compiler as `GATELAKE_BUILD_*` environment variables.
//!
//! A build from a source archive (no `.git`, as `pip` builds an sdist) has no commit to ask
//! for: `GATELAKE_BUILD_COMMIT` names it instead, or the version says "unknown". Cargo reruns
//! this script only when HEAD moves (not on every edit), so a debug build stays incremental.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GATELAKE_BUILD_COMMIT");
    let commit = std::env::var("GATELAKE_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_default();
    println!("cargo:rustc-env=GATELAKE_BUILD_COMMIT={}", commit.trim());
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=GATELAKE_BUILD_TARGET={target}");
    println!("cargo:rustc-env=GATELAKE_BUILD_PROFILE={}", profile());
}

/// The commit checked out, when this is a git work tree (worktrees included), and the files
/// whose change means HEAD moved.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "HEAD"])?;
    for path in ["HEAD", "packed-refs"] {
        watch(git(&["rev-parse", "--git-path", path]));
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &branch]));
    }
    Some(commit)
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// Cargo reruns a script on every build when a watched path does not exist, so only
/// existing files are named.
fn watch(path: Option<String>) {
    if let Some(path) = path.map(PathBuf::from).filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The profile's name as cargo's target folder spells it (`debug`, `release`, or a custom
/// profile such as `dist`): `PROFILE` only says debug or release, so the folder above the
/// build script's output folder (`<target>/<profile>/build/<crate>-<hash>/out`) is asked.
fn profile() -> String {
    let from_out_dir = std::env::var_os("OUT_DIR").and_then(|out| {
        PathBuf::from(out)
            .ancestors()
            .nth(3)
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
    });
    from_out_dir
        .or_else(|| std::env::var("PROFILE").ok())
        .unwrap_or_default()
}
