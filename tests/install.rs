//! Installing gatelake as the README's "Install" section says, and what an install brings:
//! `--version` naming the build, shell completions and man pages.
//!
//! The README's install blocks run as written, with stand-ins for what would leave the
//! machine (documented beside each): `pip`, `pipx` and `cargo install` (`tests/support/ci_bin/`)
//! install the binary under test — this run's debug build — where the real installer puts
//! `gatelake`; `curl` (`tests/support/release_bin/`) serves the release's assets from a folder
//! that `scripts/dist.sh package` fills around the same binary. `HOME` is a fresh folder. The
//! wheel itself is built, installed into a fresh venv and run by `scripts/dist.sh --check`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use support::apigw::{ApiConfig, ApiGateway};
use support::recipe::{self, text};

const BINARY: &str = env!("CARGO_BIN_EXE_gatelake");
const MARKER: &str = "<!-- readme-test:";

/// The body of the one README block marked `<!-- readme-test: name -->`.
fn readme_block(name: &str) -> String {
    let readme = recipe::read_repo_file("README.md");
    let marker = format!("{MARKER} {name} -->\n");
    let found: Vec<&str> = readme
        .match_indices(&marker)
        .map(|(i, _)| &readme[i..])
        .collect();
    assert_eq!(found.len(), 1, "one README block is marked {marker:?}");
    let after = &found[0][marker.len()..];
    let fence_end = after.find('\n').unwrap();
    let body = &after[fence_end + 1..];
    body[..body.find("```").unwrap()].to_string()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Run `script` with `bash -euo pipefail` in `dir`, hermetically, with `HOME=dir/home`, `path`
/// in front of the machine's `PATH`, and `env`.
fn bash(dir: &Path, script: &str, path: &[&Path], env: &[(&str, &Path)]) -> Output {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let file = dir.join("block.sh");
    std::fs::write(&file, script).unwrap();
    let mut cmd = recipe::hermetic("bash");
    cmd.current_dir(dir)
        .args(["-euo", "pipefail"])
        .arg(&file)
        .env("HOME", &home)
        .env("PATH", recipe::path_with(path))
        .env("GATELAKE_TEST_BINARY", BINARY);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run bash")
}

fn ci_bin() -> PathBuf {
    recipe::repo().join("tests/support/ci_bin")
}

/// The first line `gatelake --version` prints: `gatelake VERSION (commit …, TARGET, PROFILE build)`.
fn assert_version_line(stdout: &str) {
    let want = format!("gatelake {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&want) && l.ends_with(" build)")),
        "no `{want}… build)` line in: {stdout}"
    );
}

#[test]
fn readme_install_with_pip() {
    let dir = tempfile::tempdir().unwrap();
    // The interpreter's scripts folder, on PATH as an activated venv or the system's has it.
    let scripts = dir.path().join("python-bin");
    let out = bash(
        dir.path(),
        &readme_block("readme_install_with_pip"),
        &[&ci_bin(), &scripts],
        &[("GATELAKE_TEST_PIP_SCRIPTS", &scripts)],
    );
    assert_ok(&out, "the README's pip install");
    assert_version_line(&text(&out.stdout));
}

#[test]
fn readme_install_with_cargo() {
    let dir = tempfile::tempdir().unwrap();
    let cargo_home = dir.path().join("cargo");
    let script = format!(
        "{}gatelake --version\n",
        readme_block("readme_install_with_cargo")
    );
    let out = bash(
        dir.path(),
        &script,
        &[&ci_bin(), &cargo_home.join("bin")],
        &[("CARGO_HOME", &cargo_home)],
    );
    assert_ok(&out, "the README's cargo install");
    assert_version_line(&text(&out.stdout));
}

/// The release tarball: `scripts/dist.sh package` around the binary under test (what the
/// release workflow does around the wheel's binary), then the README's lines.
#[test]
fn readme_install_from_a_release_tarball() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    // The debug binary without its debug information (a tenth of the size, so the tarball is
    // made in seconds), when `strip` is there; the binary under test as it is otherwise.
    let stripped = dir.path().join("gatelake");
    let binary = match std::process::Command::new("strip")
        .args(["--strip-debug", "-o"])
        .arg(&stripped)
        .arg(BINARY)
        .status()
    {
        Ok(s) if s.success() => stripped,
        _ => PathBuf::from(BINARY),
    };
    let mut package = recipe::hermetic("bash");
    package
        .arg(recipe::repo().join("scripts/dist.sh"))
        .args(["package", "--binary"])
        .arg(&binary)
        .args(["--target", "x86_64-unknown-linux-gnu", "--out"])
        .arg(&release);
    let out = package.output().unwrap();
    assert_ok(&out, "scripts/dist.sh package");
    let sums = std::fs::read_to_string(release.join("SHA256SUMS")).unwrap();
    assert!(
        sums.contains("  gatelake-0.1.0-x86_64-unknown-linux-gnu.tar.gz"),
        "{sums}"
    );
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = bash(
        &work,
        &readme_block("readme_install_from_a_release_tarball"),
        &[
            &recipe::repo().join("tests/support/release_bin"),
            &work.join("home/.local/bin"),
        ],
        &[("GATELAKE_TEST_RELEASE_DIR", &release)],
    );
    assert_ok(&out, "the README's tarball install");
    assert_version_line(&text(&out.stdout));
    let home = work.join("home");
    assert!(home.join(".local/bin/gatelake").is_file());
    for page in ["gatelake.1", "gatelake-pull.1", "gatelake-auth-check.1"] {
        assert!(
            home.join(".local/share/man/man1").join(page).is_file(),
            "{page} not installed"
        );
    }
    let completion = home.join(".local/share/bash-completion/completions/gatelake");
    assert_eq!(complete(&completion, "gatelake pu"), ["pull"]);
    // A tarball whose checksum does not match is refused by the README's check.
    let tarball = release.join("gatelake-0.1.0-x86_64-unknown-linux-gnu.tar.gz");
    let mut bytes = std::fs::read(&tarball).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&tarball, bytes).unwrap();
    let again = dir.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    let out = bash(
        &again,
        &readme_block("readme_install_from_a_release_tarball"),
        &[&recipe::repo().join("tests/support/release_bin")],
        &[("GATELAKE_TEST_RELEASE_DIR", &release)],
    );
    assert!(!out.status.success(), "a corrupted tarball was installed");
    assert!(
        text(&out.stdout).contains("FAILED"),
        "{}",
        text(&out.stdout)
    );
}

/// The notebook lines: `%pip install gatelake` (the stand-in pip, run by the notebook cell
/// runner as IPython runs `%pip`), then `gatelake.pull(job="orders")` with a job file in the
/// notebook's folder pointing at a local API Gateway stand-in and a local lake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_install_in_a_notebook() {
    let api = ApiGateway::start(ApiConfig {
        records: 90,
        page_size: 20,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let job_file = format!(
        "[jobs.orders]\nurl = {:?}\npaginate = \"cursor\"\ncursor_path = \"next_cursor\"\nrecords = \"items\"\ndest = \"lake/orders\"\n",
        api.url("/prod/cursor")
    );
    std::fs::write(dir.path().join("gatelake.toml"), job_file).unwrap();
    std::fs::write(
        dir.path().join("cell.py"),
        readme_block("readme_install_in_a_notebook"),
    )
    .unwrap();
    let site = dir.path().join("site-packages");
    std::fs::create_dir_all(&site).unwrap();
    let support = recipe::repo().join("tests/support/notebook");
    let mut cmd = recipe::hermetic(recipe::python());
    cmd.arg(support.join("run_cell.py"))
        .arg("cell.py")
        .current_dir(dir.path())
        .env("PATH", recipe::path_with(&[&ci_bin()]))
        .env(
            "PYTHONPATH",
            std::env::join_paths([&support, &site]).unwrap(),
        )
        .env("GATELAKE_TEST_NOTEBOOK_FLAVOR", "synapse")
        .env("GATELAKE_TEST_BINARY", BINARY)
        .env("GATELAKE_TEST_PIP_SITE", &site)
        .env("GATELAKE_TEST_PIP_SCRIPTS", site.join("bin"));
    let out = recipe::run(cmd).await;
    assert_ok(&out, "the README's notebook install");
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("90 records in "), "{stdout}");
    assert!(last.contains("lake/orders"), "{stdout}");
}

#[test]
fn readme_completions_and_man_pages() {
    let dir = tempfile::tempdir().unwrap();
    let bin = recipe::bin_dir(dir.path());
    let out = bash(
        dir.path(),
        &readme_block("readme_completions_and_man_pages"),
        &[&bin],
        &[],
    );
    assert_ok(&out, "the README's completions and man pages");
    let home = dir.path().join("home");
    // A new interactive bash reads ~/.bashrc: `gatelake pu` completes to `pull`.
    let probe = r#"
source ~/.bashrc
fn="$(complete -p gatelake | sed -E 's/.*-F ([^ ]+).*/\1/')"
COMP_WORDS=(gatelake pu); COMP_CWORD=1; COMP_LINE="gatelake pu"; COMP_POINT=${#COMP_LINE}
"$fn" gatelake pu gatelake
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = bash(dir.path(), probe, &[&bin], &[]);
    assert_ok(&out, "loading ~/.bashrc");
    assert_eq!(text(&out.stdout).trim(), "pull");
    let man1 = home.join(".local/share/man/man1");
    for page in [
        "gatelake.1",
        "gatelake-pull.1",
        "gatelake-demo.1",
        "gatelake-auth-check.1",
        "gatelake-sql.1",
    ] {
        let roff = std::fs::read_to_string(man1.join(page)).unwrap();
        assert!(roff.lines().any(|l| l.starts_with(".TH ")), "{page}");
        assert!(roff.contains("EXIT STATUS"), "{page}");
    }
}

/// What a bash completion script at `script` offers for `line` (cursor at its end).
fn complete(script: &Path, line: &str) -> Vec<String> {
    let probe = r#"
source "$1"
fn="$(complete -p gatelake | sed -E 's/.*-F ([^ ]+).*/\1/')"
read -r -a COMP_WORDS <<<"$2"
[[ "$2" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
prev=""; (( COMP_CWORD > 0 )) && prev="${COMP_WORDS[COMP_CWORD-1]}"
"$fn" gatelake "${COMP_WORDS[COMP_CWORD]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = recipe::hermetic("bash")
        .args(["--noprofile", "--norc", "-c", probe, "bash"])
        .arg(script)
        .arg(line)
        .output()
        .unwrap();
    assert_ok(&out, &format!("completing {line:?}"));
    let mut got: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    got.sort();
    got
}

#[test]
fn bash_completion_loads_and_completes_commands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::run::command()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_ok(&out, "gatelake completions bash");
    let script = dir.path().join("gatelake.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    assert_eq!(complete(&script, "gatelake pu"), ["pull"]);
    assert_eq!(complete(&script, "gatelake auth ch"), ["check"]);
    assert_eq!(
        complete(&script, "gatelake pull --cursor-p"),
        ["--cursor-param", "--cursor-path"]
    );
    assert_eq!(complete(&script, "gatelake completions p"), ["powershell"]);
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = support::run::command()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_ok(&out, shell);
        assert!(text(&out.stdout).contains("pull"), "{shell}");
    }
    let out = support::run::command()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn version_names_the_commit_target_and_profile() {
    let out = support::run::command().arg("--version").output().unwrap();
    assert_ok(&out, "gatelake --version");
    let line = text(&out.stdout);
    assert_version_line(&line);
    let out = support::run::command()
        .args(["--version", "--output", "json"])
        .output()
        .unwrap();
    assert_ok(&out, "gatelake --version --output json");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "gatelake");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    // The tests and the binary share a profile: debug unless `cargo test --release`.
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    assert_eq!(v["profile"], profile, "{v}");
    let host = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .ok()
        .map(|o| text(&o.stdout))
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        });
    if let Some(host) = host {
        assert_eq!(v["target"], host.as_str(), "{v}");
    }
    // Built from this checkout: its commit (HEAD when the test binary was built).
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(recipe::repo())
        .output()
        .unwrap();
    assert!(head.status.success(), "git rev-parse HEAD failed");
    assert_eq!(v["commit"], text(&head.stdout).trim(), "{v}");
    let short = &text(&head.stdout)[..12];
    assert!(line.contains(&format!("(commit {short}, ")), "{line}");
}

#[test]
fn man_prints_one_page_or_writes_them_all() {
    let out = support::run::command()
        .args(["man", "auth", "check"])
        .output()
        .unwrap();
    assert_ok(&out, "gatelake man auth check");
    let page = text(&out.stdout);
    let title = page
        .lines()
        .find(|l| l.starts_with(".TH "))
        .unwrap_or_default();
    assert!(
        title.starts_with(".TH") && title.contains("gatelake-auth-check"),
        "{title}"
    );
    assert!(page.contains("EXIT STATUS"), "{page}");
    let out = support::run::command()
        .args(["man", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pull"), "{}", text(&out.stderr));
}

/// The release workflow builds both Linux targets with the same script and checks, and
/// publishes with the job's OIDC token only: no stored token, and `id-token: write` granted to
/// the publishing job alone.
#[test]
fn release_workflow_uses_the_dist_script_and_trusted_publishing() {
    let wf = recipe::read_repo_file(".github/workflows/release.yml");
    assert!(wf.contains("tags: [\"v*\"]"), "not tag-triggered");
    for target in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] {
        assert!(wf.contains(&format!("target: {target}")), "{target}");
    }
    assert!(
        wf.contains("bash scripts/dist.sh --profile release --target ${{ matrix.target }} --check")
    );
    assert!(wf.contains("uses: pypa/gh-action-pypi-publish@"));
    assert_eq!(wf.matches("id-token: write").count(), 1);
    assert!(
        !wf.contains("secrets.") && !wf.contains("password:"),
        "the workflow names a stored secret"
    );
}
