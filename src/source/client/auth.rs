//! How the client authenticates a request: the `x-api-key` (its own or a usage plan's), a
//! bearer token (given, from a file re-read when it changes, from the Azure identity or from an
//! OAuth2 provider), or a SigV4 signature made afresh for every attempt. Nothing here sends.

use super::{ApiClient, SourceError};
use crate::config::ApiAuth;
use crate::identity::aws::{AwsCredentials, AwsCredentialsError};
use crate::identity::sigv4::sign_request;
use crate::secret::SecretSource;
use bytes::Bytes;
use reqwest::header::HeaderValue;
use std::sync::Arc;
use url::Url;

/// The API credential a client attaches to every request.
#[derive(Clone)]
pub(super) enum Auth {
    None,
    ApiKey(SecretSource),
    Bearer(SecretSource),
    Iam {
        region: String,
        credentials: Arc<AwsCredentials>,
    },
    /// An Entra token for `scope`, renewed by the credential's cache.
    BearerFrom {
        scope: String,
        credential: Option<Arc<dyn azure_core::credentials::TokenCredential>>,
    },
    /// An access token from an OAuth2 provider (`--api-auth oauth2`), renewed by it.
    OAuth2(Option<Arc<crate::identity::oauth2::OAuth2Provider>>),
}

impl Auth {
    /// The credential for `config`; for IAM auth, `credentials` supplies AWS credentials (the
    /// standard chain when `None`). Entra and OAuth2 sources are attached afterwards
    /// (`ApiClient::with_bearer_credential`, `ApiClient::with_oauth2`).
    pub(super) async fn new(
        config: &ApiAuth,
        credentials: Option<Arc<AwsCredentials>>,
    ) -> Result<Self, SourceError> {
        Ok(match config {
            ApiAuth::None => Auth::None,
            ApiAuth::ApiKey(k) => Auth::ApiKey(k.clone()),
            ApiAuth::Bearer(t) => Auth::Bearer(t.clone()),
            ApiAuth::Iam { region } => Auth::Iam {
                region: region.clone(),
                credentials: match credentials {
                    Some(c) => c,
                    None => Arc::new(AwsCredentials::from_default_chain(region).await?),
                },
            },
            ApiAuth::BearerFromAzure { audience } => Auth::BearerFrom {
                scope: crate::identity::azure::scope_for(audience),
                credential: None,
            },
            ApiAuth::OAuth2(_) => Auth::OAuth2(None),
        })
    }
}

impl ApiClient {
    /// Build and authenticate one attempt of `method` `url` (a JSON `body` for a POST).
    pub(super) async fn request(
        &self,
        method: &reqwest::Method,
        url: &Url,
        body: Option<&Bytes>,
    ) -> Result<reqwest::Request, SourceError> {
        let mut req = reqwest::Request::new(method.clone(), url.clone());
        let h = req.headers_mut();
        h.extend(self.headers.clone());
        h.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        // Pages come compressed when the API allows it; `read_answer` decodes them. A
        // `--header Accept-Encoding: ...` of the job's is kept.
        h.entry(reqwest::header::ACCEPT_ENCODING)
            .or_insert(HeaderValue::from_static("gzip"));
        // The run id joins API Gateway's access logs (`$context.identity.userAgent`) to the
        // run's lineage.
        if let Ok(ua) = HeaderValue::from_str(&self.run.user_agent()) {
            h.insert(reqwest::header::USER_AGENT, ua);
        }
        if let Some(body) = body {
            h.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            // Set before signing: SigV4 covers the body's hash.
            *req.body_mut() = Some(reqwest::Body::from(body.clone()));
        }
        let h = req.headers_mut();
        let api_key = match &self.auth {
            Auth::ApiKey(k) => Some(k),
            _ => self.usage_plan_key.as_ref(),
        };
        if let Some(k) = api_key {
            let mut v =
                HeaderValue::from_str(k.current().expose()).map_err(|_| SourceError::Header {
                    name: "x-api-key".into(),
                    reason: "the API key contains characters not allowed in a header".into(),
                })?;
            v.set_sensitive(true);
            h.insert("x-api-key", v);
        }
        match &self.auth {
            Auth::None | Auth::ApiKey(_) => {}
            Auth::BearerFrom { scope, credential } => {
                let Some(credential) = credential else {
                    return Err(SourceError::Credentials(AwsCredentialsError::Unavailable(
                        "--bearer-from azure needs an Azure identity (internal: none was given)"
                            .into(),
                    )));
                };
                let token = credential
                    .get_token(&[scope.as_str()], None)
                    .await
                    .map_err(|e| SourceError::BearerToken(crate::secret::redact(&e.to_string())))?;
                // An issued token is a live secret: mask it in any message that quotes it.
                crate::secret::register(token.token.secret());
                h.insert(
                    reqwest::header::AUTHORIZATION,
                    bearer_header(token.token.secret())?,
                );
            }
            Auth::OAuth2(provider) => {
                let Some(provider) = provider else {
                    return Err(SourceError::BearerToken(
                        "internal: --api-auth oauth2 without a provider".into(),
                    ));
                };
                h.insert(
                    reqwest::header::AUTHORIZATION,
                    provider.authorization().await?,
                );
            }
            Auth::Bearer(t) => {
                h.insert(
                    reqwest::header::AUTHORIZATION,
                    bearer_header(t.current().expose())?,
                );
            }
            Auth::Iam {
                region,
                credentials,
            } => {
                let now = self.clock.now();
                let creds = credentials.get(now).await?;
                // The secret key and session token are live secrets from here on, wherever
                // they came from (env, profile, STS): an upstream message may quote them.
                crate::secret::register(creds.secret_access_key());
                if let Some(token) = creds.session_token() {
                    crate::secret::register(token);
                }
                sign_request(&mut req, &creds, region, now)?;
                for name in ["authorization", "x-amz-security-token"] {
                    if let Some(v) = req.headers_mut().get_mut(name) {
                        v.set_sensitive(true);
                    }
                }
            }
        }
        Ok(req)
    }

    /// Whether the API refused the OAuth2 token as invalid (the provider then drops it).
    pub(super) fn oauth2_refused(&self) -> bool {
        matches!(&self.auth, Auth::OAuth2(Some(p)) if p.take_refused())
    }

    /// Re-read the API credential's file (when it is one); whether its value changed.
    pub(super) fn reload_credentials(&self) -> bool {
        let main = match &self.auth {
            Auth::ApiKey(k) | Auth::Bearer(k) => k.reload(),
            _ => false,
        };
        let key = self.usage_plan_key.as_ref().is_some_and(|k| k.reload());
        main || key
    }
}

/// `Authorization: Bearer <token>`, marked sensitive (never printed by the HTTP stack).
fn bearer_header(token: &str) -> Result<HeaderValue, SourceError> {
    let mut v =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| SourceError::Header {
            name: "authorization".into(),
            reason: "the bearer token contains characters not allowed in a header".into(),
        })?;
    v.set_sensitive(true);
    Ok(v)
}
