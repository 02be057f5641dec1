//! SigV4 signing of API requests for API Gateway's IAM authorization (service
//! `execute-api`). Each attempt of a request is signed anew (a retried request with an old
//! `X-Amz-Date` would be refused as expired), with the session token of temporary
//! credentials included. The clock is a parameter so tests are deterministic.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

/// The service name API Gateway's IAM authorizer expects in the credential scope.
pub const EXECUTE_API: &str = "execute-api";

#[derive(Debug, thiserror::Error)]
#[error("could not sign the request with SigV4: {0}")]
pub struct SignError(String);

/// Sign `request` (in place) for `execute-api` in `region` at time `now`.
///
/// The headers present on the request are signed, plus `host`, and the hash of the body (a
/// POST's JSON; empty for a GET), as API Gateway recomputes it.
pub fn sign_request(
    request: &mut reqwest::Request,
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<(), SignError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(EXECUTE_API)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into();
    let host = host_header(request.url());
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .chain(std::iter::once(("host".to_string(), host)))
        .collect();
    let body = match request.body().and_then(|b| b.as_bytes()) {
        Some(bytes) => SignableBody::Bytes(bytes),
        None => SignableBody::Bytes(&[]),
    };
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.url().as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )
    .map_err(|e| SignError(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| SignError(e.to_string()))?
        .into_parts();
    for (name, value) in instructions.headers() {
        let value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|e| SignError(format!("header {name}: {e}")))?;
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| SignError(e.to_string()))?;
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

/// `host[:port]` as it is sent (default ports omitted).
fn host_header(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// The region of an API Gateway URL (`{id}.execute-api.{region}.amazonaws.com`), if it is one.
pub fn region_from_url(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    let mut parts = host.split('.');
    let _id = parts.next()?;
    if parts.next()? != "execute-api" {
        return None;
    }
    let region = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    (rest.first() == Some(&"amazonaws") && !region.is_empty()).then(|| region.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn regions_from_urls() {
        let cases = [
            (
                "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders",
                Some("us-east-1"),
            ),
            (
                "https://abc123.execute-api.cn-north-1.amazonaws.com.cn/prod",
                Some("cn-north-1"),
            ),
            ("https://api.example.com/prod", None),
            ("http://127.0.0.1:8080/prod", None),
        ];
        for (u, want) in cases {
            assert_eq!(
                region_from_url(&url::Url::parse(u).unwrap()).as_deref(),
                want,
                "{u}"
            );
        }
    }

    #[test]
    fn signs_deterministically_with_session_token() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("TOKEN".into()),
            None,
            "test",
        );
        // 2015-08-30T12:36:00Z, the date of AWS's published test suite.
        let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let sign_once = || {
            let mut req = reqwest::Request::new(
                reqwest::Method::GET,
                "https://abc.execute-api.us-east-1.amazonaws.com/prod/orders?cursor=a%2Bb"
                    .parse()
                    .unwrap(),
            );
            sign_request(&mut req, &creds, "us-east-1", now).unwrap();
            req
        };
        let a = sign_once();
        let b = sign_once();
        let auth = a.headers()["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert_eq!(a.headers()["x-amz-date"], "20150830T123600Z");
        assert_eq!(a.headers()["x-amz-security-token"], "TOKEN");
        assert_eq!(a.headers()["authorization"], b.headers()["authorization"]);
    }
}
