//! A token someone else obtained and handed in (a file re-read on every use, an environment
//! variable, standard input).

use super::{cred_error, resource_of};
use crate::clock::{Clock, SystemClock};
use crate::identity::claims::TokenClaims;
use crate::secret::Secret;
use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use std::path::PathBuf;
use std::sync::Arc;
use time::OffsetDateTime;

/// Where a handed-in token comes from.
#[derive(Debug, Clone)]
pub enum HandedIn {
    /// Read on every use, so a caller can keep the file fresh during a long run.
    File(PathBuf),
    Value(Secret),
}

/// A token someone else obtained (a notebook's `getToken`, a pipeline step). It is only good
/// for the audience it was issued for: asking it for another audience fails and says so.
#[derive(Debug)]
pub struct HandedInTokenCredential {
    from: HandedIn,
    /// Judges the token's expiry (a fake in tests).
    clock: Arc<dyn Clock>,
}

impl HandedInTokenCredential {
    pub fn new(from: HandedIn) -> Self {
        Self {
            from,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same credential on another clock (tests of expiry).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn read(&self) -> azure_core::Result<String> {
        match &self.from {
            HandedIn::Value(s) => Ok(s.expose().trim().to_string()),
            HandedIn::File(p) => {
                let text = tokio::fs::read_to_string(p).await.map_err(|e| {
                    cred_error(format!("cannot read the token file {}: {e}", p.display()))
                })?;
                let t = text.trim().to_string();
                if t.is_empty() {
                    return Err(cred_error(format!(
                        "the token file {} is empty",
                        p.display()
                    )));
                }
                // Re-read on every use, never cached: register each value read, so an error
                // that quotes a rotated token is masked too (a value handed in directly is a
                // `Secret`, registered when it was wrapped).
                crate::secret::register(&t);
                Ok(t)
            }
        }
    }
}

/// Whether a token whose `aud` is `aud` serves `resource`. Entra tokens carry the resource
/// URI or the app's GUID; a GUID cannot be checked here, so it is accepted.
pub(super) fn audience_matches(aud: &str, resource: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    let looks_like_guid = aud.len() == 36 && aud.chars().filter(|c| *c == '-').count() == 4;
    aud.split(',').any(|a| norm(a) == norm(resource)) || looks_like_guid
}

#[async_trait]
impl TokenCredential for HandedInTokenCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let token = self.read().await?;
        let claims = TokenClaims::of(&token);
        let now = OffsetDateTime::from(self.clock.now());
        let expires_on = claims
            .as_ref()
            .and_then(TokenClaims::expires_on)
            .unwrap_or(now + time::Duration::minutes(10));
        if expires_on <= now {
            return Err(cred_error(format!(
                "the Azure token handed in expired at {expires_on}; get a new one (e.g. mssparkutils.credentials.getToken) and pass it again"
            )));
        }
        if let (Some(scope), Some(aud)) = (
            scopes.first(),
            claims.as_ref().and_then(|c| c.aud.as_deref()),
        ) {
            let resource = resource_of(scope);
            if !audience_matches(aud, resource) {
                return Err(cred_error(format!(
                    "the Azure token handed in is for audience (aud) {aud}, but {resource} is needed here; pass a token for {resource}"
                )));
            }
        }
        Ok(AccessToken::new(token, expires_on))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::azure::tests::jwt;

    #[tokio::test]
    async fn handed_in_file_is_reread_and_audience_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        let exp = OffsetDateTime::now_utc().unix_timestamp() + 3600;
        let t1 = jwt(serde_json::json!({"aud": "https://storage.azure.com", "exp": exp, "n": 1}));
        let t2 = jwt(serde_json::json!({"aud": "https://storage.azure.com", "exp": exp, "n": 2}));
        std::fs::write(&p, &t1).unwrap();
        let c = HandedInTokenCredential::new(HandedIn::File(p.clone()));
        let scope = "https://storage.azure.com/.default";
        assert_eq!(
            c.get_token(&[scope], None).await.unwrap().token.secret(),
            t1
        );
        std::fs::write(&p, &t2).unwrap();
        assert_eq!(
            c.get_token(&[scope], None).await.unwrap().token.secret(),
            t2
        );
        let err = c
            .get_token(&["api://AzureADTokenExchange/.default"], None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("audience (aud)"), "{err}");
        let expired = jwt(serde_json::json!({"aud": "https://storage.azure.com", "exp": 1000}));
        std::fs::write(&p, expired).unwrap();
        let err = c.get_token(&[scope], None).await.unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[tokio::test]
    async fn a_handed_in_token_expires_by_the_credential_clock() {
        let exp = 1_800_000_000;
        let token = jwt(serde_json::json!({"aud": "https://storage.azure.com", "exp": exp}));
        let at = |secs: u64| {
            Arc::new(crate::clock::FakeClock::at(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            ))
        };
        let scope = "https://storage.azure.com/.default";
        let before = HandedInTokenCredential::new(HandedIn::Value(Secret::new(token.clone())))
            .with_clock(at(exp as u64 - 60));
        let got = before.get_token(&[scope], None).await.unwrap();
        assert_eq!(got.expires_on.unix_timestamp(), exp);
        let after = HandedInTokenCredential::new(HandedIn::Value(Secret::new(token)))
            .with_clock(at(exp as u64));
        let err = after.get_token(&[scope], None).await.unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }
}
