//! The Azure side of the identity settings: `--azure-auth` (the default for every hop), the
//! per-hop overrides `--azure-auth-storage|-aws|-api`, the tokens handed in (files, env,
//! stdin) and the authority — resolved flag > env > job file (`[jobs.NAME.azure]`) > default
//! like every other setting.

use super::args::IdentityArgs;
use super::job_spec::{AzureJob, OneOrMany};
use super::resolver::{Resolver, UsageError};
use gatelake::identity::azure::{AzureAuthKind, AzureHop, AzureOptions, HandedToken, TokenOrigin};
use gatelake::identity::claims::TokenClaims;
use gatelake::secret::Secret;
use std::path::PathBuf;

fn kind(
    r: &mut Resolver<'_>,
    id: &str,
    cli: Option<String>,
    job: Option<String>,
    default: Option<String>,
) -> Result<Option<AzureAuthKind>, UsageError> {
    let flag = format!("--{}", id.replace('_', "-"));
    match r.pick(id, cli, job, default) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|e: String| UsageError(format!("{flag}: {e}"))),
    }
}

/// The audience a token claims, for `--show-settings` (never the token).
fn audience_of(token: &str) -> String {
    TokenClaims::of(token.trim())
        .and_then(|c| c.aud)
        .map(|a| format!("aud {a}"))
        .unwrap_or_else(|| "audience unknown: not a JWT".into())
}

/// Resolve the Azure identity settings.
pub fn resolve_azure(
    r: &mut Resolver<'_>,
    args: &IdentityArgs,
    job: Option<&AzureJob>,
    stdin: &mut dyn std::io::Read,
) -> Result<AzureOptions, UsageError> {
    let az = job.cloned().unwrap_or_default();
    let default = kind(
        r,
        "azure_auth",
        args.azure_auth.clone(),
        az.auth.clone(),
        Some("auto".into()),
    )?
    .unwrap_or_default();
    let storage_kind = kind(
        r,
        "azure_auth_storage",
        args.azure_auth_storage.clone(),
        az.auth_storage.clone(),
        None,
    )?;
    let aws_kind = kind(
        r,
        "azure_auth_aws",
        args.azure_auth_aws.clone(),
        az.auth_aws.clone(),
        None,
    )?;
    let api_kind = kind(
        r,
        "azure_auth_api",
        args.azure_auth_api.clone(),
        az.auth_api.clone(),
        None,
    )?;
    for (hop, k) in [(AzureHop::Aws, aws_kind), (AzureHop::Api, api_kind)] {
        if let Some(k) = k.filter(|k| k.is_storage_only()) {
            return Err(UsageError(format!(
                "{} {}: {} authorizes storage only, but {} needs an Entra token; use auto, token, workload-identity, ci-oidc, managed-identity, service-principal or cli",
                hop.flag(),
                k.as_str(),
                k.as_str(),
                hop.describe()
            )));
        }
    }

    let token_files: Vec<PathBuf> = if !args.azure_token_file.is_empty() {
        args.azure_token_file.clone()
    } else {
        az.token_file.map(OneOrMany::into_vec).unwrap_or_default()
    };
    if !token_files.is_empty() {
        let shown: Vec<String> = token_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let from_cli = (!args.azure_token_file.is_empty()).then(|| shown.join(", "));
        r.pick("azure_token_file", from_cli, Some(shown.join(", ")), None);
    }
    let mut tokens = Vec::new();
    if let Some(t) = std::env::var("GATELAKE_AZURE_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        r.note_secret(
            "azure_token",
            format!("env GATELAKE_AZURE_TOKEN, {}", audience_of(&t)),
        );
        tokens.push(HandedToken::new(TokenOrigin::Env, Secret::new(t.trim())));
    }
    if args.azure_token_stdin {
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .map_err(|e| UsageError(format!("--azure-token-stdin: cannot read stdin: {e}")))?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return Err(UsageError("--azure-token-stdin: standard input was empty; pipe the token in (one per line), e.g. `echo \"$TOKEN\" | gatelake …`".into()));
        }
        for (n, line) in lines.iter().enumerate() {
            r.note_secret(
                "azure_token",
                format!("stdin line {}, {}", n + 1, audience_of(line)),
            );
            tokens.push(HandedToken::new(TokenOrigin::Stdin, Secret::new(*line)));
        }
    }
    let client_id = r.pick(
        "azure_client_id",
        args.azure_client_id.clone(),
        az.client_id.clone(),
        None,
    );
    let authority = match r.pick(
        "azure_authority",
        args.azure_authority.clone(),
        az.authority.clone(),
        None,
    ) {
        Some(a) => Some(
            url::Url::parse(&a)
                .map_err(|e| UsageError(format!("--azure-authority {a}: not a URL ({e})")))?,
        ),
        None => None,
    };
    Ok(AzureOptions {
        kind: default,
        storage_kind,
        aws_kind,
        api_kind,
        token_files,
        tokens,
        client_id,
        authority,
    })
}
