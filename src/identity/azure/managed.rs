//! Managed identity: the App Service style endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`)
//! or the VM instance metadata service (IMDS).

use super::entra::parse_token_response;
use super::{cached_token, cred_error, resource_of, AzureIdentityError, ScopeCache};
use crate::identity::token_cache::{Clock, SystemClock};
use crate::secret::Secret;
use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use std::sync::Arc;
use url::Url;

const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// Which managed identity endpoint.
#[derive(Debug, Clone)]
pub enum ManagedIdentityEndpoint {
    /// App Service, Functions, Synapse, Container Apps: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`.
    AppService { endpoint: Url, header: Secret },
    /// The VM instance metadata service (`IMDS_ENDPOINT` overrides the address).
    Imds { endpoint: Url },
}

/// A system- or user-assigned managed identity.
#[derive(Debug)]
pub struct ManagedIdentityCredential {
    endpoint: ManagedIdentityEndpoint,
    client_id: Option<String>,
    http: reqwest::Client,
    cache: ScopeCache,
    clock: Arc<dyn Clock>,
}

impl ManagedIdentityCredential {
    /// The same credential on another clock (tests of refresh).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn new(
        endpoint: ManagedIdentityEndpoint,
        client_id: Option<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            endpoint,
            client_id,
            http,
            cache: ScopeCache::default(),
            clock: Arc::new(SystemClock),
        }
    }

    async fn fetch(&self, scope: &str) -> azure_core::Result<AccessToken> {
        let resource = resource_of(scope);
        let (mut url, api_version) = match &self.endpoint {
            ManagedIdentityEndpoint::AppService { endpoint, .. } => {
                (endpoint.clone(), "2019-08-01")
            }
            ManagedIdentityEndpoint::Imds { endpoint } => (endpoint.clone(), "2018-02-01"),
        };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", api_version);
            q.append_pair("resource", resource);
            if let Some(id) = &self.client_id {
                q.append_pair("client_id", id);
            }
        }
        let mut req = self.http.get(url.clone());
        req = match &self.endpoint {
            ManagedIdentityEndpoint::AppService { header, .. } => {
                req.header("x-identity-header", header.expose())
            }
            ManagedIdentityEndpoint::Imds { .. } => req.header("metadata", "true"),
        };
        let shown = crate::secret::redact_url(&url);
        let resp = req.send().await.map_err(|e| {
            cred_error(format!(
                "cannot reach the managed identity endpoint {shown}: {}",
                crate::report::error_chain(&e)
            ))
        })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| cred_error(format!("reading the managed identity response: {e}")))?;
        if status != 200 {
            let detail = crate::upstream::api_message(&bytes);
            let hint = match status {
                400 if self.client_id.is_some() => "no user-assigned identity with that --azure-client-id is attached to this resource",
                400 | 404 => "no managed identity is assigned to this resource: enable the system-assigned identity or attach a user-assigned one (and pass --azure-client-id)",
                401 | 403 => "the identity endpoint refused the request: IDENTITY_HEADER may be stale (restart the process that set it)",
                _ => "the managed identity endpoint failed; retry, or check the resource's identity settings",
            };
            return Err(cred_error(format!(
                "managed identity endpoint {shown} answered {status}: {detail}; {hint}"
            )));
        }
        parse_token_response(&bytes, &shown)
    }
}

#[async_trait]
impl TokenCredential for ManagedIdentityCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        cached_token(&self.cache, self.clock.as_ref(), scope, || {
            self.fetch(scope)
        })
        .await
    }
}

pub(super) fn imds_endpoint(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Url, AzureIdentityError> {
    let text = match get("IMDS_ENDPOINT") {
        Some(base) => format!(
            "{}/metadata/identity/oauth2/token",
            base.trim_end_matches('/')
        ),
        None => IMDS_ENDPOINT.to_string(),
    };
    Url::parse(&text)
        .map_err(|e| AzureIdentityError::Setup(format!("IMDS_ENDPOINT is not a URL: {e}")))
}
