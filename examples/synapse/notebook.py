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
# The wheel brings the binary and the `gatelake` module (or add gatelake to the workspace's
# packages, and drop the %pip line):
%pip install gatelake==0.1.0

import json

import gatelake
from notebookutils import mssparkutils

API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders"
LAKE = "abfss://raw@myaccount.dfs.core.windows.net/orders"
ROLE = "arn:aws:iam::123456789012:role/gatelake-notebook"

token = mssparkutils.credentials.getToken("Storage")
# `gatelake pull --output json` with these flags; a failed run raises gatelake.GatelakeError,
# which carries the exit code, its meaning and the run's JSON summary.
summary = gatelake.pull(
    url=API_URL, dest=LAKE,
    paginate="cursor", cursor_path="next_cursor", records="items",
    api_auth="iam", aws_role_arn=ROLE, aws_session_duration="15m",
    web_identity="azure", web_identity_audience="https://storage.azure.com",
    azure_token_stdin=True, stdin=token,
)
print(json.dumps(summary))
