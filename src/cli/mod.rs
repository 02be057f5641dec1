//! The binary's side: parse flags, resolve settings, build the engine's inputs, show
//! progress, print the summary, and turn errors into exit codes. The library never sees
//! any of this.

pub mod api_auth;
pub mod api_object_args;
pub mod arg_errors;
pub mod args;
pub mod auth_check;
pub mod auth_plan;
pub mod azure_settings;
pub mod completions;
pub mod copy;
pub mod demo;
pub mod exit_code;
pub mod footprint;
pub mod help;
pub mod identity;
pub mod job_file;
pub mod job_spec;
pub mod logging;
pub mod man;
pub mod oauth_args;
pub mod object_args;
pub mod pagination_args;
pub mod partition_args;
pub mod plan_args;
pub mod progress;
pub mod pull_objects;
pub mod pull_partitioned;
pub mod request_args;
pub mod resolver;
pub mod sample;
pub mod sample_args;
pub mod settings;
pub mod sql;
pub mod status;
pub mod stdout;
pub mod version;
pub mod worker_args;

use args::{Cli, Command, OutputMode, ProgressMode};
use clap::{CommandFactory, FromArgMatches};
use exit_code::ExitCode;
use gatelake::config::{PullConfig, RetryPolicy, SourceConfig};
use gatelake::engine::{ClientError, Engine, IdentitySettings};
use gatelake::identity::azure::AzureHop;
use gatelake::report::Reporter;
use gatelake::run::{PullError, RunOptions, RunSummary, StopSignal};
use gatelake::source::paginate::Pagination;
use resolver::{SettingsError, Shown, UsageError};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

/// Parse the command line and run; returns the process's exit code.
pub fn main() -> ExitCode {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(request) = version::requested(&raw) {
        return version::print(request);
    }
    let json = arg_errors::json_requested(&raw, std::env::var_os("GATELAKE_OUTPUT").as_ref());
    let command = help::with_help_text(Cli::command());
    let matches = match command.clone().try_get_matches_from(&raw) {
        Ok(m) => m,
        Err(e) => return arg_errors::report_clap_error(&command, &e, &raw, json),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return arg_errors::report_clap_error(&command, &e, &raw, json),
    };
    arg_errors::remember_env_sources(&command, &matches);
    logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::Failure;
        }
    };
    let sub = matches
        .subcommand()
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    runtime.block_on(async move {
        match cli.command {
            Command::Pull(args) => match settings::resolve_pull(&args, &sub) {
                // --sample N: the first N pages, measured; nothing written to --dest.
                Ok(r) => match args.sample.sample.filter(|_| !r.show_settings) {
                    Some(n) => sample::run(r, n, args.sample.preview_dir.clone()).await,
                    None => run_pull(r).await,
                },
                Err(e) => usage_error(&e, args.out.output),
            },
            Command::Copy(args) => copy::run(&args, &sub).await,
            Command::Demo(args) => run_demo(args, &sub).await,
            Command::Auth(a) => match a.command {
                args::AuthCommand::Check(args) => {
                    let sub = sub.subcommand().map(|(_, m)| m.clone()).unwrap_or_default();
                    auth_check::run(&args, &sub).await
                }
                args::AuthCommand::Plan(args) => {
                    let sub = sub.subcommand().map(|(_, m)| m.clone()).unwrap_or_default();
                    auth_plan::run(&args, &sub).await
                }
            },
            Command::Sql(args) => sql::run(args, &sub).await,
            Command::Status(args) => status::run(&args, &sub).await,
            Command::Completions(args) => completions::run(&args, Cli::command()),
            Command::Man(args) => man::run(&args, Cli::command()),
        }
    })
}

/// An error found while resolving settings, with the exit code it means.
pub(crate) trait SettingsFailure: std::fmt::Display {
    fn exit_code(&self) -> ExitCode;
}

impl SettingsFailure for UsageError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

impl SettingsFailure for SettingsError {
    fn exit_code(&self) -> ExitCode {
        match self {
            SettingsError::Usage(_) => ExitCode::Usage,
            SettingsError::Credential(_) => ExitCode::Auth,
        }
    }
}

/// [`usage_error`] for the other CLI modules.
pub(crate) fn usage_error_pub(e: &dyn SettingsFailure, mode: Option<OutputMode>) -> ExitCode {
    usage_error(e, mode)
}

/// Report a settings failure with its exit code: 2, or 3 for a missing or unusable credential.
fn usage_error(e: &dyn SettingsFailure, mode: Option<OutputMode>) -> ExitCode {
    let code = e.exit_code();
    report_failure(&e.to_string(), code, mode.unwrap_or_default());
    code
}

/// Check the destination before anything else happens (no identity probe, no network call,
/// no folder), and show what it means in `--show-settings`: a malformed or unknown one is a
/// usage error naming the accepted forms.
pub(crate) fn check_destination(
    dest: &str,
    shown: &mut [Shown],
) -> Result<gatelake::sink::Destination, UsageError> {
    // Starts with the flag, so that a value from GATELAKE_DEST is named as such.
    let parsed =
        gatelake::sink::Destination::parse(dest).map_err(|e| UsageError(format!("--dest: {e}")))?;
    for s in shown.iter_mut().filter(|s| s.key == "dest") {
        s.value = parsed.describe();
    }
    Ok(parsed)
}

/// Print a failure: always a readable line on stderr; with `--output json`, also one JSON
/// object on stdout so a CI step or notebook cell can parse the outcome either way. A message
/// about a setting that came from a `GATELAKE_*` variable names that variable.
pub(crate) fn report_failure(message: &str, code: ExitCode, mode: OutputMode) {
    // Last line of defence: whatever an upstream quoted, no live secret is printed.
    let message = &arg_errors::name_env_source(&gatelake::secret::redact(message));
    eprintln!("error: {message}");
    if mode == OutputMode::Json {
        let out = serde_json::json!({
            "status": "failed",
            "error": message,
            "error_kind": code.kind(),
            "exit_code": code as u8,
        });
        println!("{out}");
    }
}

/// `--show-settings`: what each setting resolved to and where it came from.
fn print_settings(shown: &[Shown], mode: OutputMode) -> ExitCode {
    let text = if mode == OutputMode::Json {
        serde_json::to_string_pretty(shown).unwrap_or_default()
    } else {
        let width = shown.iter().map(|s| s.key.len()).max().unwrap_or(0);
        shown
            .iter()
            .map(|s| format!("{:width$}  {}  ({})", s.key, s.value, s.origin))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if stdout::answer(&text) {
        ExitCode::Success
    } else {
        ExitCode::Failure
    }
}

fn reporter_for(progress: ProgressMode) -> Arc<dyn Reporter> {
    let tty = std::io::stderr().is_terminal();
    let display: Arc<dyn Reporter> = match progress {
        ProgressMode::None => Arc::new(gatelake::report::SilentReporter),
        ProgressMode::Bar | ProgressMode::Auto if tty => Arc::new(progress::BarReporter::new()),
        ProgressMode::Bar => {
            // A bar drawn into a file or pipe is invisible (indicatif draws nothing there) or
            // garbage (carriage returns in a CI log): say so once and show plain lines.
            eprintln!("{}", progress::BAR_WITHOUT_TERMINAL);
            Arc::new(progress::PlainReporter::new())
        }
        ProgressMode::Plain | ProgressMode::Auto => Arc::new(progress::PlainReporter::new()),
    };
    Arc::new(logging::Logged::new(
        display,
        progress != ProgressMode::None,
    ))
}

async fn run_pull(mut resolved: settings::Resolved) -> ExitCode {
    if let Err(e) = check_destination(&resolved.dest, &mut resolved.shown) {
        return usage_error(&e, Some(resolved.output));
    }
    if resolved.show_settings {
        let mut shown = resolved.shown.clone();
        shown.extend(
            identity::hop_sources(
                &Engine::new(resolved.identity.clone()),
                &resolved.dest,
                &resolved.pull.source.auth,
            )
            .await,
        );
        return print_settings(&shown, resolved.output);
    }
    for w in resolved
        .warnings
        .iter()
        .chain(&Engine::new(resolved.identity.clone()).warnings())
    {
        eprintln!("warning: {w}");
    }
    let options = RunOptions {
        restart: resolved.restart,
        wait_for_lock: resolved.wait_for_lock,
        identities: Vec::new(),
    };
    if let Some(objects) = resolved.objects {
        return pull_objects::execute(pull_objects::ObjectPull {
            pull: resolved.pull,
            objects,
            dest: &resolved.dest,
            create_container: resolved.create_container,
            options,
            mode: resolved.output,
            progress: resolved.progress,
            identity: &resolved.identity,
        })
        .await;
    }
    execute(
        resolved.pull,
        &resolved.dest,
        resolved.create_container,
        options,
        resolved.output,
        resolved.progress,
        Some(&resolved.identity),
        &resolved.worker,
    )
    .await
}

async fn run_demo(args: args::DemoArgs, matches: &clap::ArgMatches) -> ExitCode {
    let mode = args.out.output.unwrap_or_default();
    let (out, mut shown) = match settings::resolve_demo(&args, matches) {
        Ok(r) => r,
        Err(e) => return usage_error(&e, Some(mode)),
    };
    if let Err(e) = check_destination(&out.dest, &mut shown) {
        return usage_error(&e, Some(out.mode));
    }
    if args.out.show_settings {
        return print_settings(&shown, out.mode);
    }
    let started = if args.serve_only {
        gatelake::demo::DemoApi::start(args.records, args.page_size)
            .await
            .map(|api| demo::DemoSource {
                api,
                restart: false,
            })
    } else {
        demo::start_api(args.records, args.page_size, &out.dest, out.restart).await
    };
    let demo::DemoSource { api, restart } = match started {
        Ok(started) => started,
        Err(e) => {
            report_failure(
                &format!("cannot start the demo API on 127.0.0.1: {e}"),
                ExitCode::Failure,
                out.mode,
            );
            return ExitCode::Failure;
        }
    };
    if args.serve_only {
        println!("{}", api.url());
        eprintln!("gatelake demo: serving {} orders, {} per page, cursor pagination (--cursor-path next_cursor --records items); Ctrl-C stops", args.records, args.page_size);
        interrupted().await;
        return ExitCode::Success;
    }
    let url = match url::Url::parse(&api.source_url(args.records, args.page_size)) {
        Ok(u) => u,
        Err(e) => {
            report_failure(&format!("demo API URL: {e}"), ExitCode::Failure, out.mode);
            return ExitCode::Failure;
        }
    };
    if out.mode == OutputMode::Text {
        eprintln!("gatelake demo: serving {} orders at {url}", args.records);
    }
    let pull = PullConfig {
        job: "demo".into(),
        source: SourceConfig {
            url,
            pagination: Pagination::new("cursor")
                .with("cursor_path", "next_cursor")
                .with("cursor_param", "cursor"),
            records_path: "items".into(),
            auth: gatelake::config::ApiAuth::None,
            usage_plan_key: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_pages: None,
            checks: Default::default(),
            max_page_bytes: 64 << 20,
            on_bad_page: Default::default(),
            concurrency: 1,
            read_ahead: true,
            request: Default::default(),
        },
        output: out.config,
        upload_concurrency: out.upload_concurrency,
        incremental: None,
        partitions: None,
    };
    let local = !gatelake::sink::azure::is_azure_destination(&out.dest);
    let code = execute(
        pull,
        &out.dest,
        out.create_container,
        // Only --restart, or an unfinished run that cannot be resumed (said in demo.rs).
        RunOptions {
            restart,
            wait_for_lock: out.wait_for_lock,
            identities: Vec::new(),
        },
        out.mode,
        out.progress,
        None,
        &Default::default(),
    )
    .await;
    if code == ExitCode::Success && local && out.mode == OutputMode::Text {
        println!("Note:     {}", demo::LOCAL_LOAD_SQL_NOTE);
    }
    code
}

/// Open the destination, run the pull, print the summary; Ctrl-C/SIGTERM stop it. A
/// partitioned job runs as one worker (`worker`: how it takes part).
#[allow(clippy::too_many_arguments)]
async fn execute(
    pull: PullConfig,
    dest: &str,
    create_container: bool,
    options: RunOptions,
    mode: OutputMode,
    progress: ProgressMode,
    identity: Option<&IdentitySettings>,
    worker: &gatelake::run::worker::WorkerOptions,
) -> ExitCode {
    // The run id is minted before any identity is proved: the AWS role session and every
    // API request name it (a resumed run names its own from when it resumes).
    let engine = Engine::new(identity.cloned().unwrap_or_default()).with_new_run_id();
    let ids = match engine.identities(dest, &pull.source, &pull.job).await {
        Ok(ids) => ids,
        Err(e) => {
            report_failure(&e.to_string(), ExitCode::Auth, mode);
            return ExitCode::Auth;
        }
    };
    let sink = match engine.sink(dest, ids.azure.get(AzureHop::Storage)) {
        Ok(s) => s,
        Err(e) => {
            let code = ExitCode::of_sink_error(&e);
            report_failure(&e.to_string(), code, mode);
            return code;
        }
    };
    // Noted before anything is written (--create-container included), for the clean-up of
    // a failed run below.
    let local_folders = gatelake::sink::Destination::parse(dest)
        .ok()
        .and_then(|d| footprint::LocalFolders::before(&d));
    if create_container {
        if let Err(e) = sink.ensure_root().await {
            let code = ExitCode::of_sink_error(&e);
            report_failure(&e.to_string(), code, mode);
            return code;
        }
    }
    let bearer = ids.azure.get(AzureHop::Api);
    let client = match engine
        .api_client(&pull.source, ids.aws.clone(), bearer)
        .await
    {
        Ok(c) => c,
        Err(ClientError::Http(e)) => {
            report_failure(&e.to_string(), ExitCode::Failure, mode);
            return ExitCode::Failure;
        }
        Err(ClientError::Source(e)) => {
            let e = PullError::Source(e);
            let code = ExitCode::of_pull_error(&e);
            report_failure(&gatelake::report::error_chain(&e), code, mode);
            return code;
        }
    };
    let reporter = reporter_for(progress);
    let (stop_handle, stop) = StopSignal::new();
    let options = RunOptions {
        identities: ids.proven,
        ..options
    };
    if pull.partitions.is_some() {
        let run = pull_partitioned::WorkerRun {
            engine: &engine,
            pull: &pull,
            sink,
            client,
            reporter,
            options,
            worker,
            mode,
        };
        return pull_partitioned::drive(run, stop_handle, stop).await;
    }
    let run = engine.run(&pull, sink, client, reporter.clone(), &options, stop);
    tokio::pin!(run);
    // The first Ctrl-C/SIGTERM asks the pull to stop cleanly (uploads in flight finish and the
    // checkpoint is saved); a second one quits at once, which loses nothing committed either.
    let outcome = tokio::select! {
        r = &mut run => r,
        _ = interrupted() => {
            eprintln!("gatelake: stopping: finishing the uploads in flight and saving the checkpoint (interrupt again to quit at once)");
            stop_handle.stop();
            tokio::select! {
                r = &mut run => r,
                _ = interrupted() => {
                    report_failure(
                        "interrupted twice: quit at once. The checkpoint of the last committed chunk stands: run the same command again to resume",
                        ExitCode::Interrupted,
                        mode,
                    );
                    return ExitCode::Interrupted;
                }
            }
        }
    };
    drop(reporter);
    match outcome {
        Ok(summary) => {
            print_summary(&summary, mode);
            ExitCode::Success
        }
        Err(PullError::Incomplete { reason, summary }) => {
            let code = ExitCode::Source;
            print_partial(&summary, &reason, code, mode);
            code
        }
        Err(e) => {
            let code = ExitCode::of_pull_error(&e);
            if code != ExitCode::Interrupted {
                if let Some(folders) = &local_folders {
                    folders.remove_empty();
                }
            }
            report_failure(&gatelake::report::error_chain(&e), code, mode);
            code
        }
    }
}

/// A partial run (see `PullError::Incomplete`): what it delivered, and why it is not done.
/// With `--output json`, one object: the summary (`"status":"partial"`) plus the failure
/// fields every failed run has.
fn print_partial(s: &RunSummary, reason: &str, code: ExitCode, mode: OutputMode) {
    match mode {
        OutputMode::Json => {
            let mut out = serde_json::to_value(s).unwrap_or_default();
            if let Some(obj) = out.as_object_mut() {
                obj.insert("error".into(), reason.into());
                obj.insert("error_kind".into(), code.kind().into());
                obj.insert("exit_code".into(), (code as u8).into());
            }
            println!("{out}");
            eprintln!("error: {reason}");
        }
        OutputMode::Text => {
            // The reason is also the manifest's last warning: said once, as the error.
            let mut shown = s.clone();
            shown.warnings.retain(|w| w != reason);
            print_summary(&shown, mode);
            eprintln!("error: {reason}");
        }
    }
}

pub(crate) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_summary(s: &RunSummary, mode: OutputMode) {
    match mode {
        OutputMode::Json => match serde_json::to_string(s) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot encode the summary: {e}"),
        },
        OutputMode::Text => {
            println!(
                "Pulled {} in {} into {} ({}) in {:.1}s.",
                progress::count(s.rows, "record"),
                progress::count(s.pages, "page"),
                progress::count(s.files.len() as u64, "file"),
                progress::human_bytes(s.bytes),
                s.seconds
            );
            println!("Run:      {}", s.run_id);
            println!("Folder:   {}", s.destination);
            println!("Manifest: {}", s.manifest_url);
            if s.status != "succeeded" {
                println!("Status:   {} (no _SUCCESS)", s.status);
            }
            if !s.warnings.is_empty() {
                eprintln!("Warnings (recorded in the manifest):");
                for w in &s.warnings {
                    eprintln!("  {w}");
                }
            }
            if !s.schema_changes.is_empty() {
                eprintln!("Schema changes (recorded in the manifest):");
                for c in &s.schema_changes {
                    eprintln!("  {c}");
                }
            }
        }
    }
}
