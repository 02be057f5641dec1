//! `gatelake pull ... --sample N`: the pull's first N pages, measured, with nothing written to
//! the destination (only to `--preview-dir`, when given). The same settings, identities and
//! API client as the pull it previews; no lock, checkpoint, manifest or storage credential.

use super::args::OutputMode;
use super::exit_code::ExitCode;
use super::progress::human_bytes;
use super::resolver::UsageError;
use super::settings::Resolved;
use gatelake::engine::{ClientError, Engine};
use gatelake::identity::azure::AzureHop;
use gatelake::run::PullError;
use gatelake::sample::SampleReport;
use std::path::{Path, PathBuf};

/// Run the sample and print its report.
pub async fn run(resolved: Resolved, pages: u64, preview: Option<PathBuf>) -> ExitCode {
    let mode = resolved.output;
    if resolved.objects.is_some() {
        let e = UsageError(
            "--sample measures records; this pull lands S3 objects (--object-* settings), which a sample cannot preview: drop --sample, or try the records' API without the object settings"
                .into(),
        );
        return super::usage_error(&e, Some(mode));
    }
    if let Err(e) = super::check_destination(&resolved.dest, &mut []) {
        return super::usage_error(&e, Some(mode));
    }
    let engine = Engine::new(resolved.identity.clone());
    for w in resolved.warnings.iter().chain(&engine.warnings()) {
        eprintln!("warning: {w}");
    }
    let pull = resolved.pull;
    // The API's hops only: a sample never touches the destination.
    let ids = match engine.source_identities(&pull.source, &pull.job).await {
        Ok(ids) => ids,
        Err(e) => {
            super::report_failure(&e.to_string(), ExitCode::Auth, mode);
            return ExitCode::Auth;
        }
    };
    let client = match engine
        .api_client(&pull.source, ids.aws.clone(), ids.azure.get(AzureHop::Api))
        .await
    {
        Ok(c) => c,
        Err(ClientError::Http(e)) => {
            super::report_failure(&e.to_string(), ExitCode::Failure, mode);
            return ExitCode::Failure;
        }
        Err(ClientError::Source(e)) => return failed(&PullError::Source(e), mode),
    };
    let reporter = super::reporter_for(resolved.progress);
    let listing =
        match gatelake::pipeline::sample::sample_pages(&pull.source, client, pages, reporter).await
        {
            Ok(l) => l,
            Err(e) => return failed(&e, mode),
        };
    let (report, files) = gatelake::sample::report(&pull, &listing);
    let written = match &preview {
        Some(dir) => match write_preview(dir, &report, &files, &pull.output.encode.extension()) {
            Ok(w) => w,
            Err(e) => {
                let message = format!(
                    "--preview-dir {}: {e}; choose a folder you can write to",
                    dir.display()
                );
                super::report_failure(&message, ExitCode::Failure, mode);
                return ExitCode::Failure;
            }
        },
        None => Vec::new(),
    };
    if !print(&report, &written, &resolved.dest, mode) {
        return ExitCode::Failure;
    }
    ExitCode::Success
}

fn failed(e: &PullError, mode: OutputMode) -> ExitCode {
    let code = ExitCode::of_pull_error(e);
    super::report_failure(&gatelake::report::error_chain(e), code, mode);
    code
}

/// The encoded sample (`sample-00000.<ext>`, …) and the report (`sample.json`) in `dir`.
fn write_preview(
    dir: &Path,
    report: &SampleReport,
    files: &[bytes::Bytes],
    extension: &str,
) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (i, data) in files.iter().enumerate() {
        let path = dir.join(format!("sample-{i:05}.{extension}"));
        std::fs::write(&path, data)?;
        written.push(path.display().to_string());
    }
    let path = dir.join("sample.json");
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(&path, json)?;
    written.push(path.display().to_string());
    Ok(written)
}

/// Print the report; `false` when stdout could not take it (a closed pipe is not that).
fn print(report: &SampleReport, written: &[String], dest: &str, mode: OutputMode) -> bool {
    if mode == OutputMode::Json {
        let mut out = serde_json::to_value(report).unwrap_or_default();
        if let Some(obj) = out.as_object_mut() {
            obj.insert("preview_files".into(), written.into());
        }
        return super::stdout::answer(&out.to_string());
    }
    let r = report;
    let mut o = String::new();
    // One line of the answer.
    macro_rules! say {
        () => {
            o.push('\n')
        };
        ($($t:tt)*) => {{
            o.push_str(&format!($($t)*));
            o.push('\n');
        }};
    }
    say!(
        "Sampled {} pages: {} records, {} of record JSON in {:.2}s ({}).",
        r.pages,
        r.records,
        human_bytes(r.record_bytes),
        r.seconds,
        if r.listing_ended {
            "the listing ended inside the sample"
        } else {
            "the listing goes on"
        }
    );
    say!();
    say!(
        "{:>5} {:>8} {:>10} {:>12} {:>8}",
        "page",
        "records",
        "bytes",
        "record JSON",
        "seconds"
    );
    for p in &r.per_page {
        say!(
            "{:>5} {:>8} {:>10} {:>12} {:>8.3}{}",
            p.page,
            p.records,
            human_bytes(p.bytes),
            human_bytes(p.record_bytes),
            p.seconds,
            p.rejected
                .as_deref()
                .map(|why| format!("  set aside: {why}"))
                .unwrap_or_default()
        );
    }
    say!();
    let width = r
        .columns
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(6);
    say!(
        "{:width$}  {:<9} {:>11} {:>9}",
        "column",
        "type",
        "nulls",
        "max width"
    );
    for c in &r.columns {
        let kind = serde_json::to_value(c.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        say!(
            "{:width$}  {:<9} {:>11} {:>9}",
            c.name,
            kind,
            format!("{}/{}", c.nulls, r.records),
            c.max_width
        );
    }
    say!();
    say!(
        "{:<8} {:<7} {:>10} {:>7} {:>9}  Synapse",
        "format",
        "codec",
        "size",
        "ratio",
        "MB/s"
    );
    for e in &r.encodings {
        let tail = if e.configured { "  <- this pull" } else { "" };
        match (&e.error, e.bytes) {
            (Some(why), _) => say!(
                "{:<8} {:<7} fails on this sample: {why}{tail}",
                e.format,
                e.compression.to_string()
            ),
            (None, bytes) => say!(
                "{}",
                format!(
                    "{:<8} {:<7} {:>10} {:>7} {:>9}  {:<7}{tail}",
                    e.format,
                    e.compression.to_string(),
                    human_bytes(bytes.unwrap_or(0)),
                    e.ratio
                        .map(|x| format!("{x:.3}"))
                        .unwrap_or_else(|| "-".into()),
                    e.mb_per_s
                        .map(|x| format!("{x:.1}"))
                        .unwrap_or_else(|| "-".into()),
                    if e.synapse_reads { "yes" } else { "no" }
                )
                .trim_end()
            ),
        }
    }
    say!();
    match &r.estimate {
        Some(e) => say!(
            "Estimate ({} records, {}): {} pages, {} of record JSON{}, {} chunk(s), about {:.0}s of fetching at the sample's pace.",
            e.records,
            if e.basis == "api-total" { "the API's total" } else { "the whole listing was sampled" },
            e.pages,
            human_bytes(e.record_bytes),
            e.landed_bytes
                .map(|b| format!(" landing as {}", human_bytes(b)))
                .unwrap_or_default(),
            e.chunks,
            e.seconds
        ),
        None => say!("Estimate: none (the API reported no total; see below)."),
    }
    let c = &r.chunk_size;
    say!(
        "Chunk size: --chunk-size {}{}: {}.",
        c.recommended,
        c.recommended_file_bytes
            .map(|b| format!(" (files of about {})", human_bytes(b)))
            .unwrap_or_default(),
        c.note
    );
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if written.is_empty() {
        say!("Nothing was written (the destination {dest} was not touched).");
    } else {
        say!("Nothing was written to {dest}; the sample is in:");
        for w in written {
            say!("  {w}");
        }
    }
    super::stdout::answer(o.trim_end())
}
