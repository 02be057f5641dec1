"""Runs gatelake workers as Spark tasks with python/gatelake/spark.py, in Spark's local mode
(pyspark from PyPI, installed into the test bed's venv by scripts/testbed.sh), for
tests/spark_scale_out.rs. Usage: run_workers.py SETTINGS.json

SETTINGS: {"workers": N, "master": "local[4,3]", "binary": PATH, "flags": {...}, "env": {...}}
- `master`: local[THREADS,MAX_FAILURES]: in local mode a failed task is retried only when the
  master says so (spark.task.maxFailures does not apply).
- `binary`: what every task runs (the binary under test, or tests/support/spark/fail_once.sh
  in front of it).

Spark binds the loopback interface only. The last line on stdout is run_on_spark's result as
JSON, or {"error": ..., "type": ...} (and exit 1) when it raised.
"""

import json
import os
import sys

from pyspark.sql import SparkSession

from gatelake.spark import run_on_spark

settings = json.load(open(sys.argv[1]))
os.environ["PYSPARK_PYTHON"] = sys.executable
spark = (
    SparkSession.builder.master(settings.get("master", "local[4,3]"))
    .appName("gatelake-scale-out-test")
    .config("spark.driver.host", "127.0.0.1")
    .config("spark.driver.bindAddress", "127.0.0.1")
    .config("spark.ui.enabled", "false")
    .config("spark.ui.showConsoleProgress", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
try:
    result = run_on_spark(
        spark,
        workers=settings["workers"],
        binary=settings["binary"],
        env=settings.get("env"),
        **settings["flags"],
    )
    print(json.dumps(result), flush=True)
except Exception as e:  # the test reads what went wrong
    print(json.dumps({"error": str(e)[-4000:], "type": type(e).__name__}), flush=True)
    sys.exit(1)
finally:
    spark.stop()
