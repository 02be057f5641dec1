//! A trust-boundary plan (`gatelake auth plan`): what must exist on AWS and Azure for one job
//! to run with no standing secret, scoped as tightly as the job allows — the IAM OIDC
//! provider and the role's trust policy (the audience and subject of the very token gatelake
//! will send), `execute-api:Invoke` on exactly this API, stage, method and path, the Entra
//! app's federated credential for a CI job's token, and the Storage Blob Data Contributor
//! role assignment on exactly the destination's container; and, when the job reads `s3://`
//! objects the API names, `s3:GetObject` (and `s3:ListBucket`) on the intermediary bucket
//! and prefix.
//!
//! [`TrustPlan`] is plain data that the binary fills in from the resolved settings and the
//! token's claims; `aws` and `azure` turn it into the providers' own JSON documents, and
//! `render` into the documents, the `aws`/`az` commands that create them, and a Markdown
//! document a reviewer can approve. Nothing here does I/O or reads a secret: a plan holds
//! claims (issuer, audience, subject, object ids), never a token.

pub mod aws;
pub mod azure;
pub mod render;

use serde::Serialize;

/// Who the role trusts: the claims of the web identity token the job sends to STS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustedToken {
    /// `iss`, e.g. `https://token.actions.githubusercontent.com`.
    pub issuer: String,
    /// `aud` the role accepts (the job's `--web-identity-audience`).
    pub audience: String,
    /// `sub`, exactly, or a pattern with `*` (then matched with `StringLike`).
    pub subject: String,
    /// Where the token comes from (`--web-identity`), for the reader.
    pub source: String,
    /// How the claims were learnt: `token` (read from a token gatelake obtained) or `flags`.
    pub learnt_from: String,
}

/// The IAM role the job assumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolePlan {
    pub role_arn: String,
    pub account: String,
    pub role_name: String,
    pub max_session_seconds: u64,
    pub trusted: TrustedToken,
}

/// The API method the role may invoke (`--api-auth iam`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiPlan {
    pub region: String,
    pub account: String,
    pub api_id: String,
    pub stage: String,
    pub method: String,
    /// The resource path below the stage, e.g. `/orders` (query strings are not part of it).
    pub path: String,
}

/// The intermediary bucket(s) a job reads `s3://` objects from (`--object-uri-field`), with the
/// role's credentials: the buckets of `--allow-bucket`, and the key prefix when one is known
/// (`--object-prefix`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectsPlan {
    pub buckets: Vec<String>,
    /// The key prefix the objects are under (empty: the whole bucket).
    pub prefix: String,
}

/// Where the job writes: the container the identity may write to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoragePlan {
    pub account: String,
    pub container: String,
    /// The job's folder inside the container (documentation: Azure RBAC stops at containers).
    pub prefix: String,
    /// The Entra object id of the identity that writes (`oid` of its storage token).
    pub principal_id: Option<String>,
    /// The storage account's resource id, when given; else the commands look it up.
    pub account_resource_id: Option<String>,
}

/// An Entra app's federated credential for a CI job's OIDC token (`--azure-auth ci-oidc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FederatedPlan {
    /// The app (client) id the CI job signs in as.
    pub app_id: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
}

/// Everything the job needs, plus what could not be worked out (each with how to supply it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustPlan {
    pub job: String,
    pub role: Option<RolePlan>,
    pub api: Option<ApiPlan>,
    pub storage: Option<StoragePlan>,
    pub federated: Option<FederatedPlan>,
    /// The objects the job reads from S3, when it reads any.
    pub objects: Option<ObjectsPlan>,
    /// What the plan could not resolve, each a sentence naming the flag that supplies it.
    pub unresolved: Vec<String>,
}

/// The Storage Blob Data Contributor built-in role (the same id in every tenant).
pub const BLOB_DATA_CONTRIBUTOR: &str = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
/// The audience Entra expects in a federated credential's token.
pub const ENTRA_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The account id and role name of an IAM role ARN (`arn:aws:iam::123456789012:role/path/name`).
pub fn parse_role_arn(arn: &str) -> Option<(String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, _partition, service, _region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn_ != "arn" || service != "iam" || account.is_empty() {
        return None;
    }
    let name = resource.strip_prefix("role/")?.rsplit('/').next()?;
    (!name.is_empty()).then(|| (account.to_string(), name.to_string()))
}

/// The API, stage and path of an `execute-api` URL
/// (`https://{api}.execute-api.{region}.amazonaws.com/{stage}/{path}`).
pub fn parse_execute_api_url(url: &url::Url) -> Option<(String, String, String, String)> {
    let host = url.host_str()?;
    let (api_id, rest) = host.split_once(".execute-api.")?;
    let region = rest.split('.').next()?;
    let (stage, path) = split_stage(url.path())?;
    Some((api_id.into(), region.into(), stage, path))
}

/// `/{stage}/{path}` → (stage, `/path`).
pub fn split_stage(path: &str) -> Option<(String, String)> {
    let trimmed = path.trim_start_matches('/');
    let (stage, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    (!stage.is_empty()).then(|| (stage.to_string(), format!("/{rest}")))
}

/// An `execute-api` ARN prefix given by hand (`arn:aws:execute-api:{region}:{account}:{api}/{stage}`),
/// for an API behind a custom domain: region, account, API id and stage.
pub fn parse_api_arn(arn: &str) -> Option<(String, String, String, String)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (_partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let (api, stage) = resource.split_once('/')?;
    let ok = service == "execute-api"
        && [region, account, api, stage]
            .iter()
            .all(|s| !s.is_empty() && !s.contains('/') && !s.contains('*'));
    ok.then(|| (region.into(), account.into(), api.into(), stage.into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_role_arns() {
        let cases = [
            (
                "arn:aws:iam::123456789012:role/gatelake",
                Some(("123456789012", "gatelake")),
            ),
            (
                "arn:aws:iam::123456789012:role/team/etl/gatelake-orders",
                Some(("123456789012", "gatelake-orders")),
            ),
            ("arn:aws:iam::123456789012:user/bob", None),
            ("arn:aws:s3:::bucket", None),
            ("not an arn", None),
        ];
        for (arn, want) in cases {
            let got = parse_role_arn(arn);
            assert_eq!(
                got.as_ref().map(|(a, n)| (a.as_str(), n.as_str())),
                want,
                "{arn}"
            );
        }
    }

    #[test]
    fn reads_execute_api_urls_and_arns() {
        let url = url::Url::parse(
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/v1/orders?status=open",
        )
        .unwrap();
        assert_eq!(
            parse_execute_api_url(&url).unwrap(),
            (
                "abc123".into(),
                "eu-west-1".into(),
                "prod".into(),
                "/v1/orders".into()
            )
        );
        let custom = url::Url::parse("https://api.example.com/orders").unwrap();
        assert!(parse_execute_api_url(&custom).is_none());
        assert_eq!(
            parse_api_arn("arn:aws:execute-api:us-east-1:123456789012:abc123/prod").unwrap(),
            (
                "us-east-1".into(),
                "123456789012".into(),
                "abc123".into(),
                "prod".into()
            )
        );
        assert!(parse_api_arn("arn:aws:execute-api:us-east-1:123456789012:abc123/*").is_none());
        assert!(parse_api_arn("arn:aws:iam::123456789012:role/x").is_none());
        assert_eq!(split_stage("/prod"), Some(("prod".into(), "/".into())));
    }
}
