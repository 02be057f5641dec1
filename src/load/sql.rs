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

use super::manifest::Manifest;
use crate::encode::schema::{Field, FieldKind, Schema};
use crate::encode::{Compression, Format};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::str::FromStr;

pub use crate::encode::schema::{column_name, MAX_IDENTIFIER};

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

/// A `[schema].[table]` name, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: String,
    pub table: String,
}

impl FromStr for TableName {
    type Err = SqlError;
    /// `dbo.orders`, `orders` (schema `dbo`), or bracketed parts: `[my schema].[order.lines]`.
    fn from_str(s: &str) -> Result<Self, SqlError> {
        let bad = |why: &str| SqlError::InvalidName(format!("'{s}': {why}"));
        let mut parts = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                // A bracketed part ends at a `]` that is not doubled.
                let mut part = String::new();
                let mut chars = after.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    if c == ']' {
                        if after[i + 1..].starts_with(']') {
                            part.push(']');
                            chars.next();
                        } else {
                            end = Some(i + 1);
                            break;
                        }
                    } else {
                        part.push(c);
                    }
                }
                let end = end.ok_or_else(|| bad("an unclosed '['"))?;
                parts.push(part);
                rest = &after[end..];
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                let part = &rest[..end];
                if part.contains(['[', ']']) {
                    return Err(bad(
                        "brackets must enclose a whole part, e.g. [dbo].[orders]",
                    ));
                }
                parts.push(part.to_owned());
                rest = &rest[end..];
            }
            if let Some(after) = rest.strip_prefix('.') {
                rest = after;
                if rest.is_empty() {
                    return Err(bad("ends with '.'"));
                }
            } else if !rest.is_empty() {
                return Err(bad("expected '.' between the schema and the table"));
            }
        }
        let (schema, table) = match parts.as_slice() {
            [table] => ("dbo".to_owned(), table.clone()),
            [schema, table] => (schema.clone(), table.clone()),
            _ => return Err(bad("use schema.table, e.g. dbo.orders")),
        };
        for part in [&schema, &table] {
            if part.trim().is_empty() {
                return Err(bad("a part is empty"));
            }
            if part.chars().count() > MAX_IDENTIFIER {
                return Err(bad("a part is longer than 128 characters"));
            }
            if part.chars().any(char::is_control) {
                return Err(bad("control characters are not allowed"));
            }
        }
        Ok(TableName { schema, table })
    }
}

impl TableName {
    /// `[schema].[table]`.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// The same schema, another table name (cut to the identifier limit).
    fn sibling(&self, suffix: &str) -> TableName {
        TableName {
            schema: self.schema.clone(),
            table: column_name(&format!("{}{suffix}", self.table)),
        }
    }
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

/// `[name]`, with `]` doubled.
pub fn quote_ident(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

/// `N'text'`, with `'` doubled.
pub fn quote_string(text: &str) -> String {
    format!("N'{}'", text.replace('\'', "''"))
}

/// `'text'`, with `'` doubled (for options that take a plain string literal).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Text for a `--` comment: JSON-escaped, so it has no line break.
fn comment_text(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"?\"".to_owned())
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

/// `CREDENTIAL = (…)` of COPY INTO. Secrets are never known here: they are placeholders.
fn copy_credential(opts: &SqlOptions) -> String {
    match opts.credential {
        Credential::ManagedIdentity => "CREDENTIAL = (IDENTITY = 'Managed Identity')".into(),
        Credential::Sas => "CREDENTIAL = (IDENTITY = 'Shared Access Signature', SECRET = '<SAS token, without the leading ?>')".into(),
        Credential::ServicePrincipal => format!(
            "CREDENTIAL = (IDENTITY = {}, SECRET = '<client secret>')",
            quote_literal(&format!(
                "{}@https://login.microsoftonline.com/{}/oauth2/token",
                opts.client_id.as_deref().unwrap_or("<client id>"),
                opts.tenant_id.as_deref().unwrap_or("<tenant id>")
            ))
        ),
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
    match (manifest.format, manifest.compression) {
        (_, Compression::Zstd) => Err(SqlError::Unsupported(format!(
            "Synapse cannot read zstd-compressed {} files; pull with --compression {} instead",
            manifest.format,
            if manifest.format == Format::Parquet { "snappy" } else { "gzip" }
        ))),
        (Format::Jsonl, _) if pool == Pool::Dedicated => Err(SqlError::Unsupported(
            "COPY INTO does not read JSON lines; pull with --format parquet or csv, or use --pool serverless (OPENROWSET reads jsonl)".into(),
        )),
        (Format::Csv | Format::Jsonl, Compression::Snappy) => Err(SqlError::Unsupported(
            "snappy is only used inside parquet files".into(),
        )),
        _ => Ok(()),
    }
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
        Pool::Dedicated => dedicated(manifest, opts, &mut out)?,
        Pool::Serverless => serverless(manifest, opts, &mut out)?,
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

fn dedicated(manifest: &Manifest, opts: &SqlOptions, out: &mut String) -> Result<(), SqlError> {
    let schema = manifest.schema.as_ref().ok_or(SqlError::NoSchema)?;
    let table = opts.target.quoted();
    let auto = opts.auto_create_table && manifest.format == Format::Parquet;
    if opts.auto_create_table && !auto {
        return Err(SqlError::Unsupported(
            "AUTO_CREATE_TABLE is only available for parquet; gatelake creates the table for csv"
                .into(),
        ));
    }
    // A batch cannot add a column to a table and then name it: after ALTER TABLE … ADD, each
    // COPY INTO runs in a batch of its own through EXEC.
    let mut altered = false;
    if !auto {
        let _ = writeln!(
            out,
            "IF OBJECT_ID({}) IS NULL\nBEGIN\n    CREATE TABLE {table}\n    (\n{}\n    )\n    WITH (DISTRIBUTION = ROUND_ROBIN, HEAP);\nEND;",
            quote_string(&table),
            column_defs(schema, opts.strings, "        ")
        );
        // Columns this run added (evolve) to a table an earlier run created.
        for change in &manifest.schema_changes {
            if change.change == crate::encode::drift::ChangeKind::Added {
                altered = true;
            }
            let Some(field) = schema.fields.iter().find(|f| f.name == change.field) else {
                continue;
            };
            let col = quote_ident(&column_name(&field.name));
            let ty = sql_type(field, opts.strings);
            match change.change {
                crate::encode::drift::ChangeKind::Added => {
                    let _ = writeln!(
                        out,
                        "IF COL_LENGTH({}, {}) IS NULL\n    ALTER TABLE {table} ADD {col} {ty} NULL;",
                        quote_string(&table),
                        quote_string(&column_name(&field.name))
                    );
                }
                crate::encode::drift::ChangeKind::Widened => {
                    let _ = writeln!(out, "ALTER TABLE {table} ALTER COLUMN {col} {ty} NULL;");
                }
                _ => {}
            }
        }
        out.push('\n');
    }
    let (file_type, compression) = match (manifest.format, manifest.compression) {
        (Format::Parquet, Compression::Snappy) => ("PARQUET", Some("Snappy")),
        (Format::Parquet, Compression::Gzip) => ("PARQUET", Some("GZIP")),
        (Format::Parquet, _) => ("PARQUET", None),
        (_, Compression::Gzip) => ("CSV", Some("GZIP")),
        _ => ("CSV", None),
    };
    // Files grouped by how many leading columns they hold (evolve adds columns later).
    let total = schema.fields.len() as u64;
    let mut groups: Vec<(u64, Vec<&str>)> = Vec::new();
    for f in &manifest.files {
        let cols = f.columns.unwrap_or(total);
        match groups.last_mut() {
            Some((c, urls)) if *c == cols => urls.push(&f.url),
            _ => groups.push((cols, vec![&f.url])),
        }
    }
    let wildcard = opts.files == FileSelection::Wildcard && groups.len() == 1;
    for (cols, urls) in &groups {
        let list = if auto {
            String::new()
        } else {
            let mapped = schema
                .fields
                .iter()
                .take(*cols as usize)
                .enumerate()
                .map(|(i, f)| format!("{} {}", quote_ident(&column_name(&f.name)), i + 1))
                .collect::<Vec<_>>()
                .join(", ");
            format!(" ({mapped})")
        };
        let from = if wildcard {
            format!(
                "    {}",
                quote_literal(&format!(
                    "{}/*.{}",
                    run_folder(manifest, opts.credential)?,
                    manifest.extension
                ))
            )
        } else {
            urls.iter()
                .map(|u| format!("    {}", quote_literal(&endpoint_url(u, opts.credential))))
                .collect::<Vec<_>>()
                .join(",\n")
        };
        let mut with = vec![format!("FILE_TYPE = '{file_type}'")];
        if let Some(c) = compression {
            with.push(format!("COMPRESSION = '{c}'"));
        }
        if file_type == "CSV" {
            with.extend([
                "FIELDTERMINATOR = ','".to_owned(),
                "FIELDQUOTE = '\"'".to_owned(),
                "ROWTERMINATOR = '0x0A'".to_owned(),
                "FIRSTROW = 2".to_owned(),
                "ENCODING = 'UTF8'".to_owned(),
                "DATEFORMAT = 'ymd'".to_owned(),
            ]);
        }
        with.push("MAXERRORS = 0".to_owned());
        with.push(copy_credential(opts));
        if auto {
            with.push("AUTO_CREATE_TABLE = 'ON'".to_owned());
        }
        let copy = format!(
            "COPY INTO {table}{list}\nFROM\n{from}\nWITH (\n    {}\n);",
            with.join(",\n    ")
        );
        if altered {
            let _ = writeln!(out, "EXEC({});", quote_string(&copy));
        } else {
            let _ = writeln!(out, "{copy}");
        }
    }
    Ok(())
}

fn serverless(manifest: &Manifest, opts: &SqlOptions, out: &mut String) -> Result<(), SqlError> {
    let folder = run_folder(manifest, opts.credential)?;
    // The data source is the storage account's container; paths below are relative to it.
    let (root, rel) = split_container(&folder);
    let base = column_name(&format!("gatelake_{}", manifest.job));
    let source = quote_ident(&base);
    let credential_name = match opts.credential {
        Credential::ManagedIdentity => "gatelake_managed_identity".to_owned(),
        Credential::Sas => column_name(&format!("gatelake_sas_{}", manifest.job)),
        Credential::ServicePrincipal => column_name(&format!("gatelake_sp_{}", manifest.job)),
    };
    let (identity, secret) = match opts.credential {
        Credential::ManagedIdentity => ("Managed Identity".to_owned(), None),
        Credential::Sas => (
            "SHARED ACCESS SIGNATURE".to_owned(),
            Some("<SAS token, without the leading ?>"),
        ),
        Credential::ServicePrincipal => (
            format!(
                "{}@https://login.microsoftonline.com/{}/oauth2/token",
                opts.client_id.as_deref().unwrap_or("<client id>"),
                opts.tenant_id.as_deref().unwrap_or("<tenant id>")
            ),
            Some("<client secret>"),
        ),
    };
    let _ = writeln!(
        out,
        "-- Run in a user database of the serverless pool (not master); it needs a master key:\n-- CREATE MASTER KEY ENCRYPTION BY PASSWORD = '<strong password>';"
    );
    let _ = writeln!(
        out,
        "IF NOT EXISTS (SELECT 1 FROM sys.database_scoped_credentials WHERE name = {})\n    CREATE DATABASE SCOPED CREDENTIAL {} WITH IDENTITY = {}{};",
        quote_string(&credential_name),
        quote_ident(&credential_name),
        quote_literal(&identity),
        secret
            .map(|s| format!(", SECRET = '{s}'"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "IF NOT EXISTS (SELECT 1 FROM sys.external_data_sources WHERE name = {})\n    CREATE EXTERNAL DATA SOURCE {source} WITH (LOCATION = {}, CREDENTIAL = {});",
        quote_string(&base),
        quote_literal(&root),
        quote_ident(&credential_name)
    );
    let pattern = format!("{rel}/*.{}", manifest.extension);
    let format_name = column_name(&format!(
        "gatelake_{}_{}",
        manifest.format, manifest.compression
    ));
    let table = opts.target.quoted();
    let view = opts.target.sibling("_view").quoted();
    match manifest.format {
        Format::Parquet | Format::Csv => {
            let schema = manifest.schema.as_ref().ok_or(SqlError::NoSchema)?;
            let format_def = match manifest.format {
                Format::Parquet => format!(
                    "FORMAT_TYPE = PARQUET{}",
                    match manifest.compression {
                        Compression::Snappy => ", DATA_COMPRESSION = 'org.apache.hadoop.io.compress.SnappyCodec'",
                        Compression::Gzip => ", DATA_COMPRESSION = 'org.apache.hadoop.io.compress.GzipCodec'",
                        _ => "",
                    }
                ),
                _ => format!(
                    "FORMAT_TYPE = DELIMITEDTEXT, FORMAT_OPTIONS (FIELD_TERMINATOR = ',', STRING_DELIMITER = '\"', FIRST_ROW = 2, USE_TYPE_DEFAULT = FALSE, ENCODING = 'UTF8', PARSER_VERSION = '{}'){}",
                    if manifest.compression == Compression::Gzip { "1.0" } else { "2.0" },
                    if manifest.compression == Compression::Gzip {
                        ", DATA_COMPRESSION = 'org.apache.hadoop.io.compress.GzipCodec'"
                    } else {
                        ""
                    }
                ),
            };
            let _ = writeln!(
                out,
                "IF NOT EXISTS (SELECT 1 FROM sys.external_file_formats WHERE name = {})\n    CREATE EXTERNAL FILE FORMAT {} WITH ({format_def});",
                quote_string(&format_name),
                quote_ident(&format_name)
            );
            let _ = writeln!(
                out,
                "\n-- The run as a table (an external table's columns are fixed: drop and re-create it for another run).\nIF OBJECT_ID({}) IS NULL\n    CREATE EXTERNAL TABLE {table}\n    (\n{}\n    )\n    WITH (LOCATION = {}, DATA_SOURCE = {source}, FILE_FORMAT = {});",
                quote_string(&table),
                column_defs_external(schema, opts.strings),
                quote_literal(&pattern),
                quote_ident(&format_name)
            );
            let with_cols = schema
                .fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let ty = sql_type(f, opts.strings);
                    if manifest.format == Format::Csv {
                        format!("{} {ty} {}", quote_ident(&column_name(&f.name)), i + 1)
                    } else {
                        format!("{} {ty}", quote_ident(&column_name(&f.name)))
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let rowset = match manifest.format {
                Format::Parquet => format!(
                    "OPENROWSET(BULK {}, DATA_SOURCE = {}, FORMAT = 'PARQUET') WITH ({with_cols}) AS [rows]",
                    quote_literal(&pattern),
                    quote_literal(&base)
                ),
                // Bound by position (FIRSTROW = 2 skips the header): with HEADER_ROW = TRUE
                // the WITH columns would bind by the header's names, which a shortened column
                // name does not match. Gzip needs parser 1.0 (2.0 has no DATA_COMPRESSION).
                _ => format!(
                    "OPENROWSET(BULK {}, DATA_SOURCE = {}, FORMAT = 'CSV', {}FIRSTROW = 2, FIELDTERMINATOR = ',', FIELDQUOTE = '\"') WITH ({with_cols}) AS [rows]",
                    quote_literal(&pattern),
                    quote_literal(&base),
                    csv_parser(manifest.compression)
                ),
            };
            view_statement(out, &view, &format!("SELECT * FROM {rowset}"));
        }
        Format::Jsonl => {
            // JSON lines read as one-column CSV: 0x0b never occurs in JSON text.
            let rowset = format!(
                "OPENROWSET(BULK {}, DATA_SOURCE = {}, FORMAT = 'CSV', {}FIELDTERMINATOR = '0x0b', FIELDQUOTE = '0x0b', ROWTERMINATOR = '0x0a') WITH ([doc] NVARCHAR(MAX)) AS [rows]",
                quote_literal(&pattern),
                quote_literal(&base),
                csv_parser(manifest.compression)
            );
            let columns = match &manifest.schema {
                Some(schema) if !schema.fields.is_empty() => schema
                    .fields
                    .iter()
                    .map(|f| {
                        let path =
                            format!("$.{}", serde_json::to_string(&f.name).unwrap_or_default());
                        let getter = if f.kind == FieldKind::Json {
                            "JSON_QUERY"
                        } else {
                            "JSON_VALUE"
                        };
                        let value = format!("{getter}([doc], {})", quote_string(&path));
                        let ty = match f.kind {
                            FieldKind::Json | FieldKind::Utf8 => None,
                            _ => Some(sql_type(f, opts.strings)),
                        };
                        let expr = match ty {
                            Some(t) => format!("TRY_CAST({value} AS {t})"),
                            None => value,
                        };
                        format!("{expr} AS {}", quote_ident(&column_name(&f.name)))
                    })
                    .collect::<Vec<_>>()
                    .join(",\n    "),
                _ => "[doc]".to_owned(),
            };
            let _ = writeln!(
                out,
                "IF NOT EXISTS (SELECT 1 FROM sys.external_file_formats WHERE name = {})\n    CREATE EXTERNAL FILE FORMAT {} WITH (FORMAT_TYPE = DELIMITEDTEXT, FORMAT_OPTIONS (FIELD_TERMINATOR = '0x0b', STRING_DELIMITER = '0x0b'){});",
                quote_string(&format_name),
                quote_ident(&format_name),
                if manifest.compression == Compression::Gzip {
                    ", DATA_COMPRESSION = 'org.apache.hadoop.io.compress.GzipCodec'"
                } else {
                    ""
                }
            );
            let _ = writeln!(
                out,
                "\n-- The run's records as JSON text, one row each.\nIF OBJECT_ID({}) IS NULL\n    CREATE EXTERNAL TABLE {table} ([doc] NVARCHAR(MAX) NULL)\n    WITH (LOCATION = {}, DATA_SOURCE = {source}, FILE_FORMAT = {});",
                quote_string(&table),
                quote_literal(&pattern),
                quote_ident(&format_name)
            );
            view_statement(out, &view, &format!("SELECT\n    {columns}\nFROM {rowset}"));
        }
    }
    Ok(())
}

/// The CSV parser options of a serverless OPENROWSET: gzip is read by parser 1.0 with
/// `DATA_COMPRESSION = 'GZIP'` (parser 2.0 does not take that option).
fn csv_parser(compression: Compression) -> &'static str {
    match compression {
        Compression::Gzip => "PARSER_VERSION = '1.0', DATA_COMPRESSION = 'GZIP', ",
        _ => "PARSER_VERSION = '2.0', ",
    }
}

fn column_defs_external(schema: &Schema, strings: StringSizing) -> String {
    column_defs(schema, strings, "        ")
}

/// `CREATE OR ALTER VIEW` must start a batch; `EXEC` gives it one without `GO`.
fn view_statement(out: &mut String, view: &str, select: &str) {
    let body = format!("CREATE OR ALTER VIEW {view} AS\n{select};");
    let _ = writeln!(
        out,
        "\n-- The run through OPENROWSET, as a view.\nEXEC({});",
        quote_string(&body)
    );
}

/// `https://acct.dfs.core.windows.net/container/a/b` → (`…/container`, `a/b`).
fn split_container(folder: &str) -> (String, String) {
    let Some(scheme_end) = folder.find("://") else {
        return (folder.to_owned(), String::new());
    };
    let after = &folder[scheme_end + 3..];
    let mut segs = after.splitn(3, '/');
    let host = segs.next().unwrap_or_default();
    let container = segs.next().unwrap_or_default();
    let rest = segs.next().unwrap_or_default();
    // The emulator's path-style URLs carry the account first.
    if host.starts_with("127.0.0.1") || host.starts_with("localhost") {
        let mut parts = rest.splitn(2, '/');
        let real_container = parts.next().unwrap_or_default();
        let real_rest = parts.next().unwrap_or_default();
        return (
            format!(
                "{}{host}/{container}/{real_container}",
                &folder[..scheme_end + 3]
            ),
            real_rest.to_owned(),
        );
    }
    (
        format!("{}{host}/{container}", &folder[..scheme_end + 3]),
        rest.to_owned(),
    )
}

/// The `load.sql` a run writes beside its manifest: a dedicated pool's `COPY INTO` for csv
/// and parquet (a serverless view for jsonl, which COPY INTO cannot read), managed identity,
/// the explicit file list, into `[dbo].[<job>]`. When Synapse cannot read the run at all
/// (zstd), the script is a comment saying why, so nobody runs a script that must fail.
pub fn render_for_run(manifest: &Manifest) -> String {
    let target = TableName {
        schema: "dbo".to_owned(),
        table: column_name(&manifest.job),
    };
    let mut opts = SqlOptions::new(target);
    if manifest.format == Format::Jsonl {
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::encode::drift::{ChangeKind, SchemaChange};
    use crate::load::manifest::{ManifestFile, ManifestSource, ManifestTotals, MANIFEST_VERSION};
    use std::path::PathBuf;

    fn field(name: &str, kind: FieldKind, max_length: Option<u64>) -> Field {
        Field {
            name: name.into(),
            kind,
            nullable: true,
            max_length,
        }
    }

    fn manifest(format: Format, compression: Compression, schema: Option<Schema>) -> Manifest {
        let ext = crate::encode::EncodeOptions::new(format, Some(compression)).extension();
        let files: Vec<ManifestFile> = (0..2)
            .map(|i| ManifestFile {
                path: format!("20261124T230509Z-1a2b/part-0000{i}.{ext}"),
                url: format!(
                    "https://lakeacct.blob.core.windows.net/raw/orders/20261124T230509Z-1a2b/part-0000{i}.{ext}"
                ),
                seq: i,
                rows: 100,
                bytes: 4096,
                raw_bytes: 20000,
                sha256: "00".into(),
                content_md5: "AA==".into(),
                columns: None,
            })
            .collect();
        Manifest {
            manifest_version: MANIFEST_VERSION,
            tool: "gatelake 0.1.0".into(),
            job: "orders".into(),
            run_id: "20261124T230509Z-1a2b".into(),
            source: ManifestSource {
                url: "https://api.example/prod/orders".into(),
                pagination: "cursor".into(),
                records_path: "items".into(),
                auth: "iam".into(),
                pages: 2,
                first_request: None,
                last_request: None,
            },
            destination: "https://lakeacct.blob.core.windows.net/raw/orders/20261124T230509Z-1a2b"
                .into(),
            format,
            compression,
            extension: ext,
            schema,
            totals: ManifestTotals {
                files: 2,
                rows: 200,
                bytes: 8192,
                raw_bytes: 40000,
            },
            files,
            started_at: "2026-11-24T23:05:09Z".into(),
            finished_at: "2026-11-24T23:06:00Z".into(),
            identities: Vec::new(),
            schema_policy: Default::default(),
            schema_changes: Vec::new(),
            watermark: None,
            load_sql: None,
            rejected: vec![],
            outcome: Default::default(),
        }
    }

    fn orders_schema() -> Schema {
        Schema {
            fields: vec![
                field("id", FieldKind::Int64, None),
                field("name", FieldKind::Utf8, Some(15)),
                field("amount", FieldKind::Float64, None),
                field("active", FieldKind::Boolean, None),
                field("created_at", FieldKind::Timestamp, None),
                field("customer", FieldKind::Json, None),
                field("note", FieldKind::Utf8, Some(3000)),
            ],
        }
    }

    fn golden(name: &str, got: &str) {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden", "sql", name]
            .iter()
            .collect();
        if std::env::var_os("GATELAKE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing: run the test with GATELAKE_BLESS=1 to write it",
                path.display()
            )
        });
        assert_eq!(
            got, want,
            "{name} differs from its golden file (GATELAKE_BLESS=1 rewrites it)"
        );
    }

    #[test]
    fn golden_scripts_for_every_pool_credential_and_format() {
        let formats = [
            (
                "parquet",
                Format::Parquet,
                Compression::Snappy,
                Some(orders_schema()),
            ),
            ("csv", Format::Csv, Compression::Gzip, Some(orders_schema())),
            (
                "jsonl",
                Format::Jsonl,
                Compression::Gzip,
                Some(orders_schema()),
            ),
        ];
        let pools = [
            ("dedicated", Pool::Dedicated),
            ("serverless", Pool::Serverless),
        ];
        let credentials = [
            ("mi", Credential::ManagedIdentity),
            ("sas", Credential::Sas),
            ("sp", Credential::ServicePrincipal),
        ];
        for (fname, format, compression, schema) in &formats {
            let m = manifest(*format, *compression, schema.clone());
            for (pname, pool) in pools {
                for (cname, credential) in credentials {
                    let mut opts = SqlOptions::new("dbo.orders".parse().unwrap());
                    opts.pool = pool;
                    opts.credential = credential;
                    if credential == Credential::ServicePrincipal {
                        opts.client_id = Some("00000000-1111-2222-3333-444444444444".into());
                    }
                    let name = format!("{pname}-{cname}-{fname}.sql");
                    match render(&m, &opts) {
                        Ok(sql) => golden(&name, &sql),
                        Err(e) => {
                            assert!(
                                *format == Format::Jsonl && pool == Pool::Dedicated,
                                "{name}: {e}"
                            );
                            assert!(e.to_string().contains("COPY INTO does not read JSON lines"));
                        }
                    }
                }
            }
        }
        // Variants: wildcard, AUTO_CREATE_TABLE, strings as MAX, an evolved run.
        let m = manifest(Format::Parquet, Compression::Snappy, Some(orders_schema()));
        let mut opts = SqlOptions::new("[stage].[orders]".parse().unwrap());
        opts.files = FileSelection::Wildcard;
        opts.auto_create_table = true;
        golden(
            "dedicated-mi-parquet-wildcard-autocreate.sql",
            &render(&m, &opts).unwrap(),
        );
        let mut evolved = manifest(Format::Csv, Compression::Gzip, Some(orders_schema()));
        evolved.files[0].columns = Some(5);
        let mut added = SchemaChange::new("customer", ChangeKind::Added);
        added.to = Some(FieldKind::Json);
        added.chunk = Some(1);
        let mut widened = SchemaChange::new("amount", ChangeKind::Widened);
        widened.from = Some(FieldKind::Int64);
        widened.to = Some(FieldKind::Float64);
        evolved.schema_changes = vec![added, widened];
        let mut opts = SqlOptions::new("dbo.orders".parse().unwrap());
        opts.strings = StringSizing::Max;
        golden(
            "dedicated-mi-csv-evolved.sql",
            &render(&evolved, &opts).unwrap(),
        );
    }

    #[test]
    fn unreadable_runs_are_refused_with_the_fix() {
        let m = manifest(Format::Parquet, Compression::Zstd, Some(orders_schema()));
        let opts = SqlOptions::new("dbo.orders".parse().unwrap());
        let err = render(&m, &opts).unwrap_err().to_string();
        assert!(
            err.contains("zstd") && err.contains("--compression snappy"),
            "{err}"
        );
        let script = render_for_run(&m);
        assert!(
            script.starts_with("-- No load script") && !script.contains("COPY"),
            "{script}"
        );
        let mut csv = manifest(Format::Csv, Compression::Gzip, Some(orders_schema()));
        let mut opts = SqlOptions::new("dbo.orders".parse().unwrap());
        opts.auto_create_table = true;
        assert!(render(&csv, &opts)
            .unwrap_err()
            .to_string()
            .contains("only available for parquet"));
        csv.files.clear();
        assert!(matches!(
            render(&csv, &SqlOptions::new("dbo.x".parse().unwrap())),
            Err(SqlError::NoFiles)
        ));
    }

    #[test]
    fn table_names_are_parsed_and_validated() {
        let ok = [
            ("orders", ("dbo", "orders")),
            ("stage.orders", ("stage", "orders")),
            ("[my schema].[order.lines]", ("my schema", "order.lines")),
            ("[a]]b].[c'd]", ("a]b", "c'd")),
        ];
        for (text, (schema, table)) in ok {
            let t: TableName = text.parse().unwrap();
            assert_eq!(
                (t.schema.as_str(), t.table.as_str()),
                (schema, table),
                "{text}"
            );
        }
        assert_eq!(
            "[a]]b].[c'd]".parse::<TableName>().unwrap().quoted(),
            "[a]]b].[c'd]"
        );
        for bad in [
            "",
            "a.b.c",
            "a.",
            "[a",
            "a]b.c",
            "dbo.",
            "x\ny",
            &"t".repeat(129),
        ] {
            assert!(bad.parse::<TableName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostile_field_names_never_escape_their_quotes() {
        let hostile = [
            "a]; DROP TABLE [dbo].[x]; --",
            "it's",
            "semi;colon",
            "new\nline -- comment",
            "ünïcödé 東京 🚀",
            "[bracketed]",
            "quote\"d",
            "$.path",
        ];
        let long = "x".repeat(200);
        let long2 = format!("{}y", "x".repeat(199));
        let mut fields: Vec<Field> = hostile
            .iter()
            .map(|n| field(n, FieldKind::Utf8, Some(10)))
            .collect();
        fields.push(field(&long, FieldKind::Int64, None));
        fields.push(field(&long2, FieldKind::Json, None));
        let schema = Schema { fields };
        for format in [Format::Parquet, Format::Csv, Format::Jsonl] {
            let compression = if format == Format::Parquet {
                Compression::Snappy
            } else {
                Compression::Gzip
            };
            let m = manifest(format, compression, Some(schema.clone()));
            for pool in [Pool::Dedicated, Pool::Serverless] {
                let mut opts = SqlOptions::new("dbo.orders".parse().unwrap());
                opts.pool = pool;
                let Ok(sql) = render(&m, &opts) else {
                    continue;
                };
                let name = format!("hostile-{pool:?}-{format}.sql").to_lowercase();
                golden(&name, &sql);
                assert_balanced(&sql);
                // Every identifier fits SQL's limit, and the two long names stay distinct.
                let long_col = column_name(&long);
                assert_eq!(long_col.chars().count(), MAX_IDENTIFIER);
                assert_ne!(long_col, column_name(&long2));
                assert!(sql.contains(&quote_ident(&long_col)), "{sql}");
                // Every column of the parquet file is named, as is, in the script: serverless
                // binds parquet columns by name, COPY INTO by field number.
                if format == Format::Parquet {
                    for f in schema.to_arrow().fields() {
                        assert!(sql.contains(&quote_ident(f.name())), "{}: {sql}", f.name());
                    }
                }
                // The injection attempt only appears inside a bracketed identifier.
                assert!(sql.contains("[a]]; DROP TABLE [dbo]].[x]]; --]"), "{sql}");
                // No line of the script starts with text from a field name.
                assert!(!sql
                    .lines()
                    .any(|l| l.trim_start().starts_with("line -- comment")));
            }
        }
    }

    /// Outside comments, brackets and quotes pair up: nothing a field name holds ends a
    /// bracketed identifier or string literal early.
    fn assert_balanced(sql: &str) {
        let mut chars = sql.chars().peekable();
        let mut in_comment = false;
        // Depth of strings: inside EXEC(N'…'), the doubled quotes of the inner script count.
        while let Some(c) = chars.next() {
            if in_comment {
                if c == '\n' {
                    in_comment = false;
                }
                continue;
            }
            match c {
                '-' if chars.peek() == Some(&'-') => in_comment = true,
                '[' => loop {
                    match chars.next() {
                        Some(']') if chars.peek() == Some(&']') => {
                            chars.next();
                        }
                        Some(']') => break,
                        Some(_) => {}
                        None => panic!("unclosed [ in\n{sql}"),
                    }
                },
                '\'' => loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                        }
                        Some('\'') => break,
                        Some(_) => {}
                        None => panic!("unclosed ' in\n{sql}"),
                    }
                },
                ']' => panic!("stray ] in\n{sql}"),
                _ => {}
            }
        }
    }

    #[test]
    fn strings_are_sized_from_the_observed_maximum() {
        let cases = [
            (None, "NVARCHAR(MAX)"),
            (Some(0), "NVARCHAR(32)"),
            (Some(15), "NVARCHAR(32)"),
            (Some(17), "NVARCHAR(64)"),
            (Some(1500), "NVARCHAR(4000)"),
            (Some(2000), "NVARCHAR(4000)"),
            (Some(2001), "NVARCHAR(MAX)"),
        ];
        for (max, want) in cases {
            assert_eq!(nvarchar(max), want, "{max:?}");
        }
        assert_eq!(
            endpoint_url(
                "https://a.blob.core.windows.net/c/x",
                Credential::ManagedIdentity
            ),
            "https://a.dfs.core.windows.net/c/x"
        );
        assert_eq!(
            endpoint_url("https://a.dfs.core.windows.net/c/x", Credential::Sas),
            "https://a.blob.core.windows.net/c/x"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:1/devstoreaccount1/c/x", Credential::Sas),
            "http://127.0.0.1:1/devstoreaccount1/c/x"
        );
    }
}
