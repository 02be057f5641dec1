#!/usr/bin/env bash
# The memory scenario (issue 7): gatelake's peak RSS for the same cursor pull at two dataset
# sizes, with the default chunk size. Memory must not grow with the dataset: the target is a
# peak RSS of at most 150 MiB at the larger size, within 10% of the smaller size's.
#
# Runs bench/compare.sh --tools gatelake --no-stages at each size (release build, bench API,
# Azurite in memory, every record counted back from storage), then compares the medians.
#
#   bench/memory.sh [--sizes "1000000 10000000"] [--runs R] [--formats "jsonl jsonl.zst parquet"]
#
# Exits 1 if a target is missed (after printing the table), 2 on bad arguments.
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

SIZES="1000000 10000000"
RUNS=1
FORMATS="jsonl jsonl.zst parquet"
while (($#)); do
    case "$1" in
        --sizes) SIZES="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --formats) FORMATS="$2"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (use --sizes LIST, --runs R, --formats LIST)" >&2; exit 2 ;;
    esac
done
read -r -a sizes <<<"$SIZES"
((${#sizes[@]} == 2)) || { echo "--sizes takes two record counts, smaller first" >&2; exit 2; }

OUT="$TESTBED/memory"
mkdir -p "$OUT"
for n in "${sizes[@]}"; do
    log "memory scenario: $n records"
    "$ROOT/bench/compare.sh" --tools gatelake --no-stages --records "$n" --runs "$RUNS" \
        --formats "$FORMATS" --shapes orders --results "$OUT/$n.tsv" </dev/null
done

"${PYTHON:-python3}" - "$OUT/${sizes[0]}.tsv" "$OUT/${sizes[1]}.tsv" "${sizes[0]}" "${sizes[1]}" <<'PY'
import statistics, sys
small, large = ([l.rstrip("\n").split("\t") for l in open(f) if l.strip()] for f in sys.argv[1:3])
n_small, n_large = int(sys.argv[3]), int(sys.argv[4])
def rss(rows, fmt):
    return statistics.median(float(r[5]) / 1024 for r in rows if r[1] == fmt)
print(f"\npeak RSS of gatelake pull (MiB, median), default chunk size")
print(f"{'format':10} {n_small:>12,} {n_large:>12,} {'growth':>8} {'<=150 MiB':>10} {'<=+10%':>7}")
ok = True
for fmt in dict.fromkeys(r[1] for r in small):
    a, b = rss(small, fmt), rss(large, fmt)
    cap, flat = b <= 150, b <= a * 1.10
    ok &= cap and flat
    print(f"{fmt:10} {a:>12.1f} {b:>12.1f} {100 * (b / a - 1):>+7.1f}% {'met' if cap else 'MISSED':>10} {'met' if flat else 'MISSED':>7}")
sys.exit(0 if ok else 1)
PY
