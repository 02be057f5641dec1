#!/usr/bin/env bash
# CPU time and page faults of one pull per binary, under `perf stat` (issue 20, round four):
# the same pull as bench/instructions.sh (cursor pages of 500 from the bench API at
# --gzip-level, into a folder in /dev/shm), each binary RUNS times, alternating. Page faults
# count what callgrind cannot see: memory handed back to the system and faulted in again.
#
#   bench/faults.sh [--records 1000000] [--format jsonl|jsonl.zst|parquet] [--runs 3]
#                   [--gzip-level 6] [--shape orders|wide] BIN [BIN ...]
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

RECORDS=1000000
FORMAT=jsonl
RUNS=3
GZIP_LEVEL=6
SHAPE=orders
BINS=()
while (($#)); do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --format) FORMAT="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --gzip-level) GZIP_LEVEL="$2"; shift 2 ;;
        --shape) SHAPE="$2"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown argument $1 (use --records N, --format F, --runs R, --gzip-level L, --shape S, then binaries)" ;;
        *) [[ -x "$1" ]] || die "$1 is not an executable"; BINS+=("$1"); shift ;;
    esac
done
((${#BINS[@]})) || die "name at least one gatelake binary"
[[ "$FORMAT" =~ ^(jsonl|jsonl.zst|parquet)$ ]] || die "unknown format $FORMAT (jsonl, jsonl.zst, parquet)"
command -v perf >/dev/null || die "perf is needed (apt-get install linux-perf)"
[[ -x "$ROOT/target/release/examples/bench_api" ]] ||
    (cd "$ROOT" && cargo build --release --quiet --example bench_api </dev/null)

start_bench_api faults-api --records "$RECORDS" --page-size 500 --styles cursor --shape "$SHAPE" \
    --gzip-level "$GZIP_LEVEL"
codec=()
[[ "$FORMAT" == jsonl.zst ]] && codec=(--compression zstd)
LAKE="$(mktemp -d /dev/shm/gatelake-faults.XXXXXX)"
STAT="$(mktemp)"
trap 'rm -rf "$LAKE" "$STAT"; stop_all' EXIT
printf '%-28s %-9s %3s %12s %12s\n' binary format run "cpu ms" "page faults"
for run in $(seq 1 "$RUNS"); do
    for bin in "${BINS[@]}"; do
        rm -rf "${LAKE:?}"/*
        perf stat -x, -e task-clock,page-faults -o "$STAT" "$bin" pull --url "$BENCH_API_URL/cursor" \
            --paginate cursor --cursor-path next_cursor --records items --format "${FORMAT%.zst}" \
            "${codec[@]}" --output json --progress none --dest "$LAKE" >"$LAKE.out" 2>"$LAKE.err" ||
            { tail -20 "$LAKE.err" >&2; die "$bin: the pull failed"; }
        grep -q "\"rows\":$RECORDS[,}]" "$LAKE.out" || die "$bin: the summary does not say $RECORDS rows"
        awk -F, -v b="$bin" -v f="$FORMAT" -v r="$run" '/task-clock/ {t = $1} /page-faults/ {p = $1}
            END {printf "%-28s %-9s %3s %12.0f %12d\n", substr(b, length(b) > 28 ? length(b) - 27 : 1), f, r, t, p}' "$STAT"
    done
done
rm -f "$LAKE.out" "$LAKE.err"
