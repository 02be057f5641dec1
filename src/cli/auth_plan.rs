//! `gatelake auth plan`: with the same flags and job file as `pull`, print what must exist on
//! AWS and Azure for the job to run with no standing secret (see `gatelake::plan`). The
//! subject and issuer the role trusts are read from the very web identity token the job
//! would send (obtained, never exchanged or printed), or given with `--trust-issuer` /
//! `--trust-subject`; the writer's object id from its storage token, or `--principal-id`.
//! Whatever cannot be worked out is listed, and the command then exits 3.

use super::args::{AuthPlanArgs, OutputMode, PullArgs};
use super::exit_code::ExitCode;
use super::job_spec;
use super::plan_args::{PlanArgs, PlanFormat};
use super::resolver::{Resolver, UsageError};
use super::settings;
use clap::ArgMatches;
use gatelake::config::{ApiAuth, SourceConfig};
use gatelake::engine::{Engine, IdentitySettings, WebIdentityKind};
use gatelake::identity::azure::{AzureAuthKind, AzureHop};
use gatelake::identity::claims::TokenClaims;
use gatelake::objects::refs::LocationField;
use gatelake::plan::{
    self, ApiPlan, FederatedPlan, ObjectsPlan, RolePlan, StoragePlan, TrustPlan, TrustedToken,
};
use gatelake::sink::Destination;

/// Build and print the plan.
pub async fn run(args: &AuthPlanArgs, matches: &ArgMatches) -> ExitCode {
    let mode = args.pull.out.output.unwrap_or_default();
    let form = args.plan.plan_format.unwrap_or(match mode {
        OutputMode::Json => PlanFormat::Json,
        OutputMode::Text => PlanFormat::Markdown,
    });
    if args.pull.sample.sample.is_some() {
        let e = UsageError("--sample belongs to `pull`: `auth plan` fetches no page".into());
        return super::usage_error(&e, Some(mode));
    }
    let (source, dest, ident, job, buckets) = match resolve(&args.pull, matches) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let dest = match super::check_destination(&dest, &mut []) {
        Ok(d) => d,
        Err(e) => return super::usage_error(&e, Some(mode)),
    };
    let engine = Engine::new(ident);
    let target = (source.as_ref(), buckets.as_deref());
    let plan = match build(&engine, &args.plan, target, &dest, &job).await {
        Ok(p) => p,
        Err(e) => return super::usage_error(&e, Some(mode)),
    };
    let text = match form {
        PlanFormat::Json => {
            serde_json::to_string_pretty(&plan::render::documents(&plan)).unwrap_or_default()
        }
        PlanFormat::Markdown => plan::render::markdown(&plan),
        PlanFormat::Commands => plan::render::script(&plan),
    };
    // `auth plan | head` is the reader's choice; a full disk behind `>` is a failure.
    if !super::stdout::answer(text.trim_end()) {
        return ExitCode::Failure;
    }
    if plan.unresolved.is_empty() {
        return ExitCode::Success;
    }
    // The plan printed says what is missing (JSON: "unresolved"); stderr says it again.
    for u in &plan.unresolved {
        eprintln!("error: the plan is incomplete: {u}");
    }
    ExitCode::Auth
}

/// The source, the destination, the identities, the job's name, and the buckets of the
/// `s3://` objects the job reads (`None`: it reads none).
type Resolved = (
    Option<SourceConfig>,
    String,
    IdentitySettings,
    String,
    Option<Vec<String>>,
);

/// As `auth check`: with a URL, exactly as `pull` resolves; without one, only identity and
/// destination (the plan then has no API section).
fn resolve(args: &PullArgs, matches: &ArgMatches) -> Result<Resolved, ExitCode> {
    let mode = args.out.output;
    let job_file = job_spec::load_job(args.config.as_deref(), args.job.as_deref())
        .map_err(|e| super::usage_error(&e, mode))?;
    if args.url.is_some() || job_file.0.url.is_some() {
        let r = settings::resolve_pull(args, matches).map_err(|e| super::usage_error(&e, mode))?;
        let job = r.pull.job.clone();
        // Objects named by s3:// URIs are read with the run's AWS credentials; presigned
        // URLs carry their own authority.
        let buckets = r
            .objects
            .as_ref()
            .filter(|o| matches!(o.api.fields.location, LocationField::Uri(_)))
            .map(|o| o.objects.allow_buckets.clone());
        return Ok((Some(r.pull.source), r.dest, r.identity, job, buckets));
    }
    let (job, _) = job_file;
    let mut r = Resolver::new(matches);
    let name = args.job.clone().unwrap_or_else(|| "job".into());
    let out = settings::resolve_output(&mut r, &args.out, &job, &format!("./lake/{name}"))
        .map_err(|e| super::usage_error(&e, mode))?;
    let ident = settings::resolve_identity(&mut r, &args.identity, &job, args.region.clone())
        .map_err(|e| super::usage_error(&e, mode))?;
    Ok((None, out.dest, ident, name, None))
}

async fn build(
    engine: &Engine,
    flags: &PlanArgs,
    (source, buckets): (Option<&SourceConfig>, Option<&[String]>),
    dest: &Destination,
    job: &str,
) -> Result<TrustPlan, UsageError> {
    let mut unresolved = Vec::new();
    let settings = engine.settings();
    let role = match &settings.aws_role {
        Some(r) => Some(role_plan(engine, flags, r, &mut unresolved).await?),
        None => None,
    };
    let api = match source.map(|s| &s.auth) {
        Some(ApiAuth::Iam { .. }) => api_plan(flags, source, role.as_ref(), &mut unresolved)?,
        _ => None,
    };
    let storage = match dest {
        Destination::Azure(loc) => {
            Some(storage_plan(engine, flags, loc, job, &mut unresolved).await)
        }
        Destination::Local(_) => None,
    };
    let federated = federated_plan(settings, dest, role.as_ref(), &mut unresolved);
    let objects = buckets.and_then(|b| objects_plan(flags, b, &mut unresolved));
    Ok(TrustPlan {
        job: job.to_string(),
        role,
        api,
        storage,
        federated,
        objects,
        unresolved,
    })
}

/// The intermediary bucket(s) the job reads `s3://` objects from: those of `--allow-bucket`
/// (an unbounded set of buckets cannot be granted), under `--object-prefix` when given.
fn objects_plan(
    flags: &PlanArgs,
    buckets: &[String],
    unresolved: &mut Vec<String>,
) -> Option<ObjectsPlan> {
    if buckets.is_empty() {
        unresolved.push(
            "the job reads s3:// objects (--object-uri-field) from buckets the API names: pass --allow-bucket BUCKET (the run then refuses any other bucket) so the role can be granted s3:GetObject on exactly that bucket".into(),
        );
        return None;
    }
    Some(ObjectsPlan {
        buckets: buckets.to_vec(),
        prefix: flags
            .object_prefix
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
    })
}

/// The role and whom it trusts: the claims of the token the job would send to STS.
async fn role_plan(
    engine: &Engine,
    flags: &PlanArgs,
    role: &gatelake::engine::AwsRoleSettings,
    unresolved: &mut Vec<String>,
) -> Result<RolePlan, UsageError> {
    let (account, role_name) = plan::parse_role_arn(&role.role_arn).ok_or_else(|| {
        UsageError(format!(
            "--aws-role-arn {}: not an IAM role ARN; expected arn:aws:iam::ACCOUNT:role/NAME",
            role.role_arn
        ))
    })?;
    let claims = if flags.trust_issuer.is_some() && flags.trust_subject.is_some() {
        None
    } else {
        match web_identity_claims(engine, role).await {
            Ok(c) => Some(c),
            Err(e) => {
                unresolved.push(format!(
                    "the web identity token ({}) could not be read to learn its issuer and subject: {e}. Run the plan where the job runs, or pass --trust-issuer and --trust-subject",
                    role.web_identity
                ));
                None
            }
        }
    };
    let claim = |f: fn(&TokenClaims) -> Option<String>| claims.as_ref().and_then(f);
    let issuer = flags
        .trust_issuer
        .clone()
        .or_else(|| claim(|c| c.iss.clone()))
        .unwrap_or_default();
    let subject = flags
        .trust_subject
        .clone()
        .or_else(|| claim(|c| c.sub.clone()))
        .unwrap_or_default();
    // The audience the token carries: what the condition is checked against. A token with
    // several audiences names the one asked for.
    let audience = claim(|c| c.aud.clone())
        .filter(|a| !a.contains(','))
        .unwrap_or_else(|| role.audience.clone());
    if claims.is_some() && (issuer.is_empty() || subject.is_empty()) {
        unresolved.push(format!(
            "the web identity token ({}) has no iss or sub claim: pass --trust-issuer and --trust-subject",
            role.web_identity
        ));
    }
    let from_flags = flags.trust_issuer.is_some() || flags.trust_subject.is_some();
    Ok(RolePlan {
        role_arn: role.role_arn.clone(),
        account,
        role_name,
        max_session_seconds: role.session_duration.as_secs(),
        trusted: TrustedToken {
            issuer,
            audience,
            subject,
            source: role.web_identity.as_str().to_string(),
            learnt_from: if from_flags { "flags" } else { "the token" }.to_string(),
        },
    })
}

/// The claims of one web identity token from the job's own source (never exchanged).
async fn web_identity_claims(
    engine: &Engine,
    role: &gatelake::engine::AwsRoleSettings,
) -> Result<TokenClaims, String> {
    let azure = if role.web_identity == WebIdentityKind::Azure {
        let ids = engine
            .azure_identities(&[(AzureHop::Aws, role.audience.clone())])
            .await
            .map_err(|e| e.to_string())?;
        if let Some(e) = ids.first_error() {
            return Err(e.to_string());
        }
        ids.get(AzureHop::Aws).cloned()
    } else {
        None
    };
    let source = gatelake::engine::identity::token_source(role, engine.settings(), azure.as_ref())
        .map_err(|e| e.to_string())?;
    let token = source.token().await.map_err(|e| e.to_string())?;
    TokenClaims::of(token.expose()).ok_or_else(|| "the token is not a JWT".to_string())
}

/// The one method and path the role may invoke.
fn api_plan(
    flags: &PlanArgs,
    source: Option<&SourceConfig>,
    role: Option<&RolePlan>,
    unresolved: &mut Vec<String>,
) -> Result<Option<ApiPlan>, UsageError> {
    let Some(source) = source else {
        return Ok(None);
    };
    let url = &source.url;
    let target = match &flags.api_arn {
        Some(arn) => {
            let (region, account, api_id, stage) = plan::parse_api_arn(arn).ok_or_else(|| {
                UsageError(format!(
                    "--api-arn {arn}: expected arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE (no wildcards)"
                ))
            })?;
            // Behind a custom domain the path may still start with the stage: it is not part
            // of the resource.
            let path = match plan::split_stage(url.path()) {
                Some((first, rest)) if first == stage => rest,
                _ => url.path().to_string(),
            };
            Some((region, Some(account), api_id, stage, path))
        }
        None => plan::parse_execute_api_url(url)
            .map(|(api, region, stage, path)| (region, None, api, stage, path)),
    };
    let Some((region, account, api_id, stage, path)) = target else {
        unresolved.push(format!(
            "--url {} is not an execute-api URL, so the API id and stage are unknown: pass --api-arn arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE",
            gatelake::secret::redact_url(url)
        ));
        return Ok(None);
    };
    let account = match account.or_else(|| role.map(|r| r.account.clone())) {
        Some(a) => a,
        None => {
            unresolved.push(
                "the API's AWS account is unknown (no --aws-role-arn): pass --api-arn arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE".into(),
            );
            return Ok(None);
        }
    };
    Ok(Some(ApiPlan {
        region,
        account,
        api_id,
        stage,
        // The method every page is sent with (`--method POST` for an API paged by its body).
        method: if source.request.post { "POST" } else { "GET" }.into(),
        path,
    }))
}

/// The container and the identity that writes it (the `oid` of its storage token).
async fn storage_plan(
    engine: &Engine,
    flags: &PlanArgs,
    loc: &gatelake::sink::azure::AzureLocation,
    job: &str,
    unresolved: &mut Vec<String>,
) -> StoragePlan {
    let prefix = [loc.prefix.as_str(), job]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    let mut plan = StoragePlan {
        account: loc.account.clone(),
        container: loc.container.clone(),
        prefix,
        principal_id: flags.principal_id.clone(),
        account_resource_id: flags.storage_account_id.clone(),
    };
    if plan.principal_id.is_some() {
        return plan;
    }
    let kind = engine.settings().azure.kind_for(AzureHop::Storage);
    if gatelake::engine::identity::storage_uses_env_credentials(kind) {
        unresolved.push(format!(
            "the lake is reached with {} (an account key or SAS: a standing secret); use an Entra identity (--azure-auth-storage managed-identity, workload-identity, ci-oidc, service-principal) or pass --principal-id",
            kind.as_str()
        ));
        return plan;
    }
    let audience = gatelake::identity::azure::STORAGE_AUDIENCE;
    let oid = async {
        let ids = engine
            .azure_identities(&[(AzureHop::Storage, audience.to_string())])
            .await
            .map_err(|e| e.to_string())?;
        let id = ids.get(AzureHop::Storage).ok_or_else(|| {
            ids.error(AzureHop::Storage)
                .unwrap_or("not resolved")
                .to_string()
        })?;
        let token = id.token_for(audience).await.map_err(|e| e.to_string())?;
        TokenClaims::of(token.token.secret())
            .and_then(|c| c.oid)
            .ok_or_else(|| "its token carries no oid claim".to_string())
    }
    .await;
    match oid {
        Ok(oid) => plan.principal_id = Some(oid),
        Err(e) => unresolved.push(format!(
            "the object id of the identity that writes the lake could not be learnt from its storage token: {e}. Pass --principal-id"
        )),
    }
    plan
}

/// The Entra app's federated credential, when a hop signs in with a CI job's token
/// (`ci-oidc`): for the CI token's issuer and subject, which the role's trust already read.
fn federated_plan(
    settings: &IdentitySettings,
    dest: &Destination,
    role: Option<&RolePlan>,
    unresolved: &mut Vec<String>,
) -> Option<FederatedPlan> {
    let mut hops = Vec::new();
    if matches!(dest, Destination::Azure(_)) {
        hops.push(AzureHop::Storage);
    }
    if settings
        .aws_role
        .as_ref()
        .is_some_and(|r| r.web_identity == WebIdentityKind::Azure)
    {
        hops.push(AzureHop::Aws);
    }
    if !hops
        .iter()
        .any(|h| settings.azure.kind_for(*h) == AzureAuthKind::CiOidc)
    {
        return None;
    }
    let app_id = settings
        .azure
        .client_id
        .clone()
        .or_else(|| std::env::var("AZURE_CLIENT_ID").ok());
    let ci = role.filter(|r| {
        !matches!(r.trusted.source.as_str(), "azure" | "file" | "env")
            && !r.trusted.issuer.is_empty()
    });
    match (app_id, ci) {
        (Some(app_id), Some(r)) => Some(FederatedPlan {
            app_id,
            name: "gatelake".into(),
            issuer: r.trusted.issuer.clone(),
            subject: r.trusted.subject.clone(),
        }),
        (None, _) => {
            unresolved.push("--azure-auth ci-oidc signs in as an Entra app whose client id is unknown: set AZURE_CLIENT_ID or --azure-client-id".into());
            None
        }
        (Some(_), None) => {
            unresolved.push("--azure-auth ci-oidc: the CI token's issuer and subject are unknown (they are read from the web identity token with --web-identity github, gitlab or azure-devops): run the plan in the CI job with one of those".into());
            None
        }
    }
}
