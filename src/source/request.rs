//! The request a page is fetched with: method, URL and JSON body (`--method POST`, `--body`,
//! `--query`), for search and export endpoints that page through their request body.
//!
//! Paginators keep speaking in URLs: the position in a listing is a URL whose query holds the
//! style's pointer (`cursor=…`, `offset=…&limit=…`, `page=…`), so predictions, page-size
//! shrinking and bad-page skipping work alike for every style. Where each pointer *travels*
//! is decided here: a [`BodyField`] (from a style's `*_body_path` setting) takes that query
//! parameter out of the URL and writes it at a JSON path of the body, so the request sent is
//! `POST /search` with `{"query": …, "page_token": "…"}`. [`BoundRequest::position`] is the
//! inverse, used on resume: the saved request (URL and body) gives back the position, and the
//! request rendered from it is checked to be the saved one, byte for byte once both are
//! redacted — a resumed run replays exactly what was saved, or refuses.
//!
//! Templates may name the run's fixed values, `{run_id}` and `{run_started}` (RFC 3339), in
//! body strings and query values: they are the same on every page and after a resume, so a
//! search pinned to "as of the run's start" stays one consistent listing.
//!
//! This module never sends anything and never logs: the client sends what it renders.

pub use crate::config::RequestTemplate;
use bytes::Bytes;
use serde_json::{Map, Value};
use url::Url;

/// Placeholders a template may use, with what they stand for.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("{run_id}", "the run's id (the same after a resume)"),
    ("{run_started}", "the run's start time, RFC 3339 UTC"),
];

/// Where a pagination pointer travels in the body instead of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyField {
    /// The query parameter the paginator reads and writes (`cursor`, `offset`).
    pub param: String,
    /// Where it goes in the body, dot-separated (`page_token`, `page.number`).
    pub path: String,
    /// Whether it is sent as a JSON number (offsets, page numbers) rather than a string.
    pub number: bool,
    /// The setting that configured it, for messages (`--cursor-body-path`).
    pub flag: &'static str,
}

/// Why a request template cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("--body is not JSON: {0}. Give a JSON object, e.g. --body '{{\"query\":\"status:open\"}}', or @FILE for a file holding one")]
    NotJson(String),
    #[error("--body must be a JSON object (it was {0}): pagination pointers are placed at paths inside it")]
    NotObject(&'static str),
    #[error("{flag} {path}: '{segment}' in the body template is {found}, not an object, so the pointer cannot be placed inside it")]
    PathBlocked {
        flag: &'static str,
        path: String,
        segment: String,
        found: &'static str,
    },
    #[error("{flag} {path}: an empty path; name the body field, e.g. page_token or page.number")]
    EmptyPath { flag: &'static str, path: String },
    #[error("{flag} {path}: another pointer's body path replaces the object it is in; give each pointer its own path")]
    PathOverlap { flag: &'static str, path: String },
    #[error(
        "{0} places a pointer in the request body, which only a POST sends: add --method POST"
    )]
    BodyWithGet(&'static str),
    #[error("--body is sent only with --method POST")]
    TemplateWithGet,
    #[error("unknown placeholder {found} in {place}: use one of {known}")]
    UnknownPlaceholder {
        found: String,
        place: String,
        known: String,
    },
    #[error("the saved request body is not JSON: {0}")]
    SavedBody(String),
}

/// The run's fixed values the placeholders stand for.
#[derive(Debug, Clone)]
pub struct RunValues<'a> {
    pub run_id: &'a str,
    pub started_at: &'a str,
}

impl RequestTemplate {
    /// The template with the run's values filled in and the paginator's body fields checked
    /// against it: what every request of the run is rendered from.
    pub fn bind(
        &self,
        fields: Vec<BodyField>,
        run: &RunValues<'_>,
    ) -> Result<BoundRequest, RequestError> {
        if !self.post {
            if let Some(f) = fields.first() {
                return Err(RequestError::BodyWithGet(f.flag));
            }
            if self.body.is_some() {
                return Err(RequestError::TemplateWithGet);
            }
        }
        let body = if self.post {
            let mut body = self.body.clone().unwrap_or(Value::Object(Map::new()));
            fill_value(&mut body, run, "--body")?;
            // Placing every pointer once checks the paths before any request: each leads
            // through objects, and none is overwritten by another's.
            let mut placed = body.clone();
            for f in &fields {
                set_path(&mut placed, f, Value::Null)?;
            }
            if let Some(f) = fields.iter().find(|f| get_path(&placed, &f.path).is_none()) {
                return Err(RequestError::PathOverlap {
                    flag: f.flag,
                    path: f.path.clone(),
                });
            }
            Some(body)
        } else {
            None
        };
        let mut query = Vec::new();
        for (name, value) in &self.query {
            query.push((name.clone(), fill(value, run, &format!("--query {name}"))?));
        }
        Ok(BoundRequest {
            post: self.post,
            body,
            query,
            fields,
            position_params: Vec::new(),
        })
    }

    /// Parse a `--body` value: JSON text that must be an object.
    pub fn parse_body(text: &str) -> Result<Value, RequestError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| RequestError::NotJson(e.to_string()))?;
        if !value.is_object() {
            return Err(RequestError::NotObject(kind_of(&value)));
        }
        check_placeholders(&value, "--body")?;
        Ok(value)
    }

    /// Check a `--query` value's placeholders before any run starts.
    pub fn check_query_value(name: &str, value: &str) -> Result<(), RequestError> {
        let run = RunValues {
            run_id: "",
            started_at: "",
        };
        fill(value, &run, &format!("--query {name}")).map(|_| ())
    }
}

/// A request template bound to one run: renders each position into the request sent.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundRequest {
    post: bool,
    body: Option<Value>,
    query: Vec<(String, String)>,
    fields: Vec<BodyField>,
    /// The paginator's position parameters, saved unmasked (`save_url`).
    position_params: Vec<String>,
}

/// One request as it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub method: reqwest::Method,
    pub url: Url,
    /// JSON, for a POST.
    pub body: Option<Bytes>,
}

impl BoundRequest {
    /// `GET` of the position as it is: the request of a job with no template.
    pub fn plain() -> Self {
        Self {
            post: false,
            body: None,
            query: Vec::new(),
            fields: Vec::new(),
            position_params: Vec::new(),
        }
    }

    /// The same request, saving the values of `params` (the paginator's position: a cursor,
    /// an offset, a page number) unmasked whatever their names.
    pub fn keeping_positions(mut self, params: Vec<String>) -> Self {
        self.position_params = params;
        self
    }

    /// The URL as sent, redacted for a checkpoint: secrets masked, the position kept.
    pub fn saved_url(&self, url: &Url) -> String {
        crate::secret::redact_url_keeping(url, &self.position_params)
    }

    /// Whether requests carry a body.
    pub fn is_post(&self) -> bool {
        self.post
    }

    /// The request for `position`: the query template's parameters set, each body field's
    /// parameter moved from the query into the body.
    pub fn render(&self, position: &Url) -> PageRequest {
        let mut url = position.clone();
        for (name, value) in &self.query {
            url = crate::source::paginate::with_query_param(&url, name, value);
        }
        let body = self.body.as_ref().map(|template| {
            let mut body = template.clone();
            for f in &self.fields {
                let value = crate::source::paginate::query_param(position, &f.param);
                let json = match value {
                    Some(v) if f.number => v
                        .parse::<u64>()
                        .map(Value::from)
                        .unwrap_or(Value::String(v)),
                    Some(v) => Value::String(v),
                    None => Value::Null,
                };
                // Checked by `bind`: the path leads through objects only.
                let _ = set_path(&mut body, f, json);
            }
            Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
        });
        if !self.fields.is_empty() {
            url = without_params(&url, self.fields.iter().map(|f| f.param.as_str()));
        }
        PageRequest {
            method: if self.post {
                reqwest::Method::POST
            } else {
                reqwest::Method::GET
            },
            url,
            body,
        }
    }

    /// The position a request was rendered from: its URL with each body field's value put
    /// back into the query (a resumed run's saved request → the paginator's position).
    pub fn position(&self, url: &Url, body: Option<&str>) -> Result<Url, RequestError> {
        let Some(text) = body.filter(|_| !self.fields.is_empty()) else {
            return Ok(url.clone());
        };
        let doc: Value =
            serde_json::from_str(text).map_err(|e| RequestError::SavedBody(e.to_string()))?;
        let mut out = url.clone();
        for f in &self.fields {
            let value = get_path(&doc, &f.path).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            });
            if let Some(v) = value {
                out = crate::source::paginate::with_query_param(&out, &f.param, &v);
            }
        }
        Ok(out)
    }

    /// The body as it may be saved or shown: values under secret-looking keys masked (the
    /// pagination pointers excepted: they are the position), and any registered secret.
    pub fn redacted_body(&self, body: &[u8]) -> String {
        let Ok(mut doc) = serde_json::from_slice::<Value>(body) else {
            return crate::secret::redact(&String::from_utf8_lossy(body));
        };
        let pointers: Vec<Vec<&str>> = self.fields.iter().map(|f| segments(&f.path)).collect();
        mask_secrets(&mut doc, &mut Vec::new(), &pointers);
        crate::secret::redact(&serde_json::to_string(&doc).unwrap_or_default())
    }
}

/// `value` with every placeholder filled in; an unknown `{name}` is an error (a typo would
/// otherwise be sent to the API as literal text on every page).
fn fill(value: &str, run: &RunValues<'_>, place: &str) -> Result<String, RequestError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let Some(close) = tail.find('}') else {
            out.push_str(tail);
            return Ok(out);
        };
        let token = &tail[..=close];
        let looks_like_name = token[1..token.len() - 1]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && token.len() > 2;
        match token {
            "{run_id}" => out.push_str(run.run_id),
            "{run_started}" => out.push_str(run.started_at),
            _ if looks_like_name => {
                return Err(RequestError::UnknownPlaceholder {
                    found: token.to_string(),
                    place: place.to_string(),
                    known: PLACEHOLDERS
                        .iter()
                        .map(|(p, _)| *p)
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
            // Not a placeholder (`{}` or other text in braces): kept as written.
            _ => out.push_str(token),
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Fill the placeholders of every string in `value` (keys are left as written).
fn fill_value(value: &mut Value, run: &RunValues<'_>, place: &str) -> Result<(), RequestError> {
    match value {
        Value::String(s) => *s = fill(s, run, place)?,
        Value::Array(items) => {
            for v in items {
                fill_value(v, run, place)?;
            }
        }
        Value::Object(members) => {
            for v in members.values_mut() {
                fill_value(v, run, place)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_placeholders(value: &Value, place: &str) -> Result<(), RequestError> {
    let run = RunValues {
        run_id: "",
        started_at: "",
    };
    fill_value(&mut value.clone(), &run, place)
}

fn segments(path: &str) -> Vec<&str> {
    path.split('.').filter(|s| !s.is_empty()).collect()
}

/// Set `value` at `field.path` in `body`, creating the objects on the way.
fn set_path(body: &mut Value, field: &BodyField, value: Value) -> Result<(), RequestError> {
    let parts = segments(&field.path);
    let Some((last, inner)) = parts.split_last() else {
        return Err(RequestError::EmptyPath {
            flag: field.flag,
            path: field.path.clone(),
        });
    };
    let mut current = body;
    // The member `current` is (named in a refusal).
    let mut holder = "(the body)";
    for segment in inner.iter().chain(std::iter::once(last)) {
        let Value::Object(members) = current else {
            return Err(RequestError::PathBlocked {
                flag: field.flag,
                path: field.path.clone(),
                segment: holder.to_string(),
                found: kind_of(current),
            });
        };
        holder = segment;
        if segment == last {
            members.insert((*last).to_string(), value);
            return Ok(());
        }
        current = members
            .entry((*segment).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

fn get_path<'v>(doc: &'v Value, path: &str) -> Option<&'v Value> {
    segments(path)
        .into_iter()
        .try_fold(doc, |v, segment| v.as_object()?.get(segment))
}

fn mask_secrets(value: &mut Value, at: &mut Vec<String>, pointers: &[Vec<&str>]) {
    if let Value::Object(members) = value {
        for (key, v) in members.iter_mut() {
            at.push(key.clone());
            let is_pointer = pointers.iter().any(|p| p.iter().eq(at.iter()));
            if crate::secret::is_secret_name(key) && !is_pointer && !v.is_null() {
                *v = Value::String("***".into());
            } else {
                mask_secrets(v, at, pointers);
            }
            at.pop();
        }
    } else if let Value::Array(items) = value {
        for v in items {
            mask_secrets(v, at, pointers);
        }
    }
}

fn without_params<'a>(url: &Url, names: impl Iterator<Item = &'a str> + Clone) -> Url {
    let mut out = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !names.clone().any(|n| n == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        out.set_query(None);
    } else {
        out.query_pairs_mut().clear().extend_pairs(kept);
    }
    out
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn field(param: &str, path: &str, number: bool) -> BodyField {
        BodyField {
            param: param.into(),
            path: path.into(),
            number,
            flag: "--x-body-path",
        }
    }

    const RUN: RunValues<'static> = RunValues {
        run_id: "20261207T031600Z-ab12",
        started_at: "2026-12-07T03:16:00Z",
    };

    fn post(body: &str, query: &[(&str, &str)]) -> RequestTemplate {
        RequestTemplate {
            post: true,
            body: Some(RequestTemplate::parse_body(body).unwrap()),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn pointers_move_from_the_query_into_the_body_and_back() {
        let t = post(
            r#"{"query":{"status":"open"},"as_of":"{run_started}","page":{"size":50}}"#,
            &[("trace", "run-{run_id}")],
        );
        let bound = t
            .bind(
                vec![
                    field("page", "page.number", true),
                    field("cursor", "page_token", false),
                ],
                &RUN,
            )
            .unwrap();
        let position =
            Url::parse("https://h/prod/search?index=orders&page=3&cursor=a%2Bb%2F%3D").unwrap();
        let req = bound.render(&position);
        assert_eq!(req.method, reqwest::Method::POST);
        assert_eq!(
            req.url.as_str(),
            "https://h/prod/search?index=orders&trace=run-20261207T031600Z-ab12"
        );
        let body: Value = serde_json::from_slice(req.body.as_ref().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "query": {"status": "open"},
                "as_of": "2026-12-07T03:16:00Z",
                "page": {"size": 50, "number": 3},
                "page_token": "a+b/=",
            })
        );
        // The inverse gives back the position (the query template's parameter kept).
        let text = std::str::from_utf8(req.body.as_ref().unwrap()).unwrap();
        let back = bound.position(&req.url, Some(text)).unwrap();
        assert_eq!(bound.render(&back), req);
        // No pointer yet (a cursor's first page): the field is null.
        let first = bound.render(&Url::parse("https://h/prod/search?page=1").unwrap());
        let body: Value = serde_json::from_slice(first.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["page_token"], Value::Null);
        assert_eq!(body["page"]["number"], 1);
    }

    #[test]
    fn a_plain_request_is_the_position_itself() {
        let u = Url::parse("https://h/p?offset=5&limit=2").unwrap();
        let req = BoundRequest::plain().render(&u);
        assert_eq!(
            (req.method, req.url, req.body),
            (reqwest::Method::GET, u, None)
        );
        // A POST without a template sends an empty object.
        let t = RequestTemplate {
            post: true,
            ..Default::default()
        };
        let req = t
            .bind(vec![], &RUN)
            .unwrap()
            .render(&Url::parse("https://h/p").unwrap());
        assert_eq!(req.body.as_deref(), Some(&b"{}"[..]));
    }

    #[test]
    fn templates_that_cannot_work_are_refused_before_any_request() {
        let cases: Vec<(Result<BoundRequest, RequestError>, &str)> = vec![
            (
                RequestTemplate::default().bind(vec![field("cursor", "t", false)], &RUN),
                "add --method POST",
            ),
            (
                RequestTemplate {
                    body: Some(serde_json::json!({})),
                    ..Default::default()
                }
                .bind(vec![], &RUN),
                "only with --method POST",
            ),
            (
                post(r#"{"page":5}"#, &[]).bind(vec![field("page", "page.number", true)], &RUN),
                "'page' in the body template is a number",
            ),
            (
                post("{}", &[]).bind(vec![field("page", "", true)], &RUN),
                "an empty path",
            ),
            (
                post("{}", &[]).bind(
                    vec![
                        field("size", "paging.size", true),
                        field("page", "paging", true),
                    ],
                    &RUN,
                ),
                "another pointer's body path replaces",
            ),
            (
                post("{}", &[]).bind(
                    vec![
                        field("page", "paging", true),
                        field("size", "paging.size", true),
                    ],
                    &RUN,
                ),
                "'paging' in the body template is null",
            ),
        ];
        for (got, want) in cases {
            let err = got.unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        for (body, want) in [
            ("[1]", "must be a JSON object (it was an array)"),
            ("{nope", "--body is not JSON"),
            (
                r#"{"q":"{runid}"}"#,
                "unknown placeholder {runid} in --body",
            ),
        ] {
            let err = RequestTemplate::parse_body(body).unwrap_err().to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
        // Braces that are not a placeholder name are text.
        assert!(RequestTemplate::parse_body(r#"{"q":"a {b c} {}"}"#).is_ok());
        let err = RequestTemplate::check_query_value("from", "{today}").unwrap_err();
        assert!(err.to_string().contains("--query from"), "{err}");
    }

    #[test]
    fn saved_bodies_mask_secrets_but_keep_the_pointer() {
        let t = post(
            r#"{"q":"x","api_key":"K1","auth":{"client_secret":"S"}}"#,
            &[],
        );
        let bound = t
            .bind(vec![field("cursor", "page_token", false)], &RUN)
            .unwrap();
        let req = bound.render(&Url::parse("https://h/p?cursor=c9").unwrap());
        let saved = bound.redacted_body(req.body.as_ref().unwrap());
        assert!(!saved.contains("K1") && !saved.contains("\"S\""), "{saved}");
        assert!(saved.contains(r#""page_token":"c9""#), "{saved}");
        assert!(saved.contains(r#""api_key":"***""#), "{saved}");
    }

    #[test]
    fn numbers_that_are_not_numbers_stay_text() {
        let bound = post("{}", &[])
            .bind(vec![field("offset", "from", true)], &RUN)
            .unwrap();
        let req = bound.render(&Url::parse("https://h/p?offset=x1").unwrap());
        assert_eq!(req.body.as_deref(), Some(&br#"{"from":"x1"}"#[..]));
    }
}
