//! Turning an upstream error body (from the API, an identity provider or a metadata
//! endpoint) into a message fit to print: the service's own `message`,
//! cut of the parts that quote the request back, with every live secret masked (see
//! [`crate::secret::redact`]), and the most likely fix for an API Gateway refusal.
//!
//! Why cut and not only mask: API Gateway's signature-mismatch message goes on with "The
//! Canonical String for this request should have been …", the whole canonical request
//! (every signed header, `x-amz-security-token` included) and the string to sign. Masking
//! catches the secrets this process knows of; cutting also drops what it does not know is
//! secret, and a wall of text nobody needs to see.
//!
//! It sits at the crate root beside [`crate::secret`], not in `source`, because identity
//! providers filter their token endpoints' refusals with it too and must not depend on the
//! source layer (which depends on them). It must never do I/O.

use crate::secret::redact;

/// Where API Gateway (and other AWS services) start quoting the request they expected.
const QUOTED_REQUEST_MARKERS: &[&str] = &[
    "The Canonical String for this request should have been",
    "The String-to-Sign should have been",
];

/// What replaces the cut part, saying what was cut and why.
pub const CUT_NOTE: &str = "[the canonical request and string to sign that API Gateway quoted were cut from this message: they repeat the request's headers, session token included]";

/// `message` without the request it quotes (see [`QUOTED_REQUEST_MARKERS`]) and with every
/// live secret masked.
pub fn filter_upstream(message: &str) -> String {
    let cut_at = QUOTED_REQUEST_MARKERS
        .iter()
        .filter_map(|m| message.find(m))
        .min();
    let kept = match cut_at {
        Some(at) => format!("{} {CUT_NOTE}", message[..at].trim_end()),
        None => message.to_string(),
    };
    redact(&kept)
}

/// The `message` of an API Gateway error body, or a short, printable prefix of the body;
/// filtered with [`filter_upstream`] either way.
pub fn api_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ApiGatewayError {
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<ApiGatewayError>(body) {
        if let Some(m) = e.message {
            return filter_upstream(&m);
        }
    }
    let text = filter_upstream(&String::from_utf8_lossy(body));
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        "(empty body)".into()
    } else if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn live_secrets_in_an_upstream_body_are_masked() {
        let key = Secret::new("ak-upstream-echo-4c1d9e");
        let body = format!(
            r#"{{"message":"Invalid API key {} for stage prod"}}"#,
            key.expose()
        );
        assert_eq!(
            api_message(body.as_bytes()),
            "Invalid API key *** for stage prod"
        );
        let html = format!("<html>key={}</html>", key.expose());
        assert!(!api_message(html.as_bytes()).contains(key.expose()));
    }
}
