//! A run's lineage, `<run>/_lineage.jsonl.gz`: one JSON line per run (who the run was at each
//! hop, its `User-Agent`) and one per page (the request without secrets, every attempt with
//! its status, duration and the API Gateway request ids, the page's bytes and records, and the
//! chunk and rows its records landed in). With it, a row in the lake is traced to the API
//! request that returned it, and that request to API Gateway's access logs and CloudTrail.
//!
//! It must survive a killed run as the data does. So each chunk's page lines are stored
//! beside the chunk as one small gzip member, `<run>/_lineage-<chunk's stem>.jsonl.gz`, written
//! before the checkpoint advances past the chunk (a leftover piece of an uncommitted chunk
//! goes with the chunk's leftovers: the piece is named after the chunk). The run's commit
//! concatenates the pieces in the order of its file list — concatenated gzip members are one
//! gzip stream — after the run line and before the lines of the pages that landed in no
//! chunk, writes `_lineage.jsonl.gz`, and the manifest references it. The pieces are removed
//! once the run is complete; until then a rerun's commit needs them. Pieces are keyed by chunk
//! path, not by the run's sequence, so a run of several units concatenates theirs alike.
//!
//! Holds no secret: requests are redacted URLs, identities are names and ids.

use crate::load::manifest::ManifestIdentity;
pub use crate::load::manifest::ManifestLineage;
use crate::sink::{join_path, Digests, PutMode, Sink, SinkError};
use crate::source::trace::AttemptTrace;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// Name of the lineage file in a run's folder.
pub const LINEAGE: &str = "_lineage.jsonl.gz";
/// Prefix of the per-chunk pieces in a run's folder, until the run is complete. In the
/// run's folder itself (no sub-folder is left behind on a local disk), and, like every name
/// that starts with `_`, skipped by Synapse wildcards.
pub const PIECE_PREFIX: &str = "_lineage-";

/// One line of `_lineage.jsonl.gz`, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LineageLine {
    Run(RunLine),
    Page(PageLine),
}

/// The run's line: what joins the lake to the cloud's logs for the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLine {
    pub run_id: String,
    pub job: String,
    /// `gatelake <version>`.
    pub tool: String,
    /// The `User-Agent` every API request of the run sent (`gatelake/<version> run/<id>`).
    pub user_agent: String,
    /// The configured source (redacted URL).
    pub source: String,
    /// Who the run was at each hop: the Azure object id and tenant, the assumed role's ARN
    /// and session name, the OAuth client id (`client_id`); never a secret.
    pub identities: Vec<ManifestIdentity>,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: String,
}

/// A request as the lineage shows it: no credential, secret-looking query values masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLine {
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

impl RequestLine {
    /// `method` on `url`, redacted.
    pub fn of(method: &str, url: &url::Url) -> Self {
        let shown = crate::secret::redact_url(url);
        let query = url::Url::parse(&shown)
            .ok()
            .and_then(|u| u.query().map(str::to_string));
        RequestLine {
            method: method.to_string(),
            path: url.path().to_string(),
            query,
        }
    }
}

/// The rows of a chunk that came from one page: `first` (0-based, in the file's order) and
/// `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowSpan {
    pub first: u64,
    pub count: u64,
}

/// One page of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageLine {
    /// The page's number in the run, from 1.
    pub page: u64,
    pub request: RequestLine,
    /// Every attempt, in order; the last one gave the page.
    pub attempts: Vec<AttemptTrace>,
    /// The body's size, decompressed.
    pub bytes: u64,
    /// Records the page held.
    pub records: u64,
    /// The data file the page's records landed in (relative to the destination); `null` for
    /// a page after the run's last chunk (an empty last page).
    #[serde(default)]
    pub chunk: Option<String>,
    /// The rows of `chunk` that are this page's records (fewer than `records` when an
    /// incremental filter dropped some; absent when none landed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<RowSpan>,
    /// Why the page was set aside (`--on-bad-page skip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// When the page's answer arrived (RFC 3339).
    pub fetched_at: String,
}

/// Why the lineage could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("lineage of {path}: {reason}")]
    Encode { path: String, reason: String },
}

/// The piece of lineage stored beside the chunk at `chunk_path`:
/// `<dir>/_lineage-<name up to its first dot>.jsonl.gz`.
pub fn piece_path(chunk_path: &str) -> String {
    let (dir, name) = match chunk_path.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", chunk_path),
    };
    let stem = name.split('.').next().unwrap_or(name);
    join_path(&[dir, &format!("{PIECE_PREFIX}{stem}.jsonl.gz")])
}

/// The chunk name a piece's file name stands for (`_lineage-part-00003.jsonl.gz` →
/// `part-00003.jsonl.gz`), so that clean-ups treat a piece as its chunk.
pub fn chunk_name_of_piece(name: &str) -> Option<&str> {
    name.strip_prefix(PIECE_PREFIX)
}

/// `lines` as one gzip member of JSON lines.
pub fn gzip_lines(lines: &[LineageLine], path: &str) -> Result<Vec<u8>, LineageError> {
    let encode = |reason: String| LineageError::Encode {
        path: path.to_string(),
        reason,
    };
    let mut text = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut text, line).map_err(|e| encode(e.to_string()))?;
        text.push(b'\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).map_err(|e| encode(e.to_string()))?;
    gz.finish().map_err(|e| encode(e.to_string()))
}

/// Store the page lines of the chunk at `chunk_path` beside it (overwriting a leftover of an
/// interrupted attempt at the same chunk).
pub async fn put_piece(
    sink: &dyn Sink,
    chunk_path: &str,
    pages: Vec<PageLine>,
) -> Result<(), LineageError> {
    let path = piece_path(chunk_path);
    let lines: Vec<LineageLine> = pages.into_iter().map(LineageLine::Page).collect();
    let data = gzip_lines(&lines, &path)?;
    sink.put(&path, Bytes::from(data), PutMode::Overwrite)
        .await?;
    Ok(())
}

/// What [`assemble`] wrote, and the chunks it found no piece for.
pub struct Assembled {
    pub reference: ManifestLineage,
    /// Chunks without lineage (written by a version of gatelake that kept none).
    pub missing: Vec<String>,
}

/// Write `<run_id>/_lineage.jsonl.gz`: the run line, the pieces of `chunks` (paths, in the
/// manifest's order), then `tail` (pages after the last chunk).
pub async fn assemble(
    sink: &dyn Sink,
    run_id: &str,
    run: RunLine,
    chunks: &[String],
    tail: Vec<PageLine>,
) -> Result<Assembled, LineageError> {
    let path = join_path(&[run_id, LINEAGE]);
    let mut data = gzip_lines(&[LineageLine::Run(run)], &path)?;
    let mut lines = 1;
    let mut missing = Vec::new();
    for chunk in chunks {
        let piece_at = piece_path(chunk);
        match sink.get(&piece_at).await? {
            Some(got) => {
                lines += count_lines(&got.data, &piece_at)?;
                data.extend_from_slice(&got.data);
            }
            None => missing.push(chunk.to_string()),
        }
    }
    if !tail.is_empty() {
        lines += tail.len() as u64;
        let tail: Vec<LineageLine> = tail.into_iter().map(LineageLine::Page).collect();
        data.extend(gzip_lines(&tail, &path)?);
    }
    // Stored with the MD5 the manifest records (Azure keeps it as the file's Content-MD5).
    let digests = Digests::of(&data);
    let reference = ManifestLineage {
        path: path.clone(),
        lines,
        bytes: data.len() as u64,
        md5: digests.md5_base64(),
    };
    sink.put_digested(&path, Bytes::from(data), PutMode::Overwrite, &digests)
        .await?;
    Ok(Assembled { reference, missing })
}

/// Remove the pieces of `chunks` once the run is complete (its `_lineage.jsonl.gz` holds
/// them). A piece that cannot be removed is only said: the lineage file is whole.
pub async fn remove_pieces(sink: &dyn Sink, chunks: &[String]) {
    for chunk in chunks {
        let piece = piece_path(chunk);
        if let Err(e) = sink.delete(&piece).await {
            tracing::warn!("could not remove the lineage piece {piece}: {e}");
        }
    }
}

/// The JSON lines in a piece (checked to be whole gzip while counting).
fn count_lines(gz: &[u8], path: &str) -> Result<u64, LineageError> {
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut text)
        .map_err(|e| LineageError::Encode {
            path: path.to_string(),
            reason: format!("the stored piece is not whole gzip: {e}"),
        })?;
    Ok(text.iter().filter(|b| **b == b'\n').count() as u64)
}

/// The lines of a lineage file (tests and readers).
pub fn read_lines(gz: &[u8]) -> Result<Vec<LineageLine>, LineageError> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_string(&mut text)
        .map_err(|e| LineageError::Encode {
            path: LINEAGE.into(),
            reason: e.to_string(),
        })?;
    text.lines()
        .map(|l| {
            serde_json::from_str(l).map_err(|e| LineageError::Encode {
                path: LINEAGE.into(),
                reason: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sink::local::LocalSink;

    fn page(n: u64, chunk: Option<&str>) -> PageLine {
        PageLine {
            page: n,
            request: RequestLine {
                method: "GET".into(),
                path: "/prod/cursor".into(),
                query: Some(format!("cursor={n}")),
            },
            attempts: vec![AttemptTrace {
                status: Some(200),
                ms: 3,
                ..Default::default()
            }],
            bytes: 10,
            records: 2,
            chunk: chunk.map(str::to_string),
            rows: Some(RowSpan { first: 0, count: 2 }),
            rejected: None,
            fetched_at: "2026-12-07T03:00:00Z".into(),
        }
    }

    #[test]
    fn pieces_are_named_after_their_chunk() {
        assert_eq!(
            piece_path("r1/part-00003.parquet"),
            "r1/_lineage-part-00003.jsonl.gz"
        );
        assert_eq!(
            piece_path("r1/part-w-20260101T000000Z-00003.jsonl.gz"),
            "r1/_lineage-part-w-20260101T000000Z-00003.jsonl.gz"
        );
        // A resume's clean-up, which removes `part-NNNNN.*` at or past the checkpoint,
        // recognises a piece by its name as the chunk's.
        let name = piece_path("r1/part-00003.csv.gz");
        let name = name.rsplit('/').next().unwrap();
        assert_eq!(
            chunk_name_of_piece(name).and_then(crate::load::part_seq),
            Some(3)
        );
        assert_eq!(chunk_name_of_piece("part-00003.csv.gz"), None);
    }

    #[tokio::test]
    async fn pieces_concatenate_in_file_order_after_the_run_line() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalSink::new(dir.path());
        let chunks = [
            "r/part-00000.jsonl.gz".to_string(),
            "r/part-00001.jsonl.gz".to_string(),
        ];
        // Stored out of order, as parallel uploads finish.
        put_piece(&sink, &chunks[1], vec![page(3, Some(&chunks[1]))])
            .await
            .unwrap();
        put_piece(
            &sink,
            &chunks[0],
            vec![page(1, Some(&chunks[0])), page(2, Some(&chunks[0]))],
        )
        .await
        .unwrap();
        let run = RunLine {
            run_id: "r".into(),
            job: "j".into(),
            tool: "gatelake 0".into(),
            user_agent: "gatelake/0 run/r".into(),
            source: "https://api/prod/cursor".into(),
            identities: vec![],
            started_at: "a".into(),
            finished_at: "b".into(),
        };
        let done = assemble(
            &sink,
            "r",
            run,
            &[
                chunks[0].clone(),
                chunks[1].clone(),
                "r/part-00002.jsonl.gz".to_string(),
            ],
            vec![page(4, None)],
        )
        .await
        .unwrap();
        assert_eq!(done.missing, vec!["r/part-00002.jsonl.gz".to_string()]);
        assert_eq!(done.reference.lines, 5);
        assert_eq!(done.reference.path, "r/_lineage.jsonl.gz");
        let stored = std::fs::read(dir.path().join("r/_lineage.jsonl.gz")).unwrap();
        assert_eq!(done.reference.bytes, stored.len() as u64);
        let lines = read_lines(&stored).unwrap();
        assert!(matches!(&lines[0], LineageLine::Run(r) if r.run_id == "r"));
        let pages: Vec<u64> = lines
            .iter()
            .filter_map(|l| match l {
                LineageLine::Page(p) => Some(p.page),
                LineageLine::Run(_) => None,
            })
            .collect();
        assert_eq!(pages, vec![1, 2, 3, 4]);
        // The file is one gzip stream to an ordinary reader too.
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&stored[..])
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.starts_with("{\"type\":\"run\""), "{text}");

        remove_pieces(&sink, &chunks).await;
        assert!(!dir.path().join("r/_lineage-part-00000.jsonl.gz").exists());
        assert!(!dir.path().join("r/_lineage-part-00001.jsonl.gz").exists());
    }

    #[test]
    fn requests_lose_their_secrets() {
        let url = url::Url::parse("https://u:p@api.example/prod/x?cursor=a%2Bb&api_key=k1&limit=5")
            .unwrap();
        let r = RequestLine::of("GET", &url);
        assert_eq!(r.path, "/prod/x");
        let q = r.query.clone().unwrap();
        assert!(!q.contains("k1"), "{q}");
        assert!(q.contains("limit=5"), "{q}");
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("u:p"), "{json}");
    }
}
