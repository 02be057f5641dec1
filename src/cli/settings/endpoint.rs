//! The endpoint: the job file and job name, the URL (refused when it is not http(s), or plain
//! http to a host that is not loopback without `--allow-insecure-http`).

use crate::cli::args::PullArgs;
use crate::cli::job_spec::load_job;
use crate::cli::job_spec::JobSpec;
use crate::cli::resolver::{display_path, usage, Resolver, SettingsError, UsageError};
use gatelake::secret::redact_url;
use std::path::PathBuf;
use url::Url;

/// The job's table in the job file (empty without one) and where it was read from.
pub(super) fn resolve_job_file(
    r: &mut Resolver<'_>,
    args: &PullArgs,
) -> Result<(JobSpec, Option<PathBuf>), SettingsError> {
    let (job, job_path) = load_job(args.config.as_deref(), args.job.as_deref())?;
    r.pick(
        "config",
        args.config.as_deref().map(display_path),
        None,
        job_path.as_deref().map(display_path),
    );
    Ok((job, job_path))
}

/// `--url` and `--job`: the first page's URL and the job's name (by default the URL's last
/// path segment).
pub(super) fn resolve_endpoint(
    r: &mut Resolver<'_>,
    args: &PullArgs,
    job: &JobSpec,
    warnings: &mut Vec<String>,
) -> Result<(Url, String), SettingsError> {
    let Some(url_text) = r.pick("url", args.url.clone(), job.url.clone(), None) else {
        return usage("no endpoint: pass --url URL (or GATELAKE_URL, or url in the job file)");
    };
    let url = url::Url::parse(&url_text).map_err(|e| {
        UsageError(format!(
            "--url {}: not a valid URL ({e})",
            gatelake::secret::redact_url_str(&url_text)
        ))
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return usage(format!(
            "--url must be an http(s) URL, not {}:",
            url.scheme()
        ));
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        if !args.allow_insecure_http {
            return usage(format!(
                "--url {} uses plain HTTP: credentials and data would cross the network unencrypted. Use https://, or pass --allow-insecure-http if you really mean it (plain http is accepted for loopback addresses without it)",
                redact_url(&url)
            ));
        }
        warnings.push(format!(
            "--allow-insecure-http: requests to {} are not encrypted; anything they carry can be read on the way",
            redact_url(&url)
        ));
    }
    let job_name = r
        .pick("job", args.job.clone(), None, Some(job_from_url(&url)))
        .unwrap_or_default();
    Ok((url, job_name))
}

/// A job name from the URL's last path segment: `/prod/orders` → `orders`.
fn job_from_url(url: &url::Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.rfind(|seg| !seg.is_empty()))
        .unwrap_or("pull");
    let clean: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.trim_matches('-').is_empty() {
        "pull".into()
    } else {
        clean
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn job_names_from_urls() {
        for (u, want) in [
            (
                "https://x.execute-api.us-east-1.amazonaws.com/prod/orders",
                "orders",
            ),
            ("https://x/prod/orders/", "orders"),
            ("https://x/", "pull"),
            ("https://x/v1/line items", "line-20items"),
        ] {
            assert_eq!(job_from_url(&url::Url::parse(u).unwrap()), want, "{u}");
        }
    }
}
