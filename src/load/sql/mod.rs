//! The T-SQL that loads a run into Synapse, generated from its manifest: `COPY INTO` for a
//! dedicated pool, an `OPENROWSET` view and an external table for a serverless pool. Each run
//! writes it as `<run>/load.sql`; `gatelake sql` prints it for any pool, credential and table.
//!
//! Facts it is built on (Microsoft's COPY INTO and serverless documentation):
//! - COPY INTO reads CSV (gzip or none), PARQUET (snappy or gzip) and ORC, not JSON; the
//!   serverless pool reads CSV and Parquet, and JSON lines as one-column CSV with
//!   `FIELDTERMINATOR = '0x0b', FIELDQUOTE = '0x0b'` plus `JSON_VALUE`.
//! - COPY INTO's column list maps each target column to an input field *number* (from 1), so
//!   a shortened column name loads the right values from csv and parquet alike.
//! - Serverless OPENROWSET binds parquet columns by name (case-sensitive; ordinals are
//!   ignored for parquet), and csv columns by ordinal unless `HEADER_ROW = TRUE`, which binds
//!   by the header's names. So parquet files carry the SQL column names (see
//!   `encode::schema::column_name`) and csv is read with `FIRSTROW = 2` and ordinals.
//! - Serverless reads gzip csv (and jsonl) with `DATA_COMPRESSION = 'GZIP'`, an option of
//!   CSV parser 1.0 only; parser 2.0 is used for uncompressed files. An external file format
//!   takes the same `PARSER_VERSION` rules.
//! - OPENROWSET (unlike external tables) may return files whose names start with `_`, so
//!   every path pattern ends in the run's extension: `_manifest.json`, `_SUCCESS` and
//!   `load.sql` never match it.
//! - zstd is read by neither, so a zstd run gets an error here, not SQL that fails later.
//! - With a managed identity (or a service principal), COPY INTO wants the `.dfs` endpoint;
//!   with a SAS, the `.blob` endpoint.
//! - T-SQL has no `CREATE TABLE IF NOT EXISTS`: `IF OBJECT_ID(N'…') IS NULL CREATE TABLE`.
//! - A batch separator (`GO`) is a client feature (sqlcmd, SSMS) that a pipeline's script
//!   activity does not understand, so statements that must be alone in a batch
//!   (`CREATE VIEW`) run through `EXEC`, and so does a `COPY INTO` that names columns an
//!   `ALTER TABLE … ADD` of the same script added. `IF … CREATE TABLE` followed by
//!   `COPY INTO` shares one batch (the table is resolved when the statement runs).
//!
//! Nothing that came from the API reaches the SQL unescaped. Field names become identifiers
//! in brackets (`]` doubled), string literals are `N'…'` (`'` doubled), JSON paths quote the
//! key, and text in comments is JSON-escaped so a line break cannot end the comment. A name
//! longer than SQL's 128-character limit (or with a control character) is cut and suffixed
//! with a hash of the whole name, the same name the parquet file's column has.

mod dedicated;
mod names;
mod objects;
mod serverless;

use super::manifest::Manifest;
use crate::encode::schema::{Field, FieldKind, Schema};
use crate::encode::Format;
use names::comment_text;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

pub use crate::encode::schema::{column_name, MAX_IDENTIFIER};
pub use names::{quote_ident, quote_literal, quote_string, TableName};
pub use objects::render_for_objects;

/// Which Synapse SQL pool runs the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    Dedicated,
    Serverless,
}

/// The identity Synapse uses to read the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    ManagedIdentity,
    Sas,
    ServicePrincipal,
}

/// How `COPY INTO` names the run's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileSelection {
    /// Every file of the manifest, by URL: exactly the run, nothing else.
    #[default]
    List,
    /// `<run>/*.<ext>`: shorter, and still exactly the run (names starting with `_` are
    /// skipped by wildcards, and `load.sql` has another extension).
    Wildcard,
}

/// How string columns are sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StringSizing {
    /// `NVARCHAR(n)` from the observed maximum (see [`nvarchar`]).
    #[default]
    Observed,
    /// Always `NVARCHAR(MAX)`.
    Max,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlOptions {
    pub target: TableName,
    pub pool: Pool,
    pub credential: Credential,
    pub files: FileSelection,
    /// Dedicated pool, parquet: let `COPY INTO … AUTO_CREATE_TABLE = 'ON'` create the table
    /// instead of an explicit `CREATE TABLE`.
    pub auto_create_table: bool,
    pub strings: StringSizing,
    /// Service principal: its application (client) id and tenant, names rather than secrets.
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
}

impl SqlOptions {
    /// Dedicated pool, managed identity, explicit file list, observed string widths.
    pub fn new(target: TableName) -> Self {
        Self {
            target,
            pool: Pool::Dedicated,
            credential: Credential::ManagedIdentity,
            files: FileSelection::List,
            auto_create_table: false,
            strings: StringSizing::Observed,
            client_id: None,
            tenant_id: None,
        }
    }
}

/// Why no SQL could be generated.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("invalid table name {0}")]
    InvalidName(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the run has no files to load")]
    NoFiles,
    #[error("the manifest has no schema (csv and parquet runs always record one)")]
    NoSchema,
}

/// The SQL type of a column (see the README's type-mapping table).
pub fn sql_type(field: &Field, strings: StringSizing) -> String {
    match field.kind {
        FieldKind::Boolean => "BIT".into(),
        FieldKind::Int64 => "BIGINT".into(),
        FieldKind::Float64 => "FLOAT".into(),
        FieldKind::Timestamp => "DATETIME2(6)".into(),
        FieldKind::Json => "NVARCHAR(MAX)".into(),
        FieldKind::Utf8 => match strings {
            StringSizing::Max => "NVARCHAR(MAX)".into(),
            StringSizing::Observed => nvarchar(field.max_length),
        },
    }
}

/// `NVARCHAR(n)` for strings of at most `max` UTF-16 code units: twice the maximum (values
/// of later runs grow), rounded up to a power of two, at least 32; `NVARCHAR(MAX)` beyond
/// 4000 (the largest `n`) or when nothing was observed.
pub fn nvarchar(max: Option<u64>) -> String {
    match max {
        None => "NVARCHAR(MAX)".into(),
        Some(m) => {
            let n = m.saturating_mul(2).max(32).next_power_of_two();
            if n > 4000 {
                if m.saturating_mul(2) <= 4000 {
                    "NVARCHAR(4000)".into()
                } else {
                    "NVARCHAR(MAX)".into()
                }
            } else {
                format!("NVARCHAR({n})")
            }
        }
    }
}

/// The URL Synapse should read a file at: `.dfs` for identities, `.blob` for SAS. URLs that
/// are not Azure Storage (a local folder, the emulator) are left as they are.
fn endpoint_url(url: &str, credential: Credential) -> String {
    let (from, to) = match credential {
        Credential::Sas => (".dfs.core.windows.net", ".blob.core.windows.net"),
        Credential::ManagedIdentity | Credential::ServicePrincipal => {
            (".blob.core.windows.net", ".dfs.core.windows.net")
        }
    };
    match url.find("://") {
        Some(at) => {
            let host_end = url[at + 3..].find('/').map_or(url.len(), |i| at + 3 + i);
            let host = &url[at + 3..host_end];
            match host.strip_suffix(from) {
                Some(account) => format!("https://{account}{to}{}", &url[host_end..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// The run's folder URL (the parent of its files), and the file extension.
fn run_folder(manifest: &Manifest, credential: Credential) -> Result<String, SqlError> {
    let first = manifest.files.first().ok_or(SqlError::NoFiles)?;
    let url = endpoint_url(&first.url, credential);
    Ok(url
        .rsplit_once('/')
        .map(|(dir, _)| dir.to_owned())
        .unwrap_or(url))
}

/// For a run in a local folder (`file://`), a warning first: Synapse cannot read it, so the
/// locations below only show the script's shape, and running it as is must fail.
fn local_folder_note(manifest: &Manifest) -> String {
    let local = manifest
        .files
        .first()
        .is_some_and(|f| f.url.starts_with("file://"));
    if !local {
        return String::new();
    }
    "-- ILLUSTRATIVE ONLY: this run is in a local folder, which Synapse cannot read; the\n\
     -- locations below (file://…) show the script's shape and will not load. Copy the run\n\
     -- folder to ADLS Gen2 and run `gatelake sql --dest abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH`\n\
     -- for a script that loads it.\n"
        .to_owned()
}

/// Check that Synapse can read the run's files at all.
fn check_readable(manifest: &Manifest, pool: Pool) -> Result<(), SqlError> {
    let (format, codec) = (manifest.format, manifest.compression);
    let synapse = format.synapse();
    if format.allows(codec) && !synapse.codecs.contains(&codec) {
        return Err(SqlError::Unsupported(format!(
            "Synapse cannot read {codec}-compressed {format} files; pull with --compression {} instead",
            format.default_compression()
        )));
    }
    if let (Pool::Dedicated, Err(why)) = (pool, synapse.copy_into) {
        return Err(SqlError::Unsupported(why.to_owned()));
    }
    if !format.allows(codec) {
        return Err(SqlError::Unsupported(format!(
            "{codec} is only used inside {} files",
            Format::allowing(codec)
        )));
    }
    Ok(())
}

/// Render the load script for `manifest`.
pub fn render(manifest: &Manifest, opts: &SqlOptions) -> Result<String, SqlError> {
    check_readable(manifest, opts.pool)?;
    if manifest.files.is_empty() {
        return Err(SqlError::NoFiles);
    }
    let mut out = local_folder_note(manifest);
    let _ = writeln!(
        out,
        "-- Generated by {} for run {} of job {}: {} file(s), {} row(s), {} {}.",
        manifest.tool,
        comment_text(&manifest.run_id),
        comment_text(&manifest.job),
        manifest.totals.files,
        manifest.totals.rows,
        manifest.format,
        manifest.compression
    );
    let _ = writeln!(
        out,
        "-- Pool: {}; credential: {}. Regenerate with: gatelake sql --dest … --run {}",
        match opts.pool {
            Pool::Dedicated => "dedicated",
            Pool::Serverless => "serverless",
        },
        match opts.credential {
            Credential::ManagedIdentity => "managed identity",
            Credential::Sas => "SAS",
            Credential::ServicePrincipal => "service principal",
        },
        comment_text(&manifest.run_id)
    );
    if let Some(schema) = &manifest.schema {
        for f in &schema.fields {
            let col = column_name(&f.name);
            if col != f.name {
                let _ = writeln!(
                    out,
                    "-- Column {} holds field {} (names are limited to 128 characters).",
                    comment_text(&col),
                    comment_text(&f.name)
                );
            }
        }
    }
    out.push('\n');
    match opts.pool {
        Pool::Dedicated => dedicated::copy_into(manifest, opts, &mut out)?,
        Pool::Serverless => serverless::openrowset(manifest, opts, &mut out)?,
    }
    Ok(out)
}

fn column_defs(schema: &Schema, strings: StringSizing, indent: &str) -> String {
    schema
        .fields
        .iter()
        .map(|f| {
            format!(
                "{indent}{} {} NULL",
                quote_ident(&column_name(&f.name)),
                sql_type(f, strings)
            )
        })
        .collect::<Vec<_>>()
        .join(",\n")
}

/// The `load.sql` a run writes beside its manifest: a dedicated pool's `COPY INTO` for csv
/// and parquet (a serverless view for a format COPY INTO cannot read, jsonl), managed identity,
/// the explicit file list, into `[dbo].[<job>]`. When Synapse cannot read the run at all
/// (zstd), the script is a comment saying why, so nobody runs a script that must fail.
pub fn render_for_run(manifest: &Manifest) -> String {
    if manifest.land.as_deref() == Some("as-is") {
        return render_for_objects(manifest);
    }
    let target = TableName {
        schema: "dbo".to_owned(),
        table: column_name(&manifest.job),
    };
    let mut opts = SqlOptions::new(target);
    if manifest.format.synapse().copy_into.is_err() {
        opts.pool = Pool::Serverless;
    }
    match render(manifest, &opts) {
        Ok(sql) => sql,
        Err(e) => format!(
            "-- No load script for run {}: {}\n",
            comment_text(&manifest.run_id),
            comment_text(&e.to_string())
        ),
    }
}

#[cfg(test)]
mod tests;
