//! Incremental runs: the record field whose growing value becomes the watermark, the query
//! parameter the next run sends it in, and the lag it asks again for.

use crate::cli::args::PullArgs;
use crate::cli::job_spec::JobSpec;
use crate::cli::resolver::{duration, usage, Resolver, UsageError};
use gatelake::config::Incremental;

/// `--since-field`, `--since-param` (both or neither) and `--lag`.
pub(super) fn resolve_incremental(
    r: &mut Resolver<'_>,
    args: &PullArgs,
    job: &JobSpec,
) -> Result<Option<Incremental>, UsageError> {
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
    match (since_field, since_param) {
        (Some(field), Some(param)) => Ok(Some(Incremental {
            field,
            param,
            lag: duration("lag", r.pick("lag", args.lag.clone(), job.lag.clone(), Some("0s".into())))?,
        })),
        (None, None) => Ok(None),
        _ => usage("incremental runs need both --since-field (the record's growing value) and --since-param (the query parameter to send it in)"),
    }
}
