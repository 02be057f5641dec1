//! The one HTTP stack every hop uses (API, storage, Entra, managed identity, the GitHub OIDC
//! endpoint): reqwest with rustls, a timeout on every request, proxies from
//! `HTTPS_PROXY`/`NO_PROXY`, extra trusted roots from `--ca-bundle` or `SSL_CERT_FILE`
//! (corporate networks inspect TLS, and the tests run every hop over HTTPS with a throwaway
//! CA), and redirects followed only within the same origin, so a credential-bearing request
//! is never replayed to another host ([`same_origin`], which host pinning of next-page URLs
//! uses too: the origin rule lives here, below the source).

use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Same scheme, host and port (default ports made explicit): the origin rule of redirects
/// here and of the next-page URLs the paginators produce (host pinning).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// How to build a client.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Whole-request timeout (connect, send, and read the response).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Ask for and transparently decode gzip bodies (the API hop); storage clients turn it
    /// off so that stored bytes come back exactly as written.
    pub gzip: bool,
    /// PEM files whose certificates are trusted in addition to the platform's roots.
    pub ca_bundles: Vec<PathBuf>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            gzip: true,
            ca_bundles: Vec::new(),
        }
    }
}

impl HttpOptions {
    /// Add `--ca-bundle` (when given) and `SSL_CERT_FILE` (when set) to the trusted roots.
    pub fn with_ca_bundle(mut self, flag: Option<PathBuf>) -> Self {
        if let Some(p) = flag {
            self.ca_bundles.push(p);
        }
        if let Some(p) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
            let p = PathBuf::from(p);
            if !self.ca_bundles.contains(&p) {
                self.ca_bundles.push(p);
            }
        }
        self
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not set up the HTTP client: {0}")]
pub struct HttpSetupError(String);

/// The certificates of the PEM bundles in `options`.
fn extra_roots(options: &HttpOptions) -> Result<Vec<reqwest::Certificate>, HttpSetupError> {
    let mut roots = Vec::new();
    for path in &options.ca_bundles {
        let pem = std::fs::read(path).map_err(|e| {
            HttpSetupError(format!("cannot read the CA bundle {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            HttpSetupError(format!(
                "the CA bundle {} is not a PEM certificate bundle: {e}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(HttpSetupError(format!(
                "the CA bundle {} holds no certificates",
                path.display()
            )));
        }
        roots.extend(certs);
    }
    Ok(roots)
}

/// A client with the tool's policies.
pub fn client(options: &HttpOptions) -> Result<reqwest::Client, HttpSetupError> {
    let redirect = reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        if attempt.previous().len() >= 5 {
            attempt.stop()
        } else if first.is_some_and(|f| same_origin(&f, attempt.url())) {
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
        .tls_certs_merge(extra_roots(options)?)
        .build()
        .map_err(|e| HttpSetupError(e.to_string()))
}

/// A client for storage: no redirects (the storage REST API does not use them), no
/// transparent decompression (blob bytes come back exactly as stored), a read timeout rather
/// than a whole-request one (a chunk upload may take minutes), and the same trusted roots.
pub fn storage_client(options: &HttpOptions) -> Result<reqwest::Client, HttpSetupError> {
    reqwest::Client::builder()
        .user_agent(concat!("gatelake/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout)
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .gzip(false)
        .tls_certs_merge(extra_roots(options)?)
        .build()
        .map_err(|e| HttpSetupError(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = Url::parse("https://api.example.com/prod").unwrap();
        for (b, same) in [
            ("https://API.example.com:443/other?x=1", true),
            ("https://api.example.com/", true),
            ("http://api.example.com/prod", false),
            ("https://api.example.com:8443/prod", false),
            ("https://evil.example.com/prod", false),
            ("https://api.example.com.evil.io/prod", false),
        ] {
            assert_eq!(same_origin(&a, &Url::parse(b).unwrap()), same, "{b}");
        }
    }
}
