//! The Blob endpoint of an ADLS Gen2 (or plain Blob Storage) account as a destination.
//! (Being implemented: see `location.rs`, `shared_key.rs`, `auth.rs`.)

use super::SinkError;

/// Placeholder type until the Azure backend lands in this same change.
#[derive(Debug)]
pub struct AzureSink;

#[allow(dead_code)]
fn _unused(_: SinkError) {}
