"""A stand-in for the notebook's ``spark`` session, for cells that only read files into a
DataFrame, count it and append it to a table (``examples/synapse_notebook.py``). Files are read
for real with pyarrow — parquet, JSON lines and CSV, gzip- or zstd-compressed by extension — so
a cell that lists the wrong files, or files that do not parse, fails here as in Spark.
``saveAsTable`` appends the rows to a JSON file named by $GATELAKE_TEST_SPARK_TABLES
({table: [rows appended, …]}) instead of a metastore. Nothing else of Spark exists."""

import io
import json
import os

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq


def _open(path):
    raw = open(path, "rb").read()
    if path.endswith(".gz"):
        import gzip

        return gzip.decompress(raw)
    if path.endswith(".zst"):
        with pa.input_stream(pa.BufferReader(raw), compression="zstd") as s:
            return s.read()
    return raw


def _paths(args):
    out = []
    for a in args:
        out.extend(a if isinstance(a, (list, tuple)) else [a])
    if not out:
        raise ValueError("no paths given")
    return out


class DataFrame:
    def __init__(self, table):
        self._table = table

    def count(self):
        return self._table.num_rows

    @property
    def write(self):
        return _Writer(self)


class _Writer:
    def __init__(self, df):
        self._df = df
        self._mode = "error"

    def mode(self, mode):
        self._mode = mode
        return self

    def saveAsTable(self, name):  # noqa: N802 (Spark's name)
        path = os.environ["GATELAKE_TEST_SPARK_TABLES"]
        tables = json.load(open(path)) if os.path.exists(path) else {}
        if name in tables and self._mode != "append":
            raise RuntimeError(f"table {name} already exists (mode {self._mode})")
        tables.setdefault(name, []).append(self._df.count())
        json.dump(tables, open(path, "w"))


class _Reader:
    def __init__(self):
        self._options = {}

    def option(self, key, value):
        self._options[key] = value
        return self

    def parquet(self, *paths):
        return DataFrame(pa.concat_tables([pq.read_table(p) for p in _paths(paths)], promote_options="default"))

    def json(self, paths):
        tables = [pajson.read_json(io.BytesIO(_open(p))) for p in _paths([paths])]
        return DataFrame(pa.concat_tables(tables, promote_options="default"))

    def csv(self, paths):
        header = str(self._options.get("header", False)).lower() == "true"
        opts = pacsv.ReadOptions(autogenerate_column_names=not header)
        parse = pacsv.ParseOptions(newlines_in_values=True)
        tables = [pacsv.read_csv(io.BytesIO(_open(p)), read_options=opts, parse_options=parse) for p in _paths([paths])]
        return DataFrame(pa.concat_tables(tables, promote_options="default"))


class SparkSession:
    @property
    def read(self):
        return _Reader()
