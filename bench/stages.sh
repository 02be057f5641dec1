#!/usr/bin/env bash
# Stage limits (issue 7): how fast each stage of a pull goes on its own, using gatelake's own
# code (examples/bench_stages.rs): fetch+gunzip of every page from the bench API (sequential
# cursor pagination, nothing parsed), extract (JSON validation and record location), encode
# (jsonl.gz, jsonl.zst and parquet at `pull`'s defaults, compression on every core; no upload)
# and upload (the jsonl.gz chunks into Azurite, in memory, 4 at once; then deleted).
# Prints per-run lines and the medians. bench/compare.sh runs the same stages after its pulls.
#
#   bench/stages.sh [--records N] [--runs R]
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

RECORDS=1000000
RUNS=3
while (($#)); do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        *) die "unknown argument $1 (use --records N, --runs R)" ;;
    esac
done
[[ "$RECORDS" =~ ^[1-9][0-9]*$ ]] || die "--records must be a positive integer"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"

cd "$ROOT"
log "building examples/bench_api and examples/bench_stages (release)"
cargo build --release --quiet --example bench_api --example bench_stages </dev/null

start_bench_api stages-api --records "$RECORDS" --page-size 500 --styles cursor
URL="$BENCH_API_URL"
api_pid="$BENCH_API_PID"
log "bench API (pid $api_pid) at $URL, $RECORDS records"

install_azurite
start_azurite
export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=$GATELAKE_TEST_AZURITE_BLOB"

RESULTS="$LOGS/stages.tsv"
"$ROOT/target/release/examples/bench_stages" --url "$URL" --runs "$RUNS" \
    --dest "$GATELAKE_TEST_AZURITE_BLOB/stages/bench" </dev/null >"$RESULTS"

awk -F'\t' -v records="$RECORDS" '
    { printf "%-16s run %s  wall %7.3fs  cpu %6.2fs\n", $1, $2, $5, $6 > "/dev/stderr"
      n[$1]++; wall[$1, n[$1]] = $5; cpu[$1, n[$1]] = $6; json[$1] = $4; out[$1] = $7
      if (!($1 in seen)) { seen[$1] = 1; order[++stages] = $1 } }
    function median(a, s, k,   i, j, t, v) {
        for (i = 1; i <= k; i++) v[i] = a[s, i]
        for (i = 2; i <= k; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    END {
        printf "\nstage limits, medians of %d run(s), %d records\n", n[order[1]], records
        printf "%-16s %12s %10s %8s %8s %10s\n", "stage", "records/s", "MB/s JSON", "wall s", "CPU s", "out MB"
        for (s = 1; s <= stages; s++) {
            st = order[s]; w = median(wall, st, n[st]); c = median(cpu, st, n[st])
            printf "%-16s %12.0f %10.1f %8.3f %8.2f %10.2f\n", st, records / w, json[st] / w / 1e6, w, c, out[st] / 1e6
        }
    }' "$RESULTS"
