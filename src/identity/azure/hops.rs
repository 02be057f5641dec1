//! One Azure identity per hop. Three hops may need an Entra token, each for its own audience:
//! the lake (`https://storage.azure.com`), the AWS web-identity exchange (the
//! `--web-identity-audience`, usually `api://AzureADTokenExchange`) and the API's bearer token
//! (`--bearer-audience`). Each hop resolves its own source — `--azure-auth` is the default for
//! all of them, `--azure-auth-storage|-aws|-api` override it — so a notebook can hand in the
//! storage token its `getToken` offers while the workspace's managed identity serves the AWS
//! exchange.
//!
//! A token handed in is used only for the hop whose audience (`aud` claim) it carries: under
//! `auto` a token for another audience is simply passed over (the hop goes on down the chain);
//! an explicit `token` for a hop with no matching token is refused, naming both audiences and
//! the flag that picks another source for that hop. A token whose claims cannot be read (not a
//! JWT) cannot be matched and is offered to every hop, as before hops existed.

use super::{AzureAuthKind, AzureIdentity, AzureIdentityError, AzureOptions};
use crate::identity::claims::TokenClaims;
use crate::secret::Secret;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A hop that may authenticate with an Entra token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AzureHop {
    /// The lake (ADLS Gen2 / Blob storage).
    Storage,
    /// The Entra token exchanged with AWS STS (`--web-identity azure`).
    Aws,
    /// The API's bearer token (`--bearer-from azure`).
    Api,
}

impl AzureHop {
    pub const ALL: [AzureHop; 3] = [Self::Storage, Self::Aws, Self::Api];

    /// `storage`, `aws` or `api`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Storage => "storage",
            Self::Aws => "aws",
            Self::Api => "api",
        }
    }

    /// The flag that chooses this hop's source.
    pub fn flag(self) -> &'static str {
        match self {
            Self::Storage => "--azure-auth-storage",
            Self::Aws => "--azure-auth-aws",
            Self::Api => "--azure-auth-api",
        }
    }

    /// What the hop is, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Storage => "the lake (storage)",
            Self::Aws => "the AWS web-identity exchange (--web-identity azure)",
            Self::Api => "the API's bearer token (--bearer-from azure)",
        }
    }

    /// The flag that sets this hop's audience, for messages.
    pub fn audience_flag(self) -> Option<&'static str> {
        match self {
            Self::Storage => None,
            Self::Aws => Some("--web-identity-audience"),
            Self::Api => Some("--bearer-audience"),
        }
    }
}

/// Where a token handed in by value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `GATELAKE_AZURE_TOKEN`.
    Env,
    /// `--azure-token-stdin` (one token per line).
    Stdin,
}

/// A token handed in by value.
#[derive(Debug, Clone)]
pub struct HandedToken {
    pub origin: TokenOrigin,
    pub token: Secret,
}

impl HandedToken {
    pub fn new(origin: TokenOrigin, token: Secret) -> Self {
        Self { origin, token }
    }
}

/// Whether a token whose `aud` is `aud` serves `resource`. Entra tokens carry the resource
/// URI or, for v2 tokens of an app, its GUID; a GUID cannot be checked here, so it is
/// accepted for any hop but storage (whose tokens always carry the storage URI).
pub(super) fn serves(aud: &str, resource: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    let resource = norm(super::resource_of(resource));
    aud.split(',').any(|a| {
        let a = norm(a.trim());
        let looks_like_guid = a.len() == 36 && a.chars().filter(|c| *c == '-').count() == 4;
        a == resource || (looks_like_guid && resource != norm(super::STORAGE_AUDIENCE))
    })
}

/// A handed-in token found for a hop.
pub(super) enum Match {
    File(PathBuf),
    Value(HandedToken),
}

/// The handed-in token for `audience`, if any: files are read now only to see their audience
/// (the credential re-reads them on every use). Returns the audiences seen when none matched.
pub(super) fn handed_in_for(
    options: &AzureOptions,
    audience: &str,
) -> Result<Option<Match>, Vec<String>> {
    let mut seen = Vec::new();
    let mut check = |token: &str| -> bool {
        match TokenClaims::of(token.trim()).and_then(|c| c.aud) {
            Some(aud) => {
                let ok = serves(&aud, audience);
                if !ok {
                    seen.push(aud);
                }
                ok
            }
            // Not a JWT: its audience cannot be known, so it is not refused.
            None => true,
        }
    };
    for path in &options.token_files {
        match std::fs::read_to_string(path) {
            Ok(text) if check(&text) => return Ok(Some(Match::File(path.clone()))),
            Ok(_) => {}
            // Unreadable now: the credential says so (with the path) when it is used.
            Err(_) => return Ok(Some(Match::File(path.clone()))),
        }
    }
    for t in &options.tokens {
        if check(t.token.expose()) {
            return Ok(Some(Match::Value(t.clone())));
        }
    }
    Err(seen)
}

/// The identity of every hop that needs one, resolved once per hop. Hops that end on the same
/// source (not a handed-in token) share one identity, and so one token cache.
#[derive(Debug, Default)]
pub struct HopIdentities {
    resolved: HashMap<AzureHop, Result<Arc<AzureIdentity>, String>>,
}

impl HopIdentities {
    /// Resolve each `(hop, audience)` in `wanted` (see the module docs).
    pub async fn resolve(
        options: &AzureOptions,
        wanted: &[(AzureHop, String)],
        env: &(dyn Fn(&str) -> Option<String> + Sync),
        http: reqwest::Client,
    ) -> Self {
        let mut shared: Vec<Arc<AzureIdentity>> = Vec::new();
        let mut resolved = HashMap::new();
        for (hop, audience) in wanted {
            let got = AzureIdentity::resolve_hop(options, *hop, audience, env, http.clone())
                .await
                .map(|id| {
                    let same = shared.iter().find(|s| {
                        !s.source.is_handed_in()
                            && s.source == id.source
                            && s.client_id == id.client_id
                    });
                    match same {
                        Some(s) => s.clone(),
                        None => {
                            let id = Arc::new(id);
                            shared.push(id.clone());
                            id
                        }
                    }
                })
                .map_err(|e| e.to_string());
            resolved.insert(*hop, got);
        }
        Self { resolved }
    }

    /// The identity of `hop`, when it was wanted and resolved.
    pub fn get(&self, hop: AzureHop) -> Option<&Arc<AzureIdentity>> {
        self.resolved.get(&hop).and_then(|r| r.as_ref().ok())
    }

    /// Why `hop` has no identity, when it was wanted and failed.
    pub fn error(&self, hop: AzureHop) -> Option<&str> {
        self.resolved
            .get(&hop)
            .and_then(|r| r.as_ref().err())
            .map(String::as_str)
    }

    /// Every hop wanted, in a stable order, with its outcome.
    pub fn iter(&self) -> impl Iterator<Item = (AzureHop, &Result<Arc<AzureIdentity>, String>)> {
        AzureHop::ALL
            .into_iter()
            .filter_map(|h| self.resolved.get(&h).map(|r| (h, r)))
    }

    /// The first failure, as an error naming the hop.
    pub fn first_error(&self) -> Option<AzureIdentityError> {
        self.iter().find_map(|(hop, r)| {
            r.as_ref().err().map(|e| {
                AzureIdentityError::Setup(format!("Azure identity for {}: {e}", hop.describe()))
            })
        })
    }
}

/// The kind that applies to `hop`: its own override, else the default.
pub(super) fn kind_for(options: &AzureOptions, hop: AzureHop) -> AzureAuthKind {
    match hop {
        AzureHop::Storage => options.storage_kind,
        AzureHop::Aws => options.aws_kind,
        AzureHop::Api => options.api_kind,
    }
    .unwrap_or(options.kind)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::azure::tests::jwt;

    #[test]
    fn audiences_are_matched_per_hop() {
        assert!(serves(
            "https://storage.azure.com/",
            "https://storage.azure.com"
        ));
        assert!(serves(
            "https://storage.azure.com",
            "https://storage.azure.com/.default"
        ));
        assert!(!serves(
            "https://storage.azure.com",
            "api://AzureADTokenExchange"
        ));
        assert!(serves(
            "API://azureadtokenexchange",
            "api://AzureADTokenExchange"
        ));
        let guid = "12345678-1234-1234-1234-123456789012";
        assert!(serves(guid, "api://orders-api"));
        assert!(!serves(guid, "https://storage.azure.com"));
    }

    #[test]
    fn a_handed_in_token_is_found_only_for_its_audience() {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::write(
            &storage,
            jwt(serde_json::json!({"aud": "https://storage.azure.com"})),
        )
        .unwrap();
        let exchange = jwt(serde_json::json!({"aud": "api://AzureADTokenExchange"}));
        let options = AzureOptions {
            token_files: vec![storage.clone()],
            tokens: vec![HandedToken::new(TokenOrigin::Stdin, Secret::new(exchange))],
            ..Default::default()
        };
        assert!(matches!(
            handed_in_for(&options, "https://storage.azure.com"),
            Ok(Some(Match::File(p))) if p == storage
        ));
        assert!(matches!(
            handed_in_for(&options, "api://AzureADTokenExchange"),
            Ok(Some(Match::Value(t))) if t.origin == TokenOrigin::Stdin
        ));
        let seen = match handed_in_for(&options, "api://orders-api") {
            Err(seen) => seen,
            _ => panic!("no token serves api://orders-api"),
        };
        assert_eq!(
            seen,
            vec!["https://storage.azure.com", "api://AzureADTokenExchange"]
        );
        // A token that is not a JWT cannot be matched, so it is offered to every hop.
        let opaque = AzureOptions {
            tokens: vec![HandedToken::new(TokenOrigin::Env, Secret::new("opaque"))],
            ..Default::default()
        };
        assert!(matches!(
            handed_in_for(&opaque, "api://AzureADTokenExchange"),
            Ok(Some(Match::Value(_)))
        ));
    }
}
