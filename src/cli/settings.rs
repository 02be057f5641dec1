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
//!
//! One file per concern under `settings/`, each a small resolver taking the layered inputs
//! of its settings (`endpoint`, `pagination`, `listing`, `requests`, `incremental`, `output`,
//! `identity`; API authentication is `api_auth.rs`); [`resolve_pull`] calls them in the
//! order `--show-settings` lists the values.

mod endpoint;
mod identity;
mod incremental;
mod listing;
mod output;
mod pagination;
mod requests;

pub use identity::resolve_identity;
pub use output::{resolve_demo, resolve_output};

use super::args::{OutputMode, ProgressMode, PullArgs};
// `identity.rs` reaches the Azure settings as `super::azure_settings` (moved there whole).
use super::azure_settings;
use super::resolver::{Resolver, SettingsError, Shown};
use clap::ArgMatches;
use gatelake::config::{ApiAuth, PullConfig, SourceConfig};
use gatelake::engine::settings::IdentitySettings;
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

/// Resolve `gatelake pull`.
pub fn resolve_pull(args: &PullArgs, matches: &ArgMatches) -> Result<Resolved, SettingsError> {
    let mut r = Resolver::new(matches);
    let (job, _) = endpoint::resolve_job_file(&mut r, args)?;
    let mut warnings = Vec::new();
    let (url, job_name) = endpoint::resolve_endpoint(&mut r, args, &job, &mut warnings)?;
    let pagination = pagination::resolve_pagination(&mut r, args, &job)?;
    let listing = listing::resolve_listing(&mut r, args, &job)?;
    let concurrency =
        pagination::resolve_concurrency(&mut r, args, &job, &pagination, &mut warnings)?;

    // API authentication (inferred from the credentials given when --api-auth is unset).
    let (auth, usage_plan_key) =
        super::api_auth::resolve_api_auth(&mut r, args, &job, &url, &mut warnings)?;
    let requests = requests::resolve_requests(&mut r, args, &job)?;
    let incremental = incremental::resolve_incremental(&mut r, args, &job)?;

    let out = resolve_output(&mut r, &args.out, &job, &format!("./lake/{job_name}"))?;
    let region_hint = match &auth {
        ApiAuth::Iam { region } => Some(region.clone()),
        _ => None,
    };
    let identity = resolve_identity(&mut r, &args.identity, &job, region_hint)?;
    let source = SourceConfig {
        url,
        pagination,
        records_path: listing.records_path,
        auth,
        usage_plan_key,
        headers: requests.headers,
        timeout: requests.timeout,
        retry: requests.retry,
        max_pages: listing.max_pages,
        checks: listing.checks,
        max_page_bytes: requests.max_page_bytes,
        on_bad_page: requests.on_bad_page,
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
