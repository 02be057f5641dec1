//! The Entra token endpoint: the client-credentials grant for workload identity (a federated
//! assertion) and service principals (a secret or a certificate).

use super::{cached_token, cred_error, ScopeCache};
use crate::clock::{Clock, SystemClock};
use crate::identity::certificate::{AssertionAlgorithm, ClientCertificate, JWT_BEARER};
use crate::identity::claims::TokenClaims;
use crate::identity::web_identity::WebIdentityTokenSource;
use crate::retry::Retrier;
use crate::secret::Secret;
use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use std::path::PathBuf;
use std::sync::Arc;
use time::OffsetDateTime;
use url::Url;

/// How a confidential client proves itself to the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientProof {
    /// A federated token (workload identity), read from this file on every exchange.
    AssertionFile(PathBuf),
    /// A federated token asked of its source on every exchange (a CI job's OIDC token).
    Assertion(Arc<dyn WebIdentityTokenSource>),
    /// `AZURE_CLIENT_SECRET`.
    Secret(Secret),
    /// `AZURE_CLIENT_CERTIFICATE_PATH`: a fresh assertion signed with the key per request.
    Certificate(Arc<ClientCertificate>),
}

/// The client-credentials grant against `{authority}/{tenant}/oauth2/v2.0/token`.
#[derive(Debug)]
pub struct EntraClientCredential {
    authority: Url,
    tenant: String,
    client_id: String,
    proof: ClientProof,
    http: reqwest::Client,
    cache: ScopeCache,
    clock: Arc<dyn Clock>,
    retry: Retrier,
}

impl EntraClientCredential {
    /// The same credential on another clock (tests of refresh).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn new(
        authority: Url,
        tenant: String,
        client_id: String,
        proof: ClientProof,
        http: reqwest::Client,
    ) -> Self {
        Self {
            authority,
            tenant,
            client_id,
            proof,
            http,
            cache: ScopeCache::default(),
            clock: Arc::new(SystemClock),
            retry: crate::identity::token_endpoint_retry(),
        }
    }

    fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.as_str().trim_end_matches('/'),
            self.tenant
        )
    }

    async fn fetch(&self, scope: &str) -> azure_core::Result<AccessToken> {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", self.client_id.clone()),
            ("scope", scope.to_string()),
        ];
        match &self.proof {
            ClientProof::AssertionFile(path) => {
                // Read afresh every time: the projected token rotates under us.
                let assertion = tokio::fs::read_to_string(path).await.map_err(|e| {
                    cred_error(format!(
                        "cannot read AZURE_FEDERATED_TOKEN_FILE ({}): {e}; point AZURE_FEDERATED_TOKEN_FILE at the projected token file (on AKS the workload identity webhook mounts it for pods labelled azure.workload.identity/use: \"true\")",
                        path.display()
                    ))
                })?;
                check_assertion_file(path, assertion.trim(), self.clock.now().into())?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", assertion.trim().to_string()));
            }
            ClientProof::Assertion(source) => {
                // Fresh per exchange: CI tokens live minutes, Entra's token outlives them.
                let assertion = source
                    .token()
                    .await
                    .map_err(|e| cred_error(e.to_string()))?;
                form.push(("client_assertion_type", JWT_BEARER.into()));
                form.push(("client_assertion", assertion.expose().to_string()));
            }
            ClientProof::Secret(s) => form.push(("client_secret", s.expose().to_string())),
            ClientProof::Certificate(cert) => {
                let assertion = cert
                    .assertion(
                        AssertionAlgorithm::Rs256,
                        &self.token_url(),
                        &self.client_id,
                        OffsetDateTime::from(self.clock.now()).unix_timestamp(),
                    )
                    .map_err(|e| cred_error(e.to_string()))?;
                form.push(("client_assertion_type", JWT_BEARER.into()));
                form.push(("client_assertion", assertion.expose().to_string()));
            }
        }
        let url = self.token_url();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let answer = crate::retry::send(&self.retry, "the Entra token endpoint", || {
            self.http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
        })
        .await
        .map_err(|e| {
            if e.is_body() || e.is_decode() {
                cred_error(format!("reading the Entra token response from {url}: {e}"))
            } else {
                cred_error(format!(
                    "cannot reach the Entra token endpoint {url}: {}. Check --azure-authority / AZURE_AUTHORITY_HOST, proxies and the CA bundle",
                    crate::report::error_chain(&e)
                ))
            }
        })?;
        let (status, bytes) = (answer.status, answer.body);
        if status != 200 {
            return Err(cred_error(entra_error_message(status, &bytes, &self.proof)));
        }
        parse_token_response(&bytes, &url, self.clock.now())
    }
}

#[async_trait]
impl TokenCredential for EntraClientCredential {
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

/// An Entra error body (`{"error": …, "error_description": "AADSTS…", "error_codes": […]}`)
/// turned into a sentence with the most likely fix. The description never holds secrets.
pub(super) fn entra_error_message(status: u16, body: &[u8], proof: &ClientProof) -> String {
    #[derive(serde::Deserialize, Default)]
    struct EntraError {
        error: Option<String>,
        error_description: Option<String>,
    }
    let e: EntraError = serde_json::from_slice(body).unwrap_or_default();
    let code = e.error.unwrap_or_else(|| format!("HTTP {status}"));
    let description = e
        .error_description
        .map(|d| d.lines().next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let hint = if description.contains("AADSTS70021") || description.contains("AADSTS700213") {
        "no federated credential on the app matches the token: check the federated credential's issuer (iss), subject (sub) and audience (aud, usually api://AzureADTokenExchange)"
    } else if description.contains("AADSTS700027") && matches!(proof, ClientProof::Certificate(_)) {
        "Entra could not verify the certificate assertion: upload this certificate (its public part) to the app registration; its thumbprint must match the one in AZURE_CLIENT_CERTIFICATE_PATH"
    } else if description.contains("AADSTS700024") || description.contains("AADSTS700027") {
        return format!(
            "Entra refused the token request ({status} {code}: {description}); {}",
            expired_assertion_hint(proof)
        );
    } else if description.contains("AADSTS7000215") || description.contains("AADSTS7000222") {
        "the client secret is wrong or expired: create a new one (az ad app credential reset) and update AZURE_CLIENT_SECRET"
    } else if description.contains("AADSTS700016") {
        "no app with this client id in the tenant: check AZURE_CLIENT_ID and AZURE_TENANT_ID"
    } else if description.contains("AADSTS90002") || description.contains("AADSTS900023") {
        "the tenant was not found: check AZURE_TENANT_ID and the authority host (sovereign clouds need --azure-authority)"
    } else if description.contains("AADSTS500011") {
        "the resource (audience) is not known in the tenant: check the audience/scope asked for"
    } else {
        match proof {
            ClientProof::AssertionFile(_) => "check the app's federated credential (issuer, subject, audience) and AZURE_CLIENT_ID/AZURE_TENANT_ID",
            ClientProof::Assertion(_) => "check that the app in AZURE_CLIENT_ID/AZURE_TENANT_ID has a federated credential for this CI job's token (issuer, subject, audience api://AzureADTokenExchange)",
            ClientProof::Secret(_) => "check AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET",
            ClientProof::Certificate(_) => "check AZURE_CLIENT_ID, AZURE_TENANT_ID and that the certificate in AZURE_CLIENT_CERTIFICATE_PATH is uploaded to the app registration (its thumbprint must match)",
        }
    };
    format!("Entra refused the token request ({status} {code}: {description}); {hint}")
}

/// What to fix when the federated token is expired or not yet valid: the file and the
/// variable that names it, when the token came from one.
fn expired_assertion_hint(proof: &ClientProof) -> String {
    match proof {
        ClientProof::AssertionFile(path) => format!(
            "the federated token in AZURE_FEDERATED_TOKEN_FILE ({}) is expired or not yet valid: whatever writes that file (the AKS workload identity webhook's projected service account token, or your CI step) must keep it fresh; gatelake re-reads it on every exchange. Check that AZURE_FEDERATED_TOKEN_FILE names the file that is being refreshed",
            path.display()
        ),
        _ => "the client assertion is expired or not yet valid: check this machine's clock".into(),
    }
}

/// Refuse a federated token that has already expired before sending it, naming the file.
fn check_assertion_file(
    path: &std::path::Path,
    assertion: &str,
    now: OffsetDateTime,
) -> azure_core::Result<()> {
    if assertion.is_empty() {
        return Err(cred_error(format!(
            "AZURE_FEDERATED_TOKEN_FILE ({}) is empty: the workload identity webhook (or your CI step) has not written the token yet",
            path.display()
        )));
    }
    let expired_at = TokenClaims::of(assertion)
        .and_then(|c| c.expires_on())
        .filter(|exp| *exp <= now);
    match expired_at {
        Some(exp) => Err(cred_error(format!(
            "the federated token in AZURE_FEDERATED_TOKEN_FILE ({}) expired at {exp}; {}",
            path.display(),
            expired_assertion_hint(&ClientProof::AssertionFile(path.to_path_buf()))
        ))),
        None => Ok(()),
    }
}

/// The token in a token endpoint's answer, with its expiry: `expires_on`, else `expires_in`
/// counted from `now` (the credential's clock), else the token's own `exp`, else ten minutes.
pub(super) fn parse_token_response(
    bytes: &[u8],
    url: &str,
    now: std::time::SystemTime,
) -> azure_core::Result<AccessToken> {
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        access_token: String,
        expires_in: Option<serde_json::Value>,
        expires_on: Option<serde_json::Value>,
    }
    let r: TokenResponse = serde_json::from_slice(bytes)
        .map_err(|e| cred_error(format!("the token response from {url} is not a token: {e}")))?;
    let num = |v: &Option<serde_json::Value>| -> Option<i64> {
        match v {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let now = OffsetDateTime::from(now);
    let expires_on = num(&r.expires_on)
        .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
        .or_else(|| num(&r.expires_in).map(|s| now + time::Duration::seconds(s)))
        .or_else(|| TokenClaims::of(&r.access_token).and_then(|c| c.expires_on()))
        .unwrap_or(now + time::Duration::minutes(10));
    Ok(AccessToken::new(r.access_token, expires_on))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_expired_or_missing_federated_token_names_the_variable_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("azure-identity-token");
        let expired = crate::identity::azure::tests::jwt(
            serde_json::json!({"iss": "i", "sub": "s", "aud": "api://AzureADTokenExchange", "exp": 1000}),
        );
        std::fs::write(&path, expired).unwrap();
        let credential = EntraClientCredential::new(
            // Never reached: the expired token is refused before it is sent.
            Url::parse("https://127.0.0.1:9").unwrap(),
            "t".into(),
            "c".into(),
            ClientProof::AssertionFile(path.clone()),
            reqwest::Client::new(),
        );
        let scope = "https://storage.azure.com/.default";
        let err = credential
            .get_token(&[scope], None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AZURE_FEDERATED_TOKEN_FILE")
                && err.contains(&path.display().to_string())
                && err.contains("expired"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        let err = credential
            .get_token(&[scope], None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AZURE_FEDERATED_TOKEN_FILE") && err.contains(&path.display().to_string()),
            "{err}"
        );
        let body = br#"{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range."}"#;
        let m = entra_error_message(400, body, &ClientProof::AssertionFile(path.clone()));
        assert!(
            m.contains("AZURE_FEDERATED_TOKEN_FILE") && m.contains(&path.display().to_string()),
            "{m}"
        );
    }

    #[test]
    fn entra_errors_name_the_fix() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS70021: No matching federated identity record found for presented assertion."}"#;
        let m = entra_error_message(400, body, &ClientProof::AssertionFile("f".into()));
        assert!(
            m.contains("subject (sub)") && m.contains("AADSTS70021"),
            "{m}"
        );
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#;
        let m = entra_error_message(401, body, &ClientProof::Secret(Secret::new("s3cr3t")));
        assert!(
            m.contains("AZURE_CLIENT_SECRET") && !m.contains("s3cr3t"),
            "{m}"
        );
    }
}
