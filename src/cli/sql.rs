//! `gatelake sql`: print the Synapse SQL that loads a run, for the pool, credential and table
//! the caller names. It reads the run's manifest from the destination (the newest run with
//! `_SUCCESS` unless `--run` names one) and renders it with `gatelake::load::sql`.

use super::args::{CredentialArg, FilesArg, OutputMode, PoolArg, SqlArgs, StringsArg};
use super::azure_settings::resolve_azure;
use super::exit_code::ExitCode;
use super::resolver::Resolver;
use gatelake::engine::{DestinationError, Engine, IdentitySettings};
use gatelake::load::previous::{latest_completed_run, read_manifest, PreviousRunError};
use gatelake::load::sql::{
    column_name, render, Credential, FileSelection, Pool, SqlOptions, StringSizing, TableName,
};

/// The destination, opened by the engine as `pull`'s is: the same identity resolution, proof
/// and HTTP stack.
async fn open(
    args: &SqlArgs,
    matches: &clap::ArgMatches,
) -> Result<std::sync::Arc<dyn gatelake::sink::Sink>, (String, ExitCode)> {
    let mut r = Resolver::new(matches);
    let ident = args.identity.as_identity_args();
    let azure = resolve_azure(&mut r, &ident, None, &mut std::io::stdin())
        .map_err(|e| (e.to_string(), ExitCode::Usage))?;
    let ca_bundle = r
        .pick(
            "ca_bundle",
            ident.ca_bundle.as_deref().map(|p| p.display().to_string()),
            None,
            None,
        )
        .map(std::path::PathBuf::from);
    let settings = IdentitySettings {
        azure,
        aws_role: None,
        ca_bundle,
    };
    Engine::new(settings)
        .open_destination(&args.dest)
        .await
        .map_err(|e| {
            let code = match &e {
                DestinationError::Identity(_) => ExitCode::Auth,
                DestinationError::Sink(s) => ExitCode::of_sink_error(s),
            };
            (e.to_string(), code)
        })
}

/// Run `gatelake sql`; the script goes to stdout, errors to stderr. With `--output json` (or
/// `GATELAKE_OUTPUT=json`), stdout holds one JSON object instead: the script in `"sql"`, or the
/// failure — the same flag and variable as `pull`'s, so one setting serves a whole CI job.
pub async fn run(args: SqlArgs, matches: &clap::ArgMatches) -> ExitCode {
    let mode = args.output.unwrap_or_default();
    let code = run_script(args, matches, mode).await;
    if let Err((message, code)) = code {
        super::report_failure(&message, code, mode);
        return code;
    }
    ExitCode::Success
}

async fn run_script(
    args: SqlArgs,
    matches: &clap::ArgMatches,
    mode: OutputMode,
) -> Result<(), (String, ExitCode)> {
    let sink = match open(&args, matches).await {
        Ok(s) => s,
        Err(e) => return Err(e),
    };
    let run = match &args.run {
        Some(run) => run.clone(),
        None => match latest_completed_run(sink.as_ref()).await {
            Ok(latest) => match latest {
                Some(run) => run,
                None => {
                    return Err((format!("no completed run (a folder with _SUCCESS) under {}; pull first, or name one with --run",
                        sink.root_url()), ExitCode::Usage));
                }
            },
            Err(e) => {
                return Err((format!("{e}"), ExitCode::of_sink_error(&e)));
            }
        },
    };
    let manifest = match read_manifest(sink.as_ref(), &run).await {
        Ok(m) => m,
        Err(PreviousRunError::Sink(e)) => {
            return Err((format!("{e}"), ExitCode::of_sink_error(&e)));
        }
        Err(e) => {
            return Err((format!("{e}"), ExitCode::Usage));
        }
    };
    let target = match &args.target {
        Some(t) => match t.parse::<TableName>() {
            Ok(t) => t,
            Err(e) => {
                return Err((format!("--target: {e}"), ExitCode::Usage));
            }
        },
        None => TableName {
            schema: "dbo".into(),
            table: column_name(&manifest.job),
        },
    };
    let mut opts = SqlOptions::new(target);
    opts.pool = match args.pool {
        Some(PoolArg::Dedicated) => Pool::Dedicated,
        Some(PoolArg::Serverless) => Pool::Serverless,
        None if manifest.format.synapse().copy_into.is_err() => Pool::Serverless,
        None => Pool::Dedicated,
    };
    opts.credential = match args.credential {
        CredentialArg::ManagedIdentity => Credential::ManagedIdentity,
        CredentialArg::Sas => Credential::Sas,
        CredentialArg::ServicePrincipal => Credential::ServicePrincipal,
    };
    opts.files = match args.files {
        FilesArg::List => FileSelection::List,
        FilesArg::Wildcard => FileSelection::Wildcard,
    };
    opts.strings = match args.strings {
        StringsArg::Observed => StringSizing::Observed,
        StringsArg::Max => StringSizing::Max,
    };
    opts.auto_create_table = args.auto_create_table;
    opts.client_id = args.client_id;
    opts.tenant_id = args.tenant_id;
    match render(&manifest, &opts) {
        Ok(sql) => {
            let text = match mode {
                OutputMode::Json => {
                    serde_json::json!({"status": "succeeded", "run": manifest.run_id, "sql": sql})
                        .to_string()
                }
                OutputMode::Text => sql.strip_suffix('\n').unwrap_or(&sql).to_string(),
            };
            if super::stdout::answer(&text) {
                Ok(())
            } else {
                Err(("cannot write the SQL to stdout".into(), ExitCode::Failure))
            }
        }
        Err(e) => Err((format!("{e}"), ExitCode::Usage)),
    }
}
