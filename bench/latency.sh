#!/usr/bin/env bash
# Pages per second when every page costs a round trip (issue 7, latency scenario).
#
# The source: examples/bench_api.rs in its own process on a free loopback port, adding
# LATENCY ms before every page (default 50), pages of PAGE_SIZE records (default 100) in the
# cursor, offset and page styles. The sink: a local folder (no storage in the way). For
# cursor (sequential by nature: the next request is in the page) and then for offset and page
# pagination at each --concurrency C, one release `gatelake pull` of PAGES_PER_SLOT × C pages
# (--max-pages; cursor: PAGES_PER_SLOT), so each run lasts about PAGES_PER_SLOT × LATENCY ms
# when it reaches its target.
#
# Prints pages/s, the target (C × 1000 / LATENCY pages/s; cursor: one page per round trip)
# and the share of it reached. Every run's records are counted back from the landed files and
# must be exactly what was asked for, or the script fails.
#
#   bench/latency.sh [--latency-ms 50] [--page-size 100] [--pages-per-slot 60]
#                    [--concurrency "1 2 4 8 16"] [--styles "offset page"]
#                    [--compression gzip|none] [--runs 1]
#
# Chunks are jsonl; --compression none shows how much of a shortfall is compression rather
# than fetching. With --runs R, each cell is the median of R runs.
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

LATENCY_MS=50
PAGE_SIZE=100
PAGES_PER_SLOT=60
CONCURRENCY="1 2 4 8 16"
STYLES="offset page"
COMPRESSION=gzip
RUNS=1
while (($#)); do
    case "$1" in
        --latency-ms) LATENCY_MS="$2"; shift 2 ;;
        --page-size) PAGE_SIZE="$2"; shift 2 ;;
        --pages-per-slot) PAGES_PER_SLOT="$2"; shift 2 ;;
        --concurrency) CONCURRENCY="$2"; shift 2 ;;
        --styles) STYLES="$2"; shift 2 ;;
        --compression) COMPRESSION="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
for v in LATENCY_MS PAGE_SIZE PAGES_PER_SLOT RUNS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v,,} must be a positive integer (got ${!v})"
done
MAX_C=1
for c in $CONCURRENCY; do
    [[ "$c" =~ ^[1-9][0-9]*$ ]] && ((c <= 64)) || die "--concurrency values must be 1-64 (got $c)"
    ((c > MAX_C)) && MAX_C=$c
done
for style in $STYLES; do
    [[ "$style" == offset || "$style" == page ]] || die "unknown style $style (offset, page)"
done
[[ "$COMPRESSION" == gzip || "$COMPRESSION" == none ]] || die "--compression must be gzip or none"

cd "$ROOT"
log "building gatelake and examples/bench_api (release)"
cargo build --release --quiet --bin gatelake --example bench_api </dev/null
BIN="$ROOT/target/release/gatelake"

# One page more than the longest run asks for, so every run stops at --max-pages, not at the
# end of the listing: all runs do the same work per page.
RECORDS=$(((PAGES_PER_SLOT * MAX_C + 1) * PAGE_SIZE))
start_bench_api latency-api --records "$RECORDS" --page-size "$PAGE_SIZE" --latency-ms "$LATENCY_MS" \
    --styles "cursor,offset,page"
URL="$BENCH_API_URL"
api_pid="$BENCH_API_PID"
log "bench API (pid $api_pid) at $URL: $RECORDS records, pages of $PAGE_SIZE, +${LATENCY_MS} ms per page"

WORK="$TESTBED/latency"
rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# One pull; appends "style concurrency run pages seconds" to $RESULTS after checking that
# exactly PAGES × PAGE_SIZE records landed (counted from the files, and as reported).
run_one() {
    local style="$1" c="$2" run="$3"
    local pages=$((PAGES_PER_SLOT * c)) dest="$WORK/lake-$style-$c-$run"
    local out="$WORK/$style-$c-$run.out" err="$WORK/$style-$c-$run.err"
    local -a cmd=("$BIN" pull --output json --progress none --format jsonl
        --compression "$COMPRESSION" --max-pages "$pages" --max-pages-complete --dest "$dest")
    case "$style" in
        cursor) cmd+=(--url "$URL/cursor" --paginate cursor --cursor-path next_cursor
            --records items) ;;
        offset) cmd+=(--url "$URL/offset" --paginate offset --page-size "$PAGE_SIZE"
            --records items --total-path total --concurrency "$c") ;;
        page) cmd+=(--url "$URL/page" --paginate page --records items
            --has-more-path has_more --concurrency "$c") ;;
    esac
    if ! "${cmd[@]}" </dev/null >"$out" 2>"$err"; then
        tail -20 "$err" >&2
        die "$style --concurrency $c run $run failed (log: $err)"
    fi
    python3 - "$style" "$c" "$run" "$pages" "$((pages * PAGE_SIZE))" "$out" "$dest" \
        >>"$RESULTS" <<'PY'
import gzip, json, pathlib, sys
style, c, run, pages, want, out, dest = sys.argv[1:]
summary = json.loads(open(out).read().strip().splitlines()[-1])
counted = 0
for f in pathlib.Path(dest).rglob("part-*"):
    data = f.read_bytes()
    if f.name.endswith(".gz"):
        data = gzip.decompress(data)
    counted += sum(1 for line in data.splitlines() if line.strip())
if summary["rows"] != int(want) or counted != int(want) or summary["pages"] != int(pages):
    sys.exit(f"{style} --concurrency {c} run {run}: {summary['rows']} records reported, "
             f"{counted} landed, {summary['pages']} pages; expected {want} records in {pages} pages")
print(f"{style}\t{c}\t{run}\t{pages}\t{summary['seconds']:.3f}")
PY
    rm -rf "$dest"
    awk -F'\t' 'END {printf "%-6s --concurrency %-2s run %s: %s pages in %ss (%.1f pages/s)\n",
        $1, $2, $3, $4, $5, $4 / $5}' "$RESULTS" >&2
}

for run in $(seq 1 "$RUNS"); do
    run_one cursor 1 "$run"
    for style in $STYLES; do
        for c in $CONCURRENCY; do
            run_one "$style" "$c" "$run"
        done
    done
done

python3 - "$RESULTS" "$LATENCY_MS" "$PAGE_SIZE" "$COMPRESSION" "$(nproc)" \
    "$("$BIN" --version)" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
latency, page_size, comp, cores, version = sys.argv[2:]
latency = int(latency)
print(f"\n{version}, +{latency} ms per page, pages of {page_size} records, "
      f"jsonl/{comp} into a local folder, {cores} cores")
head = f"{'style':8} {'concurrency':>11} {'pages':>6} {'seconds':>8} {'pages/s':>8} {'target':>7} {'reached':>8}"
print(head)
print("-" * len(head))
for key in dict.fromkeys((r[0], r[1]) for r in rows):
    rs = [r for r in rows if (r[0], r[1]) == key]
    secs = statistics.median(float(r[4]) for r in rs)
    pages = int(rs[0][3])
    rate = pages / secs
    target = int(key[1]) * 1000 / latency
    label = "-" if key[0] == "cursor" else key[1]
    print(f"{key[0]:8} {label:>11} {pages:>6} {secs:>8.2f} {rate:>8.1f} {target:>7.0f} {100 * rate / target:>7.0f}%")
print("\ntarget: concurrency x 1000 / latency pages/s (cursor: one page per round trip). "
      "seconds: the pull's own time (its JSON summary), start-up and finishing included.")
PY
