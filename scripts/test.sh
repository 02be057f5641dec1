#!/usr/bin/env bash
# The project's single test command (what .ci/run runs). With no arguments: first the lint
# gates, `cargo fmt --check` and `cargo clippy --all-targets -- -D warnings` (a minute, so a
# formatting slip or a warning fails before the suite starts, naming the command that fixes
# it); then installs and starts the emulators the integration tests run against (see
# scripts/testbed.sh), runs `cargo test --all-targets`, stops the emulators, and exits with
# cargo's exit code. With arguments (`--test resume`, `--lib identity`): no lint, only
# `cargo test ARGS` against the emulators, for iterating on one thing. Works
# non-interactively on a machine with only node/npm, python3 and cargo (with its rustfmt and
# clippy components).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/testbed.sh"

# --- lint ----------------------------------------------------------------------------------

# The gates every change must pass (README, Development). Each failure says what to run.
lint() {
    cargo fmt --version >/dev/null 2>&1 ||
        die "cargo fmt is not installed: run \`rustup component add rustfmt\`"
    cargo clippy --version >/dev/null 2>&1 ||
        die "cargo clippy is not installed: run \`rustup component add clippy\`"
    log "cargo fmt --check"
    cargo fmt --check ||
        die "the code is not formatted (diff above): run \`cargo fmt\`, then scripts/test.sh again"
    log "cargo clippy --all-targets -- -D warnings"
    cargo clippy --all-targets -- -D warnings </dev/null ||
        die "clippy has warnings (above): fix them (\`cargo clippy --fix --all-targets --allow-dirty\` fixes some; \`cargo clippy --all-targets -- -D warnings\` shows them again), then scripts/test.sh again"
}

# --- disk ----------------------------------------------------------------------------------

# What a clean full run (no arguments) writes under target/: the tests' debug build and the
# dist check's own build of the wheel, measured as README "Set up" says. With less free than
# that a run may stop mid-build with "No space left on device", so the log says so first.
CLEAN_RUN_DISK_GB=5
report_disk() {
    local dir="${CARGO_TARGET_DIR:-$ROOT/target}" free_gb
    mkdir -p "$dir"
    free_gb="$(df -Pk "$dir" | awk 'NR == 2 { print int($4 / 1048576) }')"
    log "disk: ${free_gb} GB free under $dir (a clean full run writes about ${CLEAN_RUN_DISK_GB} GB there)"
    if ((free_gb < CLEAN_RUN_DISK_GB)); then
        log "warning: less free than a clean run writes; if the build stops with \"No space left on device\", free space (\`cargo clean\` removes target/) and run again"
    fi
}

# --- main ----------------------------------------------------------------------------------

main() {
    cd "$ROOT"
    require node
    require python3
    require cargo
    mkdir -p "$LOGS"
    # CI builds once, from a clean clone: incremental compilation's caches (gigabytes of them)
    # would buy nothing there but take disk.
    if [[ "${CI:-}" == true ]]; then
        export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
    fi
    report_disk
    # Targeted runs (arguments) skip the lint: they are for iterating on one test.
    if ((!$#)); then
        lint
    fi

    install_azurite
    install_moto
    start_azurite
    start_azurite_oauth
    start_moto
    install_pyarrow
    install_pyspark

    local rc=0
    if (($#)); then
        # Arguments choose the targets (`--test readme`, `--lib identity`); none runs them all.
        cargo test "$@" </dev/null || rc=$?
    else
        start_dist_check
        cargo test --all-targets --no-fail-fast </dev/null || rc=$?
        wait_dist_check || rc=$?
    fi
    return "$rc"
}

main "$@"
