//! `--show-settings` rows for identity: the Azure source each hop of a run resolves to. The
//! identities themselves are the engine's (`gatelake::engine`); this file only renders them.

use super::resolver::Shown;
use gatelake::config::ApiAuth;
use gatelake::engine::Engine;
use gatelake::identity::azure::AzureHop;

/// `--show-settings` rows naming the Azure source each hop of this run resolves to (no token
/// is fetched; under `auto` the VM metadata service may be probed for a second).
pub async fn hop_sources(engine: &Engine, dest: &str, auth: &ApiAuth) -> Vec<Shown> {
    let settings = engine.settings();
    let wanted = engine.azure_hops(dest, auth);
    let mut rows = Vec::new();
    if gatelake::sink::azure::is_azure_destination(dest)
        && !wanted.iter().any(|(h, _)| *h == AzureHop::Storage)
    {
        rows.push(Shown {
            key: "azure-source-storage".into(),
            value: "storage account variables (connection string, key or SAS)".into(),
            origin: format!(
                "--azure-auth-storage {}",
                settings.azure.kind_for(AzureHop::Storage).as_str()
            ),
        });
    }
    let resolved = match engine.azure_identities(&wanted).await {
        Ok(r) => r,
        Err(e) => {
            rows.push(Shown {
                key: "azure-source".into(),
                value: format!("not resolved: {e}"),
                origin: "resolved".into(),
            });
            return rows;
        }
    };
    for (hop, audience) in &wanted {
        let value = match (resolved.get(*hop), resolved.error(*hop)) {
            (Some(id), _) => format!("{} (tokens for {audience})", id.source.describe()),
            (None, Some(e)) => format!("not resolved: {e}"),
            (None, None) => "not resolved".into(),
        };
        rows.push(Shown {
            key: format!("azure-source-{}", hop.name()),
            value,
            origin: format!(
                "resolved from {} {}",
                hop.flag(),
                settings.azure.kind_for(*hop).as_str()
            ),
        });
    }
    rows
}
