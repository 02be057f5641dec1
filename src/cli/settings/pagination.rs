//! Pagination: the style (`--paginate`), the settings that style reads, the stop rules every
//! style shares, and `--concurrency`, which only styles with predictable pages can use.
//!
//! Nothing here names a style: the style's own description (`source::paginate::Style`) says
//! which settings it reads, their defaults, whether its pages are predictable, and checks
//! what it was given.

use crate::cli::args::PullArgs;
use crate::cli::job_spec::JobSpec;
use crate::cli::pagination_args::PAGINATE;
use crate::cli::resolver::{usage, Resolver, UsageError};
use gatelake::source::paginate::{self, Pages, Pagination, StopRules, Style, STYLES};

/// `--paginate` and its style's settings (flag/env > job file > the style's default), then the
/// shared stop rules. Each setting is shown under its key, in the order the style lists them.
pub(super) fn resolve_pagination(
    r: &mut Resolver<'_>,
    args: &PullArgs,
    job: &JobSpec,
) -> Result<Pagination, UsageError> {
    let name = r
        .pick(
            PAGINATE,
            args.pagination.style.clone(),
            job.paginate.as_ref().map(|s| s.0.to_string()),
            Some("none".to_string()),
        )
        .unwrap_or_default();
    // clap and the job file accept only registered names; a library caller may not.
    let Some(style) = paginate::style(&name) else {
        return usage(format!("unknown --paginate {name}"));
    };
    let mut pagination = Pagination::new(style.name());
    for setting in style.settings() {
        let given = args.pagination.values.get(setting.key).cloned();
        let in_job = job.style_setting(setting.key);
        if let Some(with) = setting.only_with {
            if !pagination.settings.contains_key(with) {
                // Asked for, but nothing would carry it: refused rather than dropped.
                if let Some(value) = given.as_ref().or(in_job.as_ref()) {
                    let with_flag = style
                        .settings()
                        .iter()
                        .find(|s| s.key == with)
                        .map_or(with, |s| s.flag);
                    return usage(format!(
                        "--{flag} {value} is sent only with --{with_flag}: add --{with_flag} \
                         NAME (the query parameter the API reads it from), or remove --{flag} \
                         (also {env} and the job file's {key}) to leave it to the API",
                        flag = setting.flag,
                        env = setting.env,
                        key = setting.key,
                    ));
                }
                continue;
            }
        }
        let value = r.pick(
            setting.key,
            given,
            in_job,
            setting.default.map(str::to_string),
        );
        if let Some(value) = value {
            pagination.settings.insert(setting.key.to_string(), value);
        }
    }
    // The style checks what it was given, with messages naming the flags.
    paginate::paginator(&pagination).map_err(|e| UsageError(e.to_string()))?;
    pagination.stop = StopRules {
        has_more_path: r.pick(
            "has_more_path",
            args.has_more_path.clone(),
            job.has_more_path.clone(),
            None,
        ),
        total_path: r.pick(
            "total_path",
            args.total_path.clone(),
            job.total_path.clone(),
            None,
        ),
        ..StopRules::default()
    };
    Ok(pagination)
}

/// `--concurrency`: page requests in flight, for the styles that can work out their next
/// requests ahead (offset, page). With another style it is a mistake in a command line or in
/// the job's own table, so it is refused (exit 2); from `GATELAKE_CONCURRENCY`, which a
/// scheduler may set for every job it runs whatever their styles, it is ignored with a warning.
pub(super) fn resolve_concurrency(
    r: &mut Resolver<'_>,
    args: &PullArgs,
    job: &JobSpec,
    pagination: &Pagination,
    warnings: &mut Vec<String>,
) -> Result<usize, UsageError> {
    let n = r
        .pick("concurrency", args.concurrency, job.concurrency, Some(1))
        .unwrap_or(1);
    if !(1..=64).contains(&n) {
        return usage(format!(
            "--concurrency {n}: must be between 1 and 64 (page requests in flight at once)"
        ));
    }
    let pages = paginate::style(pagination.name()).map_or(Pages::Single, |s| s.pages());
    if n == 1 || pages.predictable() {
        return Ok(n);
    }
    let style = pagination.name();
    let why = match pages {
        Pages::Single => format!("--paginate {style} makes a single request"),
        _ => format!(
            "--paginate {style} is sequential by nature: each page's next request is only known once that page has arrived"
        ),
    };
    let parallel = predictable_styles();
    if r.given_in_env("concurrency") {
        warnings.push(format!(
            "GATELAKE_CONCURRENCY={n} is ignored for this job: {why}; only --paginate {parallel} fetch pages in parallel"
        ));
        return Ok(1);
    }
    let (given, fix) = if args.concurrency.is_some() {
        (format!("--concurrency {n}"), "drop --concurrency")
    } else {
        (
            format!("concurrency = {n} in the job file"),
            "remove concurrency from the job's table",
        )
    };
    usage(format!(
        "{given}: {why}. Only --paginate {parallel} fetch pages in parallel; {fix} (or set it to 1)"
    ))
}

/// The styles whose pages are predictable, as a phrase: `offset and page`.
fn predictable_styles() -> String {
    let names: Vec<&str> = STYLES
        .iter()
        .filter(|s| s.pages().predictable())
        .map(|s| Style::name(*s))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_string(),
        None => "none".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parallel_styles_are_named_from_the_registry() {
        assert_eq!(predictable_styles(), "offset and page");
    }
}
