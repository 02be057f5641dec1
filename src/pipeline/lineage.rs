//! The lineage of a unit's pages as they travel: the fetch stage describes each page it hands
//! on ([`page_line`]: the redacted request, the client's attempts, bytes, records); the encode
//! stage keeps the lines of the pages the chunk writer holds and hands a chunk the lines of
//! exactly the pages it covers, with the rows each page's records took in the file
//! ([`PendingLines`]); the upload stage stores them beside the chunk before the checkpoint
//! moves past it (`load::lineage::put_piece`). Lines of pages after the last chunk go back to
//! the run with the unit's end.

use super::error::PullError;
use crate::load::lineage::{LineageError, PageLine, RequestLine, RowSpan};
use crate::source::request::PageRequest;
use crate::source::trace::AttemptTrace;
use std::collections::VecDeque;

/// A storage failure stays one (its exit code is the sink's); a line that cannot be encoded
/// is a bug.
impl From<LineageError> for PullError {
    fn from(e: LineageError) -> Self {
        match e {
            LineageError::Sink(e) => PullError::Sink(e),
            other => PullError::Internal(other.to_string()),
        }
    }
}

/// The line of page `number`, fetched with `sent` (the request as sent: its method, path and
/// redacted query; never its body) in `attempts`.
pub(super) fn page_line(
    number: u64,
    sent: &PageRequest,
    attempts: Vec<AttemptTrace>,
    bytes: u64,
    records: u64,
    rejected: Option<String>,
) -> PageLine {
    PageLine {
        page: number,
        request: RequestLine::of(sent.method.as_str(), &sent.url),
        attempts,
        bytes,
        records,
        chunk: None,
        rows: None,
        rejected,
        fetched_at: crate::state::run_id::now_rfc3339(),
    }
}

/// Lines of the pages handed to the chunk writer and not yet in an emitted chunk, each with
/// the records it wrote (after an incremental filter).
#[derive(Default)]
pub(super) struct PendingLines(VecDeque<(PageLine, u64)>);

impl PendingLines {
    pub(super) fn push(&mut self, line: PageLine, written: u64) {
        self.0.push_back((line, written));
    }

    /// The lines of the first `covered` pages, which the chunk of `rows` rows holds, each
    /// with its rows in the file. Pages are whole in a chunk, so the spans follow each other
    /// from row 0; should they not add up to the chunk's rows, the spans are left out rather
    /// than told wrong.
    pub(super) fn take_chunk(&mut self, covered: usize, rows: u64) -> Vec<PageLine> {
        let taken: Vec<(PageLine, u64)> = self.0.drain(..covered.min(self.0.len())).collect();
        let total: u64 = taken.iter().map(|(_, n)| n).sum();
        let exact = total == rows;
        if !exact {
            tracing::warn!("lineage: the pages of a chunk add up to {total} rows, the chunk holds {rows}: row spans left out");
        }
        let mut first = 0;
        taken
            .into_iter()
            .map(|(mut line, count)| {
                if exact && count > 0 {
                    line.rows = Some(RowSpan { first, count });
                }
                first += count;
                line
            })
            .collect()
    }

    /// The lines left: pages after the last chunk.
    pub(super) fn rest(self) -> Vec<PageLine> {
        self.0.into_iter().map(|(line, _)| line).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::source::request::BoundRequest;
    use url::Url;

    fn line(n: u64) -> PageLine {
        page_line(
            n,
            &BoundRequest::plain()
                .render(&Url::parse("https://api.example/prod/x?page=1").unwrap()),
            vec![],
            1,
            0,
            None,
        )
    }

    #[test]
    fn a_chunk_gets_its_pages_with_their_rows() {
        let mut pending = PendingLines::default();
        // An empty page first (it resumes with the chunk), then 3 and 2 records, then one
        // page of the next chunk.
        for (n, written) in [(1, 0), (2, 3), (3, 2), (4, 5)] {
            pending.push(line(n), written);
        }
        let chunk = pending.take_chunk(3, 5);
        let spans: Vec<(u64, Option<RowSpan>)> = chunk.iter().map(|l| (l.page, l.rows)).collect();
        assert_eq!(
            spans,
            vec![
                (1, None),
                (2, Some(RowSpan { first: 0, count: 3 })),
                (3, Some(RowSpan { first: 3, count: 2 })),
            ]
        );
        // Counts that do not match the chunk: no spans rather than wrong ones.
        let next = pending.take_chunk(1, 4);
        assert_eq!(next[0].rows, None);
        assert!(pending.rest().is_empty());
    }
}
