//! The Azurite emulator that `scripts/test.sh` starts for the test run. Its Blob endpoint
//! arrives in `GATELAKE_TEST_AZURITE_BLOB` (e.g. `http://127.0.0.1:41234/devstoreaccount1`).
//!
//! A test that needs Azurite and cannot find it fails loudly instead of skipping: a green run
//! that silently skipped the storage tests would prove nothing.

use gatelake::secret::Secret;
use gatelake::sink::azure::auth::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
use gatelake::sink::azure::{AzureLocation, AzureSink, AzureSinkBuilder, StorageCredential};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const ENV_VAR: &str = "GATELAKE_TEST_AZURITE_BLOB";

/// The running emulator.
#[derive(Debug, Clone)]
pub struct Azurite {
    /// The Blob endpoint, path-style: `http://127.0.0.1:PORT/devstoreaccount1`.
    pub blob_endpoint: String,
    /// Always `devstoreaccount1`.
    pub account: &'static str,
    /// Azurite's published development key.
    pub key: &'static str,
}

/// The emulator started by `scripts/test.sh`. Panics (never skips) when it is not configured
/// or not reachable.
pub fn azurite() -> Azurite {
    let endpoint = std::env::var(ENV_VAR).unwrap_or_else(|_| {
        panic!(
            "{ENV_VAR} is not set: these tests need the Azurite emulator. Run them with \
             `bash scripts/test.sh` (it installs and starts Azurite), not bare `cargo test`."
        )
    });
    let url = url::Url::parse(&endpoint)
        .unwrap_or_else(|e| panic!("{ENV_VAR}={endpoint} is not a URL: {e}"));
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let port = url.port_or_known_default().unwrap_or(10000);
    let reachable = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
        .unwrap_or(false);
    assert!(
        reachable,
        "Azurite is not reachable at {endpoint} ({ENV_VAR}). Run the tests with \
         `bash scripts/test.sh`, which starts it."
    );
    Azurite {
        blob_endpoint: endpoint.trim_end_matches('/').to_string(),
        account: DEV_ACCOUNT,
        key: DEV_ACCOUNT_KEY,
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A container name unique to this call: tests run in parallel (and several runs may share
/// one emulator). Container names are 3–63 lowercase letters, digits and single hyphens.
fn unique_container_name(prefix: &str) -> String {
    let clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let clean = clean
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let clean = if clean.is_empty() {
        "t".to_string()
    } else {
        clean
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("{}-{n}-{:08x}", std::process::id(), rand::random::<u32>());
    let keep = 63 - suffix.len() - 1;
    let head: String = clean.chars().take(keep).collect();
    format!("{}-{suffix}", head.trim_end_matches('-'))
}

impl Azurite {
    /// A connection string for the emulator, as a user would put in
    /// `AZURE_STORAGE_CONNECTION_STRING`.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
            self.account, self.key, self.blob_endpoint
        )
    }

    /// The destination URL of `path` in `container`:
    /// `http://127.0.0.1:PORT/devstoreaccount1/container/path`.
    pub fn dest_url(&self, container: &str, path: &str) -> String {
        let path = path.trim_matches('/');
        if path.is_empty() {
            format!("{}/{container}", self.blob_endpoint)
        } else {
            format!("{}/{container}/{path}", self.blob_endpoint)
        }
    }

    /// The account-key credential of the emulator's development account.
    pub fn credential(&self) -> StorageCredential {
        StorageCredential::SharedKey {
            account: self.account.to_string(),
            key: Secret::new(self.key),
        }
    }

    /// A sink on `container`/`path` with `credential`; creates nothing.
    pub fn sink(&self, container: &str, path: &str, credential: StorageCredential) -> AzureSink {
        let location = AzureLocation::parse(&self.dest_url(container, path))
            .unwrap_or_else(|e| panic!("bad Azurite destination: {e}"));
        AzureSinkBuilder::new(location)
            .with_credential(credential)
            .build()
            .unwrap_or_else(|e| panic!("could not build the Azurite sink: {e}"))
    }

    /// Break the lease on `blob` in `container` at once (Lease Blob, action `break`, period
    /// 0), as an operator would, or as the lease's own expiry does a minute after its holder
    /// died. Fine when the blob holds no lease.
    pub async fn break_lease(&self, container: &str, blob: &str) {
        use gatelake::sink::azure::shared_key::{string_to_sign, SharedKeyPolicy};
        let url = url::Url::parse(&format!(
            "{}/{container}/{blob}?comp=lease",
            self.blob_endpoint
        ))
        .unwrap();
        let headers: Vec<(String, String)> = [
            (
                "x-ms-date",
                httpdate::fmt_http_date(std::time::SystemTime::now()),
            ),
            (
                "x-ms-version",
                gatelake::sink::azure::STORAGE_API_VERSION.to_string(),
            ),
            ("x-ms-lease-action", "break".to_string()),
            ("x-ms-lease-break-period", "0".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let policy = SharedKeyPolicy::new(self.account, &Secret::new(self.key)).unwrap();
        let signature = policy.signature(&string_to_sign("PUT", &url, &headers, 0, self.account));
        let mut request = reqwest::Client::new()
            .put(url)
            .header("content-length", "0")
            .header(
                "authorization",
                format!("SharedKey {}:{signature}", self.account),
            );
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        let status = request.send().await.unwrap().status().as_u16();
        // 202: broken; 409: there was no lease to break; 404: no lock blob yet.
        assert!(
            [202, 409, 404].contains(&status),
            "breaking the lease on {container}/{blob}: status {status}"
        );
    }

    /// A fresh container whose blobs anyone may read without credentials (public access
    /// `blob`), and a sink rooted at it: the source of a server-side copy whose URL carries
    /// no Azure signature.
    pub async fn new_public_container(&self, prefix: &str) -> (String, AzureSink) {
        use gatelake::sink::azure::shared_key::{string_to_sign, SharedKeyPolicy};
        let name = unique_container_name(prefix);
        let url =
            url::Url::parse(&format!("{}/{name}?restype=container", self.blob_endpoint)).unwrap();
        let headers: Vec<(String, String)> = [
            ("x-ms-blob-public-access", "blob".to_string()),
            (
                "x-ms-date",
                httpdate::fmt_http_date(std::time::SystemTime::now()),
            ),
            (
                "x-ms-version",
                gatelake::sink::azure::STORAGE_API_VERSION.to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let policy = SharedKeyPolicy::new(self.account, &Secret::new(self.key)).unwrap();
        let signature = policy.signature(&string_to_sign("PUT", &url, &headers, 0, self.account));
        let mut request = reqwest::Client::new()
            .put(url)
            .header("content-length", "0")
            .header(
                "authorization",
                format!("SharedKey {}:{signature}", self.account),
            );
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        let status = request.send().await.unwrap().status().as_u16();
        assert_eq!(status, 201, "creating the public container {name}");
        let sink = self.sink(&name, "", self.credential());
        (name, sink)
    }

    /// A fresh, empty container (unique name per call) and a sink rooted at it.
    pub async fn new_container(&self, prefix: &str) -> (String, AzureSink) {
        let name = unique_container_name(prefix);
        let sink = self.sink(&name, "", self.credential());
        sink.create_container_if_missing()
            .await
            .unwrap_or_else(|e| panic!("could not create container {name} in Azurite: {e}"));
        (name, sink)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn container_names_are_valid_and_unique() {
        let a = super::unique_container_name("Conformance_Round--Trip!");
        let b = super::unique_container_name("Conformance_Round--Trip!");
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!((3..=63).contains(&name.len()), "{name}");
            assert!(!name.contains("--"), "{name}");
            assert!(name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        }
        let long = super::unique_container_name(&"x".repeat(100));
        assert!(long.len() <= 63, "{long}");
    }
}
