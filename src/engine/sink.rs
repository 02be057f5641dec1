//! The destination of a run, opened one way for every command: the `--dest` value parsed
//! ([`Destination`]), then a local folder, or an Azure sink built with the credential the
//! settings choose for the storage hop (an Entra identity, or the storage account variables)
//! on the shared HTTP stack (`--ca-bundle`, `SSL_CERT_FILE`, proxies). A second way to open a
//! sink is how `gatelake sql` once ignored `--ca-bundle` and managed identity.

use super::identity::{env, http_options, storage_uses_env_credentials};
use super::settings::IdentitySettings;
use crate::identity::azure::{AzureAuthKind, AzureHop, AzureIdentity};
use crate::sink::azure::{AzureSinkBuilder, StorageCredential};
use crate::sink::local::LocalSink;
use crate::sink::{Destination, Sink, SinkError};
use std::sync::Arc;

/// Open `dest` with the storage credential the settings choose. `storage` is the storage
/// hop's Entra identity, when that hop uses one (see [`super::identity::azure_hops`]).
pub fn open(
    dest: &str,
    settings: &IdentitySettings,
    storage: Option<&Arc<AzureIdentity>>,
) -> Result<Arc<dyn Sink>, SinkError> {
    let location = match Destination::parse(dest)? {
        Destination::Local(path) => return Ok(Arc::new(LocalSink::new(path))),
        Destination::Azure(location) => location,
    };
    let http = crate::http::storage_client(&http_options(settings))
        .map_err(|e| SinkError::Credentials(e.to_string()))?;
    let builder = AzureSinkBuilder::new(location).with_http_client(http);
    let kind = settings.azure.kind_for(AzureHop::Storage);
    let builder = if storage_uses_env_credentials(kind) {
        with_account_variables(builder, kind, settings)?
    } else {
        let Some(identity) = storage else {
            return Err(SinkError::Credentials(
                "internal: no Azure identity for storage".into(),
            ));
        };
        builder.with_credential(StorageCredential::Token(identity.credential()))
    };
    Ok(Arc::new(builder.build()?))
}

/// The credential from the storage account variables that `kind` allows: only its own under
/// an explicit kind (`key` reads the account and key, never a connection string), any of them
/// under `auto`. An explicit kind whose variable is missing is an error naming both.
fn with_account_variables(
    builder: AzureSinkBuilder,
    kind: AzureAuthKind,
    settings: &IdentitySettings,
) -> Result<AzureSinkBuilder, SinkError> {
    let wanted: &[&str] = match kind {
        AzureAuthKind::ConnectionString => &["AZURE_STORAGE_CONNECTION_STRING"],
        AzureAuthKind::Key => &["AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"],
        AzureAuthKind::Sas => &["AZURE_STORAGE_SAS_TOKEN"],
        _ => &[
            "AZURE_STORAGE_CONNECTION_STRING",
            "AZURE_STORAGE_ACCOUNT",
            "AZURE_STORAGE_KEY",
            "AZURE_STORAGE_SAS_TOKEN",
        ],
    };
    let needed = match kind {
        AzureAuthKind::Key => "AZURE_STORAGE_KEY",
        k => wanted
            .first()
            .copied()
            .filter(|_| k.is_storage_only())
            .unwrap_or(""),
    };
    if !needed.is_empty() && env(needed).is_none() {
        let flag = if settings.azure.storage_kind.is_some() {
            "--azure-auth-storage"
        } else {
            "--azure-auth"
        };
        return Err(SinkError::Credentials(format!(
            "{flag} {} needs {needed} to be set",
            kind.as_str()
        )));
    }
    let lookup = |name: &str| {
        if wanted.contains(&name) {
            std::env::var(name).ok()
        } else {
            None
        }
    };
    builder.with_credential_from(&lookup)
}
