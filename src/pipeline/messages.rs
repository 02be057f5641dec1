//! What the stages hand each other: pages from fetch to encode ([`PageMsg`]), chunks and pages
//! set aside from encode to upload ([`UploadMsg`]), each chunk with its resume point
//! ([`Resume`]).

use crate::encode::chunk::FinishedChunk;
use crate::encode::drift::SchemaChange;
use crate::encode::schema::Schema;
use crate::load::lineage::PageLine;
use crate::source::extract::ExtractedPage;
use crate::state::checkpoint::{ListingNotes, Watermark};
use crate::state::entries::RejectedPage;
use bytes::Bytes;
use url::Url;

/// Where a resumed run picks up: the request after a chunk's last page.
#[derive(Debug, Clone)]
pub(super) struct Resume {
    /// The URL of the chunk's last page.
    pub(super) last_request: Url,
    /// The request after it; `None` when the listing ended there.
    pub(super) next_request: Option<Url>,
    /// Pages fetched up to and including the chunk's last page.
    pub(super) pages: u64,
    /// The run's listing notes as of that page.
    pub(super) notes: ListingNotes,
}

// `End` is sent once per run: boxing every page to shrink it would cost an allocation per
// page for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum PageMsg {
    Page {
        page: ExtractedPage,
        number: u64,
        url: Url,
        next: Option<Url>,
        notes: ListingNotes,
        /// How the page was fetched, for the run's lineage.
        lineage: PageLine,
    },
    /// A page set aside by `--on-bad-page skip`: an empty page for the chunk writer (so
    /// resume points stay aligned), and its body for `_rejected/`.
    Rejected {
        number: u64,
        url: Url,
        next: Option<Url>,
        rejected: RejectedPage,
        body: Option<Bytes>,
        notes: ListingNotes,
        lineage: PageLine,
    },
    /// The listing ended normally: flush the last chunk.
    End,
}

/// What the encoder hands the uploader.
// A rejected page is rare: boxing chunks to shrink this would cost an allocation per chunk.
#[allow(clippy::large_enum_variant)]
pub(super) enum UploadMsg {
    Chunk(ReadyChunk),
    Rejected(RejectedPage, Option<Bytes>),
}

/// A finished chunk with what the checkpoint needs once it is committed.
pub(super) struct ReadyChunk {
    pub(super) chunk: FinishedChunk,
    pub(super) resume: Resume,
    /// The writer's schema with this invocation's column stats.
    pub(super) schema: Option<Schema>,
    /// Schema changes this invocation recorded so far.
    pub(super) changes: Vec<SchemaChange>,
    /// The incremental watermark after the chunk's last record.
    pub(super) watermark: Option<Watermark>,
    /// The lines of the pages the chunk covers, stored beside it before the checkpoint
    /// moves past it.
    pub(super) lineage: Vec<PageLine>,
}
