//! A gzip body of exactly one member, inflated in one call by libdeflate.
//!
//! libdeflate decodes a whole buffer into a whole buffer (no streaming state to keep between
//! calls): a page of 500 records decodes 2.6 times as fast as through the streaming decoder
//! every page used before (`cargo bench --bench micro -- gunzip`; bench/README, issue 20
//! round ten). It needs the decoded size up front, which the gzip trailer states (ISIZE) for
//! a body of one member, and it checks that trailer (CRC-32 and size) itself.
//!
//! It answers only for a body that is one member from its first byte to its last. Anything
//! else (several members, bytes after the member, a trailer whose size is not the true one,
//! damage of any kind) is declined, and the caller reads the body with the streaming decoder,
//! which handles every case and words the errors as before.

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_SUCCESS,
};
use std::cell::RefCell;
use std::ptr::NonNull;

/// One libdeflate decompressor (its decode tables), made once per thread that reads bodies:
/// a page decodes in under a tenth of a millisecond, where allocating one each time would show.
struct Decompressor(NonNull<libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Option<Self> {
        // SAFETY: no arguments; a null result (out of memory) is handled below.
        NonNull::new(unsafe { libdeflate_alloc_decompressor() }).map(Self)
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `libdeflate_alloc_decompressor` and is freed once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Decode `raw`, one gzip member whose decoded size is `size`, onto the end of `out` (whose
/// spare capacity must hold `size` bytes). True when it did; false, with `out` as it was,
/// when `raw` is not exactly one intact member of that size or there is not room.
pub(super) fn one_member(raw: &[u8], size: usize, out: &mut Vec<u8>) -> bool {
    if out.capacity() - out.len() < size {
        return false;
    }
    DECOMPRESSOR.with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return false;
        };
        if slot.is_none() {
            *slot = Decompressor::new();
        }
        let Some(d) = slot.as_ref() else {
            return false;
        };
        let start = out.len();
        let spare = out.spare_capacity_mut();
        let (mut read, mut written) = (0usize, 0usize);
        // SAFETY: `raw` is read within its length; libdeflate writes at most `size` bytes
        // into `spare`, which holds at least that many (checked above); `read` and
        // `written` are plain out-parameters. The decompressor is this thread's alone.
        let result = unsafe {
            libdeflate_gzip_decompress_ex(
                d.0.as_ptr(),
                raw.as_ptr().cast(),
                raw.len(),
                spare.as_mut_ptr().cast(),
                size,
                &mut read,
                &mut written,
            )
        };
        // One member, all of `raw`, decoded to the size its trailer states (libdeflate has
        // checked the trailer's CRC-32 and size against what it wrote).
        if result != libdeflate_result_LIBDEFLATE_SUCCESS || read != raw.len() || written != size {
            return false;
        }
        // SAFETY: libdeflate initialised the first `written` (= `size`) spare bytes.
        unsafe { out.set_len(start + written) };
        true
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::body::tests::gz;
    use super::*;

    fn decode(raw: &[u8], size: usize, room: usize) -> Option<Vec<u8>> {
        let mut out = b"kept".to_vec();
        out.reserve_exact(room);
        let before = out.capacity();
        let ok = one_member(raw, size, &mut out);
        assert_eq!(out.capacity(), before, "never grows the buffer");
        if ok {
            assert_eq!(&out[..4], b"kept", "appends after what was there");
            Some(out[4..].to_vec())
        } else {
            assert_eq!(out, b"kept", "left as it was");
            None
        }
    }

    #[test]
    fn one_member_decodes_in_one_call() {
        let page = br#"{"items":[{"id":1,"s":"caf\u00e9"}],"next":"abc"}"#.repeat(300);
        let raw = gz(&page);
        assert_eq!(decode(&raw, page.len(), page.len()).unwrap(), page);
        // Again on the same thread's decompressor, and an empty member.
        assert_eq!(decode(&raw, page.len(), page.len() + 9).unwrap(), page);
        assert_eq!(decode(&gz(b""), 0, 0).unwrap(), b"");
    }

    #[test]
    fn anything_but_one_whole_member_of_the_stated_size_is_declined() {
        let page = b"{\"items\":[1,2,3]}".repeat(50);
        let raw = gz(&page);
        let n = page.len();
        // Too little room, or a size that is not the true one either way.
        assert!(decode(&raw, n, n - 1).is_none());
        assert!(decode(&raw, n - 1, n).is_none());
        assert!(decode(&raw, n + 1, n + 1).is_none());
        // A second member, or anything else after the first: the streaming decoder's case.
        let mut two = raw.clone();
        two.extend(gz(&page));
        assert!(decode(&two, n, n).is_none());
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(decode(&trailing, n, n).is_none());
        // Truncated, a damaged CRC, damaged data, not gzip at all.
        assert!(decode(&raw[..raw.len() - 1], n, n).is_none());
        let mut crc = raw.clone();
        let at = crc.len() - 8;
        crc[at] ^= 1;
        assert!(decode(&crc, n, n).is_none());
        let mut data = raw.clone();
        let mid = data.len() / 2;
        data[mid] ^= 0x55;
        assert!(decode(&data, n, n).is_none());
        assert!(decode(&page, n, n).is_none());
        assert!(decode(b"", 0, 0).is_none());
    }
}
