//! The entries a run records as it goes, in its checkpoint first and its manifest at the end:
//! each committed data file ([`ManifestFile`]) and each page set aside ([`RejectedPage`]).
//! They live here, below `load`, because the checkpoint holds them; the manifest
//! (`load::manifest`) lists them under the same names.

use serde::{Deserialize, Serialize};

/// A page set aside by `--on-bad-page skip`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RejectedPage {
    /// The page's number in the run (1-based).
    pub page: u64,
    /// Its request (redacted).
    pub request: String,
    /// Why its records could not be read.
    pub reason: String,
    /// Where its raw body was kept, relative to the destination (`<run>/_rejected/…`); `None`
    /// when no body was kept (a body over `--max-page-bytes` is not read whole).
    pub body_path: Option<String>,
    /// Bytes of the body received.
    pub bytes: u64,
}

/// One data file of the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    /// Path relative to the job's destination, e.g. `20261124T230500Z-1a2b/part-00000.parquet`.
    pub path: String,
    /// Full URL of the stored file (redacted).
    pub url: String,
    pub seq: u64,
    pub rows: u64,
    /// Size as stored (compressed).
    pub bytes: u64,
    /// Size of the records' JSON before encoding and compression.
    pub raw_bytes: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Base64 MD5 of the stored bytes, as Azure reports it in `Content-MD5`.
    #[serde(default)]
    pub content_md5: String,
    /// How many leading columns of `schema` the file holds (csv/parquet); fewer than the
    /// schema's when `--on-schema-drift evolve` added columns after this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<u64>,
}

impl ManifestFile {
    /// Store a finished chunk at `path` and describe it. Overwrites: a chunk's name is
    /// deterministic, and a leftover of an interrupted attempt at the same chunk must be
    /// replaced, not kept. Shared by a pull's upload stage and an object's records.
    pub async fn put_chunk(
        sink: &dyn crate::sink::Sink,
        path: String,
        chunk: crate::encode::chunk::FinishedChunk,
    ) -> Result<ManifestFile, crate::sink::SinkError> {
        let bytes = chunk.data.len() as u64;
        // Hashed first, off the runtime (the encoder's thread goes on with the next chunk),
        // so that the store reuses the digests instead of reading the bytes again.
        let digests = crate::sink::hash_off_runtime(&chunk.data, crate::sink::Digests::of).await;
        let put = sink
            .put_digested(&path, chunk.data, crate::sink::PutMode::Overwrite, &digests)
            .await?;
        Ok(ManifestFile {
            path,
            url: put.url,
            seq: chunk.seq,
            rows: chunk.rows,
            bytes,
            raw_bytes: chunk.raw_bytes,
            sha256: digests.sha256_hex(),
            content_md5: digests.md5_base64(),
            columns: chunk.columns,
        })
    }
}
