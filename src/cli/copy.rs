//! `gatelake copy s3://bucket/prefix DEST`: copy an existing S3 prefix into the lake, as one
//! run whose units are the objects (`gatelake::run::objects`), with the job's lock, a
//! resumable checkpoint, a manifest, `_SUCCESS` and a load script like any pull. Incremental:
//! a later run of the same job copies only the objects no earlier run copied (key + version
//! id or ETag). The flags shared with `pull` are `object_args`, the identity flags are
//! `pull`'s, the output flags `pull`'s too (they shape `--land records` chunks).

use super::args::{CopyArgs, OutputMode};
use super::exit_code::ExitCode;
use super::job_spec::JobSpec;
use super::resolver::{usage, Resolver, SettingsError, Shown, UsageError};
use super::settings::{resolve_identity, resolve_output};
use super::{check_destination, print_settings, report_failure, reporter_for, usage_error};
use clap::ArgMatches;
use gatelake::engine::{Engine, IdentitySettings};
use gatelake::identity::azure::AzureHop;
use gatelake::objects::records::RecordsError;
use gatelake::objects::source::{ObjectSourceError, PrefixSource};
use gatelake::objects::{ObjectError, PrefixFilter, S3Uri};
use gatelake::report::Reporter;
use gatelake::run::objects::{
    run_objects, ObjectRunConfig, ObjectRunError, ObjectRunInput, ObjectSummary,
};
use gatelake::run::{RunOptions, StopHandle, StopSignal};
use std::sync::Arc;
use std::time::Duration;

/// The default parts in flight (`--concurrency`).
const DEFAULT_CONCURRENCY: usize = 8;

/// Everything `copy` needs to run.
struct ResolvedCopy {
    config: ObjectRunConfig,
    uri: S3Uri,
    filter: PrefixFilter,
    dest: String,
    create_container: bool,
    options: RunOptions,
    output: OutputMode,
    progress: super::args::ProgressMode,
    identity: IdentitySettings,
    shown: Vec<Shown>,
}

fn resolve(args: &CopyArgs, matches: &ArgMatches) -> Result<ResolvedCopy, SettingsError> {
    let mut r = Resolver::new(matches);
    let uri = S3Uri::parse(&args.source).map_err(|e| {
        UsageError(format!(
            "{e}. Give the prefix to copy as s3://bucket/prefix"
        ))
    })?;
    r.pick("source", Some(uri.to_string()), None, None);
    let default_job = uri
        .key
        .trim_end_matches('/')
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or(&uri.bucket)
        .to_string();
    let job_name = r
        .pick("job", args.job.clone(), None, Some(default_job))
        .unwrap_or_default();
    let job = JobSpec::default();
    let mut out = resolve_output(&mut r, &args.out, &job, &format!("./lake/{job_name}"))?;
    if let Some(dest) = &args.destination {
        if args.out.dest.is_some() && r.given_on_command_line("dest") {
            return usage("the destination is given twice (as DEST and as --dest): give it once");
        }
        out.dest = dest.clone();
        for s in r.shown.iter_mut().filter(|s| s.key == "dest") {
            s.value = dest.clone();
            s.origin = "argument DEST".into();
        }
    }
    let concurrency = r
        .pick(
            "concurrency",
            args.concurrency,
            None,
            Some(DEFAULT_CONCURRENCY),
        )
        .unwrap_or(DEFAULT_CONCURRENCY);
    let objects = args.objects.resolve(&mut r, &job, concurrency)?;
    if objects.copy_mode == gatelake::objects::CopyMode::Server
        && !gatelake::sink::azure::is_azure_destination(&out.dest)
    {
        return usage(format!(
            "--copy-mode server has the storage account read the objects itself, which a local folder ({}) cannot: use --copy-mode client (the default), or an Azure destination",
            out.dest
        ));
    }
    let since = match &args.modified_since {
        Some(text) => Some(modified_since(text)?),
        None => None,
    };
    let filter = PrefixFilter::new(&args.include, &args.exclude, since)
        .map_err(|e| UsageError(format!("--include/--exclude: {e}")))?;
    for (key, values) in [("include", &args.include), ("exclude", &args.exclude)] {
        if !values.is_empty() {
            r.pick(key, Some(values.join(", ")), None, None);
        }
    }
    let identity = resolve_identity(&mut r, &args.identity, &job, None)?;
    Ok(ResolvedCopy {
        config: ObjectRunConfig {
            job: job_name,
            objects,
            output: out.config,
            auth: "iam".into(),
        },
        uri,
        filter,
        dest: out.dest,
        create_container: out.create_container,
        options: RunOptions {
            restart: out.restart,
            wait_for_lock: out.wait_for_lock,
            identities: Vec::new(),
        },
        output: out.mode,
        progress: out.progress,
        identity,
        shown: r.shown,
    })
}

/// `--modified-since`: an RFC 3339 time, a date, or a duration back from now.
fn modified_since(text: &str) -> Result<time::OffsetDateTime, UsageError> {
    use time::format_description::well_known::Rfc3339;
    let t = text.trim();
    if let Ok(at) = time::OffsetDateTime::parse(t, &Rfc3339) {
        return Ok(at);
    }
    if let Ok(date) =
        time::Date::parse(t, time::macros::format_description!("[year]-[month]-[day]"))
    {
        return Ok(date.midnight().assume_utc());
    }
    let days = t.strip_suffix('d').and_then(|n| n.parse::<u64>().ok());
    let back = match days {
        Some(n) => Some(Duration::from_secs(n * 86_400)),
        None => gatelake::config::parse_duration(t).ok(),
    };
    match back {
        Some(d) => Ok(time::OffsetDateTime::now_utc() - d),
        None => usage(format!(
            "--modified-since {t:?}: use an RFC 3339 time (2026-12-01T00:00:00Z), a date (2026-12-01) or a duration back from now (24h, 7d)"
        )),
    }
}

/// Run `gatelake copy`.
pub async fn run(args: &CopyArgs, matches: &ArgMatches) -> ExitCode {
    let mode = args.out.output.unwrap_or_default();
    let mut resolved = match resolve(args, matches) {
        Ok(r) => r,
        Err(e) => return usage_error(&e, Some(mode)),
    };
    if let Err(e) = check_destination(&resolved.dest, &mut resolved.shown) {
        return usage_error(&e, Some(resolved.output));
    }
    if args.out.show_settings {
        return print_settings(&resolved.shown, resolved.output);
    }
    let mode = resolved.output;
    let engine = Engine::new(resolved.identity.clone());
    for w in engine.warnings() {
        eprintln!("warning: {w}");
    }
    let ids = match engine
        .object_identities(&resolved.dest, &resolved.config.job)
        .await
    {
        Ok(ids) => ids,
        Err(e) => {
            report_failure(&e.to_string(), ExitCode::Auth, mode);
            return ExitCode::Auth;
        }
    };
    let sink = match engine.sink(&resolved.dest, ids.azure.get(AzureHop::Storage)) {
        Ok(s) => s,
        Err(e) => {
            let code = ExitCode::of_sink_error(&e);
            report_failure(&e.to_string(), code, mode);
            return code;
        }
    };
    if resolved.create_container {
        if let Err(e) = sink.ensure_root().await {
            let code = ExitCode::of_sink_error(&e);
            report_failure(&e.to_string(), code, mode);
            return code;
        }
    }
    let reader = match engine
        .object_reader(&resolved.config.objects, ids.aws.clone())
        .await
    {
        Ok(r) => r,
        Err(e) => {
            report_failure(&e.to_string(), ExitCode::Auth, mode);
            return ExitCode::Auth;
        }
    };
    let source = PrefixSource {
        reader: reader.clone(),
        uri: resolved.uri.clone(),
        filter: resolved.filter.clone(),
    };
    let reporter = reporter_for(resolved.progress);
    let (stop_handle, stop) = StopSignal::new();
    let options = RunOptions {
        identities: ids.proven,
        ..resolved.options.clone()
    };
    let run = run_objects(ObjectRunInput {
        config: &resolved.config,
        source: &source,
        reader,
        sink,
        reporter: reporter.clone(),
        options: &options,
        stop,
    });
    finish(run, stop_handle, reporter, mode, exit_code_of).await
}

/// Drive an object run to its end, print its summary (or its failure) and give the exit code:
/// a first interrupt stops it after the objects in flight with the checkpoint saved, a second
/// quits at once. `exit_code_of` maps a failure (`pull`'s objects add the API's refusals).
pub(super) async fn finish(
    run: impl std::future::Future<Output = Result<ObjectSummary, ObjectRunError>>,
    stop_handle: StopHandle,
    reporter: Arc<dyn Reporter>,
    mode: OutputMode,
    exit_code_of: fn(&ObjectRunError) -> ExitCode,
) -> ExitCode {
    tokio::pin!(run);
    let outcome = tokio::select! {
        r = &mut run => r,
        _ = super::interrupted() => {
            eprintln!("gatelake: stopping: finishing the objects in flight and saving the checkpoint (interrupt again to quit at once)");
            stop_handle.stop();
            tokio::select! {
                r = &mut run => r,
                _ = super::interrupted() => {
                    report_failure(
                        "interrupted twice: quit at once. The checkpoint of the objects landed stands: run the same command again to resume",
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
            let code = exit_code_of(&e);
            report_failure(&gatelake::report::error_chain(&e), code, mode);
            code
        }
    }
}

/// The exit code of an object whose records did not land: its bytes' reader decides for a
/// failed read; content that cannot be read as records, drifts from the schema or holds
/// another count than stated is the source's fault.
fn of_records(e: &RecordsError, of_object: impl Fn(&ObjectError) -> ExitCode) -> ExitCode {
    match e {
        RecordsError::Read { source, .. } => source
            .downcast_ref::<ObjectError>()
            .map_or(ExitCode::Source, of_object),
        RecordsError::Sink { source, .. } => ExitCode::of_sink_error(source),
        RecordsError::Checkpoint { .. } => ExitCode::Sink,
        RecordsError::Interrupted { .. } => ExitCode::Interrupted,
        RecordsError::Internal { .. } => ExitCode::Failure,
        RecordsError::Decode(_)
        | RecordsError::Encode { .. }
        | RecordsError::CountMismatch { .. }
        | RecordsError::Changed { .. } => ExitCode::Source,
    }
}

/// The exit code of a failed object run (see the README's table).
pub(super) fn exit_code_of(e: &ObjectRunError) -> ExitCode {
    let of_object = |e: &ObjectError| match e {
        ObjectError::Denied { .. } | ObjectError::NoS3Client { .. } => ExitCode::Auth,
        ObjectError::HostRefused { .. }
        | ObjectError::BucketRefused { .. }
        | ObjectError::InvalidReference { .. }
        | ObjectError::InvalidFilter { .. } => ExitCode::Usage,
        _ => ExitCode::Source,
    };
    match e {
        ObjectRunError::Sink(s) => ExitCode::of_sink_error(s),
        ObjectRunError::State(gatelake::state::StateError::LostRace { .. }) => ExitCode::Busy,
        ObjectRunError::State(gatelake::state::StateError::Sink(s)) => ExitCode::of_sink_error(s),
        ObjectRunError::State(_) | ObjectRunError::Ledger(_) => ExitCode::Sink,
        ObjectRunError::Source(ObjectSourceError::Object(o)) => of_object(o),
        ObjectRunError::Source(_) => ExitCode::Source,
        ObjectRunError::Land(l) => match l {
            gatelake::objects::land::LandError::Object(o) => of_object(o),
            gatelake::objects::land::LandError::Sink {
                source: gatelake::sink::SinkError::Unsupported { .. },
                ..
            } => ExitCode::Usage,
            gatelake::objects::land::LandError::Sink { source, .. } => {
                ExitCode::of_sink_error(source)
            }
            gatelake::objects::land::LandError::TooManyParts { .. } => ExitCode::Usage,
            _ => ExitCode::Sink,
        },
        ObjectRunError::Records(r) => of_records(r, of_object),
        ObjectRunError::PreviousRun(_) => ExitCode::Sink,
        ObjectRunError::SourceChanged { .. } | ObjectRunError::BadName { .. } => ExitCode::Usage,
        ObjectRunError::Vanished { .. } => ExitCode::Source,
        ObjectRunError::Interrupted { .. } => ExitCode::Interrupted,
        ObjectRunError::Internal(_) => ExitCode::Failure,
    }
}

fn print_summary(s: &ObjectSummary, mode: OutputMode) {
    match mode {
        OutputMode::Json => match serde_json::to_string(s) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot encode the summary: {e}"),
        },
        OutputMode::Text => {
            println!(
                "Copied {} ({}) from {} in {:.1}s{}.",
                super::progress::count(s.objects, "object"),
                super::progress::human_bytes(s.bytes),
                s.source,
                s.seconds,
                if s.skipped > 0 {
                    format!("; {} copied by earlier runs left out", s.skipped)
                } else {
                    String::new()
                }
            );
            if s.land == "records" {
                println!(
                    "Records:  {} in {}",
                    super::progress::count(s.rows, "record"),
                    super::progress::count(s.files, "chunk")
                );
            }
            println!("Run:      {}", s.run_id);
            println!("Folder:   {}", s.destination);
            println!("Manifest: {}", s.manifest_url);
            if !s.warnings.is_empty() {
                eprintln!("Warnings (recorded in the manifest):");
                for w in &s.warnings {
                    eprintln!("  {w}");
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn modified_since_takes_times_dates_and_durations() {
        let t = modified_since("2026-12-01T10:00:00Z").unwrap();
        assert_eq!(t.hour(), 10);
        let d = modified_since("2026-12-01").unwrap();
        assert_eq!((d.day(), d.hour()), (1, 0));
        let ago = time::OffsetDateTime::now_utc() - modified_since("7d").unwrap();
        assert!((ago.whole_hours() - 168).abs() <= 1);
        let ago = time::OffsetDateTime::now_utc() - modified_since("90m").unwrap();
        assert!((ago.whole_minutes() - 90).abs() <= 1);
        let e = modified_since("last tuesday").unwrap_err().to_string();
        assert!(e.contains("--modified-since"), "{e}");
    }
}
