#!/usr/bin/env bash
# Azure side of the trust, with the Azure CLI. Pick the identity that runs gatelake:
#  - a managed identity (Synapse workspace, VM, App Service): nothing to create; note its
#    object id for the AWS trust policy's `sub`;
#  - an app registration with a federated credential (Kubernetes workload identity, or any
#    OIDC issuer): below.
# Then grant the identity data access to the lake (RBAC; allow a few minutes to apply).
set -euo pipefail
APP_NAME="gatelake"
STORAGE_ACCOUNT="mylake"
RESOURCE_GROUP="analytics"
CONTAINER="raw"

APP_ID="$(az ad app create --display-name "$APP_NAME" --query appId -o tsv)"
az ad sp create --id "$APP_ID" >/dev/null
# Workload identity: trust the cluster's service account token (see federated-credential.json).
az ad app federated-credential create --id "$APP_ID" --parameters @federated-credential.json

SP_OBJECT_ID="$(az ad sp show --id "$APP_ID" --query id -o tsv)"
SCOPE="$(az storage account show -n "$STORAGE_ACCOUNT" -g "$RESOURCE_GROUP" --query id -o tsv)/blobServices/default/containers/$CONTAINER"
az role assignment create --assignee-object-id "$SP_OBJECT_ID" \
    --assignee-principal-type ServicePrincipal \
    --role "Storage Blob Data Contributor" --scope "$SCOPE"

echo "AZURE_CLIENT_ID=$APP_ID"
echo "object id for the AWS trust policy's sub: $SP_OBJECT_ID"
