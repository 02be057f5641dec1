//! What survives a killed run: the checkpoint (`_state/checkpoint.json`, advanced after every
//! committed chunk with a conditional write) and the job lock (`_state/lock`: a blob lease on
//! Azure, an OS file lock on a local folder), so that one writer works on a job at a time and a
//! new run resumes an unfinished one with no record lost or written twice.
//!
//! The protocol (DESIGN.md, "The lake layout and commit protocol"):
//! 1. take the job's lock; a second concurrent run fails at once, naming the holder;
//! 2. read the checkpoint: an unfinished run resumes with the same run id, its next chunk
//!    sequence and its saved next request; chunks at or above that sequence are leftovers of
//!    the crash and are removed;
//! 3. after each chunk is stored under its final name, advance the checkpoint over the
//!    contiguous prefix of committed chunks (If-Match on the ETag last written);
//! 4. finish: manifest, `_SUCCESS`, then the checkpoint marked complete.

pub mod checkpoint;
pub mod entries;
pub mod fresh;
pub mod lock;
pub mod objects;
pub mod partitions;
pub mod records;
pub mod run_id;
pub mod store;
pub mod watermark;

pub use checkpoint::{Checkpoint, RunStatus, Watermark, CHECKPOINT_VERSION};
pub use store::{CheckpointStore, StateError};

/// Where the job's state lives, relative to the destination.
pub const STATE_DIR: &str = "_state";
pub const CHECKPOINT_PATH: &str = "_state/checkpoint.json";
pub const LOCK_PATH: &str = "_state/lock";
