//! `gatelake status`: where a partitioned job's run stands, read from the lake alone (the run
//! record and every partition's lease, `gatelake::state::partitions`), so it works from any
//! machine that can read the destination while workers run elsewhere (Spark tasks,
//! Kubernetes pods, CI legs). It takes `pull`'s flags, so `--job J` finds the destination and
//! the storage identity exactly as the workers did; nothing is written and the API is never
//! called.
//!
//! Exit code 0 whenever the state could be read, whatever it says (a failed partition is
//! news, not a failure of `status`); 2 for bad settings, 3 or 5 when the lake cannot be read.

use super::args::{OutputMode, PullArgs};
use super::exit_code::ExitCode;
use super::settings;
use gatelake::engine::{DestinationError, Engine};
use gatelake::state::partitions::{
    read_partitions, read_run, LeaseState, PartitionStatus, RunRecord,
};
use serde_json::{json, Value};

/// Partitions listed by name in the text output, per state, before "… and N more".
const LISTED: usize = 20;

/// Run `gatelake status` with `pull`'s flags.
pub async fn run(args: &PullArgs, matches: &clap::ArgMatches) -> ExitCode {
    let resolved = match settings::resolve_pull(args, matches) {
        Ok(r) => r,
        Err(e) => return super::usage_error_pub(&e, args.out.output),
    };
    let mode = resolved.output;
    if let Err(e) = super::check_destination(&resolved.dest, &mut Vec::new()) {
        return super::usage_error_pub(&e, Some(mode));
    }
    match read(&resolved.dest, resolved.identity.clone()).await {
        Ok((destination, state)) => {
            let job = resolved.pull.job.clone();
            match mode {
                OutputMode::Json => println!("{}", to_json(&job, &destination, state.as_ref())),
                OutputMode::Text => print!("{}", to_text(&job, &destination, state.as_ref())),
            }
            ExitCode::Success
        }
        Err((message, code)) => {
            super::report_failure(&message, code, mode);
            code
        }
    }
}

type RunState = (RunRecord, Vec<PartitionStatus>);

/// The destination's URL and its run with every partition (`None`: no partitioned run yet).
async fn read(
    dest: &str,
    identity: gatelake::engine::IdentitySettings,
) -> Result<(String, Option<RunState>), (String, ExitCode)> {
    let sink = Engine::new(identity)
        .open_destination(dest)
        .await
        .map_err(|e| {
            let code = match &e {
                DestinationError::Identity(_) => ExitCode::Auth,
                DestinationError::Sink(s) => ExitCode::of_sink_error(s),
            };
            (e.to_string(), code)
        })?;
    let destination = sink.root_url();
    let state_error = |e: gatelake::state::StateError| {
        (
            format!("reading the run's state under {destination}: {e}"),
            ExitCode::Sink,
        )
    };
    let Some(run) = read_run(sink.as_ref()).await.map_err(state_error)? else {
        return Ok((destination, None));
    };
    let partitions = read_partitions(sink.as_ref(), &run)
        .await
        .map_err(state_error)?;
    Ok((destination, Some((run, partitions))))
}

/// How many partitions are in each state, in the order they are shown.
fn counts(partitions: &[PartitionStatus]) -> Vec<(LeaseState, usize)> {
    [
        LeaseState::Done,
        LeaseState::Working,
        LeaseState::Waiting,
        LeaseState::Failed,
    ]
    .into_iter()
    .map(|s| (s, partitions.iter().filter(|p| p.state == s).count()))
    .collect()
}

fn to_json(job: &str, destination: &str, state: Option<&RunState>) -> Value {
    let Some((run, partitions)) = state else {
        return json!({
            "job": job,
            "destination": destination,
            "run": Value::Null,
            "message": "no partitioned run yet",
        });
    };
    let counted: serde_json::Map<String, Value> = counts(partitions)
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    json!({
        "job": job,
        "destination": destination,
        "run": {
            "run_id": run.run_id,
            "run_key": run.run_key,
            "status": run.status,
            "created_at": run.created_at,
            "committed_at": run.committed_at,
        },
        "partitions_total": partitions.len(),
        "counts": counted,
        "rows_done": done_rows(partitions),
        "partitions": partitions,
    })
}

fn done_rows(partitions: &[PartitionStatus]) -> u64 {
    partitions
        .iter()
        .filter(|p| p.state == LeaseState::Done)
        .filter_map(|p| p.rows)
        .sum()
}

/// What a partition covers, in a few words: `window from=… to=…`, `keys a,b`,
/// `range first=… last=…` (from the covers' own serialized form, so a new kind shows itself).
fn covers_text(p: &PartitionStatus) -> String {
    fn flat(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().map(flat).collect::<Vec<_>>().join(","),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| format!("{k}={}", flat(v)))
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        }
    }
    match serde_json::to_value(&p.covers) {
        Ok(Value::Object(map)) => map
            .iter()
            .map(|(kind, v)| format!("{kind} {}", flat(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Ok(other) => flat(&other),
        Err(_) => String::new(),
    }
}

/// One line per partition of interest: what it covers and its state's particulars.
fn partition_line(p: &PartitionStatus) -> String {
    let mut line = format!("    {:<28} {}", p.id, covers_text(p));
    match p.state {
        LeaseState::Working => {
            let who = p.worker.as_deref().unwrap_or("unknown worker");
            let until = p.expires_at.as_deref().unwrap_or("?");
            line.push_str(&format!("  by {who}, lease until {until}"));
            if p.expired {
                line.push_str(" (expired: the next worker to look takes it over)");
            }
        }
        LeaseState::Failed => {
            let error = p.error.as_deref().unwrap_or("no error recorded");
            line.push_str(&format!(
                "\n      error: {}",
                gatelake::secret::redact(error)
            ));
        }
        LeaseState::Done => {
            line.push_str(&format!(
                "  {} rows, {} files",
                p.rows.unwrap_or(0),
                p.files.unwrap_or(0)
            ));
        }
        LeaseState::Waiting => {}
    }
    line
}

fn to_text(job: &str, destination: &str, state: Option<&RunState>) -> String {
    let Some((run, partitions)) = state else {
        return format!(
            "job {job}: no partitioned run yet under {destination} (the first `gatelake pull --job {job}` or worker creates it)\n"
        );
    };
    let mut out = String::new();
    let status = serde_json::to_value(run.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    out.push_str(&format!(
        "job {job}: run {} ({status}), {} partitions, under {destination}\n",
        run.run_id,
        partitions.len()
    ));
    if let Some(key) = &run.run_key {
        out.push_str(&format!("  run key {key}, created {}", run.created_at));
        if let Some(at) = &run.committed_at {
            out.push_str(&format!(", committed {at}"));
        }
        out.push('\n');
    }
    let counted = counts(partitions);
    out.push_str(&format!(
        "  {}; {} rows in done partitions\n",
        counted
            .iter()
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
        done_rows(partitions)
    ));
    // Done partitions are listed only when nothing else is left to say about them.
    for state in [LeaseState::Failed, LeaseState::Working, LeaseState::Waiting] {
        let of_state: Vec<&PartitionStatus> =
            partitions.iter().filter(|p| p.state == state).collect();
        if of_state.is_empty() {
            continue;
        }
        out.push_str(&format!("  {}:\n", state.as_str()));
        for p in of_state.iter().take(LISTED) {
            out.push_str(&partition_line(p));
            out.push('\n');
        }
        if of_state.len() > LISTED {
            out.push_str(&format!("    … and {} more\n", of_state.len() - LISTED));
        }
    }
    if counted
        .iter()
        .any(|(s, n)| *s == LeaseState::Failed && *n > 0)
    {
        out.push_str(&format!(
            "  a worker started now retries the failed partitions: gatelake pull --job {job} --worker (with the run's --run-key)\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatelake::partition::{Covers, Partition};
    use gatelake::state::RunStatus;

    fn partition(i: usize, state: LeaseState) -> PartitionStatus {
        PartitionStatus {
            index: i,
            id: format!("w-2026010{i}T000000Z"),
            covers: Covers::Window {
                from: format!("2026-01-0{i}T00:00:00Z"),
                to: format!("2026-01-0{}T00:00:00Z", i + 1),
            },
            state,
            expired: false,
            worker: (state == LeaseState::Working).then(|| "spark-task-1-attempt-0@h".into()),
            expires_at: (state == LeaseState::Working).then(|| "2026-12-07T04:00:00Z".into()),
            epoch: 1,
            error: (state == LeaseState::Failed).then(|| "HTTP 404 from the API".into()),
            files: (state == LeaseState::Done).then_some(2),
            rows: (state == LeaseState::Done).then_some(150),
            pages: (state == LeaseState::Done).then_some(3),
            updated_at: "2026-12-07T03:59:00Z".into(),
        }
    }

    fn state() -> RunState {
        let partitions = vec![
            partition(1, LeaseState::Done),
            partition(2, LeaseState::Working),
            partition(3, LeaseState::Waiting),
            partition(4, LeaseState::Failed),
            partition(5, LeaseState::Done),
        ];
        let run = RunRecord {
            version: 1,
            job: "orders".into(),
            run_id: "20261207T030000Z".into(),
            run_key: Some("gh-42".into()),
            joined_keys: Vec::new(),
            spec_fingerprint: "f".into(),
            status: RunStatus::Running,
            partitions: partitions
                .iter()
                .map(|p| Partition {
                    id: p.id.clone(),
                    covers: p.covers.clone(),
                    request: Default::default(),
                })
                .collect(),
            created_at: "2026-12-07T03:00:00Z".into(),
            committed_at: None,
        };
        (run, partitions)
    }

    #[test]
    fn text_counts_every_state_and_names_who_holds_what_and_why_it_failed() {
        let s = state();
        let text = to_text("orders", "/lake/orders", Some(&s));
        assert!(
            text.contains("run 20261207T030000Z (running), 5 partitions"),
            "{text}"
        );
        assert!(
            text.contains("2 done, 1 working, 1 waiting, 1 failed; 300 rows"),
            "{text}"
        );
        assert!(
            text.contains("by spark-task-1-attempt-0@h, lease until 2026-12-07T04:00:00Z"),
            "{text}"
        );
        assert!(text.contains("error: HTTP 404 from the API"), "{text}");
        assert!(
            text.contains("window from=2026-01-03T00:00:00Z to=2026-01-04T00:00:00Z"),
            "{text}"
        );
        assert!(text.contains("retries the failed partitions"), "{text}");
        // Done partitions are counted, not listed.
        assert!(!text.contains("w-20260101T000000Z"), "{text}");
        let none = to_text("orders", "/lake/orders", None);
        assert!(none.contains("no partitioned run yet"), "{none}");
    }

    #[test]
    fn json_has_the_run_the_counts_and_every_partition() {
        let s = state();
        let v = to_json("orders", "/lake/orders", Some(&s));
        assert_eq!(v["run"]["run_id"], "20261207T030000Z");
        assert_eq!(v["run"]["status"], "running");
        assert_eq!(v["counts"]["done"], 2);
        assert_eq!(v["counts"]["failed"], 1);
        assert_eq!(v["rows_done"], 300);
        assert_eq!(v["partitions"].as_array().unwrap().len(), 5);
        assert_eq!(v["partitions"][1]["worker"], "spark-task-1-attempt-0@h");
        assert_eq!(v["partitions"][3]["error"], "HTTP 404 from the API");
        let none = to_json("orders", "/lake/orders", None);
        assert!(none["run"].is_null());
    }

    #[test]
    fn a_long_list_is_cut_with_a_count() {
        let (run, _) = state();
        let many: Vec<PartitionStatus> = (0..45)
            .map(|i| partition(i % 9 + 1, LeaseState::Waiting))
            .collect();
        let text = to_text("orders", "/lake/orders", Some(&(run, many)));
        assert!(text.contains("… and 25 more"), "{text}");
    }
}
