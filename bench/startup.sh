#!/usr/bin/env bash
# Start-up latency (issue 7): `gatelake --help` and a run with a bad flag must return in under
# 50 ms. Runs each command N times (release build) and prints the median and worst wall time,
# next to /bin/true measured the same way in the same run (the cost of starting any process).
#
#   bench/startup.sh [--runs N]
#
# Exits 1 if a median is 50 ms or more.
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

RUNS=50
while (($#)); do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        *) die "unknown argument $1 (use --runs N)" ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"

cd "$ROOT"
log "building gatelake (release)"
cargo build --release --quiet --bin gatelake </dev/null
BIN="$ROOT/target/release/gatelake"

# Wall milliseconds of each of RUNS runs of the command, one per line; the exit code must be
# the expected one (0 for --help, 2 for a usage error).
times() {
    local want="$1"; shift
    local i start end rc
    for ((i = 0; i < RUNS; i++)); do
        start=$(date +%s%N)
        rc=0
        "$@" </dev/null >/dev/null 2>&1 || rc=$?
        end=$(date +%s%N)
        ((rc == want)) || die "$* exited $rc, expected $want"
        echo $(((end - start) / 1000))
    done
}

fail=0
printf '%-40s %10s %10s\n' "command ($RUNS runs each)" "median ms" "worst ms"
report() {
    local name="$1" limit="$2"; shift 2
    local sorted median worst
    sorted="$(sort -n)"
    median="$(awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m / 1000}' <<<"$sorted")"
    worst="$(tail -1 <<<"$sorted" | awk '{printf "%.1f", $1 / 1000}')"
    printf '%-40s %10s %10s\n' "$name" "$median" "$worst"
    if [[ -n "$limit" ]] && awk -v m="$median" -v l="$limit" 'BEGIN {exit !(m >= l)}'; then
        log "MISSED: $name takes ${median} ms (median), the target is under $limit ms"
        fail=1
    fi
}
T="$LOGS/startup-times"
times 0 /bin/true >"$T"; report "/bin/true (baseline)" "" <"$T"
times 0 "$BIN" --help >"$T"; report "gatelake --help" 50 <"$T"
times 0 "$BIN" pull --help >"$T"; report "gatelake pull --help" 50 <"$T"
times 2 "$BIN" pull --no-such-flag >"$T"; report "gatelake pull --no-such-flag (exit 2)" 50 <"$T"
times 2 "$BIN" pull --url http://127.0.0.1:9/x --format xml >"$T"
report "gatelake pull --format xml (exit 2)" 50 <"$T"
exit "$fail"
