//! Reading a page's body: within the page size limit, into a buffer sized up front, and
//! decoded here when it was sent with `Content-Encoding: gzip`.
//!
//! The HTTP client's decoder hands the body over in small pieces, each copied again into the
//! page's buffer. Here the compressed body (a few tens of KiB) is read whole, then inflated in
//! one pass into one buffer sized from the gzip trailer (ISIZE: the decoded size of the last
//! member, modulo 2^32; exact for the usual single member), never past the page size limit.
//! A body of one member is inflated by libdeflate in one call ([`inflate`]); any other (several
//! members, a trailer that misstates the size, damage) by a streaming decoder, which also
//! words the errors. The cursor chain (fetch, gunzip, parse, next request) is what sets the
//! pace of a cursor pull, so this is on it (issue 20).

use super::inflate;
use super::ApiClient;
use crate::buffers::Pool;
use bytes::Bytes;
use flate2::bufread::MultiGzDecoder;
use reqwest::header::{HeaderMap, CONTENT_ENCODING};
use std::io::Read;
use std::sync::atomic::Ordering;

/// Page bodies, compressed and decoded, used again for every page (see [`crate::buffers`]):
/// more than the pages a run holds at once (the page channel, the encoder's page, requests in
/// flight and one read ahead); a body past 4 MiB is freed, not kept.
static PAGES: Pool = Pool::new(16, 4 << 20);

/// The most a buffer is sized up front from a trailer's claim; a larger body grows past it.
const MAX_PRESIZE: u64 = 64 << 20;

/// Why a body could not be read.
#[derive(Debug)]
pub(super) enum BodyError {
    /// It is (or decodes to) more than the page size limit.
    TooLarge,
    /// The stream broke off, or its gzip is damaged (the reason).
    Broken(String),
}

impl ApiClient {
    /// The body of `resp` (answered with `status`), decoded, at most the page size limit.
    pub(super) async fn read_body(
        &self,
        resp: &mut reqwest::Response,
        headers: &HeaderMap,
        status: u16,
    ) -> Result<Bytes, BodyError> {
        let mut body = PAGES.take(self.body_capacity(resp.content_length()));
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > self.max_page_bytes {
                        return Err(BodyError::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(BodyError::Broken(super::transport_reason(&e))),
            }
        }
        if (200..300).contains(&status) {
            self.body_hint.store(body.len(), Ordering::Relaxed);
        }
        if !is_gzip(headers) {
            return Ok(PAGES.lend(body));
        }
        let decoded = gunzip(&body, self.max_page_bytes);
        PAGES.give_back(body);
        match decoded {
            Ok(decoded) => Ok(PAGES.lend(decoded)),
            Err(GunzipError::TooLarge) => Err(BodyError::TooLarge),
            Err(GunzipError::Damaged(why)) => Err(BodyError::Broken(format!(
                "the gzip body is damaged ({why})"
            ))),
        }
    }

    /// The buffer to read a body into: its stated length (compressed, for a gzip body), else
    /// the last page's length as read and an eighth more (pages of one listing are alike),
    /// never above the page size limit.
    fn body_capacity(&self, stated: Option<u64>) -> usize {
        let last = self.body_hint.load(Ordering::Relaxed) as u64;
        let guess = stated.unwrap_or(last + last / 8);
        guess.min(self.max_page_bytes).min(64 << 20) as usize
    }
}

/// Why a gzip body could not be decoded.
#[derive(Debug, PartialEq)]
enum GunzipError {
    /// It decodes to more than the limit.
    TooLarge,
    /// Not gzip, or truncated, or damaged (the reason).
    Damaged(String),
}

/// Whether the body is gzip by its headers (`Content-Encoding: gzip`, or the old `x-gzip`).
fn is_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip")
        })
}

/// What the trailer of `raw` says it decodes to (ISIZE; 0 when there is no trailer).
fn stated_size(raw: &[u8]) -> u64 {
    raw.len()
        .checked_sub(4)
        .and_then(|at| <[u8; 4]>::try_from(&raw[at..]).ok())
        .map_or(0, |isize| u64::from(u32::from_le_bytes(isize)))
}

/// The room to inflate `raw` into: what its trailer says it decodes to, within `limit` and
/// [`MAX_PRESIZE`], and one byte more, so that reading to the end needs no second allocation.
fn presize(raw: &[u8], limit: u64) -> usize {
    usize::try_from(stated_size(raw).min(limit).min(MAX_PRESIZE) + 1).unwrap_or(0)
}

/// A gzip page body decoded as a pull decodes it (see [`gunzip`]); `None` for a body that is
/// damaged or decodes past `limit`. For the micro-benchmarks (`benches/micro.rs`, group
/// `gunzip`), not an interface.
#[doc(hidden)]
pub fn gunzip_page(raw: &[u8], limit: u64) -> Option<Vec<u8>> {
    gunzip(raw, limit).ok()
}

/// Decode `raw` (one gzip member or several, concatenated) into one buffer of at most `limit`
/// bytes. An empty body stays empty (a `204` or `HEAD` answer that names its encoding).
fn gunzip(raw: &[u8], limit: u64) -> Result<Vec<u8>, GunzipError> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = PAGES.take(presize(raw, limit));
    // The usual body, one member within the limit: in one call, checked against its trailer.
    let stated = stated_size(raw);
    if stated <= limit.min(MAX_PRESIZE) {
        if let Ok(size) = usize::try_from(stated) {
            if inflate::one_member(raw, size, &mut out) {
                return Ok(out);
            }
        }
    }
    MultiGzDecoder::new(raw)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| GunzipError::Damaged(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(GunzipError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// `data` as one gzip member at level 6 (also `inflate`'s tests' bodies).
    pub(in crate::source::client) fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_body_decodes_into_one_buffer_of_its_size() {
        let page = br#"{"items":[{"id":1},{"id":2}],"next_cursor":"abc"}"#.repeat(500);
        let out = gunzip(&gz(&page), 1 << 20).unwrap();
        assert_eq!(out, page);
        assert!(out.capacity() > page.len(), "room for the whole body");
        assert_eq!(
            presize(&gz(&page), 1 << 20),
            page.len() + 1,
            "sized from the trailer"
        );
        assert_eq!(presize(&gz(&page), 1000), 1001, "never past the limit");
    }

    #[test]
    fn concatenated_members_decode_whole() {
        let mut raw = gz(b"{\"items\":[1,");
        raw.extend(gz(b"2,3]}"));
        assert_eq!(gunzip(&raw, 100).unwrap(), b"{\"items\":[1,2,3]}");
    }

    #[test]
    fn the_limit_is_kept_whatever_the_trailer_says() {
        let page = vec![b'x'; 10_000];
        let mut raw = gz(&page);
        assert_eq!(gunzip(&raw, 10_000).unwrap().len(), 10_000);
        assert_eq!(gunzip(&raw, 9_999), Err(GunzipError::TooLarge));
        // A trailer claiming 4 bytes does not let the body past the limit either.
        let at = raw.len() - 4;
        raw[at..].copy_from_slice(&4u32.to_le_bytes());
        assert!(gunzip(&raw, 9_999).is_err());
    }

    #[test]
    fn damaged_and_truncated_bodies_are_errors_and_empty_is_empty() {
        let raw = gz(br#"{"items":[]}"#);
        assert!(matches!(
            gunzip(&raw[..raw.len() - 6], 100),
            Err(GunzipError::Damaged(_))
        ));
        assert!(matches!(
            gunzip(b"{\"items\":[]}", 100),
            Err(GunzipError::Damaged(_))
        ));
        let mut flipped = raw.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        assert!(gunzip(&flipped, 100).is_err());
        assert_eq!(gunzip(b"", 100).unwrap(), b"");
    }

    #[test]
    fn gzip_is_told_by_the_content_encoding() {
        let mut h = HeaderMap::new();
        assert!(!is_gzip(&h));
        for (v, want) in [
            ("gzip", true),
            ("GZIP", true),
            ("x-gzip", true),
            ("br", false),
            ("identity", false),
        ] {
            h.insert(CONTENT_ENCODING, v.parse().unwrap());
            assert_eq!(is_gzip(&h), want, "{v}");
        }
    }
}
