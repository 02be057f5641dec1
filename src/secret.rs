//! Redacting wrappers for every secret the tool handles: API keys, bearer tokens, account keys,
//! SAS query strings. Their `Debug` and `Display` print `***`, so a secret cannot reach a log
//! line, an error message, a manifest or `--show-settings` by accident; reading the value takes
//! an explicit [`Secret::expose`]. Also: [`redact_url`], for URLs that may carry secrets in
//! their query string (SAS signatures, `?token=` style API keys).

use std::fmt;

/// A secret string. Compare, clone and move it freely; print it never.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's value, for the one place that must send it (a header, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// Query parameter names whose values are secrets (compared case-insensitively): SAS
/// signatures and tokens, AWS presigned-URL signatures and session tokens, and the usual
/// names APIs use for keys and tokens in a query string.
const SECRET_QUERY_KEYS: &[&str] = &[
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-credential",
    "token",
    "access_token",
    "id_token",
    "api_key",
    "apikey",
    "api-key",
    "key",
    "code",
    "client_secret",
    "password",
    "secret",
    "sas",
];

/// Whether a query parameter (or header) name names a secret.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_QUERY_KEYS.contains(&lower.as_str())
        || lower.ends_with("token")
        || lower.ends_with("secret")
        || lower.ends_with("password")
}

/// The URL with the values of secret-looking query parameters replaced by `***`, and any
/// userinfo (`user:password@`) removed. Safe to print, log, checkpoint or put in a manifest.
pub fn redact_url(url: &url::Url) -> String {
    let mut clean = url.clone();
    // Failing to clear userinfo only happens for URLs that cannot have it (no host), in
    // which case there is nothing to clear.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    if clean.query().is_some() {
        let pairs: Vec<(String, String)> = clean
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_name(&k) {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        clean.query_pairs_mut().clear().extend_pairs(pairs);
    }
    clean.to_string()
}

/// Like [`redact_url`] for a string that may not parse as a URL; unparseable input is
/// returned as `<unparseable URL>` rather than echoed, since it may hold anything.
pub fn redact_url_str(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => redact_url(&u),
        Err(_) => "<unparseable URL>".to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn redacts_secret_query_values_and_userinfo() {
        let cases = [
            (
                "https://a.blob.core.windows.net/c/p?sv=2021&sig=abc%2Bdef&se=2026",
                "https://a.blob.core.windows.net/c/p?sv=2021&sig=***&se=2026",
            ),
            (
                "https://user:pw@api.example/orders?page=2&api_key=K&AccessToken=T",
                "https://api.example/orders?page=2&api_key=***&AccessToken=***",
            ),
            (
                "https://api.example/orders?cursor=abc",
                "https://api.example/orders?cursor=abc",
            ),
            ("https://api.example/orders", "https://api.example/orders"),
        ];
        for (input, want) in cases {
            let got = redact_url(&url::Url::parse(input).unwrap());
            assert_eq!(got, want, "input {input}");
        }
        assert_eq!(redact_url_str("not a url ?sig=x"), "<unparseable URL>");
    }
}
