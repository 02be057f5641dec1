//! The one way to build an [`AzureSink`]: where it writes, the credential it writes with, and
//! the HTTP client it sends requests through (the shared stack, with the caller's trusted
//! roots and proxies). The builder only assembles; choosing the credential (a flag, an Entra
//! identity, the storage account variables) is the caller's, so that every command picks it
//! the same way (`engine::sink`).

use super::{auth, AzureLocation, AzureSink, StorageCredential};
use crate::http::HttpOptions;
use crate::sink::SinkError;

/// Builds an [`AzureSink`]: `AzureSinkBuilder::new(location).with_credential(c)
/// .with_http_client(http).build()`.
#[derive(Debug)]
pub struct AzureSinkBuilder {
    location: AzureLocation,
    credential: Option<StorageCredential>,
    http: Option<reqwest::Client>,
}

impl AzureSinkBuilder {
    /// A sink writing under `location`.
    pub fn new(location: AzureLocation) -> Self {
        Self {
            location,
            credential: None,
            http: None,
        }
    }

    /// Parse `dest` (an Azure destination URL) and start a builder for it.
    pub fn for_destination(dest: &str) -> Result<Self, SinkError> {
        AzureLocation::parse(dest).map(Self::new)
    }

    /// Write with `credential`.
    pub fn with_credential(mut self, credential: StorageCredential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Write with the credential the storage account variables name (Azure CLI conventions,
    /// see [`auth::resolve`]), looked up with `env`. A connection string's `BlobEndpoint` for
    /// the same account replaces the location's endpoint.
    pub fn with_credential_from(
        mut self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SinkError> {
        let (location, credential) = auth::resolve(self.location, env)?;
        self.location = location;
        self.credential = Some(credential);
        Ok(self)
    }

    /// Send requests through `http`, a client of the shared stack
    /// ([`crate::http::storage_client`]: the caller's trusted roots and proxies). Without one,
    /// the sink builds its own from the defaults (roots from `SSL_CERT_FILE` included).
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The sink. Fails when no credential was given, the HTTP client cannot be set up, or
    /// the credential cannot be used at this location (an Entra token over plain HTTP).
    pub fn build(self) -> Result<AzureSink, SinkError> {
        let Some(credential) = self.credential else {
            return Err(SinkError::Credentials(format!(
                "no storage credential was given for {}",
                crate::secret::redact_url(&self.location.container_url())
            )));
        };
        let http = match self.http {
            Some(http) => http,
            None => crate::http::storage_client(&HttpOptions::default().with_ca_bundle(None))
                .map_err(|e| SinkError::Credentials(e.to_string()))?,
        };
        AzureSink::new(self.location, credential, http)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sink::Sink;

    #[test]
    fn a_sink_needs_a_credential() {
        let err = AzureSinkBuilder::for_destination("https://a.blob.core.windows.net/c/p")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("no storage credential"), "{err}");
    }

    #[test]
    fn the_environment_credential_may_move_the_endpoint() {
        // (variables, endpoint of the built sink, credential kind)
        let emulator = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1";
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Vars, &str, &str); 2] = [
            (
                &[("AZURE_STORAGE_CONNECTION_STRING", emulator)],
                "http://127.0.0.1:10000/devstoreaccount1/c/p",
                "account key",
            ),
            (
                &[("AZURE_STORAGE_SAS_TOKEN", "?sv=1&sig=x")],
                "https://devstoreaccount1.blob.core.windows.net/c/p",
                "SAS token",
            ),
        ];
        for (vars, root, kind) in cases {
            let env = |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            };
            let sink = AzureSinkBuilder::for_destination(
                "abfss://c@devstoreaccount1.dfs.core.windows.net/p",
            )
            .unwrap()
            .with_credential_from(&env)
            .unwrap()
            .build()
            .unwrap();
            assert_eq!(sink.root_url(), root, "{vars:?}");
            assert_eq!(sink.credential_kind(), kind, "{vars:?}");
        }
    }
}
