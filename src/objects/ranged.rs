//! An object's bytes as one ordered stream of ranged reads ([`ranged_stream`]), for
//! `--land records`: the decoder needs the bytes in order, so ranges are fetched a few at a
//! time ahead of it (`readahead` in flight, each `part_size` long) and handed on in order.
//! Memory stays at `readahead × part_size` however large the object is.
//!
//! Every byte handed on is first fed to a [`ByteCheck`] (the object's size and checksum
//! verifier): when the last range is read the check is finished, and a mismatch is the
//! stream's last item — an error — so the unit fails instead of marking a corrupt object
//! done. The seam is a trait so the stream is tested on local bytes without S3.

use super::records::{ByteStream, ReadFailure};
use super::{ObjectError, ObjectHead, ObjectReader, ObjectRef, ObjectVerifier};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use std::future::Future;
use std::ops::Range;

/// Checks the bytes of an object fed in order (its size, its checksum).
pub trait ByteCheck: Send + 'static {
    fn update(&mut self, data: &[u8]);
    /// After the last byte: `Err` when what was read is not the object's.
    fn finish(self: Box<Self>) -> Result<(), ReadFailure>;
}

/// No check (the caller verifies elsewhere, or nothing is known about the object).
pub struct NoCheck;

impl ByteCheck for NoCheck {
    fn update(&mut self, _data: &[u8]) {}
    fn finish(self: Box<Self>) -> Result<(), ReadFailure> {
        Ok(())
    }
}

impl ByteCheck for ObjectVerifier {
    fn update(&mut self, data: &[u8]) {
        ObjectVerifier::update(self, data);
    }
    fn finish(self: Box<Self>) -> Result<(), ReadFailure> {
        ObjectVerifier::finish(*self)
            .map(|_| ())
            .map_err(ReadFailure::from)
    }
}

/// `obj`'s bytes as pinned by `head` (its ETag or version: an object that changes while it
/// is read is an error), read with `reader` in ranges of `part_size`, `readahead` at once,
/// and verified (size, the reference's and S3's checksums) as they are handed on.
pub fn object_stream(
    reader: ObjectReader,
    obj: &ObjectRef,
    head: &ObjectHead,
    part_size: u64,
    readahead: usize,
) -> Result<ByteStream, ObjectError> {
    let verifier = ObjectVerifier::new(obj, head)?;
    let (obj, pinned) = (obj.clone(), head.clone());
    Ok(ranged_stream(
        head.size,
        part_size,
        readahead,
        move |range| {
            let (reader, obj, pinned) = (reader.clone(), obj.clone(), pinned.clone());
            async move {
                reader
                    .get_range(&obj, &pinned, range)
                    .await
                    .map_err(ReadFailure::from)
            }
        },
        Box::new(verifier),
    ))
}

/// The ranges `[0, size)` is read in, `part_size` bytes each.
fn ranges(size: u64, part_size: u64) -> impl Iterator<Item = Range<u64>> + Send {
    let part = part_size.max(1);
    (0..size.div_ceil(part)).map(move |i| i * part..((i + 1) * part).min(size))
}

/// The `size` bytes of an object as a stream, read by `fetch` one range at a time with up to
/// `readahead` ranges in flight, in order, each fed to `check` before it is handed on.
pub fn ranged_stream<F, Fut>(
    size: u64,
    part_size: u64,
    readahead: usize,
    fetch: F,
    check: Box<dyn ByteCheck>,
) -> ByteStream
where
    F: Fn(Range<u64>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Bytes, ReadFailure>> + Send + 'static,
{
    let pieces = stream::iter(ranges(size, part_size))
        .map(move |range| {
            let want = range.end - range.start;
            let read = fetch(range.clone());
            async move {
                let bytes = read.await?;
                if bytes.len() as u64 != want {
                    return Err(ReadFailure::from(format!(
                        "bytes {}-{} came back as {} bytes, not {want}",
                        range.start,
                        range.end.saturating_sub(1),
                        bytes.len()
                    )));
                }
                Ok(bytes)
            }
        })
        .buffered(readahead.max(1));
    // Feed the check in order; after the last piece (or at once for an empty object), its
    // verdict. After an error nothing more is read.
    let state = (Box::pin(pieces), Some(check));
    stream::unfold(state, |(mut pieces, check)| async move {
        let mut check = check?;
        match pieces.next().await {
            Some(Ok(bytes)) => {
                check.update(&bytes);
                Some((Ok(bytes), (pieces, Some(check))))
            }
            Some(Err(e)) => Some((Err(e), (pieces, None))),
            None => match check.finish() {
                Ok(()) => None,
                Err(e) => Some((Err(e), (pieces, None))),
            },
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct CountCheck {
        want: u64,
        seen: u64,
    }

    impl ByteCheck for CountCheck {
        fn update(&mut self, data: &[u8]) {
            self.seen += data.len() as u64;
        }
        fn finish(self: Box<Self>) -> Result<(), ReadFailure> {
            if self.seen == self.want {
                Ok(())
            } else {
                Err(format!("read {} bytes, the object has {}", self.seen, self.want).into())
            }
        }
    }

    async fn collect(s: ByteStream) -> Result<Vec<u8>, String> {
        let items: Vec<_> = s.collect().await;
        let mut out = Vec::new();
        for i in items {
            out.extend_from_slice(&i.map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn ranges_arrive_in_order_whatever_order_they_finish_in() {
        let data: Arc<Vec<u8>> = Arc::new((0..10_000u32).map(|i| (i % 251) as u8).collect());
        for (size, part) in [
            (10_000u64, 333u64),
            (10_000, 10_000),
            (10_000, 20_000),
            (0, 8),
            (1, 8),
        ] {
            let d = data.clone();
            let calls = Arc::new(AtomicUsize::new(0));
            let c = calls.clone();
            let s = ranged_stream(
                size,
                part,
                4,
                move |r: Range<u64>| {
                    let d = d.clone();
                    c.fetch_add(1, Ordering::SeqCst);
                    async move {
                        // Later ranges finish first.
                        let delay = 5u64.saturating_sub(r.start / 333 % 5);
                        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                        Ok(Bytes::copy_from_slice(&d[r.start as usize..r.end as usize]))
                    }
                },
                Box::new(CountCheck {
                    want: size,
                    seen: 0,
                }),
            );
            let got = collect(s).await.unwrap();
            assert_eq!(got, data[..size as usize]);
            assert_eq!(calls.load(Ordering::SeqCst) as u64, size.div_ceil(part));
        }
    }

    #[tokio::test]
    async fn a_short_range_or_a_failed_check_ends_the_stream_with_an_error() {
        let short = ranged_stream(
            100,
            40,
            2,
            |r: Range<u64>| async move {
                let n = if r.start == 40 {
                    10
                } else {
                    (r.end - r.start) as usize
                };
                Ok(Bytes::from(vec![b'x'; n]))
            },
            Box::new(NoCheck),
        );
        let e = collect(short).await.unwrap_err();
        assert!(e.contains("bytes 40-79 came back as 10 bytes"), "{e}");
        let failed = ranged_stream(
            10,
            4,
            2,
            |r: Range<u64>| async move { Ok(Bytes::from(vec![b'x'; (r.end - r.start) as usize])) },
            Box::new(CountCheck { want: 11, seen: 0 }),
        );
        let e = collect(failed).await.unwrap_err();
        assert!(e.contains("read 10 bytes, the object has 11"), "{e}");
        let errs = ranged_stream(
            10,
            4,
            2,
            |_r: Range<u64>| async move { Err::<Bytes, _>(ReadFailure::from("404 NoSuchKey")) },
            Box::new(NoCheck),
        );
        let items: Vec<_> = errs.collect().await;
        assert_eq!(items.len(), 1, "nothing is read after an error");
    }
}
