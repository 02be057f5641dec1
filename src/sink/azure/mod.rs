//! The Blob endpoint of an ADLS Gen2 (or plain Blob Storage) account as a destination.
//!
//! Why the Blob API and not the DFS one: the commit protocol needs an upload that becomes
//! visible all at once, and conditional writes the checkpoint can rely on. Block blobs give
//! both: blocks are staged invisibly (8 MiB each, a few in flight), then committed in ONE
//! `Put Block List`, so a Synapse reader sees the old blob or the whole new one, never part of
//! it; `If-None-Match: *` and `If-Match: <etag>` make create-only and compare-and-swap puts.
//! Small objects (one block or less) go up in a single `Put Blob`, which is just as atomic.
//!
//! The file split follows the backend's concerns: [`location`] parses destinations,
//! [`auth`] resolves credentials (Azure CLI conventions), [`shared_key`] signs requests with an
//! account key (the official SDK only does Entra tokens), and [`AzureSinkBuilder`] is the one
//! way to build a sink from the three. This file wires them into the
//! official `azure_storage_blob` clients over our own `reqwest` client — one HTTP stack for every
//! hop — with a bounded retry policy for throttling and 5xx, and a timeout around every call.
//!
//! Never: print a key, SAS or signature (URLs in errors are redacted and built without the
//! SAS; transport messages are scrubbed), or leave a partially written blob visible.

pub mod auth;
mod builder;
mod lease;
pub mod location;
mod parts;
pub mod shared_key;

pub use lease::LEASE_SECONDS;

pub use auth::StorageCredential;
pub use builder::AzureSinkBuilder;
pub use location::{is_azure_destination, AzureLocation};

use super::{
    Digests, ETag, GetResult, LockGuard, LockHolder, ObjectMeta, PutMode, PutResult, Sink,
    SinkError,
};
use crate::secret::{redact_url, Secret};
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, Etag, ExponentialRetryOptions, RetryOptions, Transport};
use azure_storage_blob::models::{
    BlobClientDownloadOptions, BlobContainerClientListBlobsOptions,
    BlockBlobClientCommitBlockListOptions, BlockBlobClientCommitBlockListResultHeaders,
    BlockBlobClientUploadOptions, BlockLookupList,
};
use azure_storage_blob::{
    BlobClient, BlobClientOptions, BlobContainerClient, BlobContainerClientOptions,
    BlockBlobClient, BlockBlobClientOptions,
};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use std::num::NonZero;
use std::sync::Arc;
use std::time::Duration;

/// The storage service version every request pins (`x-ms-version`). Old enough that Azurite
/// releases from 2024 on accept it without `--skipApiVersionCheck`, new enough for everything
/// this sink does (block blobs, conditional headers, listing).
pub const STORAGE_API_VERSION: &str = "2023-11-03";

/// Block size for staged uploads. Objects up to this size go up in one `Put Blob`.
pub const BLOCK_SIZE: usize = 8 * 1024 * 1024;

/// Blocks staged at once for one object: enough to fill a link, bounded for memory.
const UPLOAD_PARALLELISM: usize = 4;

/// An object over [`BLOCK_SIZE`] whose MD5 the caller already knows (a chunk, hashed for its
/// manifest) is staged as one block carrying that MD5 up to this size, instead of in blocks
/// each hashed again: one MD5 of the bytes instead of two. Larger ones keep the blocks and
/// their parallel staging.
const WHOLE_BLOCK_MAX: usize = 32 * 1024 * 1024;

/// Upper bound for one sink call (including the SDK's retries). Generous, because a call may
/// move a whole chunk; the per-request read timeout catches a stalled connection sooner.
const CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// A [`Sink`] on Azure Blob Storage / ADLS Gen2.
pub struct AzureSink {
    location: AzureLocation,
    credential: StorageCredential,
    client_options: ClientOptions,
    token: Option<Arc<dyn TokenCredential>>,
    container: BlobContainerClient,
    call_timeout: Duration,
}

impl std::fmt::Debug for AzureSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSink")
            .field("root", &self.root_url())
            .field("credential", &self.credential)
            .finish()
    }
}

/// The retry policy for storage: throttling (429, 503 ServerBusy), 5xx and dropped connections
/// are retried with exponential back-off, a few times and for a bounded total time.
fn retry_options() -> RetryOptions {
    RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: azure_core::time::Duration::milliseconds(250),
        max_retries: 4,
        max_total_elapsed: azure_core::time::Duration::seconds(60),
        max_delay: azure_core::time::Duration::seconds(8),
    })
}

impl AzureSink {
    /// Build the sink (through [`AzureSinkBuilder`]). `http` is a client of the shared stack
    /// (custom CA, proxy).
    fn new(
        location: AzureLocation,
        credential: StorageCredential,
        http: reqwest::Client,
    ) -> Result<Self, SinkError> {
        let mut per_call: Vec<Arc<dyn Policy>> = Vec::new();
        let mut per_try: Vec<Arc<dyn Policy>> = Vec::new();
        let mut token = None;
        match &credential {
            StorageCredential::SharedKey { account, key } => {
                per_try.push(Arc::new(shared_key::SharedKeyPolicy::new(account, key)?));
            }
            StorageCredential::Sas(sas) => {
                per_call.push(Arc::new(auth::SasPolicy::new(sas.clone())));
            }
            StorageCredential::Token(t) => {
                if location.blob_endpoint.scheme() != "https" {
                    return Err(SinkError::Credentials(format!(
                        "an Entra token is only sent over https, but the endpoint is {}; use an account key or SAS for the emulator",
                        redact_url(&location.blob_endpoint)
                    )));
                }
                token = Some(t.clone());
            }
        }
        let client_options = ClientOptions {
            per_call_policies: per_call,
            per_try_policies: per_try,
            retry: retry_options(),
            transport: Some(Transport::new(Arc::new(http))),
            ..Default::default()
        };
        let container = BlobContainerClient::new(
            location.container_url(),
            token.clone(),
            Some(BlobContainerClientOptions {
                client_options: client_options.clone(),
                version: STORAGE_API_VERSION.to_string(),
            }),
        )
        .map_err(|e| SinkError::InvalidDestination {
            dest: redact_url(&location.container_url()),
            reason: e.to_string(),
        })?;
        Ok(Self {
            location,
            credential,
            client_options,
            token,
            container,
            call_timeout: CALL_TIMEOUT,
        })
    }

    /// Where this sink writes.
    pub fn location(&self) -> &AzureLocation {
        &self.location
    }

    /// The kind of credential in use (`account key`, `SAS token`, `Entra token`), for reports.
    pub fn credential_kind(&self) -> &'static str {
        self.credential.kind()
    }

    /// Create the container unless it exists. Not part of `check()`, which creates nothing:
    /// the CLI offers it explicitly, and the tests use it.
    pub async fn create_container_if_missing(&self) -> Result<(), SinkError> {
        let url = redact_url(&self.location.container_url());
        self.timed(&url, async {
            match self.container.create(None).await {
                Ok(_) => Ok(()),
                Err(e) if error_code(&e).as_deref() == Some("ContainerAlreadyExists") => Ok(()),
                Err(e) => Err(self.map_err(e, &url, Op::Other)),
            }
        })
        .await
    }

    fn blob_url(&self, path: &str) -> Result<url::Url, SinkError> {
        let clean = super::join_path(&[path]);
        if clean.is_empty() || clean.split('/').any(|s| s == "." || s == "..") {
            return Err(SinkError::InvalidDestination {
                dest: path.to_string(),
                reason: "an object path must be non-empty, without '.' or '..' segments".into(),
            });
        }
        Ok(self.location.blob_url(&clean))
    }

    fn blob_client(&self, path: &str) -> Result<BlobClient, SinkError> {
        let url = self.blob_url(path)?;
        let dest = redact_url(&url);
        BlobClient::new(
            url,
            self.token.clone(),
            Some(BlobClientOptions {
                client_options: self.client_options.clone(),
                version: STORAGE_API_VERSION.to_string(),
            }),
        )
        .map_err(|e| SinkError::InvalidDestination {
            dest,
            reason: e.to_string(),
        })
    }

    fn block_blob_client(&self, path: &str) -> Result<BlockBlobClient, SinkError> {
        let url = self.blob_url(path)?;
        let dest = redact_url(&url);
        BlockBlobClient::new(
            url,
            self.token.clone(),
            Some(BlockBlobClientOptions {
                client_options: self.client_options.clone(),
                version: STORAGE_API_VERSION.to_string(),
            }),
        )
        .map_err(|e| SinkError::InvalidDestination {
            dest,
            reason: e.to_string(),
        })
    }

    /// Run one sink call under the call timeout.
    async fn timed<T>(
        &self,
        url: &str,
        fut: impl std::future::Future<Output = Result<T, SinkError>>,
    ) -> Result<T, SinkError> {
        match tokio::time::timeout(self.call_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(SinkError::Connect {
                url: url.to_string(),
                message: format!(
                    "no complete answer within {} s (timed out); the endpoint may be unreachable or overloaded",
                    self.call_timeout.as_secs()
                ),
            }),
        }
    }

    /// Put Blob: one request, for objects of at most one block. `md5`, when known, is kept
    /// as the blob's `Content-MD5`.
    async fn put_single(
        &self,
        client: &BlockBlobClient,
        data: Bytes,
        (if_match, if_none_match): (Option<Etag>, Option<Etag>),
        md5: Option<[u8; 16]>,
    ) -> azure_core::Result<Option<Etag>> {
        // A partition at least the object's size makes the SDK send it as one Put Blob.
        let whole = NonZero::new(data.len() as u64).unwrap_or(NonZero::<u64>::MIN);
        let options = BlockBlobClientUploadOptions {
            if_match,
            if_none_match,
            blob_content_md5: md5.map(|m| m.to_vec()),
            partition_size: Some(whole),
            parallel: Some(NonZero::<usize>::MIN),
            ..Default::default()
        };
        let result = client.upload(data.into(), Some(options)).await?;
        Ok(result.etag)
    }

    /// Stage blocks (a few at a time), then commit them in one Put Block List carrying the
    /// put's condition: until that commit succeeds nothing is visible to readers. With the
    /// object's `md5` known, an object up to [`WHOLE_BLOCK_MAX`] is one block sent with it,
    /// and the commit keeps it as the blob's `Content-MD5`.
    async fn put_blocks(
        &self,
        client: &BlockBlobClient,
        data: Bytes,
        (if_match, if_none_match): (Option<Etag>, Option<Etag>),
        md5: Option<[u8; 16]>,
    ) -> azure_core::Result<Option<Etag>> {
        // Block ids must all have the same length within a blob; a random nonce keeps two
        // writers racing on one path from committing each other's blocks.
        let nonce: u64 = rand::random();
        let whole = md5.filter(|_| data.len() <= WHOLE_BLOCK_MAX);
        let block_size = if whole.is_some() {
            data.len()
        } else {
            BLOCK_SIZE
        };
        let blocks: Vec<(Vec<u8>, Bytes)> = (0..data.len())
            .step_by(block_size.max(1))
            .enumerate()
            .map(|(i, start)| {
                let end = (start + block_size).min(data.len());
                (
                    format!("{nonce:016x}-{i:08}").into_bytes(),
                    data.slice(start..end),
                )
            })
            .collect();
        let ids: Vec<Vec<u8>> = blocks.iter().map(|(id, _)| id.clone()).collect();
        futures::stream::iter(blocks)
            .map(|(id, chunk)| async move {
                let len = chunk.len() as u64;
                let options = match whole {
                    Some(md5) => parts::block_options(md5.to_vec()),
                    None => parts::stage_block_options(&chunk).await,
                };
                client
                    .stage_block(&id, len, chunk.into(), Some(options))
                    .await
                    .map(|_| ())
            })
            .buffer_unordered(UPLOAD_PARALLELISM)
            .try_collect::<Vec<()>>()
            .await?;
        let list = BlockLookupList {
            latest: Some(ids),
            ..Default::default()
        };
        let options = BlockBlobClientCommitBlockListOptions {
            if_match,
            if_none_match,
            blob_content_md5: md5.map(|m| m.to_vec()),
            ..Default::default()
        };
        let rsp = client
            .commit_block_list(list.try_into()?, Some(options))
            .await?;
        rsp.etag()
    }

    /// `put`, with the object's MD5 when the caller knows it.
    async fn put_with(
        &self,
        path: &str,
        data: Bytes,
        mode: PutMode,
        md5: Option<[u8; 16]>,
    ) -> Result<PutResult, SinkError> {
        let url = self.url_of(path);
        let client = self.block_blob_client(path)?;
        let conditions = conditions(&mode);
        let etag = self
            .timed(&url, async {
                let result = if data.len() <= BLOCK_SIZE {
                    self.put_single(&client, data, conditions, md5).await
                } else {
                    if mode == PutMode::Create {
                        // Fail fast rather than stage every block only to have the commit
                        // refused; the commit's own condition still decides any race.
                        let probe = self.blob_client(path)?;
                        if probe
                            .exists()
                            .await
                            .map_err(|e| self.map_err(e, &url, Op::Put(&mode)))?
                        {
                            return Err(SinkError::AlreadyExists { url: url.clone() });
                        }
                    }
                    self.put_blocks(&client, data, conditions, md5).await
                };
                result.map_err(|e| self.map_err(e, &url, Op::Put(&mode)))
            })
            .await?;
        let etag = etag.ok_or_else(|| SinkError::Http {
            url: url.clone(),
            status: 0,
            message: "the service accepted the upload but returned no ETag".into(),
        })?;
        Ok(PutResult {
            etag: ETag(etag.to_string()),
            url,
        })
    }

    /// Translate an SDK error into a [`SinkError`] naming `url` and what to do.
    fn map_err(&self, err: azure_core::Error, url: &str, op: Op<'_>) -> SinkError {
        let url = url.to_string();
        match err.kind() {
            ErrorKind::HttpResponse { status, .. } => {
                let status = u16::from(*status);
                let code = error_code(&err).unwrap_or_default();
                let message = crate::secret::redact(&service_message(&err));
                let detail = match (code.is_empty(), message.is_empty()) {
                    (false, false) => format!("{code}: {message}"),
                    (false, true) => code.clone(),
                    (true, false) => message,
                    (true, true) => format!("HTTP {status}"),
                };
                match (status, code.as_str(), op) {
                    (404, "ContainerNotFound", _) => SinkError::ContainerNotFound {
                        url,
                        hint: format!(
                            " (az storage container create --name {} --account-name {})",
                            self.location.container, self.location.account
                        ),
                    },
                    (401 | 403, _, _) => SinkError::Auth {
                        url,
                        status,
                        message: format!(
                            "{detail} — using {}: {}",
                            self.credential.kind(),
                            self.credential.auth_hint()
                        ),
                    },
                    (409, _, Op::Put(PutMode::Create)) | (412, _, Op::Put(PutMode::Create)) => {
                        SinkError::AlreadyExists { url }
                    }
                    (409, "BlobAlreadyExists", _) => SinkError::AlreadyExists { url },
                    (412, _, _) => SinkError::PreconditionFailed { url },
                    (404, _, _) => SinkError::NotFound { url },
                    _ => SinkError::Http {
                        url,
                        status,
                        message: detail,
                    },
                }
            }
            ErrorKind::Connection => SinkError::Connect {
                message: format!(
                    "the endpoint {} is unreachable ({}); check the destination's host and port, the network or proxy, and for Azurite that it is running",
                    redact_url(&self.location.blob_endpoint),
                    self.scrub(&root_cause(&err))
                ),
                url,
            },
            ErrorKind::Io => SinkError::Connect {
                message: format!("the connection failed mid-request: {}", self.scrub(&root_cause(&err))),
                url,
            },
            ErrorKind::Credential => SinkError::Credentials(format!(
                "could not get an Entra token for storage ({}); sign in with `az login`, or set AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_KEY / AZURE_STORAGE_SAS_TOKEN",
                self.scrub(&root_cause(&err))
            )),
            _ => SinkError::Http {
                url,
                status: 0,
                message: self.scrub(&root_cause(&err)),
            },
        }
    }

    /// Remove a SAS (or its signature) from a transport message, in case one echoes the URL.
    fn scrub(&self, message: &str) -> String {
        match &self.credential {
            StorageCredential::Sas(sas) => scrub_sas(message, sas),
            _ => message.to_string(),
        }
    }
}

/// What a failed request was doing; decides how 404/409/412 read.
#[derive(Clone, Copy)]
enum Op<'a> {
    Put(&'a PutMode),
    Other,
}

fn error_code(err: &azure_core::Error) -> Option<String> {
    match err.kind() {
        ErrorKind::HttpResponse {
            error_code,
            raw_response,
            ..
        } => raw_response
            .as_ref()
            .and_then(|r| r.headers().get_optional_string(&"x-ms-error-code".into()))
            .or_else(|| error_code.clone()),
        _ => None,
    }
}

/// The first line of the service's `<Message>`; later lines carry request ids and times,
/// and `AuthenticationErrorDetail` (deliberately skipped) can quote a computed signature.
fn service_message(err: &azure_core::Error) -> String {
    let ErrorKind::HttpResponse {
        raw_response: Some(raw),
        ..
    } = err.kind()
    else {
        return String::new();
    };
    let body = String::from_utf8_lossy(raw.body());
    let Some(start) = body.find("<Message>") else {
        return String::new();
    };
    let rest = &body[start + "<Message>".len()..];
    let end = rest.find("</Message>").unwrap_or(rest.len());
    rest[..end]
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The innermost error's message: for a refused connection, the OS's "Connection refused"
/// rather than a wrapper that quotes the full request URL.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn scrub_sas(message: &str, sas: &Secret) -> String {
    let mut out = message.replace(sas.expose(), "***");
    for pair in sas.expose().split('&') {
        if let Some((k, v)) = pair.split_once('=') {
            if crate::secret::is_secret_name(k) && !v.is_empty() {
                out = out.replace(v, "***");
            }
        }
    }
    out
}

fn conditions(mode: &PutMode) -> (Option<Etag>, Option<Etag>) {
    match mode {
        PutMode::Overwrite => (None, None),
        PutMode::Create => (None, Some(Etag::from("*"))),
        PutMode::Update(etag) => (Some(Etag::from(etag.0.clone())), None),
    }
}

fn status_and_code(err: &azure_core::Error) -> (Option<u16>, Option<String>) {
    (err.http_status().map(u16::from), error_code(err))
}

#[async_trait]
impl Sink for AzureSink {
    fn root_url(&self) -> String {
        let mut url = self.location.container_url();
        if !self.location.prefix.is_empty() {
            if let Ok(mut segs) = url.path_segments_mut() {
                segs.extend(self.location.prefix.split('/'));
            }
        }
        redact_url(&url)
    }

    fn url_of(&self, path: &str) -> String {
        redact_url(&self.location.blob_url(path))
    }

    fn identity_kind(&self) -> Option<&'static str> {
        Some(self.credential_kind())
    }

    async fn check(&self) -> Result<(), SinkError> {
        let url = self.root_url();
        // Listing one name, rather than reading container properties, is what a container-
        // scoped SAS and the "Storage Blob Data Contributor" role both allow, and it proves the
        // container exists and the credential works.
        self.timed(&url, async {
            let options = BlobContainerClientListBlobsOptions {
                maxresults: Some(1),
                ..Default::default()
            };
            let mut pages = self
                .container
                .list_blobs(Some(options))
                .map_err(|e| self.map_err(e, &url, Op::Other))?
                .into_pages();
            pages
                .try_next()
                .await
                .map_err(|e| self.map_err(e, &url, Op::Other))?;
            Ok(())
        })
        .await
    }

    async fn put(&self, path: &str, data: Bytes, mode: PutMode) -> Result<PutResult, SinkError> {
        self.put_with(path, data, mode, None).await
    }

    async fn put_digested(
        &self,
        path: &str,
        data: Bytes,
        mode: PutMode,
        digests: &Digests,
    ) -> Result<PutResult, SinkError> {
        self.put_with(path, data, mode, Some(digests.md5)).await
    }

    async fn get(&self, path: &str) -> Result<Option<GetResult>, SinkError> {
        let url = self.url_of(path);
        let client = self.blob_client(path)?;
        self.timed(&url, async {
            // The SDK locks later ranges of a partitioned download to the first response's
            // ETag, so the bytes and the ETag returned belong to one version.
            let options = BlobClientDownloadOptions {
                parallel: NonZero::new(UPLOAD_PARALLELISM),
                partition_size: NonZero::new(4 * BLOCK_SIZE),
                ..Default::default()
            };
            let result = match client.download(Some(options)).await {
                Ok(r) => r,
                Err(e) => {
                    return match status_and_code(&e) {
                        (Some(404), code) if code.as_deref() != Some("ContainerNotFound") => {
                            Ok(None)
                        }
                        _ => Err(self.map_err(e, &url, Op::Other)),
                    }
                }
            };
            let etag = result.properties.etag.clone();
            let data = result
                .body
                .collect()
                .await
                .map_err(|e| self.map_err(e, &url, Op::Other))?;
            let etag = etag.ok_or_else(|| SinkError::Http {
                url: url.clone(),
                status: 0,
                message: "the service returned the blob without an ETag".into(),
            })?;
            Ok(Some(GetResult {
                data,
                etag: ETag(etag.to_string()),
            }))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, SinkError> {
        let url = self.root_url();
        let full_prefix = self.location.list_prefix(prefix);
        let strip = if self.location.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.location.prefix)
        };
        self.timed(&url, async {
            let options = BlobContainerClientListBlobsOptions {
                prefix: (!full_prefix.is_empty()).then(|| full_prefix.clone()),
                ..Default::default()
            };
            let mut pages = self
                .container
                .list_blobs(Some(options))
                .map_err(|e| self.map_err(e, &url, Op::Other))?
                .into_pages();
            let mut out = Vec::new();
            while let Some(page) = pages
                .try_next()
                .await
                .map_err(|e| self.map_err(e, &url, Op::Other))?
            {
                let page = page
                    .into_model()
                    .map_err(|e| self.map_err(e, &url, Op::Other))?;
                for item in page.blob_items {
                    let Some(name) = item.name else { continue };
                    let Some(rel) = name.strip_prefix(&strip) else {
                        continue;
                    };
                    out.push(ObjectMeta {
                        path: rel.to_string(),
                        size: item.properties.and_then(|p| p.content_length).unwrap_or(0),
                    });
                }
            }
            out.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(out)
        })
        .await
    }

    async fn ensure_root(&self) -> Result<(), SinkError> {
        self.create_container_if_missing().await
    }

    async fn delete(&self, path: &str) -> Result<(), SinkError> {
        let url = self.url_of(path);
        let client = self.blob_client(path)?;
        self.timed(&url, async {
            match client.delete(None).await {
                Ok(_) => Ok(()),
                Err(e) => match status_and_code(&e) {
                    (Some(404), code) if code.as_deref() != Some("ContainerNotFound") => Ok(()),
                    _ => Err(self.map_err(e, &url, Op::Other)),
                },
            }
        })
        .await
    }

    async fn stage_part(
        &self,
        path: &str,
        upload: &str,
        part: u32,
        data: Bytes,
    ) -> Result<(), SinkError> {
        self.stage_part_blob(path, upload, part, data).await
    }

    async fn staged_parts(&self, path: &str, upload: &str) -> Result<Vec<u32>, SinkError> {
        self.staged_parts_blob(path, upload).await
    }

    async fn commit_parts(
        &self,
        path: &str,
        upload: &str,
        parts: u32,
        mode: PutMode,
    ) -> Result<PutResult, SinkError> {
        self.commit_parts_blob(path, upload, parts, mode).await
    }

    async fn stage_part_from_url(
        &self,
        path: &str,
        upload: &str,
        part: u32,
        source_url: &str,
        range: std::ops::Range<u64>,
    ) -> Result<(), SinkError> {
        self.stage_part_from_url_blob(path, upload, part, source_url, range)
            .await
    }

    async fn lock(&self, path: &str, holder: &LockHolder) -> Result<Box<dyn LockGuard>, SinkError> {
        self.lock_job(path, holder).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sas_values_are_scrubbed_from_messages() {
        let sas = Secret::new("sv=2022-11-02&sp=rl&sig=AbC%2Bd");
        let msg = "error sending request for url (https://a.blob.core.windows.net/c?comp=list&sv=2022-11-02&sp=rl&sig=AbC%2Bd)";
        let got = scrub_sas(msg, &sas);
        assert!(!got.contains("AbC%2Bd"), "{got}");
        let msg = "url (https://a/c?comp=list&sig=AbC%2Bd&sv=2022-11-02)";
        let got = scrub_sas(msg, &sas);
        assert!(!got.contains("AbC%2Bd"), "{got}");
    }

    #[test]
    fn put_modes_map_to_conditions() {
        assert_eq!(conditions(&PutMode::Overwrite), (None, None));
        assert_eq!(conditions(&PutMode::Create), (None, Some(Etag::from("*"))));
        assert_eq!(
            conditions(&PutMode::Update(ETag("\"0x1\"".into()))),
            (Some(Etag::from("\"0x1\"")), None)
        );
    }

    #[test]
    fn token_credentials_need_https() {
        #[derive(Debug)]
        struct NoToken;
        #[async_trait]
        impl TokenCredential for NoToken {
            async fn get_token(
                &self,
                _: &[&str],
                _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
            ) -> azure_core::Result<azure_core::credentials::AccessToken> {
                Err(ErrorKind::Credential.into_error())
            }
        }
        let loc = AzureLocation::parse("http://127.0.0.1:1/devstoreaccount1/c").unwrap();
        let err = AzureSinkBuilder::new(loc)
            .with_credential(StorageCredential::Token(Arc::new(NoToken)))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("only sent over https"), "{err}");
        let loc = AzureLocation::parse("https://a.blob.core.windows.net/c/p").unwrap();
        let sink = AzureSinkBuilder::new(loc)
            .with_credential(StorageCredential::Token(Arc::new(NoToken)))
            .build()
            .unwrap();
        assert_eq!(sink.root_url(), "https://a.blob.core.windows.net/c/p");
        assert_eq!(
            sink.url_of("x/y.gz"),
            "https://a.blob.core.windows.net/c/p/x/y.gz"
        );
        assert_eq!(sink.credential_kind(), "Entra token");
    }
}
