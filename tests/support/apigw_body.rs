//! The API Gateway emulator's search routes: `POST` endpoints that page through their JSON
//! request body, as search and export APIs behind API Gateway do. A child of `apigw.rs`
//! (hooked in with one line in its `respond`), so the same auth checks (SigV4 over the
//! body's hash included), throttling, faults, latency and request log apply. See `APIGW.md`.
//!
//! | route | body | response |
//! |---|---|---|
//! | `POST /prod/search/cursor` | `{"query": …, "page_token": "<cursor>"\|null, "limit"?: n}` | `{"items":[…],"next_page_token":"<cursor>"\|null}` |
//! | `POST /prod/search/offset` | `{"query": …, "from": n, "size": m}` (numbers) | `{"items":[…],"total":N}` |
//! | `POST /prod/search/page` | `{"query": …, "paging": {"number": n, "size": m}}` (numbers, from 1) | `{"results":[…],"has_more":bool}` |
//!
//! Every search needs a JSON object body with a `query` member and `Content-Type:
//! application/json`; anything else is a 400 (or 415) with the message a backend would give.
//! A `GET` of these paths is API Gateway's 403 for a method that is not deployed.

use super::{
    bad_request, build_page, check_auth, decode_cursor, error_response,
    missing_authentication_token, send_page, Route, Shared, STAGE,
};
use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;

/// The search routes and the GET route of the same style whose pages they serve.
fn route_of(path: &str) -> Option<Route> {
    Some(match path.strip_prefix(STAGE)?.strip_prefix("/search")? {
        "/cursor" => Route::Cursor,
        "/offset" => Route::Offset,
        "/page" => Route::PageNumber,
        _ => return None,
    })
}

/// The hook: `Some(response)` for a search path, `None` for any other (the GET routes).
pub(super) async fn respond(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Option<Response> {
    let route = route_of(parts.uri.path())?;
    if parts.method != Method::POST {
        return Some(missing_authentication_token());
    }
    if let Err(rejection) = check_auth(&shared.config, parts, body) {
        return Some(rejection.into_response());
    }
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Some(error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            "Unsupported Media Type",
        ));
    }
    let params = match params_of(route, body) {
        Ok(p) => p,
        Err(message) => return Some(bad_request(&message)),
    };
    {
        // A fault on a page index, as the GET routes have.
        let index = first_index(route, &params, shared.config.page_size);
        let mut remaining = shared.fail_remaining.lock().expect("fail_first_n lock");
        if let Some(left) = index.and_then(|i| remaining.get_mut(&i)) {
            if *left > 0 {
                *left -= 1;
                return Some(super::gateway_error(2));
            }
        }
    }
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let page = match build_page(shared, route, &params) {
        Ok(page) => page,
        Err(message) => return Some(bad_request(&message)),
    };
    // The GET routes' bodies, renamed where a search API names things its own way.
    let page = match route {
        Route::Cursor => rename_cursor(page),
        _ => page,
    };
    Some(send_page(&shared.config, parts, page, false))
}

/// The GET route's query parameters, read from the search body (numbers must be numbers).
fn params_of(route: Route, body: &[u8]) -> Result<HashMap<String, String>, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))?;
    let Some(obj) = doc.as_object() else {
        return Err("invalid request body: not a JSON object".into());
    };
    if !obj.contains_key("query") {
        return Err("query is required".into());
    }
    let mut params = HashMap::new();
    let number = |v: Option<&Value>, name: &str| -> Result<Option<String>, String> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
            Some(_) => Err(format!("invalid {name}: must be a whole number")),
        }
    };
    match route {
        Route::Cursor => {
            match obj.get("page_token") {
                None | Some(Value::Null) => {}
                Some(Value::String(t)) => {
                    if decode_cursor(t).is_none() {
                        return Err("invalid page_token".into());
                    }
                    params.insert("cursor".into(), t.clone());
                }
                Some(_) => return Err("invalid page_token: must be a string".into()),
            }
            if let Some(l) = number(obj.get("limit"), "limit")? {
                params.insert("limit".into(), l);
            }
        }
        Route::Offset => {
            if let Some(o) = number(obj.get("from"), "from")? {
                params.insert("offset".into(), o);
            }
            if let Some(l) = number(obj.get("size"), "size")? {
                params.insert("limit".into(), l);
            }
        }
        _ => {
            let paging = obj.get("paging").and_then(Value::as_object);
            let Some(paging) = paging else {
                return Err("paging is required".into());
            };
            if let Some(n) = number(paging.get("number"), "paging.number")? {
                params.insert("page".into(), n);
            }
            if let Some(s) = number(paging.get("size"), "paging.size")? {
                params.insert("per_page".into(), s);
            }
        }
    }
    Ok(params)
}

/// The 0-based page index a request asks for (first record / page size), for faults.
fn first_index(route: Route, params: &HashMap<String, String>, page_size: u64) -> Option<u64> {
    let n = |k: &str| params.get(k).and_then(|v| v.parse::<u64>().ok());
    let size = n("limit").or(n("per_page")).unwrap_or(page_size).max(1);
    match route {
        Route::Cursor => Some(
            params
                .get("cursor")
                .and_then(|c| decode_cursor(c))
                .unwrap_or(0)
                / size,
        ),
        Route::Offset => Some(n("offset").unwrap_or(0) / size),
        _ => Some(n("page").unwrap_or(1).saturating_sub(1)),
    }
}

/// The cursor route's body with a search API's names: `next_page_token`.
fn rename_cursor(mut page: super::Page) -> super::Page {
    if let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(&page.body) {
        if let Some(next) = obj.remove("next_cursor") {
            obj.insert("next_page_token".into(), next);
        }
        page.body = serde_json::to_vec(&Value::Object(obj)).expect("json");
    }
    page
}
