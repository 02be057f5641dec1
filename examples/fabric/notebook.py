# A Microsoft Fabric notebook cell (PySpark or Python) that pulls the orders API into ADLS Gen2
# with no stored secret.
#
# notebookutils.credentials.getToken only knows the audience keys "storage", "pbi", "keyvault"
# and "kusto", so ONE storage token serves both hops, exactly as in the Synapse recipe
# (examples/synapse/notebook.py; README, "In a Synapse or Fabric notebook"). Fabric notebooks
# run as the signed-in user (by hand) or the notebook's owner (scheduled): the AWS trust
# policy's `sub` names that identity.
# The token is handed over in a file only this user can read (mkstemp creates it 0600), which
# gatelake re-reads on every use, and removed afterwards.
import json
import os
import subprocess
import tempfile

import notebookutils

API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders"
LAKE = "abfss://raw@myaccount.dfs.core.windows.net/orders"
ROLE = "arn:aws:iam::123456789012:role/gatelake-notebook"

fd, token_file = tempfile.mkstemp(prefix="gatelake-token-")
try:
    with os.fdopen(fd, "w") as f:
        f.write(notebookutils.credentials.getToken("storage"))
    done = subprocess.run(
        [
            "gatelake", "pull", "--url", API_URL, "--dest", LAKE,
            "--paginate", "cursor", "--cursor-path", "next_cursor", "--records", "items",
            "--api-auth", "iam", "--aws-role-arn", ROLE, "--aws-session-duration", "15m",
            "--web-identity", "azure", "--web-identity-audience", "https://storage.azure.com",
            "--azure-token-file", token_file, "--output", "json", "--progress", "none",
        ],
        capture_output=True, text=True,
    )
finally:
    os.remove(token_file)
summary = json.loads(done.stdout)  # one JSON object, also when the run failed
if done.returncode != 0:
    raise RuntimeError(f"gatelake exited {done.returncode}: {summary.get('error')}")
print(json.dumps(summary))
