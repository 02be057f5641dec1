//! Checking that the bytes read are the object's: the size always; the reference's own
//! checksum when it gives one; and S3's — its `x-amz-checksum-*` (whole-object, or a
//! composite `…-N` of its parts' checksums), else its ETag where that is an MD5 (a
//! single-part object's, or `md5-N` of a multipart one's parts when the part size is known).
//!
//! The bytes are fed in order ([`ObjectVerifier::update`]) — the lander feeds the contiguous
//! prefix of the parts it has staged — so nothing is held but the running digests (and, for
//! a multipart check, one digest per part).

use super::error::ObjectError;
use super::read::ObjectHead;
use super::url::object_name;
use super::{Checksum, ObjectRef};
use base64::Engine as _;
use md5::Digest as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Crc32,
    Crc32c,
    Crc64nvme,
    Sha1,
    Sha256,
    Md5,
}

impl Algorithm {
    fn name(self) -> &'static str {
        self.checksum(String::new()).algorithm()
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Md5 => 16,
        }
    }

    fn of(checksum: &Checksum) -> (Algorithm, &str) {
        match checksum {
            Checksum::Crc32(v) => (Algorithm::Crc32, v),
            Checksum::Crc32c(v) => (Algorithm::Crc32c, v),
            Checksum::Crc64nvme(v) => (Algorithm::Crc64nvme, v),
            Checksum::Sha1(v) => (Algorithm::Sha1, v),
            Checksum::Sha256(v) => (Algorithm::Sha256, v),
            Checksum::Md5(v) => (Algorithm::Md5, v),
        }
    }

    fn checksum(self, value: String) -> Checksum {
        match self {
            Algorithm::Crc32 => Checksum::Crc32(value),
            Algorithm::Crc32c => Checksum::Crc32c(value),
            Algorithm::Crc64nvme => Checksum::Crc64nvme(value),
            Algorithm::Sha1 => Checksum::Sha1(value),
            Algorithm::Sha256 => Checksum::Sha256(value),
            Algorithm::Md5 => Checksum::Md5(value),
        }
    }
}

/// A running digest of one algorithm.
#[derive(Clone)]
enum State {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64nvme(crc_fast::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Md5(md5::Md5),
}

impl State {
    fn new(a: Algorithm) -> State {
        match a {
            Algorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            Algorithm::Crc32c => State::Crc32c(0),
            Algorithm::Crc64nvme => {
                State::Crc64nvme(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
            }
            Algorithm::Sha1 => State::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Md5 => State::Md5(md5::Md5::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            State::Crc32(h) => h.update(data),
            State::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            State::Crc64nvme(h) => h.update(data),
            State::Sha1(h) => h.update(data),
            State::Sha256(h) => h.update(data),
            State::Md5(h) => h.update(data),
        }
    }

    /// The digest's bytes (CRCs big-endian, as S3 encodes them).
    fn finish(self) -> Vec<u8> {
        match self {
            State::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            State::Crc32c(c) => c.to_be_bytes().to_vec(),
            State::Crc64nvme(h) => h.finalize().to_be_bytes().to_vec(),
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
            State::Md5(h) => h.finalize().to_vec(),
        }
    }
}

/// A stated digest: its bytes, and for a composite one its number of parts.
fn decode(algorithm: Algorithm, stated: &str) -> Option<(Vec<u8>, Option<u32>)> {
    let (value, parts) = match stated.trim().rsplit_once('-') {
        Some((v, n)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
            (v, Some(n.parse().ok()?))
        }
        _ => (stated.trim(), None),
    };
    let len = algorithm.digest_len();
    let bytes = if value.len() == 2 * len && value.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(value).ok()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?
    };
    (bytes.len() == len).then_some((bytes, parts))
}

/// One check of the bytes against one stated digest.
struct Check {
    /// Where the expected value comes from (for messages).
    source: String,
    algorithm: Algorithm,
    expected: Vec<u8>,
    /// The value as stated (for the manifest).
    stated: String,
    whole: State,
    /// Composite/multipart: the part size, the parts' digests so far, the current part's
    /// digest and how many bytes of it were fed.
    parts: Option<(u64, u32, Vec<u8>, State, u64)>,
}

impl Check {
    fn new(
        source: String,
        algorithm: Algorithm,
        stated: &str,
        part_size: Option<u64>,
        size: u64,
    ) -> Result<Option<Check>, String> {
        let Some((expected, parts)) = decode(algorithm, stated) else {
            return Err(format!(
                "{source} {stated:?} is not a {} value",
                algorithm.name()
            ));
        };
        let parts = match parts {
            None => None,
            Some(n) => match part_size {
                Some(p) if p > 0 && size.div_ceil(p).max(1) == u64::from(n) => {
                    Some((p, n, Vec::new(), State::new(algorithm), 0))
                }
                // The part size is unknown (or disagrees): this check cannot be made.
                _ => return Ok(None),
            },
        };
        Ok(Some(Check {
            source,
            algorithm,
            expected,
            stated: stated.trim().to_string(),
            whole: State::new(algorithm),
            parts,
        }))
    }

    fn update(&mut self, mut data: &[u8]) {
        let Some((part_size, _, digests, current, fed)) = &mut self.parts else {
            self.whole.update(data);
            return;
        };
        while !data.is_empty() {
            let room = usize::try_from(*part_size - *fed).unwrap_or(usize::MAX);
            let (now, rest) = data.split_at(room.min(data.len()));
            current.update(now);
            *fed += now.len() as u64;
            if *fed == *part_size {
                let done = std::mem::replace(current, State::new(self.algorithm));
                digests.extend(done.finish());
                *fed = 0;
            }
            data = rest;
        }
    }

    fn finish(self) -> (bool, Vec<u8>) {
        let actual = match self.parts {
            None => self.whole.finish(),
            Some((_, n, mut digests, current, fed)) => {
                if fed > 0 || digests.is_empty() {
                    digests.extend(current.finish());
                }
                let count = digests.len() / self.algorithm.digest_len();
                if count != n as usize {
                    return (false, Vec::new());
                }
                let mut all = State::new(self.algorithm);
                all.update(&digests);
                all.finish()
            }
        };
        (actual == self.expected, actual)
    }
}

/// What verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub size: u64,
    /// Every checksum that was checked and matched, as stated by its source.
    pub checksums: Vec<Checksum>,
}

/// Hashes an object's bytes fed in order and checks them at the end.
pub struct ObjectVerifier {
    object: String,
    /// Sizes stated (head; the reference's, when it gives one), each checked.
    sizes: Vec<(String, u64)>,
    read: u64,
    checks: Vec<Check>,
}

impl std::fmt::Debug for ObjectVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectVerifier")
            .field("object", &self.object)
            .field("read", &self.read)
            .field(
                "checks",
                &self
                    .checks
                    .iter()
                    .map(|c| c.source.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ObjectVerifier {
    /// The checks `obj` and `head` allow: the size always; the reference's checksum; S3's
    /// checksum, else an MD5 ETag. A stated value that cannot be decoded is an error.
    pub fn new(obj: &ObjectRef, head: &ObjectHead) -> Result<ObjectVerifier, ObjectError> {
        let object = object_name(obj);
        let bad = |cause: String| ObjectError::Failed {
            object: object.clone(),
            cause,
        };
        let mut sizes = vec![("its size".to_string(), head.size)];
        if let Some(s) = obj.size {
            sizes.push(("the reference's size".to_string(), s));
        }
        let mut checks = Vec::new();
        let mut add = |source: String, checksum: &Checksum| -> Result<(), ObjectError> {
            let (algorithm, stated) = Algorithm::of(checksum);
            if let Some(c) =
                Check::new(source, algorithm, stated, head.part_size, head.size).map_err(bad)?
            {
                checks.push(c);
            }
            Ok(())
        };
        if let Some(c) = &obj.checksum {
            add("the reference's checksum".into(), c)?;
        }
        if let Some(c) = &head.checksum {
            let (a, _) = Algorithm::of(c);
            add(format!("S3's x-amz-checksum-{}", a.name()), c)?;
        } else if let (true, Some(etag)) = (head.etag_is_md5, &head.etag) {
            add("S3's ETag".into(), &Checksum::Md5(etag.clone()))?;
        }
        // The same value stated twice is checked once.
        checks.dedup_by(|a, b| {
            a.algorithm == b.algorithm
                && a.expected == b.expected
                && a.parts.is_none()
                && b.parts.is_none()
        });
        Ok(ObjectVerifier {
            object,
            sizes,
            read: 0,
            checks,
        })
    }

    /// The next bytes of the object, in order.
    pub fn update(&mut self, data: &[u8]) {
        self.read += data.len() as u64;
        for c in &mut self.checks {
            c.update(data);
        }
    }

    /// Bytes fed so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Names of the checks that will be made (beyond the size), for logs.
    pub fn checks(&self) -> Vec<String> {
        self.checks.iter().map(|c| c.source.clone()).collect()
    }

    /// Check everything fed against what was stated.
    pub fn finish(self) -> Result<Verified, ObjectError> {
        for (what, size) in &self.sizes {
            if *size != self.read {
                return Err(ObjectError::Mismatch {
                    object: self.object,
                    what: what.clone(),
                    expected: format!("{size} bytes"),
                    actual: format!("{} bytes", self.read),
                });
            }
        }
        let mut checksums = Vec::new();
        for c in self.checks {
            let (source, algorithm, stated) = (c.source.clone(), c.algorithm, c.stated.clone());
            let composite = c.parts.is_some();
            let (ok, actual) = c.finish();
            if !ok {
                let actual = if actual.is_empty() {
                    "another number of parts".to_string()
                } else if algorithm == Algorithm::Md5 {
                    hex::encode(&actual)
                } else {
                    base64::engine::general_purpose::STANDARD.encode(&actual)
                };
                return Err(ObjectError::Mismatch {
                    object: self.object,
                    what: format!(
                        "{source} ({}{})",
                        algorithm.name(),
                        if composite { ", of its parts" } else { "" }
                    ),
                    expected: stated,
                    actual,
                });
            }
            checksums.push(algorithm.checksum(stated));
        }
        Ok(Verified {
            size: self.read,
            checksums,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::objects::ObjectLocation;

    fn obj() -> ObjectRef {
        ObjectRef {
            location: ObjectLocation::S3 {
                bucket: "b".into(),
                key: "k".into(),
            },
            name: "k".into(),
            size: None,
            checksum: None,
            records: None,
            etag: None,
            version_id: None,
            last_modified: None,
        }
    }

    fn b64(v: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(v)
    }

    fn feed(v: &mut ObjectVerifier, data: &[u8], step: usize) {
        for c in data.chunks(step) {
            v.update(c);
        }
    }

    #[test]
    fn every_algorithm_checks_the_whole_object() {
        let data = b"The quick brown fox jumps over the lazy dog";
        // Published values for this sentence (CRC-32 414fa339, CRC-32C 22620404).
        let cases = [
            Checksum::Crc32(b64(&0x414f_a339u32.to_be_bytes())),
            Checksum::Crc32c(b64(&0x2262_0404u32.to_be_bytes())),
            Checksum::Sha1(b64(&hex::decode(
                "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            )
            .unwrap())),
            Checksum::Sha256(
                "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592".into(),
            ),
            Checksum::Md5("9e107d9d372bb6826bd81d3542a419d6".into()),
            Checksum::Crc64nvme(b64(&crc_fast::checksum(
                crc_fast::CrcAlgorithm::Crc64Nvme,
                data,
            )
            .to_be_bytes())),
        ];
        for c in cases {
            let head = ObjectHead {
                size: data.len() as u64,
                checksum: Some(c.clone()),
                ..Default::default()
            };
            let mut v = ObjectVerifier::new(&obj(), &head).unwrap();
            feed(&mut v, data, 7);
            assert_eq!(v.finish().unwrap().checksums, vec![c.clone()], "{c:?}");
            let mut v = ObjectVerifier::new(&obj(), &head).unwrap();
            feed(&mut v, b"The quick brown fox jumps over the lazy cog", 5);
            let e = v.finish().unwrap_err().to_string();
            assert!(
                e.contains("s3://b/k") && e.contains("x-amz-checksum"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_size_is_always_checked() {
        let head = ObjectHead {
            size: 4,
            ..Default::default()
        };
        let mut v = ObjectVerifier::new(&obj(), &head).unwrap();
        v.update(b"abc");
        assert!(v
            .finish()
            .unwrap_err()
            .to_string()
            .contains("expected 4 bytes, read 3 bytes"));
        let r = ObjectRef {
            size: Some(5),
            ..obj()
        };
        let mut v = ObjectVerifier::new(&r, &head).unwrap();
        v.update(b"abcd");
        assert!(v
            .finish()
            .unwrap_err()
            .to_string()
            .contains("the reference's size"));
    }

    #[test]
    fn multipart_etags_and_composite_checksums_use_the_part_size() {
        let data: Vec<u8> = (0..25u32).map(|i| (i * 7) as u8).collect();
        let md5 = |d: &[u8]| md5::Md5::digest(d).to_vec();
        let parts: Vec<u8> = data.chunks(10).flat_map(md5).collect();
        let etag = format!("{}-3", hex::encode(md5(&parts)));
        let crcs: Vec<u8> = data
            .chunks(10)
            .flat_map(|c| crc32c::crc32c(c).to_be_bytes())
            .collect();
        let composite = format!("{}-3", b64(&crc32c::crc32c(&crcs).to_be_bytes()));
        let head = ObjectHead {
            size: 25,
            etag: Some(etag.clone()),
            etag_is_md5: true,
            part_size: Some(10),
            parts: Some(3),
            ..Default::default()
        };
        let mut v = ObjectVerifier::new(&obj(), &head).unwrap();
        feed(&mut v, &data, 3);
        assert_eq!(
            v.finish().unwrap().checksums,
            vec![Checksum::Md5(etag.clone())]
        );
        let with_crc = ObjectHead {
            checksum: Some(Checksum::Crc32c(composite.clone())),
            ..head.clone()
        };
        let mut v = ObjectVerifier::new(&obj(), &with_crc).unwrap();
        feed(&mut v, &data, 11);
        assert_eq!(
            v.finish().unwrap().checksums,
            vec![Checksum::Crc32c(composite)]
        );
        // Wrong part size: the parts' digests differ.
        let wrong = ObjectHead {
            part_size: Some(9),
            ..head.clone()
        };
        let mut v = ObjectVerifier::new(&obj(), &wrong).unwrap();
        feed(&mut v, &data, 4);
        assert!(v.finish().is_err());
        // Unknown part size: the ETag cannot be checked, the size still is.
        let unknown = ObjectHead {
            part_size: None,
            ..head
        };
        let v = ObjectVerifier::new(&obj(), &unknown).unwrap();
        assert!(v.checks().is_empty());
    }

    #[test]
    fn the_references_checksum_is_checked_with_s3s() {
        let data = b"hello";
        let r = ObjectRef {
            checksum: Some(Checksum::Sha256(
                "0000000000000000000000000000000000000000000000000000000000000000".into(),
            )),
            ..obj()
        };
        let head = ObjectHead {
            size: 5,
            etag: Some("5d41402abc4b2a76b9719d911017c592".into()),
            etag_is_md5: true,
            ..Default::default()
        };
        let mut v = ObjectVerifier::new(&r, &head).unwrap();
        assert_eq!(v.checks().len(), 2);
        v.update(data);
        assert!(v
            .finish()
            .unwrap_err()
            .to_string()
            .contains("the reference's checksum"));
        let bad = ObjectRef {
            checksum: Some(Checksum::Sha1("zz".into())),
            ..obj()
        };
        assert!(ObjectVerifier::new(&bad, &head).is_err());
    }
}
