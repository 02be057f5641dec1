//! The flags every command that lands S3 objects shares (`copy`, and `pull` when its pages
//! or an export hand back objects): how an object lands (`--land`), who moves its bytes
//! (`--copy-mode`), the size of one part read and staged as a block (`--part-size`), and the
//! hosts and buckets an object may come from (`--allow-object-host`, `--allow-bucket`).
//! One clap struct, flattened into each command, and one resolution into the library's
//! [`ObjectsConfig`], so the flags mean the same thing everywhere.
//!
//! How many parts are in flight at once is each command's own flag (`copy --concurrency`;
//! `pull` has `--concurrency` for page requests already), handed to [`ObjectArgs::resolve`].

use super::resolver::{size, usage, Resolver, UsageError};
use clap::{Args, ValueEnum};
use gatelake::objects::{CopyMode, Land, ObjectsConfig};

/// The smallest part accepted: below it, per-request overhead dominates any object.
pub const MIN_PART_SIZE: u64 = 64 << 10;
/// The largest block Azure accepts in one Put Block.
pub const MAX_PART_SIZE: u64 = 4000 << 20;
/// The largest range Azure's Put Block From URL copies in one call (`--copy-mode server`).
pub const MAX_SERVER_PART_SIZE: u64 = 100 << 20;
/// The most parts in flight at once.
pub const MAX_CONCURRENCY: usize = 256;

/// `--land`: the library's [`Land`], with clap's help for each value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LandArg {
    /// Byte for byte, the object's name kept under the run's folder, size and checksum verified.
    AsIs,
    /// Its content (jsonl, a JSON array, csv; gzip, zstd or none, detected by content) through
    /// --format, --chunk-size and the schema policy, like a page's records.
    Records,
}

/// `--copy-mode`: the library's [`CopyMode`], with clap's help for each value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyModeArg {
    /// This process reads ranges of the object and stages them as blocks (always works).
    Client,
    /// The storage account reads presigned range URLs itself (Put Block From URL): the bytes
    /// never pass through this machine. Needs an Azure destination that can reach S3.
    Server,
}

impl From<LandArg> for Land {
    fn from(arg: LandArg) -> Self {
        match arg {
            LandArg::AsIs => Land::AsIs,
            LandArg::Records => Land::Records,
        }
    }
}

impl From<CopyModeArg> for CopyMode {
    fn from(arg: CopyModeArg) -> Self {
        match arg {
            CopyModeArg::Client => CopyMode::Client,
            CopyModeArg::Server => CopyMode::Server,
        }
    }
}

impl LandArg {
    pub fn as_str(self) -> &'static str {
        match self {
            LandArg::AsIs => "as-is",
            LandArg::Records => "records",
        }
    }
}

impl CopyModeArg {
    pub fn as_str(self) -> &'static str {
        match self {
            CopyModeArg::Client => "client",
            CopyModeArg::Server => "server",
        }
    }
}

/// The job-file keys of these flags (`land`, `copy_mode`, `part_size`, `allow_object_host`,
/// `allow_bucket` in `[jobs.NAME]`), as read.
#[derive(Debug, Default, Clone)]
pub struct ObjectJob {
    pub land: Option<String>,
    pub copy_mode: Option<String>,
    pub part_size: Option<String>,
    pub allow_object_host: Option<Vec<String>>,
    pub allow_bucket: Option<Vec<String>>,
    pub object_records_path: Option<String>,
}

/// Where the job file's object keys come from (the job file's table, `JobSpec`), so this
/// file needs nothing of the job file's shape.
pub trait ObjectJobKeys {
    fn object_keys(&self) -> ObjectJob;
}

impl ObjectJobKeys for ObjectJob {
    fn object_keys(&self) -> ObjectJob {
        self.clone()
    }
}

/// How S3 objects are landed. Flattened into `copy` and `pull`.
#[derive(Debug, Args, Clone, Default)]
pub struct ObjectArgs {
    /// How each object lands: as-is (byte for byte under the run's folder, size and checksum
    /// verified) or records (its content through --format, --chunk-size and the schema
    /// policy). [default: as-is]
    #[arg(long, env = "GATELAKE_LAND", value_enum, value_name = "HOW")]
    pub land: Option<LandArg>,

    /// as-is: who moves the bytes. client: this process reads ranges and stages them as
    /// blocks; server: the storage account reads presigned range URLs itself (Put Block From
    /// URL, Azure destinations that can reach S3). [default: client]
    #[arg(long, env = "GATELAKE_COPY_MODE", value_enum, value_name = "MODE")]
    pub copy_mode: Option<CopyModeArg>,

    /// Size of one part of an object, read and staged as one block, e.g. 16MiB; memory stays near the parts
    /// in flight × this size, whatever the objects' sizes (64KiB to 4000MiB; server mode up
    /// to 100MiB). [default: 8MiB]
    #[arg(long, env = "GATELAKE_PART_SIZE", value_name = "SIZE")]
    pub part_size: Option<String>,

    /// A host a presigned or plain object URL may point at, beyond the configured S3 endpoint
    /// and AWS's S3 hosts (repeatable, or comma-separated). Any other host is refused before a
    /// request is sent.
    #[arg(
        long,
        env = "GATELAKE_ALLOW_OBJECT_HOST",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub allow_object_host: Vec<String>,

    /// The only buckets an s3:// object may come from (repeatable, or comma-separated);
    /// unset: any bucket the role can read.
    #[arg(
        long,
        env = "GATELAKE_ALLOW_BUCKET",
        value_name = "BUCKET",
        value_delimiter = ','
    )]
    pub allow_bucket: Vec<String>,

    /// --land records, when each object is one JSON document: the dot-separated path of the
    /// member holding its array of records (e.g. data.rows). Unset: the content's layout is
    /// detected (JSON lines, a top-level JSON array, or csv with a header row).
    #[arg(long, env = "GATELAKE_OBJECT_RECORDS_PATH", value_name = "PATH")]
    pub object_records_path: Option<String>,
}

impl ObjectArgs {
    /// The objects' settings, flag/env > job file > default, each value shown with its origin.
    /// `concurrency` is the command's own count of parts in flight (already resolved).
    pub fn resolve(
        &self,
        r: &mut Resolver<'_>,
        job: &dyn ObjectJobKeys,
        concurrency: usize,
    ) -> Result<ObjectsConfig, UsageError> {
        let job = job.object_keys();
        let land = r
            .pick(
                "land",
                self.land.map(|l| l.as_str().to_string()),
                job.land.clone(),
                Some(LandArg::AsIs.as_str().to_string()),
            )
            .unwrap_or_default();
        let land = LandArg::from_str(&land, false).map_err(|_| {
            UsageError(format!(
                "land = {land:?} in the job file: use \"as-is\" or \"records\""
            ))
        })?;
        let copy_mode = r
            .pick(
                "copy_mode",
                self.copy_mode.map(|m| m.as_str().to_string()),
                job.copy_mode.clone(),
                Some(CopyModeArg::Client.as_str().to_string()),
            )
            .unwrap_or_default();
        let copy_mode = CopyModeArg::from_str(&copy_mode, false).map_err(|_| {
            UsageError(format!(
                "copy_mode = {copy_mode:?} in the job file: use \"client\" or \"server\""
            ))
        })?;
        let part_size = size(
            "part-size",
            r.pick(
                "part_size",
                self.part_size.clone(),
                job.part_size.clone(),
                Some("8MiB".into()),
            ),
        )?;
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return usage(format!(
                "--part-size {part_size} bytes: use 64KiB to 4000MiB (Azure's largest block), e.g. 8MiB"
            ));
        }
        if copy_mode == CopyModeArg::Server && part_size > MAX_SERVER_PART_SIZE {
            return usage(format!(
                "--part-size {part_size} bytes with --copy-mode server: Put Block From URL copies at most 100MiB per block; use --part-size 100MiB or less"
            ));
        }
        if land == LandArg::Records && copy_mode == CopyModeArg::Server {
            return usage(
                "--copy-mode server moves bytes as they are; --land records reads and re-encodes them here. Use --copy-mode client (the default) with --land records",
            );
        }
        if concurrency == 0 || concurrency > MAX_CONCURRENCY {
            return usage(format!(
                "--concurrency {concurrency}: use 1 to {MAX_CONCURRENCY} parts in flight"
            ));
        }
        let allow_hosts = list(
            r,
            "allow_object_host",
            &self.allow_object_host,
            &job.allow_object_host,
        )?;
        let allow_buckets = list(r, "allow_bucket", &self.allow_bucket, &job.allow_bucket)?;
        let records_path = r.pick(
            "object_records_path",
            self.object_records_path.clone(),
            job.object_records_path.clone(),
            None,
        );
        if records_path
            .as_deref()
            .is_some_and(|p| p.split('.').any(str::is_empty))
        {
            return usage(
                "--object-records-path: name the member holding each object's records, with dots between levels (e.g. data.rows)",
            );
        }
        Ok(ObjectsConfig {
            land: land.into(),
            copy_mode: copy_mode.into(),
            part_size,
            concurrency,
            allow_hosts,
            allow_buckets,
            records_path,
        })
    }
}

/// A repeatable setting: the flag's (or env's) values, else the job file's; empty values
/// are refused rather than read as "anything".
fn list(
    r: &mut Resolver<'_>,
    id: &str,
    cli: &[String],
    job: &Option<Vec<String>>,
) -> Result<Vec<String>, UsageError> {
    let joined = |v: &[String]| (!v.is_empty()).then(|| v.join(","));
    let picked = r.pick(id, joined(cli), job.as_deref().and_then(joined), None);
    let values: Vec<String> = picked
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    if values.len() == 1 && values[0].is_empty() {
        return Ok(Vec::new());
    }
    if values.iter().any(String::is_empty) {
        return usage(format!(
            "--{}: an empty value; name each {} (repeat the flag or separate them with commas)",
            id.replace('_', "-"),
            if id == "allow_bucket" {
                "bucket"
            } else {
                "host"
            }
        ));
    }
    Ok(values)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        objects: ObjectArgs,
    }

    fn resolve(argv: &[&str], job: &ObjectJob, n: usize) -> Result<ObjectsConfig, UsageError> {
        let matches = Cmd::command()
            .try_get_matches_from(std::iter::once("t").chain(argv.iter().copied()))
            .unwrap();
        let cmd = Cmd::from_arg_matches(&matches).unwrap();
        let mut r = Resolver::new(&matches);
        cmd.objects.resolve(&mut r, job, n)
    }

    #[test]
    fn defaults_flags_and_job_file_resolve_into_the_library_config() {
        let c = resolve(&[], &ObjectJob::default(), 8).unwrap();
        assert_eq!(c, ObjectsConfig::default());

        let job = ObjectJob {
            part_size: Some("1MiB".into()),
            allow_bucket: Some(vec!["from-job".into()]),
            ..Default::default()
        };
        let c = resolve(
            &[
                "--copy-mode",
                "server",
                "--allow-object-host",
                "a.example,b.example",
                "--allow-object-host",
                "c.example",
            ],
            &job,
            3,
        )
        .unwrap();
        assert_eq!(c.copy_mode, CopyMode::Server);
        assert_eq!(c.part_size, 1 << 20);
        assert_eq!(c.concurrency, 3);
        assert_eq!(c.allow_hosts, ["a.example", "b.example", "c.example"]);
        assert_eq!(c.allow_buckets, ["from-job"]);
        assert_eq!(c.records_path, None);
        let job = ObjectJob {
            object_records_path: Some("data.rows".into()),
            ..Default::default()
        };
        let c = resolve(&[], &job, 8).unwrap();
        assert_eq!(c.records_path.as_deref(), Some("data.rows"));
        let c = resolve(&["--object-records-path", "items"], &job, 8).unwrap();
        assert_eq!(c.records_path.as_deref(), Some("items"));
    }

    #[test]
    fn bad_values_name_the_flag_and_the_fix() {
        let job = ObjectJob::default();
        for (argv, want) in [
            (&["--part-size", "1KiB"][..], "--part-size"),
            (&["--part-size", "lots"][..], "--part-size"),
            (
                &["--copy-mode", "server", "--part-size", "200MiB"][..],
                "100MiB",
            ),
            (
                &["--land", "records", "--copy-mode", "server"][..],
                "--copy-mode client",
            ),
            (&["--allow-bucket", "a,,b"][..], "--allow-bucket"),
            (&["--object-records-path", "data..rows"][..], "data.rows"),
        ] {
            let e = resolve(argv, &job, 8).unwrap_err().to_string();
            assert!(e.contains(want), "{argv:?}: {e}");
        }
        let e = resolve(&[], &job, 0).unwrap_err().to_string();
        assert!(e.contains("--concurrency"), "{e}");
        let job = ObjectJob {
            land: Some("sideways".into()),
            ..Default::default()
        };
        let e = resolve(&[], &job, 8).unwrap_err().to_string();
        assert!(e.contains("land = \"sideways\""), "{e}");
    }
}
