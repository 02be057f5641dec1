#!/usr/bin/env bash
# The project's single test command: installs and starts the emulators the integration tests
# run against (see scripts/testbed.sh), runs `cargo test --all-targets "$@"`, stops the
# emulators, and exits with cargo's exit code. Works non-interactively on a machine with only
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
    cargo test --all-targets "$@" </dev/null || rc=$?
    return "$rc"
}

main "$@"
