#!/usr/bin/env bash
# The project's single test command: installs and starts the emulators the integration tests
# run against (see scripts/testbed.sh), runs `cargo test --all-targets` (or `cargo test ARGS`
# when arguments are given), stops the emulators, and exits with cargo's exit code. Works non-interactively on a machine with only
# node/npm, python3 and cargo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/testbed.sh"

# --- main ----------------------------------------------------------------------------------

main() {
    cd "$ROOT"
    require node
    require python3
    require cargo
    mkdir -p "$LOGS"

    install_azurite
    install_moto
    start_azurite
    start_azurite_oauth
    start_moto
    install_pyarrow

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
