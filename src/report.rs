//! Progress reporting: the engine emits [`Event`]s through the [`Reporter`] trait and never
//! decides how they are shown. The binary implements it with progress bars on a terminal and
//! plain log lines otherwise; tests implement it with a recorder. Events carry no secrets:
//! URLs in them are already redacted.

use serde::Serialize;
use std::time::Duration;

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run started (or resumed) and will write under `destination`.
    RunStarted {
        run_id: String,
        source: String,
        destination: String,
        /// Whether an interrupted run is being resumed.
        resumed: bool,
        /// Chunks already committed by earlier attempts.
        committed_chunks: u64,
    },
    /// A page arrived and its records were extracted.
    PageFetched {
        page: u64,
        records: u64,
        /// Bytes of the response body after decompression.
        bytes: u64,
    },
    /// A request is being retried after a transient failure.
    Retrying {
        page: u64,
        attempt: u32,
        #[serde(with = "duration_secs")]
        delay: Duration,
        reason: String,
    },
    /// A chunk was written to the destination under its final name.
    ChunkCommitted {
        seq: u64,
        url: String,
        rows: u64,
        bytes: u64,
    },
    /// An object landed as-is under its name (`url`, redacted), verified.
    ObjectLanded {
        name: String,
        url: String,
        bytes: u64,
    },
    /// Something the user should know that does not stop the run.
    Warning { message: String },
    /// The manifest and `_SUCCESS` marker are written; the run is complete.
    RunFinished {
        run_id: String,
        rows: u64,
        files: u64,
        bytes: u64,
    },
}

mod duration_secs {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Receives the engine's events. Implementations must be cheap: events are sent from the
/// pipeline's hot path (one per page and per chunk).
pub trait Reporter: Send + Sync {
    fn report(&self, event: Event);
}

/// `1 record`, `2 records`: a count with its noun, singular for exactly one (every noun a run
/// counts takes a plain `s`).
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// An error and its sources, joined with `: `, without repeating a message a wrapper already
/// includes: transport and SDK errors often hide the useful part (an untrusted certificate, a
/// refused connection) in a source.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A reporter that drops every event (library use, tests that do not care).
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentReporter;

impl Reporter for SilentReporter {
    fn report(&self, _event: Event) {}
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_singular_for_one_only() {
        assert_eq!(super::count(0, "file"), "0 files");
        assert_eq!(super::count(1, "file"), "1 file");
        assert_eq!(super::count(2, "page"), "2 pages");
    }
}
