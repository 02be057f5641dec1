//! `gatelake pull` when the API hands back S3 objects instead of records (references in its
//! pages, or an asynchronous export's file list): the pull's identities, API client and
//! destination, plus the object reader, drive one object run (`gatelake::run::objects`) whose
//! source is the API ([`ApiSource`]). Landing, the checkpoint, the manifest and the summary
//! are `copy`'s; only where the objects come from differs.

use super::args::{OutputMode, ProgressMode};
use super::exit_code::ExitCode;
use super::settings::PullObjects;
use super::{report_failure, reporter_for};
use gatelake::config::PullConfig;
use gatelake::engine::{ClientError, Engine, IdentitySettings};
use gatelake::identity::azure::AzureHop;
use gatelake::objects::api_listing::ApiSource;
use gatelake::objects::export::ExportError;
use gatelake::objects::refs::{LocationField, RefsError};
use gatelake::objects::source::ObjectSourceError;
use gatelake::run::objects::{run_objects, ObjectRunConfig, ObjectRunError, ObjectRunInput};
use gatelake::run::{RunOptions, StopSignal};

/// What a pull of objects runs with.
pub struct ObjectPull<'a> {
    pub pull: PullConfig,
    pub objects: PullObjects,
    pub dest: &'a str,
    pub create_container: bool,
    pub options: RunOptions,
    pub mode: OutputMode,
    pub progress: ProgressMode,
    pub identity: &'a IdentitySettings,
}

/// Run a pull whose API hands back objects.
pub async fn execute(p: ObjectPull<'_>) -> ExitCode {
    let mode = p.mode;
    let engine = Engine::new(p.identity.clone());
    let ids = match engine.identities(p.dest, &p.pull.source, &p.pull.job).await {
        Ok(ids) => ids,
        Err(e) => {
            report_failure(&e.to_string(), ExitCode::Auth, mode);
            return ExitCode::Auth;
        }
    };
    let sink = match engine.sink(p.dest, ids.azure.get(AzureHop::Storage)) {
        Ok(s) => s,
        Err(e) => {
            let code = ExitCode::of_sink_error(&e);
            report_failure(&e.to_string(), code, mode);
            return code;
        }
    };
    if p.create_container {
        if let Err(e) = sink.ensure_root().await {
            let code = ExitCode::of_sink_error(&e);
            report_failure(&e.to_string(), code, mode);
            return code;
        }
    }
    let client = match engine
        .api_client(
            &p.pull.source,
            ids.aws.clone(),
            ids.azure.get(AzureHop::Api),
        )
        .await
    {
        Ok(c) => c,
        Err(ClientError::Http(e)) => {
            report_failure(&e.to_string(), ExitCode::Failure, mode);
            return ExitCode::Failure;
        }
        Err(ClientError::Source(e)) => {
            let code = if e.is_auth() {
                ExitCode::Auth
            } else {
                ExitCode::Source
            };
            report_failure(&e.to_string(), code, mode);
            return code;
        }
    };
    let reader = match engine
        .object_reader(&p.objects.objects, ids.aws.clone())
        .await
    {
        Ok(r) => r,
        Err(e) => {
            report_failure(&e.to_string(), ExitCode::Auth, mode);
            return ExitCode::Auth;
        }
    };
    let auth = match p.objects.api.fields.location {
        LocationField::Uri(_) => "iam".to_string(),
        LocationField::Url(_) => "presigned-url".to_string(),
    };
    let config = ObjectRunConfig {
        job: p.pull.job.clone(),
        objects: p.objects.objects.clone(),
        output: p.pull.output.clone(),
        auth,
    };
    let source = ApiSource::new(client, p.pull.source.clone(), p.objects.api.clone());
    let reporter = reporter_for(p.progress);
    let (stop_handle, stop) = StopSignal::new();
    let options = RunOptions {
        identities: ids.proven,
        ..p.options
    };
    let run = run_objects(ObjectRunInput {
        config: &config,
        source: &source,
        reader,
        sink,
        reporter: reporter.clone(),
        options: &options,
        stop,
    });
    super::copy::finish(run, stop_handle, reporter, mode, exit_code_of).await
}

/// `copy`'s exit codes, and the API's own refusals as authentication failures (3): a
/// credential refused on any hop is always 3.
fn exit_code_of(e: &ObjectRunError) -> ExitCode {
    let ObjectRunError::Source(
        ObjectSourceError::Listing(inner) | ObjectSourceError::Resumable(inner),
    ) = e
    else {
        return super::copy::exit_code_of(e);
    };
    let refused = match (
        inner.downcast_ref::<RefsError>(),
        inner.downcast_ref::<ExportError>(),
    ) {
        (Some(RefsError::Source(s)), _) => s.is_auth(),
        (_, Some(ExportError::Start(s) | ExportError::Status { source: s, .. })) => s.is_auth(),
        _ => false,
    };
    if refused {
        ExitCode::Auth
    } else {
        ExitCode::Source
    }
}
