//! The flags that say how each page is requested: `--method`, `--body` (a JSON template, or
//! `@FILE`) and `--query NAME=VALUE`, for search and export endpoints that take a POST body.
//! Where a style's pointer goes in that body is the style's own setting
//! (`--cursor-body-path`, `--offset-body-path`, `--page-body-path`, …), read with the other
//! style flags; this file checks that the two fit together before anything is sent.

use super::resolver::{usage, Resolver, UsageError};
use clap::{Args, ValueEnum};
use gatelake::config::{Pagination, RequestTemplate};
use gatelake::source::request::RunValues;

/// `--method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// No body: the pointer travels in the query (or a link).
    #[value(alias = "GET")]
    Get,
    /// A JSON body (--body), into which the style can place its pointer.
    #[value(alias = "POST")]
    Post,
}

/// `--method`, `--body`, `--query`.
#[derive(Debug, Clone, Default, Args)]
pub struct RequestArgs {
    /// How each page is requested: get, or post with the JSON body of --body; a style's *-body-path flag (e.g. --cursor-body-path page_token) puts its pointer in that body. [default: get]
    #[arg(long, env = "GATELAKE_METHOD", value_enum)]
    pub method: Option<MethodArg>,

    /// The JSON body of every POST, as text or @FILE: an object, into which the style's pointer is placed. String values may use {run_id} and {run_started}, fixed for the run (and after a resume).
    #[arg(long, env = "GATELAKE_BODY", value_name = "JSON|@FILE")]
    pub body: Option<String>,

    /// A query parameter set on every request, NAME=VALUE (repeatable); VALUE may use {run_id} and {run_started}.
    #[arg(long = "query", value_name = "NAME=VALUE")]
    pub query: Vec<String>,
}

/// The job file's keys for the request (`method`, `body`, a `query` table).
#[derive(Debug, Clone, Default)]
pub struct RequestJob {
    pub method: Option<String>,
    pub body: Option<String>,
    pub query: Option<std::collections::BTreeMap<String, String>>,
}

/// The request template (method, body, query templates), checked against the pagination:
/// a pointer placed in a body needs a POST, and its path must lead through objects.
pub(super) fn resolve_request(
    r: &mut Resolver<'_>,
    args: &RequestArgs,
    job: &RequestJob,
    pagination: &Pagination,
) -> Result<RequestTemplate, UsageError> {
    let method = r.pick(
        "method",
        args.method.map(|m| match m {
            MethodArg::Get => "GET".to_string(),
            MethodArg::Post => "POST".to_string(),
        }),
        job.method.clone(),
        Some("GET".into()),
    );
    let post = match method.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("POST") => true,
        Some("GET") | None => false,
        Some(other) => return usage(format!("method {other:?}: use GET or POST")),
    };
    let body = match r.pick("body", args.body.clone(), job.body.clone(), None) {
        Some(text) => {
            let (json, shown) = match text.strip_prefix('@') {
                Some(path) => {
                    let json = std::fs::read_to_string(path).map_err(|e| {
                        UsageError(format!("--body @{path}: cannot read the file: {e}"))
                    })?;
                    (json, text.clone())
                }
                // The body is shown by size: it may hold values the user would not print.
                None => (text.clone(), format!("{} bytes of JSON", text.len())),
            };
            if let Some(last) = r.shown.last_mut().filter(|s| s.key == "body") {
                last.value = shown;
            }
            Some(RequestTemplate::parse_body(&json).map_err(|e| UsageError(e.to_string()))?)
        }
        None => None,
    };
    let mut query = Vec::new();
    if args.query.is_empty() {
        query.extend(job.query.clone().unwrap_or_default());
    }
    for q in &args.query {
        let Some((name, value)) = q.split_once('=') else {
            return usage(format!(
                "--query must look like NAME=VALUE (got {q:?}), e.g. --query 'as_of={{run_started}}'"
            ));
        };
        query.push((name.trim().to_string(), value.to_string()));
    }
    for (name, value) in &query {
        if name.is_empty() {
            return usage("--query: a parameter needs a name (NAME=VALUE)");
        }
        RequestTemplate::check_query_value(name, value).map_err(|e| UsageError(e.to_string()))?;
        r.pick("query", Some(format!("{name}={value}")), None, None);
    }
    let template = RequestTemplate { post, body, query };
    // The style's body fields against the template, with stand-ins for the run's values.
    let fields = gatelake::source::paginate::paginator(pagination)
        .map_err(|e| UsageError(e.to_string()))?
        .body_fields();
    let run = RunValues {
        run_id: "",
        started_at: "",
    };
    template
        .bind(fields, &run)
        .map_err(|e| UsageError(e.to_string()))?;
    Ok(template)
}
