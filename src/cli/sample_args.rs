//! `pull --sample N` and `--preview-dir`: try a pull on its first pages before the real one
//! (run by `sample.rs`). Flattened into `PullArgs`, so every pull flag and the job file apply.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args, Clone, Default)]
pub struct SampleArgs {
    /// Fetch only the first N pages, write nothing to the destination, and report records and
    /// bytes per page, the inferred columns (types, nulls, widths), every format and codec's
    /// size and speed on the sample, and — when the API reports a total (--total-path) — the
    /// run's estimated size, chunk count and duration with a chunk size for Synapse.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,

    /// With --sample: also write the sample, encoded as the pull would encode it, and the
    /// report (sample.json) into this local folder. Nothing is ever written to --dest.
    #[arg(long, value_name = "DIR", requires = "sample")]
    pub preview_dir: Option<PathBuf>,
}
