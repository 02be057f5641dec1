//! A fixed, network-free workload for instruction counts (`valgrind --tool=callgrind`) and
//! `perf stat`: the encode side of a pull on the benchmark dataset (`bench/data.rs`), with no
//! server, no storage and no timing, so two builds can be compared on a loaded machine.
//!
//! ```text
//! cargo build --release --example bench_cpu
//! valgrind --tool=callgrind target/release/examples/bench_cpu --shape orders --format jsonl
//! target/release/examples/bench_cpu --shape wide --format parquet --pages 200 --stage encode
//! ```
//!
//! The pages (500 records each, as the bench API serves them) are rendered before the measured
//! part; with `--gzip-level L` they are also gzipped there and gunzipped in the measured part
//! (the fetch stage's decoding). Stages: `extract` (`ExtractedPage::new` on every page),
//! `encode` (every page's records through one `ChunkWriter` with the pull's defaults for the
//! format: schema, statistics, compression and hashes included), or `all` (gunzip, extract,
//! encode). Prints the records and bytes it handled on stderr, so a run is checked to have
//! done its work.

use anyhow::{bail, Result};
use bytes::Bytes;
use clap::Parser;
use gatelake::encode::chunk::{ChunkLimits, ChunkWriter};
use gatelake::encode::{Compression, EncodeOptions, Format};
use gatelake::source::extract::ExtractedPage;
use std::io::{Read, Write};

#[path = "../bench/data.rs"]
mod data;
use data::Shape;

#[derive(Debug, Parser)]
#[command(about = "A fixed encode workload for instruction counts")]
struct Args {
    /// Record shape: orders or wide (see bench/data.rs).
    #[arg(long, default_value = "orders", value_parser = ["orders", "wide"])]
    shape: String,
    /// Output format: jsonl, jsonl.zst, csv or parquet.
    #[arg(long, default_value = "jsonl")]
    format: String,
    /// Pages of 500 records.
    #[arg(long, default_value_t = 40)]
    pages: u64,
    /// Which part is run: extract, encode or all.
    #[arg(long, default_value = "all", value_parser = ["extract", "encode", "all"])]
    stage: String,
    /// Serve the pages gzipped at this level and gunzip them in the measured part (all only).
    #[arg(long)]
    gzip_level: Option<u32>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let shape = Shape::parse(&args.shape).unwrap_or(Shape::Orders);
    let (format, compression) = match args.format.as_str() {
        "jsonl" => (Format::JSONL, None),
        "jsonl.zst" => (Format::JSONL, Some(Compression::Zstd)),
        "csv" => (Format::CSV, None),
        "parquet" => (Format::PARQUET, None),
        other => bail!("unknown format {other} (jsonl, jsonl.zst, csv, parquet)"),
    };
    let bodies: Vec<Bytes> = (0..args.pages)
        .map(|p| Bytes::from(data::page_body_of(shape, p * 500, (p + 1) * 500)))
        .collect();
    let gzipped: Option<Vec<Vec<u8>>> = match (args.gzip_level, args.stage.as_str()) {
        (Some(level), "all") => Some(
            bodies
                .iter()
                .map(|b| {
                    let mut enc =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
                    enc.write_all(b)?;
                    enc.finish()
                })
                .collect::<std::io::Result<_>>()?,
        ),
        _ => None,
    };

    // The measured part starts here.
    let pages: Vec<ExtractedPage> = match &gzipped {
        Some(gz) => gz
            .iter()
            .map(|g| {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&g[..]).read_to_end(&mut plain)?;
                Ok(ExtractedPage::new(Bytes::from(plain), "items")?)
            })
            .collect::<Result<_>>()?,
        None => bodies
            .iter()
            .map(|b| ExtractedPage::new(b.clone(), "items"))
            .collect::<Result<_, _>>()?,
    };
    let records: usize = pages.iter().map(|p| p.records().len()).sum();
    if args.stage == "extract" {
        eprintln!("bench_cpu: extracted {records} records");
        return Ok(());
    }
    let mut writer = ChunkWriter::new(
        EncodeOptions::new(format, compression),
        ChunkLimits {
            max_bytes: 128 * 1024 * 1024,
            max_rows: None,
        },
        0,
        None,
    )?;
    let mut out_bytes = 0usize;
    let mut rows = 0u64;
    for page in &pages {
        if let Some(chunk) = writer.write_page_known(&page.records(), page.members.as_ref())? {
            out_bytes += chunk.data.len();
            rows += chunk.rows;
        }
    }
    if let Some(chunk) = writer.finish()? {
        out_bytes += chunk.data.len();
        rows += chunk.rows;
    }
    if rows != records as u64 {
        bail!("encoded {rows} records of {records}");
    }
    eprintln!(
        "bench_cpu: {} {} records as {}: {out_bytes} bytes",
        rows, args.shape, args.format
    );
    Ok(())
}
