//! A pull of a partitioned job, as one worker: run it (Ctrl-C/SIGTERM let the partition in
//! hand go at once), print what this worker did, and turn the outcome into an exit code.
//! With `--output json`, one object per worker: `{worker, run_id, partitions: [{id,
//! outcome, rows, pages, seconds}], committed, …}`, plus the failure fields when it failed.

use super::args::OutputMode;
use super::exit_code::ExitCode;
use super::{interrupted, report_failure};
use gatelake::engine::Engine;
use gatelake::partition::PartitionError;
use gatelake::report::Reporter;
use gatelake::run::partitioned::WorkerError;
use gatelake::run::worker::{WorkerOptions, WorkerReport};
use gatelake::run::{RunOptions, StopHandle, StopSignal};
use gatelake::sink::Sink;
use gatelake::source::client::ApiClient;
use std::sync::Arc;

/// What a worker runs with.
pub(super) struct WorkerRun<'a> {
    pub(super) engine: &'a Engine,
    pub(super) pull: &'a gatelake::config::PullConfig,
    pub(super) sink: Arc<dyn Sink>,
    pub(super) client: ApiClient,
    pub(super) reporter: Arc<dyn Reporter>,
    pub(super) options: RunOptions,
    pub(super) worker: &'a WorkerOptions,
    pub(super) mode: OutputMode,
}

/// Run the worker until its share is settled (or Ctrl-C), print its report, and return the
/// exit code: 0 when the run is committed (by this worker or another), this worker's shard
/// is done, or there was nothing left.
pub(super) async fn drive(w: WorkerRun<'_>, stop_handle: StopHandle, stop: StopSignal) -> ExitCode {
    let mode = w.mode;
    let run = w.engine.run_partitioned(
        w.pull,
        w.sink,
        w.client,
        w.reporter.clone(),
        &w.options,
        w.worker,
        stop,
    );
    tokio::pin!(run);
    let outcome = tokio::select! {
        r = &mut run => r,
        _ = interrupted() => {
            eprintln!("gatelake: stopping: letting this worker's partition go (its checkpoint is saved; interrupt again to quit at once)");
            stop_handle.stop();
            tokio::select! {
                r = &mut run => r,
                _ = interrupted() => {
                    report_failure(
                        "interrupted twice: quit at once. This worker's lease runs out by itself; run the same command again to resume",
                        ExitCode::Interrupted,
                        mode,
                    );
                    return ExitCode::Interrupted;
                }
            }
        }
    };
    drop(w.reporter);
    match outcome {
        Ok(report) => {
            print_report(&report, mode, None);
            ExitCode::Success
        }
        Err(e) => {
            let code = exit_code_of(&e);
            let message = gatelake::report::error_chain(&e);
            match e.report() {
                Some(report) => {
                    print_report(report, mode, Some((&message, code)));
                    eprintln!("error: {}", gatelake::secret::redact(&message));
                }
                None => report_failure(&message, code, mode),
            }
            code
        }
    }
}

/// The exit code of a worker's failure.
pub(super) fn exit_code_of(e: &WorkerError) -> ExitCode {
    match e {
        WorkerError::Pull(p) => ExitCode::of_pull_error(p),
        WorkerError::Partition(PartitionError::Probe(_) | PartitionError::ProbeBody { .. }) => {
            ExitCode::Source
        }
        WorkerError::Partition(_)
        | WorkerError::NeedsRunKey
        | WorkerError::NotPartitioned { .. }
        | WorkerError::IncrementalPartitioned
        | WorkerError::SpecChanged { .. } => ExitCode::Usage,
        WorkerError::PartitionsFailed { .. } => ExitCode::Source,
        WorkerError::Interrupted { .. } => ExitCode::Interrupted,
    }
}

fn print_report(r: &WorkerReport, mode: OutputMode, failure: Option<(&str, ExitCode)>) {
    match mode {
        OutputMode::Json => {
            let mut out = serde_json::to_value(r).unwrap_or_default();
            if let (Some((message, code)), Some(obj)) = (failure, out.as_object_mut()) {
                obj.insert("error".into(), gatelake::secret::redact(message).into());
                obj.insert("error_kind".into(), code.kind().into());
                obj.insert("exit_code".into(), (code as u8).into());
            }
            println!("{out}");
        }
        OutputMode::Text => {
            let done = r.partitions.iter().filter(|p| p.outcome == "done").count();
            let headline = match r.status {
                "nothing_left" => format!(
                    "Nothing left: run {} of this run key is committed ({} partitions).",
                    r.run_id, r.partitions_total
                ),
                "shard_done" => format!(
                    "This worker's share is done: {done} partition(s) pulled; {} of {} of the run done, the last worker to finish commits it.",
                    r.partitions_done, r.partitions_total
                ),
                _ => format!(
                    "Pulled {} partition(s) ({} records) in {:.1}s; run {}: {} of {} partitions done{}.",
                    done,
                    r.rows(),
                    r.seconds,
                    r.run_id,
                    r.partitions_done,
                    r.partitions_total,
                    if r.committed { ", committed by this worker" } else { "" }
                ),
            };
            println!("{headline}");
            println!("Worker:   {}", r.worker);
            if let Some(m) = &r.manifest_url {
                println!("Manifest: {m}");
            }
            for p in r.partitions.iter().filter(|p| p.outcome != "done") {
                println!(
                    "  partition {}: {}{}",
                    p.id,
                    p.outcome,
                    p.error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
            }
            if !r.failed.is_empty() {
                eprintln!("Failed partitions (no _SUCCESS; run again to retry them):");
                for f in &r.failed {
                    eprintln!("  {}: {}", f.id, f.error);
                }
            }
        }
    }
}
