#!/usr/bin/env bash
# AWS side of the trust: an IAM OIDC provider for the token's issuer, and a role whose trust
# policy names the exact audience and subject, allowed to invoke the API. Run once, as an
# admin, with the AWS CLI. Replace the placeholders (<TENANT_ID>, 123456789012, …).
set -euo pipefail
TENANT_ID="<TENANT_ID>"

# Entra (v1 tokens are issued by https://sts.windows.net/<tenant>/ — the trailing slash matters).
aws iam create-open-id-connect-provider \
    --url "https://sts.windows.net/${TENANT_ID}/" \
    --client-id-list "api://AzureADTokenExchange"

# GitHub Actions (only for the CI path).
aws iam create-open-id-connect-provider \
    --url "https://token.actions.githubusercontent.com" \
    --client-id-list "sts.amazonaws.com"

aws iam create-role --role-name gatelake-reader \
    --max-session-duration 43200 \
    --assume-role-policy-document file://trust-policy-entra.json   # or trust-policy-github.json
aws iam put-role-policy --role-name gatelake-reader \
    --policy-name invoke-orders --policy-document file://invoke-policy.json
