#!/usr/bin/env bash
# The servers' side of a copy: how much CPU Azurite and moto spend serving gatelake's copy of
# the same objects as rclone's (bench/copy.sh times the tools; this counts the servers), with
# an optional `perf` profile of Azurite's JavaScript per copy. This is how Azurite's CRC64 of
# every block without Content-MD5 was found (bench/README.md, "What Azurite did with
# gatelake's blocks").
#
#   bench/server_cpu.sh [--count N] [--size BYTES] [--tools "gatelake rclone gatelake rclone"]
#                       [--gatelake PATH] [--perf]
#
# Defaults: 4 objects of 32 MiB, each tool twice, alternating, target/release/gatelake.
# --perf runs Azurite as `node --perf-basic-prof` and records `perf record -g` of it around
# each copy into .testbed/server-cpu/perf-<tool>-<i>.data (read with `perf report -i FILE`).
# Every copy is verified by reading it back (bench/objects.py verify). Needs rclone from
# bench/copy.sh (run `bench/copy.sh --quick` once) and the test bed's Azurite and moto.
set -euo pipefail
# shellcheck source=scripts/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/testbed.sh"

COUNT=4
SIZE=$((32 * 1024 * 1024))
TOOLS="gatelake rclone gatelake rclone"
BIN="$ROOT/target/release/gatelake"
PERF=0
while (($#)); do
    case "$1" in
        --count) COUNT="$2"; shift 2 ;;
        --size) SIZE="$2"; shift 2 ;;
        --tools) TOOLS="$2"; shift 2 ;;
        --gatelake) BIN="$2"; shift 2 ;;
        --perf) PERF=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (use --count N, --size BYTES, --tools LIST, --gatelake PATH, --perf)" ;;
    esac
done
RCLONE="$TESTBED/rclone/bin/rclone"
PY="$TESTBED/venv/bin/python"
[[ -x "$BIN" ]] || die "no gatelake at $BIN (cargo build --release, or --gatelake PATH)"
[[ -x "$RCLONE" ]] || die "no rclone in .testbed/rclone (run bench/copy.sh --quick once)"
((PERF == 0)) || command -v perf >/dev/null || die "--perf needs perf (apt-get install linux-perf)"
install_azurite
install_moto
WORK="$TESTBED/server-cpu"
rm -rf "$WORK"
mkdir -p "$WORK"

export AWS_ACCESS_KEY_ID=benchaccesskey AWS_SECRET_ACCESS_KEY=benchsecretkey AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
# Azurite started here rather than by start_azurite: node itself, so that --perf-basic-prof
# can name its JavaScript, and so that its PID is node's.
port="$(free_port)"
node_flags=()
((PERF)) && node_flags=(--perf-basic-prof)
(cd "$TESTBED" && exec node "${node_flags[@]}" "$AZURITE_HOME/node_modules/azurite/dist/src/blob/main.js" \
    --blobHost 127.0.0.1 --blobPort "$port" --inMemoryPersistence --disableTelemetry \
    --skipApiVersionCheck --loose </dev/null >"$WORK/azurite.log" 2>&1) &
AZURITE_PID=$!
PIDS+=("$AZURITE_PID")
wait_for_port "$port" "$AZURITE_PID" "$WORK/azurite.log" "Azurite"
AZ="http://127.0.0.1:$port/devstoreaccount1"
start_moto
MOTO_PID="${PIDS[${#PIDS[@]}-1]}"

export_bench_remotes "$AZ" "$WORK"
export RCLONE_CONFIG_S3SRC_ENDPOINT="$GATELAKE_TEST_MOTO"
"$PY" -c 'import os; from azure.storage.blob import BlobServiceClient as B
c = B.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]).get_container_client("bench")
c.exists() or c.create_container()'
"$PY" "$ROOT/bench/objects.py" put --endpoint "$GATELAKE_TEST_MOTO" --bucket bench --prefix objects \
    --count "$COUNT" --size "$SIZE" --threads 4 --manifest "$WORK/manifest.json"

# CPU seconds (user + system) a process has used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

printf '%-9s %3s %8s %9s %11s %8s %9s\n' tool run "wall s" "tool cpu" "azurite cpu" "moto cpu" "rss MiB"
i=0
for tool in $TOOLS; do
    i=$((i + 1))
    dest="runs/$tool-$i"
    a0="$(cpu_of "$AZURITE_PID")" m0="$(cpu_of "$MOTO_PID")"
    if ((PERF)); then
        perf record -F 499 -g -p "$AZURITE_PID" -o "$WORK/perf-$tool-$i.data" >/dev/null 2>&1 &
        perf_pid=$!
        sleep 0.5
    fi
    case "$tool" in
        gatelake)
            AWS_ENDPOINT_URL_S3="$GATELAKE_TEST_MOTO" /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" \
                "$BIN" copy s3://bench/objects/ "$AZ/bench/$dest" --copy-mode client --concurrency 8 \
                --create-container --output json --progress none >"$WORK/$tool-$i.out" 2>"$WORK/$tool-$i.err" ||
                { tail -20 "$WORK/$tool-$i.err" >&2; die "gatelake's copy failed"; } ;;
        rclone)
            /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$RCLONE" copy s3src:bench/objects "az:bench/$dest" \
                --transfers 8 --checkers 16 >"$WORK/$tool-$i.out" 2>"$WORK/$tool-$i.err" ||
                { tail -20 "$WORK/$tool-$i.err" >&2; die "rclone's copy failed"; } ;;
        *) die "unknown tool $tool (gatelake, rclone)" ;;
    esac
    a1="$(cpu_of "$AZURITE_PID")" m1="$(cpu_of "$MOTO_PID")"
    if ((PERF)); then
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
    fi
    read -r wall user sys rss <"$WORK/time"
    printf '%-9s %3s %8s %9.2f %11.2f %8.2f %9.1f\n' "$tool" "$i" "$wall" "$(echo "$user + $sys" | bc)" \
        "$(echo "$a1 - $a0" | bc)" "$(echo "$m1 - $m0" | bc)" "$(echo "$rss / 1024" | bc -l)"
    "$PY" "$ROOT/bench/objects.py" verify --container bench --prefix "$dest" --manifest "$WORK/manifest.json" \
        >"$WORK/verify.json" || die "$tool's copy does not match the source: $(cat "$WORK/verify.json")"
    "$PY" "$ROOT/bench/objects.py" delete --container bench --prefix "$dest"
done
