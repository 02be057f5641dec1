//! A plan in three forms: the JSON documents (one object, for a pipeline or a review tool),
//! the `aws`/`az` commands that create them (a shell script: each document written to a file
//! first, then passed by `file://`/`@`), and a Markdown trust-boundary document for a
//! reviewer, with the same documents and commands inside.

use super::{aws, azure, TrustPlan};
use serde_json::{json, Value};

/// Every document of the plan, by name, with the plan's facts.
pub fn documents(plan: &TrustPlan) -> Value {
    let mut docs = serde_json::Map::new();
    if let Some(role) = complete_role(plan) {
        docs.insert(
            "aws_oidc_provider".into(),
            aws::oidc_provider(&role.trusted),
        );
        docs.insert("aws_trust_policy".into(), aws::trust_policy(role));
    }
    if let Some(api) = &plan.api {
        docs.insert("aws_invoke_policy".into(), aws::invoke_policy(api));
    }
    if let Some(o) = &plan.objects {
        docs.insert("aws_object_read_policy".into(), aws::object_read_policy(o));
    }
    if let Some(f) = &plan.federated {
        docs.insert(
            "azure_federated_credential".into(),
            azure::federated_credential(f),
        );
    }
    if let Some(s) = &plan.storage {
        docs.insert("azure_role_assignment".into(), azure::role_assignment(s));
    }
    json!({
        "status": if plan.unresolved.is_empty() { "planned" } else { "incomplete" },
        "job": plan.job,
        "role": plan.role,
        "api": plan.api,
        "storage": plan.storage,
        "federated": plan.federated,
        "objects": plan.objects,
        "documents": docs,
        "commands": commands(plan),
        "unresolved": plan.unresolved,
    })
}

/// The role, when its trust is known: a policy with an empty issuer or subject is never
/// printed as something to approve (the plan lists what is missing instead).
fn complete_role(plan: &TrustPlan) -> Option<&super::RolePlan> {
    plan.role
        .as_ref()
        .filter(|r| !r.trusted.issuer.is_empty() && !r.trusted.subject.is_empty())
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Single-quote `s` for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `cat > FILE <<'JSON'` … `JSON`: a document written where the next command reads it.
fn write_file(file: &str, v: &Value) -> String {
    format!("cat > {file} <<'JSON'\n{}\nJSON", pretty(v))
}

/// The commands that create the plan's resources, in order, each a shell snippet.
pub fn commands(plan: &TrustPlan) -> Vec<String> {
    let mut out = Vec::new();
    let job = &plan.job;
    if let Some(role) = complete_role(plan) {
        let t = &role.trusted;
        out.push(format!(
            "aws iam create-open-id-connect-provider --url {} --client-id-list {}",
            quote(&t.issuer),
            quote(&t.audience)
        ));
        out.push(write_file("trust-policy.json", &aws::trust_policy(role)));
        out.push(format!(
            "aws iam create-role --role-name {} --max-session-duration {} --assume-role-policy-document file://trust-policy.json",
            quote(&role.role_name),
            role.max_session_seconds.max(3600)
        ));
        if let Some(api) = &plan.api {
            out.push(write_file("invoke-policy.json", &aws::invoke_policy(api)));
            out.push(format!(
                "aws iam put-role-policy --role-name {} --policy-name {} --policy-document file://invoke-policy.json",
                quote(&role.role_name),
                quote(&format!("gatelake-{job}-invoke"))
            ));
        }
        if let Some(o) = &plan.objects {
            out.push(write_file(
                "object-read-policy.json",
                &aws::object_read_policy(o),
            ));
            out.push(format!(
                "aws iam put-role-policy --role-name {} --policy-name {} --policy-document file://object-read-policy.json",
                quote(&role.role_name),
                quote(&format!("gatelake-{job}-read-objects"))
            ));
        }
    }
    if let Some(f) = &plan.federated {
        out.push(write_file(
            "federated-credential.json",
            &azure::federated_credential(f),
        ));
        out.push(format!(
            "az ad app federated-credential create --id {} --parameters @federated-credential.json",
            quote(&f.app_id)
        ));
    }
    if let Some(s) = &plan.storage {
        if s.account_resource_id.is_none() {
            out.push(format!(
                "STORAGE_ACCOUNT_ID=$(az storage account show --name {} --query id --output tsv)",
                quote(&s.account)
            ));
        }
        out.push(format!(
            "az role assignment create --assignee-object-id {} --assignee-principal-type ServicePrincipal --role 'Storage Blob Data Contributor' --scope \"{}\"",
            quote(s.principal_id.as_deref().unwrap_or("<unresolved: --principal-id>")),
            azure::container_scope(s)
        ));
    }
    out
}

/// The commands as one script.
pub fn script(plan: &TrustPlan) -> String {
    let mut s = format!(
        "#!/bin/sh\n# gatelake auth plan: job {}. Review before running; every resource is scoped to this job.\nset -eu\n",
        plan.job
    );
    for c in commands(plan) {
        s.push('\n');
        s.push_str(&c);
        s.push('\n');
    }
    s
}

/// The Markdown trust-boundary document.
pub fn markdown(plan: &TrustPlan) -> String {
    let mut md = format!("# Trust boundaries of gatelake job `{}`\n\n", plan.job);
    md.push_str(
        "This job runs with no standing secret: each hop below trusts a short-lived token for \
         one identity, and each permission is scoped to what this job touches.\n\n",
    );
    md.push_str("| hop | who | trusts / may | scope |\n|---|---|---|---|\n");
    if let Some(r) = complete_role(plan) {
        md.push_str(&format!(
            "| CI/Azure → AWS STS | tokens from `{}` (`{}`) | AssumeRoleWithWebIdentity when `aud` = `{}` and `sub` {} `{}` | role `{}` |\n",
            r.trusted.issuer,
            r.trusted.source,
            r.trusted.audience,
            if aws::subject_operator(&r.trusted.subject) == "StringLike" { "matches" } else { "=" },
            r.trusted.subject,
            r.role_arn
        ));
    }
    if let Some(a) = &plan.api {
        md.push_str(&format!(
            "| AWS → API Gateway | the role | `execute-api:Invoke` | `{}` |\n",
            aws::invoke_arn(a)
        ));
    }
    if let Some(o) = &plan.objects {
        md.push_str(&format!(
            "| AWS → S3 | the role | `s3:GetObject`, `s3:ListBucket` | {} |\n",
            objects_scope(o)
        ));
    }
    if let Some(f) = &plan.federated {
        md.push_str(&format!(
            "| CI → Entra | app `{}` | federated sign-in when `iss` = `{}` and `sub` = `{}` | the app only |\n",
            f.app_id, f.issuer, f.subject
        ));
    }
    if let Some(s) = &plan.storage {
        md.push_str(&format!(
            "| Entra → ADLS Gen2 | object id `{}` | Storage Blob Data Contributor | container `{}` of account `{}` (the job writes under `{}/`) |\n",
            s.principal_id.as_deref().unwrap_or("unresolved"),
            s.container,
            s.account,
            s.prefix
        ));
    }
    if !plan.unresolved.is_empty() {
        md.push_str("\n## Not resolved\n\nThe plan is incomplete until these are supplied:\n\n");
        for u in &plan.unresolved {
            md.push_str(&format!("- {u}\n"));
        }
    }
    let section = |md: &mut String, title: &str, why: &str, v: &Value| {
        md.push_str(&format!(
            "\n## {title}\n\n{why}\n\n```json\n{}\n```\n",
            pretty(v)
        ));
    };
    if let Some(r) = complete_role(plan) {
        section(
            &mut md,
            "AWS: OIDC identity provider",
            &format!(
                "Lets IAM verify tokens signed by `{}` (claims learnt from {}).",
                r.trusted.issuer, r.trusted.learnt_from
            ),
            &aws::oidc_provider(&r.trusted),
        );
        section(
            &mut md,
            "AWS: the role's trust policy",
            "Only this issuer's tokens for this audience and this subject may assume the role; any other subject is refused by STS.",
            &aws::trust_policy(r),
        );
    }
    if let Some(a) = &plan.api {
        section(
            &mut md,
            "AWS: the role's permission",
            &format!("One method ({}) on one path of one stage; other paths, methods and stages are refused by API Gateway. A pagination style that follows links to other paths needs each of them added.", a.method),
            &aws::invoke_policy(a),
        );
    }
    if let Some(o) = &plan.objects {
        section(
            &mut md,
            "AWS: the role's reads of the intermediary bucket",
            &format!(
                "The API names `s3://` objects that the job reads with the role's credentials: {}. Listing is allowed only so that S3 answers a missing key with 404 rather than 403.",
                objects_scope(o)
            ),
            &aws::object_read_policy(o),
        );
    }
    if let Some(f) = &plan.federated {
        section(
            &mut md,
            "Azure: the app's federated credential",
            "The CI job's token signs the app in; there is no client secret to rotate or leak.",
            &azure::federated_credential(f),
        );
    }
    if let Some(s) = &plan.storage {
        section(
            &mut md,
            "Azure: the role assignment",
            "Write access to one container (Azure RBAC has no narrower scope for blob data).",
            &azure::role_assignment(s),
        );
    }
    md.push_str(&format!("\n## Commands\n\n```sh\n{}```\n", script(plan)));
    md
}

/// The buckets and prefix the role may read, for the reader.
fn objects_scope(o: &super::ObjectsPlan) -> String {
    let keys: Vec<String> = o
        .buckets
        .iter()
        .map(|b| format!("`s3://{b}/{}*`", o.prefix))
        .collect();
    keys.join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::*;
    use super::*;

    fn plan() -> TrustPlan {
        TrustPlan {
            job: "orders".into(),
            role: Some(RolePlan {
                role_arn: "arn:aws:iam::123456789012:role/gatelake-orders".into(),
                account: "123456789012".into(),
                role_name: "gatelake-orders".into(),
                max_session_seconds: 3600,
                trusted: TrustedToken {
                    issuer: "https://token.actions.githubusercontent.com".into(),
                    audience: "sts.amazonaws.com".into(),
                    subject: "repo:acme/jobs:ref:refs/heads/main".into(),
                    source: "github".into(),
                    learnt_from: "token".into(),
                },
            }),
            api: Some(ApiPlan {
                region: "us-east-1".into(),
                account: "123456789012".into(),
                api_id: "abc123".into(),
                stage: "prod".into(),
                method: "GET".into(),
                path: "/orders".into(),
            }),
            storage: Some(StoragePlan {
                account: "lake".into(),
                container: "raw".into(),
                prefix: "orders".into(),
                principal_id: Some("0000-oid".into()),
                account_resource_id: None,
            }),
            federated: None,
            objects: None,
            unresolved: Vec::new(),
        }
    }

    #[test]
    fn every_form_carries_every_document() {
        let p = plan();
        let docs = documents(&p);
        assert_eq!(docs["status"], "planned");
        for key in [
            "aws_oidc_provider",
            "aws_trust_policy",
            "aws_invoke_policy",
            "azure_role_assignment",
        ] {
            assert!(docs["documents"].get(key).is_some(), "{key}");
        }
        let sh = script(&p);
        assert!(
            sh.contains("aws iam create-role --role-name 'gatelake-orders'"),
            "{sh}"
        );
        assert!(sh.contains("az storage account show --name 'lake'"), "{sh}");
        assert!(
            sh.contains("$STORAGE_ACCOUNT_ID/blobServices/default/containers/raw"),
            "{sh}"
        );
        let md = markdown(&p);
        assert!(
            md.contains("# Trust boundaries of gatelake job `orders`"),
            "{md}"
        );
        assert!(md.contains("arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/orders"));
        assert!(!md.contains("Not resolved"));
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
