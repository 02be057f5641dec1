//! The resolved settings the engine is built from: who the tool is on every hop. The binary
//! fills these in (flag > `GATELAKE_*` env > job file > default) and hands them over as plain
//! data; the engine never sees a flag, so an embedding program can fill them in directly.

use crate::identity::azure::AzureOptions;
use std::path::PathBuf;
use std::time::Duration;

/// Where the web identity token exchanged with AWS STS comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebIdentityKind {
    /// An Entra token for the configured audience, from the AWS hop's Azure identity.
    Azure,
    /// The GitHub Actions OIDC token.
    Github,
    /// The GitLab CI ID token.
    Gitlab,
    /// The Azure DevOps service connection's OIDC token.
    AzureDevops,
    /// A token file, re-read on every exchange.
    File,
    /// A token in `GATELAKE_WEB_IDENTITY_TOKEN`.
    Env,
}

impl WebIdentityKind {
    /// The name the flag and the job file use (`--web-identity azure-devops`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebIdentityKind::Azure => "azure",
            WebIdentityKind::Github => "github",
            WebIdentityKind::Gitlab => "gitlab",
            WebIdentityKind::AzureDevops => "azure-devops",
            WebIdentityKind::File => "file",
            WebIdentityKind::Env => "env",
        }
    }
}

impl std::fmt::Display for WebIdentityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The AWS side: assume a role with a web identity (or, when `None`, the standard chain).
#[derive(Debug, Clone)]
pub struct AwsRoleSettings {
    pub role_arn: String,
    pub web_identity: WebIdentityKind,
    pub audience: String,
    pub token_file: Option<PathBuf>,
    pub session_duration: Duration,
    pub session_name: Option<String>,
    pub sts_region: String,
}

/// Who the tool is, resolved (see `identity` for what each part does).
#[derive(Debug, Clone, Default)]
pub struct IdentitySettings {
    pub azure: AzureOptions,
    pub aws_role: Option<AwsRoleSettings>,
    pub ca_bundle: Option<PathBuf>,
}
