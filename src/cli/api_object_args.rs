//! The flags of a pull whose API hands back S3 objects instead of records: where the object
//! references are in a page and which fields say what (`--objects-path`,
//! `--object-url-field` | `--object-uri-field`, size, checksum, record count, name), and the
//! asynchronous export that produces them (`--export`, its body, where its status is, how
//! long to wait). One clap struct flattened into `pull`, resolved into the library's
//! [`ApiObjectsConfig`] in one place; how objects land is `object_args`' business.

use super::resolver::{duration, usage, Resolver, UsageError};
use clap::Args;
use gatelake::objects::api_listing::ApiObjectsConfig;
use gatelake::objects::export::{ExportSpec, PollPolicy, StatusFrom};
use gatelake::objects::refs::{ChecksumAlgorithm, LocationField, RefFields};
use url::Url;

/// Object references in a pull's pages, and asynchronous exports. Flattened into `pull`.
#[derive(Debug, Args, Clone, Default)]
pub struct ApiObjectArgs {
    /// The pages (or the export's final status document) list S3 objects: body path of the
    /// array of object references, e.g. files. Needs --object-url-field or
    /// --object-uri-field. [default: the body is the array]
    #[arg(long, env = "GATELAKE_OBJECTS_PATH", value_name = "PATH")]
    pub objects_path: Option<String>,

    /// Field of an object reference holding a presigned or plain HTTPS URL of the object,
    /// e.g. url. The URL's host must be an S3 endpoint (see --allow-object-host).
    #[arg(long, env = "GATELAKE_OBJECT_URL_FIELD", value_name = "FIELD")]
    pub object_url_field: Option<String>,

    /// Field of an object reference holding an s3://bucket/key URI, read with the run's AWS
    /// credentials (--aws-role-arn, or the AWS chain), e.g. s3_uri.
    #[arg(long, env = "GATELAKE_OBJECT_URI_FIELD", value_name = "FIELD")]
    pub object_uri_field: Option<String>,

    /// Field holding the object's size in bytes (checked against what is read).
    #[arg(long, env = "GATELAKE_OBJECT_SIZE_FIELD", value_name = "FIELD")]
    pub object_size_field: Option<String>,

    /// Field holding the object's checksum (in --object-checksum-algorithm), checked once
    /// the object is read.
    #[arg(long, env = "GATELAKE_OBJECT_CHECKSUM_FIELD", value_name = "FIELD")]
    pub object_checksum_field: Option<String>,

    /// The algorithm of --object-checksum-field: md5 (hex), sha256, sha1, crc32, crc32c.
    /// [default: md5]
    #[arg(
        long,
        env = "GATELAKE_OBJECT_CHECKSUM_ALGORITHM",
        value_name = "ALGORITHM"
    )]
    pub object_checksum_algorithm: Option<String>,

    /// Field holding the number of records in the object (checked with --land records).
    #[arg(long, env = "GATELAKE_OBJECT_RECORDS_FIELD", value_name = "FIELD")]
    pub object_records_field: Option<String>,

    /// Field holding the object's name under the run's folder. [default: the S3 key, or the
    /// URL's path]
    #[arg(long, env = "GATELAKE_OBJECT_NAME_FIELD", value_name = "FIELD")]
    pub object_name_field: Option<String>,

    /// --url starts an asynchronous export (POST, body --export-body): the run waits for it
    /// and lands the objects its final status document lists. The export is recorded before
    /// it is waited for: a rerun of an interrupted run follows the same export, never a
    /// second one.
    #[arg(long, env = "GATELAKE_EXPORT")]
    pub export: bool,

    /// Read the answer as records, not as an export, for this run, though a job file says
    /// `export = true`.
    #[arg(long)]
    pub no_export: bool,

    /// The export's start request body: JSON text, or @PATH to read it from a file.
    /// [default: {}]
    #[arg(long, env = "GATELAKE_EXPORT_BODY", value_name = "JSON")]
    pub export_body: Option<String>,

    /// Body path of the status URL in the export's start response (absolute, or relative to
    /// --url); without it, the response's Location header. [default: status_url]
    #[arg(long, env = "GATELAKE_EXPORT_STATUS_FIELD", value_name = "PATH")]
    pub export_status_field: Option<String>,

    /// The export's status URL with {id} for its id (--export-id-field), when the start
    /// response gives only an id, e.g. https://api.example.com/prod/exports/{id}.
    #[arg(long, env = "GATELAKE_EXPORT_STATUS_URL", value_name = "URL")]
    pub export_status_url: Option<String>,

    /// Body path of the export's id in its start response. [default: id]
    #[arg(long, env = "GATELAKE_EXPORT_ID_FIELD", value_name = "PATH")]
    pub export_id_field: Option<String>,

    /// Body path of the export's state in its status document; succeeded, success,
    /// completed, complete and done end the wait, failed, failure, error, cancelled and
    /// aborted fail it (any case), anything else is still running. [default: status]
    #[arg(long, env = "GATELAKE_EXPORT_STATE_FIELD", value_name = "PATH")]
    pub export_state_field: Option<String>,

    /// The first pause between status polls, e.g. 2s; each later pause doubles, up to 30s
    /// (or this, if longer). [default: 1s]
    #[arg(long, env = "GATELAKE_EXPORT_POLL_INTERVAL", value_name = "DURATION")]
    pub export_poll_interval: Option<String>,

    /// Stop waiting this long after the export started, e.g. 2h (resumable: a rerun keeps
    /// waiting for the same export). [default: 1h]
    #[arg(long, env = "GATELAKE_EXPORT_TIMEOUT", value_name = "DURATION")]
    pub export_timeout: Option<String>,
}

/// The job file's keys for these flags (its table's fields of the same names), so this file
/// needs nothing of the job file's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiObjectJob {
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
}

impl ApiObjectArgs {
    /// How the pull finds its objects, or `None` for a pull of records. `url` is the pull's
    /// `--url` (the export's start URL with --export).
    pub fn resolve(
        &self,
        r: &mut Resolver<'_>,
        job: &ApiObjectJob,
        url: &Url,
    ) -> Result<Option<ApiObjectsConfig>, UsageError> {
        let export = r
            .switch("export", self.export, self.no_export, job.export, None)
            .unwrap_or(false);
        let mut text = |id: &str, cli: &Option<String>, job: &Option<String>| {
            r.pick(id, cli.clone(), job.clone(), None)
        };
        let url_field = text(
            "object_url_field",
            &self.object_url_field,
            &job.object_url_field,
        );
        let uri_field = text(
            "object_uri_field",
            &self.object_uri_field,
            &job.object_uri_field,
        );
        let objects_path = text("objects_path", &self.objects_path, &job.objects_path);
        let size = text(
            "object_size_field",
            &self.object_size_field,
            &job.object_size_field,
        );
        let checksum = text(
            "object_checksum_field",
            &self.object_checksum_field,
            &job.object_checksum_field,
        );
        let algorithm = text(
            "object_checksum_algorithm",
            &self.object_checksum_algorithm,
            &job.object_checksum_algorithm,
        );
        let records = text(
            "object_records_field",
            &self.object_records_field,
            &job.object_records_field,
        );
        let name = text(
            "object_name_field",
            &self.object_name_field,
            &job.object_name_field,
        );
        let location = match (url_field, uri_field) {
            (Some(_), Some(_)) => {
                return usage(
                    "--object-url-field and --object-uri-field both given: an object reference is either a URL or an s3:// URI; keep the one the API's references carry",
                )
            }
            (Some(f), None) => LocationField::Url(f),
            (None, Some(f)) => LocationField::Uri(f),
            (None, None) => {
                let given = [
                    ("objects-path", objects_path.is_some() || export),
                    ("object-size-field", size.is_some()),
                    ("object-checksum-field", checksum.is_some()),
                    ("object-records-field", records.is_some()),
                    ("object-name-field", name.is_some()),
                ];
                if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
                    let flag = if export { "export" } else { flag };
                    return usage(format!(
                        "--{flag} describes S3 objects in the API's answers: also name the field that locates each object, --object-url-field (a presigned or plain HTTPS URL) or --object-uri-field (s3://bucket/key)"
                    ));
                }
                return Ok(None);
            }
        };
        let checksum_algorithm = match algorithm {
            Some(a) => ChecksumAlgorithm::parse(&a)
                .map_err(|e| UsageError(format!("--object-checksum-algorithm: {e}")))?,
            None => ChecksumAlgorithm::default(),
        };
        let fields = RefFields {
            objects_path: objects_path.unwrap_or_default(),
            location,
            size,
            checksum,
            checksum_algorithm,
            records,
            name,
        };
        let export = self.resolve_export(r, job, url, export)?;
        Ok(Some(ApiObjectsConfig { fields, export }))
    }

    /// The export's settings when `on` (the resolved `--export` switch).
    fn resolve_export(
        &self,
        r: &mut Resolver<'_>,
        job: &ApiObjectJob,
        url: &Url,
        on: bool,
    ) -> Result<Option<ExportSpec>, UsageError> {
        // Turned off for this run (--no-export, GATELAKE_EXPORT=false): the job file's export
        // settings wait for the runs that export.
        if !on && (self.no_export || r.given_in_env("export")) {
            return Ok(None);
        }
        let mut text = |id: &str, cli: &Option<String>, job: &Option<String>| {
            r.pick(id, cli.clone(), job.clone(), None)
        };
        let body = text("export_body", &self.export_body, &job.export_body);
        let status_field = text(
            "export_status_field",
            &self.export_status_field,
            &job.export_status_field,
        );
        let status_url = text(
            "export_status_url",
            &self.export_status_url,
            &job.export_status_url,
        );
        let id_field = text(
            "export_id_field",
            &self.export_id_field,
            &job.export_id_field,
        );
        let state_field = text(
            "export_state_field",
            &self.export_state_field,
            &job.export_state_field,
        );
        let interval = text(
            "export_poll_interval",
            &self.export_poll_interval,
            &job.export_poll_interval,
        );
        let timeout = text("export_timeout", &self.export_timeout, &job.export_timeout);
        if !on {
            let given = [
                ("export-body", body.is_some()),
                ("export-status-field", status_field.is_some()),
                ("export-status-url", status_url.is_some()),
                ("export-id-field", id_field.is_some()),
                ("export-state-field", state_field.is_some()),
                ("export-poll-interval", interval.is_some()),
                ("export-timeout", timeout.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
                return usage(format!(
                    "--{flag} configures an asynchronous export: add --export (then --url is where the export is started)"
                ));
            }
            return Ok(None);
        }
        let mut spec = ExportSpec::new(url.clone());
        if let Some(body) = body {
            spec.body = Some(export_body(&body)?);
        }
        spec.status = match (status_field, status_url) {
            (Some(_), Some(_)) => {
                return usage(
                    "--export-status-field and --export-status-url both given: the status URL is either in the start response (the field) or built from the export's id (the URL with {id}); keep one",
                )
            }
            (None, Some(template)) => {
                if !template.contains("{id}") {
                    return usage(format!(
                        "--export-status-url {template}: put {{id}} where the export's id goes, e.g. https://api.example.com/prod/exports/{{id}}"
                    ));
                }
                let sample = Url::parse(&template.replace("{id}", "x")).map_err(|e| {
                    UsageError(format!("--export-status-url {template} is not a URL: {e}"))
                })?;
                if !gatelake::source::paginate::same_origin(url, &sample) {
                    return usage(format!(
                        "--export-status-url {template} is not on --url's host: the API's credentials are sent with every status poll, so the status must be served by the same host"
                    ));
                }
                StatusFrom::Template {
                    template,
                    id_path: id_field.unwrap_or_else(|| "id".into()),
                }
            }
            (field, None) => {
                if id_field.is_some() {
                    return usage(
                        "--export-id-field builds the status URL from the export's id: add --export-status-url with {id} in it",
                    );
                }
                StatusFrom::Field(field.unwrap_or_else(|| "status_url".into()))
            }
        };
        if let Some(path) = state_field {
            spec.state_path = path;
        }
        if let Some(interval) = interval {
            let first = duration("export-poll-interval", Some(interval))?;
            if first.is_zero() {
                return usage("--export-poll-interval must be more than 0s, e.g. 2s");
            }
            spec.poll = PollPolicy {
                first,
                max: first.max(PollPolicy::default().max),
            };
        }
        if let Some(timeout) = timeout {
            spec.timeout = duration("export-timeout", Some(timeout))?;
            if spec.timeout.is_zero() {
                return usage("--export-timeout must be more than 0s, e.g. 2h");
            }
        }
        Ok(Some(spec))
    }
}

/// `--export-body`: JSON text, or `@PATH` of a file holding it; checked to be JSON.
fn export_body(value: &str) -> Result<String, UsageError> {
    let text = match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("--export-body @{path}: cannot read the file: {e}")))?,
        None => value.to_string(),
    };
    serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
        UsageError(format!(
            "--export-body is not JSON ({e}); give the request body as JSON text, or @PATH of a file holding it"
        ))
    })?;
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};
    use std::time::Duration;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        objects: ApiObjectArgs,
    }

    fn resolve(argv: &[&str], job: &ApiObjectJob) -> Result<Option<ApiObjectsConfig>, UsageError> {
        let matches = Cmd::command()
            .try_get_matches_from(std::iter::once("t").chain(argv.iter().copied()))
            .unwrap();
        let cmd = Cmd::from_arg_matches(&matches).unwrap();
        let mut r = Resolver::new(&matches);
        let url = Url::parse("https://api.example/prod/exports").unwrap();
        cmd.objects.resolve(&mut r, job, &url)
    }

    #[test]
    fn a_pull_of_records_has_no_object_settings() {
        assert_eq!(resolve(&[], &ApiObjectJob::default()).unwrap(), None);
    }

    #[test]
    fn references_in_pages_from_flags_and_the_job_file() {
        let job = ApiObjectJob {
            objects_path: Some("files".into()),
            object_size_field: Some("size".into()),
            ..Default::default()
        };
        let c = resolve(
            &[
                "--object-url-field",
                "url",
                "--object-checksum-field",
                "sha",
                "--object-checksum-algorithm",
                "sha256",
                "--object-records-field",
                "rows",
                "--object-name-field",
                "name",
            ],
            &job,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            c.fields,
            RefFields {
                objects_path: "files".into(),
                location: LocationField::Url("url".into()),
                size: Some("size".into()),
                checksum: Some("sha".into()),
                checksum_algorithm: ChecksumAlgorithm::Sha256,
                records: Some("rows".into()),
                name: Some("name".into()),
            }
        );
        assert_eq!(c.export, None);
    }

    #[test]
    fn an_export_with_its_defaults_and_with_every_setting() {
        let c = resolve(
            &["--object-uri-field", "s3_uri", "--export"],
            &ApiObjectJob::default(),
        )
        .unwrap()
        .unwrap();
        let spec = c.export.unwrap();
        assert_eq!(
            spec,
            ExportSpec::new(Url::parse("https://api.example/prod/exports").unwrap())
        );

        let dir = tempfile::tempdir().unwrap();
        let body = dir.path().join("body.json");
        std::fs::write(&body, r#"{"table":"orders"}"#).unwrap();
        let job = ApiObjectJob {
            export: Some(true),
            export_timeout: Some("2h".into()),
            ..Default::default()
        };
        let at_body = format!("@{}", body.display());
        let c = resolve(
            &[
                "--object-uri-field",
                "s3_uri",
                "--export-body",
                &at_body,
                "--export-status-url",
                "https://api.example/prod/exports/{id}/status",
                "--export-id-field",
                "exportId",
                "--export-state-field",
                "job.state",
                "--export-poll-interval",
                "45s",
            ],
            &job,
        )
        .unwrap()
        .unwrap();
        let spec = c.export.unwrap();
        assert_eq!(spec.body.as_deref(), Some(r#"{"table":"orders"}"#));
        assert_eq!(
            spec.status,
            StatusFrom::Template {
                template: "https://api.example/prod/exports/{id}/status".into(),
                id_path: "exportId".into()
            }
        );
        assert_eq!(spec.state_path, "job.state");
        assert_eq!(
            spec.poll,
            PollPolicy {
                first: Duration::from_secs(45),
                max: Duration::from_secs(45)
            }
        );
        assert_eq!(spec.timeout, Duration::from_secs(7200));
    }

    #[test]
    fn bad_combinations_name_the_flag_and_the_fix() {
        let job = ApiObjectJob::default();
        for (argv, want) in [
            (
                &["--object-url-field", "u", "--object-uri-field", "s"][..],
                "either a URL or an s3:// URI",
            ),
            (
                &["--objects-path", "files"][..],
                "--objects-path describes S3 objects",
            ),
            (&["--export"][..], "--export describes S3 objects"),
            (
                &["--object-url-field", "u", "--export-timeout", "1h"][..],
                "add --export",
            ),
            (
                &[
                    "--object-url-field",
                    "u",
                    "--object-checksum-algorithm",
                    "rot13",
                ][..],
                "--object-checksum-algorithm: unknown checksum algorithm",
            ),
            (
                &[
                    "--object-url-field",
                    "u",
                    "--export",
                    "--export-body",
                    "{oops",
                ][..],
                "--export-body is not JSON",
            ),
            (
                &[
                    "--object-url-field",
                    "u",
                    "--export",
                    "--export-status-url",
                    "https://api.example/x",
                ][..],
                "put {id} where",
            ),
            (
                &[
                    "--object-url-field",
                    "u",
                    "--export",
                    "--export-status-url",
                    "https://other.example/{id}",
                ][..],
                "not on --url's host",
            ),
            (
                &[
                    "--object-url-field",
                    "u",
                    "--export",
                    "--export-id-field",
                    "id",
                ][..],
                "add --export-status-url",
            ),
            (
                &[
                    "--object-url-field",
                    "u",
                    "--export",
                    "--export-timeout",
                    "0s",
                ][..],
                "--export-timeout must be more than 0s",
            ),
        ] {
            let e = resolve(argv, &job).unwrap_err().to_string();
            assert!(e.contains(want), "{argv:?}: {e}");
        }
    }
}
