//! The stream codec around jsonl and csv chunks: none, gzip (flate2 on the zlib-rs backend) or
//! zstd, all writing into an in-memory `Vec<u8>` because a chunk is uploaded as one object.
//!
//! Encoders write many small pieces (a record, then a newline; a csv field at a time), and
//! every `write` into a compressor costs a call into its state machine. So the compressing
//! variants sit behind a 64 KiB buffer and the codec sees large, even writes.
//!
//! zstd runs on the calling thread. Its multithreaded mode (`NbWorkers`, the crate's
//! `zstdmt` feature) was measured on the 2-core target with 118 MiB of API-like jsonl:
//! level 3 went from 611 MiB/s on one thread to 1055 MiB/s with two workers, level 6 from
//! 155 to 331 MiB/s. Single-threaded level 3 is already far faster than any API hands out
//! pages, and the second core is the one fetching, parsing and uploading, so the extra
//! threads (and the C build option) were left out. Revisit if high levels become common.
//!
//! Parquet does not use this: its codecs work per page inside the file.

use super::Compression;
use flate2::write::GzEncoder;
use std::io::{self, BufWriter, Write};

/// Size of the buffer in front of a compressor.
const BUFFER_BYTES: usize = 64 * 1024;

/// A `Write` that compresses into memory; [`CompressedWriter::finish`] returns the bytes of
/// the complete stream (with the gzip trailer or zstd end frame written).
pub struct CompressedWriter {
    inner: Inner,
}

enum Inner {
    Plain(Vec<u8>),
    Gzip(BufWriter<GzEncoder<Vec<u8>>>),
    Zstd(BufWriter<zstd::stream::write::Encoder<'static, Vec<u8>>>),
}

impl CompressedWriter {
    /// A writer for `compression` at `level` (as from [`super::EncodeOptions::level_or_default`];
    /// ignored for `None`). `Snappy` is a parquet page codec, not a stream codec: rejected.
    pub fn new(compression: Compression, level: i32) -> io::Result<Self> {
        let inner = match compression {
            Compression::None => Inner::Plain(Vec::with_capacity(BUFFER_BYTES)),
            Compression::Gzip => {
                let level = u32::try_from(level.clamp(0, 9)).unwrap_or(6);
                Inner::Gzip(BufWriter::with_capacity(
                    BUFFER_BYTES,
                    GzEncoder::new(Vec::new(), flate2::Compression::new(level)),
                ))
            }
            Compression::Zstd => {
                let encoder = zstd::stream::write::Encoder::new(Vec::new(), level)?;
                Inner::Zstd(BufWriter::with_capacity(BUFFER_BYTES, encoder))
            }
            Compression::Snappy => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "snappy is a parquet page codec and cannot compress a jsonl or csv stream",
                ))
            }
        };
        Ok(Self { inner })
    }

    /// Compressed bytes produced so far (excluding what sits in buffers). A cheap progress
    /// hint, not an exact size until [`CompressedWriter::finish`].
    pub fn compressed_len(&self) -> usize {
        match &self.inner {
            Inner::Plain(v) => v.len(),
            Inner::Gzip(w) => w.get_ref().get_ref().len(),
            Inner::Zstd(w) => w.get_ref().get_ref().len(),
        }
    }

    /// Flush the buffer, end the stream and return its bytes.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self.inner {
            Inner::Plain(v) => Ok(v),
            Inner::Gzip(w) => w.into_inner().map_err(|e| e.into_error())?.finish(),
            Inner::Zstd(w) => w.into_inner().map_err(|e| e.into_error())?.finish(),
        }
    }
}

impl Write for CompressedWriter {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(v) => {
                v.extend_from_slice(buf);
                Ok(buf.len())
            }
            Inner::Gzip(w) => w.write(buf),
            Inner::Zstd(w) => w.write(buf),
        }
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(v) => {
                v.extend_from_slice(buf);
                Ok(())
            }
            Inner::Gzip(w) => w.write_all(buf),
            Inner::Zstd(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(_) => Ok(()),
            Inner::Gzip(w) => w.flush(),
            Inner::Zstd(w) => w.flush(),
        }
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
            flate2::read::MultiGzDecoder::new(data)
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
