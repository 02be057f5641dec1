#!/usr/bin/env bash
# Instructions per record of a gatelake pull, counted by valgrind (callgrind): a figure that
# stays put on a loaded machine, where wall and CPU times move with whatever else runs. Use it
# to compare two builds (before/after a change) in one invocation.
#
# For each shape, starts the bench API (examples/bench_api.rs; pages of 500 records,
# pre-gzipped at --gzip-level), then for each format and binary runs
#
#   valgrind --tool=callgrind BIN pull --url <api>/cursor --paginate cursor
#       --cursor-path next_cursor --records items --format F --dest <a temporary folder>
#
# (every thread of the pull counted; the API's instructions are not) and checks that every
# record landed (the JSON summary's rows). Prints instructions per record and, when
# --baseline is given, the change against it.
#
#   bench/instructions.sh [--records N] [--shapes "orders wide"] [--gzip-level L]
#                         [--formats "jsonl jsonl.zst parquet"] [--baseline BIN] [--bin BIN]
#
# Defaults: 20,000 records (callgrind runs the pull about 50 times slower), both shapes,
# gzip 6, the three formats, target/release/gatelake (built here; with --bin nothing is built
# unless the bench API is missing) and no baseline. The
# callgrind profiles are kept in .testbed/instructions/ (callgrind_annotate reads them).
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

RECORDS=20000
SHAPES="orders wide"
GZIP_LEVEL=6
FORMATS="jsonl jsonl.zst parquet"
BASELINE=""
BIN=""
while (($#)); do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --shapes) SHAPES="$2"; shift 2 ;;
        --gzip-level) GZIP_LEVEL="$2"; shift 2 ;;
        --formats) FORMATS="$2"; shift 2 ;;
        --baseline) BASELINE="$2"; shift 2 ;;
        --bin) BIN="$2"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (use --records N, --shapes LIST, --gzip-level L, --formats LIST, --baseline BIN, --bin BIN)" ;;
    esac
done
[[ "$RECORDS" =~ ^[1-9][0-9]*$ ]] || die "--records must be a positive integer"
[[ "$GZIP_LEVEL" =~ ^[0-9]$ ]] || die "--gzip-level must be 0-9"
command -v valgrind >/dev/null || die "valgrind is needed (apt-get install valgrind)"
[[ -z "$BASELINE" || -x "$BASELINE" ]] || die "--baseline $BASELINE is not an executable"

cd "$ROOT"
if [[ -z "$BIN" ]]; then
    log "building gatelake and examples/bench_api (release)"
    cargo build --release --quiet --bin gatelake --example bench_api </dev/null
    BIN="$ROOT/target/release/gatelake"
elif [[ ! -x "$ROOT/target/release/examples/bench_api" ]]; then
    cargo build --release --quiet --example bench_api </dev/null
fi
[[ -x "$BIN" ]] || die "--bin $BIN is not an executable"

WORK="$TESTBED/instructions"
rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# One counted pull; appends: shape format which instructions rows
count_one() {
    local shape="$1" format="$2" which="$3" bin="$4"
    local name="$shape-$format-$which" codec=()
    [[ "$format" == jsonl.zst ]] && codec=(--compression zstd)
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.callgrind" \
        "$bin" pull --url "$URL/cursor" --paginate cursor --cursor-path next_cursor \
        --records items --format "${format%.zst}" "${codec[@]}" --output json --progress none \
        --dest "$WORK/lake-$name" </dev/null >"$WORK/$name.out" 2>"$WORK/$name.err" ||
        { tail -20 "$WORK/$name.err" >&2; die "$name: the pull failed (log: $WORK/$name.err)"; }
    local ir rows
    ir="$(sed -n 's/^==[0-9]*== Collected : \([0-9]*\).*/\1/p' "$WORK/$name.err" | tail -1)"
    # The summary's own "rows" (each file in it has one too).
    rows="$(grep '^{' "$WORK/$name.out" | tail -1 |
        "${PYTHON:-python3}" -c 'import json, sys; print(json.load(sys.stdin)["rows"])')"
    [[ -n "$ir" ]] || die "$name: no instruction count in $WORK/$name.err"
    [[ "$rows" == "$RECORDS" ]] || die "$name: $rows records landed, expected $RECORDS"
    printf '%s\t%s\t%s\t%s\t%s\n' "$shape" "$format" "$which" "$ir" "$rows" >>"$RESULTS"
    log "$name: $ir instructions, $rows records"
    rm -rf "$WORK/lake-$name"
}

for shape in $SHAPES; do
    start_bench_api "bench-api-$shape" --records "$RECORDS" --page-size 500 --styles cursor \
        --shape "$shape" --gzip-level "$GZIP_LEVEL"
    URL="$BENCH_API_URL"
    for format in $FORMATS; do
        [[ -n "$BASELINE" ]] && count_one "$shape" "$format" baseline "$BASELINE"
        count_one "$shape" "$format" build "$BIN"
    done
    kill "$BENCH_API_PID" 2>/dev/null || true
    wait "$BENCH_API_PID" 2>/dev/null || true
done

"${PYTHON:-python3}" - "$RESULTS" "$GZIP_LEVEL" "$("$BIN" --version)" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print(f"\ninstructions per record (callgrind, every thread of the pull), {sys.argv[3]}, "
      f"pages gzipped at level {sys.argv[2]}")
head = f"{'shape':7} {'format':10} {'baseline':>10} {'build':>10} {'change':>8}"
print(head)
print("-" * len(head))
per = {(r[0], r[1], r[2]): int(r[3]) / int(r[4]) for r in rows}
for shape, fmt in dict.fromkeys((r[0], r[1]) for r in rows):
    b, n = per.get((shape, fmt, "baseline")), per.get((shape, fmt, "build"))
    change = f"{100 * (n / b - 1):+7.1f}%" if b and n else ""
    show = lambda v: "-" if v is None else f"{v:,.0f}"
    print(f"{shape:7} {fmt:10} {show(b):>10} {show(n):>10} {change:>8}")
PY
