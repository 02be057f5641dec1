#!/usr/bin/env bash
# Scale-out: pages per second of one partitioned job pulled by 1, 2, 4, 8, 16 worker processes
# (issue 17). The work is latency-bound (every page costs a round trip), so W workers should
# pull W times the pages per second of one, whatever the machine's cores.
#
# The source: examples/bench_api.rs in its own process on a free loopback port, its cursor
# style split into WINDOWS time windows of one hour from 2026-01-01T00:00:00Z (bench/windows.rs:
# `?from=T` starts window T, the cursor chain ends with the window), PAGES_PER_WINDOW pages of
# PAGE_SIZE records each, LATENCY ms added before every page. The job: `gatelake pull` of that
# cursor listing with `--window-start/--window-end/--window 1h --window-params from,to`, i.e.
# WINDOWS window partitions. The sink: a local folder.
#
# For each worker count W, W `gatelake pull ... --worker --run-key scale-W` processes start at
# once against a fresh folder; the time is from the first start to the last exit. Every worker
# must exit 0, exactly one must report the commit, `_SUCCESS` must exist, and every record id
# must have landed exactly once (counted from the files), or the script fails.
#
# Prints, per W: seconds, pages/s, the ideal (W × the single-worker rate) and the share of it
# reached (the issue asks for at least 80% up to 16 workers).
#
#   bench/scale.sh [--latency-ms 50] [--windows 32] [--pages-per-window 20] [--page-size 100]
#                  [--workers "1 2 4 8 16"] [--profile release|dev] [--lease 30s]
#                  [--compression gzip|none]
#
# --profile dev uses the debug build (no release build on a shared machine; the work is
# latency-bound, so the figures barely differ as long as the CPU keeps up; a debug build's
# compression does not on two busy cores: add --compression none to see the fetching alone).
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

LATENCY_MS=50
WINDOWS=32
PAGES_PER_WINDOW=20
PAGE_SIZE=100
WORKERS="1 2 4 8 16"
PROFILE=release
LEASE=30s
COMPRESSION=gzip
while (($#)); do
    case "$1" in
        --latency-ms) LATENCY_MS="$2"; shift 2 ;;
        --windows) WINDOWS="$2"; shift 2 ;;
        --pages-per-window) PAGES_PER_WINDOW="$2"; shift 2 ;;
        --page-size) PAGE_SIZE="$2"; shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        --profile) PROFILE="$2"; shift 2 ;;
        --lease) LEASE="$2"; shift 2 ;;
        --compression) COMPRESSION="$2"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
for v in LATENCY_MS WINDOWS PAGES_PER_WINDOW PAGE_SIZE; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v,,} must be a positive integer (got ${!v})"
done
for w in $WORKERS; do
    [[ "$w" =~ ^[1-9][0-9]*$ ]] && ((w <= 64)) || die "--workers values must be 1-64 (got $w)"
done
[[ " $WORKERS " == *" 1 "* ]] || die "--workers must include 1 (the single-worker rate is the baseline)"
[[ "$COMPRESSION" == gzip || "$COMPRESSION" == none ]] || die "--compression must be gzip or none"
case "$PROFILE" in
    release) PROFILE_DIR=release; PROFILE_FLAG=(--release) ;;
    dev) PROFILE_DIR=debug; PROFILE_FLAG=() ;;
    *) die "--profile must be release or dev (got $PROFILE)" ;;
esac

cd "$ROOT"
log "building gatelake and examples/bench_api ($PROFILE)"
cargo build "${PROFILE_FLAG[@]}" --quiet --bin gatelake --example bench_api </dev/null
BIN="$ROOT/target/$PROFILE_DIR/gatelake"

RECORDS=$((WINDOWS * PAGES_PER_WINDOW * PAGE_SIZE))
PAGES=$((WINDOWS * PAGES_PER_WINDOW))
START="2026-01-01T00:00:00Z"
END="$(date -u -d "2026-01-01 00:00:00 UTC + $WINDOWS hours" +%Y-%m-%dT%H:%M:%SZ)"
# Not start_bench_api (scripts/testbed.sh): that one runs the release build only.
BENCH_API_BIN="$ROOT/target/$PROFILE_DIR/examples/bench_api"
rm -f "$LOGS/scale-api-url"
"$BENCH_API_BIN" --records "$RECORDS" --page-size "$PAGE_SIZE" --latency-ms "$LATENCY_MS" \
    --styles cursor --gzip-level 1 --windows "$WINDOWS" --window-start "$START" \
    --window-secs 3600 --window-param from </dev/null >"$LOGS/scale-api-url" 2>"$LOGS/scale-api.log" &
api_pid=$!
PIDS+=("$api_pid")
deadline=$((SECONDS + STARTUP_TIMEOUT_SECS))
until [[ -s "$LOGS/scale-api-url" ]]; do
    kill -0 "$api_pid" 2>/dev/null || { cat "$LOGS/scale-api.log" >&2; die "the bench API exited"; }
    ((SECONDS < deadline)) || die "the bench API did not start; see $LOGS/scale-api.log"
    sleep 0.1
done
URL="$(head -1 "$LOGS/scale-api-url")"
log "bench API (pid $api_pid) at $URL: $WINDOWS windows × $PAGES_PER_WINDOW pages × $PAGE_SIZE records, +${LATENCY_MS} ms per page"

WORK="$TESTBED/scale"
rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# W workers on one job; appends "W seconds" to $RESULTS once the run is checked.
run_workers() {
    local w="$1" dest="$WORK/lake-$w" i started pids=() rc=0
    mkdir -p "$dest"
    local -a cmd=("$BIN" pull --url "$URL/cursor" --paginate cursor --cursor-path next_cursor
        --records items --format jsonl --compression "$COMPRESSION" --window-start "$START" --window-end "$END" --window 1h
        --window-params from,to --worker --run-key "scale-$w" --lease "$LEASE"
        --dest "$dest" --output json --progress none)
    started="$(date +%s.%N)"
    for i in $(seq 1 "$w"); do
        "${cmd[@]}" </dev/null >"$WORK/w$w-$i.out" 2>"$WORK/w$w-$i.err" &
        pids+=("$!")
        PIDS+=("$!")
    done
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            rc=1
            log "worker $((i + 1)) of $w failed; its log:"
            tail -20 "$WORK/w$w-$((i + 1)).err" >&2
        fi
    done
    local seconds
    seconds="$(python3 -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.3f}")' "$started")"
    ((rc == 0)) || die "$w workers: a worker failed"
    python3 - "$w" "$RECORDS" "$dest" "$WORK" <<'PY' || die "$w workers: the landed run is wrong"
import gzip, json, pathlib, sys
w, want, dest, work = int(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4])
summaries = []
for i in range(1, w + 1):
    lines = [l for l in (work / f"w{w}-{i}.out").read_text().splitlines() if l.strip().startswith("{")]
    summaries.append(json.loads(lines[-1]))
committed = sum(1 for s in summaries if s.get("committed"))
if committed != 1:
    sys.exit(f"{committed} workers report the commit (expected exactly one)")
success = list(dest.rglob("_SUCCESS"))
if len(success) != 1:
    sys.exit(f"{len(success)} _SUCCESS files under {dest} (expected one)")
ids = []
for f in success[0].parent.glob("part-*"):
    data = f.read_bytes()
    if f.name.endswith(".gz"):
        data = gzip.decompress(data)
    ids.extend(json.loads(line)["id"] for line in data.splitlines() if line.strip())
if len(ids) != want or len(set(ids)) != want:
    sys.exit(f"{len(ids)} records landed, {len(set(ids))} distinct; expected {want} exactly once")
PY
    printf '%s\t%s\n' "$w" "$seconds" >>"$RESULTS"
    log "$w workers: $PAGES pages in ${seconds}s"
    rm -rf "$dest"
}

for w in $WORKERS; do
    run_workers "$w"
done

python3 - "$RESULTS" "$PAGES" "$LATENCY_MS" "$WINDOWS" "$PAGE_SIZE" "$(nproc)" "$PROFILE" \
    "$("$BIN" --version)" "$COMPRESSION" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
pages, latency, windows, page_size, cores, profile, version, compression, load = sys.argv[2:]
pages = int(pages)
single = next(pages / float(s) for w, s in rows if w == "1")
print(f"\n{version} ({profile}), {windows} window partitions, {pages} pages of {page_size} records, "
      f"+{latency} ms per page, jsonl/{compression} into a local folder, {cores} cores, load average {load} at the end")
head = f"{'workers':>7} {'seconds':>8} {'pages/s':>8} {'ideal':>7} {'reached':>8}"
print(head)
print("-" * len(head))
for w, s in rows:
    rate = pages / float(s)
    ideal = int(w) * single
    print(f"{w:>7} {float(s):>8.2f} {rate:>8.1f} {ideal:>7.1f} {100 * rate / ideal:>7.0f}%")
print("\nideal: workers x the single-worker rate. seconds: from the first worker's start to the "
      "last one's exit (start-up, claims and the commit included).")
PY
