#!/usr/bin/env bash
# Throughput of one pull, end to end, release build: N records from the demo API (a separate
# process on a free loopback port, cursor pagination, gzip pages) into Azurite (in-memory, on a
# free loopback port), for each format. Runs alternate between formats, each format RUNS times;
# prints per-run figures and the median records/s, MB/s (of record JSON received), CPU seconds
# and peak RSS per format, and verifies each run landed every record.
#
#   bench/pull.sh [--records N] [--runs R] [--formats "jsonl parquet"]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

RECORDS=1000000
RUNS=3
FORMATS="jsonl parquet"
while (($#)); do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --formats) FORMATS="$2"; shift 2 ;;
        *) die "unknown argument $1 (use --records N, --runs R, --formats LIST)" ;;
    esac
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed for peak memory (apt-get install time)"

cd "$ROOT"
log "building the release binary"
cargo build --release --quiet </dev/null
BIN="$ROOT/target/release/gatelake"

install_azurite
start_azurite
export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=$GATELAKE_TEST_AZURITE_BLOB"

# The demo API in its own process, so its JSON generation does not share the pull's CPU time.
"$BIN" demo --serve-only --records "$RECORDS" --page-size 500 >"$LOGS/demo-url" 2>"$LOGS/demo.log" &
PIDS+=("$!")
for _ in $(seq 1 100); do [[ -s "$LOGS/demo-url" ]] && break; sleep 0.1; done
URL="$(head -1 "$LOGS/demo-url")"
[[ -n "$URL" ]] || die "the demo API did not start; see $LOGS/demo.log"
log "demo API at $URL serving $RECORDS records"

RESULTS="$LOGS/bench-results.tsv"
: >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
    for format in $FORMATS; do
        out="$LOGS/bench-$format-$run.json"
        /usr/bin/time -f '%M %U %S' -o "$LOGS/time" "$BIN" pull --url "$URL" \
            --paginate cursor --cursor-path next_cursor --records items \
            --format "$format" --output json --progress none --create-container \
            --dest "$GATELAKE_TEST_AZURITE_BLOB/bench/$format" </dev/null >"$out"
        read -r rss_kb user sys <"$LOGS/time"
        python3 - "$out" "$rss_kb" "$user" "$sys" "$format" "$RECORDS" >>"$RESULTS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rss_kb, user, sys_s, fmt, want = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], int(sys.argv[6])
if s["rows"] != want:
    sys.exit(f"{fmt}: landed {s['rows']} records, expected {want}")
secs = s["seconds"]
print(f"{fmt}\t{s['rows']/secs:.0f}\t{s['raw_bytes']/secs/1e6:.1f}\t{user+sys_s:.2f}\t{rss_kb/1024:.1f}\t{s['bytes']}\t{secs:.2f}")
PY
        tail -1 "$RESULTS" | awk -F'\t' -v run="$run" '{printf "run %s %-8s %8s rec/s %6s MB/s  cpu %6ss  rss %6s MiB  stored %s B  %ss\n", run, $1, $2, $3, $4, $5, $6, $7}' >&2
    done
done

python3 - "$RESULTS" "$RECORDS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print(f"\nmedians over runs, {int(sys.argv[2]):,} records, release build, Azurite in memory")
print(f"{'format':8} {'records/s':>10} {'MB/s':>7} {'cpu s':>7} {'peak RSS MiB':>13} {'stored bytes':>13}")
for fmt in dict.fromkeys(r[0] for r in rows):
    rs = [r for r in rows if r[0] == fmt]
    med = lambda i: statistics.median(float(r[i]) for r in rs)
    print(f"{fmt:8} {med(1):>10.0f} {med(2):>7.1f} {med(3):>7.2f} {med(4):>13.1f} {med(5):>13.0f}")
PY
