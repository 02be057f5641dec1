//! The output side of a run: format, compression and chunk sizes, the schema policy, the
//! destination and its lock, and how the run talks to the user (`--output`, `--progress`).
//! Shared by `pull`, `demo` and `auth check`.

use crate::cli::args::{DemoArgs, OutputArgs, OutputMode, ProgressMode};
use crate::cli::job_spec::JobSpec;
use crate::cli::resolver::{display_path, size, usage, Resolver, Shown, UsageError};
use clap::parser::ValueSource;
use clap::ArgMatches;
use gatelake::config::{parse_duration, OutputConfig};
use gatelake::encode::drift::{OnSchemaDrift, SchemaOptions};
use gatelake::encode::{Compression, EncodeOptions, Format};
use std::time::Duration;

/// Resolve `gatelake demo`: the demo API's URL is only known once it runs, so this returns
/// the output side and the demo fills in the source.
pub fn resolve_demo(
    args: &DemoArgs,
    matches: &ArgMatches,
) -> Result<(ResolvedOutput, Vec<Shown>), UsageError> {
    let mut r = Resolver::new(matches);
    if args.page_size == 0 || args.records == 0 {
        return usage("--records and --page-size must be at least 1");
    }
    // Their defaults are the demo's own (clap fills them in), not a pull's: say so.
    for (id, value) in [("records", args.records), ("page_size", args.page_size)] {
        r.pick(id, Some(value), None, None);
        if matches!(
            matches.value_source(id),
            Some(ValueSource::DefaultValue) | None
        ) {
            if let Some(shown) = r.shown.last_mut() {
                shown.origin = "demo default".into();
            }
        }
    }
    let out = resolve_output(&mut r, &args.out, &JobSpec::default(), "./lake/demo")?;
    Ok((out, r.shown))
}

/// The output side of a run.
pub struct ResolvedOutput {
    pub config: OutputConfig,
    pub create_container: bool,
    pub restart: bool,
    pub wait_for_lock: Option<Duration>,
    pub dest: String,
    pub upload_concurrency: usize,
    pub mode: OutputMode,
    pub progress: ProgressMode,
}

pub fn resolve_output(
    r: &mut Resolver<'_>,
    out: &OutputArgs,
    job: &JobSpec,
    default_dest: &str,
) -> Result<ResolvedOutput, UsageError> {
    let synapse = r
        .switch(
            "synapse_optimized",
            out.synapse_optimized,
            out.no_synapse_optimized,
            job.synapse_optimized,
            Some(false),
        )
        .unwrap_or(false);
    let format: Format = r
        .pick(
            "format",
            out.format.clone(),
            job.format.clone(),
            Some(if synapse {
                "parquet".into()
            } else {
                Format::default().to_string()
            }),
        )
        .unwrap_or_default()
        .parse()
        .map_err(|e: String| UsageError(format!("--format: {e}")))?;
    let compression = match r.pick(
        "compression",
        out.compression.clone(),
        job.compression.clone(),
        Some(format.default_compression().to_string()),
    ) {
        Some(c) => Some(
            c.parse::<Compression>()
                .map_err(|e| UsageError(format!("--compression: {e}")))?,
        ),
        None => None,
    };
    let mut encode = EncodeOptions::new(format, compression);
    encode.level = r.pick(
        "compression_level",
        out.compression_level,
        job.compression_level,
        None,
    );
    encode.validate().map_err(|e| UsageError(e.to_string()))?;
    let expected = match r.pick(
        "expected_size",
        out.expected_size.clone(),
        job.expected_size.clone(),
        None,
    ) {
        Some(text) => Some(size("expected-size", Some(text))?),
        None => None,
    };
    let default_chunk = if synapse {
        gatelake::config::synapse_chunk_bytes(&encode, expected).to_string()
    } else {
        "128MiB".into()
    };
    let chunk_bytes = size(
        "chunk-size",
        r.pick(
            "chunk_size",
            out.chunk_size.clone(),
            job.chunk_size.clone(),
            Some(default_chunk),
        ),
    )?;
    let schema = resolve_schema(r, out, job, format)?;
    let chunk_rows = r.pick("chunk_rows", out.chunk_rows, job.chunk_rows, None);
    if chunk_rows == Some(0) {
        return usage("--chunk-rows must be at least 1");
    }
    let dest = r
        .pick(
            "dest",
            out.dest.clone(),
            job.dest.clone(),
            Some(default_dest.to_string()),
        )
        .unwrap_or_default();
    let upload_concurrency = r
        .pick(
            "upload_concurrency",
            out.upload_concurrency,
            job.upload_concurrency,
            Some(4),
        )
        .unwrap_or(4);
    if upload_concurrency == 0 || upload_concurrency > 64 {
        return usage("--upload-concurrency must be between 1 and 64");
    }
    let wait_for_lock = resolve_wait_for_lock(r, out, job)?;
    let mode = r
        .pick("output", out.output.map(|o| o.as_str()), None, Some("text"))
        .unwrap_or("text");
    let progress = r
        .pick(
            "progress",
            out.progress.map(|p| p.as_str()),
            None,
            Some("auto"),
        )
        .unwrap_or("auto");
    Ok(ResolvedOutput {
        config: OutputConfig {
            encode,
            chunk_bytes,
            chunk_rows,
            schema,
        },
        create_container: out.create_container,
        restart: out.restart,
        wait_for_lock,
        dest,
        upload_concurrency,
        mode: if mode == "json" {
            OutputMode::Json
        } else {
            OutputMode::Text
        },
        progress: match progress {
            "bar" => ProgressMode::Bar,
            "plain" => ProgressMode::Plain,
            "none" => ProgressMode::None,
            _ => ProgressMode::Auto,
        },
    })
}

/// `--wait-for-lock [DURATION]`: how long to wait for a busy job lock; the bare flag (or
/// `lease`) means the lease's length. `0s` or unset: do not wait.
fn resolve_wait_for_lock(
    r: &mut Resolver<'_>,
    out: &OutputArgs,
    job: &JobSpec,
) -> Result<Option<Duration>, UsageError> {
    let Some(text) = r.pick(
        "wait_for_lock",
        out.wait_for_lock.clone(),
        job.wait_for_lock.clone(),
        None,
    ) else {
        return Ok(None);
    };
    let lease = Duration::from_secs(gatelake::sink::azure::LEASE_SECONDS.unsigned_abs().into());
    let wait = match text.trim() {
        "" | "lease" | "true" => lease,
        other => parse_duration(other).map_err(|e| {
            UsageError(format!(
                "--wait-for-lock: {e} (or give the flag alone to wait up to the lease's length, {} s)",
                lease.as_secs()
            ))
        })?,
    };
    Ok((!wait.is_zero()).then_some(wait))
}

/// The schema policy: drift, flattening, a pinned schema.
fn resolve_schema(
    r: &mut Resolver<'_>,
    out: &OutputArgs,
    job: &JobSpec,
    format: Format,
) -> Result<SchemaOptions, UsageError> {
    let on_drift: OnSchemaDrift = r
        .pick(
            "on_schema_drift",
            out.on_schema_drift.clone(),
            job.on_schema_drift.clone(),
            Some("fail".into()),
        )
        .unwrap_or_default()
        .parse()
        .map_err(|e: String| UsageError(format!("--on-schema-drift: {e}")))?;
    if out.no_flatten && out.flatten_depth.is_some() {
        return usage(format!(
            "--no-flatten contradicts {} (a flatten depth implies --flatten): drop one",
            r.origin_of_cli("flatten_depth")
        ));
    }
    let depth = r.pick("flatten_depth", out.flatten_depth, job.flatten_depth, None);
    let flatten = r
        .switch(
            "flatten",
            out.flatten || out.flatten_depth.is_some(),
            out.no_flatten,
            job.flatten.or(job.flatten_depth.map(|_| true)),
            Some(false),
        )
        .unwrap_or(false);
    let flatten_depth = match (flatten, depth) {
        (false, _) => 0,
        (true, Some(0)) => return usage("--flatten-depth must be at least 1"),
        (true, Some(d)) => d,
        (true, None) => 3,
    };
    let pinned = match r.pick(
        "schema",
        out.schema.as_deref().map(display_path),
        job.schema.as_deref().map(display_path),
        None,
    ) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| UsageError(format!("--schema {path}: {e}")))?;
            Some(
                gatelake::encode::schema::Schema::from_json(&text)
                    .map_err(|e| UsageError(format!("--schema {path}: {e}")))?,
            )
        }
        None => None,
    };
    if pinned.is_some() && on_drift != OnSchemaDrift::Fail {
        return usage(format!(
            "--schema pins the columns, so records that do not fit are errors; it cannot be combined with --on-schema-drift {on_drift}"
        ));
    }
    if !format.columnar() && (pinned.is_some() || flatten_depth > 0) {
        return usage("--schema and --flatten shape csv and parquet columns; jsonl keeps records as received (add --format parquet or csv)");
    }
    Ok(SchemaOptions {
        on_drift,
        flatten_depth,
        pinned,
    })
}
