#!/usr/bin/env bash
# A gatelake that fails once (tests/spark_scale_out.rs): the first invocation (the one that
# creates the folder $GATELAKE_TEST_FAIL_ONCE_MARKER, atomically) starts the real binary
# ($GATELAKE_TEST_REAL_BINARY), lets it work for $GATELAKE_TEST_FAIL_AFTER seconds and kills
# it with SIGKILL, as a lost executor would, then exits 137 so that its Spark task fails and is
# retried. Every other invocation is the real binary.
set -u
if mkdir "$GATELAKE_TEST_FAIL_ONCE_MARKER" 2>/dev/null; then
    "$GATELAKE_TEST_REAL_BINARY" "$@" &
    pid=$!
    sleep "$GATELAKE_TEST_FAIL_AFTER"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "fail_once.sh: killed gatelake (pid $pid) after ${GATELAKE_TEST_FAIL_AFTER}s" >&2
    exit 137
fi
exec "$GATELAKE_TEST_REAL_BINARY" "$@"
