//! Why a pull stopped ([`PullError`]): the error every stage and the run's lifecycle return,
//! each variant naming the page, chunk or object involved.

use super::summary::RunSummary;
use crate::encode::EncodeError;
use crate::load::previous::PreviousRunError;
use crate::sink::SinkError;
use crate::source::client::SourceError;
use crate::source::extract::ExtractError;
use crate::source::paginate::PaginateError;
use crate::state::watermark::WatermarkError;
use crate::state::StateError;

/// Why a pull stopped. Every variant names the page, chunk or object involved.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("page {page} from {url}: {source}")]
    Extract {
        page: u64,
        url: String,
        #[source]
        source: ExtractError,
    },
    #[error("page {page} from {url}: {source}")]
    Paginate {
        page: u64,
        url: String,
        #[source]
        source: PaginateError,
    },
    #[error("while writing chunk {seq}: {source}")]
    Encode {
        seq: u64,
        #[source]
        source: EncodeError,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the unfinished run {run_id} of this job pulled from {saved}, but this run is configured for {configured}. Run with the original settings to finish it, or pass --restart to discard it")]
    SourceChanged {
        run_id: String,
        saved: String,
        configured: String,
    },
    #[error("interrupted: run {run_id} stopped with {} ({}) committed and its checkpoint saved. Run the same command again to resume it (or pass --restart to discard it)", crate::report::count(*chunks, "chunk"), crate::report::count(*rows, "record"))]
    Interrupted {
        run_id: String,
        chunks: u64,
        rows: u64,
    },
    #[error("incremental run: {0}")]
    Watermark(#[from] WatermarkError),
    #[error("reading the previous run to compare schemas: {0}")]
    PreviousRun(#[from] PreviousRunError),
    #[error("page {page} from {url}: {reason}. --on-bad-page skip cannot go past it: the next page's {what} is in the part of the page that could not be read")]
    Unskippable {
        page: u64,
        url: String,
        reason: String,
        what: &'static str,
    },
    /// The run stopped short of its listing (`--max-pages`, a record count that differs
    /// from the API's total): its manifest says `partial`, no `_SUCCESS` was written, and the
    /// checkpoint lets a rerun finish it. `summary` is what it did deliver.
    #[error("{reason}")]
    Incomplete {
        reason: String,
        summary: Box<RunSummary>,
    },
    /// The request template (`--method`, `--body`, `--query`) cannot be used with the style.
    #[error("{0}")]
    Request(#[from] crate::source::request::RequestError),
    #[error("internal error: {0}")]
    Internal(String),
}
