//! The flags only `gatelake auth plan` has (run by `auth_plan.rs`): its output form, and what
//! a plan cannot learn by itself. Flattened into `args::AuthPlanArgs` beside every `pull` flag.

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// A trust-boundary document for a reviewer, with the documents and commands inside.
    Markdown,
    /// One JSON object: the documents, the commands and what is unresolved.
    Json,
    /// A shell script of `aws` and `az` commands that create everything.
    Commands,
}

#[derive(Debug, Args, Clone, Default)]
pub struct PlanArgs {
    /// markdown, json or commands. [default: markdown; json with --output json]
    #[arg(long, value_enum, value_name = "FORM")]
    pub plan_format: Option<PlanFormat>,

    /// The issuer the role trusts, instead of the one in the web identity token (for a plan
    /// made where the token cannot be had), e.g. https://token.actions.githubusercontent.com.
    #[arg(long, value_name = "URL")]
    pub trust_issuer: Option<String>,

    /// The subject the role trusts, instead of the token's; `*` makes it a pattern
    /// (StringLike), e.g. repo:acme/jobs:ref:refs/heads/*.
    #[arg(long, value_name = "SUB")]
    pub trust_subject: Option<String>,

    /// The Entra object id that writes the lake, instead of the `oid` of its storage token.
    #[arg(long, value_name = "OBJECT_ID")]
    pub principal_id: Option<String>,

    /// The API as arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE, for an API behind a custom
    /// domain. [default: from an execute-api --url and the role's account]
    #[arg(long, env = "GATELAKE_API_ARN", value_name = "ARN")]
    pub api_arn: Option<String>,

    /// The key prefix of the s3:// objects the job reads (--object-uri-field with
    /// --allow-bucket), e.g. exports/orders/: s3:GetObject and s3:ListBucket are granted
    /// under it only. [default: the whole bucket]
    #[arg(long, value_name = "PREFIX")]
    pub object_prefix: Option<String>,

    /// The storage account's resource id (/subscriptions/…/storageAccounts/NAME). [default:
    /// looked up by the commands with `az storage account show`]
    #[arg(long, value_name = "ID")]
    pub storage_account_id: Option<String>,
}
