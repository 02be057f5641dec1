//! The one HTTP stack every hop uses (API, storage, and later Entra and STS): reqwest with
//! rustls, a timeout on every request, proxies from `HTTPS_PROXY`/`NO_PROXY`, and redirects
//! followed only within the same origin, so a credential-bearing request is never replayed
//! to another host.

use std::time::Duration;

/// How to build a client.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Whole-request timeout (connect, send, and read the response).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Ask for and transparently decode gzip bodies (the API hop); storage clients turn it
    /// off so that stored bytes come back exactly as written.
    pub gzip: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            gzip: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not set up the HTTP client: {0}")]
pub struct HttpSetupError(String);

/// A client with the tool's policies.
pub fn client(options: &HttpOptions) -> Result<reqwest::Client, HttpSetupError> {
    let redirect = reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        if attempt.previous().len() >= 5 {
            attempt.stop()
        } else if first.is_some_and(|f| crate::source::paginate::same_origin(&f, attempt.url())) {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("gatelake/", env!("CARGO_PKG_VERSION")))
        .timeout(options.timeout)
        .connect_timeout(options.connect_timeout)
        .gzip(options.gzip)
        .redirect(redirect)
        .build()
        .map_err(|e| HttpSetupError(e.to_string()))
}
