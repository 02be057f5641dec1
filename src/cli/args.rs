//! The command line. Every pull setting is optional here: a value not given on the command
//! line or in its `GATELAKE_*` environment variable comes from the job file, then from the
//! default (see `settings.rs`, which resolves them in that order and keeps the table of
//! environment variables).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "gatelake",
    version,
    about = "Pull paged data from an AWS API Gateway endpoint into ADLS Gen2 (or a local folder) as compressed chunks, ready for Synapse."
)]
pub struct Cli {
    /// More log output on stderr: -v who the tool is on each hop (Azure source, AWS role,
    /// storage credential kind, API auth), each chunk committed, checkpoint advances and
    /// retries; -vv also each request (URLs redacted).
    /// Also GATELAKE_LOG=debug. Colour only on a terminal, never with NO_COLOR set.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull every page of an endpoint into the destination.
    Pull(Box<PullArgs>),
    /// Copy an existing S3 prefix into the destination (incremental, resumable, verified).
    Copy(Box<CopyArgs>),
    /// Run the whole path against a built-in demo API, into a local folder (./lake/demo).
    Demo(DemoArgs),
    /// Identity: `gatelake auth check` walks every hop and shows who the tool is at each.
    Auth(AuthArgs),
    /// Print the Synapse SQL that loads a run (COPY INTO, or a serverless view and external table).
    Sql(SqlArgs),
    /// Show where a partitioned job's run stands: partitions done, working (by whom, until
    /// when), waiting and failed (with the error). Takes pull's flags (usually just --job).
    Status(Box<PullArgs>),
    /// Print the shell completion script, e.g. `source <(gatelake completions bash)`.
    Completions(super::completions::CompletionsArgs),
    /// Print a manual page (`gatelake man pull | man -l -`), or write them all with --dir.
    Man(super::man::ManArgs),
}

#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Walk every hop (Azure, AWS, the API, the lake) with the same flags as `pull` and print
    /// the identity used at each, without secrets; each failing hop ends with the likely fix.
    Check(Box<PullArgs>),
    /// Print what must exist on AWS and Azure for this job to run with no standing secret (the
    /// OIDC provider and trust policy, execute-api and storage permissions, the federated
    /// credential), as a Markdown document, JSON documents or aws/az commands.
    Plan(Box<AuthPlanArgs>),
}

/// `auth plan`: every `pull` flag, plus the plan's own (`plan_args`).
#[derive(Debug, Args)]
pub struct AuthPlanArgs {
    #[command(flatten)]
    pub pull: PullArgs,
    #[command(flatten)]
    pub plan: super::plan_args::PlanArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebIdentityKind {
    /// An Entra token for --web-identity-audience from the AWS hop's Azure identity (--azure-auth-aws, default --azure-auth).
    Azure,
    /// The GitHub Actions OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN).
    Github,
    /// The GitLab CI ID token in GITLAB_OIDC_TOKEN (the job's `id_tokens:`; another variable: GATELAKE_GITLAB_TOKEN_VAR).
    Gitlab,
    /// The Azure DevOps service connection's OIDC token (SYSTEM_OIDCREQUESTURI + SYSTEM_ACCESSTOKEN).
    AzureDevops,
    /// A token file: --web-identity-token-file or AWS_WEB_IDENTITY_TOKEN_FILE, re-read on every exchange.
    File,
    /// A token in GATELAKE_WEB_IDENTITY_TOKEN.
    Env,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BearerFrom {
    /// The token from --bearer-token-file / GATELAKE_BEARER_TOKEN.
    Static,
    /// An Entra token for --bearer-audience from the API hop's Azure identity (--azure-auth-api, default --azure-auth).
    Azure,
}

/// Who the tool is on Azure and AWS (see the README's identity section).
#[derive(Debug, Args, Clone, Default)]
pub struct IdentityArgs {
    /// Azure identity, the default for every hop (storage, the AWS exchange, the API bearer):
    /// auto, token, workload-identity, ci-oidc, managed-identity, service-principal, cli (Entra
    /// tokens), or connection-string, key, sas (storage only). [default: auto]
    #[arg(long, env = "GATELAKE_AZURE_AUTH", value_name = "KIND")]
    pub azure_auth: Option<String>,

    /// Azure identity for the lake only (overrides --azure-auth for storage). [default: --azure-auth]
    #[arg(long, env = "GATELAKE_AZURE_AUTH_STORAGE", value_name = "KIND")]
    pub azure_auth_storage: Option<String>,

    /// Azure identity whose token is exchanged with AWS STS (--web-identity azure). [default: --azure-auth]
    #[arg(long, env = "GATELAKE_AZURE_AUTH_AWS", value_name = "KIND")]
    pub azure_auth_aws: Option<String>,

    /// Azure identity for the API's bearer token (--bearer-from azure). [default: --azure-auth]
    #[arg(long, env = "GATELAKE_AZURE_AUTH_API", value_name = "KIND")]
    pub azure_auth_api: Option<String>,

    /// A file holding an Entra token (re-read on every use), e.g. from a notebook's getToken.
    /// Repeatable: each token serves only the hop whose audience (aud) it carries.
    /// GATELAKE_AZURE_TOKEN may hold a token itself.
    #[arg(long, env = "GATELAKE_AZURE_TOKEN_FILE", value_name = "PATH")]
    pub azure_token_file: Vec<PathBuf>,

    /// Read Entra tokens from standard input, one per line (each serves the hop whose audience it carries).
    #[arg(long)]
    pub azure_token_stdin: bool,

    /// Client id of a user-assigned managed identity (or overrides AZURE_CLIENT_ID).
    #[arg(long, env = "GATELAKE_AZURE_CLIENT_ID", value_name = "ID")]
    pub azure_client_id: Option<String>,

    /// Entra authority host for sovereign clouds (or test servers). [default: AZURE_AUTHORITY_HOST, then the public cloud]
    #[arg(long, env = "GATELAKE_AZURE_AUTHORITY", value_name = "URL")]
    pub azure_authority: Option<String>,

    /// Assume this IAM role with a web identity (STS AssumeRoleWithWebIdentity) for --api-auth iam.
    /// Without it the standard AWS chain applies.
    #[arg(long, env = "GATELAKE_AWS_ROLE_ARN", value_name = "ARN")]
    pub aws_role_arn: Option<String>,

    /// Where the web identity token comes from. [default: azure]
    #[arg(long, env = "GATELAKE_WEB_IDENTITY", value_enum, value_name = "SOURCE")]
    pub web_identity: Option<WebIdentityKind>,

    /// Audience of the web identity token (gitlab's is set by the job's id_tokens, azure-devops' is api://AzureADTokenExchange). [default: azure: api://AzureADTokenExchange; github: sts.amazonaws.com]
    #[arg(long, env = "GATELAKE_WEB_IDENTITY_AUDIENCE", value_name = "AUDIENCE")]
    pub web_identity_audience: Option<String>,

    /// file: the token file. [default: AWS_WEB_IDENTITY_TOKEN_FILE]
    #[arg(long, env = "GATELAKE_WEB_IDENTITY_TOKEN_FILE", value_name = "PATH")]
    pub web_identity_token_file: Option<PathBuf>,

    /// Role session length, e.g. 1h; credentials are re-exchanged before they expire. [default: 1h]
    #[arg(long, env = "GATELAKE_AWS_SESSION_DURATION", value_name = "DURATION")]
    pub aws_session_duration: Option<String>,

    /// Role session name. [default: gatelake-<job>-<caller>, from the token's identity]
    #[arg(long, env = "GATELAKE_AWS_ROLE_SESSION_NAME", value_name = "NAME")]
    pub aws_role_session_name: Option<String>,

    /// Region of the STS endpoint. [default: --region, AWS_REGION, then us-east-1]
    #[arg(long, env = "GATELAKE_AWS_STS_REGION", value_name = "REGION")]
    pub aws_sts_region: Option<String>,

    /// bearer: where the token comes from. [default: static]
    #[arg(long, env = "GATELAKE_BEARER_FROM", value_enum, value_name = "FROM")]
    pub bearer_from: Option<BearerFrom>,

    /// bearer from azure: the audience (the JWT authorizer's), e.g. api://orders-api.
    #[arg(long, env = "GATELAKE_BEARER_AUDIENCE", value_name = "AUDIENCE")]
    pub bearer_audience: Option<String>,

    /// Extra trusted CA certificates (PEM) for every HTTPS hop; SSL_CERT_FILE is honoured too.
    #[arg(long, env = "GATELAKE_CA_BUNDLE", value_name = "PATH")]
    pub ca_bundle: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiAuthKind {
    /// No authentication.
    None,
    /// `x-api-key` header from GATELAKE_API_KEY or --api-key-file.
    ApiKey,
    /// `Authorization: Bearer` from GATELAKE_BEARER_TOKEN, --bearer-token-file, or an Entra token (--bearer-from azure).
    Bearer,
    /// SigV4 (`execute-api`) with role credentials from --aws-role-arn + --web-identity, or the AWS chain.
    Iam,
    /// `Authorization: Bearer` with a token from an OAuth2 provider (Cognito, Okta): --token-url, --client-id and a client credential or --subject-token.
    #[value(name = "oauth2")]
    #[serde(rename = "oauth2")]
    OAuth2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputMode {
    /// Human-readable summary on stdout.
    #[default]
    Text,
    /// One JSON object on stdout at the end (for CI jobs and notebook cells).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProgressMode {
    /// Bars on a terminal, log lines otherwise.
    #[default]
    Auto,
    /// Progress bars (drawn only when stderr is a terminal).
    Bar,
    /// One log line per event, for logs and CI.
    Plain,
    /// Nothing but warnings and errors.
    None,
}

/// Flags shared by `pull` and `demo`: output shape and reporting.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    // The help lists the registered formats (gatelake::encode::Format::ALL).
    #[arg(long, env = "GATELAKE_FORMAT", value_name = "FORMAT", help = gatelake::encode::Format::help())]
    pub format: Option<String>,

    /// gzip, zstd or none (jsonl/csv); snappy, zstd or none (parquet). [default: gzip; parquet: snappy]
    #[arg(long, env = "GATELAKE_COMPRESSION", value_name = "CODEC")]
    pub compression: Option<String>,

    /// Codec level: gzip 0-9 (default 2), zstd 1-22 (default 1); higher is smaller and slower.
    #[arg(long, env = "GATELAKE_COMPRESSION_LEVEL", value_name = "N")]
    pub compression_level: Option<i32>,

    /// Start a new chunk after the page that brings the current one to this many bytes of
    /// record JSON as received (uncompressed; the compressed file is smaller), e.g. 128MiB.
    /// Chunks hold whole pages, so one passes this by less than a page. [default: 128MiB]
    #[arg(long, env = "GATELAKE_CHUNK_SIZE", value_name = "SIZE")]
    pub chunk_size: Option<String>,

    /// Start a new chunk after a page once this many records are in it.
    #[arg(long, env = "GATELAKE_CHUNK_ROWS", value_name = "N")]
    pub chunk_rows: Option<u64>,

    /// Where runs are written: abfss://container@account.dfs.core.windows.net/path (abfs://
    /// too), wasbs://container@account.blob.core.windows.net/path (wasb:// too),
    /// https://account.dfs.core.windows.net/container/path (or .blob.), OneLake's
    /// abfss://workspace@onelake.dfs.fabric.microsoft.com/item.Lakehouse/Files/path, the
    /// emulator's http://127.0.0.1:PORT/devstoreaccount1/container/path, or a local folder (a
    /// path or file://). Anything else (s3://, gs://, …) is refused.
    /// Storage credentials come from AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT +
    /// AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, or your Azure CLI login. [default: ./lake/<job>]
    #[arg(long, env = "GATELAKE_DEST", value_name = "URL|PATH")]
    pub dest: Option<String>,

    /// Create the destination's container (or folder) if it does not exist yet.
    #[arg(long, env = "GATELAKE_CREATE_CONTAINER")]
    pub create_container: bool,

    /// Chunks uploading at once. [default: 4]
    #[arg(long, env = "GATELAKE_UPLOAD_CONCURRENCY", value_name = "N")]
    pub upload_concurrency: Option<usize>,

    /// text: a readable summary; json: one JSON object on stdout at every exit, errors included. [default: text]
    #[arg(long, env = "GATELAKE_OUTPUT", value_enum, value_name = "MODE")]
    pub output: Option<OutputMode>,

    /// Progress display on stderr. [default: auto]
    #[arg(long, env = "GATELAKE_PROGRESS", value_enum, value_name = "MODE")]
    pub progress: Option<ProgressMode>,

    /// Discard the job's unfinished run (its files are removed) and start a new one, instead
    /// of resuming it.
    #[arg(long)]
    pub restart: bool,

    /// While another run holds the job's lock, wait up to DURATION for it (e.g. 2m) instead
    /// of stopping with exit 6; the bare flag waits up to the lease's length, 60s. A lock
    /// whose holder was a process on this machine that no longer exists is taken over at once
    /// without it.
    #[arg(
        long,
        env = "GATELAKE_WAIT_FOR_LOCK",
        value_name = "DURATION",
        num_args = 0..=1,
        default_missing_value = "lease"
    )]
    pub wait_for_lock: Option<String>,

    /// Print the resolved settings (secrets masked) and where each came from, then exit.
    #[arg(long)]
    pub show_settings: bool,

    /// When records stop matching the columns (csv/parquet), within a run or against the
    /// previous run: fail (stop with a diff), evolve (widen and record it in the manifest) or
    /// warn (keep the columns, put what does not fit in an _extra JSON column). [default: fail]
    #[arg(long, env = "GATELAKE_ON_SCHEMA_DRIFT", value_name = "POLICY")]
    pub on_schema_drift: Option<String>,

    /// Expand nested objects into dot-joined columns (customer.id) instead of JSON text columns.
    #[arg(long, env = "GATELAKE_FLATTEN")]
    pub flatten: bool,

    /// Keep nested objects as JSON text for this run, though a job file says `flatten = true`.
    #[arg(long)]
    pub no_flatten: bool,

    /// Levels of nested objects --flatten expands; deeper ones stay JSON text. Implies --flatten. [default: 3]
    #[arg(long, env = "GATELAKE_FLATTEN_DEPTH", value_name = "N")]
    pub flatten_depth: Option<usize>,

    /// Pin the columns to this schema (JSON: a manifest's "schema", or a list of
    /// {"name", "kind", "nullable"}); a record that does not fit is an error naming its position.
    #[arg(long, env = "GATELAKE_SCHEMA", value_name = "FILE")]
    pub schema: Option<PathBuf>,

    /// Defaults that suit Synapse: parquet (snappy) chunks of about 256 MB; with --format csv,
    /// gzip and, given --expected-size, a file count that is a multiple of 60.
    #[arg(long, env = "GATELAKE_SYNAPSE_OPTIMIZED")]
    pub synapse_optimized: bool,

    /// Not --synapse-optimized for this run, though a job file says `synapse_optimized = true`.
    #[arg(long)]
    pub no_synapse_optimized: bool,

    /// The pull's expected size (record JSON, uncompressed), e.g. 40GB: with
    /// --synapse-optimized csv, sizes chunks so the file count is a multiple of 60.
    #[arg(long, env = "GATELAKE_EXPECTED_SIZE", value_name = "SIZE")]
    pub expected_size: Option<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Job name: selects [jobs.NAME] in the job file, and names the run in the manifest.
    /// [default: the URL's last path segment]
    #[arg(long, env = "GATELAKE_JOB", value_name = "NAME")]
    pub job: Option<String>,

    /// The job file. [default: ./gatelake.toml when it exists]
    #[arg(long, env = "GATELAKE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The endpoint's first page, e.g. https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders?status=open
    #[arg(long, env = "GATELAKE_URL", value_name = "URL")]
    pub url: Option<String>,

    /// `--paginate` and the flags of every pagination style, from the styles' registry.
    #[command(flatten)]
    pub pagination: super::pagination_args::PaginationArgs,

    /// Stop when this body path is false, e.g. has_more.
    #[arg(long, env = "GATELAKE_HAS_MORE_PATH", value_name = "PATH")]
    pub has_more_path: Option<String>,

    /// Stop once as many records as this body path says were fetched, e.g. total; a listing
    /// that ends with a different count is handled by --on-count-mismatch.
    #[arg(long, env = "GATELAKE_TOTAL_PATH", value_name = "PATH")]
    pub total_path: Option<String>,

    /// Body path of the records array, e.g. items or data.rows. [default: the body is the array]
    #[arg(long, env = "GATELAKE_RECORDS", value_name = "PATH")]
    pub records: Option<String>,

    /// Stop after this many pages. A run stopped by it with pages left is partial: its
    /// manifest says so, no _SUCCESS is written, and it exits 4 (a rerun without the cap
    /// resumes it), unless --max-pages-complete is given.
    #[arg(long, env = "GATELAKE_MAX_PAGES", value_name = "N")]
    pub max_pages: Option<u64>,

    /// A run cut by --max-pages is complete: write _SUCCESS and exit 0 (the manifest still
    /// records the cut as a warning). For sampling an API.
    #[arg(long, env = "GATELAKE_MAX_PAGES_COMPLETE")]
    pub max_pages_complete: bool,

    /// A run cut by --max-pages is partial (no _SUCCESS, exit 4) for this run, though a job
    /// file says `max_pages_complete = true`.
    #[arg(long)]
    pub no_max_pages_complete: bool,

    /// The number of records the API should return in this run; a run that gets fewer or
    /// more is handled by --on-count-mismatch. Like the API's own total (--total-path), it
    /// counts what the API returns, before an incremental run drops records the previous run
    /// delivered.
    #[arg(long, env = "GATELAKE_EXPECT_ROWS", value_name = "N")]
    pub expect_rows: Option<u64>,

    /// When the records the API returned differ from its total (--total-path) or
    /// --expect-rows: fail makes the run partial (no _SUCCESS, exit 4, resumable); warn
    /// records the mismatch in the manifest and summary and succeeds. [default: fail]
    #[arg(long, env = "GATELAKE_ON_COUNT_MISMATCH", value_name = "fail|warn")]
    pub on_count_mismatch: Option<String>,

    /// offset, page: page requests in flight at once (1-64). Pages are still written in
    /// order, each record once. Cursor and link styles learn each next request from the page
    /// before it, so they fetch one page at a time. [default: 1]
    #[arg(long, env = "GATELAKE_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<usize>,

    /// API authentication. Unset: inferred from the one kind of credential given (an API key →
    /// api-key; a bearer token or --bearer-from azure → bearer), else none. An API key with iam
    /// or bearer is sent alongside as the usage plan's x-api-key.
    #[arg(long, env = "GATELAKE_API_AUTH", value_enum, value_name = "KIND")]
    pub api_auth: Option<ApiAuthKind>,

    /// api-key: the key. Prefer GATELAKE_API_KEY or --api-key-file: a flag value lands in shell history.
    #[arg(
        long,
        env = "GATELAKE_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,

    /// api-key: a file holding the key (surrounding whitespace ignored), re-read when it changes.
    #[arg(long, env = "GATELAKE_API_KEY_FILE", value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// bearer: the token. Prefer GATELAKE_BEARER_TOKEN or --bearer-token-file.
    #[arg(
        long,
        env = "GATELAKE_BEARER_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub bearer_token: Option<String>,

    /// bearer: a file holding the token, re-read when it changes (a rotated token is picked up).
    #[arg(long, env = "GATELAKE_BEARER_TOKEN_FILE", value_name = "PATH")]
    pub bearer_token_file: Option<PathBuf>,

    /// `--api-auth oauth2`'s flags (`oauth_args`).
    #[command(flatten)]
    pub oauth: super::oauth_args::OAuthArgs,

    /// iam: the API's AWS region. [default: from the URL, then AWS_REGION]
    #[arg(long, env = "GATELAKE_REGION", value_name = "REGION")]
    pub region: Option<String>,

    /// Extra request header, 'Name: value' (repeatable). Values are never printed.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// Per-request timeout, e.g. 60s or 2m. [default: 60s]
    #[arg(long, env = "GATELAKE_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Retries of one request after its first attempt. [default: 7]
    #[arg(long, env = "GATELAKE_MAX_RETRIES", value_name = "N")]
    pub max_retries: Option<u32>,

    /// Give up retrying one request after this long, e.g. 5m. [default: 5m]
    #[arg(long, env = "GATELAKE_RETRY_DEADLINE", value_name = "DURATION")]
    pub retry_deadline: Option<String>,

    /// The longest Retry-After (a throttled or busy API's "come back later") waited out, e.g.
    /// 10m; a longer one stops the run, resumable, with the time to run it again. [default: 5m]
    #[arg(long, env = "GATELAKE_MAX_RETRY_AFTER", value_name = "DURATION")]
    pub max_retry_after: Option<String>,

    /// Refuse a page larger than this (decompressed), e.g. 64MiB. [default: 64MiB]
    #[arg(long, env = "GATELAKE_MAX_PAGE_BYTES", value_name = "SIZE")]
    pub max_page_bytes: Option<String>,

    /// A page whose records cannot be read (invalid JSON, no records at --records, records
    /// that are not objects, over --max-page-bytes): fail stops the run there (resumable);
    /// skip keeps its raw body under <run>/_rejected/, lists it in the manifest and goes on,
    /// when the next page can be found without it. [default: fail]
    #[arg(long, env = "GATELAKE_ON_BAD_PAGE", value_name = "fail|skip")]
    pub on_bad_page: Option<String>,

    /// cursor, next-link, link-header: do not start a page's next request from its pointer
    /// before the page is parsed. By default it is started as soon as the page is in, and
    /// its answer used only if the parsed page asks for exactly that request; after one
    /// wrong guess (a pointer before the records, with the same key inside them) the run
    /// waits for each parse instead.
    #[arg(long, env = "GATELAKE_NO_READ_AHEAD")]
    pub no_read_ahead: bool,

    /// Read ahead for this run (the default), though a job file says `no_read_ahead = true`.
    #[arg(long)]
    pub read_ahead: bool,

    /// Accept a plain http:// --url on a non-loopback host (credentials and data travel
    /// unencrypted). Without it, plain HTTP is accepted for loopback addresses only.
    #[arg(long, env = "GATELAKE_ALLOW_INSECURE_HTTP")]
    pub allow_insecure_http: bool,

    /// Incremental runs: the record path of a value that only grows (an RFC 3339 time or a
    /// number), e.g. updated_at. The next run starts from the largest value this run
    /// delivered; records on that boundary are not delivered twice (see the README).
    #[arg(long, env = "GATELAKE_SINCE_FIELD", value_name = "PATH")]
    pub since_field: Option<String>,

    /// Incremental runs: the query parameter the API filters by, e.g. updated_since.
    #[arg(long, env = "GATELAKE_SINCE_PARAM", value_name = "NAME")]
    pub since_param: Option<String>,

    /// Incremental runs: ask again this far before the last watermark, to catch records that
    /// appear late with older values, e.g. 5m. Already delivered ones are dropped. [default: 0s]
    #[arg(long, env = "GATELAKE_LAG", value_name = "DURATION")]
    pub lag: Option<String>,

    /// Object references in pages, asynchronous exports (`api_object_args`).
    #[command(flatten)]
    pub api_objects: super::api_object_args::ApiObjectArgs,

    /// How the objects land (`object_args`, shared with `copy`).
    #[command(flatten)]
    pub objects: super::object_args::ObjectArgs,

    /// How the pull splits into partitions (`partition_args`).
    #[command(flatten)]
    pub partitions: super::partition_args::PartitionArgs,

    /// How this process takes part in a partitioned run (`worker_args`).
    #[command(flatten)]
    pub worker: super::worker_args::WorkerArgs,
    /// `--sample N`, `--preview-dir` (`sample_args`).
    #[command(flatten)]
    pub sample: super::sample_args::SampleArgs,
    /// `--method`, `--body`, `--query` (`request_args`).
    #[command(flatten)]
    pub request: super::request_args::RequestArgs,

    #[command(flatten)]
    pub identity: IdentityArgs,

    #[command(flatten)]
    pub out: OutputArgs,
}

/// `gatelake copy s3://bucket/prefix DEST` (run by `copy.rs`).
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The prefix to copy, s3://bucket/prefix (every object below it; s3://bucket for the
    /// whole bucket). Each object lands under its key below the prefix's last '/'.
    #[arg(value_name = "S3_URI")]
    pub source: String,

    /// Where runs are written (the forms --dest accepts); GATELAKE_DEST or --dest work too.
    /// [default: ./lake/<job>]
    #[arg(value_name = "DEST")]
    pub destination: Option<String>,

    /// Job name: names the run in the manifest, and keeps the record of what was copied, so
    /// a later run copies only new or changed objects. [default: the prefix's last segment]
    #[arg(long, env = "GATELAKE_JOB", value_name = "NAME")]
    pub job: Option<String>,

    /// Copy only objects whose key below the prefix matches this glob (repeatable): a pattern
    /// without '/' matches the file name (*.csv.gz), one with '/' the whole key (2026/*/*.gz).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Leave out objects whose key below the prefix matches this glob (repeatable; wins over
    /// --include).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Copy only objects modified at or after this time: RFC 3339 (2026-12-01T00:00:00Z), a
    /// date (2026-12-01, midnight UTC), or a duration back from now (24h, 7d).
    #[arg(long, env = "GATELAKE_MODIFIED_SINCE", value_name = "WHEN")]
    pub modified_since: Option<String>,

    /// Parts (read and staged blocks, of one or several objects) in flight at once;
    /// memory stays near this × --part-size. [default: 8]
    #[arg(long, env = "GATELAKE_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<usize>,

    #[command(flatten)]
    pub objects: super::object_args::ObjectArgs,

    #[command(flatten)]
    pub identity: IdentityArgs,

    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Orders the demo API serves.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub records: u64,

    /// Orders per page.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub page_size: u64,

    /// Only serve the demo API (print its URL, serve until Ctrl-C/SIGTERM), e.g. to try
    /// `gatelake pull` flags against it or to benchmark a pull from a separate process.
    #[arg(long)]
    pub serve_only: bool,

    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolArg {
    /// Dedicated SQL pool: COPY INTO, creating the table when missing.
    Dedicated,
    /// Serverless SQL pool: an OPENROWSET view and an external table.
    Serverless,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CredentialArg {
    /// The workspace's managed identity (reads through the .dfs endpoint).
    ManagedIdentity,
    /// A SAS token (reads through the .blob endpoint); the script holds a placeholder for it.
    Sas,
    /// A service principal (--client-id, --tenant-id); the script holds a placeholder for its secret.
    ServicePrincipal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FilesArg {
    /// Every file of the run by URL.
    List,
    /// <run>/*.<ext>.
    Wildcard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StringsArg {
    /// NVARCHAR(n) sized from the longest value seen (with headroom).
    Observed,
    /// NVARCHAR(MAX) for every string column.
    Max,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The job's destination, as given to `pull --dest`.
    #[arg(long, env = "GATELAKE_DEST", value_name = "URL|PATH")]
    pub dest: String,

    /// The run to load. [default: the newest run with _SUCCESS]
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,

    /// The table to load into, e.g. dbo.orders or [stage].[order lines]. [default: dbo.<job>]
    #[arg(long, value_name = "SCHEMA.TABLE")]
    pub target: Option<String>,

    /// Which SQL pool runs the script. [default: dedicated; serverless for jsonl runs]
    #[arg(long, value_enum, value_name = "POOL")]
    pub pool: Option<PoolArg>,

    /// The identity Synapse reads the files with.
    #[arg(
        long,
        value_enum,
        default_value = "managed-identity",
        value_name = "KIND"
    )]
    pub credential: CredentialArg,

    /// How COPY INTO names the files.
    #[arg(long, value_enum, default_value = "list", value_name = "HOW")]
    pub files: FilesArg,

    /// Dedicated pool, parquet: let COPY INTO create the table (AUTO_CREATE_TABLE = 'ON').
    #[arg(long)]
    pub auto_create_table: bool,

    /// String column sizing.
    #[arg(long, value_enum, default_value = "observed", value_name = "HOW")]
    pub strings: StringsArg,

    /// service-principal: the application (client) id.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    /// service-principal: the Entra tenant id.
    #[arg(long, value_name = "ID")]
    pub tenant_id: Option<String>,

    /// text: the script on stdout; json: one JSON object on stdout, the script in "sql" or the failure. [default: text]
    #[arg(long, env = "GATELAKE_OUTPUT", value_enum, value_name = "MODE")]
    pub output: Option<OutputMode>,

    #[command(flatten)]
    pub identity: SqlIdentityArgs,
}

/// How `gatelake sql` reads the run's manifest: the same storage identity as `pull`.
#[derive(Debug, Args, Clone)]
pub struct SqlIdentityArgs {
    /// Azure identity for reading the destination (see `pull --help`). [default: auto]
    #[arg(long, env = "GATELAKE_AZURE_AUTH", value_name = "KIND")]
    pub azure_auth: Option<String>,

    /// Azure identity for storage only (overrides --azure-auth). [default: --azure-auth]
    #[arg(long, env = "GATELAKE_AZURE_AUTH_STORAGE", value_name = "KIND")]
    pub azure_auth_storage: Option<String>,

    /// A file holding an Entra token for storage (re-read on every use); repeatable.
    #[arg(long, env = "GATELAKE_AZURE_TOKEN_FILE", value_name = "PATH")]
    pub azure_token_file: Vec<PathBuf>,

    /// Read Entra tokens from standard input, one per line.
    #[arg(long)]
    pub azure_token_stdin: bool,

    /// Client id of a user-assigned managed identity (or overrides AZURE_CLIENT_ID).
    #[arg(long, env = "GATELAKE_AZURE_CLIENT_ID", value_name = "ID")]
    pub azure_client_id: Option<String>,

    /// Entra authority host for sovereign clouds (or test servers). [default: AZURE_AUTHORITY_HOST, then the public cloud]
    #[arg(long, env = "GATELAKE_AZURE_AUTHORITY", value_name = "URL")]
    pub azure_authority: Option<String>,

    /// Extra trusted CA certificates (PEM) for storage and Entra; SSL_CERT_FILE is honoured too.
    #[arg(long, env = "GATELAKE_CA_BUNDLE", value_name = "PATH")]
    pub ca_bundle: Option<PathBuf>,
}

impl SqlIdentityArgs {
    /// The same flags as `pull`'s, for the one identity resolution.
    pub fn as_identity_args(&self) -> IdentityArgs {
        IdentityArgs {
            azure_auth: self.azure_auth.clone(),
            azure_auth_storage: self.azure_auth_storage.clone(),
            azure_token_file: self.azure_token_file.clone(),
            azure_token_stdin: self.azure_token_stdin,
            azure_client_id: self.azure_client_id.clone(),
            azure_authority: self.azure_authority.clone(),
            ca_bundle: self.ca_bundle.clone(),
            ..Default::default()
        }
    }
}

// Each enum names its own values (the spelling clap accepts), so that `--show-settings` and
// the job file agree with the flags without a table elsewhere.
impl ApiAuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiAuthKind::None => "none",
            ApiAuthKind::ApiKey => "api-key",
            ApiAuthKind::Bearer => "bearer",
            ApiAuthKind::Iam => "iam",
            ApiAuthKind::OAuth2 => "oauth2",
        }
    }
}

// The flag's values are the library's kinds (which name themselves); this enum only carries
// clap's help for each.
impl From<WebIdentityKind> for gatelake::engine::settings::WebIdentityKind {
    fn from(kind: WebIdentityKind) -> Self {
        use gatelake::engine::settings::WebIdentityKind as Kind;
        match kind {
            WebIdentityKind::Azure => Kind::Azure,
            WebIdentityKind::Github => Kind::Github,
            WebIdentityKind::Gitlab => Kind::Gitlab,
            WebIdentityKind::AzureDevops => Kind::AzureDevops,
            WebIdentityKind::File => Kind::File,
            WebIdentityKind::Env => Kind::Env,
        }
    }
}

impl BearerFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            BearerFrom::Static => "static",
            BearerFrom::Azure => "azure",
        }
    }
}

impl OutputMode {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputMode::Text => "text",
            OutputMode::Json => "json",
        }
    }
}

impl ProgressMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressMode::Auto => "auto",
            ProgressMode::Bar => "bar",
            ProgressMode::Plain => "plain",
            ProgressMode::None => "none",
        }
    }
}
