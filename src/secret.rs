//! Redacting wrappers for every secret the tool handles: API keys, bearer tokens, account keys,
//! SAS query strings. Their `Debug` and `Display` print `***`, so a secret cannot reach a log
//! line, an error message, a manifest or `--show-settings` by accident; reading the value takes
//! an explicit [`Secret::expose`]. Also: [`redact_url`], for URLs that may carry secrets in
//! their query string (SAS signatures, `?token=` style API keys).
//!
//! Types keep our own secrets out of our own messages, but an upstream service can quote a
//! secret back (API Gateway's signature-mismatch message quotes the canonical request, session
//! token included). So every secret this process holds is also entered in a registry of live
//! secrets as it is created ([`Secret::new`], [`register`]), and [`redact`] masks each of them
//! wherever it appears in a text. Every place that turns upstream text into an error runs it
//! through [`redact`], and the binary runs every message it prints through it once more.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{OnceLock, RwLock};

/// A secret string. Compare, clone and move it freely; print it never.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap `value`, and register it so that [`redact`] masks it in any message.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        register(&value);
        Self(value)
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
        Self::new(value)
    }
}

/// Values shorter than this are not registered: masking a short common string ("true", a
/// two-letter header value) would garble messages without protecting anything real.
const MIN_REGISTERED_LEN: usize = 6;

/// The registry of live secrets. Only grows: a process holds few secrets (a token renewed
/// hourly adds one an hour), and a rotated-out secret must stay masked.
fn registry() -> &'static RwLock<BTreeSet<String>> {
    static LIVE: OnceLock<RwLock<BTreeSet<String>>> = OnceLock::new();
    LIVE.get_or_init(|| RwLock::new(BTreeSet::new()))
}

/// Enter a secret this process holds (or was issued: an STS session token, an Entra token)
/// in the registry that [`redact`] masks. Also registers its percent-encoded form, in which
/// it appears inside URLs.
pub fn register(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_REGISTERED_LEN {
        return;
    }
    // The request path registers the credential it signs with on every attempt: once it is
    // known, a shared read is all that costs (no encoding, no exclusive lock).
    let known = match registry().read() {
        Ok(l) => l.contains(value),
        Err(poisoned) => poisoned.into_inner().contains(value),
    };
    if known {
        return;
    }
    let encoded = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let mut live = match registry().write() {
        Ok(l) => l,
        // A panic while holding the lock cannot leave the set half-changed.
        Err(poisoned) => poisoned.into_inner(),
    };
    if !live.contains(value) {
        live.insert(value.to_string());
    }
    if encoded != value && !live.contains(&encoded) {
        live.insert(encoded);
    }
}

/// Header names (and `Name=value` keys) whose values are credentials wherever they are quoted:
/// a canonical request, an `Authorization` header echoed in a message.
const QUOTED_SECRET_NAMES: &[&str] = &[
    "x-amz-security-token",
    "authorization",
    "x-api-key",
    "signature",
    "sig",
];

/// `text` with every registered secret replaced by `***`, and the values of credential
/// headers or parameters that it quotes (`x-amz-security-token:…`, `Authorization: …`,
/// `Signature=…`) masked whether registered or not. For any text that came from outside
/// (an upstream message, a transport error) before it is printed, logged or stored.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    {
        let live = match registry().read() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Longest first, so a secret that contains another is masked whole.
        let mut values: Vec<&String> = live.iter().filter(|v| out.contains(v.as_str())).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for v in values {
            out = out.replace(v.as_str(), "***");
        }
    }
    mask_quoted_values(&out)
}

/// Mask the value after `name:` or `name=` for each of [`QUOTED_SECRET_NAMES`] (any case),
/// up to the end of the line, a quote, a comma, `&` or whitespace after a non-empty value.
fn mask_quoted_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for name in QUOTED_SECRET_NAMES {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(name) {
            let start = from + pos;
            from = start + name.len();
            // Whole names only: `sig` must not match inside `signature` or `design`.
            let before_ok = start == 0
                || !lower.as_bytes()[start - 1].is_ascii_alphanumeric()
                    && lower.as_bytes()[start - 1] != b'-';
            let after = lower.as_bytes().get(from).copied();
            if !before_ok || !matches!(after, Some(b':') | Some(b'=')) {
                continue;
            }
            let mut value_start = from + 1;
            while text.as_bytes().get(value_start) == Some(&b' ') {
                value_start += 1;
            }
            // `Authorization: AWS4-HMAC-SHA256 Credential=…` / `Bearer x`: mask the whole value
            // to the end of the line; other values end at a separator.
            let whole_line = *name == "authorization";
            let mut end = value_start;
            for (i, c) in text[value_start..].char_indices() {
                let stop = c == '\n'
                    || c == '\r'
                    || c == '\''
                    || c == '"'
                    || (!whole_line && (c == ',' || c == '&' || c == ' ' || c == ';'));
                if stop {
                    break;
                }
                end = value_start + i + c.len_utf8();
            }
            if end > value_start {
                cuts.push((value_start, end));
            }
        }
    }
    if cuts.is_empty() {
        return text.to_string();
    }
    cuts.sort();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in cuts {
        if start < at {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str("***");
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// A secret given as a value, or as a file that is re-read whenever it changes, so that a
/// token or key rotated by whatever writes the file (a sidecar, a CI step, a notebook cell)
/// is picked up mid-run instead of failing every request from then on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    Value(Secret),
    File(SecretFile),
}

impl SecretSource {
    /// The secret to send now: for a file, re-read first when its size, modification time or
    /// inode changed since the last read (one `stat` per use).
    pub fn current(&self) -> Secret {
        match self {
            SecretSource::Value(s) => s.clone(),
            SecretSource::File(f) => f.current(false),
        }
    }

    /// Re-read a file whatever its stamp says (after the API refused the secret); whether the
    /// value changed. A plain value never changes.
    pub fn reload(&self) -> bool {
        match self {
            SecretSource::Value(_) => false,
            SecretSource::File(f) => {
                let before = f.cached();
                f.current(true) != before
            }
        }
    }

    /// The file the secret is read from, if any.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            SecretSource::Value(_) => None,
            SecretSource::File(f) => Some(&f.path),
        }
    }
}

impl From<Secret> for SecretSource {
    fn from(value: Secret) -> Self {
        SecretSource::Value(value)
    }
}

/// A secret file could not be used when the run started.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read the {what} file {path}: {source}")]
    Unreadable {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the {what} file {path} is empty")]
    Empty { what: &'static str, path: String },
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
        }
    }
}

#[derive(Debug)]
struct CachedSecret {
    stamp: Option<FileStamp>,
    value: Secret,
}

/// A secret kept in a file (surrounding whitespace ignored), re-read when the file changes.
/// A file that is briefly missing or empty while it is being replaced keeps the last value.
#[derive(Clone)]
pub struct SecretFile {
    what: &'static str,
    path: std::path::PathBuf,
    cache: std::sync::Arc<std::sync::Mutex<CachedSecret>>,
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretFile")
            .field("what", &self.what)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SecretFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for SecretFile {}

impl SecretFile {
    /// Read the `what` (e.g. "API key") file at `path` now; unreadable or empty is an error.
    pub fn open(
        path: impl Into<std::path::PathBuf>,
        what: &'static str,
    ) -> Result<Self, SecretFileError> {
        let path = path.into();
        let (stamp, value) = read_secret_file(&path, what)?;
        Ok(Self {
            what,
            path,
            cache: std::sync::Arc::new(std::sync::Mutex::new(CachedSecret {
                stamp: Some(stamp),
                value,
            })),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The value last read, without looking at the file.
    fn cached(&self) -> Secret {
        match self.cache.lock() {
            Ok(c) => c.value.clone(),
            Err(poisoned) => poisoned.into_inner().value.clone(),
        }
    }

    /// The current value; re-read when the stamp changed or `force`.
    fn current(&self, force: bool) -> Secret {
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| FileStamp::of(&m));
        if stamp.is_some() && (force || stamp != cache.stamp) {
            match read_secret_file(&self.path, self.what) {
                Ok((stamp, value)) => {
                    if value != cache.value {
                        tracing::info!(
                            "re-read the {} file {}: it changed",
                            self.what,
                            self.path.display()
                        );
                    }
                    cache.stamp = Some(stamp);
                    cache.value = value;
                }
                Err(e) => {
                    tracing::warn!("{e}; still using the value read before");
                }
            }
        }
        cache.value.clone()
    }
}

fn read_secret_file(
    path: &std::path::Path,
    what: &'static str,
) -> Result<(FileStamp, Secret), SecretFileError> {
    let unreadable = |source| SecretFileError::Unreadable {
        what,
        path: path.display().to_string(),
        source,
    };
    // The stamp is taken before reading: a change racing the read is seen on the next use.
    let stamp = std::fs::metadata(path)
        .map(|m| FileStamp::of(&m))
        .map_err(unreadable)?;
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let value = text.trim();
    if value.is_empty() {
        return Err(SecretFileError::Empty {
            what,
            path: path.display().to_string(),
        });
    }
    Ok((stamp, Secret::new(value)))
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
    redact_url_keeping(url, &[])
}

/// [`redact_url`], except for the query parameters named in `keep`, whose values are not
/// secrets whatever their names (a paginator's cursor called `page_token`).
pub fn redact_url_keeping(url: &url::Url, keep: &[String]) -> String {
    let mut clean = url.clone();
    // Failing to clear userinfo only happens for URLs that cannot have it (no host), in
    // which case there is nothing to clear.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    if clean.query().is_some() {
        let pairs: Vec<(String, String)> = clean
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_name(&k) && !keep.iter().any(|n| *n == k) {
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
    fn registered_secrets_are_masked_wherever_they_appear() {
        let token = Secret::new("IQoJb3JpZ2luX2VjEXAMPLE+session/token==");
        register("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let _short = Secret::new("abc");
        let upstream = format!(
            "denied. GET\n/prod/x\nhost:h\nx-amz-security-token:{}\nkey wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, url ?t={} abc",
            token.expose(),
            percent_encoding::utf8_percent_encode(token.expose(), percent_encoding::NON_ALPHANUMERIC)
        );
        let got = redact(&upstream);
        assert!(!got.contains("EXAMPLE"), "{got}");
        assert!(got.contains("x-amz-security-token:***\n"), "{got}");
        assert!(
            got.ends_with(" abc"),
            "short values are not registered: {got}"
        );
    }

    #[test]
    fn quoted_credential_headers_are_masked_even_when_unknown() {
        let cases = [
            (
                "x-amz-security-token:unknown-token-value\nx-amz-date:20260101T000000Z",
                "x-amz-security-token:***\nx-amz-date:20260101T000000Z",
            ),
            (
                "Authorization: Bearer eyJhbGciOi.x.y\nnext",
                "Authorization: ***\nnext",
            ),
            (
                "Credential=AK/20260101/r/s/aws4_request, Signature=0a1b2c",
                "Credential=AK/20260101/r/s/aws4_request, Signature=***",
            ),
            (
                "Authorization header requires 'Credential'",
                "Authorization header requires 'Credential'",
            ),
            (
                "a design=ok and the signature you gave",
                "a design=ok and the signature you gave",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn a_secret_file_is_re_read_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first-token-value\n").unwrap();
        let source = SecretSource::File(SecretFile::open(&path, "bearer token").unwrap());
        assert_eq!(source.current().expose(), "first-token-value");
        // Replaced the way rotators do it: a new file renamed over the old one.
        let next = dir.path().join("token.new");
        std::fs::write(&next, "second-token-value").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(source.current().expose(), "second-token-value");
        // Briefly missing or empty mid-rotation: the last value stands.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(source.current().expose(), "second-token-value");
        std::fs::write(&path, "  ").unwrap();
        assert_eq!(source.current().expose(), "second-token-value");
        assert!(!source.reload());
        std::fs::write(&path, "third-token-value").unwrap();
        assert!(source.reload());
        assert_eq!(source.current().expose(), "third-token-value");
        let err = SecretFile::open(dir.path().join("missing"), "API key").unwrap_err();
        assert!(
            err.to_string().contains("cannot read the API key file"),
            "{err}"
        );
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
