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
use crate::encode::schema::Schema;
use crate::encode::EncodeError;
use crate::load::manifest::{Manifest, ManifestFile, ManifestSource, MANIFEST_VERSION};
use crate::load::{MANIFEST, SUCCESS_MARKER};
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
        tokio::task::spawn_blocking(move || encode_stage(options, limits, page_rx, chunk_tx))
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
    let schema = encoded?;
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
    };
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
        seconds: started.elapsed().as_secs_f64(),
    })
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
    mut pages: mpsc::Receiver<PageMsg>,
    chunks: mpsc::Sender<FinishedChunk>,
) -> Result<Option<Schema>, PullError> {
    let mut writer = ChunkWriter::new(options, limits, 0, None)
        .map_err(|source| PullError::Encode { seq: 0, source })?;
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
                        return Ok(writer.schema().cloned());
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
    Ok(writer.schema().cloned())
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
    let mut more = true;
    while more {
        // Report each upload as soon as it completes, and take a new chunk only while a slot
        // is free (so at most `concurrency` chunks are held here).
        tokio::select! {
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                collect(joined, &mut files)?;
            }
            received = chunks.recv(), if in_flight.len() < concurrency => match received {
                Some(chunk) => {
                    let sink = sink.clone();
                    let path = join_path(&[&run_id, &format!("part-{:05}.{extension}", chunk.seq)]);
                    in_flight.spawn(async move {
                        let bytes = chunk.data.len() as u64;
                        // Overwrite: a chunk's name is deterministic, and a leftover of an
                        // interrupted attempt at the same chunk must be replaced, not kept.
                        let put = sink.put(&path, chunk.data, PutMode::Overwrite).await?;
                        Ok(ManifestFile {
                            path,
                            url: put.url,
                            seq: chunk.seq,
                            rows: chunk.rows,
                            bytes,
                            raw_bytes: chunk.raw_bytes,
                            sha256: chunk.sha256,
                        })
                    });
                }
                None => more = false,
            },
        }
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
    use crate::config::{ApiAuth, OutputConfig, RetryPolicy, SourceConfig};
    use crate::encode::{EncodeOptions, Format};
    use crate::sink::local::LocalSink;
    use crate::source::paginate::{CursorSource, Pagination, PaginationConfig};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// On the last page, waits (up to 5 s) for chunk 0's commit to have been reported: it
    /// must be, because that upload finished long before. Notes when it was not.
    #[derive(Default)]
    struct Probe {
        first_commit: AtomicBool,
        waited_in_vain: AtomicBool,
    }

    impl Reporter for Probe {
        fn report(&self, event: Event) {
            match event {
                Event::ChunkCommitted { seq: 0, .. } => {
                    self.first_commit.store(true, Ordering::SeqCst)
                }
                Event::PageFetched { page: 3, .. } => {
                    let deadline = std::time::Instant::now() + Duration::from_secs(5);
                    while !self.first_commit.load(Ordering::SeqCst)
                        && std::time::Instant::now() < deadline
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    if !self.first_commit.load(Ordering::SeqCst) {
                        self.waited_in_vain.store(true, Ordering::SeqCst);
                    }
                }
                _ => {}
            }
        }
    }

    // Two workers: the probe blocks the fetch task's thread while the upload side runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_are_reported_as_uploads_finish_not_at_the_end() {
        let api = crate::demo::DemoApi::start(300, 100).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(LocalSink::new(dir.path()));
        let probe = Arc::new(Probe::default());
        let config = PullConfig {
            job: "t".into(),
            source: SourceConfig {
                url: Url::parse(&api.url()).unwrap(),
                pagination: Pagination {
                    style: PaginationConfig::Cursor {
                        source: CursorSource::Body("next_cursor".into()),
                        param: "cursor".into(),
                    },
                    stop: Default::default(),
                },
                records_path: "items".into(),
                auth: ApiAuth::None,
                headers: Vec::new(),
                timeout: Duration::from_secs(10),
                retry: RetryPolicy::default(),
                max_pages: None,
                max_page_bytes: 1 << 20,
            },
            output: OutputConfig {
                encode: EncodeOptions::new(Format::Jsonl, None),
                chunk_bytes: 1 << 30,
                chunk_rows: Some(100),
            },
            upload_concurrency: 4,
        };
        let http = crate::http::client(&Default::default()).unwrap();
        let client = ApiClient::new(&config.source, http, None).await.unwrap();
        let summary = run(&config, sink, client, probe.clone()).await.unwrap();
        assert_eq!(summary.rows, 300);
        assert_eq!(summary.files.len(), 3);
        assert!(
            !probe.waited_in_vain.load(Ordering::SeqCst),
            "chunk 0's commit was only reported after the listing ended"
        );
    }

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id(time::macros::datetime!(2026-11-24 23:05:09 UTC));
        let b = new_run_id(time::macros::datetime!(2026-11-24 23:05:10 UTC));
        assert!(a.starts_with("20261124T230509Z-"), "{a}");
        assert_eq!(a.len(), "20261124T230509Z-0000".len());
        assert!(a < b);
    }
}
