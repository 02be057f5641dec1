//! A run's units. A run is a set of units, each a piece of work with its own checkpoint that is
//! pulled to its end (or stopped, resumable) on its own; the run commits once, when every unit
//! is done (`super::commit`). Today a run has exactly one unit, the listing of a single pull
//! (its cursor chain, checkpointed in the job's `_state/checkpoint.json` under the job's lock).
//! A partition of a job, or an object of an S3 bucket, is another [`Unit`] in a file of its
//! own, with its own checkpoint and lease.

use crate::pipeline::{PullError, UnitEnd, UnitInput};
use std::future::Future;

/// A piece of a run's work with its own checkpoint.
pub trait Unit {
    /// Pull the unit to the end of its work. A stopped unit returns
    /// [`PullError::Interrupted`] with its checkpoint saved, so a rerun resumes it.
    fn work(self) -> impl Future<Output = Result<UnitEnd, PullError>> + Send;
}

/// The listing of a single pull: every page from the checkpoint's next request to the last,
/// through the pipeline's fetch, encode and upload stages.
pub struct ListingUnit<'a>(pub UnitInput<'a>);

impl Unit for ListingUnit<'_> {
    fn work(self) -> impl Future<Output = Result<UnitEnd, PullError>> + Send {
        crate::pipeline::pull_unit(self.0)
    }
}
