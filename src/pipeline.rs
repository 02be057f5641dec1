//! One pull, from the first request to `_SUCCESS`. Three stages run at once, joined by
//! bounded channels:
//!
//! ```text
//! fetch (async)  ──pages (cap 4)──►  encode (blocking thread)  ──chunks (cap 2)──►  upload (async, N at once)
//! ```
//!
//! - The fetch stage asks for the next page as soon as the current page's next request is
//!   known, before its records are encoded, so a sequential (cursor) API is never waiting on
//!   compression.
//! - The bounded channels are the backpressure: when compression or upload is the slow
//!   stage, fetch waits, and memory stays at a few pages plus a few chunks however large the
//!   pull is.
//! - A stage whose downstream has gone away stops quietly; only the stage that actually failed
//!   reports an error, so the user sees the cause, not its echoes.
//! - The last, partial chunk is written only when the fetch stage says the listing ended, so
//!   a failed run never writes a chunk it did not finish. A run without `_SUCCESS` is not
//!   complete, and readers that wait for `_SUCCESS` never see it.

use crate::config::PullConfig;
use crate::encode::chunk::{ChunkLimits, ChunkWriter, FinishedChunk};
use crate::encode::drift::{SchemaChange, SchemaOptions};
use crate::encode::schema::Schema;
use crate::encode::{EncodeError, Format};
use crate::load::manifest::{
    Manifest, ManifestFile, ManifestIdentity, ManifestSchemaPolicy, ManifestSource,
    MANIFEST_VERSION,
};
use crate::load::previous::PreviousRunError;
use crate::load::{LOAD_SQL, MANIFEST, SUCCESS_MARKER};
use crate::report::{Event, Reporter};
use crate::secret::redact_url;
use crate::sink::{join_path, PutMode, Sink, SinkError};
use crate::source::client::{ApiClient, SourceError};
use crate::source::extract::{ExtractError, ExtractedPage, JsonDoc};
use crate::source::paginate::{next_request, PageView, PaginateError, Paginator};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use url::Url;

/// What a finished run produced; printed as the JSON summary.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub status: &'static str,
    pub job: String,
    pub run_id: String,
    /// The run's folder (redacted URL).
    pub destination: String,
    pub manifest_url: String,
    pub pages: u64,
    pub rows: u64,
    /// Bytes stored (compressed).
    pub bytes: u64,
    /// Bytes of record JSON received.
    pub raw_bytes: u64,
    pub files: Vec<ManifestFile>,
    /// Schema changes and drift the run recorded (see the manifest's `schema_changes`).
    pub schema_changes: Vec<SchemaChange>,
    pub seconds: f64,
}

/// Why a pull stopped. Every variant names the page, chunk or object involved.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("page {page} from {url}: {source}")]
    Extract {
        page: u64,
        url: String,
        #[source]
        source: ExtractError,
    },
    #[error("page {page} from {url}: {source}")]
    Paginate {
        page: u64,
        url: String,
        #[source]
        source: PaginateError,
    },
    #[error("while writing chunk {seq}: {source}")]
    Encode {
        seq: u64,
        #[source]
        source: EncodeError,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("reading the previous run to compare schemas: {0}")]
    PreviousRun(#[from] PreviousRunError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A new run id: UTC time to the second plus 16 random bits, so ids sort by start time and
/// two runs started in the same second do not collide.
pub fn new_run_id(now: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = now
        .to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    format!("{stamp}-{:04x}", rand::random::<u16>())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

enum PageMsg {
    Page(ExtractedPage),
    /// The listing ended normally: flush the last chunk.
    End,
}

struct FetchStats {
    pages: u64,
    first: Option<Url>,
    last: Option<Url>,
}

/// Run one pull into `sink` and write its manifest and `_SUCCESS`.
pub async fn run(
    config: &PullConfig,
    sink: Arc<dyn Sink>,
    client: ApiClient,
    reporter: Arc<dyn Reporter>,
) -> Result<RunSummary, PullError> {
    config
        .output
        .encode
        .validate()
        .map_err(|e| PullError::Encode { seq: 0, source: e })?;
    sink.check().await?;

    // Drift across runs: the first page is compared with the last completed run's columns.
    let columnar = config.output.encode.format != Format::Jsonl;
    let previous = if columnar && config.output.schema.pinned.is_none() {
        crate::load::previous::latest_manifest(sink.as_ref())
            .await?
            .and_then(|m| m.schema.map(|s| (m.run_id, s)))
    } else {
        None
    };
    let compared_with_run = previous.as_ref().map(|(run, _)| run.clone());

    let started = Instant::now();
    let started_at = time::OffsetDateTime::now_utc();
    let run_id = new_run_id(started_at);
    reporter.report(Event::RunStarted {
        run_id: run_id.clone(),
        source: redact_url(&config.source.url),
        destination: sink.url_of(&run_id),
    });

    let (page_tx, page_rx) = mpsc::channel::<PageMsg>(4);
    let (chunk_tx, chunk_rx) = mpsc::channel::<FinishedChunk>(2);

    let fetch = fetch_stage(config, client, reporter.clone(), page_tx);
    let encode = {
        let options = config.output.encode;
        let limits = ChunkLimits {
            max_bytes: config.output.chunk_bytes,
            max_rows: config.output.chunk_rows,
        };
        let schema_options = config.output.schema.clone();
        let previous_schema = previous.map(|(_, s)| s);
        tokio::task::spawn_blocking(move || {
            encode_stage(
                options,
                limits,
                schema_options,
                previous_schema,
                page_rx,
                chunk_tx,
            )
        })
    };
    let upload = upload_stage(
        sink.clone(),
        run_id.clone(),
        config.output.encode.extension(),
        config.upload_concurrency.max(1),
        reporter.clone(),
        chunk_rx,
    );

    let (fetched, encoded, uploaded) = tokio::join!(fetch, encode, upload);
    let encoded = encoded.map_err(|e| PullError::Internal(format!("encoder thread: {e}")))?;
    // The stage that failed is the cause; the others only saw a closed channel.
    let stats = fetched?;
    let (schema, schema_changes) = encoded?;
    let files = uploaded?;

    let finished_at = time::OffsetDateTime::now_utc();
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        tool: concat!("gatelake ", env!("CARGO_PKG_VERSION")).to_string(),
        job: config.job.clone(),
        run_id: run_id.clone(),
        source: ManifestSource {
            url: redact_url(&config.source.url),
            pagination: config.source.pagination.name().to_string(),
            records_path: config.source.records_path.clone(),
            auth: config.source.auth.kind().to_string(),
            pages: stats.pages,
            first_request: stats.first.as_ref().map(redact_url),
            last_request: stats.last.as_ref().map(redact_url),
        },
        destination: sink.url_of(&run_id),
        format: config.output.encode.format,
        compression: config.output.encode.compression,
        extension: config.output.encode.extension(),
        schema,
        totals: Manifest::totals_of(&files),
        files,
        started_at: rfc3339(started_at),
        finished_at: rfc3339(finished_at),
        identities: identities(config, sink.as_ref()),
        schema_policy: ManifestSchemaPolicy {
            on_drift: config.output.schema.on_drift,
            flatten_depth: config.output.schema.flatten_depth,
            pinned: config.output.schema.pinned.is_some(),
            compared_with_run,
        },
        schema_changes,
        watermark: None,
        load_sql: Some(join_path(&[&run_id, LOAD_SQL])),
    };
    // The load script, then the manifest, then `_SUCCESS`: a reader that waits for the
    // marker finds all three.
    sink.put(
        &join_path(&[&run_id, LOAD_SQL]),
        Bytes::from(crate::load::sql::render_for_run(&manifest)),
        PutMode::Overwrite,
    )
    .await?;
    let manifest_json = manifest
        .to_json()
        .map_err(|e| PullError::Internal(format!("manifest: {e}")))?;
    let manifest_put = sink
        .put(
            &join_path(&[&run_id, MANIFEST]),
            Bytes::from(manifest_json),
            PutMode::Overwrite,
        )
        .await?;
    sink.put(
        &join_path(&[&run_id, SUCCESS_MARKER]),
        Bytes::new(),
        PutMode::Overwrite,
    )
    .await?;

    reporter.report(Event::RunFinished {
        run_id: run_id.clone(),
        rows: manifest.totals.rows,
        files: manifest.totals.files,
        bytes: manifest.totals.bytes,
    });
    Ok(RunSummary {
        status: "succeeded",
        job: config.job.clone(),
        run_id,
        destination: manifest.destination.clone(),
        manifest_url: manifest_put.url,
        pages: stats.pages,
        rows: manifest.totals.rows,
        bytes: manifest.totals.bytes,
        raw_bytes: manifest.totals.raw_bytes,
        files: manifest.files,
        schema_changes: manifest.schema_changes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The identities a run used, by kind and name, never a secret.
fn identities(config: &PullConfig, sink: &dyn Sink) -> Vec<ManifestIdentity> {
    let mut out = vec![ManifestIdentity {
        role: "api".into(),
        kind: config.source.auth.kind().into(),
        name: match &config.source.auth {
            crate::config::ApiAuth::Iam { region } => Some(format!("execute-api in {region}")),
            _ => None,
        },
    }];
    if let Some(kind) = sink.identity_kind() {
        out.push(ManifestIdentity {
            role: "storage".into(),
            kind: kind.into(),
            name: None,
        });
    }
    out
}

/// Walk the pages: fetch, locate records, work out the next request, hand the page on.
async fn fetch_stage(
    config: &PullConfig,
    client: ApiClient,
    reporter: Arc<dyn Reporter>,
    pages: mpsc::Sender<PageMsg>,
) -> Result<FetchStats, PullError> {
    let source = &config.source;
    let paginator: Arc<dyn Paginator> = Arc::from(source.pagination.paginator());
    let stop = Arc::new(source.pagination.stop.clone());
    let origin = Arc::new(source.url.clone());
    let records_path: Arc<str> = Arc::from(source.records_path.as_str());

    let mut url = paginator.first(&source.url);
    let mut stats = FetchStats {
        pages: 0,
        first: Some(url.clone()),
        last: None,
    };
    let mut records_so_far = 0u64;
    loop {
        let page_no = stats.pages + 1;
        let fetched = client.fetch(&url, page_no, reporter.as_ref()).await?;
        let shown = redact_url(&url);
        let body_len = fetched.body.len() as u64;
        // Parsing a page is CPU work: keep it off the async workers.
        let (page, next) = {
            let paginator = paginator.clone();
            let stop = stop.clone();
            let origin = origin.clone();
            let records_path = records_path.clone();
            tokio::task::spawn_blocking(move || {
                locate(
                    fetched,
                    &*paginator,
                    &stop,
                    &origin,
                    &records_path,
                    records_so_far,
                )
            })
            .await
            .map_err(|e| PullError::Internal(format!("page parser: {e}")))?
        }
        .map_err(|e| match e {
            LocateError::Extract(source) => PullError::Extract {
                page: page_no,
                url: shown.clone(),
                source,
            },
            LocateError::Paginate(source) => PullError::Paginate {
                page: page_no,
                url: shown.clone(),
                source,
            },
        })?;
        stats.pages = page_no;
        stats.last = Some(url.clone());
        records_so_far += page.len() as u64;
        reporter.report(Event::PageFetched {
            page: page_no,
            records: page.len() as u64,
            bytes: body_len,
        });
        if pages.send(PageMsg::Page(page)).await.is_err() {
            // The encoder stopped; its error is the one to report.
            return Ok(stats);
        }
        let at_limit = source.max_pages.is_some_and(|m| page_no >= m);
        match next {
            Some(n) if !at_limit => url = n,
            _ => break,
        }
    }
    // Ignoring a send failure: a stopped encoder reports its own error.
    let _ = pages.send(PageMsg::End).await;
    Ok(stats)
}

enum LocateError {
    Extract(ExtractError),
    Paginate(PaginateError),
}

fn locate(
    fetched: crate::source::client::FetchedPage,
    paginator: &dyn Paginator,
    stop: &crate::source::paginate::StopRules,
    origin: &Url,
    records_path: &str,
    records_before: u64,
) -> Result<(ExtractedPage, Option<Url>), LocateError> {
    let (ranges, next) = {
        let text = std::str::from_utf8(&fetched.body)
            .map_err(|_| LocateError::Extract(ExtractError::NotUtf8))?;
        let doc = JsonDoc::parse(text).map_err(LocateError::Extract)?;
        let records = doc.records(records_path).map_err(LocateError::Extract)?;
        let view = PageView {
            url: &fetched.url,
            headers: &fetched.headers,
            doc: &doc,
            records: records.len() as u64,
            records_so_far: records_before + records.len() as u64,
        };
        let next = next_request(paginator, stop, origin, &view).map_err(LocateError::Paginate)?;
        (ExtractedPage::ranges_of(text, &records), next)
    };
    Ok((
        ExtractedPage {
            body: fetched.body,
            ranges,
        },
        next,
    ))
}

/// Feed pages into the chunk writer; hand finished chunks on. Runs on a blocking thread.
fn encode_stage(
    options: crate::encode::EncodeOptions,
    limits: ChunkLimits,
    schema_options: SchemaOptions,
    previous: Option<Schema>,
    mut pages: mpsc::Receiver<PageMsg>,
    chunks: mpsc::Sender<FinishedChunk>,
) -> Result<(Option<Schema>, Vec<SchemaChange>), PullError> {
    let mut writer = ChunkWriter::new(options, limits, 0, None)
        .map_err(|source| PullError::Encode { seq: 0, source })?
        .with_schema_options(schema_options, previous);
    let done = |w: &ChunkWriter| (w.schema_with_stats(), w.schema_changes());
    let mut seq = 0u64;
    while let Some(msg) = pages.blocking_recv() {
        match msg {
            PageMsg::Page(page) => {
                let records = page.records();
                let finished = writer
                    .write_page(&records)
                    .map_err(|source| PullError::Encode { seq, source })?;
                if let Some(chunk) = finished {
                    seq = chunk.seq + 1;
                    if chunks.blocking_send(chunk).is_err() {
                        return Ok(done(&writer));
                    }
                }
            }
            PageMsg::End => {
                let last = writer
                    .finish()
                    .map_err(|source| PullError::Encode { seq, source })?;
                if let Some(chunk) = last {
                    // A failed send means the uploader stopped and reports why.
                    let _ = chunks.blocking_send(chunk);
                }
                break;
            }
        }
    }
    Ok(done(&writer))
}

/// Upload chunks, up to `concurrency` at once, under their final names.
async fn upload_stage(
    sink: Arc<dyn Sink>,
    run_id: String,
    extension: String,
    concurrency: usize,
    reporter: Arc<dyn Reporter>,
    mut chunks: mpsc::Receiver<FinishedChunk>,
) -> Result<Vec<ManifestFile>, PullError> {
    let mut in_flight: JoinSet<Result<ManifestFile, SinkError>> = JoinSet::new();
    let mut files = Vec::new();
    let collect = |joined: Result<Result<ManifestFile, SinkError>, tokio::task::JoinError>,
                   files: &mut Vec<ManifestFile>|
     -> Result<(), PullError> {
        let file = joined.map_err(|e| PullError::Internal(format!("upload task: {e}")))??;
        reporter.report(Event::ChunkCommitted {
            seq: file.seq,
            url: file.url.clone(),
            rows: file.rows,
            bytes: file.bytes,
        });
        files.push(file);
        Ok(())
    };
    while let Some(chunk) = chunks.recv().await {
        while in_flight.len() >= concurrency {
            if let Some(joined) = in_flight.join_next().await {
                collect(joined, &mut files)?;
            }
        }
        let sink = sink.clone();
        let path = join_path(&[&run_id, &format!("part-{:05}.{extension}", chunk.seq)]);
        in_flight.spawn(async move {
            let bytes = chunk.data.len() as u64;
            // Overwrite: a chunk's name is deterministic, and a leftover of an interrupted
            // attempt at the same chunk must be replaced, not kept.
            let put = sink.put(&path, chunk.data, PutMode::Overwrite).await?;
            Ok(ManifestFile {
                path,
                url: put.url,
                seq: chunk.seq,
                rows: chunk.rows,
                bytes,
                raw_bytes: chunk.raw_bytes,
                sha256: chunk.sha256,
                content_md5: chunk.content_md5,
                columns: chunk.columns,
            })
        });
    }
    while let Some(joined) = in_flight.join_next().await {
        collect(joined, &mut files)?;
    }
    files.sort_by_key(|f| f.seq);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id(time::macros::datetime!(2026-11-24 23:05:09 UTC));
        let b = new_run_id(time::macros::datetime!(2026-11-24 23:05:10 UTC));
        assert!(a.starts_with("20261124T230509Z-"), "{a}");
        assert_eq!(a.len(), "20261124T230509Z-0000".len());
        assert!(a < b);
    }
}
