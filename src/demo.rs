//! The built-in demo API behind `gatelake demo`: a small server on a free loopback port that
//! serves deterministic "orders" the way a cursor-paginated API Gateway endpoint does (JSON
//! body `{"items": [...], "next_cursor": "..."}`, gzip when the client accepts it), so the
//! whole path — fetch, paginate, encode, stage, manifest — runs on a fresh machine with no
//! account anywhere. Nothing here is used by a real pull.
//!
//! The data is a pure function of the record index, so a demo run that was interrupted can be
//! resumed by serving the same orders again: the source URL a run records in its checkpoint
//! ([`DemoApi::source_url`]) names the port and the data's shape (`records`, `page_size`), and
//! [`resumable_port`] reads them back so the next `gatelake demo` can listen where the
//! interrupted run's saved cursor points.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use serde::Deserialize;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The demo endpoint's path.
pub const ORDERS_PATH: &str = "/demo/orders";

const COUNTRIES: [&str; 6] = ["SE", "DE", "US", "JP", "BR", "KE"];
const NOTES: [&str; 6] = [
    "leave at the door",
    "call on arrival, please",
    "fragile: \"glass\"",
    "two boxes\nsecond one later",
    "gift 🎁 wrap",
    "",
];

/// Demo order number `i`, identical on every machine.
pub fn demo_order(i: u64) -> serde_json::Value {
    // A cheap deterministic mix so values vary without a RNG.
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    let day = 1 + (i % 28);
    let hour = (h % 24) as u8;
    serde_json::json!({
        "order_id": i,
        "customer": {"id": 1000 + (h % 5000), "country": COUNTRIES[(h % 6) as usize]},
        "amount": ((h % 100_000) as f64) / 100.0,
        "currency": "EUR",
        "paid": !h.is_multiple_of(7),
        "items": (h % 4) + 1,
        "note": if h.is_multiple_of(11) { serde_json::Value::Null } else { NOTES[(h % 6) as usize].into() },
        "created_at": format!("2026-11-{day:02}T{hour:02}:{:02}:00Z", h % 60),
    })
}

#[derive(Debug)]
struct Demo {
    records: u64,
    page_size: u64,
}

#[derive(Debug, Deserialize)]
struct OrdersQuery {
    cursor: Option<String>,
    limit: Option<u64>,
}

/// A running demo API; stops when dropped.
#[derive(Debug)]
pub struct DemoApi {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl DemoApi {
    /// Serve `records` orders, `page_size` per page, on 127.0.0.1 at a free port.
    pub async fn start(records: u64, page_size: u64) -> std::io::Result<Self> {
        Self::start_on(0, records, page_size).await
    }

    /// The same on `port` (0: a free one), e.g. the port of an interrupted run to resume.
    pub async fn start_on(port: u16, records: u64, page_size: u64) -> std::io::Result<Self> {
        let state = Arc::new(Demo {
            records,
            page_size: page_size.max(1),
        });
        let app = Router::new()
            .route(ORDERS_PATH, get(orders))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!("demo API stopped: {e}");
            }
        });
        Ok(Self { addr, _stop: stop })
    }

    /// The orders endpoint's URL.
    pub fn url(&self) -> String {
        format!("http://{}{ORDERS_PATH}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL a demo pull starts from: the endpoint plus the data's shape. The server ignores
    /// the extra parameters; they are there so that the run's checkpoint records which data
    /// it was pulling, and a resume is refused for different data.
    pub fn source_url(&self, records: u64, page_size: u64) -> String {
        format!("{}?records={records}&page_size={page_size}", self.url())
    }
}

/// The port of an interrupted demo run whose checkpoint recorded `saved_source_url`, when that
/// run pulled the same data (`records` orders, `page_size` per page) from a demo API on
/// loopback; `None` for anything else (another source, other data).
pub fn resumable_port(saved_source_url: &str, records: u64, page_size: u64) -> Option<u16> {
    let url = url::Url::parse(saved_source_url).ok()?;
    if url.scheme() != "http" || url.host_str() != Some("127.0.0.1") || url.path() != ORDERS_PATH {
        return None;
    }
    let mut shape = (None, None);
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "records" => shape.0 = v.parse::<u64>().ok(),
            "page_size" => shape.1 = v.parse::<u64>().ok(),
            _ => {}
        }
    }
    (shape == (Some(records), Some(page_size)))
        .then(|| url.port())
        .flatten()
}

fn encode_cursor(next: u64) -> String {
    // Opaque, and full of characters that need percent-encoding, like real cursors.
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"after\":{next}}}~~"))
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let inner = text.strip_suffix("~~")?;
    let v: serde_json::Value = serde_json::from_str(inner).ok()?;
    v.get("after")?.as_u64()
}

async fn orders(
    State(demo): State<Arc<Demo>>,
    Query(q): Query<OrdersQuery>,
    headers: HeaderMap,
) -> Response {
    let start = match q.cursor.as_deref() {
        None => 0,
        Some(c) => match decode_cursor(c) {
            Some(n) => n,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"message":"invalid cursor"}"#,
                )
                    .into_response()
            }
        },
    };
    let size = q.limit.unwrap_or(demo.page_size).clamp(1, 1000);
    let end = (start + size).min(demo.records);
    let items: Vec<serde_json::Value> = (start..end).map(demo_order).collect();
    let next = (end < demo.records).then(|| encode_cursor(end));
    let body = serde_json::json!({"items": items, "next_cursor": next}).to_string();
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    if gzip_ok && body.len() > 1024 {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if enc.write_all(body.as_bytes()).is_ok() {
            if let Ok(gz) = enc.finish() {
                return (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    gz,
                )
                    .into_response();
            }
        }
    }
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for n in [0, 1, 499, 1_000_000] {
            assert_eq!(decode_cursor(&encode_cursor(n)), Some(n));
        }
        assert_eq!(decode_cursor("not a cursor"), None);
    }

    #[test]
    fn orders_are_deterministic_objects() {
        assert_eq!(demo_order(7), demo_order(7));
        assert_ne!(demo_order(7), demo_order(8));
        assert!(demo_order(3).is_object());
    }

    #[tokio::test]
    async fn a_run_s_source_url_names_its_port_and_data() {
        let api = DemoApi::start(30, 7).await.unwrap();
        let saved = api.source_url(30, 7);
        assert_eq!(resumable_port(&saved, 30, 7), Some(api.port()));
        // Other data, or not the demo at all: not resumable.
        assert_eq!(resumable_port(&saved, 31, 7), None);
        assert_eq!(resumable_port(&saved, 30, 8), None);
        assert_eq!(resumable_port(&api.url(), 30, 7), None);
        assert_eq!(
            resumable_port(
                "https://x.example/demo/orders?records=30&page_size=7",
                30,
                7
            ),
            None
        );
        // The server serves the same orders whatever the extra parameters say.
        let body: serde_json::Value =
            serde_json::from_slice(&reqwest::get(&saved).await.unwrap().bytes().await.unwrap())
                .unwrap();
        assert_eq!(body["items"][0], demo_order(0));
        assert_eq!(body["items"].as_array().unwrap().len(), 7);
    }

    #[tokio::test]
    async fn serves_every_order_once_across_pages() {
        let api = DemoApi::start(25, 10).await.unwrap();
        let http = reqwest::Client::new();
        let mut url = api.url();
        let mut seen = Vec::new();
        loop {
            let body: serde_json::Value = serde_json::from_slice(
                &http.get(&url).send().await.unwrap().bytes().await.unwrap(),
            )
            .unwrap();
            for item in body["items"].as_array().unwrap() {
                seen.push(item["order_id"].as_u64().unwrap());
            }
            match body["next_cursor"].as_str() {
                Some(c) => {
                    url = format!(
                        "{}?cursor={}",
                        api.url(),
                        percent_encoding::utf8_percent_encode(
                            c,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    )
                }
                None => break,
            }
        }
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
    }
}
