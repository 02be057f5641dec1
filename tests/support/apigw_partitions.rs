//! Routes of the API Gateway emulator for split jobs (`--window*`, `--keys*`): the same
//! dataset, filtered the way real APIs filter it, paged by cursor. A child module of
//! `apigw.rs` (one hook line in its `respond`), so the auth, latency and gzip of every other
//! route apply here too. See `APIGW.md`, "Routes for split jobs".
//!
//! - `/prod/windowed?from=…&to=…`: the records whose `created_at` is in `[from, to)`. A bound
//!   is RFC 3339, a date (midnight UTC), epoch seconds or epoch milliseconds (13+ digits); a
//!   missing bound is open.
//! - `/prod/tenants/{country}/orders`: the records whose `customer.country` is `{country}`.
//! - `/prod/by-country?country=DE,US`: the records whose `customer.country` is one of those.
//!
//! Each answers `{"items":[...],"next_cursor":"<opaque>"|null}` (`cursor`, `limit`), the cursor
//! being a position in the filtered list, so a page never leaves its window or key.

use super::{
    check_auth, decode_cursor, encode_cursor, query_params, record, send_page, size_param, to_json,
    Page, Shared, COUNTRIES, FIRST_CREATED, STAGE,
};
use axum::http::Method;
use axum::response::Response;
use serde_json::json;

/// The answer of a split-job route, or `None` when `parts` is for another route.
pub(super) async fn respond(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Option<Response> {
    let rest = parts.uri.path().strip_prefix(STAGE)?;
    let params = query_params(parts.uri.query());
    let filter = match rest {
        "/windowed" => Filter::Window,
        "/by-country" => Filter::Countries(
            params
                .get("country")
                .map(|c| c.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        ),
        _ => {
            let country = rest.strip_prefix("/tenants/")?.strip_suffix("/orders")?;
            let country = percent_encoding::percent_decode_str(country)
                .decode_utf8_lossy()
                .into_owned();
            Filter::Countries(vec![country])
        }
    };
    if parts.method != Method::GET {
        return None;
    }
    let config = &shared.config;
    if let Err(rejection) = check_auth(config, parts, body) {
        return Some(rejection.into_response());
    }
    let page = match page(shared, &filter, &params) {
        Ok(page) => page,
        Err(message) => return Some(super::bad_request(&message)),
    };
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    Some(send_page(config, parts, page, false))
}

enum Filter {
    Window,
    Countries(Vec<String>),
}

/// The indices of the records the request's filter keeps, in order.
fn selected(
    shared: &Shared,
    filter: &Filter,
    params: &std::collections::HashMap<String, String>,
) -> Result<Vec<u64>, String> {
    let all = 0..shared.config.records;
    Ok(match filter {
        Filter::Window => {
            let from = match params.get("from") {
                Some(v) => first_index_at(v).ok_or("invalid from")?,
                None => 0,
            };
            let to = match params.get("to") {
                Some(v) => first_index_at(v).ok_or("invalid to")?,
                None => u64::MAX,
            };
            all.filter(|i| *i >= from && *i < to).collect()
        }
        Filter::Countries(keep) => all
            .filter(|i| keep.iter().any(|c| c == COUNTRIES[(*i % 6) as usize]))
            .collect(),
    })
}

fn page(
    shared: &Shared,
    filter: &Filter,
    params: &std::collections::HashMap<String, String>,
) -> Result<Page, String> {
    let size = size_param(params, "limit", shared.config.page_size)?;
    let start = match params.get("cursor") {
        Some(token) => decode_cursor(token).ok_or_else(|| "invalid cursor".to_string())?,
        None => 0,
    };
    let kept = selected(shared, filter, params)?;
    let from = usize::try_from(start).unwrap_or(usize::MAX).min(kept.len());
    let to = from
        .saturating_add(usize::try_from(size).unwrap_or(usize::MAX))
        .min(kept.len());
    let items: Vec<_> = kept[from..to].iter().map(|i| record(*i)).collect();
    let next = (to < kept.len()).then(|| encode_cursor(to as u64));
    Ok(Page {
        index: start / size,
        body: to_json(&json!({ "items": items, "next_cursor": next })),
        headers: Vec::new(),
    })
}

/// The first record index created at or after `bound` (RFC 3339, a date, epoch seconds or
/// epoch milliseconds).
fn first_index_at(bound: &str) -> Option<u64> {
    use time::format_description::well_known::Rfc3339;
    let at = if let Ok(t) = time::OffsetDateTime::parse(bound, &Rfc3339) {
        t
    } else if let Ok(d) = time::Date::parse(
        bound,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        d.midnight().assume_utc()
    } else if bound.len() >= 13 && bound.chars().all(|c| c.is_ascii_digit()) {
        time::OffsetDateTime::from_unix_timestamp_nanos(bound.parse::<i128>().ok()? * 1_000_000)
            .ok()?
    } else {
        time::OffsetDateTime::from_unix_timestamp(bound.parse().ok()?).ok()?
    };
    let secs = (at - FIRST_CREATED).whole_seconds();
    Some(if secs <= 0 {
        0
    } else {
        u64::try_from(secs).ok()?.div_ceil(61)
    })
}
