# A Synapse notebook cell (PySpark) that pulls the orders API into the lake with no stored secret.
#
# A Synapse notebook gets tokens only from mssparkutils.credentials.getToken, for its fixed
# audience keys ("Storage", "DW", "AzureManagement", "DataLakeStore", "AzureOSSDB", "Synapse",
# "ADF"), and cannot reach a managed identity endpoint itself. So ONE storage token serves both
# hops (README, "In a Synapse or Fabric notebook"):
#   - the lake: the token's audience is https://storage.azure.com;
#   - AWS: the same token is the web identity, for an IAM OIDC provider for
#     https://sts.windows.net/<tenant>/ whose client id is https://storage.azure.com, and a role
#     whose trust policy names the identity's object id (examples/aws/trust-policy-notebook.json).
# Whose token it is: the workspace's managed identity when a pipeline runs the notebook, the
# signed-in user when you run it by hand -- the trust policy's `sub` must name that identity.
# The token goes in on stdin, never as an argument (arguments are visible to every process).
import json
import subprocess

from notebookutils import mssparkutils

API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders"
LAKE = "abfss://raw@myaccount.dfs.core.windows.net/orders"
ROLE = "arn:aws:iam::123456789012:role/gatelake-notebook"

token = mssparkutils.credentials.getToken("Storage")
done = subprocess.run(
    [
        "gatelake", "pull", "--url", API_URL, "--dest", LAKE,
        "--paginate", "cursor", "--cursor-path", "next_cursor", "--records", "items",
        "--api-auth", "iam", "--aws-role-arn", ROLE, "--aws-session-duration", "15m",
        "--web-identity", "azure", "--web-identity-audience", "https://storage.azure.com",
        "--azure-token-stdin", "--output", "json", "--progress", "none",
    ],
    input=token, capture_output=True, text=True,
)
summary = json.loads(done.stdout)  # one JSON object, also when the run failed
if done.returncode != 0:
    raise RuntimeError(f"gatelake exited {done.returncode}: {summary.get('error')}")
print(json.dumps(summary))
