//! A sample run (`gatelake pull ... --sample N`): what the first N pages of a listing say
//! about the whole pull before it is started — records and bytes per page, the columns with
//! their types, nulls and widths, every format and codec's size and speed on these records,
//! and, when the total is known, the run's size, chunk count and duration, with the chunk
//! size that gives Synapse files it reads well.
//!
//! The pages come through the pull's own fetch stage (`pipeline::sample`) and are encoded
//! with its own chunk writer; nothing is written anywhere by this module (the binary may
//! write the encoded sample to a preview folder). It never prints: [`SampleReport`] is data.

pub mod columns;
pub mod encodings;
pub mod estimate;

pub use columns::ColumnProfile;
pub use encodings::EncodingResult;
pub use estimate::{ChunkAdvice, Estimate};

use crate::config::PullConfig;
use crate::pipeline::sample::SampledListing;
use serde::Serialize;

/// One sampled page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageLine {
    pub page: u64,
    pub records: u64,
    /// Response body bytes (decompressed).
    pub bytes: u64,
    /// Record JSON bytes in it (what `--chunk-size` counts).
    pub record_bytes: u64,
    pub seconds: f64,
    /// Why the page was set aside (`--on-bad-page skip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// Everything a sample found.
#[derive(Debug, Clone, Serialize)]
pub struct SampleReport {
    /// Always `sampled`: a sample never lands a run.
    pub status: &'static str,
    pub job: String,
    /// The first request (secrets masked).
    pub source: String,
    pub pages: u64,
    pub records: u64,
    pub bytes: u64,
    pub record_bytes: u64,
    pub seconds: f64,
    /// The listing ended inside the sample.
    pub listing_ended: bool,
    /// The total the API reported (`--total-path`).
    pub api_total: Option<u64>,
    pub per_page: Vec<PageLine>,
    pub columns: Vec<ColumnProfile>,
    pub encodings: Vec<EncodingResult>,
    /// The whole run, when its total is known.
    pub estimate: Option<Estimate>,
    pub chunk_size: ChunkAdvice,
    pub warnings: Vec<String>,
}

/// The report of `listing` for `pull`, and the configured format's encoded sample.
pub fn report(pull: &PullConfig, listing: &SampledListing) -> (SampleReport, Vec<bytes::Bytes>) {
    let pages: Vec<Vec<&str>> = listing.pages.iter().map(|p| p.page.records()).collect();
    let per_page: Vec<PageLine> = listing
        .pages
        .iter()
        .zip(&pages)
        .map(|(p, records)| PageLine {
            page: p.number,
            records: records.len() as u64,
            bytes: p.bytes,
            record_bytes: records.iter().map(|r| r.len() as u64).sum(),
            seconds: p.elapsed.as_secs_f64(),
            rejected: p.rejected.clone(),
        })
        .collect();
    let records: u64 = per_page.iter().map(|p| p.records).sum();
    let record_bytes: u64 = per_page.iter().map(|p| p.record_bytes).sum();
    let all: Vec<&str> = pages.iter().flatten().copied().collect();
    let columns = columns::profile(&all, pull.output.schema.flatten_depth).unwrap_or_default();
    let encoded = encodings::measure(&pages, &pull.output.encode, &pull.output.schema);
    let ratio = encoded
        .results
        .iter()
        .find(|r| r.configured)
        .and_then(|r| r.ratio);
    let rates = estimate::SampleRates {
        pages: per_page.len() as u64,
        records,
        record_bytes,
        seconds: listing.elapsed.as_secs_f64(),
        ratio,
    };
    let total = match (listing.api_total, listing.ended) {
        (Some(t), _) => Some((t, "api-total")),
        (None, true) => Some((records, "listing-ended")),
        (None, false) => None,
    };
    let run = total.and_then(|(t, basis)| {
        estimate::estimate(
            &rates,
            t,
            basis,
            pull.output.chunk_bytes,
            pull.output.chunk_rows,
        )
    });
    let chunk_size = estimate::advise(ratio, pull.output.chunk_bytes, run.as_ref());
    let mut warnings = listing.warnings.clone();
    if total.is_none() {
        warnings.push(
            "the API reported no total, so the run's size cannot be estimated: pass --total-path when the body carries one"
                .into(),
        );
    }
    let report = SampleReport {
        status: "sampled",
        job: pull.job.clone(),
        source: crate::secret::redact_url(&pull.source.url),
        pages: rates.pages,
        records,
        bytes: per_page.iter().map(|p| p.bytes).sum(),
        record_bytes,
        seconds: rates.seconds,
        listing_ended: listing.ended,
        api_total: listing.api_total,
        per_page,
        columns,
        encodings: encoded.results,
        estimate: run,
        chunk_size,
        warnings,
    };
    (report, encoded.configured_files)
}
