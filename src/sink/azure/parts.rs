//! Multi-part writes on a block blob: each part is one block (`Put Block`, or `Put Block From
//! URL` when the service reads the bytes itself), found again after a crash with `Get Block
//! List` (uncommitted), and made the blob in one `Put Block List` carrying the write's
//! condition — until then readers see the old blob or none.
//!
//! Block ids are derived from (upload, part) and all have one length, as Azure requires of the
//! blocks of a blob: 16 hex digits of SHA-256(upload), `-`, the part in 8 digits — 25 bytes,
//! the same length as the ids of `put`'s own staged blocks. Azure keeps uncommitted blocks for
//! a week, and discards all of a blob's uncommitted blocks when any write to it commits.
//!
//! Never: put the presigned source URL of a server-side copy in an error or log (it travels
//! only in the `x-ms-copy-source` header; errors show it without its query string).

use super::{error_code, service_message, status_and_code, AzureSink, Op};
use crate::sink::{
    check_part, missing_parts_error, url_without_query, ETag, PutMode, PutResult, Sink, SinkError,
};
use azure_storage_blob::models::{
    BlockBlobClientCommitBlockListOptions, BlockBlobClientCommitBlockListResultHeaders,
    BlockBlobClientStageBlockFromUrlOptions, BlockBlobClientStageBlockOptions, BlockListType,
    BlockLookupList, HttpRange,
};
use bytes::Bytes;
use md5::Md5;
use sha2::{Digest, Sha256};

/// The options of a `Put Block` carrying the block's MD5 (`Content-MD5`): the service checks
/// the bytes it received against it and refuses the block (`Md5Mismatch`) if they differ, so
/// a body damaged between here and the service is never committed. (Without it the service
/// computes a CRC64 of the block to answer with; Azurite does that in JavaScript, byte by
/// byte, which was most of its CPU for a copy of large objects.)
pub(super) async fn stage_block_options(data: &Bytes) -> BlockBlobClientStageBlockOptions<'static> {
    block_options(crate::sink::hash_off_runtime(data, |d| Md5::digest(d).to_vec()).await)
}

/// The options of a `Put Block` whose bytes have the MD5 `md5`.
pub(super) fn block_options(md5: Vec<u8>) -> BlockBlobClientStageBlockOptions<'static> {
    BlockBlobClientStageBlockOptions {
        transactional_content_md5: Some(md5),
        ..Default::default()
    }
}

/// The raw (before base64) block id of part `part` of `upload`.
pub(super) fn block_id(upload: &str, part: u32) -> Vec<u8> {
    format!("{}-{part:08}", upload_tag(upload)).into_bytes()
}

/// 16 hex digits naming `upload` in block ids: fixed length whatever the id's length.
fn upload_tag(upload: &str) -> String {
    hex::encode(&Sha256::digest(upload.as_bytes())[..8])
}

/// The part number of a block id of the upload tagged `tag`, if it is one.
fn part_of(tag: &str, id: &[u8]) -> Option<u32> {
    let id = std::str::from_utf8(id).ok()?;
    let digits = id.strip_prefix(tag)?.strip_prefix('-')?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The parts of the upload tagged `tag` among `ids`, sorted and without repeats.
fn parts_among(tag: &str, ids: impl IntoIterator<Item = Vec<u8>>) -> Vec<u32> {
    let mut parts: Vec<u32> = ids.into_iter().filter_map(|id| part_of(tag, &id)).collect();
    parts.sort_unstable();
    parts.dedup();
    parts
}

/// What the service says when it does not implement an operation (Azurite before 3.37 for
/// `Put Block From URL`).
const NOT_IMPLEMENTED: &str = "APINotImplemented";

/// What the service says when it could not read a copy source.
const CANNOT_VERIFY_SOURCE: &str = "CannotVerifyCopySource";

impl AzureSink {
    pub(super) async fn stage_part_blob(
        &self,
        path: &str,
        upload: &str,
        part: u32,
        data: Bytes,
    ) -> Result<(), SinkError> {
        let url = self.url_of(path);
        check_part(&url, upload, part)?;
        let client = self.block_blob_client(path)?;
        let id = block_id(upload, part);
        let options = stage_block_options(&data).await;
        self.timed(&url, async {
            let len = data.len() as u64;
            client
                .stage_block(&id, len, data.into(), Some(options))
                .await
                .map(|_| ())
                .map_err(|e| self.map_err(e, &url, Op::Other))
        })
        .await
    }

    pub(super) async fn staged_parts_blob(
        &self,
        path: &str,
        upload: &str,
    ) -> Result<Vec<u32>, SinkError> {
        let url = self.url_of(path);
        check_part(&url, upload, 0)?;
        let client = self.block_blob_client(path)?;
        let tag = upload_tag(upload);
        self.timed(&url, async {
            let rsp = match client
                .get_block_list(BlockListType::Uncommitted, None)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    // No blob and no blocks: nothing staged (a missing container is an error).
                    return match status_and_code(&e) {
                        (Some(404), code) if code.as_deref() != Some("ContainerNotFound") => {
                            Ok(Vec::new())
                        }
                        _ => Err(self.map_err(e, &url, Op::Other)),
                    };
                }
            };
            let list = rsp
                .into_model()
                .map_err(|e| self.map_err(e, &url, Op::Other))?;
            let ids = list
                .uncommitted_blocks
                .unwrap_or_default()
                .into_iter()
                .filter_map(|b| b.name);
            Ok(parts_among(&tag, ids))
        })
        .await
    }

    pub(super) async fn commit_parts_blob(
        &self,
        path: &str,
        upload: &str,
        parts: u32,
        mode: PutMode,
    ) -> Result<PutResult, SinkError> {
        let url = self.url_of(path);
        check_part(&url, upload, parts.saturating_sub(1))?;
        let client = self.block_blob_client(path)?;
        let (if_match, if_none_match) = super::conditions(&mode);
        // `latest` rather than `uncommitted`: if the service committed but its answer was lost,
        // the SDK's retry finds the same blocks committed and succeeds again.
        let list = BlockLookupList {
            latest: Some((0..parts).map(|p| block_id(upload, p)).collect()),
            ..Default::default()
        };
        let body = list
            .try_into()
            .map_err(|e| self.map_err(e, &url, Op::Other))?;
        let options = BlockBlobClientCommitBlockListOptions {
            if_match,
            if_none_match,
            ..Default::default()
        };
        let committed = self
            .timed(&url, async {
                Ok(match client.commit_block_list(body, Some(options)).await {
                    Ok(rsp) => rsp.etag(),
                    Err(e) => Err(e),
                })
            })
            .await?;
        let etag = match committed {
            Ok(etag) => etag,
            Err(e) if error_code(&e).as_deref() == Some("InvalidBlockList") => {
                // A part is not staged: say which, rather than the service's bare code.
                let staged = self.staged_parts_blob(path, upload).await?;
                return Err(missing_parts_error(&url, upload, parts, &staged)
                    .unwrap_or_else(|| self.map_err(e, &url, Op::Put(&mode))));
            }
            Err(e) => return Err(self.map_err(e, &url, Op::Put(&mode))),
        };
        let etag = etag.ok_or_else(|| SinkError::Http {
            url: url.clone(),
            status: 0,
            message: "the service committed the blocks but returned no ETag".into(),
        })?;
        Ok(PutResult {
            etag: ETag(etag.to_string()),
            url,
        })
    }

    pub(super) async fn stage_part_from_url_blob(
        &self,
        path: &str,
        upload: &str,
        part: u32,
        source_url: &str,
        range: std::ops::Range<u64>,
    ) -> Result<(), SinkError> {
        let url = self.url_of(path);
        check_part(&url, upload, part)?;
        let shown_source = url_without_query(source_url);
        if range.start >= range.end {
            return Err(SinkError::InvalidDestination {
                dest: url,
                reason: format!(
                    "part {part} of a server-side copy from {shown_source} has an empty byte range ({}..{}); every part needs at least one byte",
                    range.start, range.end
                ),
            });
        }
        let client = self.block_blob_client(path)?;
        let id = block_id(upload, part);
        let options = BlockBlobClientStageBlockFromUrlOptions {
            source_range: Some(HttpRange::from(range)),
            ..Default::default()
        };
        let staged = self
            .timed(&url, async {
                Ok(client
                    .stage_block_from_url(&id, 0, source_url.to_string(), Some(options))
                    .await)
            })
            .await?;
        match staged {
            Ok(_) => Ok(()),
            Err(e) => Err(self.copy_error(e, &url, &shown_source, source_url)),
        }
    }

    /// Explain a failed `Put Block From URL`: the service cannot do it, could not read the
    /// source, or refused the destination. Whatever the service quotes, the source URL's
    /// query string is masked.
    fn copy_error(
        &self,
        err: azure_core::Error,
        url: &str,
        shown_source: &str,
        source_url: &str,
    ) -> SinkError {
        let (status, code) = status_and_code(&err);
        let code = code.unwrap_or_default();
        if status == Some(501) || code == NOT_IMPLEMENTED {
            return SinkError::Unsupported {
                url: url.to_string(),
                what: "a server-side copy (Put Block From URL)".into(),
                fix: "this storage service does not implement it (Azurite before 3.37 does not); copy through this process instead (--copy-mode client)".into(),
            };
        }
        let mask = |text: String| mask_source(&text, source_url);
        if code == CANNOT_VERIFY_SOURCE {
            let message = mask(crate::secret::redact(&service_message(&err)));
            return SinkError::CopySource {
                url: url.to_string(),
                source_url: shown_source.to_string(),
                status: status.unwrap_or(0),
                message: if message.is_empty() {
                    code
                } else {
                    format!("{code}: {message}")
                },
            };
        }
        match self.map_err(err, url, Op::Other) {
            SinkError::Http {
                url,
                status,
                message,
            } => SinkError::Http {
                url,
                status,
                message: mask(message),
            },
            SinkError::Auth {
                url,
                status,
                message,
            } => SinkError::Auth {
                url,
                status,
                message: mask(message),
            },
            SinkError::Connect { url, message } => SinkError::Connect {
                url,
                message: mask(message),
            },
            SinkError::Credentials(message) => SinkError::Credentials(mask(message)),
            other => other,
        }
    }
}

/// `text` with the source URL, its query string and each of its query values masked.
fn mask_source(text: &str, source_url: &str) -> String {
    let mut out = text.replace(source_url, &url_without_query(source_url));
    if let Some((_, query)) = source_url.split_once('?') {
        out = out.replace(query, "***");
        for pair in query.split('&') {
            if let Some((_, v)) = pair.split_once('=') {
                // Short values (`3600`, `host`) are not secrets and would mask innocent text.
                if v.len() >= 8 {
                    out = out.replace(v, "***");
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sink::Sink;

    #[test]
    fn block_ids_have_one_length_and_round_trip() {
        let short = block_id("u", 0);
        let long = block_id(&"x".repeat(40), 49_999);
        assert_eq!(short.len(), 25);
        assert_eq!(
            long.len(),
            25,
            "the same length as put's `{{nonce:016x}}-{{i:08}}`"
        );
        let tag = upload_tag("run-1-obj");
        assert_eq!(part_of(&tag, &block_id("run-1-obj", 42)), Some(42));
        assert_eq!(part_of(&tag, &block_id("run-1-other", 42)), None);
        assert_eq!(part_of(&tag, b"0123456789abcdef-00000001"), None);
        assert_eq!(part_of(&tag, b"not utf8 \xff"), None);
    }

    #[test]
    fn parts_are_those_of_the_upload_sorted_once() {
        let ids = vec![
            block_id("a", 3),
            block_id("b", 1),
            block_id("a", 0),
            block_id("a", 3),
            b"0000000000000000-00000007".to_vec(),
        ];
        assert_eq!(parts_among(&upload_tag("a"), ids), vec![0, 3]);
    }

    /// A stand-in Blob endpoint answering every request with `status`, error code `code` and
    /// a `<Message>` quoting `message`; returns the sink on it.
    async fn answering(status: u16, code: &'static str, message: String) -> AzureSink {
        use axum::response::IntoResponse;
        let app = axum::Router::new().fallback(move || {
            let message = message.clone();
            async move {
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:1</Message></Error>"
                );
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("x-ms-error-code", code), ("content-type", "application/xml")],
                    body,
                )
                    .into_response()
            }
        });
        serve(app).await
    }

    /// Serve `app` on a free loopback port; a sink with Azurite's development key on it.
    async fn serve(app: axum::Router) -> AzureSink {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(tcp, app).await;
        });
        let loc =
            super::super::AzureLocation::parse(&format!("http://{addr}/devstoreaccount1/c/p"))
                .unwrap();
        super::super::AzureSinkBuilder::new(loc)
            .with_credential(super::super::StorageCredential::SharedKey {
                account: "devstoreaccount1".into(),
                key: crate::secret::Secret::new(super::super::auth::DEV_ACCOUNT_KEY),
            })
            .build()
            .unwrap()
    }

    /// A stand-in Blob endpoint that answers 201 to everything and keeps, for every request,
    /// its query, its `Content-MD5` header and the MD5 of the body it really received.
    #[allow(clippy::type_complexity)]
    async fn recording() -> (
        AzureSink,
        std::sync::Arc<std::sync::Mutex<Vec<(String, Option<String>, String)>>>,
    ) {
        use base64::Engine as _;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let log = log.clone();
            async move {
                let query = req.uri().query().unwrap_or_default().to_string();
                let sent = req
                    .headers()
                    .get("content-md5")
                    .map(|v| v.to_str().unwrap().to_string());
                let body = axum::body::to_bytes(req.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let got = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
                log.lock().unwrap().push((query, sent, got));
                (axum::http::StatusCode::CREATED, [("etag", "\"0x1\"")])
            }
        });
        (serve(app).await, seen)
    }

    #[tokio::test]
    async fn every_staged_block_carries_the_md5_of_its_bytes() {
        let (sink, seen) = recording().await;
        // One block hashed on the task, one on the blocking pool, one empty.
        let big: Bytes = (0..9 * 1024 * 1024u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>()
            .into();
        sink.stage_part("o.bin", "u", 0, Bytes::from_static(b"small block"))
            .await
            .unwrap();
        sink.stage_part("o.bin", "u", 1, big.clone()).await.unwrap();
        sink.stage_part("o.bin", "u", 2, Bytes::new())
            .await
            .unwrap();
        // A put over the block size goes up as blocks too.
        let large: Bytes = big
            .iter()
            .chain(big.iter())
            .copied()
            .collect::<Vec<_>>()
            .into();
        sink.put("whole.bin", large, PutMode::Overwrite)
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let blocks: Vec<_> = seen
            .iter()
            .filter(|(q, _, _)| q.contains("comp=block&") || q.ends_with("comp=block"))
            .collect();
        assert!(
            blocks.len() >= 3 + 3,
            "3 staged parts and 3 blocks of the put: {seen:?}"
        );
        for (query, sent, got) in blocks {
            assert_eq!(sent.as_deref(), Some(got.as_str()), "{query}");
        }
    }

    const SOURCE: &str = "https://b.s3.amazonaws.com/k.gz?X-Amz-Credential=ASIAQUOTED%2F20261207&X-Amz-Signature=9f86d081884c7d659a2feaa0c55ad015";

    #[tokio::test]
    async fn a_service_without_put_block_from_url_is_unsupported() {
        let sink = answering(
            501,
            "APINotImplemented",
            "Current API is not implemented yet.".into(),
        )
        .await;
        let err = sink
            .stage_part_from_url("o.gz", "u", 0, SOURCE, 0..10)
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains("--copy-mode client"), "{err}");
    }

    #[tokio::test]
    async fn a_source_the_service_cannot_read_is_named_without_its_signature() {
        // The real service quotes the source's answer; make it quote the URL too.
        let sink = answering(
            403,
            "CannotVerifyCopySource",
            format!("Server failed to authenticate the request. Source: {SOURCE}"),
        )
        .await;
        let err = sink
            .stage_part_from_url("o.gz", "u", 0, SOURCE, 0..10)
            .await
            .unwrap_err();
        match &err {
            SinkError::CopySource {
                source_url, status, ..
            } => {
                assert_eq!(
                    (source_url.as_str(), *status),
                    ("https://b.s3.amazonaws.com/k.gz", 403)
                );
            }
            other => panic!("expected CopySource, got {other:?}"),
        }
        let text = err.to_string();
        assert!(!text.contains("9f86d081884c7d659a2feaa0c55ad015"), "{text}");
        assert!(!text.contains("ASIAQUOTED"), "{text}");
        assert!(text.contains("Server failed to authenticate"), "{text}");
        // A refusal of the destination itself stays an Auth error, also masked.
        let sink = answering(403, "AuthorizationFailure", format!("denied {SOURCE}")).await;
        let err = sink
            .stage_part_from_url("o.gz", "u", 0, SOURCE, 0..10)
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::Auth { .. }), "{err:?}");
        assert!(
            !err.to_string().contains("9f86d081884c7d659a2feaa0c55ad015"),
            "{err}"
        );
    }

    #[test]
    fn the_source_query_is_masked() {
        let src = "http://127.0.0.1:5000/b/k?X-Amz-Credential=AKIAEXAMPLE%2F2026&X-Amz-Expires=3600&X-Amz-Signature=0123456789abcdef";
        let text = format!("could not read {src}; signature 0123456789abcdef; AKIAEXAMPLE%2F2026");
        let got = mask_source(&text, src);
        assert!(!got.contains("0123456789abcdef"), "{got}");
        assert!(!got.contains("AKIAEXAMPLE"), "{got}");
        assert!(got.contains("http://127.0.0.1:5000/b/k"), "{got}");
    }
}
