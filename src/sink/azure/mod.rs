//! TEMPORARY placeholder with the agreed constructor; replaced by the azure-sink branch.
use super::SinkError;

#[derive(Debug)]
pub struct AzureSink;

impl AzureSink {
    pub fn from_env(dest: &str) -> Result<Self, SinkError> {
        Err(SinkError::InvalidDestination { dest: dest.into(), reason: "Azure support is not built yet".into() })
    }
}

pub fn is_azure_destination(dest: &str) -> bool {
    dest.starts_with("abfss://") || dest.starts_with("https://") || dest.starts_with("http://")
}
