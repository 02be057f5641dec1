//! The resolve chain: which source `--azure-auth` picks (see the module docs of `azure` for
//! the order `auto` follows).

use super::entra::{ClientProof, EntraClientCredential};
use super::handed_in::{HandedIn, HandedInTokenCredential};
use super::hops::{self, Match};
use super::managed::{imds_endpoint, ManagedIdentityCredential, ManagedIdentityEndpoint};
use super::{
    scope_for, AzureAuthKind, AzureHop, AzureIdentity, AzureIdentityError, AzureOptions,
    AzureSource, TokenOrigin, PUBLIC_AUTHORITY, TOKEN_EXCHANGE_AUDIENCE,
};
use crate::identity::certificate::ClientCertificate;
use crate::identity::ci_oidc::{self, CiProvider};
use crate::secret::Secret;
use azure_core::credentials::TokenCredential;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

impl AzureIdentity {
    /// Resolve the identity of one hop, whose tokens are for `audience`, against an
    /// environment lookup. `auto` picks the first configured source (see the module docs) —
    /// a token handed in only when it carries `audience`; IMDS is probed with a short timeout.
    pub async fn resolve_hop(
        options: &AzureOptions,
        hop: AzureHop,
        audience: &str,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
        http: reqwest::Client,
    ) -> Result<Self, AzureIdentityError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let authority = match &options.authority {
            Some(a) => a.clone(),
            None => {
                let text = get("AZURE_AUTHORITY_HOST").unwrap_or_else(|| PUBLIC_AUTHORITY.into());
                Url::parse(&text).map_err(|e| {
                    AzureIdentityError::Setup(format!("AZURE_AUTHORITY_HOST is not a URL: {e}"))
                })?
            }
        };
        if authority.scheme() != "https" {
            return Err(AzureIdentityError::Setup(format!(
                "the authority host {authority} must use https: tokens and secrets are sent to it"
            )));
        }
        let tenant = get("AZURE_TENANT_ID");
        let client_id = options.client_id.clone().or_else(|| get("AZURE_CLIENT_ID"));
        let kind = options.kind_for(hop);
        // Name the flag the user set for this hop, so the fix lands in the right place.
        let flag = if options.kind_for(hop) != options.kind {
            hop.flag()
        } else {
            "--azure-auth"
        };
        if kind.is_storage_only() && hop != AzureHop::Storage {
            return Err(AzureIdentityError::NotConfigured {
                flag,
                kind: kind.as_str(),
                message: format!(
                    "this only authorizes storage, but {} needs an Entra token for {audience}; choose its source with {} (auto, token, workload-identity, ci-oidc, managed-identity, service-principal or cli)",
                    hop.describe(),
                    hop.flag()
                ),
            });
        }
        let wants = |k: AzureAuthKind| kind == k || kind == AzureAuthKind::Auto;
        let not_configured = |message: &str| AzureIdentityError::NotConfigured {
            flag,
            kind: kind.as_str(),
            message: message.to_string(),
        };
        let mut tried: Vec<String> = Vec::new();
        let make = |source, credential: Arc<dyn TokenCredential>| Self {
            source,
            tenant: tenant.clone(),
            client_id: client_id.clone(),
            credential,
        };
        // Workload identity, CI OIDC and both service principals are the same Entra app
        // credential; only the source reported and the proof shown differ.
        let entra = |source, tenant_id: &str, app_id: &str, proof, http| {
            make(
                source,
                Arc::new(EntraClientCredential::new(
                    authority.clone(),
                    tenant_id.to_string(),
                    app_id.to_string(),
                    proof,
                    http,
                )),
            )
        };

        // 1. A token handed in.
        if wants(AzureAuthKind::Token) {
            match hops::handed_in_for(options, audience) {
                Ok(Some(Match::File(p))) => {
                    return Ok(make(
                        AzureSource::TokenFile,
                        Arc::new(HandedInTokenCredential::new(HandedIn::File(p))),
                    ))
                }
                Ok(Some(Match::Value(t))) => {
                    let source = match t.origin {
                        TokenOrigin::Env => AzureSource::TokenEnv,
                        TokenOrigin::Stdin => AzureSource::TokenStdin,
                    };
                    return Ok(make(
                        source,
                        Arc::new(HandedInTokenCredential::new(HandedIn::Value(t.token))),
                    ));
                }
                Ok(None) => {}
                Err(seen) if kind == AzureAuthKind::Token && !seen.is_empty() => {
                    let fix_audience = match hop.audience_flag() {
                        Some(f) => format!(", or set {f} to the audience the token carries"),
                        None => String::new(),
                    };
                    return Err(not_configured(&format!(
                        "{} needs a token for audience {audience}, but the token(s) handed in are for {}; hand in a token for {audience} too (another --azure-token-file, or another line on --azure-token-stdin), or choose another source for this hop with {} KIND (e.g. managed-identity){fix_audience}",
                        hop.describe(),
                        seen.join(" and "),
                        hop.flag(),
                    )));
                }
                Err(seen) if !seen.is_empty() => {
                    tried.push(format!(
                        "token (handed in for {}, not {audience})",
                        seen.join(", ")
                    ));
                }
                Err(_) => {}
            }
            if kind == AzureAuthKind::Token {
                return Err(not_configured(
                    "no token given: pass --azure-token-file PATH, set GATELAKE_AZURE_TOKEN, or pipe it with --azure-token-stdin",
                ));
            }
            if options.token_files.is_empty() && options.tokens.is_empty() {
                tried.push("token".into());
            }
        }

        // 2. Workload identity federation.
        if wants(AzureAuthKind::WorkloadIdentity) {
            match (&tenant, &client_id, get("AZURE_FEDERATED_TOKEN_FILE")) {
                // A token file that is not there (yet) cannot start: `auto` moves on.
                (Some(_), Some(_), Some(f))
                    if kind == AzureAuthKind::Auto && !std::path::Path::new(&f).is_file() =>
                {
                    tried.push(format!(
                        "workload identity (AZURE_FEDERATED_TOKEN_FILE {f} does not exist)"
                    ))
                }
                (Some(t), Some(c), Some(f)) => {
                    return Ok(entra(
                        AzureSource::WorkloadIdentity,
                        t,
                        c,
                        ClientProof::AssertionFile(PathBuf::from(f)),
                        http,
                    ))
                }
                _ if kind == AzureAuthKind::WorkloadIdentity => {
                    return Err(not_configured(
                        "workload identity needs AZURE_TENANT_ID, AZURE_CLIENT_ID (or --azure-client-id) and AZURE_FEDERATED_TOKEN_FILE",
                    ))
                }
                _ => tried.push("workload identity".into()),
            }
        }

        // 3. A CI job's own OIDC token as the federated assertion: a scheduled job reaches
        // Entra with no stored secret. Only when the CI offers a token and the app is named.
        if wants(AzureAuthKind::CiOidc) {
            match (&tenant, &client_id, CiProvider::detect(&get)) {
                (Some(t), Some(c), Some(provider)) => {
                    // Only GitHub lets the job choose; GitLab's and Azure DevOps' audience is
                    // what the job was given, for Entra to check against the credential.
                    let audience = if provider == CiProvider::Github {
                        TOKEN_EXCHANGE_AUDIENCE
                    } else {
                        ""
                    };
                    match ci_oidc::token_source(provider, audience, &get, http.clone()) {
                        Ok(source) => {
                            return Ok(entra(
                                provider.azure_source(),
                                t,
                                c,
                                ClientProof::Assertion(source),
                                http,
                            ))
                        }
                        Err(e) if kind == AzureAuthKind::CiOidc => {
                            return Err(not_configured(&e.to_string()))
                        }
                        Err(e) => tried.push(format!("CI OIDC token ({e})")),
                    }
                }
                (_, _, provider) if kind == AzureAuthKind::CiOidc => {
                    let what = match provider {
                        Some(p) => format!("the {} token is there", p.name()),
                        None => format!(
                            "no CI OIDC token was found; it needs {}",
                            CiProvider::all_needs()
                        ),
                    };
                    return Err(not_configured(&format!(
                        "ci-oidc needs AZURE_TENANT_ID and AZURE_CLIENT_ID (or --azure-client-id) naming the app whose federated credential trusts the CI job, and a CI OIDC token: {what}"
                    )));
                }
                _ => tried.push("CI OIDC token".into()),
            }
        }

        // 4. Managed identity: App Service style by its variables, else the VM's IMDS (named
        // explicitly, or found by a short probe under `auto`).
        if wants(AzureAuthKind::ManagedIdentity) {
            let app_service = match (get("IDENTITY_ENDPOINT"), get("IDENTITY_HEADER")) {
                (Some(ep), Some(h)) => match Url::parse(&ep) {
                    Ok(endpoint) => Some((endpoint, h)),
                    Err(e) if kind == AzureAuthKind::ManagedIdentity => {
                        return Err(AzureIdentityError::Setup(format!(
                            "IDENTITY_ENDPOINT is not a URL: {e}"
                        )))
                    }
                    Err(e) => {
                        tried.push(format!(
                            "managed identity (IDENTITY_ENDPOINT is not a URL: {e})"
                        ));
                        None
                    }
                },
                _ => None,
            };
            if let Some((endpoint, h)) = app_service {
                return Ok(make(
                    AzureSource::ManagedIdentityAppService,
                    Arc::new(ManagedIdentityCredential::new(
                        ManagedIdentityEndpoint::AppService {
                            endpoint,
                            header: Secret::new(h),
                        },
                        options.client_id.clone(),
                        http,
                    )),
                ));
            }
            let endpoint = imds_endpoint(&get)?;
            let imds = ManagedIdentityCredential::new(
                ManagedIdentityEndpoint::Imds { endpoint },
                options.client_id.clone(),
                http.clone(),
            );
            if kind == AzureAuthKind::ManagedIdentity {
                return Ok(make(AzureSource::ManagedIdentityImds, Arc::new(imds)));
            }
            // Off Azure the link-local address does not answer: a short probe keeps `auto`
            // usable on laptops and CI runners. A token fetched here is cached, not wasted.
            let scope = scope_for(audience);
            let answered =
                tokio::time::timeout(IMDS_PROBE_TIMEOUT, imds.get_token(&[&scope], None)).await;
            if matches!(answered, Ok(Ok(_))) {
                return Ok(make(AzureSource::ManagedIdentityImds, Arc::new(imds)));
            }
            tried.push("managed identity via IMDS (did not answer)".into());
        }

        // 5. Service principal: a certificate or a secret.
        if wants(AzureAuthKind::ServicePrincipal) {
            let cert = get("AZURE_CLIENT_CERTIFICATE_PATH");
            let secret = get("AZURE_CLIENT_SECRET");
            match (&tenant, &client_id, cert, secret) {
                (Some(t), Some(c), Some(path), _) => {
                    match ClientCertificate::load(std::path::Path::new(&path)) {
                        Ok(cert) => {
                            return Ok(entra(
                                AzureSource::ServicePrincipalCertificate,
                                t,
                                c,
                                ClientProof::Certificate(Arc::new(cert)),
                                http,
                            ))
                        }
                        Err(e) if kind == AzureAuthKind::ServicePrincipal => {
                            return Err(not_configured(&e.to_string()))
                        }
                        // Configured but unusable: `auto` moves on and says why at the end.
                        Err(e) => tried.push(format!("service principal ({e})")),
                    }
                }
                (Some(t), Some(c), None, Some(secret)) => {
                    return Ok(entra(
                        AzureSource::ServicePrincipal,
                        t,
                        c,
                        ClientProof::Secret(Secret::new(secret)),
                        http,
                    ))
                }
                _ if kind == AzureAuthKind::ServicePrincipal => {
                    return Err(not_configured(
                        "a service principal needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH",
                    ))
                }
                _ => tried.push("service principal".into()),
            }
        }

        // 6. The Azure CLI, when `az` is on PATH (otherwise every token request would fail
        // later with a less useful message).
        if wants(AzureAuthKind::Cli) {
            if kind == AzureAuthKind::Cli || az_on_path(&get) {
                let cli = azure_identity::AzureCliCredential::new(None).map_err(|e| {
                    AzureIdentityError::Setup(format!(
                        "could not set up the Azure CLI credential: {e}"
                    ))
                })?;
                // `az` runs on every call of its own credential: cache its tokens.
                return Ok(make(
                    AzureSource::Cli,
                    Arc::new(super::CachedTokenCredential::new(cli)),
                ));
            }
            tried.push("Azure CLI (az is not on PATH)".into());
        }
        Err(AzureIdentityError::NothingFound {
            tried: tried.join(", "),
        })
    }
}

/// How long `auto` waits for IMDS before concluding this is not an Azure VM.
const IMDS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether an `az` executable is on `PATH` (as the injected environment has it).
fn az_on_path(get: &dyn Fn(&str) -> Option<String>) -> bool {
    let Some(path) = get("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        ["az", "az.cmd", "az.exe"]
            .iter()
            .any(|name| dir.join(name).is_file())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::STORAGE_AUDIENCE;
    use super::*;
    use std::collections::HashMap;

    #[tokio::test]
    async fn auto_order_and_explicit_requirements() {
        let http = reqwest::Client::new();
        let env_of = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("federated-token");
        std::fs::write(&token_file, "x").unwrap();
        let token_file: &'static str = Box::leak(token_file.display().to_string().into_boxed_str());
        let wi: &'static [(&str, &str)] = Box::leak(Box::new([
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_FEDERATED_TOKEN_FILE", token_file),
            ("AZURE_CLIENT_SECRET", "s"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("IDENTITY_HEADER", "h"),
        ]));
        let opts = AzureOptions::default();
        let id = AzureIdentity::resolve_hop(
            &opts,
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &env_of(wi),
            http.clone(),
        )
        .await
        .unwrap();
        assert_eq!(id.source, AzureSource::WorkloadIdentity);
        let with_token = AzureOptions {
            tokens: vec![super::super::HandedToken::new(
                TokenOrigin::Stdin,
                Secret::new("x"),
            )],
            ..Default::default()
        };
        let id = AzureIdentity::resolve_hop(
            &with_token,
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &env_of(wi),
            http.clone(),
        )
        .await
        .unwrap();
        assert_eq!(id.source, AzureSource::TokenStdin);
        let mi: &[(&str, &str)] = &[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("IDENTITY_HEADER", "h"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s"),
        ];
        let id = AzureIdentity::resolve_hop(
            &opts,
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &env_of(mi),
            http.clone(),
        )
        .await
        .unwrap();
        assert_eq!(id.source, AzureSource::ManagedIdentityAppService);
        let sp = AzureOptions {
            kind: AzureAuthKind::ServicePrincipal,
            ..Default::default()
        };
        let id = AzureIdentity::resolve_hop(
            &sp,
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &env_of(mi),
            http.clone(),
        )
        .await
        .unwrap();
        assert_eq!(id.source, AzureSource::ServicePrincipal);
        let wi_only = AzureOptions {
            kind: AzureAuthKind::WorkloadIdentity,
            ..Default::default()
        };
        let err = AzureIdentity::resolve_hop(
            &wi_only,
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &env_of(mi),
            http.clone(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("AZURE_FEDERATED_TOKEN_FILE"),
            "{err}"
        );
        let plain: &[(&str, &str)] = &[("AZURE_AUTHORITY_HOST", "http://login.test")];
        let err = AzureIdentity::resolve_hop(
            &opts,
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &env_of(plain),
            http,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
    }

    /// `auto` follows token → workload identity → managed identity → service principal →
    /// Azure CLI, skipping sources that are configured but cannot start.
    #[tokio::test]
    async fn auto_follows_the_documented_order_and_skips_what_cannot_start() {
        let http = reqwest::Client::new();
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("az"), "#!/bin/sh\n").unwrap();
        let missing_cert = dir.path().join("missing.pem").display().to_string();
        let token_file = dir.path().join("federated-token");
        std::fs::write(&token_file, "x").unwrap();
        let token_file = token_file.display().to_string();
        let bin_path = bin.display().to_string();
        let base: Vec<(&str, String)> = vec![
            // Nothing listens on the discard port: the IMDS probe fails at once.
            ("IMDS_ENDPOINT", "http://127.0.0.1:9".into()),
            ("PATH", "/nonexistent".into()),
        ];
        let all: Vec<(&str, String)> = vec![
            ("AZURE_TENANT_ID", "t".into()),
            ("AZURE_CLIENT_ID", "c".into()),
            ("AZURE_FEDERATED_TOKEN_FILE", token_file.clone()),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi".into()),
            ("IDENTITY_HEADER", "h".into()),
            ("AZURE_CLIENT_SECRET", "s".into()),
            ("PATH", bin_path.clone()),
        ];
        // Each row drops the variables of the sources before it.
        let rows: Vec<(&[&str], Option<AzureSource>)> = vec![
            (&[], Some(AzureSource::WorkloadIdentity)),
            (
                &["AZURE_FEDERATED_TOKEN_FILE"],
                Some(AzureSource::ManagedIdentityAppService),
            ),
            (
                &["AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT"],
                Some(AzureSource::ServicePrincipal),
            ),
            (
                &[
                    "AZURE_FEDERATED_TOKEN_FILE",
                    "IDENTITY_ENDPOINT",
                    "AZURE_CLIENT_SECRET",
                ],
                Some(AzureSource::Cli),
            ),
            (
                &[
                    "AZURE_FEDERATED_TOKEN_FILE",
                    "IDENTITY_ENDPOINT",
                    "AZURE_CLIENT_SECRET",
                    "PATH",
                ],
                None,
            ),
        ];
        for (dropped, expected) in rows {
            let env: HashMap<String, String> = base
                .iter()
                .chain(all.iter().filter(|(k, _)| !dropped.contains(k)))
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let lookup = |k: &str| env.get(k).cloned();
            let got = AzureIdentity::resolve_hop(
                &AzureOptions::default(),
                AzureHop::Storage,
                STORAGE_AUDIENCE,
                &lookup,
                http.clone(),
            )
            .await;
            match expected {
                Some(source) => assert_eq!(got.unwrap().source, source, "without {dropped:?}"),
                None => {
                    let err = got.unwrap_err().to_string();
                    for named in [
                        "workload identity",
                        "managed identity",
                        "service principal",
                        "az is not on PATH",
                    ] {
                        assert!(err.contains(named), "{err}");
                    }
                }
            }
        }
        // A federated token file that is not there: `auto` moves on to managed identity.
        let env: HashMap<String, String> = all
            .iter()
            .chain(base.iter())
            .map(|(k, v)| {
                let v = if *k == "AZURE_FEDERATED_TOKEN_FILE" {
                    "/nonexistent/token".to_string()
                } else {
                    v.clone()
                };
                (k.to_string(), v)
            })
            .collect();
        let lookup = |k: &str| env.get(k).cloned();
        let id = AzureIdentity::resolve_hop(
            &AzureOptions::default(),
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &lookup,
            http.clone(),
        )
        .await
        .unwrap();
        assert_eq!(id.source, AzureSource::ManagedIdentityAppService);
        // A certificate that cannot be read: `auto` falls through to the CLI and says why
        // when nothing else is left; `service-principal` named explicitly fails on it.
        let cert_env = |path: &str| -> HashMap<String, String> {
            [
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_CLIENT_CERTIFICATE_PATH", missing_cert.as_str()),
                ("IMDS_ENDPOINT", "http://127.0.0.1:9"),
                ("PATH", path),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let env = cert_env(&bin_path);
        let lookup = |k: &str| env.get(k).cloned();
        let id = AzureIdentity::resolve_hop(
            &AzureOptions::default(),
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &lookup,
            http.clone(),
        )
        .await
        .unwrap();
        assert_eq!(id.source, AzureSource::Cli);
        let env = cert_env("/nonexistent");
        let lookup = |k: &str| env.get(k).cloned();
        let err = AzureIdentity::resolve_hop(
            &AzureOptions::default(),
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &lookup,
            http.clone(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("AZURE_CLIENT_CERTIFICATE_PATH"), "{err}");
        let sp = AzureOptions {
            kind: AzureAuthKind::ServicePrincipal,
            ..Default::default()
        };
        let err =
            AzureIdentity::resolve_hop(&sp, AzureHop::Storage, STORAGE_AUDIENCE, &lookup, http)
                .await
                .unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod hop_tests {
    use super::super::{HandedToken, STORAGE_AUDIENCE, TOKEN_EXCHANGE_AUDIENCE};
    use super::*;
    use crate::identity::azure::tests::jwt;

    fn storage_token() -> HandedToken {
        HandedToken::new(
            TokenOrigin::Stdin,
            Secret::new(jwt(serde_json::json!({"aud": STORAGE_AUDIENCE}))),
        )
    }

    /// The notebook recipe: a storage token handed in, a managed identity for the rest.
    #[tokio::test]
    async fn each_hop_takes_the_token_for_its_audience_or_goes_down_the_chain() {
        let env = |k: &str| match k {
            "IDENTITY_ENDPOINT" => Some("http://127.0.0.1:9/msi".to_string()),
            "IDENTITY_HEADER" => Some("h".to_string()),
            _ => None,
        };
        let options = AzureOptions {
            tokens: vec![storage_token()],
            ..Default::default()
        };
        let http = reqwest::Client::new();
        let storage = AzureIdentity::resolve_hop(
            &options,
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &env,
            http.clone(),
        )
        .await
        .unwrap();
        assert_eq!(storage.source, AzureSource::TokenStdin);
        let aws = AzureIdentity::resolve_hop(
            &options,
            AzureHop::Aws,
            TOKEN_EXCHANGE_AUDIENCE,
            &env,
            http.clone(),
        )
        .await
        .unwrap();
        assert_eq!(aws.source, AzureSource::ManagedIdentityAppService);
    }

    /// An explicit `token` for a hop that has no token for its audience is refused, naming
    /// both audiences and the flag that picks another source for that hop.
    #[tokio::test]
    async fn explicit_token_without_a_matching_audience_is_refused() {
        let env = |_: &str| None;
        let http = reqwest::Client::new();
        for (options, flag) in [
            (
                AzureOptions {
                    kind: AzureAuthKind::Token,
                    tokens: vec![storage_token()],
                    ..Default::default()
                },
                "--azure-auth token",
            ),
            (
                AzureOptions {
                    aws_kind: Some(AzureAuthKind::Token),
                    tokens: vec![storage_token()],
                    ..Default::default()
                },
                "--azure-auth-aws token",
            ),
        ] {
            let err = AzureIdentity::resolve_hop(
                &options,
                AzureHop::Aws,
                TOKEN_EXCHANGE_AUDIENCE,
                &env,
                http.clone(),
            )
            .await
            .unwrap_err()
            .to_string();
            for wanted in [
                flag,
                STORAGE_AUDIENCE,
                TOKEN_EXCHANGE_AUDIENCE,
                "--azure-auth-aws KIND",
            ] {
                assert!(err.contains(wanted), "{wanted} not in: {err}");
            }
        }
        // A storage-only kind cannot serve the AWS hop.
        let key = AzureOptions {
            kind: AzureAuthKind::Key,
            ..Default::default()
        };
        let err =
            AzureIdentity::resolve_hop(&key, AzureHop::Aws, TOKEN_EXCHANGE_AUDIENCE, &env, http)
                .await
                .unwrap_err()
                .to_string();
        assert!(err.contains("--azure-auth-aws"), "{err}");
    }
}
