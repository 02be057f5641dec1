//! Managed identity: the App Service style endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`)
//! or the VM instance metadata service (IMDS).

use super::entra::parse_token_response;
use super::{cached_token, cred_error, resource_of, AzureIdentityError, ScopeCache};
use crate::clock::{Clock, SystemClock};
use crate::retry::Retrier;
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
    retry: Retrier,
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
            retry: crate::identity::token_endpoint_retry(),
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
        let request = || {
            let req = self.http.get(url.clone());
            match &self.endpoint {
                ManagedIdentityEndpoint::AppService { header, .. } => {
                    req.header("x-identity-header", header.expose())
                }
                ManagedIdentityEndpoint::Imds { .. } => req.header("metadata", "true"),
            }
        };
        let shown = crate::secret::redact_url(&url);
        let answer = crate::retry::send(&self.retry, "the managed identity endpoint", request)
            .await
            .map_err(|e| {
                if e.is_body() || e.is_decode() {
                    cred_error(format!("reading the managed identity response: {e}"))
                } else {
                    cred_error(format!(
                        "cannot reach the managed identity endpoint {shown}: {}",
                        crate::report::error_chain(&e)
                    ))
                }
            })?;
        let (status, bytes) = (answer.status, answer.body);
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
        parse_token_response(&bytes, &shown, self.clock.now())
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// An IMDS-style endpoint that fails `failures` times with `status`, then issues a token.
    async fn flaky_imds(status: u16, failures: u32) -> (Url, Arc<AtomicU32>) {
        use axum::response::IntoResponse;
        let requests = Arc::new(AtomicU32::new(0));
        let counter = requests.clone();
        let app = axum::Router::new().route(
            "/metadata/identity/oauth2/token",
            axum::routing::get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < failures {
                        let code = axum::http::StatusCode::from_u16(status).unwrap();
                        return (code, r#"{"error":"busy"}"#).into_response();
                    }
                    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
                    serde_json::json!({"access_token": "imds-token", "expires_on": exp.to_string()})
                        .to_string()
                        .into_response()
                }
            }),
        );
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(tcp, app).await;
        });
        let url = Url::parse(&format!("http://{addr}/metadata/identity/oauth2/token")).unwrap();
        (url, requests)
    }

    #[tokio::test]
    async fn a_busy_endpoint_is_retried_and_a_refusal_is_not() {
        let scope = "https://storage.azure.com/.default";
        let credential = |endpoint| {
            ManagedIdentityCredential::new(
                ManagedIdentityEndpoint::Imds { endpoint },
                None,
                reqwest::Client::new(),
            )
        };
        // IMDS throttles and has transient failures: one 429 and one 503 cost nothing.
        for status in [429, 503] {
            let (url, requests) = flaky_imds(status, 1).await;
            let token = credential(url).get_token(&[scope], None).await.unwrap();
            assert_eq!(token.token.secret(), "imds-token", "{status}");
            assert_eq!(requests.load(Ordering::SeqCst), 2, "{status}");
        }
        // Still failing after three attempts: the last answer, worded as before.
        let (url, requests) = flaky_imds(500, 10).await;
        let err = credential(url).get_token(&[scope], None).await.unwrap_err();
        assert!(err.to_string().contains("answered 500"), "{err}");
        assert_eq!(requests.load(Ordering::SeqCst), 3);
        // No identity on the resource: said at once.
        let (url, requests) = flaky_imds(400, 10).await;
        let err = credential(url).get_token(&[scope], None).await.unwrap_err();
        assert!(err.to_string().contains("no managed identity"), "{err}");
        assert_eq!(requests.load(Ordering::SeqCst), 1);
    }
}
