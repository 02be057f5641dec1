//! Refresh over a long pull, on a fake clock: short-lived STS credentials and short-lived
//! Entra tokens are renewed a handful of times, not once per request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::identity::aws::AwsCredentials;
use crate::identity::azure::{ManagedIdentityCredential, ManagedIdentityEndpoint};
use crate::identity::token_cache::Clock;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use azure_core::credentials::TokenCredential;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
struct FakeClock(Mutex<SystemTime>);

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

impl FakeClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

/// An STS that shortens every session to five minutes (whatever was asked for).
#[derive(Debug)]
struct ShortSessions {
    clock: Arc<FakeClock>,
    exchanges: Arc<AtomicU32>,
}

impl ProvideCredentials for ShortSessions {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let n = self.exchanges.fetch_add(1, Ordering::SeqCst);
        let expiry = self.clock.now() + Duration::from_secs(300);
        future::ProvideCredentials::ready(Ok(Credentials::new(
            format!("AKID{n}"),
            "secret",
            Some("token".into()),
            Some(expiry),
            "test",
        )))
    }
}

/// A managed identity endpoint (IMDS style) issuing four-minute tokens on the fake clock.
async fn four_minute_imds(clock: Arc<FakeClock>, requests: Arc<AtomicU32>) -> url::Url {
    let app = axum::Router::new().route(
        "/metadata/identity/oauth2/token",
        axum::routing::get(move || {
            let clock = clock.clone();
            let requests = requests.clone();
            async move {
                requests.fetch_add(1, Ordering::SeqCst);
                let exp = clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 240;
                serde_json::json!({
                    "access_token": "eyJ0.eyJ0.sig", "expires_on": exp.to_string(),
                    "resource": "https://storage.azure.com", "token_type": "Bearer",
                })
                .to_string()
            }
        }),
    );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(tcp, app).await;
    });
    url::Url::parse(&format!("http://{addr}/metadata/identity/oauth2/token")).unwrap()
}

#[tokio::test]
async fn a_long_pull_with_short_lived_credentials_renews_them_a_handful_of_times() {
    // Close to now, so the tokens' `expires_on` is a plausible time.
    let clock = Arc::new(FakeClock(Mutex::new(SystemTime::now())));
    let exchanges = Arc::new(AtomicU32::new(0));
    let aws = AwsCredentials::new(SharedCredentialsProvider::new(ShortSessions {
        clock: clock.clone(),
        exchanges: exchanges.clone(),
    }));
    let token_requests = Arc::new(AtomicU32::new(0));
    let endpoint = four_minute_imds(clock.clone(), token_requests.clone()).await;
    let entra = ManagedIdentityCredential::new(
        ManagedIdentityEndpoint::Imds { endpoint },
        None,
        reqwest::Client::new(),
    )
    .with_clock(clock.clone());

    // Thirty minutes, a signed request and a storage write every half second.
    for _ in 0..3600 {
        aws.get(clock.now()).await.unwrap();
        entra
            .get_token(&["https://storage.azure.com/.default"], None)
            .await
            .unwrap();
        // Let a background renewal run.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_millis(500));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Five-minute sessions renewed a minute early: every four minutes → 8 in 30 minutes.
    let sts = exchanges.load(Ordering::SeqCst);
    assert!((7..=9).contains(&sts), "{sts} STS exchanges");
    // Four-minute tokens renewed 48 s early: every 192 s → 10 in 30 minutes.
    let tokens = token_requests.load(Ordering::SeqCst);
    assert!((9..=11).contains(&tokens), "{tokens} Entra token requests");
}
