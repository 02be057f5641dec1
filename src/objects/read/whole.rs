//! A small object in one request: the whole object in one GET, pinned to the ETag (or
//! version) its listing gave, with the head built from that GET's answer. An object no
//! larger than one part otherwise costs a HEAD and a GET: against a slow S3 endpoint the
//! HEAD doubles the requests of a run of small objects (issue 16's benchmark, 64 KiB
//! objects).

use super::{
    md5_etag_parts, quoted, real_version, rfc3339, strip_quotes, ObjectHead, ObjectReader,
};
use crate::objects::error::ObjectError;
use crate::objects::s3::{classify_sdk, Failure};
use crate::objects::url::object_name;
use crate::objects::{Checksum, ObjectLocation, ObjectRef};
use aws_sdk_s3::types::ChecksumMode;
use bytes::Bytes;

impl ObjectReader {
    /// The whole of `obj` and its head, in one GET, when `obj` is an `s3://` object whose
    /// listing gave a single-part ETag (so the answer can be pinned to it and its ETag is the
    /// bytes' MD5); `None` otherwise (a URL, no ETag, a multipart object, whose part size
    /// takes more requests to learn): use [`ObjectReader::head`] and
    /// [`ObjectReader::get_range`].
    pub async fn get_whole(
        &self,
        obj: &ObjectRef,
    ) -> Result<Option<(ObjectHead, Bytes)>, ObjectError> {
        self.check(obj)?;
        let ObjectLocation::S3 { bucket, key } = &obj.location else {
            return Ok(None);
        };
        let Some(etag) = obj
            .etag
            .as_deref()
            .map(strip_quotes)
            .filter(|e| md5_etag_parts(e) == Some(None))
        else {
            return Ok(None);
        };
        let name = object_name(obj);
        let s3 = self.s3_for(&name)?;
        let version = real_version(obj.version_id.as_deref());
        let pinned = match &version {
            Some(v) => format!("version {v}"),
            None => format!("ETag {etag}"),
        };
        let got = self
            .retried(&name, &pinned, || {
                let mut r = s3
                    .client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .checksum_mode(ChecksumMode::Enabled);
                match &version {
                    Some(v) => r = r.version_id(v),
                    None => r = r.if_match(quoted(&etag)),
                }
                async move {
                    let out = r.send().await.map_err(|e| classify_sdk(&e))?;
                    let answered = out.e_tag().map(strip_quotes);
                    let encrypted = out.sse_customer_algorithm().is_some()
                        || out
                            .server_side_encryption()
                            .is_some_and(|s| s.as_str().starts_with("aws:kms"));
                    let etag_is_md5 = answered
                        .as_deref()
                        .is_some_and(|e| md5_etag_parts(e) == Some(None))
                        && !encrypted;
                    let checksum = [
                        out.checksum_crc64_nvme()
                            .map(|v| Checksum::Crc64nvme(v.to_string())),
                        out.checksum_crc32_c()
                            .map(|v| Checksum::Crc32c(v.to_string())),
                        out.checksum_crc32().map(|v| Checksum::Crc32(v.to_string())),
                        out.checksum_sha1().map(|v| Checksum::Sha1(v.to_string())),
                        out.checksum_sha256()
                            .map(|v| Checksum::Sha256(v.to_string())),
                    ]
                    .into_iter()
                    .flatten()
                    .next();
                    let mut head = ObjectHead {
                        size: 0,
                        etag: answered,
                        version_id: real_version(out.version_id()),
                        checksum,
                        part_size: None,
                        parts: None,
                        etag_is_md5,
                        last_modified: out.last_modified().and_then(rfc3339),
                        content_type: out.content_type().map(str::to_string),
                        content_encoding: out.content_encoding().map(str::to_string),
                    };
                    let stated = out.content_length().and_then(|n| u64::try_from(n).ok());
                    let body = out.body.collect().await.map_err(|e| Failure::Transient {
                        cause: format!("the body broke off: {e}"),
                        after: None,
                    })?;
                    let body = body.into_bytes();
                    if let Some(n) = stated.filter(|n| *n > body.len() as u64) {
                        return Err(Failure::Transient {
                            cause: format!("truncated: {} of {n} bytes", body.len()),
                            after: None,
                        });
                    }
                    head.size = stated.unwrap_or(body.len() as u64);
                    Ok((head, body))
                }
            })
            .await?;
        Ok(Some(got))
    }
}
