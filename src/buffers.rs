//! Byte buffers kept for reuse, process-wide, instead of allocated for every page or block.
//!
//! glibc gives each thread a heap of its own (up to 16 on two cores), and a heap keeps what
//! it grew to. A buffer allocated afresh for every page, on whichever thread happened to
//! fetch it, made every heap grow in turn to hold the pages in flight at its busiest moment:
//! resident memory crept up with the length of the run (issue 20, `bench/memory.sh`: +8 to
//! +10 MiB from 1,000,000 to 10,000,000 records, all of it in the threads' heaps). Recycled,
//! the same few buffers carry every page (and every compression block) of the run.

use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Buffers waiting for their next use: at most `keep` of them, none larger than `keep_bytes`
/// (an odd huge one is freed, not kept for the rest of the run).
pub(crate) struct Pool {
    kept: Mutex<Vec<Vec<u8>>>,
    keep: usize,
    keep_bytes: usize,
}

impl Pool {
    pub(crate) const fn new(keep: usize, keep_bytes: usize) -> Self {
        Self {
            kept: Mutex::new(Vec::new()),
            keep,
            keep_bytes,
        }
    }

    /// An empty buffer with room for at least `capacity` bytes, a used one when there is one.
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut buf = kept.unwrap_or_default();
        buf.clear();
        // Exactly: a kept buffer smaller than asked grows to the size asked, not to twice its
        // own (which could pass the pool's limit and be freed when given back).
        buf.reserve_exact(capacity);
        buf
    }

    /// Keep `buf` for later (when there is room, and it is neither empty nor too large).
    pub(crate) fn give_back(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > self.keep_bytes {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < self.keep {
            kept.push(buf);
        }
    }

    /// `buf` lent out as shared bytes; its memory comes back here when the last view is
    /// dropped.
    pub(crate) fn lend(&'static self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Recycled(buf, self))
    }
}

/// A buffer that goes back to its [`Pool`] when dropped.
struct Recycled(Vec<u8>, &'static Pool);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.1.give_back(std::mem::take(&mut self.0));
    }
}

/// The size of the last output of its kind (a chunk's compressed stream, a parquet file), to
/// size the next one's buffer at once: the chunks of a run are alike, and a buffer of megabytes
/// grown by doubling is copied about twice over and leaves each smaller size behind as a hole
/// in its thread's heap. A buffer of 16 MiB or more is mapped on its own (see `main.rs`), so
/// room asked for and never written costs address space, not memory.
pub(crate) struct SizeHint(AtomicUsize);

impl SizeHint {
    pub(crate) const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    /// Capacity for the next output: the last one's size plus an eighth (0 before the first).
    pub(crate) fn capacity(&self) -> usize {
        let last = self.0.load(Ordering::Relaxed);
        last + last / 8
    }

    pub(crate) fn record(&self, len: usize) {
        self.0.store(len, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kept(pool: &Pool) -> usize {
        pool.kept.lock().unwrap().len()
    }

    #[test]
    fn a_size_hint_is_the_last_size_plus_an_eighth() {
        let hint = SizeHint::new();
        assert_eq!(hint.capacity(), 0, "nothing known before the first output");
        hint.record(16 << 20);
        assert_eq!(hint.capacity(), 18 << 20);
        hint.record(800);
        assert_eq!(hint.capacity(), 900, "the last size, not the largest");
    }

    #[test]
    fn bytes_come_back_once_the_last_view_is_dropped_and_are_taken_again_empty() {
        static POOL: Pool = Pool::new(4, 1 << 20);
        let mut buf = POOL.take(1000);
        assert!(buf.is_empty() && buf.capacity() >= 1000);
        buf.extend_from_slice(b"{\"items\":[1,2,3]}");
        let at = buf.as_ptr();
        let body = POOL.lend(buf);
        let record = body.slice(10..15);
        drop(body);
        assert_eq!(kept(&POOL), 0, "a record still points into the body");
        assert_eq!(&record[..], b"1,2,3");
        drop(record);
        assert_eq!(kept(&POOL), 1);
        let again = POOL.take(10);
        assert_eq!(again.as_ptr(), at, "the same memory serves again");
        assert!(again.is_empty() && again.capacity() >= 1000);
        assert_eq!(kept(&POOL), 0);
    }

    #[test]
    fn huge_and_empty_buffers_are_not_kept() {
        static POOL: Pool = Pool::new(4, 1 << 20);
        POOL.give_back(Vec::with_capacity((1 << 20) + 1));
        POOL.give_back(Vec::new());
        assert_eq!(kept(&POOL), 0);
        POOL.give_back(Vec::with_capacity(1 << 20));
        assert_eq!(kept(&POOL), 1);
    }

    #[test]
    fn no_more_than_keep_buffers_are_kept() {
        static POOL: Pool = Pool::new(4, 1 << 20);
        for _ in 0..10 {
            POOL.give_back(Vec::with_capacity(64));
        }
        assert_eq!(kept(&POOL), 4);
    }
}
