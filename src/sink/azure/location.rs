//! Where in Azure a destination points: account, Blob endpoint, container and prefix.
//!
//! Users write destinations the way the tool they came from prints them: `abfss://` (or the
//! older `abfs://`) from Synapse and Spark, `wasbs://` from older Hadoop set-ups,
//! `https://…dfs.core.windows.net/` from the ADLS Gen2 portal, the Blob endpoint from storage
//! explorers, OneLake's `…@onelake.dfs.fabric.microsoft.com/<item>/Files/…` from Fabric, and
//! the emulator's path-style URL from Azurite. All of them end up on the *Blob* endpoint over
//! TLS, because the block upload (stage blocks, commit once) and the conditional puts the
//! checkpoint protocol relies on are Blob API operations, and ADLS Gen2 accounts (and OneLake)
//! serve the Blob API over the same data. `abfs://` and `wasb://` name the same data as their
//! TLS forms; only the Hadoop driver's transport differed, and gatelake always uses TLS.
//!
//! This module only parses; it never talks to the network and never sees a credential.

use url::Url;

/// A parsed Azure destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureLocation {
    /// The storage account name, e.g. `mylake` or `devstoreaccount1`.
    pub account: String,
    /// The Blob endpoint, without a trailing slash: `https://mylake.blob.core.windows.net` or,
    /// path-style, `http://127.0.0.1:10000/devstoreaccount1`.
    pub blob_endpoint: Url,
    /// The container (ADLS Gen2: file system).
    pub container: String,
    /// The folder inside the container, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

/// The URL schemes that name Azure storage.
pub const AZURE_SCHEMES: [&str; 6] = ["abfss", "abfs", "wasbs", "wasb", "https", "http"];

/// Whether `dest` names an Azure destination (rather than a local folder or an unknown
/// scheme): its scheme is one of [`AZURE_SCHEMES`]. Whether it is a *valid* one is
/// [`AzureLocation::parse`]'s question; [`crate::sink::Destination::parse`] answers both.
pub fn is_azure_destination(dest: &str) -> bool {
    let lower = dest.trim().to_ascii_lowercase();
    AZURE_SCHEMES
        .iter()
        .any(|scheme| lower.starts_with(&format!("{scheme}://")))
}

/// Why `dest` is not an Azure location, in words. The reason alone: [`AzureLocation::parse`]
/// (in `sink::destination`, the parser of every form) adds the printable destination and the
/// accepted forms, so this module need not know the other forms.
fn invalid(reason: impl Into<String>) -> String {
    reason.into()
}

/// Path-style addressing (`host/account/container`) is what the emulator and private test
/// setups use; public endpoints are always virtual-host style (`account.blob.…`).
fn is_path_style_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => true,
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

fn clean_prefix(segments: &[&str]) -> String {
    crate::sink::join_path(segments)
}

impl AzureLocation {
    /// Parse a destination URL, or say why it is not one. See the module docs for the accepted
    /// forms; callers want [`AzureLocation::parse`], which turns the reason into a
    /// [`crate::sink::SinkError`].
    pub(crate) fn parse_url(dest: &str) -> Result<Self, String> {
        let trimmed = dest.trim();
        let url = Url::parse(trimmed).map_err(|e| invalid(format!("not a URL ({e})")))?;
        let loc = match url.scheme() {
            "abfss" | "abfs" => Self::parse_hadoop(&url, "dfs")?,
            "wasbs" | "wasb" => Self::parse_hadoop(&url, "blob")?,
            "https" | "http" => Self::parse_http(&url)?,
            other => {
                return Err(invalid(format!(
                    "unknown scheme {other}:// for Azure storage"
                )))
            }
        };
        loc.check_onelake()?;
        Ok(loc)
    }

    /// OneLake's "container" is the workspace, and writes go under an item (a lakehouse):
    /// a destination that stops at the workspace cannot be written to.
    fn check_onelake(&self) -> Result<(), String> {
        if self.is_onelake() && self.prefix.is_empty() {
            return Err(invalid("a OneLake destination names the item after the workspace, e.g. abfss://WORKSPACE@onelake.dfs.fabric.microsoft.com/ITEM.Lakehouse/Files/orders",
            ));
        }
        Ok(())
    }

    /// Whether this is Microsoft Fabric's OneLake (an account named `onelake`, or a regional
    /// `<region>-onelake`, under `fabric.microsoft.com`).
    pub fn is_onelake(&self) -> bool {
        let host = self.blob_endpoint.host_str().unwrap_or_default();
        (self.account == "onelake" || self.account.ends_with("-onelake"))
            && host.ends_with(".fabric.microsoft.com")
    }

    /// What the destination means, for `--show-settings`: the Blob URL it writes to and its
    /// parts in words.
    pub fn describe(&self) -> String {
        let mut url = self.container_url().to_string();
        if !self.prefix.is_empty() {
            url = format!("{}/{}", url.trim_end_matches('/'), self.prefix);
        }
        let folder = if self.prefix.is_empty() {
            "the container's root".to_string()
        } else {
            format!("folder {}", self.prefix)
        };
        if self.is_onelake() {
            format!("{url} (OneLake: workspace {}, {folder})", self.container)
        } else {
            format!(
                "{url} (Azure storage: account {}, container {}, {folder})",
                self.account, self.container
            )
        }
    }

    /// `abfs[s]://container@account.dfs.<suffix>/path` and
    /// `wasb[s]://container@account.blob.<suffix>/path`; `service` is the endpoint the scheme
    /// names, for the examples in errors (either endpoint is accepted: both reach the data).
    fn parse_hadoop(url: &Url, service: &str) -> Result<Self, String> {
        let scheme = url.scheme();
        let container = url.username();
        if container.is_empty() {
            return Err(invalid(format!("missing container: write {scheme}://container@account.{service}.core.windows.net/path"),
            ));
        }
        if url.query().is_some() || url.password().is_some() {
            return Err(invalid("a query string or password (such as a SAS token or key) does not belong in the destination; set AZURE_STORAGE_SAS_TOKEN instead",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| invalid(format!("missing host (account.{service}.core.windows.net)")))?;
        let (account, suffix) = split_account_host(host)?;
        let endpoint = parse_endpoint(&format!("https://{account}.blob.{suffix}"))?;
        let container = decode(container);
        let segments: Vec<&str> = url.path().split('/').collect();
        Ok(Self {
            account: account.to_string(),
            blob_endpoint: endpoint,
            container,
            prefix: decode(&clean_prefix(&segments)),
        })
    }

    fn parse_http(url: &Url) -> Result<Self, String> {
        if url.query().is_some() || url.password().is_some() {
            return Err(invalid("a query string (such as a SAS token) does not belong in the destination; set AZURE_STORAGE_SAS_TOKEN instead",
            ));
        }
        let host = url.host().ok_or_else(|| invalid("missing host"))?;
        let mut segments = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).collect::<Vec<_>>())
            .unwrap_or_default();
        if is_path_style_host(&host) {
            // http://127.0.0.1:10000/devstoreaccount1/container/path
            if segments.is_empty() {
                return Err(invalid("missing account: an emulator URL looks like http://127.0.0.1:10000/devstoreaccount1/container/path",
                ));
            }
            let account = segments.remove(0).to_string();
            let mut endpoint = url.clone();
            endpoint.set_query(None);
            endpoint.set_fragment(None);
            endpoint.set_path(&format!("/{account}"));
            let container = take_container(&mut segments)?;
            return Ok(Self {
                account: decode(&account),
                blob_endpoint: endpoint,
                container,
                prefix: decode(&clean_prefix(&segments)),
            });
        }
        if url.scheme() == "http" {
            return Err(invalid("plain http:// is only for a local emulator (an IP address or localhost); use https://",
            ));
        }
        let host = url.host_str().unwrap_or_default();
        let (account, suffix) = split_account_host(host)?;
        let mut endpoint = parse_endpoint(&format!("https://{account}.blob.{suffix}"))?;
        if let Some(port) = url.port() {
            // A port is unusual for Azure, but a private endpoint or proxy may need one.
            let _ = endpoint.set_port(Some(port));
        }
        let container = take_container(&mut segments)?;
        Ok(Self {
            account: account.to_string(),
            blob_endpoint: endpoint,
            container,
            prefix: decode(&clean_prefix(&segments)),
        })
    }

    /// The container's URL (`{blob_endpoint}/{container}`).
    pub fn container_url(&self) -> Url {
        let mut url = self.blob_endpoint.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().push(&self.container);
        }
        url
    }

    /// The URL of the blob at `path` (relative to the prefix). Each `/`-separated segment is
    /// percent-encoded on its own, so the service sees real folders, not `%2F`.
    pub fn blob_url(&self, path: &str) -> Url {
        let mut url = self.container_url();
        let full = self.blob_name(path);
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.extend(full.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    /// The blob name (path inside the container) for a sink-relative path.
    pub fn blob_name(&self, path: &str) -> String {
        crate::sink::join_path(&[&self.prefix, path])
    }

    /// The prefix to list for a sink-relative prefix. Unlike [`Self::blob_name`] it keeps a
    /// trailing `/`, which matters: `run1/` must not match `run10/`.
    pub fn list_prefix(&self, prefix: &str) -> String {
        let rel = prefix.trim_start_matches('/');
        match (self.prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (false, true) => format!("{}/", self.prefix),
            (false, false) => format!("{}/{rel}", self.prefix),
        }
    }

    /// Whether the Blob endpoint is path-style (emulator), which changes how requests are signed.
    pub fn is_path_style(&self) -> bool {
        self.blob_endpoint
            .host()
            .map(|h| is_path_style_host(&h))
            .unwrap_or(false)
    }

    /// Replace the endpoint (a connection string's `BlobEndpoint` may point the same account at
    /// the emulator, a private endpoint or a proxy).
    pub fn with_endpoint(mut self, endpoint: Url) -> Self {
        let mut endpoint = endpoint;
        let trimmed = endpoint.path().trim_end_matches('/').to_string();
        endpoint.set_path(&trimmed);
        endpoint.set_query(None);
        self.blob_endpoint = endpoint;
        self
    }
}

fn take_container(segments: &mut Vec<&str>) -> Result<String, String> {
    if segments.is_empty() {
        return Err(invalid("missing container: the URL's path must start with the container, e.g. …/container/path",
        ));
    }
    Ok(decode(segments.remove(0)))
}

/// `account.blob.core.windows.net` or `account.dfs.core.windows.net` → (`account`,
/// `core.windows.net`). Sovereign clouds only differ in the suffix.
fn split_account_host(host: &str) -> Result<(&str, &str), String> {
    let mut parts = host.splitn(3, '.');
    let account = parts.next().unwrap_or_default();
    let service = parts.next().unwrap_or_default().to_ascii_lowercase();
    let suffix = parts.next().unwrap_or_default();
    if account.is_empty() || suffix.is_empty() || !(service == "blob" || service == "dfs") {
        return Err(invalid(format!("cannot tell the storage account from host {host}: expected account.blob.core.windows.net or account.dfs.core.windows.net"),
        ));
    }
    Ok((account, suffix))
}

fn parse_endpoint(s: &str) -> Result<Url, String> {
    Url::parse(s).map_err(|e| invalid(format!("bad endpoint {s}: {e}")))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_accepted_form() {
        // (input, account, endpoint, container, prefix)
        let cases = [
            (
                "abfss://raw@mylake.dfs.core.windows.net/orders/daily",
                "mylake",
                "https://mylake.blob.core.windows.net/",
                "raw",
                "orders/daily",
            ),
            (
                "abfss://raw@mylake.dfs.core.windows.net",
                "mylake",
                "https://mylake.blob.core.windows.net/",
                "raw",
                "",
            ),
            (
                "https://mylake.blob.core.windows.net/raw/orders/",
                "mylake",
                "https://mylake.blob.core.windows.net/",
                "raw",
                "orders",
            ),
            (
                "https://mylake.dfs.core.windows.net/raw/a/b",
                "mylake",
                "https://mylake.blob.core.windows.net/",
                "raw",
                "a/b",
            ),
            (
                "https://mylake.dfs.core.chinacloudapi.cn/raw",
                "mylake",
                "https://mylake.blob.core.chinacloudapi.cn/",
                "raw",
                "",
            ),
            (
                "http://127.0.0.1:10000/devstoreaccount1/c1/p/q",
                "devstoreaccount1",
                "http://127.0.0.1:10000/devstoreaccount1",
                "c1",
                "p/q",
            ),
            (
                "http://localhost:41234/devstoreaccount1/c1",
                "devstoreaccount1",
                "http://localhost:41234/devstoreaccount1",
                "c1",
                "",
            ),
            (
                "abfs://raw@mylake.dfs.core.windows.net/x",
                "mylake",
                "https://mylake.blob.core.windows.net/",
                "raw",
                "x",
            ),
            (
                "wasbs://raw@mylake.blob.core.windows.net/x/y",
                "mylake",
                "https://mylake.blob.core.windows.net/",
                "raw",
                "x/y",
            ),
            (
                "wasb://raw@mylake.blob.core.windows.net",
                "mylake",
                "https://mylake.blob.core.windows.net/",
                "raw",
                "",
            ),
            (
                "abfss://ws@onelake.dfs.fabric.microsoft.com/lh.Lakehouse/Files/o",
                "onelake",
                "https://onelake.blob.fabric.microsoft.com/",
                "ws",
                "lh.Lakehouse/Files/o",
            ),
            (
                "http://[::1]:9/acct/c1/x",
                "acct",
                "http://[::1]:9/acct",
                "c1",
                "x",
            ),
        ];
        for (input, account, endpoint, container, prefix) in cases {
            let loc = AzureLocation::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(loc.account, account, "{input}");
            assert_eq!(loc.blob_endpoint.as_str(), endpoint, "{input}");
            assert_eq!(loc.container, container, "{input}");
            assert_eq!(loc.prefix, prefix, "{input}");
        }
    }

    #[test]
    fn rejects_bad_destinations_with_a_hint() {
        // (input, a phrase the error must contain)
        let cases = [
            ("s3://bucket/x", "unknown scheme s3://"),
            ("abfss://mylake.dfs.core.windows.net/x", "missing container"),
            ("https://mylake.blob.core.windows.net", "missing container"),
            ("https://mylake.blob.core.windows.net/", "missing container"),
            (
                "http://127.0.0.1:10000/devstoreaccount1",
                "missing container",
            ),
            ("http://127.0.0.1:10000/", "missing account"),
            (
                "https://example.com/raw/x",
                "cannot tell the storage account",
            ),
            ("http://mylake.blob.core.windows.net/raw", "use https://"),
            (
                "https://mylake.blob.core.windows.net/raw?sig=abc",
                "AZURE_STORAGE_SAS_TOKEN",
            ),
            ("not a url", "not a URL"),
        ];
        for (input, phrase) in cases {
            let err = AzureLocation::parse(input).expect_err(input).to_string();
            assert!(err.contains(phrase), "{input}: {err}");
            assert!(
                !err.contains("sig=abc"),
                "{input}: error leaks the SAS: {err}"
            );
        }
    }

    #[test]
    fn builds_blob_urls_segment_by_segment() {
        let loc = AzureLocation::parse("http://127.0.0.1:10000/devstoreaccount1/c1/jobs").unwrap();
        assert_eq!(
            loc.blob_url("run 1/part-0.gz").as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/c1/jobs/run%201/part-0.gz"
        );
        assert_eq!(
            loc.container_url().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/c1"
        );
        assert!(loc.is_path_style());
        assert_eq!(loc.blob_name("/a/b"), "jobs/a/b");
        assert_eq!(loc.list_prefix(""), "jobs/");
        assert_eq!(loc.list_prefix("run1/"), "jobs/run1/");

        let loc = AzureLocation::parse("https://a.blob.core.windows.net/c").unwrap();
        assert!(!loc.is_path_style());
        assert_eq!(
            loc.blob_url("x/y").as_str(),
            "https://a.blob.core.windows.net/c/x/y"
        );
        assert_eq!(loc.list_prefix("run"), "run");
    }

    #[test]
    fn classifies_destinations() {
        let cases = [
            ("abfss://c@a.dfs.core.windows.net/p", true),
            ("abfs://c@a.dfs.core.windows.net/p", true),
            ("wasbs://c@a.blob.core.windows.net/p", true),
            ("s3://bucket/p", false),
            ("https://a.blob.core.windows.net/c", true),
            ("HTTP://127.0.0.1:1/devstoreaccount1/c", true),
            ("./lake", false),
            ("/data/lake", false),
            ("file:///data/lake", false),
            ("C:\\lake", false),
        ];
        for (input, want) in cases {
            assert_eq!(is_azure_destination(input), want, "{input}");
        }
    }
}
