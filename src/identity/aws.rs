//! AWS credentials for signing API requests. [`AwsCredentials`] hands out credentials that
//! are valid for at least [`REFRESH_MARGIN`], fetching new ones from its provider when the
//! cached ones come close to expiring, so a pull that runs longer than a session keeps
//! signing with fresh credentials. Concurrent callers share one refresh.
//!
//! Today the provider is the standard AWS chain (env, profile, web identity file, container,
//! IMDS); the federated exchange (an Entra or CI OIDC token → STS) is another provider behind
//! this same type.

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use std::time::{Duration, SystemTime};
use tokio::sync::Mutex;

/// Credentials with less than this left are refreshed before use.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
pub enum AwsCredentialsError {
    #[error("no AWS credentials found for --api-auth iam: {0}. Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), AWS_PROFILE, or run where a role is attached")]
    Unavailable(String),
    #[error("AWS credentials could not be loaded within {0:?}")]
    Timeout(Duration),
}

/// Cached, refreshed AWS credentials.
#[derive(Debug)]
pub struct AwsCredentials {
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
    timeout: Duration,
}

impl AwsCredentials {
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            cached: Mutex::new(None),
            timeout: Duration::from_secs(30),
        }
    }

    /// The standard AWS credential chain.
    pub async fn from_default_chain(region: &str) -> Result<Self, AwsCredentialsError> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .load()
            .await;
        let provider = config.credentials_provider().ok_or_else(|| {
            AwsCredentialsError::Unavailable(
                "the AWS configuration has no credentials provider".into(),
            )
        })?;
        Ok(Self::new(provider))
    }

    /// Credentials valid for at least [`REFRESH_MARGIN`] from `now`.
    pub async fn get(&self, now: SystemTime) -> Result<Credentials, AwsCredentialsError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if is_fresh(c, now) {
                return Ok(c.clone());
            }
        }
        let fresh = tokio::time::timeout(self.timeout, self.provider.provide_credentials())
            .await
            .map_err(|_| AwsCredentialsError::Timeout(self.timeout))?
            .map_err(|e| AwsCredentialsError::Unavailable(error_chain(&e)))?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

fn is_fresh(c: &Credentials, now: SystemTime) -> bool {
    match c.expiry() {
        None => true,
        Some(exp) => exp
            .duration_since(now)
            .map(|left| left > REFRESH_MARGIN)
            .unwrap_or(false),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_credential_types::provider::future;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// Hands out credentials that expire `ttl` after a fixed base time, counting calls.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        expiry: SystemTime,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("AKID{n}"),
                "secret",
                Some("token".into()),
                Some(self.expiry),
                "test",
            )))
        }
    }

    #[tokio::test]
    async fn refreshes_only_near_expiry() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let calls = Arc::new(AtomicU32::new(0));
        let creds = AwsCredentials::new(SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            expiry: base + Duration::from_secs(3600),
        }));
        assert_eq!(creds.get(base).await.unwrap().access_key_id(), "AKID0");
        // Still 50 minutes left: cached.
        assert_eq!(
            creds
                .get(base + Duration::from_secs(600))
                .await
                .unwrap()
                .access_key_id(),
            "AKID0"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Four minutes left: refreshed before use.
        creds.get(base + Duration::from_secs(3360)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
