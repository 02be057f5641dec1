//! An object read in order through one streamed GET, a part at a time
//! ([`ObjectReader::sequential`]): how `--land as-is` reads an object larger than one part.
//!
//! Why one GET rather than a ranged GET per part: some S3 endpoints read the whole object for
//! every range they serve (moto reads its spool from the start: 8 MiB ranges of a 32 MiB
//! object ran at half its whole-object rate in issue 16's benchmark), every range is one more
//! request and round trip, and the verifier needs the bytes in order anyway. Parts are taken
//! off the stream only as the caller asks for them: while it waits (for a part permit), the
//! body is not read and TCP's window holds the sender back, so memory stays bounded by the
//! parts handed out, as with ranged GETs.
//!
//! A body that breaks off (or ends early) is opened again from the first byte not yet
//! received, pinned to the same version or ETag, with the object reads' backoff; each part
//! has the retry policy's attempts for that. Every open checks that the answer starts where
//! it was asked to (a server that ignores `Range` would otherwise hand back the wrong bytes).

use super::{
    content_range_start, quoted, range_start, transport_failure, ObjectHead, ObjectReader,
};
use crate::objects::error::ObjectError;
use crate::objects::s3::{classify_sdk, Failure};
use crate::objects::{ObjectLocation, ObjectRef};
use aws_sdk_s3::primitives::ByteStream;
use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use reqwest::header::{IF_MATCH, RANGE};
use std::ops::Range;

/// One object's bytes in order, from one GET (re-opened after a break). See the module doc.
pub struct SequentialRead {
    reader: ObjectReader,
    object: ObjectRef,
    head: ObjectHead,
    name: String,
    /// The first byte not yet handed out.
    offset: u64,
    end: u64,
    /// Bytes received and not yet handed out (the rest of the last chunk).
    ahead: Bytes,
    body: Option<Body>,
}

enum Body {
    S3(ByteStream),
    Url(BoxStream<'static, reqwest::Result<Bytes>>),
}

impl Body {
    /// The next chunk; `None` at the end; a transport error as text (without any URL).
    async fn next(&mut self) -> Option<Result<Bytes, String>> {
        match self {
            Body::S3(s) => s.next().await.map(|r| r.map_err(|e| e.to_string())),
            Body::Url(s) => s
                .next()
                .await
                .map(|r| r.map_err(|e| crate::report::error_chain(&e.without_url()))),
        }
    }
}

impl ObjectReader {
    /// Bytes `range` of `obj` as pinned by `head`, to be taken in order with
    /// [`SequentialRead::next_part`]. Nothing is sent before the first part is asked for.
    pub fn sequential(
        &self,
        obj: &ObjectRef,
        head: &ObjectHead,
        range: Range<u64>,
    ) -> Result<SequentialRead, ObjectError> {
        let name = self.check_range(obj, head, &range)?;
        Ok(SequentialRead {
            reader: self.clone(),
            object: obj.clone(),
            head: head.clone(),
            name,
            offset: range.start,
            end: range.end,
            ahead: Bytes::new(),
            body: None,
        })
    }
}

impl SequentialRead {
    /// The bytes not handed out yet.
    pub fn remaining(&self) -> u64 {
        self.end - self.offset
    }

    /// The next `len` bytes (at most [`SequentialRead::remaining`]).
    pub async fn next_part(&mut self, len: u64) -> Result<Bytes, ObjectError> {
        if len > self.remaining() {
            return Err(ObjectError::Failed {
                object: self.name.clone(),
                cause: format!(
                    "{len} bytes asked for at byte {} where {} are left",
                    self.offset,
                    self.remaining()
                ),
            });
        }
        let want = len as usize;
        let policy = self.reader.retrier.policy().clone();
        let mut breaks: u32 = 0;
        let started = std::time::Instant::now();
        let mut part = BytesMut::new();
        loop {
            if part.is_empty() && self.ahead.len() >= want {
                // The whole part is in one chunk: no copy.
                self.offset += len;
                return Ok(self.ahead.split_to(want));
            }
            if !self.ahead.is_empty() {
                if part.capacity() == 0 {
                    part.reserve(want);
                }
                let take = self.ahead.len().min(want - part.len());
                part.extend_from_slice(&self.ahead.split_to(take));
            }
            if part.len() == want {
                self.offset += len;
                return Ok(part.freeze());
            }
            let at = self.offset + part.len() as u64;
            if self.body.is_none() {
                self.body = Some(self.open(at).await?);
            }
            let broke = match self.body.as_mut().map(|b| b.next()) {
                Some(next) => match next.await {
                    Some(Ok(chunk)) => {
                        self.ahead = chunk;
                        continue;
                    }
                    Some(Err(e)) => format!("the body broke off at byte {at}: {e}"),
                    None => format!(
                        "the body ended at byte {at} of {}..{}",
                        self.offset, self.end
                    ),
                },
                None => continue,
            };
            // Open again from the first byte not received; bytes already in `part` are kept.
            self.body = None;
            breaks += 1;
            if breaks >= policy.max_attempts.max(1) {
                return Err(ObjectError::GaveUp {
                    object: self.name.clone(),
                    attempts: breaks,
                    elapsed: started.elapsed(),
                    cause: broke,
                });
            }
            tracing::debug!("{}: {broke}; opening it again", self.name);
            tokio::time::sleep(crate::retry::backoff(&policy, breaks)).await;
        }
    }

    /// A GET of bytes `from..end`, pinned to the head, under the retry policy.
    async fn open(&self, from: u64) -> Result<Body, ObjectError> {
        let (end, head) = (self.end, &self.head);
        let spec = format!("bytes={from}-{}", end - 1);
        let whole = from == 0 && end == head.size;
        let pinned = head.pinned();
        match &self.object.location {
            ObjectLocation::S3 { bucket, key } => {
                let s3 = self.reader.s3_for(&self.name)?;
                self.reader
                    .retried(&self.name, &pinned, || {
                        let mut r = s3.client.get_object().bucket(bucket).key(key).range(&spec);
                        match (&head.version_id, &head.etag) {
                            (Some(v), _) => r = r.version_id(v),
                            (None, Some(e)) => r = r.if_match(quoted(e)),
                            _ => {}
                        }
                        async move {
                            let out = r.send().await.map_err(|e| classify_sdk(&e))?;
                            let start = out.content_range().and_then(content_range_start);
                            check_start(start, from, whole)?;
                            let length = out.content_length().and_then(|n| u64::try_from(n).ok());
                            if length.is_some_and(|n| n != end - from) {
                                return Err(Failure::Fatal {
                                    cause: format!(
                                        "asked for {} bytes from {from}, the answer has {length:?}",
                                        end - from
                                    ),
                                });
                            }
                            Ok(Body::S3(out.body))
                        }
                    })
                    .await
            }
            ObjectLocation::Url { url } => {
                let parsed = self.reader.inner.hosts.check(url)?;
                let http = &self.reader.inner.http;
                self.reader
                    .retried(&self.name, &pinned, || {
                        let mut r = http.get(parsed.clone()).header(RANGE, &spec);
                        if let Some(e) = &head.etag {
                            r = r.header(IF_MATCH, quoted(e));
                        }
                        async move {
                            let resp = r.send().await.map_err(transport_failure)?;
                            let status = resp.status().as_u16();
                            match status {
                                206 => check_start(range_start(resp.headers()), from, whole)?,
                                200 if whole => {}
                                200 => {
                                    return Err(Failure::Fatal {
                                        cause:
                                            "the server ignores byte ranges (200 instead of 206)"
                                                .into(),
                                    })
                                }
                                _ => {
                                    let headers = resp.headers().clone();
                                    return Err(super::failure_of(status, &headers, resp).await);
                                }
                            }
                            Ok(Body::Url(resp.bytes_stream().boxed()))
                        }
                    })
                    .await
            }
        }
    }
}

/// An answer must start at the byte asked for, unless it is the whole object.
fn check_start(start: Option<u64>, from: u64, whole: bool) -> Result<(), Failure> {
    match start {
        Some(s) if s == from => Ok(()),
        None if whole => Ok(()),
        _ => Err(Failure::Fatal {
            cause: format!(
                "asked for bytes from {from}, the answer's Content-Range starts at {start:?}"
            ),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_must_start_where_it_was_asked_to() {
        assert_eq!(content_range_start("bytes 100-199/1234"), Some(100));
        assert_eq!(content_range_start("bytes */1234"), None);
        assert!(check_start(Some(5), 5, false).is_ok());
        assert!(check_start(None, 0, true).is_ok());
        assert!(check_start(Some(0), 5, false).is_err());
        assert!(check_start(None, 5, false).is_err());
    }
}
