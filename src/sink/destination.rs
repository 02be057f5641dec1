//! What a `--dest` value means: an Azure location or a local folder, or a usage error.
//!
//! Every command parses the destination here, before it looks for an identity or makes any
//! network call, so a typo is a usage error (exit 2) that names the accepted forms, never a
//! folder named after the typo (`./s3:/bucket/…`) or an identity probe that ends in "no Azure
//! identity found". A destination is local only when it is written as a path or a `file://`
//! URL; anything else that looks like `scheme:` must be a form this module knows.
//!
//! This module only parses; it never talks to the network and never sees a credential.

use super::azure::location::{AzureLocation, AZURE_SCHEMES};
use super::SinkError;
use std::path::PathBuf;

/// The destinations gatelake accepts, for error messages and help.
pub const ACCEPTED_FORMS: &str = "accepted destinations:
  abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH    (abfs:// too; always sent over TLS)
  wasbs://CONTAINER@ACCOUNT.blob.core.windows.net/PATH   (wasb:// too; always sent over TLS)
  https://ACCOUNT.dfs.core.windows.net/CONTAINER/PATH    (or .blob.; sovereign clouds: core.chinacloudapi.cn, core.usgovcloudapi.net)
  abfss://WORKSPACE@onelake.dfs.fabric.microsoft.com/ITEM.Lakehouse/Files/PATH    (OneLake)
  https://onelake.dfs.fabric.microsoft.com/WORKSPACE/ITEM.Lakehouse/Files/PATH   (OneLake; or onelake.blob.)
  http://127.0.0.1:10000/devstoreaccount1/CONTAINER/PATH (the Azurite emulator; an IP address or localhost)
  ./lake, /data/lake or file:///data/lake                (a local folder)";

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Azure Blob storage (ADLS Gen2, OneLake, or the emulator).
    Azure(AzureLocation),
    /// A local folder.
    Local(PathBuf),
}

fn invalid(dest: &str, reason: impl Into<String>) -> SinkError {
    SinkError::InvalidDestination {
        dest: printable(dest),
        reason: format!("{}\n{ACCEPTED_FORMS}", reason.into()),
    }
}

/// `dest` for an error message: a URL without its password and secret query values, but
/// with its user name kept, because in `abfss://container@…` that is the container.
pub fn printable(dest: &str) -> String {
    let trimmed = dest.trim();
    if scheme_of(trimmed).is_none() {
        return trimmed.to_string();
    }
    let Ok(url) = url::Url::parse(trimmed) else {
        return crate::secret::redact_url_str(trimmed);
    };
    let redacted = crate::secret::redact_url(&url);
    match url::Url::parse(&redacted) {
        Ok(mut clean) if !url.username().is_empty() => {
            let _ = clean.set_username(url.username());
            clean.to_string()
        }
        _ => redacted,
    }
}

/// The scheme of `dest` when it is written like a URL (`scheme:` with a scheme of two or more
/// characters, so that a Windows drive letter such as `C:\lake` stays a path).
fn scheme_of(dest: &str) -> Option<String> {
    let (scheme, _) = dest.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && scheme.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

impl AzureLocation {
    /// Parse an Azure destination URL (see [`crate::sink::azure::location`] for the forms). A
    /// failure is worded like every other `--dest` error: the destination without its secrets
    /// and the accepted forms. It lives here, not in `location.rs`, so that the arrow between
    /// the two files goes one way: this module parses every form, that one knows the Azure place.
    pub fn parse(dest: &str) -> Result<Self, SinkError> {
        Self::parse_url(dest).map_err(|reason| invalid(dest, reason))
    }
}

impl Destination {
    /// Parse a `--dest` value. See [`ACCEPTED_FORMS`].
    pub fn parse(dest: &str) -> Result<Self, SinkError> {
        let trimmed = dest.trim();
        if trimmed.is_empty() {
            return Err(invalid(dest, "the destination is empty"));
        }
        let Some(scheme) = scheme_of(trimmed) else {
            return Ok(Destination::Local(PathBuf::from(trimmed)));
        };
        match scheme.as_str() {
            "file" => Self::parse_file_url(trimmed),
            s if AZURE_SCHEMES.contains(&s) => {
                AzureLocation::parse(trimmed).map(Destination::Azure)
            }
            "s3" | "s3a" | "s3n" => Err(invalid(
                dest,
                "S3 destinations are not supported yet: write to Azure storage or a local folder",
            )),
            other => Err(invalid(
                dest,
                format!("unknown scheme {other}: (for a local folder whose name has a colon, write ./{trimmed})"),
            )),
        }
    }

    fn parse_file_url(dest: &str) -> Result<Self, SinkError> {
        let url =
            url::Url::parse(dest).map_err(|e| invalid(dest, format!("not a file:// URL ({e})")))?;
        match url.host_str() {
            None | Some("") | Some("localhost") => {}
            Some(host) => {
                return Err(invalid(
                    dest,
                    format!(
                    "a file:// URL on another host ({host}) cannot be written; write file:///path"
                ),
                ))
            }
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(dest, "a file:// URL takes no query or fragment"));
        }
        let path = url
            .to_file_path()
            .map_err(|()| invalid(dest, "not a local path; write file:///absolute/path"))?;
        Ok(Destination::Local(path))
    }

    /// Whether this is an Azure destination.
    pub fn is_azure(&self) -> bool {
        matches!(self, Destination::Azure(_))
    }

    /// What the destination means, for `--show-settings`.
    pub fn describe(&self) -> String {
        match self {
            Destination::Azure(loc) => loc.describe(),
            Destination::Local(path) => format!("{} (local folder)", path.display()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn azure_forms_mean_the_blob_endpoint_over_tls() {
        // (input, what --show-settings says it means)
        let cases = [
            (
                "abfs://raw@acct.dfs.core.windows.net/orders",
                "https://acct.blob.core.windows.net/raw/orders (Azure storage: account acct, container raw, folder orders)",
            ),
            (
                "abfss://raw@acct.dfs.core.windows.net/orders/",
                "https://acct.blob.core.windows.net/raw/orders (Azure storage: account acct, container raw, folder orders)",
            ),
            (
                "wasbs://raw@acct.blob.core.windows.net/a/b",
                "https://acct.blob.core.windows.net/raw/a/b (Azure storage: account acct, container raw, folder a/b)",
            ),
            (
                "wasb://raw@acct.blob.core.windows.net",
                "https://acct.blob.core.windows.net/raw (Azure storage: account acct, container raw, the container's root)",
            ),
            (
                "https://acct.dfs.core.windows.net/raw/x",
                "https://acct.blob.core.windows.net/raw/x (Azure storage: account acct, container raw, folder x)",
            ),
            (
                "https://acct.blob.core.usgovcloudapi.net/raw/x",
                "https://acct.blob.core.usgovcloudapi.net/raw/x (Azure storage: account acct, container raw, folder x)",
            ),
            (
                "abfss://Sales@onelake.dfs.fabric.microsoft.com/lh.Lakehouse/Files/orders",
                "https://onelake.blob.fabric.microsoft.com/Sales/lh.Lakehouse/Files/orders (OneLake: workspace Sales, folder lh.Lakehouse/Files/orders)",
            ),
            (
                "https://onelake.dfs.fabric.microsoft.com/Sales/lh.Lakehouse/Files",
                "https://onelake.blob.fabric.microsoft.com/Sales/lh.Lakehouse/Files (OneLake: workspace Sales, folder lh.Lakehouse/Files)",
            ),
            (
                "http://127.0.0.1:10000/devstoreaccount1/c1/p",
                "http://127.0.0.1:10000/devstoreaccount1/c1/p (Azure storage: account devstoreaccount1, container c1, folder p)",
            ),
        ];
        for (input, want) in cases {
            let d = Destination::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert!(d.is_azure(), "{input}");
            assert_eq!(d.describe(), want, "{input}");
        }
    }

    #[test]
    fn local_only_as_a_path_or_file_url() {
        let cases = [
            ("./lake", "./lake"),
            ("lake/orders", "lake/orders"),
            ("/data/lake", "/data/lake"),
            ("file:///data/lake", "/data/lake"),
            ("file://localhost/data/my%20lake", "/data/my lake"),
            ("C:\\lake", "C:\\lake"),
            ("./has:colon", "./has:colon"),
        ];
        for (input, want) in cases {
            assert_eq!(
                Destination::parse(input).unwrap_or_else(|e| panic!("{input}: {e}")),
                Destination::Local(PathBuf::from(want)),
                "{input}"
            );
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_accepted_forms() {
        // (input, a phrase the error must contain)
        let cases = [
            ("s3://bucket/path", "S3 destinations are not supported yet"),
            ("s3a://bucket/path", "S3 destinations are not supported yet"),
            ("gs://bucket/path", "unknown scheme gs:"),
            ("hdfs://nn/lake", "unknown scheme hdfs:"),
            ("ftp://host/x", "unknown scheme ftp:"),
            ("lake:orders", "unknown scheme lake:"),
            ("file://server/share/lake", "another host"),
            ("", "empty"),
            ("abfss://acct.dfs.core.windows.net/x", "missing container"),
            (
                "abfs://raw@example.com/x",
                "cannot tell the storage account",
            ),
            (
                "abfss://ws@onelake.dfs.fabric.microsoft.com",
                "names the item",
            ),
            (
                "wasbs://raw:k3y@acct.blob.core.windows.net/x",
                "does not belong in the destination",
            ),
        ];
        for (input, phrase) in cases {
            let err = Destination::parse(input).expect_err(input);
            assert!(
                matches!(err, SinkError::InvalidDestination { .. }),
                "{input}: {err:?}"
            );
            let text = err.to_string();
            assert!(text.contains(phrase), "{input}: {text}");
            assert!(text.contains("accepted destinations:"), "{input}: {text}");
            assert!(!text.contains("k3y"), "{input}: leaks the key: {text}");
        }
    }
}
