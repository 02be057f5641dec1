//! A sample of a listing: its first N pages through the very fetch stage a pull runs (the same
//! client, retries, pagination, record extraction, `--on-bad-page` and `--concurrency`), with
//! no encoder, no upload and no checkpoint behind it. The pages are collected in memory, in
//! order, for `crate::sample` to measure; nothing is written anywhere.

use super::error::PullError;
use super::fetch::{fetch_stage, CommittedSoFar, FetchInput};
use super::messages::PageMsg;
use super::stop::StopSignal;
use crate::config::SourceConfig;
use crate::report::Reporter;
use crate::source::client::ApiClient;
use crate::source::extract::ExtractedPage;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One sampled page.
#[derive(Debug, Clone)]
pub struct SampledPage {
    /// 1-based, as the pull numbers it.
    pub number: u64,
    /// The page's records (empty for a page set aside by `--on-bad-page skip`).
    pub page: ExtractedPage,
    /// Bytes of the response body after decompression.
    pub bytes: u64,
    /// Time from the previous page's arrival (or the start) to this one's.
    pub elapsed: Duration,
    /// Why the page was set aside, if it was.
    pub rejected: Option<String>,
}

/// What the sample saw.
#[derive(Debug, Clone)]
pub struct SampledListing {
    pub pages: Vec<SampledPage>,
    /// The listing ended within the sample (no page after the last one sampled).
    pub ended: bool,
    /// The total the API reported (`--total-path`), if any.
    pub api_total: Option<u64>,
    /// Warnings the fetch stage raised (a listing that ended on a page that looked full).
    pub warnings: Vec<String>,
    /// Wall time of the whole sample.
    pub elapsed: Duration,
}

/// Fetch the first `pages` pages of `source` (at least one, at most its `--max-pages`).
pub async fn sample_pages(
    source: &SourceConfig,
    client: ApiClient,
    pages: u64,
    reporter: Arc<dyn Reporter>,
) -> Result<SampledListing, PullError> {
    let mut source = source.clone();
    // The pull's first N pages: a pull capped below N (`--max-pages`) stops where it would.
    source.max_pages = Some(source.max_pages.map_or(pages, |m| m.min(pages)).max(1));
    let start = Some(source.url.clone());
    let (page_tx, mut page_rx) = mpsc::channel::<PageMsg>(4);
    // Never stopped: the sample ends at its page count.
    let (_keep, stop) = StopSignal::new();
    let started = Instant::now();
    let fetch = tokio::spawn(fetch_stage(FetchInput {
        source,
        client,
        reporter,
        pages: page_tx,
        start,
        before: CommittedSoFar {
            pages: 0,
            notes: Default::default(),
            rows: 0,
        },
        stop,
    }));
    let mut collected = Vec::new();
    let mut last = started;
    let mut saw_end = false;
    while let Some(msg) = page_rx.recv().await {
        let now = Instant::now();
        let elapsed = now.duration_since(last);
        last = now;
        match msg {
            PageMsg::Page { page, number, .. } => collected.push(SampledPage {
                number,
                bytes: page.body.len() as u64,
                page,
                elapsed,
                rejected: None,
            }),
            PageMsg::Rejected {
                number, rejected, ..
            } => collected.push(SampledPage {
                number,
                page: ExtractedPage {
                    body: bytes::Bytes::new(),
                    ranges: Vec::new(),
                    members: None,
                },
                bytes: rejected.bytes,
                elapsed,
                rejected: Some(rejected.reason),
            }),
            PageMsg::End => saw_end = true,
        }
    }
    let end = fetch
        .await
        .map_err(|e| PullError::Internal(format!("fetch task: {e}")))??;
    Ok(SampledListing {
        pages: collected,
        ended: saw_end && end.capped.is_none(),
        api_total: end.notes.api_total,
        warnings: end.notes.warnings,
        elapsed: started.elapsed(),
    })
}
