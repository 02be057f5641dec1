//! The run's [`ObjectReader`]: the S3 client built from the same parts as STS's — the run's
//! AWS credentials (the role's, from the web-identity exchange, or else the standard chain),
//! the region and endpoint override the AWS SDKs read, and the SDK HTTP client that trusts
//! `--ca-bundle` — plus the shared HTTP stack (same trusted roots) for presigned URLs.

use super::identity::{default_chain, http_options, sdk_http_client};
use super::prove::IdentityFailure;
use super::settings::IdentitySettings;
use crate::identity::aws::AwsCredentials;
use crate::objects::{s3, ObjectError, ObjectReader, ObjectsConfig, S3Settings};
use std::sync::Arc;

/// Why the object reader could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error(transparent)]
    Identity(#[from] IdentityFailure),
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error(transparent)]
    Http(#[from] crate::http::HttpSetupError),
}

/// Where S3 is for these settings: the SDK environment, the role's STS region as fallback.
pub fn s3_settings(settings: &IdentitySettings) -> S3Settings {
    let fallback = settings.aws_role.as_ref().map(|r| r.sts_region.as_str());
    S3Settings::from_env(&|n| std::env::var(n).ok(), fallback)
}

/// The reader for `config`: signing with `aws` (the run's credentials, when it has them:
/// the role's), else with the standard chain.
pub async fn object_reader(
    settings: &IdentitySettings,
    config: &ObjectsConfig,
    aws: Option<Arc<AwsCredentials>>,
) -> Result<ObjectReader, ReaderError> {
    let where_ = s3_settings(settings);
    let credentials = match aws {
        Some(c) => c,
        None => Arc::new(default_chain(settings, &where_.region).await?),
    };
    // -v: where S3 is (never a credential).
    tracing::info!(
        "S3: region {}, endpoint {}",
        where_.region,
        where_.endpoint_url.as_deref().unwrap_or("AWS's")
    );
    let access = s3::s3_client(&where_, credentials, sdk_http_client(settings)?)?;
    let http = crate::http::storage_client(&http_options(settings))?;
    Ok(ObjectReader::new(Some(access), http, config)?)
}
