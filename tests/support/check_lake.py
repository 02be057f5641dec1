"""Reads the chunks gatelake wrote with independent readers (pyarrow for parquet, Python's csv
module for csv) and compares every value with the records the test server served.

Usage: check_lake.py SPEC.json, where SPEC is
  {"expected": [records], "parquet": [paths], "csv": [paths], "types": {column: arrow type}}
Prints "ok <rows>" or fails with an AssertionError naming the row and column.
"""
import csv
import datetime
import gzip
import io
import json
import sys

import pyarrow.parquet as pq


def instant(text):
    text = text.replace("Z", "+00:00")
    if "T" not in text:  # csv: UTC "YYYY-MM-DD hh:mm:ss.ffffff"
        return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime.fromisoformat(text)


def is_timestamp(value):
    if not isinstance(value, str) or len(value) < 20 or value[10] != "T":
        return False
    try:
        instant(value)
        return True
    except ValueError:
        return False


def same_parquet(want, got):
    if want is None:
        return got is None
    if isinstance(want, (dict, list)):
        return isinstance(got, str) and json.loads(got) == want
    if is_timestamp(want):
        return got == instant(want)
    if isinstance(want, bool) or isinstance(want, str):
        return got == want
    if isinstance(want, int):
        return type(got) is int and got == want
    return isinstance(got, float) and got == float(want)


def same_csv(want, got):
    if want is None:
        return got == ""  # csv cannot tell null from the empty string
    if isinstance(want, (dict, list)):
        return json.loads(got) == want
    if is_timestamp(want):
        return instant(got) == instant(want)
    if isinstance(want, bool):
        return got == ("true" if want else "false")
    if isinstance(want, int):
        return int(got) == want
    if isinstance(want, float):
        return float(got) == want
    return got == want


def check(rows, expected, same, what):
    assert len(rows) == len(expected), f"{what}: {len(rows)} rows, served {len(expected)}"
    for i, (row, want) in enumerate(zip(rows, expected)):
        for key, value in want.items():
            assert key in row, f"{what} row {i}: no column {key!r} in {sorted(row)}"
            assert same(value, row[key]), f"{what} row {i} column {key!r}: served {value!r}, read {row[key]!r}"


def main():
    spec = json.load(open(sys.argv[1], encoding="utf-8"))
    expected = spec["expected"]
    if spec.get("parquet"):
        tables = [pq.read_table(p) for p in spec["parquet"]]
        for t in tables:
            types = {f.name: str(f.type) for f in t.schema}
            for column, want in spec.get("types", {}).items():
                assert types.get(column) == want, f"parquet column {column!r} is {types.get(column)}, documented {want}"
        rows = [r for t in tables for r in t.to_pylist()]
        check(rows, expected, same_parquet, "parquet")
    if spec.get("csv"):
        rows = []
        for p in spec["csv"]:
            raw = open(p, "rb").read()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            rows.extend(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
        check(rows, expected, same_csv, "csv")
    print(f"ok {len(expected)}")


if __name__ == "__main__":
    main()
