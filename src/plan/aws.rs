//! The AWS side of a plan, as IAM's own JSON: the OIDC identity provider for the token's
//! issuer, the role's trust policy (only that issuer, only that audience, only that subject),
//! the role's permission to invoke exactly the job's API method and path, and to read the
//! objects of the job's intermediary bucket.

use super::{ApiPlan, ObjectsPlan, RolePlan, TrustedToken};
use serde_json::{json, Map, Value};

/// The issuer as IAM names providers and condition keys: the URL without `https://`.
pub fn provider_host(issuer: &str) -> String {
    issuer
        .strip_prefix("https://")
        .unwrap_or(issuer)
        .to_string()
}

/// The ARN of the IAM OIDC provider for `issuer` in `account`.
pub fn provider_arn(account: &str, issuer: &str) -> String {
    format!(
        "arn:aws:iam::{account}:oidc-provider/{}",
        provider_host(issuer)
    )
}

/// `aws iam create-open-id-connect-provider`'s input: the issuer's URL and the audiences it
/// may issue to the role. (IAM checks the issuer's TLS certificate against trusted CAs, so
/// no thumbprint is pinned.)
pub fn oidc_provider(trusted: &TrustedToken) -> Value {
    json!({
        "Url": trusted.issuer,
        "ClientIDList": [trusted.audience],
    })
}

/// The condition operator a subject needs: `StringLike` when it holds a `*` or `?`.
pub fn subject_operator(subject: &str) -> &'static str {
    if subject.contains(['*', '?']) {
        "StringLike"
    } else {
        "StringEquals"
    }
}

/// The role's trust policy: `sts:AssumeRoleWithWebIdentity` for tokens of this provider
/// whose `aud` and `sub` are the job's.
pub fn trust_policy(role: &RolePlan) -> Value {
    let t = &role.trusted;
    let host = provider_host(&t.issuer);
    let mut conditions: Map<String, Value> = Map::new();
    let mut add = |op: &str, key: String, value: &str| {
        let entry = conditions
            .entry(op.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(key, Value::String(value.to_string()));
        }
    };
    add("StringEquals", format!("{host}:aud"), &t.audience);
    add(
        subject_operator(&t.subject),
        format!("{host}:sub"),
        &t.subject,
    );
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "GatelakeWebIdentity",
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn(&role.account, &t.issuer) },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": conditions,
        }]
    })
}

/// The ARN of one method and path of an API stage.
pub fn invoke_arn(api: &ApiPlan) -> String {
    format!(
        "arn:aws:execute-api:{}:{}:{}/{}/{}/{}",
        api.region,
        api.account,
        api.api_id,
        api.stage,
        api.method,
        api.path.trim_start_matches('/')
    )
}

/// The role's permission policy: `execute-api:Invoke` on exactly the job's method and path.
pub fn invoke_policy(api: &ApiPlan) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "GatelakeInvoke",
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": invoke_arn(api),
        }]
    })
}

/// The role's permission to read the job's objects: `s3:GetObject` on the keys under the
/// prefix of each bucket, and `s3:ListBucket` limited to that prefix (without it S3 answers
/// a missing key with 403 instead of 404).
pub fn object_read_policy(objects: &ObjectsPlan) -> Value {
    let keys: Vec<String> = objects
        .buckets
        .iter()
        .map(|b| format!("arn:aws:s3:::{b}/{}*", objects.prefix))
        .collect();
    let buckets: Vec<String> = objects
        .buckets
        .iter()
        .map(|b| format!("arn:aws:s3:::{b}"))
        .collect();
    let mut list = json!({
        "Sid": "GatelakeListObjects",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": buckets,
    });
    if !objects.prefix.is_empty() {
        list["Condition"] =
            json!({ "StringLike": { "s3:prefix": format!("{}*", objects.prefix) } });
    }
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GatelakeReadObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": keys,
            },
            list,
        ]
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn role(subject: &str) -> RolePlan {
        RolePlan {
            role_arn: "arn:aws:iam::123456789012:role/gatelake".into(),
            account: "123456789012".into(),
            role_name: "gatelake".into(),
            max_session_seconds: 3600,
            trusted: TrustedToken {
                issuer: "https://token.actions.githubusercontent.com".into(),
                audience: "sts.amazonaws.com".into(),
                subject: subject.into(),
                source: "github".into(),
                learnt_from: "token".into(),
            },
        }
    }

    #[test]
    fn trust_policy_names_the_provider_audience_and_subject() {
        let p = trust_policy(&role("repo:acme/jobs:ref:refs/heads/main"));
        let s = &p["Statement"][0];
        assert_eq!(
            s["Principal"]["Federated"],
            "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
        );
        assert_eq!(s["Action"], "sts:AssumeRoleWithWebIdentity");
        let eq = &s["Condition"]["StringEquals"];
        assert_eq!(
            eq["token.actions.githubusercontent.com:aud"],
            "sts.amazonaws.com"
        );
        assert_eq!(
            eq["token.actions.githubusercontent.com:sub"],
            "repo:acme/jobs:ref:refs/heads/main"
        );
        assert!(s["Condition"].get("StringLike").is_none());
    }

    #[test]
    fn a_subject_pattern_is_matched_with_string_like() {
        let p = trust_policy(&role("repo:acme/jobs:ref:refs/heads/*"));
        let c = &p["Statement"][0]["Condition"];
        assert_eq!(
            c["StringLike"]["token.actions.githubusercontent.com:sub"],
            "repo:acme/jobs:ref:refs/heads/*"
        );
        assert_eq!(
            c["StringEquals"]["token.actions.githubusercontent.com:aud"],
            "sts.amazonaws.com"
        );
    }

    #[test]
    fn object_reads_are_scoped_to_the_bucket_and_prefix() {
        let p = object_read_policy(&ObjectsPlan {
            buckets: vec!["exports".into()],
            prefix: "orders/".into(),
        });
        let s = &p["Statement"];
        assert_eq!(s[0]["Action"], "s3:GetObject");
        assert_eq!(s[0]["Resource"], json!(["arn:aws:s3:::exports/orders/*"]));
        assert_eq!(s[1]["Action"], "s3:ListBucket");
        assert_eq!(s[1]["Resource"], json!(["arn:aws:s3:::exports"]));
        assert_eq!(s[1]["Condition"]["StringLike"]["s3:prefix"], "orders/*");
        let whole = object_read_policy(&ObjectsPlan {
            buckets: vec!["a".into(), "b".into()],
            prefix: String::new(),
        });
        assert_eq!(
            whole["Statement"][0]["Resource"],
            json!(["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"])
        );
        assert!(whole["Statement"][1].get("Condition").is_none());
    }

    #[test]
    fn invoke_policy_is_one_method_and_path() {
        let api = ApiPlan {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            api_id: "abc123".into(),
            stage: "prod".into(),
            method: "GET".into(),
            path: "/v1/orders".into(),
        };
        assert_eq!(
            invoke_policy(&api)["Statement"][0]["Resource"],
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/v1/orders"
        );
    }
}
