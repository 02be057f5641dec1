#!/usr/bin/env bash
# Azure side of the trust, with the Azure CLI, run once by an admin: the container gatelake
# writes to, the identity that writes (created here when it is an app registration with a
# federated credential), and its data role on that container (allow a few minutes to apply).
# Usage: setup.sh CALLER [OBJECT_ID], CALLER one of
#   aks           an app with a federated credential for a Kubernetes service account
#                 (federated-credential-aks.json; the pod wiring: examples/kubernetes/)
#   github        an app with a federated credential for the workflow (federated-credential-github.json)
#   gitlab        an app with a federated credential for the job (federated-credential-gitlab.json)
#   identity OBJECT_ID   an identity that exists already: a Synapse workspace's managed identity
#                 (az synapse workspace show -n WS -g RG --query identity.principalId -o tsv),
#                 a VM's, or an Azure DevOps service connection's service principal
#   user          you, signed in to the Azure CLI (notebooks run by hand)
set -euo pipefail
CALLER="${1:?usage: setup.sh aks|github|gitlab|identity OBJECT_ID|user}"
STORAGE_ACCOUNT="mylake"
RESOURCE_GROUP="analytics"
CONTAINER="raw"
APP_NAME="gatelake"
cd "$(dirname "$0")"

# The container gatelake writes into (created through the management plane: an admin needs no
# data role for it).
az storage container-rm create --storage-account "$STORAGE_ACCOUNT" \
    --resource-group "$RESOURCE_GROUP" --name "$CONTAINER" >/dev/null

PRINCIPAL_TYPE="ServicePrincipal"
case "$CALLER" in
    aks|github|gitlab)
        APP_ID="$(az ad app create --display-name "$APP_NAME" --query appId -o tsv)"
        az ad sp create --id "$APP_ID" >/dev/null
        az ad app federated-credential create --id "$APP_ID" \
            --parameters "@federated-credential-${CALLER}.json" >/dev/null
        OBJECT_ID="$(az ad sp show --id "$APP_ID" --query id -o tsv)"
        echo "AZURE_CLIENT_ID=$APP_ID"
        echo "AZURE_TENANT_ID=$(az account show --query tenantId -o tsv)"
        ;;
    identity)
        OBJECT_ID="${2:?usage: setup.sh identity OBJECT_ID (the object id of the identity)}"
        ;;
    user)
        OBJECT_ID="$(az ad signed-in-user show --query id -o tsv)"
        PRINCIPAL_TYPE="User"
        ;;
    *) echo "setup.sh: unknown caller '$CALLER' (aks, github, gitlab, identity or user)" >&2; exit 2 ;;
esac

SCOPE="$(az storage account show -n "$STORAGE_ACCOUNT" -g "$RESOURCE_GROUP" --query id -o tsv)/blobServices/default/containers/$CONTAINER"
az role assignment create --assignee-object-id "$OBJECT_ID" \
    --assignee-principal-type "$PRINCIPAL_TYPE" \
    --role "Storage Blob Data Contributor" --scope "$SCOPE" >/dev/null
echo "object id (the AWS trust policy's sub for Entra tokens of this identity): $OBJECT_ID"
