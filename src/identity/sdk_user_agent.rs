//! The run's `User-Agent` on the AWS SDK's requests (STS; S3 uses the same interceptor): the
//! SDK writes its own `User-Agent` just before signing, and this puts `gatelake/<version>
//! run/<id>` in front of it just before the request is sent, so CloudTrail's `userAgent` of
//! an `AssumeRoleWithWebIdentity` names the run as the API's access logs do. SigV4 never signs
//! `User-Agent`, so changing it after signing is safe.

use crate::run_tag::RunTag;
use aws_sdk_sts::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;

/// Prefixes the SDK's `User-Agent` with the run's ([`RunTag::user_agent`]).
#[derive(Debug, Clone)]
pub struct RunUserAgent(pub RunTag);

impl Intercept for RunUserAgent {
    fn name(&self) -> &'static str {
        "gatelake run user agent"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request_mut().headers_mut();
        let value = prefixed(&self.0.user_agent(), headers.get("user-agent"));
        headers.insert("user-agent", value);
        Ok(())
    }
}

/// `ours`, then the SDK's own value (if any).
fn prefixed(ours: &str, sdk: Option<&str>) -> String {
    match sdk.filter(|s| !s.is_empty()) {
        Some(sdk) => format!("{ours} {sdk}"),
        None => ours.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_comes_first() {
        assert_eq!(
            prefixed("gatelake/1 run/r", Some("aws-sdk-rust/1.3 os/linux")),
            "gatelake/1 run/r aws-sdk-rust/1.3 os/linux"
        );
        assert_eq!(prefixed("gatelake/1", None), "gatelake/1");
    }
}
