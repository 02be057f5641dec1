//! Tests of the API Gateway emulator itself (`tests/support/apigw.rs`), driven with a plain
//! `reqwest` client: if the emulator is wrong, every integration test built on it is wrong too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::io::Read as _;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use support::apigw::{
    canonical_request, decode_cursor, encode_cursor, record, signing_key, string_to_sign,
    verify_sigv4, ApiAuthCheck, ApiConfig, ApiGateway, LinkForm, RetryAfter, SigV4Expect,
    EXECUTE_API, INVALID_SECURITY_TOKEN, SIGNATURE_MISMATCH,
};

fn config(records: u64, page_size: u64) -> ApiConfig {
    ApiConfig {
        records,
        page_size,
        ..ApiConfig::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

fn expected(records: u64) -> Vec<Value> {
    (0..records).map(record).collect()
}

async fn get_json(client: &reqwest::Client, url: &str) -> (HeaderMap, Value) {
    let response = client.get(url).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    let headers = response.headers().clone();
    let body = body_json(response).await;
    (headers, body)
}

async fn body_json(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.expect("body");
    serde_json::from_slice(&bytes).expect("JSON body")
}

/// `base?cursor=<percent-encoded cursor>` (or `base` when there is none).
fn with_cursor(base: &str, cursor: Option<&str>) -> reqwest::Url {
    let params: Vec<(&str, &str)> = cursor.map(|c| ("cursor", c)).into_iter().collect();
    reqwest::Url::parse_with_params(base, &params).expect("url")
}

fn array(value: &Value) -> Vec<Value> {
    value.as_array().expect("JSON array").clone()
}

fn message(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).expect("JSON error body");
    value["message"].as_str().expect("message").to_string()
}

/// Status, `x-amzn-ErrorType` and `message` of a response.
async fn rejection(response: reqwest::Response) -> (StatusCode, Option<String>, String) {
    let status = response.status();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().expect("ascii").to_string());
    let body = response.bytes().await.expect("body");
    (status, error_type, message(&body))
}

/// API Gateway's signature-mismatch message: the fixed text, then (as the real service does)
/// the canonical request and string to sign it expected.
fn assert_mismatch(msg: &str) {
    assert!(msg.starts_with(SIGNATURE_MISMATCH), "{msg}");
    assert!(
        msg.contains("The Canonical String for this request should have been\n'GET\n")
            && msg.contains("The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Dataset
// ---------------------------------------------------------------------------------------------

#[test]
fn records_are_deterministic_and_cover_the_hard_cases() {
    assert_eq!(record(7), record(7));
    assert_eq!(record(0)["id"], 0);
    assert_eq!(record(0)["created_at"], "2026-01-02T03:04:05Z");
    let notes: Vec<Value> = (0..8).map(|i| record(i)["note"].clone()).collect();
    assert!(notes.contains(&Value::Null));
    assert!(notes.contains(&Value::from("")));
    assert!(notes
        .iter()
        .any(|n| n.as_str().is_some_and(|s| s.contains('\n'))));
    assert!(notes
        .iter()
        .any(|n| n.as_str().is_some_and(|s| s.contains('"'))));
    assert_eq!(record(1)["big"].as_i64(), Some((1_i64 << 62) + 1));
    assert_eq!(record(3)["big"].as_i64(), Some(-((1_i64 << 62) + 3)));
    assert!(record(2)["big"].is_null());
}

#[tokio::test]
async fn records_are_served_compactly() {
    let server = ApiGateway::start(config(10, 5)).await;
    let response = client()
        .get(server.url("/prod/offset?limit=3"))
        .send()
        .await
        .expect("send");
    let body = String::from_utf8(response.bytes().await.expect("body").to_vec()).expect("utf-8");
    let items: Vec<String> = (0..3)
        .map(|i| serde_json::to_string(&record(i)).expect("serialise"))
        .collect();
    assert!(
        body.starts_with(&format!("{{\"items\":[{}]", items.join(","))),
        "{body}"
    );
    assert!(!body.contains('\n'), "no pretty-printing: {body}");
}

#[test]
fn cursors_need_percent_encoding_and_round_trip() {
    for offset in [0, 1, 100, 12_345, u64::MAX] {
        let cursor = encode_cursor(offset);
        assert!(cursor.contains('+') && cursor.contains('/') && cursor.contains('='));
        assert_eq!(decode_cursor(&cursor), Some(offset));
        assert_eq!(decode_cursor(&cursor.replace('+', " ")), None);
    }
}

// ---------------------------------------------------------------------------------------------
// Pagination styles, walked to the end
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cursor_style_walks_every_record_in_order() {
    let server = ApiGateway::start(config(250, 100)).await;
    let client = client();
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = with_cursor(&server.url("/prod/cursor"), cursor.as_deref());
        let response = client.get(url).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        got.extend(array(&body["items"]));
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => {
                assert!(body["next_cursor"].is_null());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(got, expected(250));
}

#[tokio::test]
async fn cursor_style_takes_limit_and_rejects_badly_encoded_cursors() {
    let server = ApiGateway::start(config(10, 100)).await;
    let client = client();
    let (_, first) = get_json(&client, &server.url("/prod/cursor?limit=4")).await;
    assert_eq!(array(&first["items"]), expected(4));
    let cursor = first["next_cursor"].as_str().expect("cursor").to_string();

    // Not encoded at all: `+` reaches the server as a space.
    let raw = client
        .get(format!(
            "{}?cursor={cursor}&limit=4",
            server.url("/prod/cursor")
        ))
        .send()
        .await
        .expect("send");
    let (status, _, msg) = rejection(raw).await;
    assert_eq!(
        (status, msg.as_str()),
        (StatusCode::BAD_REQUEST, "invalid cursor")
    );

    // Encoded twice.
    let once = percent_encoding::utf8_percent_encode(&cursor, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let twice = percent_encoding::utf8_percent_encode(&once, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let double = client
        .get(format!(
            "{}?cursor={twice}&limit=4",
            server.url("/prod/cursor")
        ))
        .send()
        .await
        .expect("send");
    let (status, _, msg) = rejection(double).await;
    assert_eq!(
        (status, msg.as_str()),
        (StatusCode::BAD_REQUEST, "invalid cursor")
    );

    // Encoded once: fine.
    let (_, second) = get_json(
        &client,
        &format!("{}?cursor={once}&limit=4", server.url("/prod/cursor")),
    )
    .await;
    assert_eq!(
        array(&second["items"]),
        (4..8).map(record).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn cursor_header_style_walks_every_record_in_order() {
    let server = ApiGateway::start(config(205, 50)).await;
    let client = client();
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = with_cursor(&server.url("/prod/cursor-header"), cursor.as_deref());
        let response = client.get(url).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::OK);
        let next = response
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().expect("ascii").to_string());
        let body = body_json(response).await;
        got.extend(array(&body));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(got, expected(205));
}

async fn walk_next_links(server: &ApiGateway, first: &str) -> (Vec<Value>, Vec<String>) {
    let client = client();
    let mut got = Vec::new();
    let mut links = Vec::new();
    let mut url = url::Url::parse(&server.url(first)).expect("url");
    loop {
        let (_, body) = get_json(&client, url.as_str()).await;
        got.extend(array(&body["data"]["rows"]));
        match body["links"]["next"].as_str() {
            Some(next) => {
                links.push(next.to_string());
                url = url.join(next).expect("resolve next link");
            }
            None => {
                assert!(body["links"]["next"].is_null());
                break;
            }
        }
    }
    (got, links)
}

#[tokio::test]
async fn next_link_style_walks_with_absolute_links() {
    let server = ApiGateway::start(config(301, 100)).await;
    let (got, links) = walk_next_links(&server, "/prod/next-link").await;
    assert_eq!(got, expected(301));
    assert_eq!(links.len(), 3);
    assert!(links.iter().all(|l| l.starts_with(&server.base_url())));
}

#[tokio::test]
async fn next_link_style_walks_with_relative_links_and_keeps_limit() {
    let server = ApiGateway::start(ApiConfig {
        link_form: LinkForm::Relative,
        ..config(95, 100)
    })
    .await;
    let (got, links) = walk_next_links(&server, "/prod/next-link?limit=10").await;
    assert_eq!(got, expected(95));
    assert_eq!(links.len(), 9);
    assert!(links
        .iter()
        .all(|l| l.starts_with("/prod/next-link?after=")));
    assert!(links.iter().all(|l| l.ends_with("&limit=10")));
}

/// `(url, rel)` pairs of an RFC 8288 `Link` header.
fn parse_link_header(value: &str) -> Vec<(String, String)> {
    value
        .split(',')
        .filter_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            let rel = params
                .split(';')
                .find_map(|p| p.trim().strip_prefix("rel="))?
                .trim_matches('"');
            Some((target.to_string(), rel.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn link_header_style_walks_every_record_in_order() {
    let server = ApiGateway::start(config(250, 100)).await;
    let client = client();
    let mut got = Vec::new();
    let mut url = server.url("/prod/link-header");
    let mut saw_prev = false;
    loop {
        let (headers, body) = get_json(&client, &url).await;
        got.extend(array(&body));
        let links = parse_link_header(
            headers
                .get(http::header::LINK)
                .expect("Link header")
                .to_str()
                .expect("ascii"),
        );
        assert!(links.len() >= 2, "several links in one header: {links:?}");
        saw_prev |= links.iter().any(|(_, rel)| rel == "prev");
        match links.into_iter().find(|(_, rel)| rel == "next") {
            Some((next, _)) => url = next,
            None => break,
        }
    }
    assert!(saw_prev);
    assert_eq!(got, expected(250));
}

#[tokio::test]
async fn offset_style_walks_every_record_in_order() {
    let server = ApiGateway::start(config(230, 100)).await;
    let client = client();
    let mut got = Vec::new();
    let mut offset = 0;
    loop {
        let url = format!("{}?offset={offset}&limit=50", server.url("/prod/offset"));
        let (_, body) = get_json(&client, &url).await;
        assert_eq!(body["total"], 230);
        let items = array(&body["items"]);
        if items.is_empty() {
            break;
        }
        offset += items.len();
        got.extend(items);
    }
    assert_eq!(got, expected(230));
}

#[tokio::test]
async fn page_style_walks_every_record_in_order() {
    let server = ApiGateway::start(config(250, 100)).await;
    let client = client();
    let mut got = Vec::new();
    let mut page = 1;
    loop {
        let url = format!("{}?page={page}", server.url("/prod/page"));
        let (_, body) = get_json(&client, &url).await;
        assert_eq!(body["page"], page);
        got.extend(array(&body["results"]));
        if !body["has_more"].as_bool().expect("has_more") {
            break;
        }
        page += 1;
    }
    assert_eq!(page, 3);
    assert_eq!(got, expected(250));
    let (_, past) = get_json(&client, &format!("{}?page=9", server.url("/prod/page"))).await;
    assert_eq!(array(&past["results"]), Vec::<Value>::new());
    assert_eq!(past["has_more"], false);
}

#[tokio::test]
async fn requests_past_the_end_return_an_empty_list() {
    let server = ApiGateway::start(config(10, 5)).await;
    let client = client();
    let (_, offset) = get_json(&client, &server.url("/prod/offset?offset=50")).await;
    assert!(array(&offset["items"]).is_empty());
    let cursor = encode_cursor(99);
    let (_, body) = get_json(
        &client,
        reqwest::Url::parse_with_params(&server.url("/prod/cursor"), &[("cursor", &cursor)])
            .expect("url")
            .as_str(),
    )
    .await;
    assert!(array(&body["items"]).is_empty());
    assert!(body["next_cursor"].is_null());
    let (headers, body) = get_json(&client, &server.url("/prod/link-header?page=7")).await;
    assert!(array(&body).is_empty());
    let links = parse_link_header(headers[http::header::LINK].to_str().expect("ascii"));
    assert!(!links.iter().any(|(_, rel)| rel == "next"));
}

#[tokio::test]
async fn requests_are_recorded() {
    let server = ApiGateway::start(config(10, 5)).await;
    let client = client();
    client
        .get(server.url("/prod/offset?offset=5&limit=5"))
        .header("x-test", "1")
        .send()
        .await
        .expect("send");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, http::Method::GET);
    assert_eq!(requests[0].path, "/prod/offset");
    assert_eq!(requests[0].query.as_deref(), Some("offset=5&limit=5"));
    assert_eq!(requests[0].query_param("limit").as_deref(), Some("5"));
    assert_eq!(requests[0].headers["x-test"], "1");
}

#[tokio::test]
async fn every_response_carries_the_request_id_the_log_records() {
    let mut cfg = config(10, 5);
    cfg.fail_first_n = HashMap::from([(0, 1)]);
    let server = ApiGateway::start(cfg).await;
    let client = client();
    let mut answered = Vec::new();
    for url in ["/prod/offset?limit=5", "/prod/offset?limit=5", "/prod/nope"] {
        let resp = client.get(server.url(url)).send().await.expect("send");
        let id = resp.headers()["x-amzn-requestid"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(resp.headers()["apigw-requestid"], id.as_str());
        answered.push((resp.status().as_u16(), id));
    }
    // A 503, its retry, and a rejection: each its own id, as the log has it.
    let statuses: Vec<u16> = answered.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, vec![503, 200, 403]);
    let logged: Vec<String> = server
        .requests()
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    let ids: Vec<String> = answered.into_iter().map(|(_, id)| id).collect();
    assert_eq!(logged, ids);
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// gzip
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn gzip_is_applied_above_the_threshold_only() {
    let server = ApiGateway::start(config(100, 100)).await;
    let client = client();
    let get = |url: String, gzip: bool| {
        let mut request = client.get(url);
        if gzip {
            request = request.header("accept-encoding", "gzip");
        }
        request.send()
    };

    // Large page, gzip accepted: compressed, and decompresses to the records.
    let response = get(server.url("/prod/offset?limit=50"), true)
        .await
        .expect("send");
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.expect("body");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut plain)
        .expect("gunzip");
    let body: Value = serde_json::from_slice(&plain).expect("json");
    assert_eq!(array(&body["items"]), expected(50));
    assert!(plain.len() > 1024);

    // Large page, gzip not asked for: plain.
    let response = get(server.url("/prod/offset?limit=50"), false)
        .await
        .expect("send");
    assert!(response.headers().get("content-encoding").is_none());

    // Small page (one record is well under 1 KiB), gzip accepted: plain.
    let response = get(server.url("/prod/offset?limit=1"), true)
        .await
        .expect("send");
    assert!(response.headers().get("content-encoding").is_none());
    let body = response.bytes().await.expect("body");
    assert!(body.len() <= 1024);

    // The threshold is a knob.
    let low = ApiGateway::start(ApiConfig {
        gzip_threshold: 10,
        ..config(100, 100)
    })
    .await;
    let response = get(low.url("/prod/offset?limit=1"), true)
        .await
        .expect("send");
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn reqwest_with_gzip_decodes_transparently() {
    let server = ApiGateway::start(config(100, 100)).await;
    let client = reqwest::Client::new();
    let (_, body) = get_json(&client, &server.url("/prod/cursor")).await;
    assert_eq!(array(&body["items"]), expected(100));
    assert_eq!(
        server.requests()[0].headers["accept-encoding"]
            .to_str()
            .ok()
            .map(|v| v.contains("gzip")),
        Some(true)
    );
}

// ---------------------------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_route_is_missing_authentication_token() {
    let server = ApiGateway::start(ApiConfig::default()).await;
    let client = client();
    for path in ["/prod/nope", "/cursor", "/", "/staging/cursor"] {
        let response = client.get(server.url(path)).send().await.expect("send");
        let (status, error_type, msg) = rejection(response).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            error_type.as_deref(),
            Some("MissingAuthenticationTokenException")
        );
        assert_eq!(msg, "Missing Authentication Token");
    }
    let post = client
        .post(server.url("/prod/cursor"))
        .send()
        .await
        .expect("send");
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn api_key_is_enforced_like_api_gateway() {
    let server = ApiGateway::start(ApiConfig {
        auth: ApiAuthCheck::ApiKey("k-123".into()),
        ..config(10, 5)
    })
    .await;
    let client = client();
    let url = server.url("/prod/offset");
    for key in [None, Some("wrong")] {
        let mut request = client.get(&url);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let (status, error_type, msg) = rejection(request.send().await.expect("send")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(error_type.as_deref(), Some("ForbiddenException"));
        assert_eq!(msg, "Forbidden");
    }
    let ok = client
        .get(&url)
        .header("x-api-key", "k-123")
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn bearer_is_enforced_like_api_gateway() {
    let server = ApiGateway::start(ApiConfig {
        auth: ApiAuthCheck::Bearer("tok".into()),
        ..config(10, 5)
    })
    .await;
    let client = client();
    let url = server.url("/prod/offset");
    for value in [None, Some("Bearer nope"), Some("Basic tok"), Some("tok")] {
        let mut request = client.get(&url);
        if let Some(value) = value {
            request = request.header("authorization", value);
        }
        let (status, error_type, msg) = rejection(request.send().await.expect("send")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value:?}");
        assert_eq!(error_type.as_deref(), Some("UnauthorizedException"));
        assert_eq!(msg, "Unauthorized");
    }
    let ok = client
        .get(&url)
        .bearer_auth("tok")
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), StatusCode::OK);
}

const AK: &str = "AKIDEXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "eu-west-1";

fn sigv4_server_config(session_token: Option<&str>) -> ApiConfig {
    ApiConfig {
        auth: ApiAuthCheck::SigV4 {
            access_key: AK.into(),
            secret_key: SK.into(),
            session_token: session_token.map(str::to_string),
            region: REGION.into(),
        },
        ..config(25, 10)
    }
}

/// Headers `aws-sigv4` (the crate the client uses) adds to sign `GET url`.
fn aws_sigv4_headers(
    url: &str,
    secret_key: &str,
    session_token: Option<&str>,
    at: SystemTime,
) -> Vec<(String, String)> {
    let identity: Identity = Credentials::new(
        AK,
        secret_key,
        session_token.map(str::to_string),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(EXECUTE_API)
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions
        .headers()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

async fn send_signed(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
) -> reqwest::Response {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request.send().await.expect("send")
}

#[tokio::test]
async fn sigv4_requests_signed_by_aws_sigv4_walk_all_pages() {
    let server = ApiGateway::start(sigv4_server_config(Some("session-tok/+="))).await;
    let client = client();
    let mut got = Vec::new();
    let mut url = server.url("/prod/cursor?limit=7");
    loop {
        let headers = aws_sigv4_headers(&url, SK, Some("session-tok/+="), SystemTime::now());
        let response = send_signed(&client, &url, &headers).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let body = body_json(response).await;
        got.extend(array(&body["items"]));
        match body["next_cursor"].as_str() {
            // The cursor has `+`, `/` and `=`: this proves both sides encode the query alike.
            Some(cursor) => {
                url = reqwest::Url::parse_with_params(
                    &server.url("/prod/cursor"),
                    &[("limit", "7"), ("cursor", cursor)],
                )
                .expect("url")
                .to_string()
            }
            None => break,
        }
    }
    assert_eq!(got, expected(25));
}

#[tokio::test]
async fn sigv4_rejects_a_tampered_query() {
    let server = ApiGateway::start(sigv4_server_config(None)).await;
    let client = client();
    let url = server.url("/prod/offset?offset=0&limit=5");
    let headers = aws_sigv4_headers(&url, SK, None, SystemTime::now());
    let ok = send_signed(&client, &url, &headers).await;
    assert_eq!(ok.status(), StatusCode::OK);

    let tampered = server.url("/prod/offset?offset=0&limit=6");
    let (status, error_type, msg) =
        rejection(send_signed(&client, &tampered, &headers).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_type.as_deref(), Some("InvalidSignatureException"));
    assert_mismatch(&msg);
}

#[tokio::test]
async fn sigv4_failures_get_api_gateway_responses() {
    let server = ApiGateway::start(sigv4_server_config(Some("the-token"))).await;
    let client = client();
    let url = server.url("/prod/page?page=1");

    // No Authorization at all.
    let (status, error_type, msg) = rejection(client.get(&url).send().await.expect("send")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        error_type.as_deref(),
        Some("MissingAuthenticationTokenException")
    );
    assert_eq!(msg, "Missing Authentication Token");

    // Wrong secret key: the signature does not match.
    let headers = aws_sigv4_headers(&url, "not-the-secret", Some("the-token"), SystemTime::now());
    let (status, error_type, msg) = rejection(send_signed(&client, &url, &headers).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_type.as_deref(), Some("InvalidSignatureException"));
    assert_mismatch(&msg);

    // Signed ten minutes ago.
    let stale = SystemTime::now() - Duration::from_secs(600);
    let headers = aws_sigv4_headers(&url, SK, Some("the-token"), stale);
    let (status, error_type, msg) = rejection(send_signed(&client, &url, &headers).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_type.as_deref(), Some("InvalidSignatureException"));
    assert!(msg.starts_with("Signature expired: "), "{msg}");
    assert!(msg.contains(" is now earlier than "), "{msg}");

    // Wrong and missing session token.
    for token in [Some("other-token"), None] {
        let headers = aws_sigv4_headers(&url, SK, token, SystemTime::now());
        let (status, error_type, msg) = rejection(send_signed(&client, &url, &headers).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(error_type.as_deref(), Some("UnrecognizedClientException"));
        assert_eq!(msg, INVALID_SECURITY_TOKEN);
    }

    // All good.
    let headers = aws_sigv4_headers(&url, SK, Some("the-token"), SystemTime::now());
    assert_eq!(
        send_signed(&client, &url, &headers).await.status(),
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// SigV4 verifier against AWS's published test suite
// ---------------------------------------------------------------------------------------------

/// Cases from AWS's SigV4 test suite (`aws-sig-v4-test-suite`): the signed request as
/// published, with service `service`, region `us-east-1`, the example credentials and
/// 2015-08-30T12:36:00Z.
const VECTORS: &[(&str, Option<&str>, &str)] = &[
    (
        "get-vanilla",
        None,
        "GET / HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    (
        "get-vanilla-query-order-key-case",
        None,
        "GET /?Param2=value2&Param1=value1 HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    (
        "get-vanilla-query-unreserved",
        None,
        "GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    ),
    (
        "get-header-value-trim",
        None,
        "GET / HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         My-Header1: value1\n\
         My-Header2: \"a   b   c\"\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    (
        "get-vanilla-with-session-token",
        Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
        "GET / HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Security-Token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    ),
];

struct VectorRequest {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

fn parse_vector(text: &str) -> VectorRequest {
    let mut lines = text.lines();
    let request_line = lines.next().expect("request line");
    let mut words = request_line.split(' ');
    let method = words.next().expect("method").to_string();
    let target = words.next().expect("target");
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (target.to_string(), None),
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("header line");
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    VectorRequest {
        method,
        path,
        query,
        headers,
    }
}

fn vector_time() -> SystemTime {
    time::macros::datetime!(2015-08-30 12:36:00 UTC).into()
}

fn vector_expect(session_token: Option<&str>) -> SigV4Expect<'_> {
    SigV4Expect {
        access_key: AK,
        secret_key: SK,
        session_token,
        region: "us-east-1",
        service: "service",
        max_skew: Duration::from_secs(300),
    }
}

#[test]
fn get_vanilla_intermediate_values_match_the_published_ones() {
    let request = parse_vector(VECTORS[0].2);
    let signed: Vec<String> = vec!["host".into(), "x-amz-date".into()];
    let canonical = canonical_request(
        &request.method,
        &request.path,
        request.query.as_deref(),
        &request.headers,
        &signed,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    assert_eq!(
        canonical,
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let to_sign = string_to_sign(
        "20150830T123600Z",
        "20150830/us-east-1/service/aws4_request",
        &canonical,
    );
    assert_eq!(
        to_sign,
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
         bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    );
    let key = signing_key(SK, "20150830", "us-east-1", "service");
    let signature = {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
        mac.update(to_sign.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    assert_eq!(
        signature,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn verifier_accepts_the_published_test_vectors() {
    for (name, token, text) in VECTORS {
        let request = parse_vector(text);
        let verdict = verify_sigv4(
            &request.method,
            &request.path,
            request.query.as_deref(),
            &request.headers,
            b"",
            &vector_expect(*token),
            vector_time(),
        );
        assert_eq!(verdict, Ok(()), "{name}");
    }
}

#[test]
fn verifier_rejects_tampered_test_vectors() {
    let request = parse_vector(VECTORS[1].2);
    let expect = vector_expect(None);
    let check = |path: &str, query: Option<&str>, headers: &HeaderMap, body: &[u8], now| {
        verify_sigv4("GET", path, query, headers, body, &expect, now)
    };
    let now = vector_time();
    let mismatch = |verdict: Result<(), support::apigw::AuthRejection>| {
        let rejection = verdict.expect_err("must be rejected");
        assert_eq!(rejection.status, StatusCode::FORBIDDEN);
        assert_eq!(rejection.error_type, "InvalidSignatureException");
        assert_mismatch(&rejection.message);
    };
    mismatch(check(
        "/",
        Some("Param2=value2&Param1=value3"),
        &request.headers,
        b"",
        now,
    ));
    mismatch(check(
        "/other",
        request.query.as_deref(),
        &request.headers,
        b"",
        now,
    ));
    mismatch(check(
        "/",
        request.query.as_deref(),
        &request.headers,
        b"body",
        now,
    ));
    let mut other_host = request.headers.clone();
    other_host.insert("host", HeaderValue::from_static("evil.example.com"));
    mismatch(check("/", request.query.as_deref(), &other_host, b"", now));

    let late = now + Duration::from_secs(301);
    let expired =
        check("/", request.query.as_deref(), &request.headers, b"", late).expect_err("expired");
    assert_eq!(
        expired.message,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
         (20150830T124101Z - 5 min.)"
    );
    let early = now - Duration::from_secs(301);
    let not_yet = check("/", request.query.as_deref(), &request.headers, b"", early)
        .expect_err("not yet valid");
    assert!(not_yet.message.starts_with("Signature not yet current:"));
}

/// URLs with characters that SigV4 canonicalisation treats specially: encoded path segments
/// (double encoding), dot segments, repeated and unsorted query names, `+ / =` in values,
/// empty values, multi-byte UTF-8.
const AWKWARD_URLS: &[&str] = &[
    "https://api.example.com/prod/a%20b/c?x=%2B%2F%3D&y=1",
    "https://api.example.com/prod/dir/?b=2&a=1&a=0",
    "https://api.example.com/prod/%E2%82%AC?q=%E2%82%AC&empty=",
    "https://api.example.com/prod/a/./b/../c?z=",
    "https://api.example.com/prod/x*y?k=v*~!'()&K=upper",
    "https://api.example.com:8443/prod/cursor?cursor=%2B%2F%2B%2FAAAAAAAAAGQ%3D&limit=7",
];

#[test]
fn verifier_agrees_with_aws_sigv4_on_awkward_urls() {
    let at = SystemTime::now();
    for url in AWKWARD_URLS {
        for token in [None, Some("tok")] {
            let signed = aws_sigv4_headers(url, SK, token, at);
            let uri: http::Uri = url.parse().expect("uri");
            let mut headers = HeaderMap::new();
            let host = uri.authority().expect("authority").as_str();
            headers.insert("host", HeaderValue::from_str(host).expect("host"));
            for (name, value) in &signed {
                headers.insert(
                    HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_str(value).expect("value"),
                );
            }
            let expect = SigV4Expect {
                access_key: AK,
                secret_key: SK,
                session_token: token,
                region: REGION,
                service: EXECUTE_API,
                max_skew: Duration::from_secs(300),
            };
            let verdict = verify_sigv4("GET", uri.path(), uri.query(), &headers, b"", &expect, at);
            assert_eq!(verdict, Ok(()), "{url} token={token:?}");

            let tampered = format!("{}&extra=1", uri.query().unwrap_or("a=b"));
            let verdict = verify_sigv4(
                "GET",
                uri.path(),
                Some(&tampered),
                &headers,
                b"",
                &expect,
                at,
            );
            assert_eq!(
                verdict.expect_err("tampered query").error_type,
                "InvalidSignatureException",
                "{url}"
            );
        }
    }
}

#[test]
fn verifier_requires_host_to_be_signed_and_no_unknown_token() {
    let request = parse_vector(VECTORS[0].2);
    let mut headers = request.headers.clone();
    let unsigned_host = headers["authorization"]
        .to_str()
        .expect("ascii")
        .replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date");
    headers.insert(
        "authorization",
        HeaderValue::from_str(&unsigned_host).expect("value"),
    );
    let verdict = verify_sigv4(
        "GET",
        "/",
        None,
        &headers,
        b"",
        &vector_expect(None),
        vector_time(),
    );
    assert_eq!(
        verdict.expect_err("host must be signed").error_type,
        "IncompleteSignatureException"
    );

    // A token the server never issued (no token configured) is rejected before the signature.
    let mut headers = request.headers.clone();
    headers.insert("x-amz-security-token", HeaderValue::from_static("stray"));
    let rejection = verify_sigv4(
        "GET",
        "/",
        None,
        &headers,
        b"",
        &vector_expect(None),
        vector_time(),
    )
    .expect_err("unknown token");
    assert_eq!(rejection.error_type, "UnrecognizedClientException");
    assert_eq!(rejection.message, INVALID_SECURITY_TOKEN);
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn throttling_answers_every_kth_request_with_429_and_retry_after() {
    let server = ApiGateway::start(ApiConfig {
        throttle_every: Some(3),
        ..config(10, 5)
    })
    .await;
    let client = client();
    let mut throttled = Vec::new();
    for n in 1..=9 {
        let response = client
            .get(server.url("/prod/offset"))
            .send()
            .await
            .expect("send");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.headers()["retry-after"], "1");
            let (_, error_type, msg) = rejection(response).await;
            assert_eq!(error_type.as_deref(), Some("TooManyRequestsException"));
            assert_eq!(msg, "Too Many Requests");
            throttled.push(n);
        } else {
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
    assert_eq!(throttled, vec![3, 6, 9]);
}

#[tokio::test]
async fn retry_after_can_be_an_http_date() {
    let server = ApiGateway::start(ApiConfig {
        throttle_every: Some(1),
        retry_after: RetryAfter::HttpDate(Duration::from_secs(30)),
        ..config(10, 5)
    })
    .await;
    let response = client()
        .get(server.url("/prod/offset"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let value = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .to_string();
    let at = httpdate::parse_http_date(&value).expect("HTTP-date");
    assert!(at > SystemTime::now() + Duration::from_secs(20), "{value}");
}

#[tokio::test]
async fn quota_exceeded_is_429_limit_exceeded() {
    let server = ApiGateway::start(ApiConfig {
        quota_exceeded: true,
        ..config(10, 5)
    })
    .await;
    let response = client()
        .get(server.url("/prod/page"))
        .send()
        .await
        .expect("send");
    let (status, error_type, msg) = rejection(response).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_type.as_deref(), Some("LimitExceededException"));
    assert_eq!(msg, "Limit Exceeded");
    let again = client()
        .get(server.url("/prod/page"))
        .send()
        .await
        .expect("send");
    assert!(again.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn throttling_can_omit_retry_after_like_real_api_gateway() {
    let server = ApiGateway::start(ApiConfig {
        throttle_every: Some(1),
        retry_after: RetryAfter::Omit,
        ..config(10, 5)
    })
    .await;
    let response = client()
        .get(server.url("/prod/offset"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn error_rate_is_seeded_and_uses_gateway_bodies() {
    let run = || async {
        let server = ApiGateway::start(ApiConfig {
            error_rate: 0.5,
            seed: 7,
            ..config(10, 5)
        })
        .await;
        let client = client();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let response = client
                .get(server.url("/prod/offset"))
                .send()
                .await
                .expect("send");
            let status = response.status();
            if status != StatusCode::OK {
                let body = response.bytes().await.expect("body");
                let expected = match status.as_u16() {
                    500 | 502 => "Internal server error",
                    503 => "Service Unavailable",
                    504 => "Endpoint request timed out",
                    other => panic!("unexpected status {other}"),
                };
                assert_eq!(message(&body), expected);
            }
            statuses.push(status.as_u16());
        }
        statuses
    };
    let first = run().await;
    assert_eq!(first, run().await, "same seed, same faults");
    assert!(first.contains(&200));
    assert!(first.iter().any(|s| *s >= 500));
}

#[tokio::test]
async fn malformed_page_is_invalid_json() {
    let server = ApiGateway::start(ApiConfig {
        malformed_page: Some(1),
        ..config(30, 10)
    })
    .await;
    let client = client();
    let page0 = client
        .get(server.url("/prod/page?page=1"))
        .send()
        .await
        .expect("send");
    assert!(serde_json::from_slice::<Value>(&page0.bytes().await.expect("body")).is_ok());
    let page1 = client
        .get(server.url("/prod/page?page=2"))
        .send()
        .await
        .expect("send");
    assert_eq!(page1.status(), StatusCode::OK);
    let body = page1.bytes().await.expect("body");
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

#[tokio::test]
async fn truncated_page_fails_mid_body() {
    let server = ApiGateway::start(ApiConfig {
        truncate_page: Some(0),
        ..config(30, 10)
    })
    .await;
    let response = client()
        .get(server.url("/prod/offset"))
        .send()
        .await
        .expect("send headers");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.is_err(), "body must end early");
    let page1 = client()
        .get(server.url("/prod/offset?offset=10"))
        .send()
        .await
        .expect("send");
    assert!(serde_json::from_slice::<Value>(&page1.bytes().await.expect("body")).is_ok());
}

#[tokio::test]
async fn fail_first_n_fails_a_page_then_serves_it() {
    let server = ApiGateway::start(ApiConfig {
        fail_first_n: HashMap::from([(1, 2)]),
        ..config(30, 10)
    })
    .await;
    let client = client();
    let url = server.url("/prod/page?page=2");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            client
                .get(&url)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, vec![503, 503, 200]);
    let other = client
        .get(server.url("/prod/page?page=1"))
        .send()
        .await
        .expect("send");
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn hostile_next_replaces_next_links() {
    let hostile = "https://evil.example.com/steal?x=1".to_string();
    let server = ApiGateway::start(ApiConfig {
        hostile_next: Some(hostile.clone()),
        ..config(30, 10)
    })
    .await;
    let client = client();
    let (_, body) = get_json(&client, &server.url("/prod/next-link")).await;
    assert_eq!(body["links"]["next"], Value::from(hostile.clone()));
    let (headers, _) = get_json(&client, &server.url("/prod/link-header")).await;
    let links = parse_link_header(headers[http::header::LINK].to_str().expect("ascii"));
    assert!(links.contains(&(hostile, "next".to_string())));
}

#[tokio::test]
async fn latency_delays_each_page() {
    let server = ApiGateway::start(ApiConfig {
        latency: Duration::from_millis(150),
        ..config(10, 5)
    })
    .await;
    let started = std::time::Instant::now();
    let response = client()
        .get(server.url("/prod/offset"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn max_page_size_caps_what_a_page_holds() {
    let server = ApiGateway::start(ApiConfig {
        max_page_size: Some(3),
        ..config(10, 5)
    })
    .await;
    let client = client();
    let (_, offset) = get_json(&client, &server.url("/prod/offset?offset=2&limit=8")).await;
    assert_eq!(
        array(&offset["items"]),
        (2..5).map(record).collect::<Vec<_>>()
    );
    let (_, small) = get_json(&client, &server.url("/prod/offset?offset=8&limit=2")).await;
    assert_eq!(
        array(&small["items"]),
        (8..10).map(record).collect::<Vec<_>>()
    );
    // Page numbers count pages of the capped size.
    let (_, page) = get_json(&client, &server.url("/prod/page?page=2&per_page=5")).await;
    assert_eq!(
        array(&page["results"]),
        (3..6).map(record).collect::<Vec<_>>()
    );
    assert_eq!(page["has_more"], true);
    let (_, last) = get_json(&client, &server.url("/prod/page?page=4&per_page=5")).await;
    assert_eq!(array(&last["results"]), vec![record(9)]);
    assert_eq!(last["has_more"], false);
}

#[tokio::test]
async fn reject_past_end_answers_400_instead_of_an_empty_page() {
    let server = ApiGateway::start(ApiConfig {
        reject_past_end: true,
        ..config(10, 5)
    })
    .await;
    let client = client();
    let (_, last) = get_json(&client, &server.url("/prod/offset?offset=9")).await;
    assert_eq!(array(&last["items"]), vec![record(9)]);
    for (path, message) in [
        ("/prod/offset?offset=10", "invalid offset"),
        ("/prod/page?page=3", "invalid page"),
    ] {
        let response = client.get(server.url(path)).send().await.expect("send");
        let (status, _, body) = rejection(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(body.contains(message), "{path}: {body}");
    }
    let (_, page) = get_json(&client, &server.url("/prod/page?page=2")).await;
    assert_eq!(page["has_more"], false);
}

#[tokio::test]
async fn max_in_flight_counts_requests_answered_at_once() {
    let server = ApiGateway::start(ApiConfig {
        latency: Duration::from_millis(200),
        ..config(10, 5)
    })
    .await;
    let client = client();
    client
        .get(server.url("/prod/offset"))
        .send()
        .await
        .expect("send");
    assert_eq!(server.max_in_flight(), 1, "one at a time");
    let url = server.url("/prod/offset?offset=5");
    let three = futures::future::join3(
        client.get(&url).send(),
        client.get(&url).send(),
        client.get(&url).send(),
    )
    .await;
    for r in [three.0, three.1, three.2] {
        assert_eq!(r.expect("send").status(), StatusCode::OK);
    }
    assert_eq!(server.max_in_flight(), 3);
}
