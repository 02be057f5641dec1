//! TEMPORARY placeholder with the agreed constructor; replaced by the azure-sink branch.
use super::SinkError;

#[derive(Debug)]
pub struct AzureSink;

impl AzureSink {
    pub fn from_env(dest: &str) -> Result<Self, SinkError> {
        Err(SinkError::InvalidDestination {
            dest: dest.into(),
            reason: "Azure support is not built yet".into(),
        })
    }
}

pub fn is_azure_destination(dest: &str) -> bool {
    dest.starts_with("abfss://") || dest.starts_with("https://") || dest.starts_with("http://")
}

#[async_trait::async_trait]
impl super::Sink for AzureSink {
    fn root_url(&self) -> String {
        String::new()
    }
    fn url_of(&self, _: &str) -> String {
        String::new()
    }
    async fn check(&self) -> Result<(), SinkError> {
        Err(SinkError::Credentials("unbuilt".into()))
    }
    async fn put(
        &self,
        _: &str,
        _: bytes::Bytes,
        _: super::PutMode,
    ) -> Result<super::PutResult, SinkError> {
        Err(SinkError::Credentials("unbuilt".into()))
    }
    async fn get(&self, _: &str) -> Result<Option<super::GetResult>, SinkError> {
        Err(SinkError::Credentials("unbuilt".into()))
    }
    async fn list(&self, _: &str) -> Result<Vec<super::ObjectMeta>, SinkError> {
        Err(SinkError::Credentials("unbuilt".into()))
    }
    async fn delete(&self, _: &str) -> Result<(), SinkError> {
        Err(SinkError::Credentials("unbuilt".into()))
    }
}
