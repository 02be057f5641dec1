//! The engine's front door: one place that turns resolved settings ([`IdentitySettings`],
//! [`crate::config::PullConfig`]) into the parts of a run — the identity of every hop
//! (proved before anything is written), the storage sink, the API client, the checkpoint
//! store — and runs it. `pull`, `sql`, `auth check` and `demo` all get their parts here, so
//! that a setting such as `--ca-bundle` or `--azure-auth-storage` means the same thing to
//! every command (a second constructor for the same part is how `sql` once ignored both).
//!
//! The binary resolves flags, environment and job file into the settings and renders what the
//! engine returns; this module never parses a flag, prints, or exits. Its errors say which
//! part failed ([`IdentityFailure`], [`crate::sink::SinkError`], [`ClientError`]) so the
//! caller can choose an exit code.

pub mod identity;
pub mod oauth2;
pub mod objects;
pub mod prove;
pub mod settings;
pub mod sink;

pub use prove::{AwsToProve, IdentityFailure};
pub use settings::{AwsRoleSettings, IdentitySettings, WebIdentityKind};

use crate::config::{ApiAuth, PullConfig, SourceConfig};
use crate::http::{HttpOptions, HttpSetupError};
use crate::identity::aws::AwsCredentials;
use crate::identity::azure::{AzureHop, AzureIdentity, HopIdentities};
use crate::load::manifest::ManifestIdentity;
use crate::report::Reporter;
use crate::run::{PullError, RunOptions, RunSummary, StopSignal};
use crate::run_tag::RunTag;
use crate::sink::{Sink, SinkError};
use crate::source::client::{ApiClient, SourceError};
use crate::state::store::CheckpointStore;
use std::sync::Arc;

/// Builds the parts of a run from the resolved identity settings.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    settings: IdentitySettings,
    /// `--api-auth oauth2`'s provider, shared by the proof, `auth check` and the client.
    oauth2: oauth2::ProviderSlot,
    /// The run the parts' requests name (`User-Agent`, AWS role session name); no id unless
    /// one is minted for a run ([`Engine::with_new_run_id`]).
    run: RunTag,
}

/// Who a run is on every hop, proved: the Azure identity of each hop that needs one, the AWS
/// credentials that sign API requests (when the API is signed), and what the proof learned,
/// for the manifest (never a token).
pub struct RunIdentities {
    pub azure: HopIdentities,
    pub aws: Option<Arc<AwsCredentials>>,
    pub proven: Vec<ManifestIdentity>,
}

/// Why the API client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP stack (a CA bundle that cannot be read, say).
    #[error(transparent)]
    Http(#[from] HttpSetupError),
    /// The client's own settings (a header, the AWS chain).
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Why a destination could not be opened: its identity or the sink itself.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error(transparent)]
    Identity(#[from] IdentityFailure),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl Engine {
    pub fn new(settings: IdentitySettings) -> Self {
        Self {
            settings,
            oauth2: Default::default(),
            run: RunTag::new(),
        }
    }

    /// The OAuth2 provider of `--api-auth oauth2` (`None` for another auth); `api` is the
    /// API hop's Azure identity, for `--subject-token azure`.
    pub fn oauth2_provider(
        &self,
        auth: &ApiAuth,
        api: Option<&Arc<AzureIdentity>>,
    ) -> Result<
        Option<Arc<crate::identity::oauth2::OAuth2Provider>>,
        crate::identity::oauth2::OAuth2Error,
    > {
        oauth2::provider(&self.oauth2, &self.settings, auth, api)
    }

    /// The same engine for a run: a run id is minted now, before any identity is proved, so
    /// that the AWS role session and the `User-Agent` name it from the first request. A new
    /// run takes this id; a resumed run replaces it with its own.
    pub fn with_new_run_id(mut self) -> Self {
        self.run = RunTag::with_id(&crate::state::run_id::new_run_id(
            time::OffsetDateTime::now_utc(),
        ));
        self
    }

    /// The run the parts' requests name.
    pub fn run_tag(&self) -> &RunTag {
        &self.run
    }

    pub fn settings(&self) -> &IdentitySettings {
        &self.settings
    }

    /// Settings that work here but not against the real services, to be told to the user.
    pub fn warnings(&self) -> Vec<String> {
        identity::warnings(&self.settings)
    }

    /// The options of the shared HTTP stack (trusted roots, proxies); timeouts per hop.
    pub fn http_options(&self) -> HttpOptions {
        identity::http_options(&self.settings)
    }

    /// The hops of a run into `dest` that need an Entra identity, with their audiences.
    pub fn azure_hops(&self, dest: &str, auth: &ApiAuth) -> Vec<(AzureHop, String)> {
        identity::azure_hops(&self.settings, dest, auth)
    }

    /// The Azure identity of each hop in `wanted`, each hop's failure kept with it.
    pub async fn azure_identities(
        &self,
        wanted: &[(AzureHop, String)],
    ) -> Result<HopIdentities, IdentityFailure> {
        identity::azure_identities(&self.settings, wanted).await
    }

    /// The role's credentials from the web-identity exchange (`None` without a role).
    pub fn role_credentials(
        &self,
        azure: Option<&Arc<AzureIdentity>>,
        job: &str,
    ) -> Result<Option<identity::RoleCredentials>, IdentityFailure> {
        identity::role_credentials(&self.settings, azure, job, &self.run)
    }

    /// The AWS SDK's HTTP client with the shared trusted roots (`None`: the SDK's default).
    pub fn sdk_http_client(
        &self,
    ) -> Result<Option<aws_smithy_runtime_api::client::http::SharedHttpClient>, IdentityFailure>
    {
        identity::sdk_http_client(&self.settings)
    }

    /// Resolve and prove the identity of every hop a pull of `source` into `dest` takes,
    /// before the job's lock is taken or anything is written: a misconfigured identity leaves
    /// nothing behind.
    pub async fn identities(
        &self,
        dest: &str,
        source: &SourceConfig,
        job: &str,
    ) -> Result<RunIdentities, IdentityFailure> {
        let wanted = self.azure_hops(dest, &source.auth);
        let azure = self.azure_identities(&wanted).await?;
        if let Some(e) = azure.first_error() {
            return Err(IdentityFailure(e.to_string()));
        }
        for (hop, id) in azure.iter() {
            if let Ok(id) = id {
                tracing::info!(
                    "Azure identity for {}: {}",
                    hop.name(),
                    id.source.describe()
                );
            }
        }
        if let Some(role) = &self.settings.aws_role {
            tracing::info!(
                "AWS: role {} through a {} web identity token (STS region {})",
                role.role_arn,
                role.web_identity.as_str(),
                role.sts_region
            );
        }
        let role = self.role_credentials(azure.get(AzureHop::Aws), job)?;
        let aws = identity::aws_for_api(&self.settings, role.as_ref(), &source.auth).await?;
        let to_prove = aws.as_ref().map(|credentials| AwsToProve {
            credentials,
            assumed: role.as_ref().map(|r| &r.assumed),
        });
        let mut proven = prove::prove(&self.settings, &wanted, &azure, to_prove).await?;
        // --api-auth oauth2: a token now, before anything is written (exit 3 if refused).
        let oauth = self
            .oauth2_provider(&source.auth, azure.get(AzureHop::Api))
            .map_err(|e| IdentityFailure(e.to_string()))?;
        if let Some(provider) = oauth {
            let token = provider
                .token()
                .await
                .map_err(|e| IdentityFailure(e.to_string()))?;
            let s = provider.summary(&token);
            tracing::info!(
                "API: OAuth2 {} token from {} for client {}",
                s.grant,
                s.token_url,
                s.client_id
            );
            proven.push(ManifestIdentity {
                role: "api".into(),
                kind: "oauth2".into(),
                name: Some(s.client_id),
                source: Some(format!("{} {} at {}", s.provider, s.grant, s.token_url)),
                ..Default::default()
            });
        }
        Ok(RunIdentities { azure, aws, proven })
    }

    /// Resolve and prove the identities of a look at `source` that writes nowhere (a sample):
    /// the hops of the API (the AWS role, the bearer), none of the destination's.
    pub async fn source_identities(
        &self,
        source: &SourceConfig,
        job: &str,
    ) -> Result<RunIdentities, IdentityFailure> {
        self.identities("", source, job).await
    }

    /// Resolve and prove the identities of a run that reads S3 objects into `dest` with no
    /// API in between (`gatelake copy`): the storage hop's, and the AWS role's from the
    /// web-identity exchange when one is configured (`aws: None`: the standard chain reads).
    pub async fn object_identities(
        &self,
        dest: &str,
        job: &str,
    ) -> Result<RunIdentities, IdentityFailure> {
        let wanted = self.azure_hops(dest, &ApiAuth::None);
        let azure = self.azure_identities(&wanted).await?;
        if let Some(e) = azure.first_error() {
            return Err(IdentityFailure(e.to_string()));
        }
        let role = self.role_credentials(azure.get(AzureHop::Aws), job)?;
        let aws = role.as_ref().map(|r| r.credentials.clone());
        let to_prove = aws.as_ref().map(|credentials| AwsToProve {
            credentials,
            assumed: role.as_ref().map(|r| &r.assumed),
        });
        let proven = prove::prove(&self.settings, &wanted, &azure, to_prove).await?;
        Ok(RunIdentities { azure, aws, proven })
    }

    /// Open `dest`: a local folder, or Azure storage with the storage hop's credential
    /// (`storage` is that hop's Entra identity, when it uses one).
    pub fn sink(
        &self,
        dest: &str,
        storage: Option<&Arc<AzureIdentity>>,
    ) -> Result<Arc<dyn Sink>, SinkError> {
        let sink = sink::open(dest, &self.settings, storage)?;
        // -v: who the tool is on the storage hop (never a secret: only the kind).
        tracing::info!(
            "storage: {} with {}",
            sink.root_url(),
            sink.identity_kind().unwrap_or("the local file system")
        );
        Ok(sink)
    }

    /// Open `dest` for a command that only touches storage (`sql`): the storage hop's
    /// identity, resolved and proved as a pull's is, on the same HTTP stack.
    pub async fn open_destination(&self, dest: &str) -> Result<Arc<dyn Sink>, DestinationError> {
        let wanted = self.azure_hops(dest, &ApiAuth::None);
        let azure = self.azure_identities(&wanted).await?;
        prove::prove(&self.settings, &wanted, &azure, None).await?;
        Ok(self.sink(dest, azure.get(AzureHop::Storage))?)
    }

    /// The API client for `source`: the shared HTTP stack with the source's timeout, signed
    /// with `aws` (`--api-auth iam`) or bearing tokens from `bearer` (`--bearer-from azure`).
    pub async fn api_client(
        &self,
        source: &SourceConfig,
        aws: Option<Arc<AwsCredentials>>,
        bearer: Option<&Arc<AzureIdentity>>,
    ) -> Result<ApiClient, ClientError> {
        // gzip pages are decoded by the client itself (`source::client::body`).
        let http = crate::http::client(&HttpOptions {
            timeout: source.timeout,
            gzip: false,
            ..self.http_options()
        })?;
        tracing::info!("API: --api-auth {}", source.auth.kind());
        let mut client = ApiClient::new(source, http, aws)
            .await?
            .with_run_tag(self.run.clone());
        if let Some(p) = self
            .oauth2_provider(&source.auth, bearer)
            .map_err(SourceError::from)?
        {
            client = client.with_oauth2(p);
        }
        Ok(match bearer {
            Some(a) => client.with_bearer_credential(a.credential()),
            None => client,
        })
    }

    /// The reader of a run's S3 objects and object URLs (see [`objects`]): S3 signed with
    /// `aws` (the run's credentials, e.g. [`RunIdentities::aws`] or the role's), else with
    /// the standard AWS chain; the same endpoint override, region and `--ca-bundle` as STS.
    pub async fn object_reader(
        &self,
        config: &crate::objects::ObjectsConfig,
        aws: Option<Arc<AwsCredentials>>,
    ) -> Result<crate::objects::ObjectReader, objects::ReaderError> {
        objects::object_reader(&self.settings, config, aws).await
    }

    /// The store of the job's checkpoint on `sink`.
    pub fn checkpoint_store(&self, sink: Arc<dyn Sink>) -> CheckpointStore {
        CheckpointStore::new(sink)
    }

    /// Run the pull: every page of `pull.source` into `sink`, checkpointed chunk by chunk,
    /// until done or `stop` asks it to stop at the next safe point.
    pub async fn run(
        &self,
        pull: &PullConfig,
        sink: Arc<dyn Sink>,
        client: ApiClient,
        reporter: Arc<dyn Reporter>,
        options: &RunOptions,
        stop: StopSignal,
    ) -> Result<RunSummary, PullError> {
        crate::run::run(pull, sink, client, reporter, options, stop).await
    }

    /// Take part in the partitioned run of `pull` (it has a partition spec) as one worker:
    /// join or create the run, pull partitions by lease, and commit the run if this worker
    /// finishes its last partition.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_partitioned(
        &self,
        pull: &PullConfig,
        sink: Arc<dyn Sink>,
        client: ApiClient,
        reporter: Arc<dyn Reporter>,
        options: &RunOptions,
        worker: &crate::run::worker::WorkerOptions,
        stop: StopSignal,
    ) -> Result<crate::run::worker::WorkerReport, crate::run::partitioned::WorkerError> {
        crate::run::partitioned::run(pull, sink, client, reporter, options, worker, stop).await
    }
}
