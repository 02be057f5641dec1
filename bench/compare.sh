#!/usr/bin/env bash
# gatelake against dlt on the same pull, side by side in one invocation (issue 7).
#
# The data: N deterministic records (examples/bench_api.rs, bench/data.rs) of each shape asked
# for (orders: about 390 bytes; wide: about 1.6 KB of long escaped text and nested arrays), served
# as pages of 500 (cursor pagination) pre-gzipped at --gzip-level (6 by default, what most
# servers use) from a separate process on a free loopback port, restarted for each shape.
# The sink: Azurite (in memory, free loopback port). For each format (jsonl = jsonl.gz,
# jsonl.zst, parquet), runs alternate between the two tools (and which one goes first), each
# RUNS times. dlt has no zstd: jsonl.zst is run by gatelake only and its ratio is taken
# against dlt's jsonl (gzip), the format a dlt user would get for the same job.
#
#   gatelake  target/release/gatelake pull --paginate cursor ... --dest <Azurite>
#   dlt       bench/dlt_pull.py: dlt's rest_api source (cursor paginator), one table,
#             max_table_nesting=0, into dlt's filesystem destination on Azurite (az://)
#
# Each run starts once the machine is idle (wait_for_idle in scripts/testbed.sh: at most 30 s
# for the last run's leftovers, such as Azurite digesting dlt's files, to finish), is timed
# with /usr/bin/time (wall, user+system CPU, peak RSS), then every record is
# counted back from Azurite (bench/blobs.py reads the landed files) and checked against N, as
# is what each tool reports. Prints per-run lines and, per shape, a table of medians with
# gatelake/dlt ratios per format; the headline column is CPU-seconds per million records
# (user+system of the tool's process), steadier than wall time on a shared machine.
#
#   bench/compare.sh [--records N] [--runs R] [--formats "jsonl jsonl.zst parquet"]
#                    [--shapes "orders wide"] [--gzip-level L] [--baseline BIN]
#                    [--latency-ms MS] [--tools "gatelake dlt"] [--results FILE] [--no-stages]
#                    [--keep]
#
# --baseline BIN adds a third tool, "before": another gatelake binary (an earlier build, copied
# out of target/ before rebuilding) run with the same flags right after this build's run, so a
# change is measured before/after in one invocation (a "gatelake/before" row per format).
#
# --tools gatelake runs gatelake alone and --no-stages skips the stage limits (the memory
# scenario, bench/memory.sh, uses both);
# --results FILE copies the per-run TSV there (tool format run wall_s cpu_s rss_kb reported
# counted stored_bytes json_bytes files kinds shape).
#
# gatelake runs at its default codec levels; GATELAKE_COMPRESSION_LEVEL in the environment
# overrides them (e.g. to compare gzip levels).
#
# --keep leaves every run's files in Azurite (by default they are deleted once counted, so
# Azurite's memory stays bounded); Azurite is stopped on exit either way.
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

RECORDS=1000000
RUNS=3
FORMATS="jsonl jsonl.zst parquet"
LATENCY_MS=0
KEEP=0
TOOLS="gatelake dlt"
RESULTS_COPY=""
STAGES_RUN=1
SHAPES="orders wide"
GZIP_LEVEL=6
BASELINE=""
while (($#)); do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --formats) FORMATS="$2"; shift 2 ;;
        --shapes) SHAPES="$2"; shift 2 ;;
        --gzip-level) GZIP_LEVEL="$2"; shift 2 ;;
        --baseline) BASELINE="$2"; shift 2 ;;
        --latency-ms) LATENCY_MS="$2"; shift 2 ;;
        --tools) TOOLS="$2"; shift 2 ;;
        --results) RESULTS_COPY="$2"; shift 2 ;;
        --no-stages) STAGES_RUN=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (use --records N, --runs R, --formats LIST, --shapes LIST, --gzip-level L, --latency-ms MS, --tools LIST, --results FILE, --no-stages, --keep)" ;;
    esac
done
[[ "$RECORDS" =~ ^[1-9][0-9]*$ ]] || die "--records must be a positive integer"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
for format in $FORMATS; do
    [[ "$format" == jsonl || "$format" == jsonl.zst || "$format" == parquet ]] ||
        die "unknown format $format (jsonl, jsonl.zst, parquet)"
done
for shape in $SHAPES; do
    [[ "$shape" == orders || "$shape" == wide ]] || die "unknown shape $shape (orders, wide)"
done
[[ "$GZIP_LEVEL" =~ ^[0-9]$ ]] || die "--gzip-level must be 0-9"
if [[ -n "$BASELINE" ]]; then
    [[ -x "$BASELINE" ]] || die "--baseline $BASELINE is not an executable"
    TOOLS="$TOOLS before"
fi
for tool in $TOOLS; do
    [[ "$tool" == gatelake || "$tool" == dlt || ("$tool" == before && -n "$BASELINE") ]] || die "unknown tool $tool (gatelake, dlt)"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed for CPU time and peak memory (apt-get install time)"

cd "$ROOT"
log "building gatelake, examples/bench_api and examples/bench_stages (release)"
cargo build --release --quiet --bin gatelake --example bench_api --example bench_stages </dev/null
BIN="$ROOT/target/release/gatelake"

# dlt with its Azure (adlfs) and parquet (pyarrow) extras, in .testbed/venv only.
install_dlt() {
    ensure_venv
    if "$VENV/bin/python" -c 'import dlt, adlfs, pyarrow, azure.storage.blob, zstandard' \
        >/dev/null 2>&1; then
        return 0
    fi
    # zstandard: bench/blobs.py reads gatelake's jsonl.zst files back with it.
    log "installing dlt[az,parquet] and zstandard into .testbed/venv"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'dlt[az,parquet]' zstandard \
        </dev/null >"$LOGS/pip-dlt.log" 2>&1 || {
        cat "$LOGS/pip-dlt.log" >&2
        die "pip install dlt[az,parquet] failed"
    }
}
install_dlt
PY="$VENV/bin/python"
# dlt: no anonymous usage telemetry (on by default; the bench talks to loopback only). Its
# pipeline working directories are under $WORK (--pipelines-dir); dlt still creates its empty
# global directory (~/.dlt, or /var/dlt as root).
export RUNTIME__DLTHUB_TELEMETRY=false
log "dlt $("$PY" -c 'import dlt; print(dlt.__version__)') at $PY"

install_azurite
start_azurite
export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=$GATELAKE_TEST_AZURITE_BLOB"
CONTAINER="bench"

WORK="$TESTBED/compare"
rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
STAGES="$WORK/stages.tsv"
: >"$STAGES"

# One timed run of TOOL for FORMAT; appends a line to $RESULTS:
# tool format run wall_s cpu_s rss_kb reported counted stored_bytes json_bytes files kinds shape
run_one() {
    local tool="$1" format="$2" run="$3" shape="$4"
    local out="$WORK/$tool-$shape-$format-$run.out" err="$WORK/$tool-$shape-$format-$run.err"
    local prefix="$tool/$shape-$format-$run" count_prefix
    local -a cmd codec=()
    case "$tool" in
        gatelake | before)
            [[ "$format" == jsonl.zst ]] && codec=(--compression zstd)
            local bin="$BIN"
            [[ "$tool" == before ]] && bin="$BASELINE"
            cmd=("$bin" pull --url "$URL/cursor" --paginate cursor
                --cursor-path next_cursor --records items --format "${format%.zst}" "${codec[@]}"
                --output json
                --progress none --create-container
                --dest "$GATELAKE_TEST_AZURITE_BLOB/$CONTAINER/$prefix")
            count_prefix="$prefix/"
            ;;
        dlt)
            cmd=("$PY" "$ROOT/bench/dlt_pull.py" --url "$URL" --format "$format"
                --bucket-url "az://$CONTAINER/$prefix" --pipelines-dir "$WORK/dlt-$shape-$format-$run"
                --pipeline-name "bench_${shape}_${format}_$run" --dataset bench)
            # dlt's layout: <bucket_url>/<dataset>/<table>/<load_id>.<file_id>.<ext>
            count_prefix="$prefix/bench/orders/"
            ;;
    esac
    # Not beside the leftovers of the run before (scripts/testbed.sh).
    wait_for_idle 30
    if ! /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "${cmd[@]}" </dev/null >"$out" 2>"$err"; then
        tail -40 "$err" >&2
        die "$tool $format run $run failed (log: $err)"
    fi
    local wall user sys rss_kb
    read -r wall user sys rss_kb < <(tail -1 "$WORK/time")
    "$PY" "$ROOT/bench/blobs.py" count "$CONTAINER" "$count_prefix" >"$WORK/count.json"
    "$PY" - "$tool" "$format" "$run" "$wall" "$user" "$sys" "$rss_kb" "$out" "$WORK/count.json" \
        "$RECORDS" "$shape" >>"$RESULTS" <<'PY'
import json, sys
tool, fmt, run, wall, user, sys_s, rss_kb, out, count, want, shape = sys.argv[1:]
lines = [l for l in open(out) if l.strip().startswith("{")]
if not lines:
    sys.exit(f"{tool} {fmt} run {run}: no JSON summary on stdout ({out})")
s = json.loads(lines[-1])
c = json.load(open(count))
reported, counted, want = s["rows"], c["rows"], int(want)
if reported != want or counted != want:
    sys.exit(f"{tool} {fmt} run {run}: reported {reported} records, {counted} in storage, expected {want}")
json_bytes = s.get("raw_bytes", 0)
cpu = float(user) + float(sys_s)
print(f"{tool}\t{fmt}\t{run}\t{wall}\t{cpu:.2f}\t{rss_kb}\t{reported}\t{counted}\t{c['bytes']}\t{json_bytes}\t{c['files']}\t{','.join(c['kinds'])}\t{shape}")
PY
    awk -F'\t' 'END {printf "run %s %-6s %-8s %-9s wall %7ss  cpu %7ss  rss %7.1f MiB  %s records landed in %s %s files, %s B stored\n",
        $3, $13, $1, $2, $4, $5, $6 / 1024, $8, $11, $12, $9}' "$RESULTS" >&2
    if ((KEEP == 0)); then
        "$PY" "$ROOT/bench/blobs.py" delete "$CONTAINER" "$prefix/"
        rm -rf "$WORK/dlt-$shape-$format-$run"
    fi
}

for shape in $SHAPES; do
    # The bench API in its own process (only the cursor style is needed here): it renders and
    # gzips every page before it prints its URL, so no run pays for page generation.
    start_bench_api "bench-api-$shape" --records "$RECORDS" --page-size 500 \
        --latency-ms "$LATENCY_MS" --styles cursor --shape "$shape" --gzip-level "$GZIP_LEVEL"
    URL="$BENCH_API_URL"
    api_pid="$BENCH_API_PID"
    log "bench API (pid $api_pid) at $URL: $(tail -2 "$LOGS/bench-api-$shape.log" | head -1 | sed 's/^bench_api: //')"

    log "$shape records: $RUNS runs per tool and format, $RECORDS records each"
    for run in $(seq 1 "$RUNS"); do
        for format in $FORMATS; do
            # Alternate which tool goes first, so neither always runs on a warmer machine.
            if ((run % 2)); then order="gatelake before dlt"; else order="dlt before gatelake"; fi
            for tool in $order; do
                [[ " $TOOLS " == *" $tool "* ]] || continue
                [[ "$tool" == dlt && "$format" == jsonl.zst ]] && continue
                run_one "$tool" "$format" "$run" "$shape"
            done
        done
    done

    # The stage limits in the same invocation, against the same API and Azurite (bench/stages.sh
    # runs them alone): fetch+gunzip, extract, encode per format, upload.
    if ((STAGES_RUN)); then
        log "stage limits ($shape records): $RUNS run(s) of each stage"
        "$ROOT/target/release/examples/bench_stages" --url "$URL" --runs "$RUNS" \
            --dest "$GATELAKE_TEST_AZURITE_BLOB/$CONTAINER/stages" </dev/null |
            sed "s/\$/\t$shape/" >>"$STAGES"
    fi
    # This shape's pages are served no more (its memory is freed before the next shape's).
    kill "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
done

[[ -n "$RESULTS_COPY" ]] && cp "$RESULTS" "$RESULTS_COPY"

"$PY" - "$RESULTS" "$RECORDS" "$RUNS" "$(nproc)" "$("$BIN" --version)" \
    "dlt $("$PY" -c 'import dlt; print(dlt.__version__)')" "$STAGES" "$GZIP_LEVEL" <<'PY'
import statistics, sys
all_rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
records, runs, cores = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
all_stages = [l.rstrip("\n").split("\t") for l in open(sys.argv[7]) if l.strip()]
level = sys.argv[8]
print(f"\n{sys.argv[5]} against {sys.argv[6]}, pages gzipped at level {level}")
for shape in dict.fromkeys(r[12] for r in all_rows):
    rows = [r for r in all_rows if r[12] == shape]
    # MB/s of JSON: the record JSON gatelake reports receiving (the same pages for both tools).
    gl = [float(r[9]) for r in rows if r[0] == "gatelake"]
    json_bytes = statistics.median(gl) if gl else 0.0
    print(f"\n{shape} records: medians of {runs} run(s) per tool and format, {records:,} records "
          f"({json_bytes / 1e6:.1f} MB of record JSON), {cores} cores, Azurite in memory")
    # CPU-s per million records first: the headline figure (user+system of the tool's process).
    head = (f"{'format':9} {'tool':14} {'CPU s/M rec':>11} {'records/s':>10} {'MB/s JSON':>10} "
            f"{'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13} {'stored MB':>10}")
    print(head)
    print("-" * len(head))
    dlt_of = {}
    # jsonl first, so that jsonl.zst can be compared with dlt's jsonl.
    for fmt in sorted(dict.fromkeys(r[1] for r in rows), key=lambda f: (f != "jsonl", f)):
        med = {}
        for tool in ("gatelake", "before", "dlt"):
            rs = [r for r in rows if r[0] == tool and r[1] == fmt]
            if not rs:
                continue
            m = lambda i: statistics.median(float(r[i]) for r in rs)
            wall, cpu = m(3), m(4)
            med[tool] = (cpu / records * 1e6, records / wall, json_bytes / wall / 1e6, wall, cpu,
                         m(5) / 1024, m(8) / 1e6)
            v = med[tool]
            print(f"{fmt:9} {tool:14} {v[0]:>11.2f} {v[1]:>10.0f} {v[2]:>10.1f} {v[3]:>8.2f} "
                  f"{v[4]:>8.2f} {v[5]:>13.1f} {v[6]:>10.2f}")
        if "before" in med and "gatelake" in med:
            g, b = med.pop("gatelake"), med.pop("before")
            r = [a / c if c else float("nan") for a, c in zip(g, b)]
            print(f"{fmt:9} {'gatelake/before':14} {r[0]:>10.3f}x {r[1]:>9.2f}x {r[2]:>9.2f}x "
                  f"{r[3]:>7.2f}x {r[4]:>7.2f}x {r[5]:>12.2f}x {r[6]:>9.2f}x")
            med["gatelake"] = g
        if fmt == "jsonl.zst" and "gatelake" in med and "jsonl" in dlt_of:
            # dlt has no zstd: against its jsonl (gzip), the nearest thing it writes.
            med["dlt"] = dlt_of["jsonl"]
            print(f"{fmt:9} {'(dlt: jsonl.gz)':14}")
        if "dlt" in med and fmt != "jsonl.zst":
            dlt_of[fmt] = med["dlt"]
        if len(med) == 2:
            g, d = med["gatelake"], med["dlt"]
            r = [a / b if b else float("nan") for a, b in zip(g, d)]
            print(f"{fmt:9} {'gatelake/dlt':14} {r[0]:>10.3f}x {r[1]:>9.1f}x {r[2]:>9.1f}x "
                  f"{r[3]:>7.2f}x {r[4]:>7.2f}x {r[5]:>12.2f}x {r[6]:>9.2f}x")
    # gatelake against its slowest stage, each stage measured alone in this invocation.
    stages = [r for r in all_stages if r[-1] == shape]
    if not stages:
        continue
    stage_rate = {}
    for name in dict.fromkeys(r[0] for r in stages):
        rs = [r for r in stages if r[0] == name]
        wall = statistics.median(float(r[4]) for r in rs)
        stage_rate[name] = (records / wall, statistics.median(float(r[6]) for r in rs) / wall)
    print(f"stage limits (medians of {runs} run(s) each, records/s): " + ", ".join(
        f"{name} {rate:,.0f}" for name, (rate, _) in stage_rate.items()))
    encode_of = {"jsonl": "encode jsonl.gz", "jsonl.zst": "encode jsonl.zst", "parquet": "encode parquet"}
    print("cursor chain = fetch+gunzip then extract in series (the next cursor is in the page): "
          "the ceiling of a sequential cursor pull")
    print(f"{'format':10} {'gatelake rec/s':>15} {'slowest stage':>18} {'its rec/s':>10} {'fraction':>9}")
    for fmt in dict.fromkeys(r[1] for r in rows):
        g = [r for r in rows if r[0] == "gatelake" and r[1] == fmt]
        if not g or encode_of.get(fmt) not in stage_rate:
            continue
        rate = records / statistics.median(float(r[3]) for r in g)
        limits = {k: stage_rate[k][0] for k in ("fetch+gunzip", "extract", encode_of[fmt]) if k in stage_rate}
        if "fetch+gunzip" in limits and "extract" in limits:
            # Cursor pagination cannot ask for page N+1 before page N is parsed (the cursor is
            # in it), so fetching and parsing run in series: 1 / (1/fetch + 1/extract).
            limits["cursor chain"] = 1 / (1 / limits["fetch+gunzip"] + 1 / limits["extract"])
        if "upload" in stage_rate:
            # The upload stage puts the jsonl.gz chunks; in records/s of this format it is its
            # bytes/s over this format's stored bytes per record.
            stored_per_record = statistics.median(float(r[8]) for r in g) / records
            limits["upload"] = stage_rate["upload"][1] / stored_per_record
        slowest = min(limits, key=limits.get)
        print(f"{fmt:10} {rate:>15,.0f} {slowest:>18} {limits[slowest]:>10,.0f} {rate / limits[slowest]:>8.0%}")
print("\nCPU s/M rec: user+system CPU seconds of the tool's process per million records, the "
      "headline (lower is better; steadier than wall time while other processes share the "
      "cores). records/s and MB/s: higher is faster; wall, CPU, RSS: lower is better. Wall and "
      "CPU are the whole process (start-up, imports, upload) from /usr/bin/time; every run's "
      "records were counted back from Azurite.")
PY
