# A Synapse (Spark) notebook cell that loads exactly one gatelake run: it reads the run's
# _manifest.json, checks that _SUCCESS exists, and reads the files the manifest lists (never a
# folder listing, so a half-written later run or a stray file is never picked up).
import json

lake = "abfss://raw@myaccount.dfs.core.windows.net/orders"   # the job's --dest
run = None                                                   # None: the newest completed run

if run is None:
    runs = [f.name.rstrip("/") for f in mssparkutils.fs.ls(lake) if f.isDir]
    run = max(r for r in runs if mssparkutils.fs.exists(f"{lake}/{r}/_SUCCESS"))
manifest = json.loads(mssparkutils.fs.head(f"{lake}/{run}/_manifest.json", 100 * 1024 * 1024))

paths = [f"{lake}/{f['path']}" for f in manifest["files"]]
if manifest["format"] == "parquet":
    df = spark.read.parquet(*paths)
elif manifest["format"] == "csv":
    df = spark.read.option("header", True).option("multiLine", True).option("escape", '"').csv(paths)
else:
    df = spark.read.json(paths)

assert df.count() == manifest["totals"]["rows"], "row count differs from the manifest"
for change in manifest.get("schema_changes", []):
    print("schema change:", change)
df.write.mode("append").saveAsTable("raw.orders")
