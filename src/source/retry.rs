//! Whether and when to retry a request: one classifier ([`classify`]) deciding from the
//! response, and the wait ([`wait_before_retry`]) computed from data ([`RetryPolicy`]).
//!
//! Retry rules (API Gateway's behaviour): 429 "Too Many Requests" is throttling — wait and
//! retry; 429 "Limit Exceeded" is a used-up usage-plan quota — retrying cannot help, so stop;
//! 500/502/503/504, resets, timeouts and truncated or corrupt bodies are transient; every
//! other 4xx is the caller's mistake.
//!
//! A server's `Retry-After` is honoured in full up to `RetryPolicy::max_retry_after`: a
//! throttled API that asks for two minutes gets two minutes, not our own backoff cap. Past
//! that maximum the run does not sleep for an hour inside a CI job; it stops (resumable) and
//! says when to run again.

use crate::config::RetryPolicy;
use crate::upstream::api_message;
use reqwest::header::{HeaderMap, RETRY_AFTER};
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
        500 | 502 | 503 | 504 => Decision::Retry {
            after: retry_after(headers, now),
            reason: format!("{status} {}", api_message(body)),
        },
        _ => Decision::Fail,
    }
}

/// `Retry-After` as seconds or an HTTP date (relative to `now`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How long to wait before attempt `attempt + 1` (attempt counts from 1) when the server
/// said nothing: exponential with "equal jitter" (half fixed, half random) so waits never
/// collapse to zero, capped at `policy.cap`.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(policy.cap);
    let half = exp / 2;
    let jitter = half.mul_f64(rand::random::<f64>());
    half + jitter
}

/// The wait before the next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// Sleep this long, then try again.
    Sleep(Duration),
    /// The server asked for a wait longer than `RetryPolicy::max_retry_after`: stop.
    TooLong(Duration),
}

/// The wait before attempt `attempt + 1`: the server's `Retry-After` when it gave one (in
/// full, never less than our own backoff would wait, and at most `policy.max_retry_after`),
/// else [`backoff`].
pub fn wait_before_retry(policy: &RetryPolicy, attempt: u32, server: Option<Duration>) -> Wait {
    let computed = backoff(policy, attempt);
    match server {
        Some(s) if s > policy.max_retry_after => Wait::TooLong(s),
        Some(s) => Wait::Sleep(s.max(computed.min(s))),
        None => Wait::Sleep(computed),
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

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            deadline: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        };
        for attempt in 1..=10 {
            let d = backoff(&p, attempt);
            let exp = (Duration::from_millis(100) * 2u32.pow(attempt - 1)).min(p.cap);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} vs {exp:?}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_in_full_up_to_the_maximum() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        };
        let cases = [
            // Shorter than our backoff: never less than the server asked for.
            (Some(1), Wait::Sleep(Duration::from_secs(1))),
            // Longer than the backoff cap (the old behaviour cut this to 30 s).
            (Some(120), Wait::Sleep(Duration::from_secs(120))),
            (Some(300), Wait::Sleep(Duration::from_secs(300))),
            (Some(301), Wait::TooLong(Duration::from_secs(301))),
            (Some(3600), Wait::TooLong(Duration::from_secs(3600))),
        ];
        for (server, want) in cases {
            let got = wait_before_retry(&p, 1, server.map(Duration::from_secs));
            assert_eq!(got, want, "Retry-After {server:?}");
        }
        match wait_before_retry(&p, 1, None) {
            Wait::Sleep(d) => assert!(d <= Duration::from_millis(100), "{d:?}"),
            other => panic!("{other:?}"),
        }
    }
}
