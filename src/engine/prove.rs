//! Prove every hop's identity before anything is written: an Entra token for each hop that
//! needs one, the AWS credentials (the web-identity exchange, or the standard chain) — before
//! the job's lock is taken, a container created or a checkpoint written, so a misconfigured
//! identity leaves nothing behind (exit 3, the destination untouched). What the proof learns
//! (Azure source, object id and tenant per hop; the assumed role's ARN and session name) goes
//! into the manifest; never a token.

use super::settings::IdentitySettings;
use crate::identity::aws::{AssumedRoleHandle, AwsCredentials};
use crate::identity::azure::{AzureHop, HopIdentities};
use crate::identity::claims::TokenClaims;
use crate::load::manifest::ManifestIdentity;
use std::sync::Arc;
use std::time::SystemTime;

/// An identity failure: a message with the fix (the binary exits with 3). It lives here, at
/// the bottom of the identity code, because the proof is where most of them are found;
/// `identity.rs`, which builds the identities and then calls the proof, uses it from here.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IdentityFailure(pub String);

/// The role of a hop in the manifest.
fn manifest_role(hop: AzureHop) -> &'static str {
    match hop {
        AzureHop::Storage => "storage",
        AzureHop::Aws => "aws",
        AzureHop::Api => "api",
    }
}

/// What the AWS side of a run holds, to prove it.
pub struct AwsToProve<'a> {
    pub credentials: &'a Arc<AwsCredentials>,
    /// The web-identity exchange's view of who it became (`None`: the standard chain).
    pub assumed: Option<&'a AssumedRoleHandle>,
}

/// Get a token for every Azure hop in `wanted` and the AWS credentials; the first failure is
/// returned with the hop it belongs to.
pub async fn prove(
    settings: &IdentitySettings,
    wanted: &[(AzureHop, String)],
    azure: &HopIdentities,
    aws: Option<AwsToProve<'_>>,
) -> Result<Vec<ManifestIdentity>, IdentityFailure> {
    let mut out: Vec<ManifestIdentity> = Vec::new();
    for (hop, audience) in wanted {
        let Some(id) = azure.get(*hop) else {
            let why = azure.error(*hop).unwrap_or("not resolved");
            return Err(IdentityFailure(format!(
                "Azure identity for {}: {why}",
                hop.describe()
            )));
        };
        let token = id
            .token_for(audience)
            .await
            .map_err(|e| IdentityFailure(format!("Azure identity for {}: {e}", hop.describe())))?;
        let claims = TokenClaims::of(token.token.secret()).unwrap_or_default();
        out.push(ManifestIdentity {
            role: manifest_role(*hop).into(),
            kind: "entra-token".into(),
            name: claims.app_id.clone().or_else(|| id.client_id.clone()),
            source: Some(id.source.describe().into()),
            object_id: claims.oid,
            tenant: claims.tid.or_else(|| id.tenant.clone()),
            ..Default::default()
        });
    }
    if let Some(aws) = aws {
        aws.credentials
            .get(SystemTime::now())
            .await
            .map_err(|e| IdentityFailure(e.to_string()))?;
        if let (Some(assumed), Some(role)) = (
            aws.assumed.and_then(AssumedRoleHandle::get),
            settings.aws_role.as_ref(),
        ) {
            let entry = match out.iter_mut().find(|i| i.role == "aws") {
                Some(e) => e,
                None => {
                    out.push(ManifestIdentity {
                        role: "aws".into(),
                        source: Some(format!("--web-identity {}", role.web_identity.as_str())),
                        ..Default::default()
                    });
                    let last = out.len() - 1;
                    &mut out[last]
                }
            };
            entry.kind = "sts-web-identity".into();
            entry.name = assumed.arn.clone().or(Some(role.role_arn.clone()));
            entry.role_arn = Some(role.role_arn.clone());
            entry.session_name = Some(assumed.session_name.clone());
            // The API is signed with these credentials: name the role there too.
            match out.iter_mut().find(|i| i.role == "api") {
                Some(api) => api.name = assumed.arn.clone(),
                None => out.push(ManifestIdentity {
                    role: "api".into(),
                    kind: "iam".into(),
                    name: assumed.arn,
                    role_arn: Some(role.role_arn.clone()),
                    ..Default::default()
                }),
            }
        }
    }
    Ok(out)
}
