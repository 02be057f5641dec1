# A Microsoft Fabric notebook cell (PySpark or Python) that pulls the orders API into ADLS Gen2
# with no stored secret.
#
# notebookutils.credentials.getToken only knows the audience keys "storage", "pbi", "keyvault"
# and "kusto", so ONE storage token serves both hops, exactly as in the Synapse recipe
# (examples/synapse/notebook.py; README, "In a Synapse or Fabric notebook"). Fabric notebooks
# run as the signed-in user (by hand) or the notebook's owner (scheduled): the AWS trust
# policy's `sub` names that identity.
# The token is handed over in a file only this user can read (mkstemp creates it 0600), which
# gatelake re-reads on every use, and removed afterwards. The wheel brings the binary and the
# `gatelake` module (or add gatelake to the environment's libraries, and drop the %pip line):
%pip install gatelake==0.1.0

import json
import os
import tempfile

import gatelake
import notebookutils

API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders"
LAKE = "abfss://raw@myaccount.dfs.core.windows.net/orders"
ROLE = "arn:aws:iam::123456789012:role/gatelake-notebook"

fd, token_file = tempfile.mkstemp(prefix="gatelake-token-")
try:
    with os.fdopen(fd, "w") as f:
        f.write(notebookutils.credentials.getToken("storage"))
    # A failed run raises gatelake.GatelakeError (exit code, its meaning, the JSON summary).
    summary = gatelake.pull(
        url=API_URL, dest=LAKE,
        paginate="cursor", cursor_path="next_cursor", records="items",
        api_auth="iam", aws_role_arn=ROLE, aws_session_duration="15m",
        web_identity="azure", web_identity_audience="https://storage.azure.com",
        azure_token_file=token_file,
    )
finally:
    os.remove(token_file)
print(json.dumps(summary))
