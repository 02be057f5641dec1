"""Azurite helpers for bench/compare.sh, run with .testbed/venv's Python (azure-storage-blob
and pyarrow come with dlt[az,parquet]). Connection from AZURE_STORAGE_CONNECTION_STRING.

    python bench/blobs.py count CONTAINER PREFIX   # records in *.jsonl.gz/.zst / *.parquet under PREFIX
    python bench/blobs.py delete CONTAINER PREFIX  # delete every blob under PREFIX

`count` reads every data file back from storage (gunzip and count lines; parquet footers'
row counts), independently of what either tool reports, and prints
{"rows": N, "files": F, "bytes": B, "kinds": [...]} (B: stored bytes of the data files;
kinds: jsonl, jsonl.gz or jsonl.zst, by content, and parquet/<column codecs>).
"""

import gzip
import io
import json
import os
import sys

from azure.storage.blob import ContainerClient


def container(name: str) -> ContainerClient:
    return ContainerClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"], container_name=name
    )


def count(name: str, prefix: str) -> None:
    import pyarrow.parquet as pq

    c = container(name)
    rows = files = stored = 0
    kinds = set()
    for blob in c.list_blobs(name_starts_with=prefix):
        # gatelake's own files (`_manifest.json`, `_lineage.jsonl.gz`, `_SUCCESS`, `_state/`)
        # are not data: a lineage file has a line per page, which counted as records.
        if any(part.startswith("_") for part in blob.name.split("/")):
            continue
        if blob.name.endswith(".jsonl.zst"):
            import zstandard

            data = c.download_blob(blob.name).readall()
            if data[:4] != b"\x28\xb5\x2f\xfd":
                sys.exit(f"{blob.name}: not zstd")
            kinds.add("jsonl.zst")
            # Every frame of the file (gatelake writes one per 4 MiB block).
            reader = zstandard.ZstdDecompressor().stream_reader(
                io.BytesIO(data), read_across_frames=True
            )
            data = reader.readall()
            rows += sum(1 for line in data.split(b"\n") if line.strip())
        elif blob.name.endswith(".jsonl.gz") or blob.name.endswith(".jsonl"):
            data = c.download_blob(blob.name).readall()
            # By content, not by name: a gzip member starts with 1f 8b.
            gz = data[:2] == b"\x1f\x8b"
            kinds.add("jsonl.gz" if gz else "jsonl")
            if gz:
                data = gzip.decompress(data)
            rows += sum(1 for line in data.split(b"\n") if line.strip())
        elif blob.name.endswith(".parquet"):
            data = c.download_blob(blob.name).readall()
            meta = pq.ParquetFile(io.BytesIO(data)).metadata
            rows += meta.num_rows
            codecs = {
                meta.row_group(g).column(k).compression
                for g in range(meta.num_row_groups)
                for k in range(meta.num_columns)
            }
            kinds.add("parquet/" + "+".join(sorted(codecs)).lower())
        else:
            continue
        files += 1
        stored += blob.size
    print(json.dumps({"rows": rows, "files": files, "bytes": stored, "kinds": sorted(kinds)}))


def delete(name: str, prefix: str) -> None:
    c = container(name)
    for blob in list(c.list_blobs(name_starts_with=prefix)):
        c.delete_blob(blob.name)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("count", "delete"):
        sys.exit(__doc__)
    {"count": count, "delete": delete}[sys.argv[1]](sys.argv[2], sys.argv[3])
