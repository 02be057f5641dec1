//! TEMPORARY stand-in with the agreed signatures (jsonl only); replaced by the real
//! chunk writer from the encode branch at merge.
use super::schema::Schema;
use super::{EncodeError, EncodeOptions};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::Write;

pub struct ChunkLimits {
    pub max_bytes: u64,
    pub max_rows: Option<u64>,
}

pub struct FinishedChunk {
    pub seq: u64,
    pub rows: u64,
    pub raw_bytes: u64,
    pub data: Bytes,
    pub sha256: String,
}

pub struct ChunkWriter {
    limits: ChunkLimits,
    seq: u64,
    buf: Option<flate2::write::GzEncoder<Vec<u8>>>,
    rows: u64,
    raw: u64,
}

impl ChunkWriter {
    pub fn new(
        _options: EncodeOptions,
        limits: ChunkLimits,
        first_seq: u64,
        _schema: Option<Schema>,
    ) -> Result<Self, EncodeError> {
        Ok(Self {
            limits,
            seq: first_seq,
            buf: None,
            rows: 0,
            raw: 0,
        })
    }
    pub fn write_page(&mut self, records: &[&str]) -> Result<Option<FinishedChunk>, EncodeError> {
        let buf = self.buf.get_or_insert_with(|| {
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6))
        });
        for r in records {
            buf.write_all(r.as_bytes())?;
            buf.write_all(b"\n")?;
            self.raw += r.len() as u64 + 1;
            self.rows += 1;
        }
        if self.raw >= self.limits.max_bytes || self.limits.max_rows.is_some_and(|m| self.rows >= m)
        {
            return self.finish();
        }
        Ok(None)
    }
    pub fn finish(&mut self) -> Result<Option<FinishedChunk>, EncodeError> {
        let Some(buf) = self.buf.take() else {
            return Ok(None);
        };
        if self.rows == 0 {
            return Ok(None);
        }
        let data = buf.finish()?;
        let c = FinishedChunk {
            seq: self.seq,
            rows: self.rows,
            raw_bytes: self.raw,
            sha256: hex::encode(Sha256::digest(&data)),
            data: Bytes::from(data),
        };
        self.seq += 1;
        self.rows = 0;
        self.raw = 0;
        Ok(Some(c))
    }
    pub fn schema(&self) -> Option<&Schema> {
        None
    }
}
