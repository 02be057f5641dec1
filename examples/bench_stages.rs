//! Stage limits for bench/stages.sh: how fast each stage of a pull can go on its own, on one
//! thread, against a running `examples/bench_api` (cursor style). Each stage uses gatelake's
//! own code where there is some, so the numbers bound what `gatelake pull` can reach:
//!
//! - `fetch+gunzip`: every page fetched in order over one keep-alive connection (reqwest,
//!   gzip decoded by the client), the next cursor found by a byte search in the page's tail,
//!   nothing parsed. The ceiling of a sequential cursor pull.
//! - `extract`: `gatelake::source::extract::ExtractedPage::new(body, "items")` on every
//!   (already fetched, decoded) page: JSON validation and record location.
//! - `encode jsonl.gz` / `encode jsonl.zst` / `encode parquet`:
//!   `gatelake::encode::chunk::ChunkWriter` with the pull's defaults (codec levels, parquet
//!   snappy, 128 MiB chunks), every page in, hashes included; compression on every core, as
//!   in a pull; no upload.
//! - `upload` (with `--dest`): the jsonl.gz chunks of the encode stage put into the
//!   destination through `gatelake::sink` (Azure Blob or a folder), up to 4 at once as
//!   `pull`'s default `--upload-concurrency`; then deleted. Records/s counts the records the
//!   uploaded chunks hold.
//!
//! ```text
//! cargo run --release --example bench_stages -- --url http://127.0.0.1:PORT [--runs 3]
//!     [--dest http://127.0.0.1:PORT/devstoreaccount1/CONTAINER/PREFIX]
//! ```
//!
//! An Azure `--dest` is opened by the engine as `gatelake pull` opens it, with the storage
//! account variables (`AZURE_STORAGE_CONNECTION_STRING` for Azurite).
//!
//! Prints one TSV line per stage and run on stdout (stage, run, records, json_bytes, wall_s,
//! cpu_s, out_bytes); CPU is this process's user+system time (from /proc/self/stat).

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use gatelake::encode::chunk::FinishedChunk;
use gatelake::encode::chunk::{ChunkLimits, ChunkWriter};
use gatelake::encode::{Compression, EncodeOptions, Format};
use gatelake::sink::PutMode;
use gatelake::source::extract::ExtractedPage;
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(about = "Stage limits of a pull against examples/bench_api")]
struct Args {
    /// The bench API's base URL (as it prints it).
    #[arg(long)]
    url: String,
    /// Times each stage is run.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Where the upload stage puts the chunks (no upload stage without it).
    #[arg(long)]
    dest: Option<String>,
}

/// This process's user+system CPU seconds (Linux: /proc/self/stat, in clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let tick = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(14) + tick(15)) / 100.0
}

struct Measure {
    wall: Instant,
    cpu: f64,
}

impl Measure {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    fn report(self, stage: &str, run: u32, records: u64, json_bytes: u64, out_bytes: u64) {
        println!(
            "{stage}\t{run}\t{records}\t{json_bytes}\t{:.3}\t{:.2}\t{out_bytes}",
            self.wall.elapsed().as_secs_f64(),
            cpu_seconds() - self.cpu
        );
    }
}

/// The next cursor of a bench API page: found in the tail, without parsing the page.
fn next_cursor(body: &[u8]) -> Option<String> {
    let tail = &body[body.len().saturating_sub(256)..];
    let key = b"\"next_cursor\":\"";
    let at = memchr::memmem::rfind(tail, key)? + key.len();
    let end = at + memchr::memchr(b'"', &tail[at..])?;
    String::from_utf8(tail[at..end].to_vec()).ok()
}

async fn fetch_all(client: &reqwest::Client, base: &str) -> Result<Vec<Bytes>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = url::Url::parse(&format!("{base}/cursor"))?;
        if let Some(c) = &cursor {
            url.query_pairs_mut().append_pair("cursor", c);
        }
        let resp = client.get(url).send().await?.error_for_status()?;
        let body = resp.bytes().await?;
        cursor = next_cursor(&body);
        pages.push(body);
        if cursor.is_none() {
            return Ok(pages);
        }
    }
}

fn encode(
    format: Format,
    compression: Compression,
    pages: &[ExtractedPage],
) -> Result<Vec<FinishedChunk>> {
    let mut writer = ChunkWriter::new(
        EncodeOptions::new(format, Some(compression)),
        ChunkLimits {
            max_bytes: 128 * 1024 * 1024,
            max_rows: None,
        },
        0,
        None,
    )?;
    let mut out = Vec::new();
    for page in pages {
        out.extend(writer.write_page(&page.records())?);
    }
    out.extend(writer.finish()?);
    Ok(out)
}

/// Put every chunk under `prefix`, at most 4 at once; returns the bytes put.
async fn upload(dest: &str, prefix: &str, chunks: &[FinishedChunk]) -> Result<u64> {
    use futures::StreamExt;
    let sink = gatelake::engine::Engine::default().sink(dest, None)?;
    sink.ensure_root().await?;
    let puts = chunks.iter().map(|c| {
        let sink = sink.clone();
        let path = format!("{prefix}/part-{:05}.jsonl.gz", c.seq);
        let data = c.data.clone();
        async move {
            let len = data.len() as u64;
            sink.put(&path, data, PutMode::Overwrite).await?;
            anyhow::Ok((path, len))
        }
    });
    let done: Vec<Result<(String, u64)>> = futures::stream::iter(puts)
        .buffer_unordered(4)
        .collect()
        .await;
    let mut bytes = 0;
    for d in done {
        let (path, n) = d?;
        bytes += n;
        sink.delete(&path).await?;
    }
    Ok(bytes)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let base = args.url.trim_end_matches('/').to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;

    let mut last_pages = Vec::new();
    for run in 1..=args.runs {
        let m = Measure::start();
        let pages = runtime.block_on(fetch_all(&client, &base))?;
        let json: u64 = pages.iter().map(|p| p.len() as u64).sum();
        // Records per page are not known without parsing: counted in the extract stage.
        m.report("fetch+gunzip", run, 0, json, 0);
        last_pages = pages;
    }

    let json: u64 = last_pages.iter().map(|p| p.len() as u64).sum();
    let mut extracted = Vec::new();
    for run in 1..=args.runs {
        let m = Measure::start();
        extracted = last_pages
            .iter()
            .map(|body| ExtractedPage::new(body.clone(), "items"))
            .collect::<Result<Vec<_>, _>>()?;
        let records: u64 = extracted.iter().map(|p| p.len() as u64).sum();
        m.report("extract", run, records, json, 0);
    }
    let records: u64 = extracted.iter().map(|p| p.len() as u64).sum();
    if records == 0 {
        bail!("no records extracted from {base}/cursor");
    }

    let mut gz_chunks = Vec::new();
    for (name, format, compression) in [
        ("encode jsonl.gz", Format::JSONL, Compression::Gzip),
        ("encode jsonl.zst", Format::JSONL, Compression::Zstd),
        ("encode parquet", Format::PARQUET, Compression::Snappy),
    ] {
        for run in 1..=args.runs {
            let m = Measure::start();
            let chunks = encode(format, compression, &extracted)?;
            let out = chunks.iter().map(|c| c.data.len() as u64).sum();
            m.report(name, run, records, json, out);
            if compression == Compression::Gzip {
                gz_chunks = chunks;
            }
        }
    }

    if let Some(dest) = &args.dest {
        let upload_runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        for run in 1..=args.runs {
            let m = Measure::start();
            let bytes =
                upload_runtime.block_on(upload(dest, &format!("stages-{run}"), &gz_chunks))?;
            m.report("upload", run, records, json, bytes);
        }
    }
    Ok(())
}
