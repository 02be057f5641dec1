//! The stream codec around jsonl and csv chunks: none, gzip or zstd, all writing into an
//! in-memory `Vec<u8>` because a chunk is uploaded as one object.
//!
//! Compression is the most expensive stage of a jsonl or csv pull (issue 7: everything else
//! runs several times faster on one core), so it runs on every core. The stream is cut into
//! blocks (1 MiB for gzip, 4 MiB for zstd), each block is compressed on a small process-wide
//! pool of worker threads ([`pool`]), and the results are appended in order. The encoder
//! thread only copies record bytes into the current block; at most `workers + 2` blocks are
//! in flight per writer, so memory stays bounded and a slow codec pushes back on the encoder.
//!
//! The files stay as standard as a single-threaded encoder's:
//! - **gzip** is ONE gzip member (RFC 1952), as `pigz` writes it: every block is a raw
//!   DEFLATE stream primed with the last 32 KiB of the block before it (so matches still
//!   reach back across block boundaries) and ended with a sync flush (an empty stored block
//!   that byte-aligns it). The blocks are concatenated, a final empty block (`03 00`) closes
//!   the DEFLATE stream, and the trailer holds the CRC-32 of the whole input, combined from
//!   the blocks' CRCs. Readers that stop after the first member (some do) read everything.
//! - **zstd** is a sequence of frames, one per block. The zstd format (RFC 8878, section 3.1)
//!   defines a file as any number of frames and every conforming decoder reads them all; the
//!   cost is a slightly worse ratio than one frame, since no match crosses a block.
//!
//! Parquet does not use this: its codecs work per page inside the file.

use super::Compression;
use crate::buffers::{Pool, SizeHint};
use flate2::{Compress, FlushCompress};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc;

/// Input bytes per gzip block: large enough that the per-block costs (a fresh DEFLATE state,
/// the sync flush, a hand-off) are noise, small enough that two cores get work early.
const GZIP_BLOCK: usize = 1 << 20;
/// Input bytes per zstd frame: zstd's default window at low levels is 1-8 MiB, so larger
/// blocks than gzip's keep most of its matches.
const ZSTD_BLOCK: usize = 4 << 20;
/// DEFLATE's window: the most of the previous block a block can refer back to.
const DEFLATE_WINDOW: usize = 32 * 1024;

/// A `Write` that compresses into memory; [`CompressedWriter::finish`] returns the bytes of
/// the complete stream (with the gzip trailer or the last zstd frame written).
pub struct CompressedWriter {
    inner: Inner,
}

enum Inner {
    Plain(Vec<u8>),
    Blocks(BlockWriter),
}

#[derive(Debug, Clone, Copy)]
enum Codec {
    Gzip { level: u32 },
    Zstd { level: i32 },
}

/// One compressed block handed back by a worker.
struct Done {
    /// The block's compressed bytes, in a buffer that goes back to [`OUTPUTS`] once appended
    /// to the stream.
    bytes: Vec<u8>,
    /// CRC-32 of the block's input (gzip only).
    crc: Option<crc32fast::Hasher>,
    /// The input buffer, returned for reuse.
    input: Vec<u8>,
}

type Pending = mpsc::Receiver<io::Result<Done>>;

/// Blocks' input buffers and their compressed output, each used again by every chunk of the
/// run (see [`crate::buffers`]) instead of allocated per writer, that is per chunk: a block
/// is up to a few MiB (zstd), which a fresh allocation would fault in again, chunk after
/// chunk, in the heap of whichever thread took it. A pool keeps no more buffers than were in
/// use at once; one larger than a zstd block's bound is freed.
static INPUTS: Pool = Pool::new(KEEP_BLOCKS, BLOCK_BOUND);
static OUTPUTS: Pool = Pool::new(KEEP_BLOCKS, BLOCK_BOUND);

/// More than the blocks a few writers hold at once (each: one being filled, and up to two
/// per compression worker in flight).
const KEEP_BLOCKS: usize = 64;

/// The largest block a pool keeps: a zstd block's worst case, with room to spare.
const BLOCK_BOUND: usize = ZSTD_BLOCK + ZSTD_BLOCK / 64 + (64 << 10);

struct BlockWriter {
    codec: Codec,
    block_size: usize,
    /// The block being filled.
    buf: Vec<u8>,
    /// gzip: the tail of the previous block, the next block's dictionary.
    window: Vec<u8>,
    /// Blocks being compressed, oldest first.
    pending: VecDeque<Pending>,
    max_pending: usize,
    /// The stream so far (gzip: from its header on).
    out: Vec<u8>,
    crc: crc32fast::Hasher,
    total_in: u64,
}

impl CompressedWriter {
    /// A writer for `compression` at `level` (as from [`super::EncodeOptions::level_or_default`];
    /// ignored for `None`). `Snappy` is a parquet page codec, not a stream codec: rejected.
    pub fn new(compression: Compression, level: i32) -> io::Result<Self> {
        let codec = match compression {
            Compression::None => {
                return Ok(Self {
                    inner: Inner::Plain(Vec::with_capacity(64 * 1024)),
                })
            }
            Compression::Gzip => Codec::Gzip {
                level: u32::try_from(level.clamp(0, 9)).unwrap_or(6),
            },
            Compression::Zstd => {
                let range = zstd::compression_level_range();
                if !range.contains(&level) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "zstd level {level} is out of range ({}..={})",
                            range.start(),
                            range.end()
                        ),
                    ));
                }
                Codec::Zstd { level }
            }
            Compression::Snappy => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "snappy is a parquet page codec and cannot compress a jsonl or csv stream",
                ))
            }
        };
        Ok(Self {
            inner: Inner::Blocks(BlockWriter::new(codec)),
        })
    }

    /// Flush what is buffered, wait for every block, end the stream and return its bytes.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self.inner {
            Inner::Plain(v) => Ok(v),
            Inner::Blocks(w) => w.finish(),
        }
    }
}

impl Write for CompressedWriter {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(v) => {
                v.extend_from_slice(buf);
                Ok(())
            }
            Inner::Blocks(w) => w.write_all(buf),
        }
    }

    /// Nothing to do: a block is compressed when it is full or at `finish`, and a partial
    /// stream is never read.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlockWriter {
    fn new(codec: Codec) -> Self {
        let block_size = match codec {
            Codec::Gzip { .. } => GZIP_BLOCK,
            Codec::Zstd { .. } => ZSTD_BLOCK,
        };
        let mut out = Vec::with_capacity(STREAMS.capacity());
        if let Codec::Gzip { level } = codec {
            out.extend_from_slice(&gzip_header(level));
        }
        Self {
            codec,
            block_size,
            buf: Vec::new(),
            window: Vec::new(),
            pending: VecDeque::new(),
            max_pending: pool::workers() + 2,
            out,
            crc: crc32fast::Hasher::new(),
            total_in: 0,
        }
    }

    #[inline]
    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf = INPUTS.take(self.block_size);
            }
            let take = (self.block_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() >= self.block_size {
                self.dispatch()?;
            }
        }
        Ok(())
    }

    /// Hand the current block to the pool (waiting for the oldest block first when enough
    /// are in flight).
    fn dispatch(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        while self.pending.len() >= self.max_pending {
            self.collect_oldest()?;
        }
        let input = std::mem::take(&mut self.buf);
        let output = OUTPUTS.take(0);
        self.total_in += input.len() as u64;
        let (tx, rx) = mpsc::sync_channel(1);
        match self.codec {
            Codec::Gzip { level } => {
                let tail = &input[input.len().saturating_sub(DEFLATE_WINDOW)..];
                let window = std::mem::replace(&mut self.window, tail.to_vec());
                pool::run(move || {
                    let done = deflate_block(level, &window, &input, output).map(|bytes| {
                        let mut crc = crc32fast::Hasher::new();
                        crc.update(&input);
                        Done {
                            bytes,
                            crc: Some(crc),
                            input,
                        }
                    });
                    // The receiver is gone only when the writer was dropped unfinished.
                    let _ = tx.send(done);
                });
            }
            Codec::Zstd { level } => pool::run(move || {
                let done = zstd_block(level, &input, output).map(|bytes| Done {
                    bytes,
                    crc: None,
                    input,
                });
                let _ = tx.send(done);
            }),
        }
        self.pending.push_back(rx);
        Ok(())
    }

    /// Append the oldest block's output.
    fn collect_oldest(&mut self) -> io::Result<()> {
        let Some(rx) = self.pending.pop_front() else {
            return Ok(());
        };
        let done = rx.recv().map_err(|_| {
            io::Error::other("a compression worker stopped before finishing its block")
        })??;
        self.out.extend_from_slice(&done.bytes);
        if let Some(crc) = &done.crc {
            self.crc.combine(crc);
        }
        INPUTS.give_back(done.input);
        OUTPUTS.give_back(done.bytes);
        Ok(())
    }

    fn finish(mut self) -> io::Result<Vec<u8>> {
        self.dispatch()?;
        while !self.pending.is_empty() {
            self.collect_oldest()?;
        }
        match self.codec {
            Codec::Gzip { .. } => {
                // A final, empty block with fixed codes ends the DEFLATE stream; then the
                // trailer: CRC-32 and the input size modulo 2^32, both little-endian.
                self.out.extend_from_slice(&[0x03, 0x00]);
                self.out
                    .extend_from_slice(&self.crc.clone().finalize().to_le_bytes());
                // Truncation is the format's rule (ISIZE is the size modulo 2^32).
                #[allow(clippy::cast_possible_truncation)]
                let isize = self.total_in as u32;
                self.out.extend_from_slice(&isize.to_le_bytes());
            }
            Codec::Zstd { level } => {
                if self.out.is_empty() {
                    // An empty stream is still one (empty) frame.
                    self.out = zstd::bulk::compress(&[], level)?;
                }
            }
        }
        STREAMS.record(self.out.len());
        Ok(self.out)
    }
}

/// A gzip member header: DEFLATE, no name or time, the XFL hint for the level, OS unknown.
fn gzip_header(level: u32) -> [u8; 10] {
    let xfl = match level {
        1 => 4,
        9 => 2,
        _ => 0,
    };
    [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, xfl, 0xff]
}

/// One block as raw DEFLATE, primed with `window` (the previous block's tail) and ended with
/// a sync flush, so that blocks can be concatenated into one stream; written into `out`
/// (emptied first).
///
/// Each block gets a DEFLATE state of its own. A state kept by the worker thread and reset
/// between blocks (as zstd's is) made the same block's bytes depend on what that thread had
/// compressed before: a reset does not clear what the last stream left in the window past the
/// new input's end, which the match finder reads (and clamps) near the input's end, so the same
/// chunk came out a few bytes different from run to run, decoding the same. A fresh state is a
/// few hundred KiB of zeroed tables per megabyte block: 0.3-0.5% more instructions per record
/// (bench/README.md, "gzip chunks, the same bytes on every run").
fn deflate_block(level: u32, window: &[u8], input: &[u8], mut out: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut deflate = Compress::new(flate2::Compression::new(level), false);
    if !window.is_empty() {
        deflate.set_dictionary(window).map_err(io::Error::other)?;
    }
    out.clear();
    out.reserve(input.len() / 2 + 1024);
    loop {
        // total_in counts from the start of this block and never exceeds the input's length.
        let consumed = usize::try_from(deflate.total_in()).unwrap_or(input.len());
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        deflate
            .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // Done once all input is in and the flush did not fill the output: zlib's rule is to
        // call again with more room while the output comes back full.
        let all_in = usize::try_from(deflate.total_in()).unwrap_or(0) == input.len();
        if all_in && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

/// One block as a zstd frame, written into `out` (emptied first), with a compression context
/// kept by each worker thread between blocks (a new one costs about a megabyte of tables).
fn zstd_block(level: i32, input: &[u8], mut out: Vec<u8>) -> io::Result<Vec<u8>> {
    thread_local! {
        static ZSTD: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    ZSTD.with(|cell| {
        let mut cached = cell.borrow_mut();
        let compressor = match &mut *cached {
            Some((kept, compressor)) if *kept == level => compressor,
            slot => &mut slot.insert((level, zstd::bulk::Compressor::new(level)?)).1,
        };
        out.clear();
        out.reserve_exact(zstd::zstd_safe::compress_bound(input.len()));
        compressor.compress_to_buffer(input, &mut out)?;
        Ok(out)
    })
}

/// The size of the last stream a writer finished, to size the next one's output.
static STREAMS: SizeHint = SizeHint::new();

/// The worker threads every [`CompressedWriter`] shares: one per core, started on first use.
pub(crate) mod pool {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex, OnceLock};

    type Job = Box<dyn FnOnce() + Send + 'static>;

    struct Pool {
        jobs: Option<mpsc::Sender<Job>>,
        workers: usize,
    }

    fn get() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| {
            let wanted = std::thread::available_parallelism().map_or(2, |n| n.get());
            let (tx, rx) = mpsc::channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            let mut workers = 0;
            for i in 0..wanted {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("gatelake-compress-{i}"))
                    .spawn(move || {
                        background_priority();
                        loop {
                            let job = match rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => return,
                            };
                            let Ok(job) = job else { return };
                            // A panicking job drops its result sender, which its writer reports
                            // as an error; the worker itself carries on.
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                    });
                if spawned.is_ok() {
                    workers += 1;
                }
            }
            Pool {
                jobs: (workers > 0).then_some(tx),
                workers,
            }
        })
    }

    /// Lower this thread's scheduling priority (Linux: a per-thread nice value of 10).
    ///
    /// A pull's fetch stage is a chain (request, gunzip, parse, next request) that must not
    /// wait for a core behind compression, which can catch up at any time: on a machine with
    /// as many busy threads as cores, the chain's stalls set the pace of the whole pull. A
    /// failure leaves the normal priority, which is only slower.
    fn background_priority() {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: setpriority takes plain integers; on Linux, PRIO_PROCESS with id 0
            // applies to the calling thread only (see setpriority(2), NOTES).
            let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
        }
    }

    /// Worker threads available (at least 1: without any, jobs run on the caller).
    pub(crate) fn workers() -> usize {
        get().workers.max(1)
    }

    /// Run `job` on a worker, or on the calling thread if no worker could be started.
    pub(crate) fn run(job: impl FnOnce() + Send + 'static) {
        let job: Job = Box::new(job);
        let job = match &get().jobs {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        job();
    }
}

/// Decompress a whole stream; for tests of every encoder that writes through
/// [`CompressedWriter`].
#[cfg(test)]
pub(crate) fn decompress(compression: Compression, data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match compression {
        Compression::None => out.extend_from_slice(data),
        #[allow(clippy::unwrap_used)]
        Compression::Gzip => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
        }
        #[allow(clippy::unwrap_used)]
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(data)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Snappy => panic!("snappy is not a stream codec"),
    }
    out
}

/// The bench's records (bench/data.rs), on which a test below was found.
#[cfg(test)]
#[path = "../../bench/data.rs"]
#[allow(dead_code)]
mod bench_data;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        // Compressible but not trivial, and larger than the buffer so it crosses flushes.
        (0..20_000u32)
            .flat_map(|i| format!("{{\"id\":{i},\"name\":\"row {}\"}}\n", i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn round_trips_every_stream_codec() {
        let data = sample();
        let cases = [
            (Compression::None, 0),
            (Compression::Gzip, 1),
            (Compression::Gzip, 6),
            (Compression::Gzip, 9),
            (Compression::Zstd, 1),
            (Compression::Zstd, 3),
            (Compression::Zstd, 19),
        ];
        for (codec, level) in cases {
            let mut w = CompressedWriter::new(codec, level).unwrap();
            // Small, uneven writes, like the encoders do.
            for piece in data.chunks(37) {
                w.write_all(piece).unwrap();
            }
            let out = w.finish().unwrap();
            if codec != Compression::None {
                assert!(out.len() < data.len() / 4, "{codec} {level}: {}", out.len());
            }
            assert_eq!(decompress(codec, &out), data, "{codec} {level}");
        }
    }

    /// Bytes like API records, several blocks long, with enough variety that a wrong block
    /// order or a lost block would not decode to the same text.
    fn many_blocks(bytes: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes + 200);
        let mut i = 0u64;
        while out.len() < bytes {
            let noise = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            out.extend_from_slice(
                format!(
                    "{{\"id\":{i},\"sku\":\"S-{noise:x}\",\"qty\":{}}}\n",
                    i % 13
                )
                .as_bytes(),
            );
            i += 1;
        }
        out
    }

    #[test]
    fn gzip_of_many_blocks_is_one_member_with_the_whole_input() {
        let data = many_blocks(3 * GZIP_BLOCK + 12_345);
        for level in [0, 1, 6, 9] {
            let mut w = CompressedWriter::new(Compression::Gzip, level).unwrap();
            for piece in data.chunks(4099) {
                w.write_all(piece).unwrap();
            }
            let out = w.finish().unwrap();
            // A single-member decoder must read the whole input and stop at the very end:
            // one member, not several concatenated.
            let mut decoder = flate2::bufread::GzDecoder::new(&out[..]);
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut decoder, &mut back).unwrap();
            assert_eq!(back.len(), data.len(), "level {level}");
            assert!(back == data, "level {level}: content differs");
            assert!(
                decoder.into_inner().is_empty(),
                "level {level}: bytes after the member"
            );
            // The trailer: CRC-32 and size of the whole input.
            let n = out.len();
            assert_eq!(out[n - 8..n - 4], crc32fast::hash(&data).to_le_bytes());
            assert_eq!(out[n - 4..], (data.len() as u32).to_le_bytes());
        }
    }

    #[test]
    fn gzip_blocks_refer_back_across_block_boundaries() {
        // Every block repeats text first seen at the end of the block before: with the
        // previous block's tail as dictionary the whole stream compresses far better than
        // the blocks would alone.
        let unit: Vec<u8> = many_blocks(20_000);
        let mut data = Vec::new();
        while data.len() < 4 * GZIP_BLOCK {
            data.extend_from_slice(&unit);
        }
        let mut w = CompressedWriter::new(Compression::Gzip, 6).unwrap();
        w.write_all(&data).unwrap();
        let out = w.finish().unwrap();
        let alone: usize = data
            .chunks(GZIP_BLOCK)
            .map(|b| deflate_block(6, &[], b, Vec::new()).unwrap().len())
            .sum();
        assert!(
            out.len() < alone,
            "{} vs {alone} without dictionaries",
            out.len()
        );
        assert_eq!(decompress(Compression::Gzip, &out), data);
    }

    #[test]
    fn a_block_deflates_to_the_same_bytes_whatever_its_thread_deflated_before() {
        // Seen on a pull of the bench's order records: the same chunk's gzip bytes differed
        // between runs (decoding the same) because a worker thread's DEFLATE state, reset
        // between blocks, kept what its last block had left past the new input's end. These
        // are the order records as a pull lands them, and blocks of them where a thread that
        // had deflated one megabyte first gave other bytes than a fresh thread.
        let mut text = String::new();
        let mut i = 0;
        while text.len() < 2 * GZIP_BLOCK {
            super::bench_data::write_record(&mut text, i);
            text.push('\n');
            i += 1;
        }
        let data = text.as_bytes();
        let piece = 64 * 1024;
        let on_thread = |first: Option<usize>, at: usize, level: u32| {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        if let Some(first) = first {
                            let window = &data[first - DEFLATE_WINDOW..first];
                            deflate_block(
                                level,
                                window,
                                &data[first..first + GZIP_BLOCK],
                                Vec::new(),
                            )
                            .unwrap();
                        }
                        let window = &data[at - DEFLATE_WINDOW..at];
                        deflate_block(level, window, &data[at..at + piece], Vec::new()).unwrap()
                    })
                    .join()
                    .unwrap()
            })
        };
        for (first, at) in [(4, 10), (7, 9), (10, 10)] {
            for level in [1, 2, 6] {
                let (first, at) = (first * piece, at * piece);
                let fresh = on_thread(None, at, level);
                let after = on_thread(Some(first), at, level);
                assert!(
                    fresh == after,
                    "level {level}: the block at {at} came out {} bytes on a fresh thread, \
                     {} after one that had deflated the block at {first}",
                    fresh.len(),
                    after.len()
                );
            }
        }
        // zstd's context is kept by each thread: a frame starts from scratch all the same.
        let zstd_on_thread = |first: Option<usize>| {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        if let Some(first) = first {
                            zstd_block(3, &data[first..first + GZIP_BLOCK], Vec::new()).unwrap();
                        }
                        zstd_block(3, &data[10 * piece..11 * piece], Vec::new()).unwrap()
                    })
                    .join()
                    .unwrap()
            })
        };
        assert!(zstd_on_thread(None) == zstd_on_thread(Some(4 * piece)));
    }

    #[test]
    fn zstd_of_many_blocks_is_a_sequence_of_frames_any_decoder_reads() {
        let data = many_blocks(2 * ZSTD_BLOCK + 777);
        let mut w = CompressedWriter::new(Compression::Zstd, 3).unwrap();
        w.write_all(&data).unwrap();
        let out = w.finish().unwrap();
        assert!(decompress(Compression::Zstd, &out) == data);
        // Three frames: the frame magic number starts the stream three times.
        let magic = [0x28, 0xb5, 0x2f, 0xfd];
        let frames = out.windows(4).filter(|w| *w == magic).count();
        assert!(frames >= 3, "{frames} frames");
    }

    #[test]
    fn zstd_levels_outside_the_range_are_refused() {
        let err = CompressedWriter::new(Compression::Zstd, 99).err().unwrap();
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn empty_streams_are_valid() {
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let out = CompressedWriter::new(codec, 3).unwrap().finish().unwrap();
            assert!(decompress(codec, &out).is_empty(), "{codec}");
        }
    }

    #[test]
    fn snappy_is_not_a_stream_codec() {
        let err = CompressedWriter::new(Compression::Snappy, 0).err().unwrap();
        assert!(err.to_string().contains("parquet"));
    }
}
