# A Synapse notebook cell (PySpark) that backfills a year of orders with 16 workers at once:
# the Spark pool's executors run them, one Spark task per gatelake worker (README, "Scaling
# out"). The pull is split into daily windows (--window*); every worker claims windows by lease
# in the lake, and the last one to finish writes the manifest, load.sql and _SUCCESS once.
# Spark's task retries and speculative copies are harmless: a retried task is one more worker,
# resuming a dead one's windows from their checkpoints once its leases expire.
#
# Identity as in notebook.py: ONE storage token (mssparkutils.credentials.getToken only offers
# fixed audiences) serves the lake and, as the web identity, AWS
# (examples/aws/trust-policy-notebook.json). It travels to the executors inside the Spark task
# and reaches each worker on stdin, never on a command line. A storage token lives about an
# hour: split a longer backfill into runs of less than that.
# The wheel must be on the executors too: %pip install in the session does that (or add
# gatelake to the workspace's packages and drop the %pip line).
%pip install gatelake==0.1.0

import json

from gatelake.spark import run_on_spark
from notebookutils import mssparkutils

API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders"
LAKE = "abfss://raw@myaccount.dfs.core.windows.net/orders_backfill"
ROLE = "arn:aws:iam::123456789012:role/gatelake-notebook"
START, END, WINDOW = "2025-01-01", "2026-01-01", "1d"   # a year, one partition per day

token = mssparkutils.credentials.getToken("Storage")
result = run_on_spark(
    spark, workers=16,
    url=API_URL, dest=LAKE,
    paginate="cursor", cursor_path="next_cursor", records="items",
    window_start=START, window_end=END, window=WINDOW, window_params="from,to",
    api_auth="iam", aws_role_arn=ROLE, aws_session_duration="1h",
    web_identity="azure", web_identity_audience="https://storage.azure.com",
    azure_token_stdin=True, stdin=token,
)
# run_key, run_id, committed, rows, partitions, and each worker's own summary.
print(json.dumps({k: result[k] for k in ("run_id", "committed", "rows", "partitions")}))
