//! The Azure side of a plan: the Entra app's federated credential for a CI job's OIDC token
//! (`az ad app federated-credential create`'s parameters), and the Storage Blob Data
//! Contributor role assignment on exactly the destination's container — the narrowest scope
//! Azure RBAC offers for blob data (it has no folder scope; the job's folder is noted).

use super::{FederatedPlan, StoragePlan, BLOB_DATA_CONTRIBUTOR, ENTRA_EXCHANGE_AUDIENCE};
use serde_json::{json, Value};

/// The federated credential's parameters.
pub fn federated_credential(f: &FederatedPlan) -> Value {
    json!({
        "name": f.name,
        "issuer": f.issuer,
        "subject": f.subject,
        "audiences": [ENTRA_EXCHANGE_AUDIENCE],
        "description": "gatelake: a CI job signs in with its OIDC token, no client secret",
    })
}

/// The container's resource id below the account's (`{account id}/blobServices/…`), with
/// the account's id as given or as a `$STORAGE_ACCOUNT_ID` the commands look up.
pub fn container_scope(s: &StoragePlan) -> String {
    let account = s
        .account_resource_id
        .clone()
        .unwrap_or_else(|| "$STORAGE_ACCOUNT_ID".to_string());
    format!(
        "{}/blobServices/default/containers/{}",
        account.trim_end_matches('/'),
        s.container
    )
}

/// The role assignment, as `az role assignment create` takes it.
pub fn role_assignment(s: &StoragePlan) -> Value {
    json!({
        "role": "Storage Blob Data Contributor",
        "roleDefinitionId": BLOB_DATA_CONTRIBUTOR,
        "principalId": s.principal_id,
        "principalType": "ServicePrincipal",
        "scope": container_scope(s),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_assignment_is_on_the_container() {
        let mut s = StoragePlan {
            account: "lake".into(),
            container: "raw".into(),
            prefix: "orders".into(),
            principal_id: Some("oid-1".into()),
            account_resource_id: None,
        };
        let a = role_assignment(&s);
        assert_eq!(
            a["scope"],
            "$STORAGE_ACCOUNT_ID/blobServices/default/containers/raw"
        );
        assert_eq!(a["roleDefinitionId"], BLOB_DATA_CONTRIBUTOR);
        s.account_resource_id = Some(
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/lake"
                .into(),
        );
        assert_eq!(
            container_scope(&s),
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/lake/blobServices/default/containers/raw"
        );
    }
}
