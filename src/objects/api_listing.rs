//! The objects an API hands back, as one source for the object run: references in its pages
//! ([`super::refs`]) or the object list of an asynchronous export ([`super::export`]), and the
//! expired-URL rule both share.
//!
//! Presigned URLs expire (often after minutes), and a large run may reach an object after its
//! URL has. The rule: the first time an object's URL is refused as expired (403 "Request has
//! expired"), the API is asked for a fresh list once — the same listing walked again, or the
//! same export's status document read again, never a second export — and the object is
//! matched by name in it; every later expiry is taken from that fresh list. An object missing
//! from it, or a fresh URL refused again, fails the run clearly (its checkpoint kept).

use super::export::{await_export, ExportError, ExportLedger, ExportSpec};
use super::refs::{list_refs, RefFields, RefListing, RefsError};
use super::ObjectRef;
use crate::clock::{Clock, Sleeper};
use crate::config::SourceConfig;
use crate::report::Reporter;
use crate::source::client::ApiClient;
use std::collections::{HashMap, HashSet};
use url::Url;

/// How a pull finds its objects in the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiObjectsConfig {
    pub fields: RefFields,
    /// `--export`: `source.url` starts an export whose final status document lists the
    /// objects; otherwise `source.url` is the first page of a listing of references.
    pub export: Option<ExportSpec>,
}

/// Why an API did not tell which objects to land.
#[derive(Debug, thiserror::Error)]
pub enum ApiObjectsError {
    #[error(transparent)]
    Refs(#[from] RefsError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("the presigned URL of {name:?} has expired{again}, and the API's fresh object list {problem}. Run the same command again to resume (already landed objects are kept); if URLs expire before they can be read, ask the API for longer-lived URLs")]
    Expired {
        name: String,
        /// Empty, or " again" when the fresh URL was refused too.
        again: &'static str,
        problem: String,
    },
    #[error("the expired-URL rule needs the object list first (internal)")]
    NotListed,
}

impl ApiObjectsError {
    /// Whether a rerun picks the work up where it stopped (see [`ExportError::is_resumable`]).
    pub fn is_resumable(&self) -> bool {
        match self {
            ApiObjectsError::Export(e) => e.is_resumable(),
            ApiObjectsError::Expired { .. } => true,
            _ => false,
        }
    }
}

/// The objects an API hands back, listed once and re-listed at most once.
pub struct ApiObjects<'a> {
    client: &'a ApiClient,
    source: &'a SourceConfig,
    config: &'a ApiObjectsConfig,
    /// Where the object list starts: `source.url`, or the export's status URL once known.
    listing_url: Option<Url>,
    /// The fresh list, by name, once the expired-URL rule asked for it.
    fresh: Option<HashMap<String, ObjectRef>>,
    /// Objects whose fresh URL was handed out: a second expiry of one of them is final.
    renewed: HashSet<String>,
}

impl<'a> ApiObjects<'a> {
    pub fn new(
        client: &'a ApiClient,
        source: &'a SourceConfig,
        config: &'a ApiObjectsConfig,
    ) -> Self {
        Self {
            client,
            source,
            config,
            listing_url: None,
            fresh: None,
            renewed: HashSet::new(),
        }
    }

    /// The objects to land: the listing walked to its end, or the export started (or picked
    /// up from `ledger`), waited for, and its object list read.
    pub async fn list(
        &mut self,
        ledger: &dyn ExportLedger,
        clock: &dyn Clock,
        sleeper: &dyn Sleeper,
        reporter: &dyn Reporter,
    ) -> Result<RefListing, ApiObjectsError> {
        let pagination = &self.source.pagination;
        match &self.config.export {
            None => {
                let url = self.source.url.clone();
                let listing = list_refs(
                    self.client,
                    &url,
                    pagination,
                    &self.config.fields,
                    None,
                    reporter,
                )
                .await?;
                self.listing_url = Some(url);
                Ok(listing)
            }
            Some(spec) => {
                let done =
                    await_export(self.client, spec, ledger, clock, sleeper, reporter).await?;
                let url = done.status_url.clone();
                let listing = list_refs(
                    self.client,
                    &url,
                    pagination,
                    &self.config.fields,
                    Some(done.final_page),
                    reporter,
                )
                .await?;
                self.listing_url = Some(url);
                Ok(listing)
            }
        }
    }

    /// The expired-URL rule for `object`, whose presigned URL was refused as expired: the
    /// same object from a fresh list (asked for the first time only), or a clear error when
    /// the object's fresh URL has expired too.
    pub async fn renew(
        &mut self,
        object: &ObjectRef,
        reporter: &dyn Reporter,
    ) -> Result<ObjectRef, ApiObjectsError> {
        let name = object.name.clone();
        if self.renewed.contains(&name) {
            return Err(ApiObjectsError::Expired {
                name,
                again: " again",
                problem: "was already asked for once in this run".into(),
            });
        }
        if self.fresh.is_none() {
            let url = self.listing_url.clone().ok_or(ApiObjectsError::NotListed)?;
            reporter.report(crate::report::Event::Warning {
                message: format!(
                    "the presigned URL of {name:?} has expired: asking the API for a fresh object list (once per run)"
                ),
            });
            let listing = list_refs(
                self.client,
                &url,
                &self.source.pagination,
                &self.config.fields,
                None,
                reporter,
            )
            .await?;
            self.fresh = Some(
                listing
                    .objects
                    .into_iter()
                    .map(|o| (o.name.clone(), o))
                    .collect(),
            );
        }
        let found = self.fresh.as_ref().and_then(|fresh| fresh.get(&name));
        match found {
            Some(fresh) if fresh.location != object.location => {
                self.renewed.insert(name);
                Ok(fresh.clone())
            }
            Some(_) => Err(ApiObjectsError::Expired {
                name,
                again: "",
                problem: "gives the same URL again".into(),
            }),
            None => Err(ApiObjectsError::Expired {
                name,
                again: "",
                problem: "no longer lists it".into(),
            }),
        }
    }

    /// Whether the fresh list was asked for (the rule's "once").
    pub fn relisted(&self) -> bool {
        self.fresh.is_some()
    }
}
