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
use super::job_spec::JobSpec;
use super::resolver::UsageError;
use super::resolver::{Resolver, SettingsError, Shown};
use clap::ArgMatches;
use gatelake::config::{ApiAuth, PullConfig, SourceConfig};
use gatelake::engine::settings::IdentitySettings;
use gatelake::objects::api_listing::ApiObjectsConfig;
use gatelake::objects::ObjectsConfig;
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
    /// The pull lands the S3 objects its pages or its export hand back (`None`: records).
    pub objects: Option<PullObjects>,
    /// How this process takes part in a partitioned run (`--worker`, `--shard`, …).
    pub worker: gatelake::run::worker::WorkerOptions,
}

/// How a pull of objects finds and lands them.
pub struct PullObjects {
    pub api: ApiObjectsConfig,
    pub objects: ObjectsConfig,
}

/// Parts in flight at once when a pull lands objects and `--concurrency` is not given (as
/// `copy`).
const OBJECT_CONCURRENCY: usize = 8;

/// Resolve `gatelake pull`.
pub fn resolve_pull(args: &PullArgs, matches: &ArgMatches) -> Result<Resolved, SettingsError> {
    let mut r = Resolver::new(matches);
    let (job, _) = endpoint::resolve_job_file(&mut r, args)?;
    let mut warnings = Vec::new();
    let (url, job_name) = endpoint::resolve_endpoint(&mut r, args, &job, &mut warnings)?;
    let pagination = pagination::resolve_pagination(&mut r, args, &job)?;
    let api_objects = args
        .api_objects
        .resolve(&mut r, &job.api_object_keys(), &url)?;
    let listing = listing::resolve_listing(&mut r, args, &job)?;
    // A pull of objects has one listing walked in order; --concurrency counts object parts.
    let (concurrency, objects) = match api_objects {
        Some(api) => {
            if let Some(why) = records_only(&listing, args, &job) {
                return Err(UsageError(why).into());
            }
            let parts = r
                .pick(
                    "concurrency",
                    args.concurrency,
                    job.concurrency,
                    Some(OBJECT_CONCURRENCY),
                )
                .unwrap_or(OBJECT_CONCURRENCY);
            let objects = args.objects.resolve(&mut r, &job, parts)?;
            (1, Some(PullObjects { api, objects }))
        }
        None => {
            if let Some(flag) = object_flag_given(args, &job) {
                return Err(UsageError(format!(
                    "--{flag} says how S3 objects land: this pull's pages hold records. For objects named in the API's pages or an export, add --object-url-field or --object-uri-field (and --objects-path); for a bucket prefix, use gatelake copy"
                ))
                .into());
            }
            let n =
                pagination::resolve_concurrency(&mut r, args, &job, &pagination, &mut warnings)?;
            (n, None)
        }
    };

    // API authentication (inferred from the credentials given when --api-auth is unset).
    let (auth, usage_plan_key) =
        super::api_auth::resolve_api_auth(&mut r, args, &job, &url, &mut warnings)?;
    let requests = requests::resolve_requests(&mut r, args, &job)?;
    let incremental = incremental::resolve_incremental(&mut r, args, &job)?;
    let request_job = super::request_args::RequestJob {
        method: job.method.clone(),
        body: job.body.clone(),
        query: job.query.clone(),
    };
    let request =
        super::request_args::resolve_request(&mut r, &args.request, &request_job, &pagination)?;
    if request.post && objects.is_some() {
        return Err(UsageError("--method post pages records: a listing of S3 objects (--object-url-field, --object-uri-field, --export) is walked with GET (an export's start is already a POST of --export-body)".into()).into());
    }

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
        read_ahead: requests.read_ahead,
        request,
    };
    let partitions = super::partition_args::resolve_partitions(
        &mut r,
        &args.partitions,
        job.partitions.as_ref(),
        &source,
    )?;
    let worker = args.worker.resolve(&mut r, partitions.is_some())?;
    if partitions.is_some() && objects.is_some() {
        return Err(UsageError(
            "a pull of objects does not split into partitions: drop --window-start/--keys/--ranges, or pull records".into(),
        )
        .into());
    }
    Ok(Resolved {
        pull: PullConfig {
            job: job_name,
            source,
            output: out.config,
            upload_concurrency: out.upload_concurrency,
            incremental,
            partitions,
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
        objects,
        worker,
    })
}

/// Why a setting that shapes a pull of records cannot apply to a pull of objects, if one was
/// given: a run that ignored it would not do what was asked.
fn records_only(listing: &listing::Listing, args: &PullArgs, job: &JobSpec) -> Option<String> {
    let objects = "the pages of this pull list objects";
    if !listing.records_path.is_empty() {
        return Some(format!(
            "--records is where a page's records are; {objects}: say where with --objects-path"
        ));
    }
    let given = [
        ("max-pages", listing.max_pages.is_some()),
        ("expect-rows", listing.checks.expect_rows.is_some()),
        (
            "since-field",
            args.since_field.is_some() || job.since_field.is_some(),
        ),
    ];
    given.iter().find(|(_, g)| *g).map(|(flag, _)| {
        format!(
            "--{flag} applies to a pull of records; {objects}, and every object listed is landed (a later run lands only objects no earlier run landed). Drop --{flag}"
        )
    })
}

/// The first object-landing flag (or job-file key) given to a pull of records.
fn object_flag_given(args: &PullArgs, job: &JobSpec) -> Option<&'static str> {
    let o = &args.objects;
    [
        ("land", o.land.is_some() || job.land.is_some()),
        (
            "copy-mode",
            o.copy_mode.is_some() || job.copy_mode.is_some(),
        ),
        (
            "part-size",
            o.part_size.is_some() || job.part_size.is_some(),
        ),
        (
            "allow-object-host",
            !o.allow_object_host.is_empty() || job.allow_object_host.is_some(),
        ),
        (
            "allow-bucket",
            !o.allow_bucket.is_empty() || job.allow_bucket.is_some(),
        ),
    ]
    .into_iter()
    .find(|(_, given)| *given)
    .map(|(flag, _)| flag)
}
