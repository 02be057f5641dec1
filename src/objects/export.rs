//! Asynchronous exports: an API that serves real volumes starts an export job (`POST`, with
//! an optional JSON body), answers with where to follow it, and some time later its status
//! document lists the objects the job wrote. This file starts the export, polls its status
//! with growing pauses until it succeeds, fails or `--export-timeout` runs out, and hands back
//! the final status document; `refs` then reads the object list out of it (paged or not).
//!
//! Exactly one export per run: the export is recorded in the run's checkpoint (an
//! [`ExportLedger`]) *before* the first poll, so a run killed while waiting polls the same
//! export when it resumes and never starts a second one. The timeout counts from the moment
//! the export was started, not from the resume. Starting is the one request that is never
//! retried once it may have reached the API (see `ApiClient::post_json`).
//! One window stays open: a kill after the API answered the start but before the record is
//! written looks to the rerun like a start that never happened (only an API that accepts an
//! idempotency key could tell); it is the time of one checkpoint write.
//!
//! The clock and the pauses are injected ([`Clock`], [`Sleeper`]): the state machine is tested
//! with a fake clock, without waiting.

use crate::clock::{Clock, Sleeper};
use crate::report::Reporter;
use crate::secret::redact_url;
use crate::source::client::{ApiClient, FetchedPage, SourceError};
use crate::source::extract::{ExtractError, JsonDoc};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};
use url::Url;

/// Where the status URL of a started export comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusFrom {
    /// A URL (absolute, or relative to the start URL) at this path of the start response's
    /// body (`--export-status-field`, default `status_url`); when the body has none, the
    /// response's `Location` header (`202 Accepted` + `Location` is the other common shape).
    Field(String),
    /// `--export-status-url`: this URL with `{id}` replaced by the export id found at
    /// `id_path` of the start response (`--export-id-field`, default `id`).
    Template { template: String, id_path: String },
}

/// How often a running export is asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPolicy {
    /// The first pause, after the export starts (`--export-poll-interval`); each later pause
    /// doubles, up to `max`.
    pub first: Duration,
    pub max: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

/// An export, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    /// Where the export is started (`--url`, with `--export`).
    pub start_url: Url,
    /// The JSON body of the start request (`--export-body`), already checked to be JSON.
    pub body: Option<String>,
    pub status: StatusFrom,
    /// Where the state is in a status document (`--export-state-field`, default `status`).
    pub state_path: String,
    /// States that mean the export is done (compared case-insensitively).
    pub succeeded: Vec<String>,
    /// States that mean it failed for good.
    pub failed: Vec<String>,
    pub poll: PollPolicy,
    /// Give up waiting this long after the export started (`--export-timeout`).
    pub timeout: Duration,
}

impl ExportSpec {
    /// Default states, poll policy and timeout for an export started at `start_url`.
    pub fn new(start_url: Url) -> Self {
        Self {
            start_url,
            body: None,
            status: StatusFrom::Field("status_url".into()),
            state_path: "status".into(),
            succeeded: ["succeeded", "success", "completed", "complete", "done"]
                .map(String::from)
                .to_vec(),
            failed: [
                "failed",
                "failure",
                "error",
                "cancelled",
                "canceled",
                "aborted",
            ]
            .map(String::from)
            .to_vec(),
            poll: PollPolicy::default(),
            timeout: Duration::from_secs(3600),
        }
    }
}

/// An export this run started: what the checkpoint keeps, so a resumed run follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedExport {
    /// Where its status is asked for (on the API's own host).
    pub status_url: String,
    /// Its id, when the API gave one (for messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When it was started (RFC 3339): `--export-timeout` counts from here.
    pub started_at: String,
}

impl StartedExport {
    fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("export {id}"),
            None => "the export".into(),
        }
    }

    fn started(&self) -> Option<SystemTime> {
        time::OffsetDateTime::parse(
            &self.started_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
        .map(SystemTime::from)
    }
}

/// Where a run keeps the export it started (its checkpoint). `record` must be durable when
/// it returns: a kill right after it must find the export there.
#[async_trait::async_trait]
pub trait ExportLedger: Send + Sync {
    /// The export this run started before, if any.
    async fn started(&self) -> Result<Option<StartedExport>, ExportError>;
    /// Keep `export` before it is polled.
    async fn record(&self, export: &StartedExport) -> Result<(), ExportError>;
}

/// The requests an export needs (the API client; a fake in tests).
#[async_trait::async_trait]
pub trait ExportApi: Send + Sync {
    async fn start(
        &self,
        url: &Url,
        body: Bytes,
        reporter: &dyn Reporter,
    ) -> Result<FetchedPage, SourceError>;
    /// GET the status document (retried as any page is).
    async fn status(
        &self,
        url: &Url,
        poll: u64,
        reporter: &dyn Reporter,
    ) -> Result<FetchedPage, SourceError>;
}

#[async_trait::async_trait]
impl ExportApi for ApiClient {
    async fn start(
        &self,
        url: &Url,
        body: Bytes,
        reporter: &dyn Reporter,
    ) -> Result<FetchedPage, SourceError> {
        self.post_json(url, body, reporter).await
    }

    async fn status(
        &self,
        url: &Url,
        poll: u64,
        reporter: &dyn Reporter,
    ) -> Result<FetchedPage, SourceError> {
        self.fetch(url, poll, reporter).await
    }
}

/// Why an export did not hand back its objects. URLs are shown without their query.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("starting the export: {0}")]
    Start(#[source] SourceError),
    #[error("asking for the status of {what}: {source}")]
    Status {
        what: String,
        #[source]
        source: SourceError,
    },
    #[error("the export's start response (from {url}) {problem}")]
    StartResponse { url: String, problem: String },
    #[error("the status URL of the export, {status}, is not on the API's host {origin}: refusing to send the API's credentials there (no request was sent). Export status must be served by the API that started it")]
    ForeignStatusHost { status: String, origin: String },
    #[error("the status document of {what} ({url}) {problem}")]
    StatusDocument {
        what: String,
        url: String,
        problem: String,
    },
    #[error("{what} failed: its state is {state:?}{message}. Fix the cause on the API's side, then run again with --restart to start a new export")]
    Failed {
        what: String,
        state: String,
        message: String,
    },
    #[error("{what} has not finished after {waited_s} s (--export-timeout {timeout_s} s; last state {state:?}). It stays recorded in the checkpoint: run the same command again to keep waiting for it (no second export is started), or raise --export-timeout")]
    TimedOut {
        what: String,
        waited_s: u64,
        timeout_s: u64,
        state: String,
    },
    #[error("the checkpoint's record of the export: {0}")]
    Ledger(String),
}

impl ExportError {
    /// Whether a rerun picks the work up where it stopped (the export is recorded and may
    /// still finish): the run keeps its checkpoint instead of being discarded as failed.
    pub fn is_resumable(&self) -> bool {
        matches!(
            self,
            ExportError::TimedOut { .. } | ExportError::Status { .. }
        )
    }
}

/// An export that succeeded: its record, and its final status document (page 1 of its
/// object list).
#[derive(Debug, Clone)]
pub struct FinishedExport {
    pub export: StartedExport,
    pub status_url: Url,
    pub final_page: FetchedPage,
    /// Whether the export was started by an earlier, interrupted attempt of this run.
    pub resumed: bool,
}

/// Start the export (or pick up the one this run already started), then poll it until it
/// succeeds, fails or times out.
pub async fn await_export(
    api: &dyn ExportApi,
    spec: &ExportSpec,
    ledger: &dyn ExportLedger,
    clock: &dyn Clock,
    sleeper: &dyn Sleeper,
    reporter: &dyn Reporter,
) -> Result<FinishedExport, ExportError> {
    let (export, resumed) = match ledger.started().await? {
        Some(export) => (export, true),
        None => {
            let export = start(api, spec, clock, reporter).await?;
            ledger.record(&export).await?;
            (export, false)
        }
    };
    let what = export.label();
    let status_url = Url::parse(&export.status_url)
        .map_err(|e| ExportError::Ledger(format!("the recorded status URL is not a URL ({e})")))?;
    if !crate::source::paginate::same_origin(&spec.start_url, &status_url) {
        return Err(ExportError::ForeignStatusHost {
            status: redact_url(&status_url),
            origin: origin_of(&spec.start_url),
        });
    }
    tracing::info!(export = %what, resumed, "waiting for the export");
    // An unreadable start time (a hand-edited checkpoint) counts from now.
    let started = export.started().unwrap_or_else(|| clock.now());
    let mut pause = spec.poll.first;
    let mut poll = 0;
    loop {
        poll += 1;
        let page = api
            .status(&status_url, poll, reporter)
            .await
            .map_err(|source| ExportError::Status {
                what: what.clone(),
                source,
            })?;
        let state = state_of(&page, spec, &what)?;
        if matches_any(&state, &spec.succeeded) {
            return Ok(FinishedExport {
                export,
                status_url,
                final_page: page,
                resumed,
            });
        }
        if matches_any(&state, &spec.failed) {
            return Err(ExportError::Failed {
                what,
                message: failure_message(&page),
                state,
            });
        }
        let waited = clock.since(started);
        if waited >= spec.timeout {
            return Err(ExportError::TimedOut {
                what,
                waited_s: waited.as_secs(),
                timeout_s: spec.timeout.as_secs(),
                state,
            });
        }
        // The last pause ends at the deadline, for one last look.
        sleeper.sleep(pause.min(spec.timeout - waited)).await;
        pause = (pause * 2).min(spec.poll.max);
    }
}

/// POST the start request and work out the export's status URL.
async fn start(
    api: &dyn ExportApi,
    spec: &ExportSpec,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
) -> Result<StartedExport, ExportError> {
    let body = Bytes::from(spec.body.clone().unwrap_or_else(|| "{}".into()));
    let response = api
        .start(&spec.start_url, body, reporter)
        .await
        .map_err(ExportError::Start)?;
    let shown = redact_url(&spec.start_url);
    let problem = |problem: String| ExportError::StartResponse {
        url: shown.clone(),
        problem,
    };
    let text = std::str::from_utf8(&response.body).unwrap_or("");
    let doc = if text.trim().is_empty() {
        None
    } else {
        Some(JsonDoc::parse(text).map_err(|e| problem(format!("is not JSON: {e}")))?)
    };
    let field = |path: &str| -> Result<Option<String>, ExportError> {
        match &doc {
            Some(doc) => doc
                .get_text(path)
                .map_err(|e: ExtractError| problem(e.to_string())),
            None => Ok(None),
        }
    };
    let (status, id) = match &spec.status {
        StatusFrom::Field(path) => {
            let link = match field(path)? {
                Some(link) => link,
                None => response
                    .headers
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        problem(format!(
                            "has no status URL: no {path:?} field and no Location header. Name the field with --export-status-field, or build the URL from the export's id with --export-status-url"
                        ))
                    })?,
            };
            let url = spec
                .start_url
                .join(&link)
                .map_err(|e| problem(format!("has a status URL that is not a URL ({e})")))?;
            (url, field("id")?)
        }
        StatusFrom::Template { template, id_path } => {
            let id = field(id_path)?.ok_or_else(|| {
                problem(format!(
                    "has no export id at {id_path:?}; name it with --export-id-field"
                ))
            })?;
            let encoded =
                percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            let url = Url::parse(&template.replace("{id}", &encoded)).map_err(|e| {
                problem(format!(
                    "gave an id that makes --export-status-url invalid ({e})"
                ))
            })?;
            (url, Some(id))
        }
    };
    if !crate::source::paginate::same_origin(&spec.start_url, &status) {
        return Err(ExportError::ForeignStatusHost {
            status: redact_url(&status),
            origin: origin_of(&spec.start_url),
        });
    }
    let now = time::OffsetDateTime::from(clock.now());
    let started_at = now
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| ExportError::Ledger(e.to_string()))?;
    Ok(StartedExport {
        status_url: status.to_string(),
        id,
        started_at,
    })
}

/// The export's state in a status document.
fn state_of(page: &FetchedPage, spec: &ExportSpec, what: &str) -> Result<String, ExportError> {
    let problem = |problem: String| ExportError::StatusDocument {
        what: what.to_string(),
        url: redact_url(&page.url),
        problem,
    };
    let text = std::str::from_utf8(&page.body).map_err(|_| problem("is not UTF-8 JSON".into()))?;
    let doc = JsonDoc::parse(text).map_err(|e| problem(format!("is not JSON: {e}")))?;
    doc.get_text(&spec.state_path)
        .map_err(|e| problem(e.to_string()))?
        .ok_or_else(|| {
            problem(format!(
                "has no state at {:?} (its fields are: {}); name it with --export-state-field",
                spec.state_path,
                doc.top_level_keys().join(", ")
            ))
        })
}

fn matches_any(state: &str, values: &[String]) -> bool {
    values.iter().any(|v| v.eq_ignore_ascii_case(state))
}

/// The API's own words on why the export failed, filtered (they may quote secrets).
fn failure_message(page: &FetchedPage) -> String {
    let Ok(text) = std::str::from_utf8(&page.body) else {
        return String::new();
    };
    let Ok(doc) = JsonDoc::parse(text) else {
        return String::new();
    };
    ["error", "message", "reason", "error_message"]
        .iter()
        .find_map(|path| doc.get_text(path).ok().flatten())
        .map(|m| format!(": {}", crate::secret::redact(&m)))
        .unwrap_or_default()
}

fn origin_of(u: &Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
        (Some(h), None) => format!("{}://{h}", u.scheme()),
        _ => u.scheme().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use reqwest::header::HeaderMap;
    use std::sync::Mutex;

    const T0: u64 = 1_800_000_000;

    struct Quiet;
    impl Reporter for Quiet {
        fn report(&self, _: crate::report::Event) {}
    }

    #[derive(Default)]
    struct MemoryLedger(Mutex<Option<StartedExport>>);

    #[async_trait::async_trait]
    impl ExportLedger for MemoryLedger {
        async fn started(&self) -> Result<Option<StartedExport>, ExportError> {
            Ok(self.0.lock().unwrap().clone())
        }
        async fn record(&self, export: &StartedExport) -> Result<(), ExportError> {
            *self.0.lock().unwrap() = Some(export.clone());
            Ok(())
        }
    }

    /// Answers the start with `start` (body, Location) and each status poll with the next
    /// state (the last one repeats); notes whether the ledger held the export at each poll.
    struct FakeApi<'a> {
        start: (String, Option<String>),
        states: Vec<&'static str>,
        ledger: &'a MemoryLedger,
        starts: Mutex<u32>,
        polls: Mutex<Vec<(String, bool)>>,
    }

    impl<'a> FakeApi<'a> {
        fn new(ledger: &'a MemoryLedger, start_body: &str, states: Vec<&'static str>) -> Self {
            Self {
                start: (start_body.to_string(), None),
                states,
                ledger,
                starts: Mutex::new(0),
                polls: Mutex::new(Vec::new()),
            }
        }
    }

    fn page(url: &Url, body: String, location: Option<&str>) -> FetchedPage {
        let mut headers = HeaderMap::new();
        if let Some(l) = location {
            headers.insert(reqwest::header::LOCATION, l.parse().unwrap());
        }
        FetchedPage {
            url: url.clone(),
            headers,
            body: Bytes::from(body),
            attempts: Vec::new(),
        }
    }

    #[async_trait::async_trait]
    impl ExportApi for FakeApi<'_> {
        async fn start(
            &self,
            url: &Url,
            _body: Bytes,
            _: &dyn Reporter,
        ) -> Result<FetchedPage, SourceError> {
            *self.starts.lock().unwrap() += 1;
            Ok(page(url, self.start.0.clone(), self.start.1.as_deref()))
        }
        async fn status(
            &self,
            url: &Url,
            _poll: u64,
            _: &dyn Reporter,
        ) -> Result<FetchedPage, SourceError> {
            let recorded = self.ledger.0.lock().unwrap().is_some();
            let mut polls = self.polls.lock().unwrap();
            polls.push((url.to_string(), recorded));
            let state = self.states[(polls.len() - 1).min(self.states.len() - 1)];
            let body = if state == "FAILED" {
                r#"{"status":"FAILED","error":"the warehouse is offline"}"#.to_string()
            } else {
                format!(r#"{{"status":"{state}","files":[]}}"#)
            };
            Ok(page(url, body, None))
        }
    }

    fn spec() -> ExportSpec {
        ExportSpec::new(Url::parse("https://api.example/prod/exports").unwrap())
    }

    fn clock() -> FakeClock {
        FakeClock::at(SystemTime::UNIX_EPOCH + Duration::from_secs(T0))
    }

    #[tokio::test]
    async fn starts_once_records_before_polling_and_backs_off_until_it_succeeds() {
        let ledger = MemoryLedger::default();
        let api = FakeApi::new(
            &ledger,
            r#"{"id":"e-1","status_url":"/prod/exports/e-1"}"#,
            vec![
                "QUEUED",
                "RUNNING",
                "RUNNING",
                "RUNNING",
                "RUNNING",
                "RUNNING",
                "SUCCEEDED",
            ],
        );
        let clock = clock();
        let done = await_export(&api, &spec(), &ledger, &clock, &clock, &Quiet)
            .await
            .unwrap();
        assert_eq!(*api.starts.lock().unwrap(), 1);
        let polls = api.polls.lock().unwrap().clone();
        assert_eq!(polls.len(), 7);
        for (url, recorded) in &polls {
            assert_eq!(url, "https://api.example/prod/exports/e-1");
            assert!(recorded, "polled before the export was recorded");
        }
        let s = Duration::from_secs;
        assert_eq!(clock.slept(), vec![s(1), s(2), s(4), s(8), s(16), s(30)]);
        assert!(!done.resumed);
        assert_eq!(done.export.id.as_deref(), Some("e-1"));
        assert_eq!(done.export.started_at, "2027-01-15T08:00:00Z");
        assert_eq!(ledger.0.lock().unwrap().as_ref(), Some(&done.export));
        assert!(std::str::from_utf8(&done.final_page.body)
            .unwrap()
            .contains("SUCCEEDED"));
    }

    #[tokio::test]
    async fn a_resumed_run_polls_the_recorded_export_and_never_starts_another() {
        let ledger = MemoryLedger::default();
        let recorded = StartedExport {
            status_url: "https://api.example/prod/exports/e-9".into(),
            id: Some("e-9".into()),
            started_at: "2027-01-15T07:59:00Z".into(),
        };
        *ledger.0.lock().unwrap() = Some(recorded.clone());
        let api = FakeApi::new(&ledger, "{}", vec!["running", "succeeded"]);
        let clock = clock();
        let done = await_export(&api, &spec(), &ledger, &clock, &clock, &Quiet)
            .await
            .unwrap();
        assert_eq!(*api.starts.lock().unwrap(), 0);
        assert!(done.resumed);
        assert_eq!(done.export, recorded);
        assert_eq!(api.polls.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn the_timeout_counts_from_the_start_and_the_last_pause_ends_at_it() {
        let ledger = MemoryLedger::default();
        // Started 50 minutes before this (resumed) attempt: 10 minutes are left.
        *ledger.0.lock().unwrap() = Some(StartedExport {
            status_url: "https://api.example/prod/exports/e-2".into(),
            id: Some("e-2".into()),
            started_at: "2027-01-15T07:10:00Z".into(),
        });
        let api = FakeApi::new(&ledger, "{}", vec!["RUNNING"]);
        let clock = clock();
        let mut spec = spec();
        spec.poll = PollPolicy {
            first: Duration::from_secs(60),
            max: Duration::from_secs(240),
        };
        let err = await_export(&api, &spec, &ledger, &clock, &clock, &Quiet)
            .await
            .unwrap_err();
        let s = Duration::from_secs;
        // 60 + 120 + 240 + 180 (clipped to the deadline) = 600 s, then one last look.
        assert_eq!(clock.slept(), vec![s(60), s(120), s(240), s(180)]);
        assert_eq!(api.polls.lock().unwrap().len(), 5);
        assert!(err.is_resumable());
        let text = err.to_string();
        assert!(
            text.contains("export e-2 has not finished after 3600 s")
                && text.contains("last state \"RUNNING\"")
                && text.contains("no second export is started"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_failed_export_says_why_in_the_apis_words() {
        let ledger = MemoryLedger::default();
        let api = FakeApi::new(
            &ledger,
            r#"{"status_url":"exports/x"}"#,
            vec!["RUNNING", "FAILED"],
        );
        let clock = clock();
        let err = await_export(&api, &spec(), &ledger, &clock, &clock, &Quiet)
            .await
            .unwrap_err();
        assert!(!err.is_resumable());
        assert_eq!(
            err.to_string(),
            "the export failed: its state is \"FAILED\": the warehouse is offline. Fix the cause on the API's side, then run again with --restart to start a new export"
        );
        assert_eq!(
            api.polls.lock().unwrap()[0].0,
            "https://api.example/prod/exports/x"
        );
    }

    #[tokio::test]
    async fn the_status_url_from_a_template_or_the_location_header() {
        let clock = clock();
        // A template filled with the (encoded) id.
        let ledger = MemoryLedger::default();
        let api = FakeApi::new(&ledger, r#"{"exportId":"a b"}"#, vec!["DONE"]);
        let mut templated = spec();
        templated.status = StatusFrom::Template {
            template: "https://api.example/prod/exports/{id}/status".into(),
            id_path: "exportId".into(),
        };
        let done = await_export(&api, &templated, &ledger, &clock, &clock, &Quiet)
            .await
            .unwrap();
        assert_eq!(
            done.status_url.as_str(),
            "https://api.example/prod/exports/a%20b/status"
        );
        // 202 Accepted with an empty body and a Location header.
        let ledger = MemoryLedger::default();
        let mut api = FakeApi::new(&ledger, "", vec!["COMPLETED"]);
        api.start.1 = Some("/prod/jobs/7".into());
        let done = await_export(&api, &spec(), &ledger, &clock, &clock, &Quiet)
            .await
            .unwrap();
        assert_eq!(done.status_url.as_str(), "https://api.example/prod/jobs/7");
        assert_eq!(done.export.id, None);
    }

    #[tokio::test]
    async fn bad_start_responses_and_foreign_status_hosts_are_refused_before_any_poll() {
        let clock = clock();
        let cases: &[(&str, &str)] = &[
            (
                r#"{"id":"1"}"#,
                "has no status URL: no \"status_url\" field and no Location header",
            ),
            ("<html>", "is not JSON"),
            (
                r#"{"status_url":"https://elsewhere.example/exports/1?sig=s3cr3t"}"#,
                "is not on the API's host https://api.example: refusing",
            ),
        ];
        for (body, expected) in cases {
            let ledger = MemoryLedger::default();
            let api = FakeApi::new(&ledger, body, vec!["DONE"]);
            let err = await_export(&api, &spec(), &ledger, &clock, &clock, &Quiet)
                .await
                .unwrap_err();
            let text = err.to_string();
            assert!(text.contains(expected), "{body}: {text}");
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(api.polls.lock().unwrap().is_empty());
            assert!(
                ledger.0.lock().unwrap().is_none(),
                "{body}: recorded anyway"
            );
        }
    }

    #[tokio::test]
    async fn a_status_document_without_a_state_names_the_flag() {
        let ledger = MemoryLedger::default();
        let api = FakeApi::new(&ledger, r#"{"status_url":"/s"}"#, vec!["DONE"]);
        let clock = clock();
        let mut spec = spec();
        spec.state_path = "job.state".into();
        let err = await_export(&api, &spec, &ledger, &clock, &clock, &Quiet)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has no state at \"job.state\" (its fields are: status, files); name it with --export-state-field"),
            "{err}"
        );
    }
}
