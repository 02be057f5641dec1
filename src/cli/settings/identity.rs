//! Who the tool is: the Azure identity (per hop), the AWS role and its web identity, and the
//! CA bundle every HTTPS hop trusts. Shared by `pull` and `auth check`.

// The structs it fills are still defined in `settings.rs`.
use crate::cli::args::IdentityArgs;
use crate::cli::job_spec::JobSpec;
use crate::cli::resolver::{display_path, duration, usage, Resolver, UsageError};
use gatelake::engine::settings::{AwsRoleSettings, IdentitySettings, WebIdentityKind};
use std::path::PathBuf;
use std::time::Duration;

/// Resolve the identity flags (shared by `pull` and `auth check`). `region` is the API's
/// region, the default for STS.
pub fn resolve_identity(
    r: &mut Resolver<'_>,
    args: &IdentityArgs,
    job: &JobSpec,
    region: Option<String>,
) -> Result<IdentitySettings, UsageError> {
    let azure =
        super::azure_settings::resolve_azure(r, args, job.azure.as_ref(), &mut std::io::stdin())?;
    let aws = job.aws.clone().unwrap_or_default();
    let ca_bundle = r
        .pick(
            "ca_bundle",
            args.ca_bundle.as_deref().map(display_path),
            job.ca_bundle.as_deref().map(display_path),
            None,
        )
        .map(PathBuf::from);

    let aws_role = match r.pick(
        "aws_role_arn",
        args.aws_role_arn.clone(),
        aws.role_arn.clone(),
        None,
    ) {
        None => None,
        Some(role_arn) => {
            if !role_arn.starts_with("arn:") || !role_arn.contains(":role/") {
                return usage(format!(
                    "--aws-role-arn {role_arn}: expected a role ARN like arn:aws:iam::123456789012:role/gatelake-reader"
                ));
            }
            let web_identity = r
                .pick(
                    "web_identity",
                    args.web_identity.map(WebIdentityKind::from),
                    aws.web_identity.map(WebIdentityKind::from),
                    Some(WebIdentityKind::Azure),
                )
                .unwrap_or(WebIdentityKind::Azure);
            let default_audience = match web_identity {
                WebIdentityKind::Azure => {
                    Some(gatelake::identity::web_identity::DEFAULT_AZURE_AUDIENCE.to_string())
                }
                WebIdentityKind::Github => {
                    Some(gatelake::identity::web_identity::DEFAULT_GITHUB_AUDIENCE.to_string())
                }
                _ => None,
            };
            let audience = r
                .pick(
                    "web_identity_audience",
                    args.web_identity_audience.clone(),
                    aws.web_identity_audience.clone(),
                    default_audience,
                )
                .unwrap_or_default();
            let token_file = r
                .pick(
                    "web_identity_token_file",
                    args.web_identity_token_file.as_deref().map(display_path),
                    aws.web_identity_token_file.as_deref().map(display_path),
                    std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE").ok(),
                )
                .map(PathBuf::from);
            if web_identity == WebIdentityKind::File && token_file.is_none() {
                return usage("--web-identity file needs --web-identity-token-file PATH or AWS_WEB_IDENTITY_TOKEN_FILE");
            }
            let session_duration = duration(
                "aws-session-duration",
                r.pick(
                    "aws_session_duration",
                    args.aws_session_duration.clone(),
                    aws.session_duration.clone(),
                    Some("1h".into()),
                ),
            )?;
            if session_duration < Duration::from_secs(1)
                || session_duration > Duration::from_secs(12 * 3600)
            {
                return usage("--aws-session-duration must be at most 12h (AWS STS also requires at least 15m and applies the role's maximum session duration; shorter values are for emulators)");
            }
            let session_name = r.pick(
                "aws_role_session_name",
                args.aws_role_session_name.clone(),
                aws.role_session_name.clone(),
                std::env::var("AWS_ROLE_SESSION_NAME").ok(),
            );
            let env_region = std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .ok();
            let sts_region = r
                .pick(
                    "aws_sts_region",
                    args.aws_sts_region.clone(),
                    aws.sts_region.clone(),
                    region.or(env_region).or(Some("us-east-1".into())),
                )
                .unwrap_or_default();
            Some(AwsRoleSettings {
                role_arn,
                web_identity,
                audience,
                token_file,
                session_duration,
                session_name,
                sts_region,
            })
        }
    };
    Ok(IdentitySettings {
        azure,
        aws_role,
        ca_bundle,
    })
}
