//! From a sample to the whole run: when the API says how many records there are
//! (`--total-path`), or the listing ended inside the sample, the run's size, pages, chunks
//! and duration follow from the sample's averages; and whatever the total, the chunk size
//! that gives Synapse files in the range it reads best.
//!
//! Synapse's COPY INTO and serverless pools prefer compressed files of roughly 100 MB to
//! 1 GB: smaller ones cost a request and a task each, larger ones are read by fewer workers.
//! The recommendation aims at the middle of that range, 256 MB compressed, which is also what
//! `--synapse-optimized` aims at for parquet, converted to gatelake's chunk-size unit (record
//! JSON before encoding) with the sample's own compression ratio.

use serde::Serialize;

/// Compressed file sizes Synapse reads best, in bytes.
pub const SYNAPSE_FILE_RANGE: (u64, u64) = (100_000_000, 1_000_000_000);
/// The compressed file size the recommendation aims at.
pub const TARGET_FILE_BYTES: u64 = 256_000_000;
const MIB: u64 = 1 << 20;

/// The sample's averages.
#[derive(Debug, Clone, Copy)]
pub struct SampleRates {
    pub pages: u64,
    pub records: u64,
    /// Record JSON bytes (what `--chunk-size` counts).
    pub record_bytes: u64,
    /// Wall time of the sample's fetches.
    pub seconds: f64,
    /// Encoded ÷ record JSON, for the configured format and codec.
    pub ratio: Option<f64>,
}

/// The whole run, extrapolated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Where the total came from: `api-total` (`--total-path`) or `listing-ended`.
    pub basis: &'static str,
    pub records: u64,
    pub pages: u64,
    /// Record JSON bytes.
    pub record_bytes: u64,
    /// Bytes landed in the configured format and codec.
    pub landed_bytes: Option<u64>,
    /// Chunk files at the configured `--chunk-size`/`--chunk-rows`.
    pub chunks: u64,
    /// Fetch time at the sample's pace (`--concurrency` included, as sampled).
    pub seconds: f64,
}

/// The chunk size to use, and how the configured one compares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkAdvice {
    /// The configured `--chunk-size` (record JSON bytes).
    pub configured_bytes: u64,
    /// The file size it gives at the sample's ratio.
    pub configured_file_bytes: Option<u64>,
    /// The recommended `--chunk-size` (record JSON bytes, a whole number of MiB).
    pub recommended_bytes: u64,
    /// The same as a `--chunk-size` value, e.g. `1024MiB`.
    pub recommended: String,
    /// The file size it gives at the sample's ratio.
    pub recommended_file_bytes: Option<u64>,
    /// Why, in a sentence.
    pub note: String,
}

/// The run's size from `total` records (`basis` says where it came from).
pub fn estimate(
    rates: &SampleRates,
    total: u64,
    basis: &'static str,
    chunk_bytes: u64,
    chunk_rows: Option<u64>,
) -> Option<Estimate> {
    if rates.records == 0 || rates.pages == 0 {
        return None;
    }
    let per_record = rates.record_bytes as f64 / rates.records as f64;
    let per_page = rates.records as f64 / rates.pages as f64;
    let record_bytes = (per_record * total as f64).round() as u64;
    let pages = ((total as f64 / per_page).ceil() as u64).max(1);
    let by_bytes = record_bytes.div_ceil(chunk_bytes.max(1));
    let by_rows = chunk_rows.map_or(0, |r| total.div_ceil(r.max(1)));
    Some(Estimate {
        basis,
        records: total,
        pages,
        record_bytes,
        landed_bytes: rates
            .ratio
            .map(|r| (record_bytes as f64 * r).round() as u64),
        chunks: by_bytes.max(by_rows).max(1),
        seconds: rates.seconds / rates.pages as f64 * pages as f64,
    })
}

/// The chunk size for Synapse at the sample's `ratio` (`None`: nothing could be measured, so
/// the ratio of 1 is assumed), given the run's estimate when there is one.
pub fn advise(ratio: Option<f64>, configured_bytes: u64, run: Option<&Estimate>) -> ChunkAdvice {
    let r = ratio.filter(|r| *r > 0.0).unwrap_or(1.0);
    let file = |raw: u64| ratio.map(|_| (raw as f64 * r).round() as u64);
    let (lo, hi) = SYNAPSE_FILE_RANGE;
    let aimed = round_mib((TARGET_FILE_BYTES as f64 / r) as u64);
    let (recommended_bytes, note) = match run {
        Some(run) if run.landed_bytes.is_some_and(|b| b < lo) => {
            // The whole run is below the range: one file is best, however it is cut.
            (
                round_mib(run.record_bytes.max(1)),
                format!(
                    "the whole run lands as about {} — under Synapse's preferred {}–{} per file, so one file is best: a chunk size at or above the run's size",
                    human(run.landed_bytes.unwrap_or(0)),
                    human(lo),
                    human(hi)
                ),
            )
        }
        _ => {
            let configured_file = file(configured_bytes);
            let verdict = match configured_file {
                Some(f) if (lo..=hi).contains(&f) => "the configured size already lands inside it",
                Some(f) if f < lo => "the configured size lands smaller files than that",
                Some(_) => "the configured size lands larger files than that",
                None => "the sample had no records to measure",
            };
            (
                aimed,
                format!(
                    "aims at {} compressed files (Synapse prefers {}–{}); {verdict}",
                    human(TARGET_FILE_BYTES),
                    human(lo),
                    human(hi)
                ),
            )
        }
    };
    ChunkAdvice {
        configured_bytes,
        configured_file_bytes: file(configured_bytes),
        recommended_bytes,
        recommended: format!("{}MiB", recommended_bytes / MIB),
        recommended_file_bytes: file(recommended_bytes),
        note,
    }
}

/// Round up to a whole MiB (at least one).
fn round_mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB).max(1) * MIB
}

/// `256 MB`, `1.2 GB`: decimal units, as Synapse's guidance states its sizes.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rates(ratio: f64) -> SampleRates {
        SampleRates {
            pages: 4,
            records: 400,
            record_bytes: 400_000,
            seconds: 2.0,
            ratio: Some(ratio),
        }
    }

    #[test]
    fn extrapolates_from_the_sample_averages() {
        let e = estimate(&rates(0.25), 1_000_000, "api-total", 128 << 20, None).unwrap();
        assert_eq!(e.record_bytes, 1_000_000_000);
        assert_eq!(e.pages, 10_000);
        assert_eq!(e.landed_bytes, Some(250_000_000));
        assert_eq!(e.chunks, 1_000_000_000u64.div_ceil(128 << 20));
        assert!((e.seconds - 5000.0).abs() < 1e-6);
        // Rows can cut chunks first.
        let r = estimate(&rates(0.25), 1_000_000, "api-total", 1 << 40, Some(10_000)).unwrap();
        assert_eq!(r.chunks, 100);
        assert!(estimate(
            &SampleRates {
                records: 0,
                ..rates(0.25)
            },
            5,
            "x",
            1,
            None
        )
        .is_none());
    }

    #[test]
    fn recommends_files_in_synapses_range() {
        // 4:1 → about 1 GB of record JSON per 256 MB file.
        let a = advise(Some(0.25), 128 << 20, None);
        assert_eq!(a.recommended_bytes, round_mib(1_024_000_000));
        let file = a.recommended_file_bytes.unwrap();
        assert!(
            (SYNAPSE_FILE_RANGE.0..=SYNAPSE_FILE_RANGE.1).contains(&file),
            "{a:?}"
        );
        assert!(a.note.contains("smaller files"), "{a:?}");
        assert_eq!(a.configured_file_bytes, Some(33_554_432));
    }

    #[test]
    fn a_small_run_is_one_file() {
        let run = estimate(&rates(0.25), 10_000, "api-total", 128 << 20, None).unwrap();
        let a = advise(Some(0.25), 128 << 20, Some(&run));
        assert!(a.recommended_bytes >= run.record_bytes, "{a:?}");
        assert!(a.note.contains("one file"), "{a:?}");
    }
}
