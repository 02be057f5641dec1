//! Which credential the Azure sink uses, resolved the way the Azure CLI resolves it, so that a
//! shell already set up for `az storage …` works unchanged:
//!
//! 1. `AZURE_STORAGE_CONNECTION_STRING` (account key or SAS; `UseDevelopmentStorage=true` is
//!    Azurite's well-known development account);
//! 2. `AZURE_STORAGE_ACCOUNT` + `AZURE_STORAGE_KEY`;
//! 3. `AZURE_STORAGE_SAS_TOKEN`;
//! 4. otherwise an Entra token (`AZURE_STORAGE_AUTH_MODE=login` forces this), for now from the
//!    developer tools (Azure CLI, then Azure Developer CLI); the full federated chain plugs in
//!    through [`StorageCredential::Token`], which takes any `TokenCredential`.
//!
//! The environment is passed in as a lookup function, so tests never touch the process
//! environment. Keys and SAS tokens are held as [`Secret`]s and never printed.

use super::location::AzureLocation;
use crate::secret::Secret;
use crate::sink::SinkError;
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use std::sync::Arc;
use url::Url;

/// Azurite's published development account and key (documented by Microsoft, not a secret).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// The well-known key of [`DEV_ACCOUNT`].
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// How requests to storage are authorized.
#[derive(Clone)]
pub enum StorageCredential {
    /// Storage Shared Key (account key), signed per request.
    SharedKey { account: String, key: Secret },
    /// A SAS query string (without the leading `?`), appended to every request URL.
    Sas(Secret),
    /// An Entra ID token credential (developer tools today; the federated chain later).
    Token(Arc<dyn TokenCredential>),
}

impl std::fmt::Debug for StorageCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SharedKey { account, .. } => {
                write!(f, "SharedKey {{ account: {account:?}, key: *** }}")
            }
            Self::Sas(_) => f.write_str("Sas(***)"),
            Self::Token(_) => f.write_str("Token(..)"),
        }
    }
}

impl StorageCredential {
    /// A short name for reports: `account key`, `SAS token`, `Entra token`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SharedKey { .. } => "account key",
            Self::Sas(_) => "SAS token",
            Self::Token(_) => "Entra token",
        }
    }

    /// What to check when storage answers 401/403 for this kind of credential.
    pub fn auth_hint(&self) -> &'static str {
        match self {
            Self::SharedKey { .. } => {
                "the account key was rejected: check AZURE_STORAGE_KEY or the connection string's AccountKey (az storage account keys list)"
            }
            Self::Sas(_) => {
                "the SAS token was rejected: it may have expired, or lack permissions (needs read, add, create, write, delete, list) for this container"
            }
            Self::Token(_) => {
                "the Entra identity lacks data access: grant it the RBAC role \"Storage Blob Data Contributor\" on the account or container (assignments take a few minutes to apply)"
            }
        }
    }
}

/// The fields of a storage connection string that matter for the Blob endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    pub account: Option<String>,
    pub key: Option<Secret>,
    pub sas: Option<Secret>,
    pub blob_endpoint: Option<Url>,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionString")
            .field("account", &self.account)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("sas", &self.sas.as_ref().map(|_| "***"))
            .field(
                "blob_endpoint",
                &self.blob_endpoint.as_ref().map(Url::as_str),
            )
            .finish()
    }
}

fn cred_err(msg: impl Into<String>) -> SinkError {
    SinkError::Credentials(msg.into())
}

impl ConnectionString {
    /// Parse `Key=Value;Key=Value`. Values may contain `=` (keys and SAS do); errors never
    /// echo the input, since it holds secrets.
    pub fn parse(s: &str) -> Result<Self, SinkError> {
        let mut account = None;
        let mut key = None;
        let mut sas = None;
        let mut blob_endpoint = None;
        let mut protocol = "https".to_string();
        let mut suffix = "core.windows.net".to_string();
        let mut dev = false;
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(cred_err(
                    "AZURE_STORAGE_CONNECTION_STRING is malformed: expected Name=Value pairs separated by ';'",
                ));
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "accountname" => account = Some(value.to_string()),
                "accountkey" => key = Some(Secret::new(value)),
                "sharedaccesssignature" => sas = Some(Secret::new(value.trim_start_matches('?'))),
                "blobendpoint" => {
                    let url = Url::parse(value).map_err(|e| {
                        cred_err(format!(
                            "the connection string's BlobEndpoint is not a URL: {e}"
                        ))
                    })?;
                    blob_endpoint = Some(url);
                }
                "defaultendpointsprotocol" => protocol = value.to_ascii_lowercase(),
                "endpointsuffix" => suffix = value.to_string(),
                "usedevelopmentstorage" => dev = value.eq_ignore_ascii_case("true"),
                // Queue/Table/File endpoints and the like do not concern the Blob sink.
                _ => {}
            }
        }
        if dev {
            account.get_or_insert_with(|| DEV_ACCOUNT.to_string());
            if key.is_none() && sas.is_none() {
                key = Some(Secret::new(DEV_ACCOUNT_KEY));
            }
            if blob_endpoint.is_none() {
                blob_endpoint = Url::parse(DEV_BLOB_ENDPOINT).ok();
            }
        }
        if blob_endpoint.is_none() {
            if let Some(acct) = &account {
                blob_endpoint = Url::parse(&format!("{protocol}://{acct}.blob.{suffix}")).ok();
            }
        }
        Ok(Self {
            account,
            key,
            sas,
            blob_endpoint,
        })
    }

    /// The account the connection string is for: `AccountName`, else read off the endpoint.
    fn account_name(&self) -> Option<String> {
        if let Some(a) = &self.account {
            return Some(a.clone());
        }
        let ep = self.blob_endpoint.as_ref()?;
        AzureLocation::parse(&format!("{}/probe", ep.as_str().trim_end_matches('/')))
            .ok()
            .map(|l| l.account)
    }
}

/// Resolve the credential for `location` from an environment lookup (see the module docs for
/// the order). Returns the location to use — a connection string's `BlobEndpoint` replaces the
/// destination's endpoint when both name the same account — and the credential.
pub fn resolve(
    location: AzureLocation,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(AzureLocation, StorageCredential), SinkError> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());

    if get("AZURE_STORAGE_AUTH_MODE").is_some_and(|m| m.eq_ignore_ascii_case("login")) {
        return Ok((location, developer_tools_credential()?));
    }

    if let Some(cs) = get("AZURE_STORAGE_CONNECTION_STRING") {
        let cs = ConnectionString::parse(&cs)?;
        let cs_account = cs.account_name().ok_or_else(|| {
            cred_err("AZURE_STORAGE_CONNECTION_STRING names no account (set AccountName or BlobEndpoint)")
        })?;
        if cs_account != location.account {
            return Err(cred_err(format!(
                "AZURE_STORAGE_CONNECTION_STRING is for account {cs_account}, but the destination is in account {}; unset it or fix the destination",
                location.account
            )));
        }
        let location = match cs.blob_endpoint {
            Some(ep) => location.with_endpoint(ep),
            None => location,
        };
        let credential = match (cs.key, cs.sas) {
            (Some(key), _) => StorageCredential::SharedKey {
                account: cs_account,
                key,
            },
            (None, Some(sas)) => StorageCredential::Sas(sas),
            (None, None) => return Err(cred_err(
                "AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor SharedAccessSignature",
            )),
        };
        return Ok((location, credential));
    }

    if let Some(key) = get("AZURE_STORAGE_KEY") {
        let account = get("AZURE_STORAGE_ACCOUNT").unwrap_or_else(|| location.account.clone());
        if account != location.account {
            return Err(cred_err(format!(
                "AZURE_STORAGE_ACCOUNT is {account}, but the destination is in account {}; the key would not match",
                location.account
            )));
        }
        return Ok((
            location,
            StorageCredential::SharedKey {
                account,
                key: Secret::new(key),
            },
        ));
    }

    if let Some(sas) = get("AZURE_STORAGE_SAS_TOKEN") {
        let sas = sas.trim().trim_start_matches('?').to_string();
        return Ok((location, StorageCredential::Sas(Secret::new(sas))));
    }

    Ok((location, developer_tools_credential()?))
}

fn developer_tools_credential() -> Result<StorageCredential, SinkError> {
    let cred = azure_identity::DeveloperToolsCredential::new(None)
        .map_err(|e| cred_err(format!("could not set up the Azure CLI credential: {e}")))?;
    Ok(StorageCredential::Token(cred))
}

/// Appends a SAS query string to each request URL. Added as a per-call policy (before the
/// retry policy), so a retried request does not get the SAS twice.
pub struct SasPolicy {
    sas: Secret,
}

impl SasPolicy {
    pub fn new(sas: Secret) -> Self {
        Self { sas }
    }
}

impl std::fmt::Debug for SasPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SasPolicy(***)")
    }
}

#[async_trait]
impl Policy for SasPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let url = request.url_mut();
        let query = match url.query() {
            Some(q) if !q.is_empty() => format!("{q}&{}", self.sas.expose()),
            _ => self.sas.expose().to_string(),
        };
        url.set_query(Some(&query));
        next[0].send(ctx, request, &next[1..]).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn loc(dest: &str) -> AzureLocation {
        AzureLocation::parse(dest).unwrap()
    }

    #[test]
    fn connection_string_with_key_and_matching_endpoint_wins() {
        let env = env_of(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:4242/devstoreaccount1;",
        )]);
        let (l, c) = resolve(
            loc("abfss://c1@devstoreaccount1.dfs.core.windows.net/p"),
            &env,
        )
        .unwrap();
        assert_eq!(
            l.blob_endpoint.as_str(),
            "http://127.0.0.1:4242/devstoreaccount1"
        );
        assert_eq!(l.container, "c1");
        assert_eq!(l.prefix, "p");
        match c {
            StorageCredential::SharedKey { account, key } => {
                assert_eq!(account, "devstoreaccount1");
                assert_eq!(key.expose(), "a2V5");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn use_development_storage_means_azurite() {
        let env = env_of(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "UseDevelopmentStorage=true",
        )]);
        let (l, c) = resolve(loc("http://127.0.0.1:10000/devstoreaccount1/c1"), &env).unwrap();
        assert_eq!(l.blob_endpoint.as_str(), DEV_BLOB_ENDPOINT);
        assert!(
            matches!(c, StorageCredential::SharedKey { ref key, .. } if key.expose() == DEV_ACCOUNT_KEY)
        );
    }

    #[test]
    fn connection_string_for_another_account_is_an_error() {
        let env = env_of(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "AccountName=other;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        )]);
        let err = resolve(loc("https://mylake.blob.core.windows.net/c"), &env).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("account other") && msg.contains("mylake"),
            "{msg}"
        );
        assert!(!msg.contains("a2V5"), "{msg}");
    }

    #[test]
    fn connection_string_with_sas_only() {
        let env = env_of(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "BlobEndpoint=https://mylake.blob.core.windows.net/;SharedAccessSignature=?sv=2022-11-02&sig=abc%3D",
        )]);
        let (l, c) = resolve(loc("https://mylake.dfs.core.windows.net/c"), &env).unwrap();
        assert_eq!(
            l.blob_endpoint.as_str(),
            "https://mylake.blob.core.windows.net/"
        );
        assert!(
            matches!(c, StorageCredential::Sas(ref s) if s.expose() == "sv=2022-11-02&sig=abc%3D")
        );
        assert_eq!(format!("{c:?}"), "Sas(***)");
    }

    #[test]
    fn resolution_order_follows_the_azure_cli() {
        // (env, expected credential kind)
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (
                vec![
                    (
                        "AZURE_STORAGE_CONNECTION_STRING",
                        "AccountName=mylake;AccountKey=a2V5",
                    ),
                    ("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=x"),
                ],
                "account key",
            ),
            (
                vec![
                    ("AZURE_STORAGE_ACCOUNT", "mylake"),
                    ("AZURE_STORAGE_KEY", "a2V5"),
                    ("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=x"),
                ],
                "account key",
            ),
            (
                vec![("AZURE_STORAGE_SAS_TOKEN", "?sv=1&sig=x")],
                "SAS token",
            ),
            (vec![], "Entra token"),
            (
                vec![
                    ("AZURE_STORAGE_AUTH_MODE", "login"),
                    ("AZURE_STORAGE_KEY", "a2V5"),
                ],
                "Entra token",
            ),
            (
                vec![("AZURE_STORAGE_CONNECTION_STRING", "  ")],
                "Entra token",
            ),
        ];
        for (pairs, want) in cases {
            let env = env_of(&pairs);
            let (_, c) = resolve(loc("https://mylake.blob.core.windows.net/c"), &env)
                .unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
            assert_eq!(c.kind(), want, "{pairs:?}");
        }
    }

    #[test]
    fn key_for_another_account_is_an_error() {
        let env = env_of(&[
            ("AZURE_STORAGE_ACCOUNT", "other"),
            ("AZURE_STORAGE_KEY", "a2V5"),
        ]);
        let err = resolve(loc("https://mylake.blob.core.windows.net/c"), &env).unwrap_err();
        assert!(
            err.to_string().contains("AZURE_STORAGE_ACCOUNT is other"),
            "{err}"
        );
    }

    #[test]
    fn malformed_connection_strings_are_reported_without_secrets() {
        let cases = [
            ("AccountKeyWithoutEquals", "malformed"),
            (
                "AccountName=mylake",
                "neither AccountKey nor SharedAccessSignature",
            ),
            ("AccountKey=c2VjcmV0", "names no account"),
            ("BlobEndpoint=not a url;AccountKey=c2VjcmV0", "not a URL"),
        ];
        for (cs, phrase) in cases {
            let env = env_of(&[("AZURE_STORAGE_CONNECTION_STRING", cs)]);
            let err = resolve(loc("https://mylake.blob.core.windows.net/c"), &env)
                .expect_err(cs)
                .to_string();
            assert!(err.contains(phrase), "{cs}: {err}");
            assert!(!err.contains("c2VjcmV0"), "{cs}: {err}");
        }
    }
}
