//! The S3 client of a run, and what an S3 answer means.
//!
//! The client is built from the same parts as STS's ([`crate::identity::aws`]): the run's AWS
//! credentials (the web-identity exchange, refreshed before expiry by the one token cache, or
//! the standard chain), the region, the endpoint override the AWS SDKs read
//! (`AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`: moto in the tests) and the SDK HTTP
//! client that trusts `--ca-bundle`. The SDK's own retry is off: reads are retried by the one
//! retry module, with the classification here ([`classify`]), shared by presigned-URL reads.

use super::error::ObjectError;
use crate::identity::aws::AwsCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::{
    IdentityCache, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use url::Url;

/// Where the S3 client sends its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub region: String,
    /// The endpoint override (moto, MinIO, a VPC endpoint); path-style addressing with it.
    pub endpoint_url: Option<String>,
}

impl S3Settings {
    /// As the AWS SDKs read them: the endpoint from `AWS_ENDPOINT_URL_S3`, then
    /// `AWS_ENDPOINT_URL`; the region from `AWS_REGION`, then `AWS_DEFAULT_REGION`, then
    /// `fallback` (the STS region of `--aws-role-arn`), then `us-east-1`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>, fallback: Option<&str>) -> S3Settings {
        let get = |n: &str| env(n).filter(|v| !v.trim().is_empty());
        S3Settings {
            region: get("AWS_REGION")
                .or_else(|| get("AWS_DEFAULT_REGION"))
                .or_else(|| fallback.map(str::to_string))
                .unwrap_or_else(|| "us-east-1".to_string()),
            endpoint_url: get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL")),
        }
    }
}

/// An S3 client and the endpoint it talks to (the host policy allows URLs on it).
#[derive(Debug, Clone)]
pub struct S3Access {
    pub client: aws_sdk_s3::Client,
    pub endpoint: Option<Url>,
}

/// The run's cached credentials as the SDK's provider: the one token cache refreshes them
/// (so the SDK's own identity cache is off).
#[derive(Debug, Clone)]
struct RunCredentials(Arc<AwsCredentials>);

impl ProvideCredentials for RunCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0
                .get(SystemTime::now())
                .await
                .map_err(|e| CredentialsError::provider_error(e.to_string()))
        })
    }
}

/// The S3 client for `settings`, signing with `credentials`, over `http_client` (the SDK
/// client with the extra trusted roots; `None`: the SDK's default).
pub fn s3_client(
    settings: &S3Settings,
    credentials: Arc<AwsCredentials>,
    http_client: Option<SharedHttpClient>,
) -> Result<S3Access, ObjectError> {
    let endpoint = match &settings.endpoint_url {
        Some(e) => Some(Url::parse(e).map_err(|err| ObjectError::InvalidReference {
            reference: format!("AWS_ENDPOINT_URL_S3 {e}"),
            reason: format!("not a URL ({err})"),
        })?),
        None => None,
    };
    let mut b = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(SharedCredentialsProvider::new(RunCredentials(credentials)))
        .identity_cache(IdentityCache::no_cache())
        // Retried by the one retry module (ObjectReader), not by the SDK as well.
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(ep) = &settings.endpoint_url {
        b = b.endpoint_url(ep).force_path_style(true);
    }
    if let Some(h) = http_client {
        b = b.http_client(h);
    }
    Ok(S3Access {
        client: aws_sdk_s3::Client::from_conf(b.build()),
        endpoint,
    })
}

/// What a failed S3 (or presigned-URL) request means for the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NotFound {
        code: Option<String>,
    },
    /// A presigned URL past its expiry.
    Expired,
    /// `If-Match` failed: the object is not the one pinned.
    Changed,
    Denied {
        code: String,
        message: String,
    },
    /// Worth another attempt (SlowDown, 500/503, timeouts, a dropped or truncated body).
    Transient {
        cause: String,
        after: Option<Duration>,
    },
    Fatal {
        cause: String,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotFound { code } => write!(f, "404 {}", code.as_deref().unwrap_or("")),
            Failure::Expired => f.write_str("presigned URL expired"),
            Failure::Changed => f.write_str("412 PreconditionFailed"),
            Failure::Denied { code, message } => write!(f, "403 {code}: {message}"),
            Failure::Transient { cause, .. } | Failure::Fatal { cause } => f.write_str(cause),
        }
    }
}

impl Failure {
    /// The reader's error for `object`, `pinned` naming the version/ETag it was pinned to.
    pub fn into_error(self, object: &str, pinned: &str) -> ObjectError {
        let object = object.to_string();
        match self {
            Failure::NotFound { code } => ObjectError::NotFound { object, code },
            Failure::Expired => ObjectError::Expired { object },
            Failure::Changed => ObjectError::Changed {
                object,
                pinned: pinned.to_string(),
            },
            Failure::Denied { code, message } => ObjectError::Denied {
                object,
                code,
                message,
                hint: "the role (or the URL's signer) needs s3:GetObject on it (and s3:GetObjectVersion for a version); a bucket policy or KMS key policy may deny it too",
            },
            Failure::Transient { cause, .. } | Failure::Fatal { cause } => {
                ObjectError::Failed { object, cause }
            }
        }
    }
}

/// Classify an HTTP answer of S3 by its status and (when it has a body) S3's error code and
/// message. The message is filtered through [`crate::secret::redact`] by the caller's caller.
pub fn classify(status: u16, code: Option<&str>, message: Option<&str>) -> Failure {
    let message = message.unwrap_or_default();
    let code_or = |d: &str| code.unwrap_or(d).to_string();
    match (status, code) {
        (404, _) => Failure::NotFound {
            code: code.map(str::to_string),
        },
        (412, _) => Failure::Changed,
        (301, _) | (_, Some("PermanentRedirect" | "AuthorizationHeaderMalformed")) => Failure::Fatal {
            cause: format!(
                "{status} {}: the bucket is in another region than the client's: set AWS_REGION to the bucket's region",
                code_or("PermanentRedirect")
            ),
        },
        (403, _) if message.to_ascii_lowercase().contains("request has expired") => {
            Failure::Expired
        }
        (403, _) => Failure::Denied {
            code: code_or("AccessDenied"),
            message: crate::secret::redact(message),
        },
        (_, Some("SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout"))
        | (429 | 500 | 502 | 503 | 504, _) => Failure::Transient {
            cause: format!("{status} {}", code_or("")).trim().to_string(),
            after: None,
        },
        _ => Failure::Fatal {
            cause: format!(
                "{status} {}: {}",
                code_or("error"),
                crate::secret::redact(message)
            ),
        },
    }
}

/// Classify an SDK error: a service answer by [`classify`]; timeouts, dropped connections and
/// unreadable answers are transient; a request that could not be built is not.
pub fn classify_sdk<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Failure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            classify(status, se.err().code(), se.err().message())
        }
        SdkError::ConstructionFailure(_) => Failure::Fatal {
            cause: crate::secret::redact(&crate::report::error_chain(err)),
        },
        // A connection that broke or timed out may work next time; a request the client
        // refused to send, or a TLS handshake that failed (an untrusted certificate: see
        // --ca-bundle), will not.
        SdkError::DispatchFailure(d) if !(d.is_io() || d.is_timeout()) || is_tls_failure(err) => {
            Failure::Fatal {
                cause: with_tls_hint(err, crate::secret::redact(&crate::report::error_chain(err))),
            }
        }
        _ => Failure::Transient {
            cause: crate::secret::redact(&crate::report::error_chain(err)),
            after: None,
        },
    }
}

/// Whether a transport error is a failed TLS handshake (an untrusted or invalid
/// certificate): retrying cannot help, `--ca-bundle` can. Told by the error chain's text:
/// the TLS error sits inside an I/O error of the connector, with no type to ask for.
pub fn is_tls_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let text = crate::report::error_chain(err).to_ascii_lowercase();
    [
        "invalid peer certificate",
        "tls handshake",
        "certificate verify failed",
    ]
    .iter()
    .any(|t| text.contains(t))
}

/// `cause`, and for a failed TLS handshake what to do about it.
pub fn with_tls_hint(err: &(dyn std::error::Error + 'static), cause: String) -> String {
    if is_tls_failure(err) {
        format!("{cause} (if the endpoint or a proxy uses a private CA, give its certificate with --ca-bundle or SSL_CERT_FILE)")
    } else {
        cause
    }
}

/// S3's error code and message from an XML error body (`<Code>`, `<Message>`); nothing else
/// of it is kept (a `SignatureDoesNotMatch` body quotes the request, security token included).
pub fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(&body[..body.len().min(8192)]);
    let field = |name: &str| {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].chars().take(200).collect::<String>())
    };
    (field("Code"), field("Message"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify(404, Some("NoSuchKey"), None),
            Failure::NotFound {
                code: Some("NoSuchKey".into())
            }
        );
        assert_eq!(
            classify(403, Some("AccessDenied"), Some("Request has expired")),
            Failure::Expired
        );
        assert!(matches!(
            classify(403, Some("AccessDenied"), Some("Access Denied")),
            Failure::Denied { .. }
        ));
        assert_eq!(classify(412, None, None), Failure::Changed);
        assert!(
            matches!(classify(301, None, None), Failure::Fatal { cause } if cause.contains("AWS_REGION"))
        );
        for (status, code) in [
            (503, Some("SlowDown")),
            (500, Some("InternalError")),
            (503, None),
            (400, Some("RequestTimeout")),
            (429, None),
        ] {
            assert!(
                matches!(classify(status, code, None), Failure::Transient { .. }),
                "{status} {code:?}"
            );
        }
        assert!(matches!(
            classify(400, Some("InvalidArgument"), Some("x")),
            Failure::Fatal { .. }
        ));
    }

    #[test]
    fn error_bodies_give_code_and_message_only() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message><X-Amz-Expires>60</X-Amz-Expires><StringToSign>secret-ish</StringToSign></Error>";
        let (code, message) = error_fields(body);
        assert_eq!(code.as_deref(), Some("AccessDenied"));
        assert_eq!(message.as_deref(), Some("Request has expired"));
        assert_eq!(error_fields(b"not xml"), (None, None));
    }

    #[test]
    fn settings_follow_the_sdk_environment() {
        let env = |n: &str| match n {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:1".to_string()),
            "AWS_DEFAULT_REGION" => Some("eu-west-1".to_string()),
            _ => None,
        };
        let s = S3Settings::from_env(&env, Some("us-west-2"));
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        let s = S3Settings::from_env(&|_| None, Some("us-west-2"));
        assert_eq!((s.region.as_str(), s.endpoint_url), ("us-west-2", None));
        assert_eq!(S3Settings::from_env(&|_| None, None).region, "us-east-1");
    }
}
