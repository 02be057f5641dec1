//! Hints for an API Gateway refusal: the most likely fix for a status and message. The
//! message itself is filtered by [`crate::upstream`] before it gets here.

use crate::config::ApiAuth;

/// The most likely fix for an API Gateway refusal.
pub fn auth_hint(status: u16, message: &str, auth: &ApiAuth) -> String {
    let m = message.to_ascii_lowercase();
    if m.contains("signature expired") || m.contains("not yet current") {
        "The request's time is outside API Gateway's 5-minute window: this machine's clock is off. Sync it (NTP) and retry".into()
    } else if m.contains("missing authentication token") {
        "API Gateway says this for a path or stage that does not exist, and for unsigned requests to IAM-protected routes: check the URL's stage and resource path, and use --api-auth iam if the route uses IAM authorization".into()
    } else if m.contains("security token included in the request is invalid") {
        "The AWS credentials are invalid or expired: refresh them (new session token, `aws sso login`) or check AWS_PROFILE".into()
    } else if m.contains("signature we calculated does not match") {
        "Check the AWS secret key and the signing region (--region must be the API's region)".into()
    } else if m.contains("not authorized to perform") {
        "The AWS identity lacks execute-api:Invoke on this API: grant it in the identity's IAM policy or the API's resource policy".into()
    } else if status == 401 {
        "The bearer token was rejected: check that it has not expired and that its audience and issuer match the API's authorizer".into()
    } else {
        match auth {
            ApiAuth::ApiKey(_) => "Check the API key and that it belongs to a usage plan attached to this API stage".into(),
            ApiAuth::None => "The API requires authentication: choose --api-auth iam, bearer or api-key".into(),
            ApiAuth::Bearer(_) | ApiAuth::BearerFromAzure { .. } => "The token is valid but not allowed here: check the authorizer's scopes or policy".into(),
            ApiAuth::Iam { .. } => "The signed identity is not allowed to call this API: check its IAM policy and the API's resource policy".into(),
            ApiAuth::OAuth2(_) => "The OAuth2 token is valid but lacks what the route requires: ask for the route's authorization scopes with --scope (the app client must be allowed them)".into(),
        }
    }
}

/// A hint for other refusals, starting with ". " (or empty).
pub fn status_hint(status: u16) -> &'static str {
    match status {
        400 => ". The API rejected the request: check the query parameters (page size, cursor parameter name)",
        404 => ". Check the URL's path and stage",
        _ => "",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::secret::{Secret, SecretSource};
    use crate::upstream::{api_message, CUT_NOTE};

    #[test]
    fn messages_and_hints() {
        assert_eq!(api_message(br#"{"message":"Forbidden"}"#), "Forbidden");
        assert_eq!(
            api_message(br#"{"Message":"User: arn:x is not authorized"}"#),
            "User: arn:x is not authorized"
        );
        assert_eq!(
            api_message(b"<html>\n  Bad   gateway </html>"),
            "<html> Bad gateway </html>"
        );
        assert_eq!(api_message(b""), "(empty body)");
        let skew = auth_hint(
            403,
            "Signature expired: 20260101T000000Z is now earlier than ...",
            &ApiAuth::None,
        );
        assert!(skew.contains("clock"), "{skew}");
        let key = auth_hint(
            403,
            "Forbidden",
            &ApiAuth::ApiKey(SecretSource::Value(Secret::new("k"))),
        );
        assert!(key.contains("usage plan"), "{key}");
        assert!(auth_hint(403, "Missing Authentication Token", &ApiAuth::None).contains("stage"));
    }

    #[test]
    fn the_quoted_canonical_request_is_cut_and_said_so() {
        let body = serde_json::json!({
            "message": "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'GET\n/prod/orders\n\nhost:abc.execute-api.eu-west-1.amazonaws.com\nx-amz-date:20260101T000000Z\nx-amz-security-token:not-registered-token\n\nhost;x-amz-date;x-amz-security-token\ne3b0c442'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20260101T000000Z\n20260101/eu-west-1/execute-api/aws4_request\n1234'\n"
        });
        let got = api_message(body.to_string().as_bytes());
        assert!(
            got.starts_with("The request signature we calculated does not match"),
            "{got}"
        );
        assert!(got.ends_with(CUT_NOTE), "{got}");
        assert!(
            !got.contains("not-registered-token") && !got.contains("host:"),
            "{got}"
        );
        // The hint still recognises the message.
        assert!(auth_hint(403, &got, &ApiAuth::None).contains("secret key"));
    }
}
