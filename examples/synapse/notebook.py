# A Synapse notebook cell: the workspace's managed identity gets a token for storage and
# hands it to gatelake on stdin (never on the command line). For the AWS hop, give the
# workspace identity's object id to the role's trust policy (examples/aws/trust-policy-entra.json)
# and let gatelake ask for the exchange token itself: inside Synapse, IDENTITY_ENDPOINT /
# IDENTITY_HEADER are set, so `--azure-auth auto` finds the managed identity.
import json
import subprocess

from notebookutils import mssparkutils

token = mssparkutils.credentials.getToken("storage")
done = subprocess.run(
    [
        "gatelake", "pull", "--job", "orders", "--config", "/synfs/jobs/gatelake.toml",
        "--azure-token-stdin", "--output", "json", "--progress", "none",
    ],
    input=token, capture_output=True, text=True,
)
summary = json.loads(done.stdout)
print(summary["status"], summary.get("rows"), summary.get("manifest_url"))
if done.returncode != 0:
    raise RuntimeError(summary.get("error"))
