//! Micro-benchmarks (issue 7): record extraction, a page's gunzip, each encoder and each
//! compressor, on the benchmark dataset (`bench/data.rs`, ≈390-byte order records, as the
//! bench API serves; the encoders also on its ≈1.6 KB `wide` records, group `encode wide`).
//!
//! ```text
//! cargo bench --bench micro                 # everything
//! cargo bench --bench micro -- compress     # one group
//! ```
//!
//! Throughput is in bytes of record JSON per second (criterion prints it as MiB/s or GiB/s).
//! The compressors are measured twice: gatelake's block-parallel [`CompressedWriter`] (every
//! core) and, as the baseline in the same run, a one-thread stream encoder of the same codec
//! and level (flate2's `GzEncoder`, zstd's stream encoder). Each prints its output size
//! once, so the speed/size trade of every level is visible next to its speed.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gatelake::encode::chunk::{ChunkLimits, ChunkWriter};
use gatelake::encode::compress::CompressedWriter;
use gatelake::encode::{Compression, EncodeOptions, Format};
use gatelake::source::extract::ExtractedPage;
use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

#[path = "../bench/data.rs"]
mod data;

const PAGE: u64 = 500;

/// `pages` pages of 500 records, as bodies.
fn bodies(pages: u64) -> Vec<bytes::Bytes> {
    bodies_of(data::Shape::Orders, pages)
}

/// `pages` pages of 500 records of `shape`, as bodies.
fn bodies_of(shape: data::Shape, pages: u64) -> Vec<bytes::Bytes> {
    (0..pages)
        .map(|p| bytes::Bytes::from(data::page_body_of(shape, p * PAGE, (p + 1) * PAGE)))
        .collect()
}

/// The records of `pages` pages as JSON Lines text.
fn jsonl(pages: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for body in bodies(pages) {
        let page = ExtractedPage::new(body, "items").unwrap_or_else(|e| panic!("{e}"));
        for r in page.records() {
            out.extend_from_slice(r.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

fn extract(c: &mut Criterion) {
    let body = bodies(1).remove(0);
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("page of 500 records", |b| {
        b.iter(|| {
            let page = ExtractedPage::new(black_box(body.clone()), "items")
                .unwrap_or_else(|e| panic!("{e}"));
            black_box(page.records().len())
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    encode_shape(c, "encode", data::Shape::Orders, 20);
    encode_shape(c, "encode wide", data::Shape::Wide, 5);
}

fn encode_shape(c: &mut Criterion, group: &str, shape: data::Shape, pages: u64) {
    // 20 pages of orders (10,000 records, ≈3.9 MB) or 5 of wide records (≈4 MB): one chunk,
    // every page through the ChunkWriter as the pull does (schema inference, stats and hashes
    // included), no compression for the text formats so that the encoder alone is measured.
    let pages: Vec<ExtractedPage> = bodies_of(shape, pages)
        .into_iter()
        .map(|b| ExtractedPage::new(b, "items").unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let json: u64 = pages
        .iter()
        .flat_map(|p| p.records())
        .map(|r| r.len() as u64)
        .sum();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(json));
    let cases = [
        ("jsonl", Format::JSONL, Compression::None),
        ("csv", Format::CSV, Compression::None),
        ("parquet uncompressed", Format::PARQUET, Compression::None),
        ("parquet snappy", Format::PARQUET, Compression::Snappy),
    ];
    for (name, format, compression) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut w = ChunkWriter::new(
                    EncodeOptions::new(format, Some(compression)),
                    ChunkLimits {
                        max_bytes: u64::MAX,
                        max_rows: None,
                    },
                    0,
                    None,
                )
                .unwrap_or_else(|e| panic!("{e}"));
                for page in &pages {
                    black_box(
                        w.write_page_known(&page.records(), page.members.as_ref())
                            .unwrap_or_else(|e| panic!("{e}")),
                    );
                }
                black_box(w.finish().unwrap_or_else(|e| panic!("{e}")))
            })
        });
    }
    g.finish();
}

fn compress(c: &mut Criterion) {
    // 40 pages: 20,000 records, ≈7.8 MB of JSON Lines, several blocks of every codec.
    let text = jsonl(40);
    let mut g = c.benchmark_group("compress");
    g.throughput(Throughput::Bytes(text.len() as u64));
    let cases = [
        ("gzip", Compression::Gzip, 1),
        ("gzip", Compression::Gzip, 2),
        ("gzip", Compression::Gzip, 3),
        ("gzip", Compression::Gzip, 6),
        ("zstd", Compression::Zstd, 1),
        ("zstd", Compression::Zstd, 3),
    ];
    for (name, codec, level) in cases {
        let parallel = |text: &[u8]| {
            let mut w = CompressedWriter::new(codec, level).unwrap_or_else(|e| panic!("{e}"));
            // 64 KiB writes: what the encoders' record-sized writes add up to.
            for piece in text.chunks(64 * 1024) {
                w.write_all(piece).unwrap_or_else(|e| panic!("{e}"));
            }
            w.finish().unwrap_or_else(|e| panic!("{e}"))
        };
        let single = |text: &[u8]| -> Vec<u8> {
            match codec {
                Compression::Gzip => {
                    let level = flate2::Compression::new(level as u32);
                    let mut w = flate2::write::GzEncoder::new(Vec::new(), level);
                    w.write_all(text).unwrap_or_else(|e| panic!("{e}"));
                    w.finish().unwrap_or_else(|e| panic!("{e}"))
                }
                _ => zstd::stream::encode_all(text, level).unwrap_or_else(|e| panic!("{e}")),
            }
        };
        eprintln!(
            "compress/{name} {level}: {} bytes in, {} out on all cores, {} out on one thread",
            text.len(),
            parallel(&text).len(),
            single(&text).len()
        );
        g.bench_function(format!("{name} {level} all cores"), |b| {
            b.iter(|| black_box(parallel(black_box(&text))))
        });
        g.bench_function(format!("{name} {level} one thread"), |b| {
            b.iter_batched(
                || (),
                |()| black_box(single(black_box(&text))),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn gunzip(c: &mut Criterion) {
    // A page of 500 orders records gzipped at level 6, as the bench API serves it: decoded as
    // a pull decodes it (one call into a buffer of the trailer's size, libdeflate) and, as the
    // baseline in the same run, by the streaming decoder that read every page before.
    let body = bodies(1).remove(0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&body).unwrap_or_else(|e| panic!("{e}"));
    let raw = gz.finish().unwrap_or_else(|e| panic!("{e}"));
    let limit = 64 << 20;
    assert_eq!(
        gatelake::source::client::gunzip_page(&raw, limit).as_deref(),
        Some(&body[..])
    );
    let mut g = c.benchmark_group("gunzip");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("page of 500 records, one call", |b| {
        b.iter(|| {
            black_box(gatelake::source::client::gunzip_page(
                black_box(&raw),
                limit,
            ))
        })
    });
    g.bench_function("page of 500 records, streaming decoder", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(body.len() + 1);
            let mut d = flate2::bufread::MultiGzDecoder::new(black_box(&raw[..]));
            std::io::Read::read_to_end(&mut d, &mut out).unwrap_or_else(|e| panic!("{e}"));
            black_box(out)
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = micro;
    config = config();
    targets = extract, gunzip, encode, compress
}
criterion_main!(micro);
