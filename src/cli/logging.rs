//! Log output on stderr (`-v`, `GATELAKE_LOG`), and the reporter wrapper that turns the
//! engine's events into log lines.
//!
//! Levels: nothing below a warning by default; `-v` adds the events that matter to someone
//! watching a run (the identity used per hop, each chunk committed, each checkpoint advance,
//! each retry); `-vv` adds debug detail (each request and its answer, URLs redacted); `-vvv`
//! trace. Only gatelake's own modules are raised: other crates' debug output can include
//! request headers, which may carry credentials.
//!
//! Colour codes are written only when stderr is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>): CI logs and notebook cells show escape codes as garbage.

use super::progress::count;
use gatelake::report::{Event, Reporter};
use std::io::IsTerminal;
use std::sync::Arc;

/// The default filter for a `-v` count.
pub fn filter_for(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "gatelake=info,warn",
        2 => "gatelake=debug,warn",
        _ => "gatelake=trace,warn",
    }
}

/// Whether log lines may carry ANSI colour codes.
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Install the log subscriber for the whole process.
pub fn init(verbose: u8) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATELAKE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter_for(verbose)));
    let ansi = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// Passes every event on to `inner` (the progress display) and logs the ones `-v` and `-vv`
/// promise. Events carry no secrets (URLs in them are redacted by the engine).
pub struct Logged {
    inner: Arc<dyn Reporter>,
    /// Whether `inner` shows warnings itself (every display but `--progress none`).
    inner_shows_warnings: bool,
}

impl Logged {
    pub fn new(inner: Arc<dyn Reporter>, inner_shows_warnings: bool) -> Self {
        Self {
            inner,
            inner_shows_warnings,
        }
    }
}

impl Reporter for Logged {
    fn report(&self, event: Event) {
        match &event {
            Event::RunStarted {
                run_id,
                source,
                destination,
                resumed,
                committed_chunks,
            } => tracing::info!(
                "run {run_id} {}: {source} → {destination}",
                if *resumed {
                    format!(
                        "resumed after {} committed",
                        count(*committed_chunks, "chunk")
                    )
                } else {
                    "started".to_owned()
                }
            ),
            Event::PageFetched {
                page,
                records,
                bytes,
            } => tracing::debug!("page {page}: {}, {bytes} bytes", count(*records, "record")),
            Event::Retrying {
                page,
                attempt,
                delay,
                reason,
            } => tracing::info!(
                "retrying page {page} (attempt {attempt}) in {:.1}s: {reason}",
                delay.as_secs_f64()
            ),
            Event::ChunkCommitted {
                seq,
                url,
                rows,
                bytes,
            } => tracing::info!(
                "chunk {seq} committed: {}, {bytes} bytes → {url}",
                count(*rows, "record")
            ),
            Event::ObjectLanded { name, url, bytes } => {
                tracing::info!("object {name} landed: {bytes} bytes → {url}")
            }
            // A warning is something the user must see even with `--progress none`; the
            // other displays show it themselves.
            Event::Warning { message } if !self.inner_shows_warnings => {
                tracing::warn!("{message}")
            }
            Event::Warning { .. } => {}
            Event::RunFinished {
                run_id,
                rows,
                files,
                ..
            } => tracing::info!(
                "run {run_id} complete: {} in {}",
                count(*rows, "record"),
                count(*files, "file")
            ),
        }
        self.inner.report(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn verbosity_raises_only_our_own_modules() {
        assert_eq!(filter_for(0), "warn");
        assert!(filter_for(1).starts_with("gatelake=info"));
        assert!(filter_for(2).starts_with("gatelake=debug"));
        for v in 1..4 {
            assert!(filter_for(v).ends_with(",warn"), "{}", filter_for(v));
        }
    }
}
