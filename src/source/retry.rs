//! Whether to retry an API request: the classifier ([`classify`]) that applies API Gateway's
//! meaning of a response on top of the generic rules of the one retry module
//! ([`crate::retry`], which also computes the wait from [`crate::retry::RetryPolicy`]).
//!
//! Retry rules (API Gateway's behaviour): 429 "Too Many Requests" is throttling — wait and
//! retry; 429 "Limit Exceeded" is a used-up usage-plan quota — retrying cannot help, so stop;
//! 500/502/503/504, resets, timeouts and truncated or corrupt bodies are transient; every
//! other 4xx is the caller's mistake.
//!
//! A server's `Retry-After` is honoured in full up to `RetryPolicy::max_retry_after`
//! (`--max-retry-after`): a throttled API that asks for two minutes gets two minutes, not our
//! own backoff cap. Past that maximum the run does not sleep for an hour inside a CI job; the
//! client stops (resumable) and says when to run again.

use crate::retry::is_transient_status;
pub use crate::retry::{backoff, retry_after, wait_before_retry, Wait};
use crate::upstream::api_message;
use reqwest::header::HeaderMap;
use std::time::{Duration, SystemTime};

/// What [`classify`] decided about one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Try again, after at least `after` when the server said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The usage plan's quota is exhausted.
    Quota,
    /// Don't retry.
    Fail,
}

/// The retry decision for a response status (with its headers and body).
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Decision {
    match status {
        429 => {
            if api_message(body)
                .to_ascii_lowercase()
                .contains("limit exceeded")
            {
                Decision::Quota
            } else {
                Decision::Retry {
                    after: retry_after(headers, now),
                    reason: "429 throttled".into(),
                }
            }
        }
        s if is_transient_status(s) => Decision::Retry {
            after: retry_after(headers, now),
            reason: format!("{status} {}", api_message(body)),
        },
        _ => Decision::Fail,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderName;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn classifies_api_gateway_responses() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        let cases: Vec<(u16, HeaderMap, &[u8], Decision)> = vec![
            (
                429,
                headers(&[("retry-after", "3")]),
                br#"{"message":"Too Many Requests"}"#,
                Decision::Retry {
                    after: Some(Duration::from_secs(3)),
                    reason: "429 throttled".into(),
                },
            ),
            (
                429,
                headers(&[("retry-after", &date)]),
                br#"{"message":"Too Many Requests"}"#,
                Decision::Retry {
                    after: Some(Duration::from_secs(7)),
                    reason: "429 throttled".into(),
                },
            ),
            (
                429,
                headers(&[]),
                br#"{"message":"Limit Exceeded"}"#,
                Decision::Quota,
            ),
            (
                503,
                headers(&[]),
                br#"{"message":"Service Unavailable"}"#,
                Decision::Retry {
                    after: None,
                    reason: "503 Service Unavailable".into(),
                },
            ),
            (
                504,
                headers(&[]),
                br#"{"message":"Endpoint request timed out"}"#,
                Decision::Retry {
                    after: None,
                    reason: "504 Endpoint request timed out".into(),
                },
            ),
            (
                403,
                headers(&[]),
                br#"{"message":"Forbidden"}"#,
                Decision::Fail,
            ),
            (404, headers(&[]), b"", Decision::Fail),
        ];
        for (status, h, body, want) in cases {
            assert_eq!(
                classify(status, &h, body, now),
                want,
                "{status} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
