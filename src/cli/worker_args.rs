//! How this process takes part in a partitioned run: `--worker` (one of many processes on
//! one run), `--shard K/N` (a fixed share of the partitions), `--run-key` (what identifies the
//! run across its workers), `--lease` (how long a partition stays claimed without a
//! renewal) and `--worker-id`. Flattened into `pull`; resolved into the library's
//! [`WorkerOptions`]. None of these is part of the job's definition, so none is a job-file key.

use super::resolver::{duration, Resolver, UsageError};
use clap::Args;
use gatelake::run::worker::{Shard, WorkerOptions, DEFAULT_LEASE};
use std::time::Duration;

/// The shortest `--lease`: renewals go every third of it, and must get through in time.
pub const MIN_LEASE: Duration = Duration::from_secs(1);

/// CI variables a run key is taken from when `--run-key` is not given: every attempt of one
/// workflow run shares it (a re-run of failed jobs resumes the same run).
const CI_RUN_KEY: &str = "GITHUB_RUN_ID";

/// Flags of a worker of a partitioned run.
#[derive(Debug, Args, Clone, Default)]
pub struct WorkerArgs {
    /// Join the job's partitioned run as one of many workers (Spark tasks, Kubernetes pods,
    /// CI legs): claim partitions by lease, pull them, and commit the run when the last is
    /// done. Needs a run key (--run-key).
    #[arg(long, env = "GATELAKE_WORKER")]
    pub worker: bool,

    /// Only claim partitions whose index % N == K (still taking over abandoned ones of that
    /// share), for engines that assign work statically, e.g. 2/8.
    #[arg(long, env = "GATELAKE_SHARD", value_name = "K/N")]
    pub shard: Option<String>,

    /// What identifies this run across its workers: the same for every worker and every
    /// retry of one engine run (a Spark application id, a Kubernetes Job uid). A worker whose
    /// run was already committed exits 0 instead of starting another. [default:
    /// GITHUB_RUN_ID in GitHub Actions]
    #[arg(long, env = "GATELAKE_RUN_KEY", value_name = "KEY")]
    pub run_key: Option<String>,

    /// How long a claimed partition stays claimed without a renewal (renewed every third of
    /// it); a worker that dies holds its partition this long. [default: 60s]
    #[arg(long, env = "GATELAKE_LEASE", value_name = "DURATION")]
    pub lease: Option<String>,

    /// The name this worker's leases and `gatelake status` show. [default: host/pid]
    #[arg(long, env = "GATELAKE_WORKER_ID", value_name = "NAME")]
    pub worker_id: Option<String>,
}

impl WorkerArgs {
    /// The worker's options; `partitioned`: whether the job has a partition spec (the
    /// worker flags mean nothing without one).
    pub fn resolve(
        &self,
        r: &mut Resolver,
        partitioned: bool,
    ) -> Result<WorkerOptions, UsageError> {
        let given = [
            ("worker", self.worker),
            ("shard", self.shard.is_some()),
            ("lease", self.lease.is_some()),
        ];
        if !partitioned {
            if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
                return Err(UsageError(format!(
                    "--{flag} is for a partitioned job, and this job does not split: add a partition spec (--window-start/--window-end/--window, --keys or --keys-file, --ranges N, or a [partitions] table in the job file)"
                )));
            }
        }
        let shard = match &self.shard {
            Some(text) => Some(Shard::parse(text).map_err(UsageError)?),
            None => None,
        };
        if shard.is_some() && !self.worker {
            return Err(UsageError(
                "--shard K/N picks a worker's share of a partitioned run: add --worker (and the run's --run-key)".into(),
            ));
        }
        let lease = match self.lease.clone() {
            Some(text) => duration("lease", Some(text))?,
            None => DEFAULT_LEASE,
        };
        if lease < MIN_LEASE {
            return Err(UsageError(format!(
                "--lease {}: too short; a lease must last at least {} s (renewals go every third of it)",
                self.lease.as_deref().unwrap_or_default(),
                MIN_LEASE.as_secs()
            )));
        }
        let run_key = self
            .run_key
            .clone()
            .filter(|k| !k.trim().is_empty())
            .or_else(|| {
                std::env::var(CI_RUN_KEY)
                    .ok()
                    .filter(|k| !k.trim().is_empty())
                    .map(|id| format!("github-{id}"))
            });
        if partitioned {
            r.pick("worker", Some(self.worker), None, None);
            if let Some(s) = shard {
                r.pick("shard", Some(s), None, None);
            }
            if let Some(k) = &run_key {
                r.pick("run_key", Some(k.clone()), None, None);
            }
            r.pick(
                "lease",
                self.lease.clone(),
                None,
                Some(format!("{}s", lease.as_secs())),
            );
        }
        Ok(WorkerOptions {
            worker: self.worker,
            shard,
            run_key,
            lease,
            worker_id: self.worker_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        w: WorkerArgs,
    }

    fn resolve(argv: &[&str], partitioned: bool) -> Result<WorkerOptions, UsageError> {
        let matches = Cli::command().get_matches_from(argv);
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let mut r = Resolver::new(&matches);
        cli.w.resolve(&mut r, partitioned)
    }

    #[test]
    fn worker_flags_resolve_and_bad_ones_say_what_to_do() {
        let w = resolve(
            &[
                "x",
                "--worker",
                "--shard",
                "1/3",
                "--run-key",
                "k",
                "--lease",
                "5s",
            ],
            true,
        )
        .unwrap();
        assert!(w.worker);
        assert_eq!(w.shard, Some(Shard { index: 1, count: 3 }));
        assert_eq!(w.run_key.as_deref(), Some("k"));
        assert_eq!(w.lease, Duration::from_secs(5));
        let err = resolve(&["x", "--worker"], false).unwrap_err();
        assert!(err.0.contains("partition spec"), "{}", err.0);
        let err = resolve(&["x", "--shard", "1/3"], true).unwrap_err();
        assert!(err.0.contains("add --worker"), "{}", err.0);
        let err = resolve(&["x", "--worker", "--lease", "100ms"], true).unwrap_err();
        assert!(err.0.contains("too short"), "{}", err.0);
        let err = resolve(&["x", "--worker", "--shard", "3/3"], true).unwrap_err();
        assert!(err.0.contains("K/N"), "{}", err.0);
    }
}
