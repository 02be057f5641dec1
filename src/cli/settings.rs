//! Settings, resolved once, in this order: command-line flag > `GATELAKE_*` environment
//! variable > job file (`[jobs.NAME]` in `gatelake.toml`) > default. Every value remembers
//! where it came from, so `--show-settings` can say why a setting has the value it has.
//!
//! Two phases, as in ripgrep: first every value is picked and validated here (a bad value is
//! a usage error, exit 2, naming the flag, env var or job-file key); then the engine's
//! inputs (`PullConfig`) are built from the validated values. The engine never sees clap.
//!
//! Secrets are never read from the job file (a file that is easily committed): keys and
//! tokens come from the environment or from files named by `*_file` settings.

use super::args::{DemoArgs, IdentityArgs, OutputArgs, OutputMode, ProgressMode, PullArgs};
use super::job_spec::{load_job, JobSpec};
use super::resolver::{usage, Resolver, SettingsError, Shown, UsageError};
use clap::parser::ValueSource;
use clap::ArgMatches;
use gatelake::config::{
    parse_byte_size, parse_duration, ApiAuth, OutputConfig, PullConfig, RetryPolicy, SourceConfig,
};
use gatelake::encode::drift::{OnSchemaDrift, SchemaOptions};
use gatelake::encode::{Compression, EncodeOptions, Format};
use gatelake::engine::settings::{AwsRoleSettings, IdentitySettings, WebIdentityKind};
use gatelake::secret::{redact_url, Secret};
use gatelake::source::paginate::{CursorSource, Pagination, PaginationConfig, StopRules};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything the binary needs to run a pull.
pub struct Resolved {
    pub pull: PullConfig,
    pub dest: String,
    pub create_container: bool,
    pub restart: bool,
    pub wait_for_lock: Option<Duration>,
    pub output: OutputMode,
    pub progress: ProgressMode,
    pub show_settings: bool,
    pub shown: Vec<Shown>,
    /// Things to tell the user before starting (e.g. a secret given as a flag).
    pub warnings: Vec<String>,
    pub identity: IdentitySettings,
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
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

/// Resolve `gatelake pull`.
pub fn resolve_pull(args: &PullArgs, matches: &ArgMatches) -> Result<Resolved, SettingsError> {
    let (job, job_path) = load_job(args.config.as_deref(), args.job.as_deref())?;
    let mut r = Resolver::new(matches);
    r.pick(
        "config",
        args.config.as_deref().map(display_path),
        None,
        job_path.as_deref().map(display_path),
    );
    let mut warnings = Vec::new();

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

    // Pagination.
    let style = r.pick(
        "paginate",
        args.paginate.map(|p| p.as_str()),
        job.paginate.map(|p| p.as_str()),
        Some("none"),
    );
    let style = match style {
        Some("none") | None => PaginationConfig::Single,
        Some("cursor") => {
            let path = r.pick(
                "cursor_path",
                args.cursor_path.clone(),
                job.cursor_path.clone(),
                None,
            );
            let header = r.pick(
                "cursor_header",
                args.cursor_header.clone(),
                job.cursor_header.clone(),
                None,
            );
            let param = r
                .pick(
                    "cursor_param",
                    args.cursor_param.clone(),
                    job.cursor_param.clone(),
                    Some("cursor".into()),
                )
                .unwrap_or_default();
            let source = match (path, header) {
                (Some(p), None) => CursorSource::Body(p),
                (None, Some(h)) => CursorSource::Header(h),
                (Some(_), Some(_)) => return usage("--paginate cursor: give --cursor-path or --cursor-header, not both"),
                (None, None) => {
                    return usage("--paginate cursor needs where the cursor is: --cursor-path PATH (in the body, e.g. next_cursor) or --cursor-header NAME")
                }
            };
            PaginationConfig::Cursor { source, param }
        }
        Some("next-link") => PaginationConfig::NextLink {
            path: r
                .pick(
                    "next_path",
                    args.next_path.clone(),
                    job.next_path.clone(),
                    Some("next".into()),
                )
                .unwrap_or_default(),
        },
        Some("link-header") => PaginationConfig::LinkHeader,
        Some("offset") => PaginationConfig::Offset {
            offset_param: r
                .pick(
                    "offset_param",
                    args.offset_param.clone(),
                    job.offset_param.clone(),
                    Some("offset".into()),
                )
                .unwrap_or_default(),
            limit_param: r
                .pick(
                    "limit_param",
                    args.limit_param.clone(),
                    job.limit_param.clone(),
                    Some("limit".into()),
                )
                .unwrap_or_default(),
            limit: positive(
                "page-size",
                r.pick("page_size", args.page_size, job.page_size, Some(100)),
            )?,
            start: 0,
        },
        Some("page") => {
            let page_param = r
                .pick(
                    "page_param",
                    args.page_param.clone(),
                    job.page_param.clone(),
                    Some("page".into()),
                )
                .unwrap_or_default();
            let start = r
                .pick("start_page", args.start_page, job.start_page, Some(1))
                .unwrap_or(1);
            let size_param = r.pick(
                "page_size_param",
                args.page_size_param.clone(),
                job.page_size_param.clone(),
                None,
            );
            let size = match size_param {
                Some(p) => Some((
                    p,
                    positive(
                        "page-size",
                        r.pick("page_size", args.page_size, job.page_size, Some(100)),
                    )?,
                )),
                None => None,
            };
            PaginationConfig::PageNumber {
                page_param,
                start,
                size,
            }
        }
        Some(other) => return usage(format!("unknown --paginate {other}")),
    };
    let stop = StopRules {
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
    };
    let records_path = r
        .pick("records", args.records.clone(), job.records.clone(), None)
        .unwrap_or_default();
    let max_pages = r.pick("max_pages", args.max_pages, job.max_pages, None);
    if max_pages == Some(0) {
        return usage("--max-pages must be at least 1");
    }
    let checks = resolve_listing_checks(&mut r, args, &job)?;
    let pagination = Pagination { style, stop };
    let concurrency = resolve_concurrency(&mut r, args, &job, &pagination, &mut warnings)?;

    // API authentication (inferred from the credentials given when --api-auth is unset).
    let (auth, usage_plan_key) =
        super::api_auth::resolve_api_auth(&mut r, args, &job, &url, &mut warnings)?;

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
        Some("skip") => gatelake::config::BadPagePolicy::Skip,
        Some("fail") | None => gatelake::config::BadPagePolicy::Fail,
        Some(other) => return usage(format!("--on-bad-page {other}: use fail or skip")),
    };
    let since_field = r.pick(
        "since_field",
        args.since_field.clone(),
        job.since_field.clone(),
        None,
    );
    let since_param = r.pick(
        "since_param",
        args.since_param.clone(),
        job.since_param.clone(),
        None,
    );
    let incremental = match (since_field, since_param) {
        (Some(field), Some(param)) => Some(gatelake::config::Incremental {
            field,
            param,
            lag: duration("lag", r.pick("lag", args.lag.clone(), job.lag.clone(), Some("0s".into())))?,
        }),
        (None, None) => None,
        _ => return usage("incremental runs need both --since-field (the record's growing value) and --since-param (the query parameter to send it in)"),
    };

    let out = resolve_output(&mut r, &args.out, &job, &format!("./lake/{job_name}"))?;
    let region_hint = match &auth {
        ApiAuth::Iam { region } => Some(region.clone()),
        _ => None,
    };
    let identity = resolve_identity(&mut r, &args.identity, &job, region_hint)?;
    let source = SourceConfig {
        url,
        pagination,
        records_path,
        auth,
        usage_plan_key,
        headers,
        timeout,
        retry: RetryPolicy {
            max_attempts: retries.saturating_add(1),
            deadline,
            max_retry_after,
            ..RetryPolicy::default()
        },
        max_pages,
        checks,
        max_page_bytes,
        on_bad_page,
        concurrency,
    };
    Ok(Resolved {
        pull: PullConfig {
            job: job_name,
            source,
            output: out.config,
            upload_concurrency: out.upload_concurrency,
            incremental,
        },
        dest: out.dest,
        create_container: out.create_container,
        restart: out.restart,
        wait_for_lock: out.wait_for_lock,
        output: out.mode,
        progress: out.progress,
        show_settings: args.out.show_settings,
        shown: r.shown,
        warnings,
        identity,
    })
}

/// `--max-pages-complete`, `--expect-rows`, `--on-count-mismatch`: how the run checks that it
/// got the whole listing.
fn resolve_listing_checks(
    r: &mut Resolver<'_>,
    args: &PullArgs,
    job: &JobSpec,
) -> Result<gatelake::config::ListingChecks, UsageError> {
    use gatelake::config::CountMismatchPolicy;
    let max_pages_complete = r
        .pick(
            "max_pages_complete",
            args.max_pages_complete.then_some(true),
            job.max_pages_complete,
            Some(false),
        )
        .unwrap_or(false);
    let expect_rows = r.pick("expect_rows", args.expect_rows, job.expect_rows, None);
    let on_count_mismatch = match r
        .pick(
            "on_count_mismatch",
            args.on_count_mismatch.clone(),
            job.on_count_mismatch.clone(),
            Some("fail".into()),
        )
        .as_deref()
    {
        Some("fail") | None => CountMismatchPolicy::Fail,
        Some("warn") => CountMismatchPolicy::Warn,
        Some(other) => {
            return usage(format!(
                "--on-count-mismatch {other}: use fail (the run is partial, exit 4) or warn (recorded in the manifest, exit 0)"
            ))
        }
    };
    Ok(gatelake::config::ListingChecks {
        expect_rows,
        on_count_mismatch,
        max_pages_complete,
    })
}

/// `--concurrency`: page requests in flight, for the styles that can work out their next
/// requests ahead (offset, page). With another style it is a mistake in a command line or in
/// the job's own table, so it is refused (exit 2); from `GATELAKE_CONCURRENCY`, which a
/// scheduler may set for every job it runs whatever their styles, it is ignored with a warning.
fn resolve_concurrency(
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
    if n == 1 || pagination.predictable() {
        return Ok(n);
    }
    let why = match pagination.name() {
        "none" => "--paginate none makes a single request".to_string(),
        style => format!(
            "--paginate {style} is sequential by nature: each page's next request is only known once that page has arrived"
        ),
    };
    if r.given_in_env("concurrency") {
        warnings.push(format!(
            "GATELAKE_CONCURRENCY={n} is ignored for this job: {why}; only --paginate offset and page fetch pages in parallel"
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
        "{given}: {why}. Only --paginate offset and page fetch pages in parallel; {fix} (or set it to 1)"
    ))
}

/// Resolve the identity flags (shared by `pull` and `auth check`). `region` is the API's
/// region, the default for STS.
pub fn resolve_identity(
    r: &mut Resolver<'_>,
    args: &IdentityArgs,
    job: &JobSpec,
    region: Option<String>,
) -> Result<IdentitySettings, UsageError> {
    let azure =
        super::azure_settings::resolve_azure(r, args, job.azure.as_ref(), &mut std::io::stdin())?;
    let aws = job.aws.clone().unwrap_or_default();
    let ca_bundle = r
        .pick(
            "ca_bundle",
            args.ca_bundle.as_deref().map(display_path),
            job.ca_bundle.as_deref().map(display_path),
            None,
        )
        .map(PathBuf::from);

    let aws_role = match r.pick(
        "aws_role_arn",
        args.aws_role_arn.clone(),
        aws.role_arn.clone(),
        None,
    ) {
        None => None,
        Some(role_arn) => {
            if !role_arn.starts_with("arn:") || !role_arn.contains(":role/") {
                return usage(format!(
                    "--aws-role-arn {role_arn}: expected a role ARN like arn:aws:iam::123456789012:role/gatelake-reader"
                ));
            }
            let web_identity = match r.pick(
                "web_identity",
                args.web_identity.map(|w| w.as_str()),
                aws.web_identity.map(|w| w.as_str()),
                Some("azure"),
            ) {
                Some("github") => WebIdentityKind::Github,
                Some("gitlab") => WebIdentityKind::Gitlab,
                Some("azure-devops") => WebIdentityKind::AzureDevops,
                Some("file") => WebIdentityKind::File,
                Some("env") => WebIdentityKind::Env,
                _ => WebIdentityKind::Azure,
            };
            let default_audience = match web_identity {
                WebIdentityKind::Azure => {
                    Some(gatelake::identity::web_identity::DEFAULT_AZURE_AUDIENCE.to_string())
                }
                WebIdentityKind::Github => {
                    Some(gatelake::identity::web_identity::DEFAULT_GITHUB_AUDIENCE.to_string())
                }
                _ => None,
            };
            let audience = r
                .pick(
                    "web_identity_audience",
                    args.web_identity_audience.clone(),
                    aws.web_identity_audience.clone(),
                    default_audience,
                )
                .unwrap_or_default();
            let token_file = r
                .pick(
                    "web_identity_token_file",
                    args.web_identity_token_file.as_deref().map(display_path),
                    aws.web_identity_token_file.as_deref().map(display_path),
                    std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE").ok(),
                )
                .map(PathBuf::from);
            if web_identity == WebIdentityKind::File && token_file.is_none() {
                return usage("--web-identity file needs --web-identity-token-file PATH or AWS_WEB_IDENTITY_TOKEN_FILE");
            }
            let session_duration = duration(
                "aws-session-duration",
                r.pick(
                    "aws_session_duration",
                    args.aws_session_duration.clone(),
                    aws.session_duration.clone(),
                    Some("1h".into()),
                ),
            )?;
            if session_duration < Duration::from_secs(1)
                || session_duration > Duration::from_secs(12 * 3600)
            {
                return usage("--aws-session-duration must be at most 12h (AWS STS also requires at least 15m and applies the role's maximum session duration; shorter values are for emulators)");
            }
            let session_name = r.pick(
                "aws_role_session_name",
                args.aws_role_session_name.clone(),
                aws.role_session_name.clone(),
                std::env::var("AWS_ROLE_SESSION_NAME").ok(),
            );
            let env_region = std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .ok();
            let sts_region = r
                .pick(
                    "aws_sts_region",
                    args.aws_sts_region.clone(),
                    aws.sts_region.clone(),
                    region.or(env_region).or(Some("us-east-1".into())),
                )
                .unwrap_or_default();
            Some(AwsRoleSettings {
                role_arn,
                web_identity,
                audience,
                token_file,
                session_duration,
                session_name,
                sts_region,
            })
        }
    };
    Ok(IdentitySettings {
        azure,
        aws_role,
        ca_bundle,
    })
}

/// Resolve `gatelake demo`: the demo API's URL is only known once it runs, so this returns
/// the output side and the demo fills in the source.
pub fn resolve_demo(
    args: &DemoArgs,
    matches: &ArgMatches,
) -> Result<(ResolvedOutput, Vec<Shown>), UsageError> {
    let mut r = Resolver::new(matches);
    if args.page_size == 0 || args.records == 0 {
        return usage("--records and --page-size must be at least 1");
    }
    // Their defaults are the demo's own (clap fills them in), not a pull's: say so.
    for (id, value) in [("records", args.records), ("page_size", args.page_size)] {
        r.pick(id, Some(value), None, None);
        if matches!(
            matches.value_source(id),
            Some(ValueSource::DefaultValue) | None
        ) {
            if let Some(shown) = r.shown.last_mut() {
                shown.origin = "demo default".into();
            }
        }
    }
    let out = resolve_output(&mut r, &args.out, &JobSpec::default(), "./lake/demo")?;
    Ok((out, r.shown))
}

/// The output side of a run.
pub struct ResolvedOutput {
    pub config: OutputConfig,
    pub create_container: bool,
    pub restart: bool,
    pub wait_for_lock: Option<Duration>,
    pub dest: String,
    pub upload_concurrency: usize,
    pub mode: OutputMode,
    pub progress: ProgressMode,
}

pub fn resolve_output(
    r: &mut Resolver<'_>,
    out: &OutputArgs,
    job: &JobSpec,
    default_dest: &str,
) -> Result<ResolvedOutput, UsageError> {
    let synapse = r
        .pick(
            "synapse_optimized",
            out.synapse_optimized.then_some(true),
            job.synapse_optimized,
            Some(false),
        )
        .unwrap_or(false);
    let format: Format = r
        .pick(
            "format",
            out.format.clone(),
            job.format.clone(),
            Some(if synapse {
                "parquet".into()
            } else {
                Format::default().to_string()
            }),
        )
        .unwrap_or_default()
        .parse()
        .map_err(|e: String| UsageError(format!("--format: {e}")))?;
    let compression = match r.pick(
        "compression",
        out.compression.clone(),
        job.compression.clone(),
        Some(format.default_compression().to_string()),
    ) {
        Some(c) => Some(
            c.parse::<Compression>()
                .map_err(|e| UsageError(format!("--compression: {e}")))?,
        ),
        None => None,
    };
    let mut encode = EncodeOptions::new(format, compression);
    encode.level = r.pick(
        "compression_level",
        out.compression_level,
        job.compression_level,
        None,
    );
    encode.validate().map_err(|e| UsageError(e.to_string()))?;
    let expected = match r.pick(
        "expected_size",
        out.expected_size.clone(),
        job.expected_size.clone(),
        None,
    ) {
        Some(text) => Some(size("expected-size", Some(text))?),
        None => None,
    };
    let default_chunk = if synapse {
        gatelake::config::synapse_chunk_bytes(&encode, expected).to_string()
    } else {
        "128MiB".into()
    };
    let chunk_bytes = size(
        "chunk-size",
        r.pick(
            "chunk_size",
            out.chunk_size.clone(),
            job.chunk_size.clone(),
            Some(default_chunk),
        ),
    )?;
    let schema = resolve_schema(r, out, job, format)?;
    let chunk_rows = r.pick("chunk_rows", out.chunk_rows, job.chunk_rows, None);
    if chunk_rows == Some(0) {
        return usage("--chunk-rows must be at least 1");
    }
    let dest = r
        .pick(
            "dest",
            out.dest.clone(),
            job.dest.clone(),
            Some(default_dest.to_string()),
        )
        .unwrap_or_default();
    let upload_concurrency = r
        .pick(
            "upload_concurrency",
            out.upload_concurrency,
            job.upload_concurrency,
            Some(4),
        )
        .unwrap_or(4);
    if upload_concurrency == 0 || upload_concurrency > 64 {
        return usage("--upload-concurrency must be between 1 and 64");
    }
    let wait_for_lock = resolve_wait_for_lock(r, out, job)?;
    let mode = r
        .pick("output", out.output.map(|o| o.as_str()), None, Some("text"))
        .unwrap_or("text");
    let progress = r
        .pick(
            "progress",
            out.progress.map(|p| p.as_str()),
            None,
            Some("auto"),
        )
        .unwrap_or("auto");
    Ok(ResolvedOutput {
        config: OutputConfig {
            encode,
            chunk_bytes,
            chunk_rows,
            schema,
        },
        create_container: out.create_container,
        restart: out.restart,
        wait_for_lock,
        dest,
        upload_concurrency,
        mode: if mode == "json" {
            OutputMode::Json
        } else {
            OutputMode::Text
        },
        progress: match progress {
            "bar" => ProgressMode::Bar,
            "plain" => ProgressMode::Plain,
            "none" => ProgressMode::None,
            _ => ProgressMode::Auto,
        },
    })
}

/// `--wait-for-lock [DURATION]`: how long to wait for a busy job lock; the bare flag (or
/// `lease`) means the lease's length. `0s` or unset: do not wait.
fn resolve_wait_for_lock(
    r: &mut Resolver<'_>,
    out: &OutputArgs,
    job: &JobSpec,
) -> Result<Option<Duration>, UsageError> {
    let Some(text) = r.pick(
        "wait_for_lock",
        out.wait_for_lock.clone(),
        job.wait_for_lock.clone(),
        None,
    ) else {
        return Ok(None);
    };
    let lease = Duration::from_secs(gatelake::sink::azure::LEASE_SECONDS.unsigned_abs().into());
    let wait = match text.trim() {
        "" | "lease" | "true" => lease,
        other => parse_duration(other).map_err(|e| {
            UsageError(format!(
                "--wait-for-lock: {e} (or give the flag alone to wait up to the lease's length, {} s)",
                lease.as_secs()
            ))
        })?,
    };
    Ok((!wait.is_zero()).then_some(wait))
}

/// The schema policy: drift, flattening, a pinned schema.
fn resolve_schema(
    r: &mut Resolver<'_>,
    out: &OutputArgs,
    job: &JobSpec,
    format: Format,
) -> Result<SchemaOptions, UsageError> {
    let on_drift: OnSchemaDrift = r
        .pick(
            "on_schema_drift",
            out.on_schema_drift.clone(),
            job.on_schema_drift.clone(),
            Some("fail".into()),
        )
        .unwrap_or_default()
        .parse()
        .map_err(|e: String| UsageError(format!("--on-schema-drift: {e}")))?;
    let depth = r.pick("flatten_depth", out.flatten_depth, job.flatten_depth, None);
    let flatten = r
        .pick(
            "flatten",
            (out.flatten || out.flatten_depth.is_some()).then_some(true),
            job.flatten.or(job.flatten_depth.map(|_| true)),
            Some(false),
        )
        .unwrap_or(false);
    let flatten_depth = match (flatten, depth) {
        (false, _) => 0,
        (true, Some(0)) => return usage("--flatten-depth must be at least 1"),
        (true, Some(d)) => d,
        (true, None) => 3,
    };
    let pinned = match r.pick(
        "schema",
        out.schema.as_deref().map(display_path),
        job.schema.as_deref().map(display_path),
        None,
    ) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| UsageError(format!("--schema {path}: {e}")))?;
            Some(
                gatelake::encode::schema::Schema::from_json(&text)
                    .map_err(|e| UsageError(format!("--schema {path}: {e}")))?,
            )
        }
        None => None,
    };
    if pinned.is_some() && on_drift != OnSchemaDrift::Fail {
        return usage(format!(
            "--schema pins the columns, so records that do not fit are errors; it cannot be combined with --on-schema-drift {on_drift}"
        ));
    }
    if !format.columnar() && (pinned.is_some() || flatten_depth > 0) {
        return usage("--schema and --flatten shape csv and parquet columns; jsonl keeps records as received (add --format parquet or csv)");
    }
    Ok(SchemaOptions {
        on_drift,
        flatten_depth,
        pinned,
    })
}

fn positive(flag: &str, v: Option<u64>) -> Result<u64, UsageError> {
    match v {
        Some(n) if n > 0 => Ok(n),
        _ => usage(format!("--{flag} must be at least 1")),
    }
}

fn duration(flag: &str, v: Option<String>) -> Result<Duration, UsageError> {
    parse_duration(v.as_deref().unwrap_or_default())
        .map_err(|e| UsageError(format!("--{flag}: {e}")))
}

fn size(flag: &str, v: Option<String>) -> Result<u64, UsageError> {
    parse_byte_size(v.as_deref().unwrap_or_default())
        .map_err(|e| UsageError(format!("--{flag}: {e}")))
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
