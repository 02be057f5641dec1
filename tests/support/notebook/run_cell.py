"""Runs one notebook cell file as a Synapse/Fabric notebook would: with ``spark`` (the
stand-in of spark_standin.py) and ``mssparkutils`` / ``notebookutils`` (this folder's stand-ins)
already defined as globals. Usage: run_cell.py CELL.py

A line of the cell that is a ``%pip …`` magic runs ``pip …`` where the line stands, as IPython
does (it runs ``python -m pip …``), except that the ``pip`` found on PATH runs: the recipe tests
put the stand-in of tests/support/ci_bin/pip there, which installs gatelake from this test run.
Any other ``%`` magic fails, as the cell would fail outside a notebook."""

import importlib
import runpy
import shlex
import subprocess
import sys
import tempfile

import mssparkutils
import notebookutils
from spark_standin import SparkSession


def pip_magic(line):
    done = subprocess.run(["pip", *shlex.split(line)])
    if done.returncode != 0:
        raise RuntimeError(f"%pip {line} failed with exit code {done.returncode}")
    importlib.invalidate_caches()


def without_magics(source):
    out = []
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith("%pip "):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}__pip_magic__({stripped[len('%pip '):]!r})")
        elif stripped.startswith("%"):
            sys.exit(f"run_cell.py: line {number}: only the %pip magic is stood in for: {line}")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def session():
    """The notebook's ``spark``: the stand-in, or with GATELAKE_TEST_NOTEBOOK_SPARK=pyspark a
    real Spark session in local mode (pyspark from the test bed's venv; 4 threads, 3 attempts
    per task, bound to loopback) for cells that run Spark tasks (scale_out_notebook.py)."""
    import os

    if os.environ.get("GATELAKE_TEST_NOTEBOOK_SPARK") != "pyspark":
        return SparkSession()
    from pyspark.sql import SparkSession as RealSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    real = (
        RealSession.builder.master("local[4,3]")
        .appName("gatelake-notebook-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    real.sparkContext.setLogLevel("ERROR")
    return real


with open(sys.argv[1]) as f:
    cell = without_magics(f.read())
with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
    f.write(cell)
try:
    runpy.run_path(f.name, init_globals={
        "spark": session(),
        "mssparkutils": mssparkutils,
        "notebookutils": notebookutils,
        "__pip_magic__": pip_magic,
    }, run_name="__main__")
finally:
    import os
    os.remove(f.name)
