#!/usr/bin/env bash
# What reading ahead is worth (issue 20): the same release `gatelake pull` of a cursor listing,
# with the next request started from each page's pointer while the page is parsed (the
# default) and with --no-read-ahead (the next request only once the page is parsed), runs
# alternating between the two and which goes first.
#
# The source: examples/bench_api.rs in its own process on a free loopback port (cursor pages
# of PAGE_SIZE records, gzipped at level 6, LATENCY ms added before every page, records of
# SHAPE). The sink: a local folder under .testbed/ (no storage server sharing the cores).
# Every run's records are counted back from the landed files and must be N, or the script
# fails. Prints per-run wall and CPU seconds, then medians and the ratio.
#
#   bench/read_ahead.sh [--records 200000] [--page-size 500] [--latency-ms 2]
#                       [--shape orders|wide] [--runs 5]
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

RECORDS=200000
PAGE_SIZE=500
LATENCY_MS=2
SHAPE=orders
RUNS=5
while (($#)); do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --page-size) PAGE_SIZE="$2"; shift 2 ;;
        --latency-ms) LATENCY_MS="$2"; shift 2 ;;
        --shape) SHAPE="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (use --records, --page-size, --latency-ms, --shape, --runs)" >&2; exit 2 ;;
    esac
done

log "building gatelake and examples/bench_api (release)"
cargo build --release --quiet --bin gatelake --example bench_api </dev/null
BIN="$ROOT/target/release/gatelake"
start_bench_api read-ahead-api --records "$RECORDS" --page-size "$PAGE_SIZE" --styles cursor \
    --shape "$SHAPE" --gzip-level 6 --latency-ms "$LATENCY_MS"
WORK="$TESTBED/read-ahead"
rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# One timed pull; appends "mode run wall cpu" to $RESULTS.
run_one() {
    local mode="$1" run="$2" lake="$WORK/lake-$1-$2" landed
    local -a extra=()
    [[ "$mode" == waits ]] && extra=(--no-read-ahead)
    /usr/bin/time -f '%e %U %S' -o "$WORK/time" \
        "$BIN" pull --url "$BENCH_API_URL/cursor" --paginate cursor --cursor-path next_cursor \
        --records items --output json --progress none --dest "$lake" "${extra[@]}" \
        </dev/null >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; die "$mode run $run failed"; }
    landed=$(find "$lake" -name 'part-*.jsonl.gz' -exec zcat {} + | wc -l)
    ((landed == RECORDS)) || die "$mode run $run landed $landed records, not $RECORDS"
    read -r wall user sys <"$WORK/time"
    printf '%s\t%s\t%s\t%s\n' "$mode" "$run" "$wall" "$(echo "$user + $sys" | bc)" >>"$RESULTS"
    printf 'run %d %-10s wall %6.2fs  cpu %6.2fs  %d records landed\n' \
        "$run" "$mode" "$wall" "$(echo "$user + $sys" | bc)" "$landed"
    rm -rf "$lake"
}

log "$RECORDS $SHAPE records, pages of $PAGE_SIZE, ${LATENCY_MS} ms per page, $RUNS runs each"
for run in $(seq 1 "$RUNS"); do
    if ((run % 2)); then order="reads waits"; else order="waits reads"; fi
    for mode in $order; do run_one "$mode" "$run"; done
done

python3 - "$RESULTS" "$RECORDS" <<'EOF'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
records = int(sys.argv[2])
med = {}
for mode in ("reads", "waits"):
    mine = [r for r in rows if r[0] == mode]
    med[mode] = (statistics.median(float(r[2]) for r in mine),
                 statistics.median(float(r[3]) for r in mine))
print(f"{'mode':28} {'wall s':>8} {'CPU s':>8} {'records/s':>10}")
for mode, name in (("reads", "reading ahead (default)"), ("waits", "--no-read-ahead")):
    wall, cpu = med[mode]
    print(f"{name:28} {wall:8.2f} {cpu:8.2f} {records / wall:10.0f}")
print(f"{'reading ahead / waiting':28} {med['reads'][0] / med['waits'][0]:7.3f}x "
      f"{med['reads'][1] / med['waits'][1]:7.3f}x {med['waits'][0] / med['reads'][0]:9.3f}x")
EOF
