"""Runs one notebook cell file as a Synapse/Fabric notebook would: with ``spark`` (the
stand-in of spark_standin.py) and ``mssparkutils`` / ``notebookutils`` (this folder's stand-ins)
already defined as globals. Usage: run_cell.py CELL.py"""

import runpy
import sys

import mssparkutils
import notebookutils
from spark_standin import SparkSession

runpy.run_path(sys.argv[1], init_globals={
    "spark": SparkSession(),
    "mssparkutils": mssparkutils,
    "notebookutils": notebookutils,
}, run_name="__main__")
