//! One unit of a run, from its checkpoint to the end of its listing, resumable at every chunk
//! (the run around it, from the job's lock to `_SUCCESS`, is `crate::run`). Three stages run
//! at once, each in its own file, joined by bounded channels:
//!
//! ```text
//! fetch (async)  ──pages (cap 4)──►  encode (blocking thread)  ──chunks (cap 2)──►  upload (async, N at once)
//!                                                                                       │
//!                                                        checkpoint (after each contiguous commit)
//! ```
//!
//! - The fetch stage asks for the next page as soon as the current page's next request is
//!   known, before its records are encoded, so a sequential (cursor) API is never waiting on
//!   compression: the page channel holds a few pages, so fetching runs ahead of encoding.
//! - With `--concurrency N`, offset and page-number pulls keep up to N requests in flight
//!   for the pages predicted to come next; pages are still located and handed on in order,
//!   and a wrong prediction only costs the cancelled requests (see `fetch`).
//! - The bounded channels are the backpressure: when compression or upload is the slow
//!   stage, fetch waits, and memory stays at a few pages plus a few chunks however large the
//!   pull is.
//! - Every chunk carries its resume point: the request after its last page. Chunks upload in
//!   parallel, but the checkpoint only advances over the contiguous prefix of committed
//!   chunks, so whatever is killed, the checkpoint names a request from which resuming loses
//!   and repeats nothing: pages before it are in committed chunks, pages after it are not.
//! - A stage whose downstream has gone away stops quietly; only the stage that actually failed
//!   reports an error, so the user sees the cause, not its echoes.
//! - The last, partial chunk is written only when the fetch stage says the listing ended; a
//!   stop (Ctrl-C, an error) abandons it, and a resumed run fetches its pages again.

mod encode;
mod error;
mod fetch;
mod lineage;
mod listing;
mod messages;
pub mod sample;
mod stop;
mod summary;
mod upload;

pub use error::PullError;
pub(crate) use fetch::{paginator_for, request_for};
pub use stop::{StopHandle, StopSignal};
pub use summary::RunSummary;

use encode::{encode_stage, EncodeInput};
use fetch::{fetch_stage, CommittedSoFar, FetchInput};
use messages::{PageMsg, UploadMsg};
use upload::{upload_stage, UploadInput};

use crate::config::PullConfig;
use crate::encode::chunk::ChunkLimits;
use crate::encode::schema::Schema;
use crate::report::{Event, Reporter};
use crate::sink::Sink;
use crate::source::client::ApiClient;
use crate::state::watermark::WatermarkTracker;
use crate::state::{Checkpoint, CheckpointStore};
use std::sync::Arc;
use tokio::sync::mpsc;
use url::Url;

/// What one unit's pull works from.
pub struct UnitInput<'a> {
    pub config: &'a PullConfig,
    pub sink: Arc<dyn Sink>,
    pub client: ApiClient,
    pub reporter: Arc<dyn Reporter>,
    pub stop: StopSignal,
    /// Where the unit's checkpoint is kept, and the checkpoint as last saved.
    pub store: CheckpointStore,
    pub checkpoint: Checkpoint,
    /// The first request to make (the checkpoint's next request); `None`: the listing
    /// already ended.
    pub start: Option<Url>,
    /// The columns of the last completed run, to compare this run's with (csv/parquet).
    pub previous_schema: Option<Schema>,
    /// How the unit's data files are named: `part` for a single pull (`part-00000.<ext>`),
    /// `part-<partition>-<epoch>` for a partition of a partitioned run.
    pub chunk_stem: String,
}

/// A unit whose listing ended (or was capped), with every page in a committed chunk.
pub struct UnitEnd {
    pub store: CheckpointStore,
    /// The unit's checkpoint, with the listing's notes and the warnings they gave.
    pub checkpoint: Checkpoint,
    /// Why the unit is partial (`--max-pages`, a record count that differs from the API's
    /// total), as the message the user sees; `None`: it got its whole listing.
    pub partial: Option<String>,
    /// The lineage of the pages after the unit's last chunk (in no chunk: an empty last
    /// page), for the run's `_lineage.jsonl.gz`; the other pages' are stored beside their
    /// chunks.
    pub lineage_tail: Vec<crate::load::lineage::PageLine>,
}

/// Pull one unit: run the fetch, encode and upload stages until the listing ends, then judge
/// whether it got the whole listing. A stopped unit returns [`PullError::Interrupted`] with
/// its checkpoint saved.
pub async fn pull_unit(input: UnitInput<'_>) -> Result<UnitEnd, PullError> {
    let UnitInput {
        config,
        sink,
        client,
        reporter,
        stop,
        store,
        checkpoint: cp,
        start,
        previous_schema,
        chunk_stem,
    } = input;
    let run_id = cp.run_id.clone();
    // Every page's request, and the checkpoint's copy of the next one, come from the
    // template bound to this run (its id and start time are the same after a resume).
    let request = Arc::new(request_for(&config.source, &cp.run_id, &cp.started_at)?);
    let client = client.with_request((*request).clone());
    let (page_tx, page_rx) = mpsc::channel::<PageMsg>(4);
    let (chunk_tx, chunk_rx) = mpsc::channel::<UploadMsg>(2);
    // Each stage is its own task, so they run on different threads: a slow page parse never
    // delays reporting or checkpointing a finished upload, and vice versa.
    let fetch = tokio::spawn(fetch_stage(FetchInput {
        source: config.source.clone(),
        client,
        reporter: reporter.clone(),
        pages: page_tx,
        start,
        before: CommittedSoFar {
            pages: cp.pages,
            notes: cp.listing.clone(),
            rows: cp.rows(),
        },
        stop: stop.clone(),
    }));
    let encode = {
        let tracker = match &config.incremental {
            Some(inc) => Some(WatermarkTracker::new(
                &inc.field,
                inc.lag,
                cp.since.as_ref(),
                cp.watermark.as_ref(),
            )?),
            None => None,
        };
        let input = EncodeInput {
            options: config.output.encode,
            limits: ChunkLimits {
                max_bytes: config.output.chunk_bytes,
                max_rows: config.output.chunk_rows,
            },
            first_seq: cp.next_seq,
            schema: cp.schema.clone(),
            schema_options: config.output.schema.clone(),
            previous: previous_schema,
            tracker,
            pages: page_rx,
            chunks: chunk_tx,
        };
        tokio::task::spawn_blocking(move || encode_stage(input))
    };
    let upload = tokio::spawn(upload_stage(UploadInput {
        sink,
        store,
        checkpoint: cp,
        extension: config.output.encode.extension(),
        chunk_stem,
        concurrency: config.upload_concurrency.max(1),
        reporter: reporter.clone(),
        chunks: chunk_rx,
        request,
    }));

    let (fetched, encoded, uploaded) = tokio::join!(fetch, encode, upload);
    let joined =
        |stage: &str, e: tokio::task::JoinError| PullError::Internal(format!("{stage} task: {e}"));
    // The stage that failed is the cause; the others only saw a closed channel.
    let end = fetched.map_err(|e| joined("fetch", e))??;
    let lineage_tail = encoded.map_err(|e| joined("encoder", e))??;
    let (store, mut cp) = uploaded.map_err(|e| joined("upload", e))??;
    if !end.ended {
        return Err(PullError::Interrupted {
            run_id,
            chunks: cp.next_seq,
            rows: cp.rows(),
        });
    }

    // Every page is in a committed chunk now; the fetch stage's notes are the unit's.
    cp.listing = end.notes;
    let verdict = listing::judge(&config.source, &cp.listing, end.capped, cp.rejected.len());
    for w in verdict.warnings {
        reporter.report(Event::Warning { message: w.clone() });
        if !cp.listing.warnings.contains(&w) {
            cp.listing.warnings.push(w);
        }
    }
    Ok(UnitEnd {
        store,
        checkpoint: cp,
        partial: verdict.partial,
        lineage_tail,
    })
}
