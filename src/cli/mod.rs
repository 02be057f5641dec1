//! The binary's side: parse flags, resolve settings, build the engine's inputs, show
//! progress, print the summary, and turn errors into exit codes. The library never sees
//! any of this.

pub mod arg_errors;
pub mod args;
pub mod auth_check;
pub mod exit_code;
pub mod footprint;
pub mod help;
pub mod identity;
pub mod progress;
pub mod settings;
pub mod sql;

use args::{Cli, Command, OutputMode, ProgressMode};
use clap::{CommandFactory, FromArgMatches};
use exit_code::ExitCode;
use gatelake::config::{PullConfig, RetryPolicy, SourceConfig};
use gatelake::pipeline::{PullError, RunOptions, RunSummary, StopSignal};
use gatelake::report::Reporter;
use gatelake::source::client::ApiClient;
use gatelake::source::paginate::{CursorSource, Pagination, PaginationConfig};
use settings::{SettingsError, Shown, UsageError};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

/// Parse the command line and run; returns the process's exit code.
pub fn main() -> ExitCode {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
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
    init_logging(cli.verbose);
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
                Ok(resolved) => run_pull(resolved).await,
                Err(e) => usage_error(&e, args.out.output),
            },
            Command::Demo(args) => run_demo(args, &sub).await,
            Command::Auth(a) => match a.command {
                args::AuthCommand::Check(args) => {
                    let sub = sub.subcommand().map(|(_, m)| m.clone()).unwrap_or_default();
                    auth_check::run(&args, &sub).await
                }
            },
            Command::Sql(args) => sql::run(args, json).await,
        }
    })
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "gatelake=debug,info",
        // Only our own modules: other crates' trace output can include request headers.
        _ => "gatelake=trace,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATELAKE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
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
    let message = &arg_errors::name_env_source(message);
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

fn print_settings(shown: &[Shown], mode: OutputMode) {
    if mode == OutputMode::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(shown).unwrap_or_default()
        );
        return;
    }
    let width = shown.iter().map(|s| s.key.len()).max().unwrap_or(0);
    for s in shown {
        println!("{:width$}  {}  ({})", s.key, s.value, s.origin);
    }
}

fn reporter_for(progress: ProgressMode) -> Arc<dyn Reporter> {
    let tty = std::io::stderr().is_terminal();
    match progress {
        ProgressMode::None => Arc::new(gatelake::report::SilentReporter),
        ProgressMode::Bar => Arc::new(progress::BarReporter::new()),
        ProgressMode::Plain => Arc::new(progress::PlainReporter::new()),
        ProgressMode::Auto if tty => Arc::new(progress::BarReporter::new()),
        ProgressMode::Auto => Arc::new(progress::PlainReporter::new()),
    }
}

async fn run_pull(mut resolved: settings::Resolved) -> ExitCode {
    if let Err(e) = check_destination(&resolved.dest, &mut resolved.shown) {
        return usage_error(&e, Some(resolved.output));
    }
    if resolved.show_settings {
        print_settings(&resolved.shown, resolved.output);
        return ExitCode::Success;
    }
    for w in resolved
        .warnings
        .iter()
        .chain(&identity::warnings(&resolved.identity))
    {
        eprintln!("warning: {w}");
    }
    execute(
        resolved.pull,
        &resolved.dest,
        resolved.create_container,
        resolved.restart,
        resolved.output,
        resolved.progress,
        Some(&resolved.identity),
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
        print_settings(&shown, out.mode);
        return ExitCode::Success;
    }
    let api = match gatelake::demo::DemoApi::start(args.records, args.page_size).await {
        Ok(api) => api,
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
    let url = match url::Url::parse(&api.url()) {
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
            pagination: Pagination {
                style: PaginationConfig::Cursor {
                    source: CursorSource::Body("next_cursor".into()),
                    param: "cursor".into(),
                },
                stop: Default::default(),
            },
            records_path: "items".into(),
            auth: gatelake::config::ApiAuth::None,
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_pages: None,
            max_page_bytes: 64 << 20,
            on_bad_page: Default::default(),
            concurrency: 1,
        },
        output: out.config,
        upload_concurrency: out.upload_concurrency,
        incremental: None,
    };
    execute(
        pull,
        &out.dest,
        out.create_container,
        // The demo API listens on a new port each time, so an interrupted demo run could never
        // be resumed (its source URL changed): start afresh instead.
        true,
        out.mode,
        out.progress,
        None,
    )
    .await
}

/// Open the destination, run the pull, print the summary; Ctrl-C/SIGTERM stop it.
async fn execute(
    pull: PullConfig,
    dest: &str,
    create_container: bool,
    restart: bool,
    mode: OutputMode,
    progress: ProgressMode,
    identity: Option<&settings::IdentitySettings>,
) -> ExitCode {
    let default_identity = settings::IdentitySettings {
        azure: Default::default(),
        aws_role: None,
        ca_bundle: None,
    };
    let identity = identity.unwrap_or(&default_identity);
    let auth_failure = |message: String| {
        report_failure(&message, ExitCode::Auth, mode);
        ExitCode::Auth
    };
    let azure = if identity::needs_azure(identity, dest, &pull.source.auth) {
        match identity::azure_identity(identity).await {
            Ok(a) => {
                tracing::info!(
                    "Azure identity: {} (--azure-auth {})",
                    a.source.describe(),
                    identity.azure.kind.as_str()
                );
                Some(a)
            }
            Err(e) => return auth_failure(e.to_string()),
        }
    } else {
        None
    };
    let aws = match identity::aws_credentials(identity, azure.as_ref(), &pull.job) {
        Ok(a) => a,
        Err(e) => return auth_failure(e.to_string()),
    };
    let sink = match identity::open_sink(dest, identity, azure.as_ref()) {
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
    let http = match gatelake::http::client(&gatelake::http::HttpOptions {
        timeout: pull.source.timeout,
        ..identity::http_options(identity)
    }) {
        Ok(h) => h,
        Err(e) => {
            report_failure(&e.to_string(), ExitCode::Failure, mode);
            return ExitCode::Failure;
        }
    };
    // Without a role, the standard AWS chain signs; built here (rather than by the client)
    // only so that its own calls (STS, SSO, containers) trust --ca-bundle as well.
    let aws = match (aws, &pull.source.auth) {
        (Some((c, _)), _) => Some(c),
        (None, gatelake::config::ApiAuth::Iam { region }) => {
            match identity::sdk_http_client(identity) {
                Ok(Some(h)) => {
                    match gatelake::identity::aws::AwsCredentials::from_default_chain_with(
                        region,
                        Some(h),
                    )
                    .await
                    {
                        Ok(c) => Some(Arc::new(c)),
                        Err(e) => return auth_failure(e.to_string()),
                    }
                }
                Ok(None) => None,
                Err(e) => return auth_failure(e.to_string()),
            }
        }
        (None, _) => None,
    };
    let client = match ApiClient::new(&pull.source, http, aws).await {
        Ok(c) => match &azure {
            Some(a) => c.with_bearer_credential(a.credential()),
            None => c,
        },
        Err(e) => {
            let e = PullError::Source(e);
            let code = ExitCode::of_pull_error(&e);
            report_failure(&gatelake::report::error_chain(&e), code, mode);
            return code;
        }
    };
    let reporter = reporter_for(progress);
    let (stop_handle, stop) = StopSignal::new();
    let options = RunOptions { restart };
    let run = gatelake::pipeline::run(&pull, sink, client, reporter.clone(), &options, stop);
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

async fn interrupted() {
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
                "Pulled {} records in {} pages into {} files ({}) in {:.1}s.",
                s.rows,
                s.pages,
                s.files.len(),
                progress::human_bytes(s.bytes),
                s.seconds
            );
            println!("Run:      {}", s.run_id);
            println!("Folder:   {}", s.destination);
            println!("Manifest: {}", s.manifest_url);
            if !s.schema_changes.is_empty() {
                eprintln!("Schema changes (recorded in the manifest):");
                for c in &s.schema_changes {
                    eprintln!("  {c}");
                }
            }
        }
    }
}
