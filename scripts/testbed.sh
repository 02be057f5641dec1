#!/usr/bin/env bash
# The test bed's components, sourced by scripts/test.sh and bench/*.sh: each component has an
# install_X / start_X pair; start_X picks a free loopback port, records the PID so that
# stop_all (run on exit) stops exactly what was started, and exports the address the tests
# read (GATELAKE_TEST_*). Everything installed lives in .testbed/ (git-ignored).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$ROOT/.testbed/logs"
TESTBED="$ROOT/.testbed"
LOGS="$TESTBED/logs"
# Azurite 3.37 is the first release with Put Block From URL (server-side copy, issue 16). It
# is installed in a folder of its own, so an older Azurite in .testbed/node_modules (shared by
# worktrees) is never replaced while another test run is using it.
AZURITE_MIN_VERSION="3.37.0"
AZURITE_HOME="$TESTBED/azurite-${AZURITE_MIN_VERSION%.*}"
STARTUP_TIMEOUT_SECS="${GATELAKE_TESTBED_TIMEOUT:-60}"

# PIDs of everything started here, stopped on exit.
PIDS=()

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

stop_all() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [[ -n "$pid" ]] || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            # Give it a moment to exit cleanly, then insist.
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
}

on_exit() {
    local rc=$?
    stop_all
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

require() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is required but not on PATH"
}

# A free TCP port on 127.0.0.1, chosen by the OS (other processes may hold the usual ports).
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Wait until something accepts TCP connections on 127.0.0.1:$1, or fail with the log $3.
wait_for_port() {
    local port="$1" pid="$2" logfile="$3" name="$4"
    local deadline=$((SECONDS + STARTUP_TIMEOUT_SECS))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during start-up; its log ($logfile):"
            cat "$logfile" >&2 || true
            die "$name did not start"
        fi
        if python3 -c 'import socket, sys
s = socket.socket(); s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$port"; then
            return 0
        fi
        sleep 0.25
    done
    log "$name did not accept connections on 127.0.0.1:$port within ${STARTUP_TIMEOUT_SECS}s; its log ($logfile):"
    cat "$logfile" >&2 || true
    die "$name did not start"
}

# --- Azurite (Azure Storage emulator, npm package `azurite`) --------------------------------

install_azurite() {
    local pkg="$AZURITE_HOME/node_modules/azurite/package.json"
    if [[ -f "$pkg" ]] && node -e '
        const have = require(process.argv[1]).version.split(".").map(Number);
        const want = process.argv[2].split(".").map(Number);
        const newer = have[0] === want[0] &&
            (have[1] > want[1] || (have[1] === want[1] && have[2] >= want[2]));
        process.exit(newer ? 0 : 1);' "$pkg" "$AZURITE_MIN_VERSION"; then
        return 0
    fi
    require npm
    log "installing azurite@^$AZURITE_MIN_VERSION into ${AZURITE_HOME#"$ROOT/"}/"
    mkdir -p "$AZURITE_HOME"
    CI=true npm install --prefix "$AZURITE_HOME" --no-audit --no-fund --loglevel=error \
        "azurite@^$AZURITE_MIN_VERSION" </dev/null >"$LOGS/npm-azurite.log" 2>&1 || {
        cat "$LOGS/npm-azurite.log" >&2
        die "npm install azurite failed"
    }
}

# Before a timed bench run: wait (at most LIMIT seconds, default 30) until the machine's CPUs
# have been all but idle for a second (everything else together busy for under 0.15 of a
# core), so that a run is not measured beside what the run before it left behind: Azurite
# still digesting another tool's writes or a deletion. On two cores, a run measured beside
# such leftovers took 10-20% more CPU seconds than the same run alone (bench/README.md, issue
# 20). Gives up with a note after LIMIT seconds, and measures anyway.
wait_for_idle() {
    local limit="${1:-30}" cores start
    cores=$(nproc)
    start=$SECONDS
    local -a a b
    while ((SECONDS - start < limit)); do
        read -r -a a </proc/stat
        sleep 1
        read -r -a b </proc/stat
        # cpu user nice system idle iowait irq softirq steal ...: busy is user..system plus
        # irq and softirq; the total adds idle and iowait (steal is another guest's).
        local busy=$(((b[1] + b[2] + b[3] + b[6] + b[7]) - (a[1] + a[2] + a[3] + a[6] + a[7])))
        local total=$((busy + (b[4] + b[5]) - (a[4] + a[5])))
        ((total > 0 && busy * cores * 100 < 15 * total)) && return 0
    done
    log "the machine did not settle within ${limit}s (other processes busy); measuring anyway"
}

# Start target/release/examples/bench_api with the given arguments (NAME names its log files
# under $LOGS), wait until it prints its URL, and set BENCH_API_URL and BENCH_API_PID; it is
# stopped on exit with everything else in PIDS.
start_bench_api() {
    local name="$1" deadline
    shift
    rm -f "$LOGS/$name-url"
    "$ROOT/target/release/examples/bench_api" "$@" </dev/null >"$LOGS/$name-url" 2>"$LOGS/$name.log" &
    BENCH_API_PID=$!
    PIDS+=("$BENCH_API_PID")
    deadline=$((SECONDS + STARTUP_TIMEOUT_SECS))
    until [[ -s "$LOGS/$name-url" ]]; do
        kill -0 "$BENCH_API_PID" 2>/dev/null || { cat "$LOGS/$name.log" >&2; die "the bench API exited"; }
        ((SECONDS < deadline)) || die "the bench API did not start; see $LOGS/$name.log"
        sleep 0.1
    done
    BENCH_API_URL="$(head -1 "$LOGS/$name-url")"
}

# In memory by default; AZURITE_LOCATION=DIR keeps blobs in DIR instead (bench/copy.sh: its
# gigabytes outgrow the in-memory store, which frees a deleted blob's bytes only minutes later).
start_azurite() {
    local port logfile pid persistence=(--inMemoryPersistence)
    [[ -n "${AZURITE_LOCATION:-}" ]] && persistence=(--location "$AZURITE_LOCATION")
    port="$(free_port)"
    logfile="$LOGS/azurite.log"
    # Run from .testbed/ so nothing Azurite might write lands in the work tree.
    (cd "$TESTBED" && exec "$AZURITE_HOME/node_modules/.bin/azurite-blob" \
        --blobHost 127.0.0.1 --blobPort "$port" \
        "${persistence[@]}" --disableTelemetry --skipApiVersionCheck --loose \
        </dev/null >"$logfile" 2>&1) &
    pid=$!
    PIDS+=("$pid")
    wait_for_port "$port" "$pid" "$logfile" "Azurite"
    export GATELAKE_TEST_AZURITE_BLOB="http://127.0.0.1:$port/devstoreaccount1"
    log "Azurite (pid $pid) at $GATELAKE_TEST_AZURITE_BLOB"
}


# The benchmarks' credentials for one Azurite at BLOB_URL (its development account): the
# connection string for gatelake and bench/objects.py, and rclone's remotes `az:` (Azurite)
# and `s3src:` (an S3 server whose endpoint the caller sets in RCLONE_CONFIG_S3SRC_ENDPOINT),
# from the environment only: rclone's config file is an empty one in DIR.
export_bench_remotes() {
    local blob="$1" dir="$2"
    local key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=$blob"
    export RCLONE_CONFIG="$dir/rclone.conf"
    : >"$RCLONE_CONFIG"
    export RCLONE_CONFIG_AZ_TYPE=azureblob RCLONE_CONFIG_AZ_ACCOUNT=devstoreaccount1 \
        RCLONE_CONFIG_AZ_KEY="$key" RCLONE_CONFIG_AZ_ENDPOINT="$blob"
    export RCLONE_CONFIG_S3SRC_TYPE=s3 RCLONE_CONFIG_S3SRC_PROVIDER=Other \
        RCLONE_CONFIG_S3SRC_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
        RCLONE_CONFIG_S3SRC_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
        RCLONE_CONFIG_S3SRC_REGION="$AWS_REGION" RCLONE_CONFIG_S3SRC_FORCE_PATH_STYLE=true
}

# --- Azurite over HTTPS with OAuth (bearer tokens to storage checked for real) ---------------
# `--oauth basic` requires HTTPS. The certificate comes from tests (a throwaway CA made by
# scripts/make_test_ca.py): .testbed/tls/{ca.pem,server.pem,server-key.pem}. Azurite checks a
# bearer token's iss, aud, nbf and exp (not its signature).

make_test_ca() {
    if [[ -f "$TESTBED/tls/ca.pem" && -f "$TESTBED/tls/server.pem" && -f "$TESTBED/tls/server-key.pem" ]]; then
        return 0
    fi
    ensure_venv
    log "making a throwaway test CA in .testbed/tls/"
    "$TESTBED/venv/bin/python" "$ROOT/scripts/make_test_ca.py" "$TESTBED/tls" >"$LOGS/test-ca.log" 2>&1 || {
        cat "$LOGS/test-ca.log" >&2
        die "could not make the test CA"
    }
}

start_azurite_oauth() {
    local port logfile pid
    make_test_ca
    port="$(free_port)"
    logfile="$LOGS/azurite-oauth.log"
    (cd "$TESTBED" && exec "$AZURITE_HOME/node_modules/.bin/azurite-blob" \
        --blobHost 127.0.0.1 --blobPort "$port" \
        --inMemoryPersistence --disableTelemetry --skipApiVersionCheck --loose \
        --oauth basic --cert "$TESTBED/tls/server.pem" --key "$TESTBED/tls/server-key.pem" \
        </dev/null >"$logfile" 2>&1) &
    pid=$!
    PIDS+=("$pid")
    wait_for_port "$port" "$pid" "$logfile" "Azurite (HTTPS, OAuth)"
    export GATELAKE_TEST_AZURITE_OAUTH_BLOB="https://127.0.0.1:$port/devstoreaccount1"
    export GATELAKE_TEST_CA="$TESTBED/tls/ca.pem"
    export GATELAKE_TEST_TLS_DIR="$TESTBED/tls"
    log "Azurite with OAuth (pid $pid) at $GATELAKE_TEST_AZURITE_OAUTH_BLOB"
}

# --- moto (AWS emulator, PyPI `moto[server]`): STS for AssumeRoleWithWebIdentity ----------------

ensure_venv() {
    if [[ -x "$TESTBED/venv/bin/python" ]]; then
        return 0
    fi
    log "creating a Python virtual environment in .testbed/venv"
    python3 -m venv "$TESTBED/venv" >"$LOGS/venv.log" 2>&1 || {
        cat "$LOGS/venv.log" >&2
        die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    }
}

install_moto() {
    ensure_venv
    # crc32c: without it moto answers x-amz-checksum-crc32c with a CRC32 (its fallback).
    if [[ -x "$TESTBED/venv/bin/moto_server" ]] && "$TESTBED/venv/bin/python" -c 'import moto, cryptography, crc32c' 2>/dev/null; then
        return 0
    fi
    log "installing moto[server] and crc32c into .testbed/venv"
    "$TESTBED/venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' crc32c \
        </dev/null >"$LOGS/pip-moto.log" 2>&1 || {
        cat "$LOGS/pip-moto.log" >&2
        die "pip install moto[server] failed"
    }
}

start_moto() {
    local port logfile pid
    port="$(free_port)"
    logfile="$LOGS/moto.log"
    (cd "$TESTBED" && exec "$TESTBED/venv/bin/moto_server" -H 127.0.0.1 -p "$port" \
        </dev/null >"$logfile" 2>&1) &
    pid=$!
    PIDS+=("$pid")
    wait_for_port "$port" "$pid" "$logfile" "moto"
    export GATELAKE_TEST_MOTO="http://127.0.0.1:$port"
    log "moto (pid $pid) at $GATELAKE_TEST_MOTO"
}

# --- Python venv with pyarrow (reads the parquet files gatelake writes) and jsonschema ------

# The venv (ensure_venv above) is shared with moto's server: only missing packages are
# installed.
VENV="$TESTBED/venv"

install_pyarrow() {
    ensure_venv
    # jsonschema validates the manifests the e2e tests write (docs/manifest.schema.json).
    if ! "$VENV/bin/python" -c 'import jsonschema' >/dev/null 2>&1; then
        log "installing jsonschema into .testbed/venv"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check jsonschema \
            </dev/null >"$LOGS/pip-jsonschema.log" 2>&1 || {
            cat "$LOGS/pip-jsonschema.log" >&2
            die "pip install jsonschema failed"
        }
    fi
    if ! "$VENV/bin/python" -c 'import pyarrow, pyarrow.parquet' >/dev/null 2>&1; then
        log "installing pyarrow into .testbed/venv"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check pyarrow \
            </dev/null >"$LOGS/pip-pyarrow.log" 2>&1 || {
            cat "$LOGS/pip-pyarrow.log" >&2
            die "pip install pyarrow failed"
        }
    fi
    export GATELAKE_TEST_PYTHON="$VENV/bin/python"
    log "pyarrow $("$GATELAKE_TEST_PYTHON" -c 'import pyarrow; print(pyarrow.__version__)') at $GATELAKE_TEST_PYTHON"
}

# --- pyspark (the Spark engine of issue 17: python/gatelake/spark.py in local mode) -----------
# pyspark from PyPI runs Spark in local mode inside the test bed's venv; it needs a Java runtime
# (17 or newer for pyspark 4). Installed into the shared venv only when missing.

PYSPARK_REQUIREMENT='pyspark>=3.5,<5'

# The Java major version on PATH (or JAVA_HOME), or nothing when there is no java.
java_major() {
    local java="java"
    [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]] && java="$JAVA_HOME/bin/java"
    command -v "$java" >/dev/null 2>&1 || return 0
    "$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' | head -1
}

require_java17() {
    local major
    major="$(java_major)"
    [[ -n "$major" ]] ||
        die "Spark needs Java 17 or newer and there is no java on PATH: install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; elsewhere any JDK/JRE 17+), or set JAVA_HOME"
    ((major >= 17)) ||
        die "Spark needs Java 17 or newer, java on PATH is $major: install openjdk-17-jre-headless (Debian/Ubuntu) and put it first on PATH, or set JAVA_HOME"
}

install_pyspark() {
    ensure_venv
    require_java17
    if ! "$VENV/bin/python" -c 'import pyspark' >/dev/null 2>&1; then
        log "installing $PYSPARK_REQUIREMENT into .testbed/venv (a few hundred MB, once)"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PYSPARK_REQUIREMENT" \
            </dev/null >"$LOGS/pip-pyspark.log" 2>&1 || {
            cat "$LOGS/pip-pyspark.log" >&2
            die "pip install $PYSPARK_REQUIREMENT failed"
        }
    fi
    export GATELAKE_TEST_PYSPARK_PYTHON="$VENV/bin/python"
    log "pyspark $("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)') on Java $(java_major)"
}

# --- the release artefacts (scripts/dist.sh), built and proved beside the test suite ----------
# A dev-profile wheel (the release workflow builds --profile release): the same packaging and
# the same checks at a third of the build time. GATELAKE_TEST_DIST=skip leaves it out.

start_dist_check() {
    DIST_PID=""
    if [[ "${GATELAKE_TEST_DIST:-}" == skip ]]; then
        log "GATELAKE_TEST_DIST=skip: the dist check does not run"
        return 0
    fi
    DIST_STARTED=$SECONDS
    bash "$ROOT/scripts/dist.sh" --profile dev --check </dev/null >"$LOGS/dist.log" 2>&1 &
    DIST_PID=$!
    PIDS+=("$DIST_PID")
    log "dist check (pid $DIST_PID) started beside the tests; its log: $LOGS/dist.log"
}

wait_dist_check() {
    [[ -n "${DIST_PID:-}" ]] || return 0
    local rc=0
    wait "$DIST_PID" || rc=$?
    if ((rc)); then
        log "dist check FAILED (exit $rc) after $((SECONDS - DIST_STARTED))s; its log:"
        cat "$LOGS/dist.log" >&2
    else
        grep -E 'GLIBC_|auditwheel: .*tag|start-up|built in|bytes;|pytest|passed' "$LOGS/dist.log" >&2 || true
        log "dist check passed ($((SECONDS - DIST_STARTED))s since it started)"
    fi
    return "$rc"
}
