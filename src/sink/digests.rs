//! The digests of an object's bytes that its writer takes once and everyone reuses: the
//! manifest records them, and a backend given them ([`super::Sink::put_digested`]) sends the
//! MD5 with the bytes (Azure checks it and keeps it as the blob's `Content-MD5`) or derives its
//! ETag from the SHA-256 (a local folder), instead of reading the bytes again.

use base64::Engine as _;
use md5::Md5;
use sha2::{Digest, Sha256};

/// Both hashes walk the data in pieces of this size, the second while the piece is still in
/// the core's cache.
const PIECE: usize = 256 * 1024;

/// SHA-256 and MD5 of one object's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    pub sha256: [u8; 32],
    pub md5: [u8; 16],
}

impl Digests {
    pub fn of(data: &[u8]) -> Self {
        let mut sha256 = Sha256::new();
        let mut md5 = Md5::new();
        for piece in data.chunks(PIECE) {
            sha256.update(piece);
            md5.update(piece);
        }
        Self {
            sha256: sha256.finalize().into(),
            md5: md5.finalize().into(),
        }
    }

    /// SHA-256 in lowercase hex, as the manifest records it.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// MD5 in base64, as Azure reports it in `Content-MD5` and the manifest records it.
    pub fn md5_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.md5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_the_manifests_sha256_hex_and_azures_base64_md5() {
        let d = Digests::of(b"abc");
        assert_eq!(
            d.sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.md5_base64(), "kAFQmDzST7DWlj99KOF/cg==");
    }

    #[test]
    fn pieces_give_the_digests_of_the_whole() {
        // Longer than several pieces, and not a multiple of one.
        let data: Vec<u8> = (0..3 * PIECE + 1_234)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let d = Digests::of(&data);
        assert_eq!(d.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
        assert_eq!(d.md5, <[u8; 16]>::from(Md5::digest(&data)));
        assert_eq!(Digests::of(b""), Digests::of(&[]));
        assert_eq!(
            Digests::of(b"").md5_base64(),
            "1B2M2Y8AsgTpgAmY7PhCfg==",
            "the MD5 of nothing"
        );
    }
}
