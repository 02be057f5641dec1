//! Page buffers, used again and again instead of allocated for every page.
//!
//! A page's body is read (and inflated) on whichever runtime thread fetched it and dropped
//! on the encoder's thread once its records are written. Allocated afresh, every body came
//! from the heap of the thread that happened to fetch it (glibc keeps one per thread, up to
//! 16 on two cores), and each heap in turn grew to hold the few pages in flight at its
//! busiest moment and kept that memory: resident memory crept up with the length of the run
//! (issue 20, `bench/memory.sh`: +8 to +10 MiB from 1,000,000 to 10,000,000 records, all of
//! it in the threads' heaps). Recycled, the same few buffers carry every page of the run.

use bytes::Bytes;
use std::sync::{Mutex, PoisonError};

/// Buffers kept for the next pages: more than the pages a run holds at once (the page
/// channel, the encoder's page, requests in flight and one read ahead).
const KEEP: usize = 16;

/// A buffer larger than this is freed rather than kept: an odd huge page does not pin its
/// memory for the rest of the run.
const KEEP_BYTES: usize = 4 << 20;

/// The buffers of every page client in the process.
static SPARE: Spare = Spare::new();

/// An empty buffer with room for at least `capacity` bytes, a used one when there is one.
pub(super) fn take(capacity: usize) -> Vec<u8> {
    SPARE.take(capacity)
}

/// Keep `buf` for a later page (when there is room and it is not too large).
pub(super) fn give_back(buf: Vec<u8>) {
    SPARE.give_back(buf);
}

/// `buf` as the page's body; its memory comes back here when the last view of it is dropped.
pub(super) fn into_bytes(buf: Vec<u8>) -> Bytes {
    Bytes::from_owner(Recycled(buf, &SPARE))
}

/// Buffers waiting for their next page.
struct Spare(Mutex<Vec<Vec<u8>>>);

impl Spare {
    const fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    fn take(&self, capacity: usize) -> Vec<u8> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut buf = kept.unwrap_or_default();
        buf.clear();
        buf.reserve(capacity);
        buf
    }

    fn give_back(&self, buf: Vec<u8>) {
        if !worth_keeping(buf.capacity()) {
            return;
        }
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < KEEP {
            kept.push(buf);
        }
    }
}

/// Whether a buffer of `capacity` bytes is kept: not an empty one, nor a huge one.
fn worth_keeping(capacity: usize) -> bool {
    capacity > 0 && capacity <= KEEP_BYTES
}

/// A buffer that goes back to its [`Spare`] when dropped.
struct Recycled(Vec<u8>, &'static Spare);

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kept(spare: &Spare) -> usize {
        spare.0.lock().unwrap().len()
    }

    #[test]
    fn a_body_comes_back_once_its_last_view_is_dropped_and_is_taken_again_empty() {
        static SPARE: Spare = Spare::new();
        let mut buf = SPARE.take(1000);
        assert!(buf.is_empty() && buf.capacity() >= 1000);
        buf.extend_from_slice(b"{\"items\":[1,2,3]}");
        let at = buf.as_ptr();
        let body = Bytes::from_owner(Recycled(buf, &SPARE));
        let record = body.slice(10..15);
        drop(body);
        assert_eq!(kept(&SPARE), 0, "a record still points into the body");
        assert_eq!(&record[..], b"1,2,3");
        drop(record);
        assert_eq!(kept(&SPARE), 1);
        let again = SPARE.take(10);
        assert_eq!(again.as_ptr(), at, "the same memory serves the next page");
        assert!(again.is_empty() && again.capacity() >= 1000);
        assert_eq!(kept(&SPARE), 0);
    }

    #[test]
    fn huge_and_empty_buffers_are_not_kept() {
        static SPARE: Spare = Spare::new();
        SPARE.give_back(Vec::with_capacity(KEEP_BYTES + 1));
        SPARE.give_back(Vec::new());
        assert_eq!(kept(&SPARE), 0);
        SPARE.give_back(Vec::with_capacity(KEEP_BYTES));
        assert_eq!(kept(&SPARE), 1);
    }

    #[test]
    fn no_more_than_keep_buffers_are_kept() {
        static SPARE: Spare = Spare::new();
        for _ in 0..KEEP * 2 {
            SPARE.give_back(Vec::with_capacity(64));
        }
        assert_eq!(kept(&SPARE), KEEP);
    }
}
