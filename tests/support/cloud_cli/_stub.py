"""Stand-ins for the `aws` and `az` CLIs, for running examples/aws/setup.sh and
examples/azure/setup.sh as written (tests/recipes_setup.rs), and `az login` plus the
`az account get-access-token` that gatelake's Azure CLI credential runs (tests/recipes_shell.rs:
the token comes from the local managed identity stand-in at $GATELAKE_TEST_AZ_TOKEN_ENDPOINT,
header $GATELAKE_TEST_AZ_TOKEN_HEADER, and is refused until `az login` ran, as the real CLI
refuses). Each call is appended to
$GATELAKE_TEST_CLI_LOG as one JSON line {"cli", "args", "cwd", "documents"}; a `file://PATH` or
`@PATH` argument must name a readable JSON file (relative to the caller's directory, as the
real CLIs read it) and an inline policy document must be JSON — both are recorded parsed under
"documents". Queries the scripts read back get fixed answers; a command neither CLI has in this
table fails like an unknown command does (exit 2 with usage on stderr).
"""

import json
import os
import sys

ACCOUNT = os.environ.get("GATELAKE_TEST_AWS_ACCOUNT", "210987654321")
EXISTING_PROVIDERS = set(filter(None, os.environ.get("GATELAKE_TEST_AWS_EXISTING_PROVIDERS", "").split(",")))
APP_ID = "0a1b2c3d-0000-4000-8000-00000000a99a"
SP_OBJECT_ID = "5e6f7a8b-0000-4000-8000-00000000b0b0"
USER_OBJECT_ID = "9c8d7e6f-0000-4000-8000-00000000c0c0"
TENANT = "72f988bf-0000-4000-8000-000000000001"


def documents(args):
    docs = {}
    for i, a in enumerate(args):
        path = None
        if a.startswith("file://"):
            path = a[len("file://"):]
        elif a.startswith("@"):
            path = a[1:]
        elif a.lstrip().startswith("{"):
            try:
                docs[args[i - 1] if i else str(i)] = json.loads(a)
            except ValueError as e:
                sys.exit(f"{CLI}: argument {i} is not valid JSON: {e}")
            continue
        if path is not None:
            try:
                with open(path) as f:
                    docs[args[i - 1] if i else str(i)] = json.load(f)
            except (OSError, ValueError) as e:
                sys.exit(f"{CLI}: cannot read {a}: {e}")
    return docs


def opt(args, name):
    return args[args.index(name) + 1] if name in args else None


def aws(args):
    cmd = args[:2]
    if cmd == ["sts", "get-caller-identity"]:
        return ACCOUNT if opt(args, "--query") == "Account" else json.dumps({"Account": ACCOUNT})
    if cmd == ["iam", "get-open-id-connect-provider"]:
        if opt(args, "--open-id-connect-provider-arn") in EXISTING_PROVIDERS:
            return "{}"
        print("An error occurred (NoSuchEntity) when calling the GetOpenIDConnectProvider operation", file=sys.stderr)
        sys.exit(254)
    if cmd in (["iam", "create-open-id-connect-provider"], ["iam", "add-client-id-to-open-id-connect-provider"],
               ["iam", "create-role"], ["iam", "put-role-policy"]):
        return "{}"
    usage(args)


def az(args):
    joined = " ".join(a for a in args if not a.startswith("-"))
    query = opt(args, "--query")
    if joined.startswith("ad app create"):
        return APP_ID if query == "appId" else json.dumps({"appId": APP_ID})
    if joined.startswith("ad sp create") or joined.startswith("ad app federated-credential create"):
        return "{}"
    if joined.startswith("ad sp show"):
        return SP_OBJECT_ID if query == "id" else json.dumps({"id": SP_OBJECT_ID})
    if joined.startswith("ad signed-in-user show"):
        return USER_OBJECT_ID
    if joined.startswith("login"):
        open(LOGIN_MARK, "w").close()
        return json.dumps([{"tenantId": TENANT, "isDefault": True, "state": "Enabled"}])
    if joined.startswith("account get-access-token"):
        if not os.path.exists(LOGIN_MARK):
            print("ERROR: Please run 'az login' to setup account.", file=sys.stderr)
            sys.exit(1)
        return access_token(opt(args, "--scope"))
    if joined.startswith("account show"):
        return TENANT
    if joined.startswith("storage container-rm create") or joined.startswith("role assignment create"):
        return "{}"
    if joined.startswith("storage account show"):
        name, group = opt(args, "-n"), opt(args, "-g")
        return f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}"
    usage(args)


def access_token(scope):
    import ssl
    import urllib.parse
    import urllib.request

    resource = scope[: -len("/.default")] if scope.endswith("/.default") else scope
    query = urllib.parse.urlencode({"api-version": "2019-08-01", "resource": resource})
    request = urllib.request.Request(
        f"{os.environ['GATELAKE_TEST_AZ_TOKEN_ENDPOINT']}?{query}",
        headers={"X-IDENTITY-HEADER": os.environ["GATELAKE_TEST_AZ_TOKEN_HEADER"]},
    )
    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"))
    with urllib.request.urlopen(request, context=context, timeout=30) as r:
        answer = json.load(r)
    exp = int(answer["expires_on"])
    return json.dumps({"accessToken": answer["access_token"], "expires_on": exp,
                       "subscription": "00000000-0000-0000-0000-000000000000",
                       "tenant": TENANT, "tokenType": "Bearer"})


def usage(args):
    print(f"{CLI}: '{' '.join(args)}' is not a command this stand-in knows", file=sys.stderr)
    sys.exit(2)


CLI = sys.argv[1] if len(sys.argv) > 1 else "?"
LOGIN_MARK = os.environ.get("GATELAKE_TEST_CLI_LOG", "/nonexistent") + ".az-login"
if __name__ == "__main__":
    args = sys.argv[2:]
    docs = documents(args)
    with open(os.environ["GATELAKE_TEST_CLI_LOG"], "a") as log:
        log.write(json.dumps({"cli": CLI, "args": args, "cwd": os.getcwd(), "documents": docs}) + "\n")
    out = aws(args) if CLI == "aws" else az(args)
    print(out)
