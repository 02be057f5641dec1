//! A fast loopback API for benchmarks (bench/compare.sh): N deterministic records (of the
//! `orders` shape, about 390 bytes each, or the `wide` shape, about 1.6 KB with long escaped
//! text and nested arrays; see `bench/data.rs`), every page rendered and gzipped once at
//! start-up at `--gzip-level` (6 by default, what most servers use), then served from memory,
//! so the server costs almost nothing per request and the client's work is what gets measured.
//!
//! ```text
//! cargo run --release --example bench_api -- [--records 1000000] [--page-size 500]
//!     [--latency-ms 0] [--port 0] [--styles cursor,next-link,offset,page] [--threads 2]
//!     [--gzip-level 6] [--shape orders|wide]
//! ```
//!
//! It binds 127.0.0.1 (a free port unless `--port`), renders the pages, prints its base URL
//! (`http://127.0.0.1:PORT`, one line on stdout) once it is ready, and serves until killed.
//! Progress and sizes go to stderr.
//!
//! Endpoints (every body gzip-encoded unless the client does not accept gzip):
//!
//! - `GET /cursor[?cursor=C]` — `{"items":[...],"next_cursor":"C"}`; `next_cursor` is `null`
//!   on the last page.
//!   With `--windows W` (bench/scale.sh) the records are W time windows of `--window-secs`
//!   from `--window-start`: `GET /cursor?from=T` (`--window-param`) starts at window T's first
//!   page, and `next_cursor` is `null` on each window's last page (bench/windows.rs).
//! - `GET /next[?page=K]` — `{"data":[...],"next":"http://127.0.0.1:PORT/next?page=K+1"}`;
//!   `next` is `null` on the last page.
//! - `GET /offset[?offset=O&limit=L]` — `{"items":[...],"total":N}`; `O` must be a multiple
//!   of the page size and `L` (when given) equal to it; an offset at or past the end returns
//!   `{"items":[],"total":N}`.
//! - `GET /page[?page=K&per_page=S]` — `{"items":[...],"has_more":bool}`, pages numbered
//!   from 1; `S` (when given) must equal the page size; a page past the end returns
//!   `{"items":[],"has_more":false}`.
//!
//! `--latency-ms` delays every page (not error answers) without holding a thread,
//! so concurrent requests overlap: a client with N requests in flight can get N pages per
//! round trip (bench/latency.sh).
//!
//! Memory: each style holds every page gzipped (≈4.7:1 at level 1, ≈6:1 at level 6 on the
//! orders shape). 1,000,000 orders × ≈390 B is ≈390 MB of JSON, 65–84 MB gzipped per style;
//! `--styles cursor` keeps only one. Start-up renders and gzips the JSON of every style on
//! `--threads` threads (≈0.6 s per style on two cores at level 1, a few seconds at level 6).

use anyhow::{bail, Context, Result};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use clap::Parser;
use serde::Deserialize;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "Loopback benchmark API: pre-gzipped pages of deterministic records")]
struct Args {
    /// Number of records.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Records per page.
    #[arg(long, default_value_t = 500)]
    page_size: u64,
    /// Delay added before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Port on 127.0.0.1 (0: a free port chosen by the OS).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Pagination styles to render, comma-separated: cursor, next-link, offset, page.
    #[arg(long, default_value = "cursor,next-link,offset", value_delimiter = ',')]
    styles: Vec<String>,
    /// Threads used to render and gzip the pages at start-up (and to serve).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// gzip level of the served pages, 0-9 (6: what most servers use).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    gzip_level: u32,
    /// Record shape: orders (≈390 B) or wide (≈1.6 KB, long escaped text, nested arrays).
    #[arg(long, default_value = "orders", value_parser = ["orders", "wide"])]
    shape: String,
    /// Split the cursor style's records into this many time windows (0: none; bench/scale.sh).
    #[arg(long, default_value_t = 0)]
    windows: u64,
    /// Start of the first window (RFC 3339, date or epoch).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    window_start: String,
    /// Length of a window, in seconds.
    #[arg(long, default_value_t = 86_400)]
    window_secs: i64,
    /// Query parameter carrying a window's start.
    #[arg(long, default_value = "from")]
    window_param: String,
}

impl Args {
    fn shape(&self) -> Shape {
        Shape::parse(&self.shape).unwrap_or(Shape::Orders)
    }

    /// The windows of `--windows` (checked in `main`), or `None`.
    fn window_plan(&self) -> Option<Windows> {
        (self.windows > 0).then(|| {
            Windows::new(
                &self.window_param,
                &self.window_start,
                self.window_secs,
                self.windows,
                self.records,
                self.page_size,
            )
            .ok()
        })?
    }
}

#[path = "../bench/data.rs"]
mod data;
use data::Shape;
#[path = "../bench/windows.rs"]
mod windows;
use windows::Windows;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Cursor,
    NextLink,
    Offset,
    Page,
}

impl Style {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "cursor" => Self::Cursor,
            "next-link" | "next" => Self::NextLink,
            "offset" => Self::Offset,
            "page" => Self::Page,
            other => bail!("unknown style {other:?} (cursor, next-link, offset, page)"),
        })
    }
}

fn cursor_for(page: u64) -> String {
    // Opaque-looking, and with characters that need percent-encoding, like real cursors.
    format!("p{page:08}~{:04x}=", page.wrapping_mul(40503) % 0x1_0000)
}

fn page_from_cursor(cursor: &str) -> Option<u64> {
    let page: u64 = cursor.strip_prefix('p')?.split('~').next()?.parse().ok()?;
    (cursor == cursor_for(page)).then_some(page)
}

/// The JSON body of page `page` in `style`.
fn render_page(style: Style, page: u64, args: &Args, base: &str) -> String {
    let start = page * args.page_size;
    let end = (start + args.page_size).min(args.records);
    let window_end =
        style == Style::Cursor && args.window_plan().is_some_and(|w| w.is_last_page(page));
    let last = end >= args.records || window_end;
    let shape = args.shape();
    let per_record = if shape == Shape::Wide { 1700 } else { 400 };
    let mut body = String::with_capacity(((end.saturating_sub(start)) * per_record + 200) as usize);
    body.push_str(match style {
        Style::NextLink => r#"{"data":["#,
        Style::Cursor | Style::Offset | Style::Page => r#"{"items":["#,
    });
    for i in start..end {
        if i > start {
            body.push(',');
        }
        shape.write(&mut body, i);
    }
    body.push(']');
    let _ = match style {
        Style::Cursor if last => write!(body, r#","next_cursor":null}}"#),
        Style::Cursor => write!(body, r#","next_cursor":"{}"}}"#, cursor_for(page + 1)),
        Style::NextLink if last => write!(body, r#","next":null}}"#),
        Style::NextLink => write!(body, r#","next":"{base}/next?page={}"}}"#, page + 1),
        Style::Offset => write!(body, r#","total":{}}}"#, args.records),
        Style::Page => write!(body, r#","has_more":{}}}"#, !last),
    };
    body
}

fn gzip(body: &[u8], level: u32) -> Result<Bytes> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(level),
    );
    enc.write_all(body)?;
    Ok(Bytes::from(enc.finish()?))
}

/// Every page of `style`, gzipped, rendered on `threads` threads. Returns (pages, JSON bytes).
fn render_all(style: Style, args: &Args, base: &str) -> Result<(Vec<Bytes>, u64)> {
    let pages = args.records.div_ceil(args.page_size).max(1);
    let threads = args.threads.max(1) as u64;
    let per = pages.div_ceil(threads);
    let parts: Vec<Result<(Vec<Bytes>, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> Result<(Vec<Bytes>, u64)> {
                    let mut out = Vec::new();
                    let mut json = 0u64;
                    for page in (t * per)..((t + 1) * per).min(pages) {
                        let body = render_page(style, page, args, base);
                        json += body.len() as u64;
                        out.push(gzip(body.as_bytes(), args.gzip_level)?);
                    }
                    Ok((out, json))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("a render thread panicked")),
            })
            .collect()
    });
    let mut all = Vec::with_capacity(pages as usize);
    let mut json = 0;
    for part in parts {
        let (p, j) = part?;
        all.extend(p);
        json += j;
    }
    Ok((all, json))
}

#[derive(Debug, Default)]
struct Pages {
    cursor: Option<Vec<Bytes>>,
    next: Option<Vec<Bytes>>,
    offset: Option<Vec<Bytes>>,
    offset_empty: Bytes,
    page: Option<Vec<Bytes>>,
    page_empty: Bytes,
    page_size: u64,
    latency: Duration,
    windows: Option<Windows>,
}

#[derive(Debug, Deserialize)]
struct CursorQuery {
    cursor: Option<String>,
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    page: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    page: Option<u64>,
    per_page: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct OffsetQuery {
    offset: Option<u64>,
    limit: Option<u64>,
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"message":"{message}"}}"#),
    )
        .into_response()
}

async fn send(pages: &Pages, gz: Bytes, headers: &HeaderMap) -> Response {
    if !pages.latency.is_zero() {
        tokio::time::sleep(pages.latency).await;
    }
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    if gzip_ok {
        return (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            gz,
        )
            .into_response();
    }
    let mut plain = Vec::new();
    match flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut plain) {
        Ok(_) => ([(header::CONTENT_TYPE, "application/json")], plain).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn cursor_page(
    State(p): State<Arc<Pages>>,
    Query(q): Query<CursorQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(pages) = &p.cursor else {
        return error(StatusCode::NOT_FOUND, "style not rendered (--styles)");
    };
    let page = match q.cursor.as_deref() {
        None => match p.windows.as_ref().and_then(|w| w.first_page(&q.rest)) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(e)) => return error(StatusCode::BAD_REQUEST, &e),
        },
        Some(c) => match page_from_cursor(c) {
            Some(n) => n,
            None => return error(StatusCode::BAD_REQUEST, "invalid cursor"),
        },
    };
    match pages.get(page as usize) {
        Some(gz) => send(&p, gz.clone(), &headers).await,
        None => error(StatusCode::BAD_REQUEST, "cursor past the end"),
    }
}

async fn next_page(
    State(p): State<Arc<Pages>>,
    Query(q): Query<NextQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(pages) = &p.next else {
        return error(StatusCode::NOT_FOUND, "style not rendered (--styles)");
    };
    match pages.get(q.page.unwrap_or(0) as usize) {
        Some(gz) => send(&p, gz.clone(), &headers).await,
        None => error(StatusCode::NOT_FOUND, "no such page"),
    }
}

async fn offset_page(
    State(p): State<Arc<Pages>>,
    Query(q): Query<OffsetQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(pages) = &p.offset else {
        return error(StatusCode::NOT_FOUND, "style not rendered (--styles)");
    };
    let offset = q.offset.unwrap_or(0);
    if q.limit.is_some_and(|l| l != p.page_size) || !offset.is_multiple_of(p.page_size) {
        return error(
            StatusCode::BAD_REQUEST,
            "offset must be a multiple of the page size, limit equal to it",
        );
    }
    let gz = pages
        .get((offset / p.page_size) as usize)
        .cloned()
        .unwrap_or_else(|| p.offset_empty.clone());
    send(&p, gz, &headers).await
}

async fn numbered_page(
    State(p): State<Arc<Pages>>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(pages) = &p.page else {
        return error(StatusCode::NOT_FOUND, "style not rendered (--styles)");
    };
    let page = q.page.unwrap_or(1);
    if page == 0 || q.per_page.is_some_and(|s| s != p.page_size) {
        return error(
            StatusCode::BAD_REQUEST,
            "page numbers start at 1, per_page must equal the page size",
        );
    }
    let gz = pages
        .get((page - 1) as usize)
        .cloned()
        .unwrap_or_else(|| p.page_empty.clone());
    send(&p, gz, &headers).await
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.page_size == 0 {
        bail!("--page-size must be at least 1");
    }
    if args.windows > 0 {
        Windows::new(
            &args.window_param,
            &args.window_start,
            args.window_secs,
            args.windows,
            args.records,
            args.page_size,
        )
        .map_err(anyhow::Error::msg)?;
    }
    let styles: Vec<Style> = args
        .styles
        .iter()
        .map(|s| Style::parse(s))
        .collect::<Result<_>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, styles))
}

async fn serve(args: Args, styles: Vec<Style>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let base = format!("http://{}", listener.local_addr()?);

    let started = Instant::now();
    let mut pages = Pages {
        page_size: args.page_size,
        latency: Duration::from_millis(args.latency_ms),
        offset_empty: gzip(
            format!(r#"{{"items":[],"total":{}}}"#, args.records).as_bytes(),
            args.gzip_level,
        )?,
        page_empty: gzip(br#"{"items":[],"has_more":false}"#, args.gzip_level)?,
        windows: args.window_plan(),
        ..Pages::default()
    };
    let args = Arc::new(args);
    for style in styles {
        let (a, b) = (Arc::clone(&args), base.clone());
        let (rendered, json) =
            tokio::task::spawn_blocking(move || render_all(style, &a, &b)).await??;
        let gz: u64 = rendered.iter().map(|p| p.len() as u64).sum();
        eprintln!(
            "bench_api: {style:?}: {} pages of {} records, {:.1} MB JSON ({:.0} B/record with the \
             envelope), {:.1} MB gzipped at level {}",
            rendered.len(),
            args.shape,
            json as f64 / 1e6,
            json as f64 / args.records.max(1) as f64,
            gz as f64 / 1e6,
            args.gzip_level,
        );
        match style {
            Style::Cursor => pages.cursor = Some(rendered),
            Style::NextLink => pages.next = Some(rendered),
            Style::Offset => pages.offset = Some(rendered),
            Style::Page => pages.page = Some(rendered),
        }
    }
    eprintln!(
        "bench_api: {} records rendered in {:.1}s; serving {base}/cursor, {base}/next, {base}/offset, {base}/page",
        args.records,
        started.elapsed().as_secs_f64()
    );

    let app = Router::new()
        .route("/cursor", get(cursor_page))
        .route("/next", get(next_page))
        .route("/offset", get(offset_page))
        .route("/page", get(numbered_page))
        .with_state(Arc::new(pages));
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{base}")?;
        stdout.flush()?;
    }
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for n in [0, 1, 499, 1_999_999] {
            assert_eq!(page_from_cursor(&cursor_for(n)), Some(n));
        }
        assert_eq!(page_from_cursor("p1"), None);
    }

    #[test]
    fn numbered_pages_say_whether_more_follow() {
        let args = Args::parse_from(["bench_api", "--records", "5", "--page-size", "2"]);
        let page = |n| {
            serde_json::from_str::<serde_json::Value>(&render_page(Style::Page, n, &args, ""))
                .unwrap_or_default()
        };
        assert_eq!(page(0)["has_more"], true);
        assert_eq!(page(0)["items"][1]["id"], 1);
        assert_eq!(page(2)["has_more"], false);
        assert_eq!(page(2)["items"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn records_are_json_of_about_390_bytes() {
        let mut total = 0;
        for i in 0..1000 {
            let mut s = String::new();
            data::write_record(&mut s, i);
            let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
            assert_eq!(v["id"].as_u64(), Some(i), "{s}");
            total += s.len();
        }
        let avg = total / 1000;
        assert!((360..=420).contains(&avg), "average record {avg} bytes");
    }

    #[test]
    fn wide_records_are_json_with_escapes_and_nested_arrays() {
        let mut total = 0;
        for i in 0..1000 {
            let mut s = String::new();
            Shape::Wide.write(&mut s, i);
            let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
            assert_eq!(v["id"].as_u64(), Some(i), "{s}");
            assert!(v["lines"].as_array().is_some_and(|l| !l.is_empty()), "{s}");
            assert!(v["scores"][1].is_array(), "{s}");
            total += s.len();
        }
        let avg = total / 1000;
        assert!(
            (1200..=2200).contains(&avg),
            "average wide record {avg} bytes"
        );
        let mut escaped = String::new();
        for i in 0..20 {
            Shape::Wide.write(&mut escaped, i);
        }
        for escape in [r#"\""#, r"\\", r"\n", r"\u00e9"] {
            assert!(escaped.contains(escape), "no {escape} in 20 wide records");
        }
    }

    #[test]
    fn pages_are_gzipped_at_the_level_asked() {
        let body = render_page(
            Style::Cursor,
            0,
            &Args::parse_from(["bench_api", "--records", "500"]),
            "",
        );
        let fast = gzip(body.as_bytes(), 1).map(|b| b.len()).unwrap_or(0);
        let six = gzip(body.as_bytes(), 6).map(|b| b.len()).unwrap_or(0);
        assert!(six > 0 && six < fast, "level 6 {six} B, level 1 {fast} B");
    }
}
