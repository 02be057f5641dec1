"""The shared core of the notebook-utility stand-ins (see ../README.md).

Like the real utilities, ``getToken`` only knows a fixed table of audience keys: a key that is
not in the table, or a URL, fails the way the real one does, so a recipe that needs any other
audience fails here too. Tokens come from the local managed identity stand-in
(``tests/support/identity.rs``, App Service style ``GET ?resource=…`` with
``X-IDENTITY-HEADER``), at ``GATELAKE_TEST_NOTEBOOK_IDENTITY_ENDPOINT`` with the header in
``GATELAKE_TEST_NOTEBOOK_IDENTITY_HEADER`` — deliberately not ``IDENTITY_ENDPOINT``, because a
Spark notebook's own processes cannot reach a managed identity endpoint, and gatelake must not
find one.
"""

import json
import os
import ssl
import urllib.parse
import urllib.request

# mssparkutils.credentials.getToken in Azure Synapse: the audience keys its documentation lists
# (matched without regard to case, as the service does). "Audience" (the resolve type) is left
# out: its resource is not documented.
SYNAPSE_AUDIENCES = {
    "storage": "https://storage.azure.com",
    "dw": "https://database.windows.net",
    "azuremanagement": "https://management.azure.com",
    "datalakestore": "https://datalake.azure.net",
    "azureossdb": "https://ossrdbms-aad.database.windows.net",
    "synapse": "https://dev.azuresynapse.net",
    "adf": "https://datafactory.azure.net",
}

# notebookutils.credentials.getToken in Microsoft Fabric: storage, pbi, keyvault, kusto.
FABRIC_AUDIENCES = {
    "storage": "https://storage.azure.com",
    "pbi": "https://analysis.windows.net/powerbi/api",
    "keyvault": "https://vault.azure.net",
    "kusto": "https://kusto.kusto.windows.net",
}


class Py4JJavaError(Exception):
    """What a failed call into the notebook's JVM-side utilities surfaces as."""


def _flavor():
    flavor = os.environ.get("GATELAKE_TEST_NOTEBOOK_FLAVOR")
    if flavor not in ("synapse", "fabric"):
        raise RuntimeError(
            "GATELAKE_TEST_NOTEBOOK_FLAVOR must be 'synapse' or 'fabric' (set by the test)"
        )
    return flavor


def resource_for(audience):
    """The resource behind an audience key, or the error the real utility raises."""
    table = SYNAPSE_AUDIENCES if _flavor() == "synapse" else FABRIC_AUDIENCES
    if "://" in audience or "/" in audience:
        raise Py4JJavaError(
            "An error occurred while calling getToken: 400: Audience has invalid characters"
        )
    resource = table.get(audience.lower())
    if resource is None:
        raise Py4JJavaError(
            f"An error occurred while calling getToken: '{audience}' is not a recognized alias"
        )
    return resource


def get_token(audience):
    resource = resource_for(audience)
    endpoint = os.environ["GATELAKE_TEST_NOTEBOOK_IDENTITY_ENDPOINT"]
    header = os.environ["GATELAKE_TEST_NOTEBOOK_IDENTITY_HEADER"]
    query = urllib.parse.urlencode({"api-version": "2019-08-01", "resource": resource})
    request = urllib.request.Request(
        f"{endpoint}?{query}", headers={"X-IDENTITY-HEADER": header}
    )
    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"))
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        return json.load(response)["access_token"]


def is_valid_token(token):
    import base64
    import time

    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims.get("exp", 0) > time.time()
    except (IndexError, ValueError):
        return False
