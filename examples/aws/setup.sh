#!/usr/bin/env bash
# AWS side of the trust, with the AWS CLI, run once by an admin: an IAM OIDC provider for the
# caller's token issuer (listing the audience its tokens carry), the role gatelake assumes,
# trusting exactly that issuer, audience and subject, and permission to GET the API's /orders
# paths only. Usage: setup.sh CALLER, CALLER one of
#   entra         an Entra identity (managed/workload identity, service principal) asking for
#                 api://AzureADTokenExchange              trust-policy-entra.json
#   notebook      a Synapse/Fabric notebook's storage token (README: the notebook recipe)
#                                                          trust-policy-notebook.json
#   github        GitHub Actions, audience sts.amazonaws.com  trust-policy-github.json
#   gitlab        GitLab CI, audience api://AzureADTokenExchange  trust-policy-gitlab.json
#   azure-devops  an Azure DevOps service connection       trust-policy-azure-devops.json
# Fill in the placeholders below and the subject (`sub`) in the trust policy first.
set -euo pipefail
CALLER="${1:?usage: setup.sh entra|notebook|github|gitlab|azure-devops}"
TENANT_ID="<TENANT_ID>"                 # Entra tenant (entra, notebook)
ADO_ORGANIZATION_ID="<ORGANIZATION_ID>" # Azure DevOps organization id (azure-devops)
ROLE="gatelake-reader"
cd "$(dirname "$0")"

case "$CALLER" in
    entra)        ISSUER="https://sts.windows.net/${TENANT_ID}/"; AUDIENCES=("api://AzureADTokenExchange") ;;
    # Storage tokens carry the resource with or without the trailing slash: trust both.
    notebook)     ISSUER="https://sts.windows.net/${TENANT_ID}/"; AUDIENCES=("https://storage.azure.com" "https://storage.azure.com/") ;;
    github)       ISSUER="https://token.actions.githubusercontent.com"; AUDIENCES=("sts.amazonaws.com") ;;
    gitlab)       ISSUER="https://gitlab.com"; AUDIENCES=("api://AzureADTokenExchange") ;;
    azure-devops) ISSUER="https://vstoken.dev.azure.com/${ADO_ORGANIZATION_ID}"; AUDIENCES=("api://AzureADTokenExchange") ;;
    *) echo "setup.sh: unknown caller '$CALLER' (entra, notebook, github, gitlab or azure-devops)" >&2; exit 2 ;;
esac
ACCOUNT="$(aws sts get-caller-identity --query Account --output text)"

# The trust policy with this account, tenant and organization filled in; refuse to create a
# role whose policy still names a placeholder.
TRUST="$(sed -e "s/123456789012/${ACCOUNT}/g" -e "s/<TENANT_ID>/${TENANT_ID}/g" \
    -e "s/<ORGANIZATION_ID>/${ADO_ORGANIZATION_ID}/g" "trust-policy-${CALLER}.json")"
if grep -q '<[A-Z_]*>' <<<"$TRUST"; then
    echo "setup.sh: fill in $(grep -o '<[A-Z_]*>' <<<"$TRUST" | sort -u | tr '\n' ' ')in setup.sh or trust-policy-${CALLER}.json first" >&2
    exit 2
fi

# One provider per issuer: add this caller's audiences when it exists already.
PROVIDER_ARN="arn:aws:iam::${ACCOUNT}:oidc-provider/${ISSUER#https://}"
if aws iam get-open-id-connect-provider --open-id-connect-provider-arn "$PROVIDER_ARN" >/dev/null 2>&1; then
    for audience in "${AUDIENCES[@]}"; do
        aws iam add-client-id-to-open-id-connect-provider \
            --open-id-connect-provider-arn "$PROVIDER_ARN" --client-id "$audience"
    done
else
    aws iam create-open-id-connect-provider --url "$ISSUER" --client-id-list "${AUDIENCES[@]}"
fi

aws iam create-role --role-name "$ROLE" --max-session-duration 43200 \
    --assume-role-policy-document "$TRUST"
aws iam put-role-policy --role-name "$ROLE" \
    --policy-name invoke-orders --policy-document file://invoke-policy.json
echo "GATELAKE_AWS_ROLE_ARN=arn:aws:iam::${ACCOUNT}:role/${ROLE}"
