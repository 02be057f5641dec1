//! The binary's [`Reporter`]s: a progress bar on a terminal (pages, records, bytes, rate) and
//! plain log lines on stderr otherwise (CI logs, notebook cells). Neither writes to stdout,
//! which belongs to the final summary.

use gatelake::report::{Event, Reporter};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn resume_note(resumed: bool, committed_chunks: u64) -> String {
    if resumed {
        format!(
            " (resuming after {} committed)",
            count(committed_chunks, "chunk")
        )
    } else {
        String::new()
    }
}

/// What `--progress bar` prints when stderr is not a terminal, before falling back to plain
/// lines.
pub const BAR_WITHOUT_TERMINAL: &str =
    "gatelake: --progress bar needs a terminal on stderr; showing plain progress lines instead";

pub use gatelake::report::count;

/// Human-readable bytes: 1.2 MB.
pub fn human_bytes(n: u64) -> String {
    indicatif::DecimalBytes(n).to_string()
}

#[derive(Default)]
struct Counts {
    pages: AtomicU64,
    records: AtomicU64,
    bytes_in: AtomicU64,
    chunks: AtomicU64,
    bytes_out: AtomicU64,
}

/// A spinner with live counts, for terminals.
pub struct BarReporter {
    bar: ProgressBar,
    counts: Counts,
    started: Instant,
}

impl BarReporter {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(125));
        Self {
            bar,
            counts: Counts::default(),
            started: Instant::now(),
        }
    }

    fn refresh(&self) {
        let c = &self.counts;
        let records = c.records.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        self.bar.set_message(format!(
            "pages {} · records {} ({:.0}/s) · received {} · chunks {} ({})",
            c.pages.load(Ordering::Relaxed),
            records,
            records as f64 / secs,
            human_bytes(c.bytes_in.load(Ordering::Relaxed)),
            c.chunks.load(Ordering::Relaxed),
            human_bytes(c.bytes_out.load(Ordering::Relaxed)),
        ));
    }
}

impl Reporter for BarReporter {
    fn report(&self, event: Event) {
        match event {
            Event::PageFetched { records, bytes, .. } => {
                self.counts.pages.fetch_add(1, Ordering::Relaxed);
                self.counts.records.fetch_add(records, Ordering::Relaxed);
                self.counts.bytes_in.fetch_add(bytes, Ordering::Relaxed);
            }
            Event::ChunkCommitted { bytes, .. } | Event::ObjectLanded { bytes, .. } => {
                self.counts.chunks.fetch_add(1, Ordering::Relaxed);
                self.counts.bytes_out.fetch_add(bytes, Ordering::Relaxed);
            }
            Event::Retrying {
                page,
                attempt,
                delay,
                reason,
            } => {
                self.bar.println(format!(
                    "retrying page {page} (attempt {attempt}) in {:.1}s: {reason}",
                    delay.as_secs_f64()
                ));
            }
            Event::Warning { message } => self.bar.println(format!("warning: {message}")),
            Event::RunStarted {
                run_id,
                destination,
                resumed,
                committed_chunks,
                ..
            } => {
                self.bar.println(format!(
                    "run {run_id}{} → {destination}",
                    resume_note(resumed, committed_chunks)
                ));
            }
            Event::RunFinished { .. } => {
                self.bar.finish_and_clear();
                return;
            }
        }
        self.refresh();
    }
}

impl Drop for BarReporter {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Log lines on stderr: run start and end, every chunk, retries, warnings, and a page count
/// every 10 seconds.
pub struct PlainReporter {
    counts: Counts,
    last_line: std::sync::Mutex<Instant>,
}

impl PlainReporter {
    pub fn new() -> Self {
        Self {
            counts: Counts::default(),
            last_line: std::sync::Mutex::new(Instant::now()),
        }
    }
}

impl Reporter for PlainReporter {
    fn report(&self, event: Event) {
        match event {
            Event::RunStarted {
                run_id,
                source,
                destination,
                resumed,
                committed_chunks,
            } => {
                eprintln!(
                    "gatelake: run {run_id}{}: {source} → {destination}",
                    resume_note(resumed, committed_chunks)
                );
            }
            Event::PageFetched {
                records,
                bytes,
                page,
            } => {
                self.counts.records.fetch_add(records, Ordering::Relaxed);
                self.counts.bytes_in.fetch_add(bytes, Ordering::Relaxed);
                if let Ok(mut last) = self.last_line.lock() {
                    if last.elapsed() >= Duration::from_secs(10) {
                        *last = Instant::now();
                        eprintln!(
                            "gatelake: {}, {}, {} received",
                            count(page, "page"),
                            count(self.counts.records.load(Ordering::Relaxed), "record"),
                            human_bytes(self.counts.bytes_in.load(Ordering::Relaxed))
                        );
                    }
                }
            }
            Event::ChunkCommitted {
                seq,
                url,
                rows,
                bytes,
            } => {
                eprintln!(
                    "gatelake: chunk {seq}: {}, {} → {url}",
                    count(rows, "record"),
                    human_bytes(bytes)
                );
            }
            Event::ObjectLanded { name, url, bytes } => {
                eprintln!("gatelake: object {name}: {} → {url}", human_bytes(bytes));
            }
            Event::Retrying {
                page,
                attempt,
                delay,
                reason,
            } => {
                eprintln!(
                    "gatelake: retrying page {page} (attempt {attempt}) in {:.1}s: {reason}",
                    delay.as_secs_f64()
                );
            }
            Event::Warning { message } => eprintln!("gatelake: warning: {message}"),
            Event::RunFinished {
                run_id,
                rows,
                files,
                bytes,
            } => {
                eprintln!(
                    "gatelake: run {run_id} complete: {} in {} ({})",
                    count(rows, "record"),
                    count(files, "file"),
                    human_bytes(bytes)
                );
            }
        }
    }
}
