//! How each request is made and judged: extra headers, the timeout, the retry bounds, the
//! largest page accepted, what a page whose records cannot be read does, and whether a
//! page's next request is started before the page is parsed.

use crate::cli::args::PullArgs;
use crate::cli::job_spec::JobSpec;
use crate::cli::resolver::{duration, size, usage, Resolver, Shown, UsageError};
use gatelake::config::{BadPagePolicy, RetryPolicy};
use gatelake::secret::Secret;
use std::time::Duration;

/// What the request settings resolved to.
pub(super) struct Requests {
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub max_page_bytes: u64,
    pub on_bad_page: BadPagePolicy,
    pub read_ahead: bool,
}

/// `--header`, `--timeout`, `--max-retries`, `--retry-deadline`, `--max-retry-after`,
/// `--max-page-bytes`, `--on-bad-page`, `--no-read-ahead`.
pub(super) fn resolve_requests(
    r: &mut Resolver<'_>,
    args: &PullArgs,
    job: &JobSpec,
) -> Result<Requests, UsageError> {
    let headers = resolve_headers(r, args, job)?;
    let timeout = duration(
        "timeout",
        r.pick(
            "timeout",
            args.timeout.clone(),
            job.timeout.clone(),
            Some("60s".into()),
        ),
    )?;
    let retries = r
        .pick("max_retries", args.max_retries, job.max_retries, Some(7))
        .unwrap_or(7);
    let deadline = duration(
        "retry-deadline",
        r.pick(
            "retry_deadline",
            args.retry_deadline.clone(),
            job.retry_deadline.clone(),
            Some("5m".into()),
        ),
    )?;
    let max_retry_after = duration(
        "max-retry-after",
        r.pick(
            "max_retry_after",
            args.max_retry_after.clone(),
            job.max_retry_after.clone(),
            Some("5m".into()),
        ),
    )?;
    let max_page_bytes = size(
        "max-page-bytes",
        r.pick(
            "max_page_bytes",
            args.max_page_bytes.clone(),
            job.max_page_bytes.clone(),
            Some("64MiB".into()),
        ),
    )?;
    let on_bad_page = match r
        .pick(
            "on_bad_page",
            args.on_bad_page.clone(),
            job.on_bad_page.clone(),
            Some("fail".into()),
        )
        .as_deref()
    {
        Some("skip") => BadPagePolicy::Skip,
        Some("fail") | None => BadPagePolicy::Fail,
        Some(other) => return usage(format!("--on-bad-page {other}: use fail or skip")),
    };
    let no_read_ahead = r
        .switch(
            "no_read_ahead",
            args.no_read_ahead,
            args.read_ahead,
            job.no_read_ahead,
            Some(false),
        )
        .unwrap_or(false);
    Ok(Requests {
        headers,
        timeout,
        retry: RetryPolicy {
            max_attempts: retries.saturating_add(1),
            deadline,
            max_retry_after,
            ..RetryPolicy::default()
        },
        max_page_bytes,
        on_bad_page,
        read_ahead: !no_read_ahead,
    })
}

/// `--header 'Name: value'` (repeatable), or the job file's `headers` table when no flag is
/// given. Values are secrets: only the names are shown.
fn resolve_headers(
    r: &mut Resolver<'_>,
    args: &PullArgs,
    job: &JobSpec,
) -> Result<Vec<(String, Secret)>, UsageError> {
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            return usage(format!(
                "--header must look like 'Name: value' (got a value without ':' for {:?})",
                h.split_whitespace().next().unwrap_or("")
            ));
        };
        headers.push((name.trim().to_string(), Secret::new(value.trim())));
    }
    if args.headers.is_empty() {
        for (name, value) in job.headers.clone().unwrap_or_default() {
            headers.push((name, Secret::new(value)));
        }
    }
    if !headers.is_empty() {
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        r.shown.push(Shown {
            key: "header".into(),
            value: format!("{} (values hidden)", names.join(", ")),
            origin: if args.headers.is_empty() {
                "job file".into()
            } else {
                "flag --header".into()
            },
        });
    }
    Ok(headers)
}
