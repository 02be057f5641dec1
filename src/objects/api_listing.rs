//! The objects an API hands back, as a source of an object run ([`ObjectSource`]): references
//! in its pages ([`super::refs`]), or the object list of an asynchronous export
//! ([`super::export`]) whose record is kept in the run's checkpoint (the source's notes), so a
//! resumed run — or the driver's one fresh listing after an expired presigned URL — follows
//! the same export and never starts a second one.

use super::export::{await_export, ExportError, ExportLedger, ExportSpec, StartedExport};
use super::refs::{list_refs, RefFields, RefListing};
use super::source::{ObjectSource, ObjectSourceError, SourceListing, SourceNotes};
use crate::clock::{Clock, Sleeper, SystemClock, TokioSleeper};
use crate::config::SourceConfig;
use crate::report::Reporter;
use crate::secret::redact_url;
use crate::source::client::ApiClient;
use std::sync::Arc;

/// The note under which an export's record is kept in the checkpoint.
const EXPORT_NOTE: &str = "export";

/// How a pull finds its objects in the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiObjectsConfig {
    pub fields: RefFields,
    /// `--export`: `source.url` starts an export whose final status document lists the
    /// objects; otherwise `source.url` is the first page of a listing of references.
    pub export: Option<ExportSpec>,
}

/// The objects an API hands back.
pub struct ApiSource {
    client: ApiClient,
    source: SourceConfig,
    config: ApiObjectsConfig,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
}

impl ApiSource {
    pub fn new(client: ApiClient, source: SourceConfig, config: ApiObjectsConfig) -> Self {
        Self {
            client,
            source,
            config,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
        }
    }

    /// The same source on another clock and sleeper (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>, sleeper: Arc<dyn Sleeper>) -> Self {
        self.clock = clock;
        self.sleeper = sleeper;
        self
    }

    async fn listing(
        &self,
        notes: &dyn SourceNotes,
        reporter: &dyn Reporter,
    ) -> Result<RefListing, ObjectSourceError> {
        let pagination = &self.source.pagination;
        let fields = &self.config.fields;
        let Some(spec) = &self.config.export else {
            return list_refs(
                &self.client,
                &self.source.url,
                pagination,
                fields,
                None,
                reporter,
            )
            .await
            .map_err(|e| ObjectSourceError::Listing(Box::new(e)));
        };
        let ledger = NotesLedger(notes);
        let done = await_export(
            &self.client,
            spec,
            &ledger,
            self.clock.as_ref(),
            self.sleeper.as_ref(),
            reporter,
        )
        .await
        .map_err(export_error)?;
        let url = done.status_url.clone();
        list_refs(
            &self.client,
            &url,
            pagination,
            fields,
            Some(done.final_page),
            reporter,
        )
        .await
        .map_err(|e| ObjectSourceError::Listing(Box::new(e)))
    }
}

/// An export that may still finish keeps the run (a rerun waits for the same export).
fn export_error(e: ExportError) -> ObjectSourceError {
    if e.is_resumable() {
        ObjectSourceError::Resumable(Box::new(e))
    } else {
        ObjectSourceError::Listing(Box::new(e))
    }
}

#[async_trait::async_trait]
impl ObjectSource for ApiSource {
    fn describe(&self) -> String {
        redact_url(&self.source.url)
    }

    fn kind(&self) -> &'static str {
        match self.config.export {
            Some(_) => "export",
            None => "api-references",
        }
    }

    async fn list(
        &self,
        notes: &dyn SourceNotes,
        reporter: &dyn Reporter,
    ) -> Result<SourceListing, ObjectSourceError> {
        let listing = self.listing(notes, reporter).await?;
        Ok(SourceListing {
            objects: listing.objects,
            pages: listing.pages,
            warnings: listing.warnings,
        })
    }
}

/// The export's record in the run's checkpoint, through the source's notes.
struct NotesLedger<'a>(&'a dyn SourceNotes);

#[async_trait::async_trait]
impl ExportLedger for NotesLedger<'_> {
    async fn started(&self) -> Result<Option<StartedExport>, ExportError> {
        match self.0.get(EXPORT_NOTE).await {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                ExportError::Ledger(format!(
                    "cannot be read ({e}); run with --restart to start a new export"
                ))
            }),
        }
    }

    async fn record(&self, export: &StartedExport) -> Result<(), ExportError> {
        let text = serde_json::to_string(export).map_err(|e| ExportError::Ledger(e.to_string()))?;
        self.0
            .set(EXPORT_NOTE, &text)
            .await
            .map_err(ExportError::Ledger)
    }
}
