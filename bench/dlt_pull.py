"""The dlt side of bench/compare.sh: one pull of the bench API into Azurite with dlt.

dlt's `rest_api` source (cursor paginator: JSON path `next_cursor`, sent back as `?cursor=`)
reads every page of `<base>/cursor`, one table (`orders`, `max_table_nesting=0`, so the nested
`customer` object stays one JSON column as in gatelake), into dlt's `filesystem` destination on
Azure Blob Storage (Azurite): jsonl (gzip, dlt's default for jsonl) or parquet.

    python bench/dlt_pull.py --url http://127.0.0.1:PORT --format jsonl|parquet \
        --bucket-url az://CONTAINER/PREFIX --pipelines-dir DIR

Azure settings come from the environment: AZURE_STORAGE_CONNECTION_STRING (Azurite's
account name, key and BlobEndpoint). dlt needs an account name and key in its credentials;
the connection string, passed to adlfs as a filesystem kwarg, supplies the custom endpoint
(adlfs would otherwise build `https://<account>.blob.core.windows.net`).

Prints one JSON line on stdout: {"rows": N, "load_id": ..., "seconds": ...}. Everything else
(dlt's defaults for workers, buffer sizes and file rotation) is left as dlt ships it.
"""

import argparse
import json
import os
import sys
import time


def parse_connection_string(cs: str) -> dict:
    parts = dict(p.split("=", 1) for p in cs.split(";") if "=" in p)
    for key in ("AccountName", "AccountKey", "BlobEndpoint"):
        if key not in parts:
            sys.exit(f"AZURE_STORAGE_CONNECTION_STRING has no {key}")
    return parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the bench API's base URL")
    ap.add_argument("--format", choices=["jsonl", "parquet"], required=True)
    ap.add_argument("--bucket-url", required=True, help="az://container/prefix")
    ap.add_argument("--pipelines-dir", required=True, help="dlt's local working directory")
    ap.add_argument("--pipeline-name", default="bench_dlt")
    ap.add_argument("--dataset", default="bench")
    args = ap.parse_args()

    started = time.monotonic()
    # No anonymous usage telemetry (dlt's default is on): the bench talks to loopback only.
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if not conn:
        sys.exit("AZURE_STORAGE_CONNECTION_STRING is not set")
    parts = parse_connection_string(conn)

    import dlt
    from dlt.common.configuration.specs import AzureCredentials
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": args.url.rstrip("/") + "/",
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "next_cursor",
                    "cursor_param": "cursor",
                },
            },
            "resources": [
                {
                    "name": "orders",
                    "endpoint": {"path": "cursor", "data_selector": "items"},
                    "write_disposition": "append",
                }
            ],
        },
        name="bench_api",
        max_table_nesting=0,
    )

    credentials = AzureCredentials()
    credentials.azure_storage_account_name = parts["AccountName"]
    credentials.azure_storage_account_key = parts["AccountKey"]
    destination = dlt.destinations.filesystem(
        bucket_url=args.bucket_url,
        credentials=credentials,
        # adlfs prefers a connection string over account name + key: this is how the custom
        # (Azurite) endpoint gets in.
        kwargs={"connection_string": conn},
    )
    pipeline = dlt.pipeline(
        pipeline_name=args.pipeline_name,
        pipelines_dir=args.pipelines_dir,
        destination=destination,
        dataset_name=args.dataset,
        progress=None,
    )
    info = pipeline.run(source, loader_file_format=args.format)
    info.raise_on_failed_jobs()
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("orders", 0)
    print(
        json.dumps(
            {
                "rows": rows,
                "load_id": info.loads_ids[-1] if info.loads_ids else None,
                "seconds": round(time.monotonic() - started, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
