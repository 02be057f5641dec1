//! What the client learnt while fetching a page, for the run's lineage: each attempt's status,
//! duration and the request ids the API Gateway answered with (the keys of its access logs
//! and of X-Ray), so that a record in the lake can be traced back to the API's logs. Nothing
//! here is secret: URLs are redacted, and only the request-id headers are kept.

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The response headers that identify a request in API Gateway's logs: REST APIs answer
/// `x-amzn-RequestId` (and `x-amz-apigw-id`, the extended request id), HTTP APIs
/// `apigw-requestid`; `X-Amzn-Trace-Id` is the X-Ray trace.
pub const REQUEST_ID_HEADERS: [&str; 4] = [
    "x-amzn-requestid",
    "apigw-requestid",
    "x-amz-apigw-id",
    "x-amzn-trace-id",
];

/// The longest request-id value kept (a misbehaving server must not bloat the lineage).
const MAX_ID_LEN: usize = 256;

/// One attempt at a request, as the lineage records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptTrace {
    /// The HTTP status; `None` when no response came (a connection or timeout failure).
    #[serde(default)]
    pub status: Option<u16>,
    /// From sending the request to the end of its body (or the failure), in milliseconds.
    pub ms: u64,
    /// The request ids the response carried, by lower-case header name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_ids: BTreeMap<String, String>,
    /// Why the attempt did not give the page (a retried status, a broken body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The request of this attempt (redacted), when it differs from the page's (a page size
    /// shrunk after a 504).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// The request-id headers of a response.
pub fn request_ids(headers: &HeaderMap) -> BTreeMap<String, String> {
    REQUEST_ID_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            let value: String = value.chars().take(MAX_ID_LEN).collect();
            Some((name.to_string(), value))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_request_id_headers_are_kept() {
        let mut h = HeaderMap::new();
        h.insert("X-Amzn-RequestId", "abc-1".parse().unwrap());
        h.insert("apigw-requestid", "Hx1=".parse().unwrap());
        h.insert("authorization", "Bearer secret".parse().unwrap());
        h.insert("x-amzn-trace-id", "Root=1-2-3".parse().unwrap());
        let ids = request_ids(&h);
        assert_eq!(ids.len(), 3);
        assert_eq!(ids["x-amzn-requestid"], "abc-1");
        assert_eq!(ids["apigw-requestid"], "Hx1=");
        assert_eq!(ids["x-amzn-trace-id"], "Root=1-2-3");
        assert!(!ids.values().any(|v| v.contains("secret")));
    }
}
