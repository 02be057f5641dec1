//! The job file (`gatelake.toml`): the shape of its `[jobs.NAME]` tables and how one job is
//! loaded. Keys are the long flag names with `_` for `-`; each table refuses unknown keys so a
//! typo is an error rather than a silently ignored setting.
//!
//! Only the file's shape and loading live here; which value wins over which is the settings
//! files' business. Secrets are never read from the job file (a file that is easily
//! committed): keys and tokens come from the environment or from `*_file` settings.

use super::args::{ApiAuthKind, BearerFrom, WebIdentityKind};
use super::pagination_args::StyleName;
use super::resolver::{usage, UsageError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One job in the job file. Keys are the long flag names with `_` for `-`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub url: Option<String>,
    /// A registered pagination style; its settings are the keys below, up to `page_size_param`.
    pub paginate: Option<StyleName>,
    pub cursor_path: Option<String>,
    pub cursor_header: Option<String>,
    pub cursor_param: Option<String>,
    pub next_path: Option<String>,
    pub offset_param: Option<String>,
    pub limit_param: Option<String>,
    pub page_size: Option<u64>,
    pub page_param: Option<String>,
    pub start_page: Option<u64>,
    pub page_size_param: Option<String>,
    pub start_offset: Option<u64>,
    pub from_page: Option<u64>,
    pub has_more_path: Option<String>,
    pub total_path: Option<String>,
    pub records: Option<String>,
    pub max_pages: Option<u64>,
    pub max_pages_complete: Option<bool>,
    pub expect_rows: Option<u64>,
    pub on_count_mismatch: Option<String>,
    pub concurrency: Option<usize>,
    pub api_auth: Option<ApiAuthKind>,
    pub api_key_file: Option<PathBuf>,
    pub bearer_token_file: Option<PathBuf>,
    pub region: Option<String>,
    /// Extra request headers; values are never printed.
    pub headers: Option<BTreeMap<String, String>>,
    pub timeout: Option<String>,
    pub max_retries: Option<u32>,
    pub retry_deadline: Option<String>,
    pub max_retry_after: Option<String>,
    pub max_page_bytes: Option<String>,
    pub on_bad_page: Option<String>,
    pub no_read_ahead: Option<bool>,
    pub since_field: Option<String>,
    pub since_param: Option<String>,
    pub lag: Option<String>,
    pub format: Option<String>,
    pub compression: Option<String>,
    pub compression_level: Option<i32>,
    pub chunk_size: Option<String>,
    pub chunk_rows: Option<u64>,
    pub dest: Option<String>,
    pub upload_concurrency: Option<usize>,
    /// A duration, or "lease" for the lease's length.
    pub wait_for_lock: Option<String>,
    pub bearer_from: Option<BearerFrom>,
    pub bearer_audience: Option<String>,
    /// `[jobs.NAME.oauth2]`: `--api-auth oauth2`'s settings (`oauth_args`).
    pub oauth2: Option<super::oauth_args::OAuthJob>,
    pub ca_bundle: Option<PathBuf>,
    /// `[jobs.NAME.azure]`: the Azure identity.
    pub azure: Option<AzureJob>,
    /// `[jobs.NAME.aws]`: the AWS role and web identity.
    pub aws: Option<AwsJob>,
    pub on_schema_drift: Option<String>,
    pub flatten: Option<bool>,
    pub flatten_depth: Option<usize>,
    pub schema: Option<PathBuf>,
    pub synapse_optimized: Option<bool>,
    pub expected_size: Option<String>,
    // S3 objects (`cli::object_args`).
    pub land: Option<String>,
    pub copy_mode: Option<String>,
    pub part_size: Option<String>,
    pub allow_object_host: Option<Vec<String>>,
    pub allow_bucket: Option<Vec<String>>,
    // S3 objects an API hands back (`cli::api_object_args`).
    pub objects_path: Option<String>,
    pub object_url_field: Option<String>,
    pub object_uri_field: Option<String>,
    pub object_size_field: Option<String>,
    pub object_checksum_field: Option<String>,
    pub object_checksum_algorithm: Option<String>,
    pub object_records_field: Option<String>,
    pub object_name_field: Option<String>,
    pub export: Option<bool>,
    pub export_body: Option<String>,
    pub export_status_field: Option<String>,
    pub export_status_url: Option<String>,
    pub export_id_field: Option<String>,
    pub export_state_field: Option<String>,
    pub export_poll_interval: Option<String>,
    pub export_timeout: Option<String>,
    pub object_records_path: Option<String>,
    /// `[jobs.NAME.partitions]`: how the job splits (`cli::partition_args`).
    pub partitions: Option<super::partition_args::PartitionJob>,
    // Requests with a body (`cli::request_args`): the method, the body template, query
    // templates, and where each style's pointer goes in the body.
    pub method: Option<String>,
    pub body: Option<String>,
    pub query: Option<BTreeMap<String, String>>,
    pub cursor_body_path: Option<String>,
    pub offset_body_path: Option<String>,
    pub limit_body_path: Option<String>,
    pub page_body_path: Option<String>,
    pub page_size_body_path: Option<String>,
}

impl JobSpec {
    /// The keys of a pull whose API hands back S3 objects (`api_object_args`).
    pub fn api_object_keys(&self) -> super::api_object_args::ApiObjectJob {
        super::api_object_args::ApiObjectJob {
            objects_path: self.objects_path.clone(),
            object_url_field: self.object_url_field.clone(),
            object_uri_field: self.object_uri_field.clone(),
            object_size_field: self.object_size_field.clone(),
            object_checksum_field: self.object_checksum_field.clone(),
            object_checksum_algorithm: self.object_checksum_algorithm.clone(),
            object_records_field: self.object_records_field.clone(),
            object_name_field: self.object_name_field.clone(),
            export: self.export,
            export_body: self.export_body.clone(),
            export_status_field: self.export_status_field.clone(),
            export_status_url: self.export_status_url.clone(),
            export_id_field: self.export_id_field.clone(),
            export_state_field: self.export_state_field.clone(),
            export_poll_interval: self.export_poll_interval.clone(),
            export_timeout: self.export_timeout.clone(),
        }
    }
}

impl super::object_args::ObjectJobKeys for JobSpec {
    fn object_keys(&self) -> super::object_args::ObjectJob {
        super::object_args::ObjectJob {
            land: self.land.clone(),
            copy_mode: self.copy_mode.clone(),
            part_size: self.part_size.clone(),
            allow_object_host: self.allow_object_host.clone(),
            allow_bucket: self.allow_bucket.clone(),
            object_records_path: self.object_records_path.clone(),
        }
    }
}

impl JobSpec {
    /// A pagination style's setting by its key (see `source::paginate::Setting`), as text.
    /// The keys are fields above so that the file's shape is checked (types, unknown keys and
    /// their nearest known key); this is where the styles read them by name.
    pub fn style_setting(&self, key: &str) -> Option<String> {
        let text = |v: &Option<String>| v.clone();
        let count = |v: Option<u64>| v.map(|n| n.to_string());
        match key {
            "cursor_path" => text(&self.cursor_path),
            "cursor_header" => text(&self.cursor_header),
            "cursor_param" => text(&self.cursor_param),
            "next_path" => text(&self.next_path),
            "offset_param" => text(&self.offset_param),
            "limit_param" => text(&self.limit_param),
            "page_size" => count(self.page_size),
            "page_param" => text(&self.page_param),
            "start_page" => count(self.start_page),
            "page_size_param" => text(&self.page_size_param),
            "start_offset" => count(self.start_offset),
            "from_page" => count(self.from_page),
            "cursor_body_path" => text(&self.cursor_body_path),
            "offset_body_path" => text(&self.offset_body_path),
            "limit_body_path" => text(&self.limit_body_path),
            "page_body_path" => text(&self.page_body_path),
            "page_size_body_path" => text(&self.page_size_body_path),
            _ => None,
        }
    }
}

/// `[jobs.NAME.aws]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsJob {
    pub role_arn: Option<String>,
    pub web_identity: Option<WebIdentityKind>,
    pub web_identity_audience: Option<String>,
    pub web_identity_token_file: Option<PathBuf>,
    pub session_duration: Option<String>,
    pub role_session_name: Option<String>,
    pub sts_region: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    #[serde(default)]
    jobs: BTreeMap<String, JobSpec>,
}

/// The job named `name` in the job file at `path` (or `./gatelake.toml`).
pub fn load_job(
    path: Option<&Path>,
    name: Option<&str>,
) -> Result<(JobSpec, Option<PathBuf>), UsageError> {
    let explicit = path.is_some();
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("gatelake.toml"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return match name {
                Some(n) => usage(format!(
                    "--job {n}: there is no job file ./gatelake.toml; create one with a [jobs.{n}] table, or pass --config PATH"
                )),
                None => Ok((JobSpec::default(), None)),
            };
        }
        Err(e) => return usage(format!("cannot read the job file {}: {e}", path.display())),
    };
    if let Some(refusal) = super::job_file::secret_refusal(&text, &path) {
        return usage(refusal);
    }
    let file: JobFile = toml::from_str(&text)
        .map_err(|e| UsageError(super::job_file::explain(&e, &text, &path)))?;
    let Some(name) = name else {
        return Ok((JobSpec::default(), Some(path)));
    };
    match file.jobs.get(name) {
        Some(job) => Ok((job.clone(), Some(path))),
        None => {
            let known: Vec<&str> = file.jobs.keys().map(String::as_str).collect();
            usage(format!(
                "no job named '{name}' in {} (it defines: {}); add a [jobs.{name}] table",
                path.display(),
                if known.is_empty() {
                    "no jobs".to_string()
                } else {
                    known.join(", ")
                }
            ))
        }
    }
}

/// `[jobs.NAME.azure]` (no secrets: tokens come from files, env or stdin).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureJob {
    pub auth: Option<String>,
    pub auth_storage: Option<String>,
    pub auth_aws: Option<String>,
    pub auth_api: Option<String>,
    /// One path or a list of paths.
    pub token_file: Option<OneOrMany>,
    pub client_id: Option<String>,
    pub authority: Option<String>,
}

/// A job-file value that is one path or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<PathBuf> {
        match self {
            Self::One(p) => vec![p],
            Self::Many(v) => v,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn job_file_errors_are_specific() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatelake.toml");
        std::fs::write(
            &path,
            "[jobs.orders]\nurl = \"https://x/prod/orders\"\ncursor_paht = \"next\"\n",
        )
        .unwrap();
        let err = load_job(Some(&path), Some("orders"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key `cursor_paht`"), "{err}");
        assert!(err.contains("did you mean `cursor_path`"), "{err}");
        std::fs::write(&path, "[jobs.orders]\nurl = \"https://x/prod/orders\"\n").unwrap();
        let err = load_job(Some(&path), Some("invoices"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no job named 'invoices'") && err.contains("orders"),
            "{err}"
        );
        let (job, _) = load_job(Some(&path), Some("orders")).unwrap();
        assert_eq!(job.url.as_deref(), Some("https://x/prod/orders"));
    }

    /// Every setting a pagination style reads is a key of the job file, read back by name.
    #[test]
    fn every_style_setting_is_a_job_file_key() {
        use gatelake::source::paginate::SettingKind;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatelake.toml");
        for s in crate::cli::pagination_args::style_settings() {
            let value = match s.kind {
                SettingKind::Text => "\"v\"",
                SettingKind::Count => "7",
            };
            std::fs::write(&path, format!("[jobs.o]\n{} = {value}\n", s.key)).unwrap();
            let (job, _) = load_job(Some(&path), Some("o")).unwrap();
            assert_eq!(
                job.style_setting(s.key).as_deref(),
                Some(value.trim_matches('"')),
                "{}",
                s.key
            );
        }
    }

    #[test]
    fn secrets_in_the_job_file_get_the_documented_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatelake.toml");
        for (key, fix) in [
            ("api_key", "use api_key_file or GATELAKE_API_KEY"),
            (
                "bearer_token",
                "use bearer_token_file or GATELAKE_BEARER_TOKEN",
            ),
        ] {
            std::fs::write(
                &path,
                format!(
                    "[jobs.orders]\nurl = \"https://x/prod/orders\"\n{key} = \"s3cr3t-value\"\n"
                ),
            )
            .unwrap();
            let err = load_job(Some(&path), Some("orders"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("secrets are not allowed in the job file") && err.contains(fix),
                "{err}"
            );
            assert!(err.contains(key), "{err}");
            assert!(
                !err.contains("s3cr3t-value"),
                "the secret was echoed: {err}"
            );
            assert!(!err.contains("unknown field"), "{err}");
        }
    }

    #[test]
    fn job_file_typos_suggest_the_nearest_key_in_their_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatelake.toml");
        for (text, typo, want) in [
            ("[jobs.o]\npaginte = \"cursor\"\n", "paginate", "paginate"),
            (
                "[jobs.o]\nchunksize = \"1MiB\"\n",
                "chunk_size",
                "chunk_size",
            ),
            ("[jobs.o.azure]\nauht = \"cli\"\n", "auth", "auth"),
            ("[jobs.o.aws]\nrole_ran = \"x\"\n", "role_arn", "role_arn"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = load_job(Some(&path), Some("o")).unwrap_err().to_string();
            assert!(
                err.contains(&format!("did you mean `{want}`")),
                "{typo}: {err}"
            );
        }
        // Nothing close: no guess, but the error still says where to look.
        std::fs::write(&path, "[jobs.o]\nzzzzzzzzzzzz = 1\n").unwrap();
        let err = load_job(Some(&path), Some("o")).unwrap_err().to_string();
        assert!(!err.contains("did you mean"), "{err}");
        assert!(err.contains("zzzzzzzzzzzz"), "{err}");
    }
}
