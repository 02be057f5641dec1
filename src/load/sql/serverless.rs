//! A serverless pool's script: a credential and data source for the run's container, an
//! external file format, an external table over the run's files and a view through
//! `OPENROWSET`. Columnar runs get typed columns; records as received are read as one JSON
//! text a line and taken apart with `JSON_VALUE`. The format's part — its parser, options and
//! codecs — comes from its descriptor ([`crate::encode::Synapse`]).

use super::{
    column_defs, column_name, quote_ident, quote_literal, quote_string, run_folder, sql_type,
    Credential, SqlError, SqlOptions, StringSizing,
};
use crate::encode::schema::{FieldKind, Schema};
use crate::encode::{Compression, Synapse, SynapseFileType};
use crate::load::manifest::Manifest;
use std::fmt::Write as _;

/// The serverless pool's script for `manifest`, appended to `out`.
pub(super) fn openrowset(
    manifest: &Manifest,
    opts: &SqlOptions,
    out: &mut String,
) -> Result<(), SqlError> {
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
    let synapse = manifest.format.synapse();
    let _ = writeln!(
        out,
        "IF NOT EXISTS (SELECT 1 FROM sys.external_file_formats WHERE name = {})\n    CREATE EXTERNAL FILE FORMAT {} WITH ({});",
        quote_string(&format_name),
        quote_ident(&format_name),
        external_file_format(synapse, manifest.compression)
    );
    if manifest.format.columnar() {
        let schema = manifest.schema.as_ref().ok_or(SqlError::NoSchema)?;
        let _ = writeln!(
            out,
            "\n-- The run as a table (an external table's columns are fixed: drop and re-create it for another run).\nIF OBJECT_ID({}) IS NULL\n    CREATE EXTERNAL TABLE {table}\n    (\n{}\n    )\n    WITH (LOCATION = {}, DATA_SOURCE = {source}, FILE_FORMAT = {});",
            quote_string(&table),
            column_defs_external(schema, opts.strings),
            quote_literal(&pattern),
            quote_ident(&format_name)
        );
        // Parquet binds columns by name, delimited text by position (its header row is
        // skipped: with HEADER_ROW = TRUE the WITH columns would bind by the header's names,
        // which a shortened column name does not match).
        let by_position = synapse.file_type == SynapseFileType::DelimitedText;
        let with_cols = schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let ty = sql_type(f, opts.strings);
                if by_position {
                    format!("{} {ty} {}", quote_ident(&column_name(&f.name)), i + 1)
                } else {
                    format!("{} {ty}", quote_ident(&column_name(&f.name)))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let rowset = rowset(manifest, &pattern, &base, &with_cols);
        view_statement(out, &view, &format!("SELECT * FROM {rowset}"));
    } else {
        // Records as received: one JSON text a line, read as a one-column row.
        let rowset = rowset(manifest, &pattern, &base, "[doc] NVARCHAR(MAX)");
        let columns = match &manifest.schema {
            Some(schema) if !schema.fields.is_empty() => schema
                .fields
                .iter()
                .map(|f| {
                    let path = format!("$.{}", serde_json::to_string(&f.name).unwrap_or_default());
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
            "\n-- The run's records as JSON text, one row each.\nIF OBJECT_ID({}) IS NULL\n    CREATE EXTERNAL TABLE {table} ([doc] NVARCHAR(MAX) NULL)\n    WITH (LOCATION = {}, DATA_SOURCE = {source}, FILE_FORMAT = {});",
            quote_string(&table),
            quote_literal(&pattern),
            quote_ident(&format_name)
        );
        view_statement(out, &view, &format!("SELECT\n    {columns}\nFROM {rowset}"));
    }
    Ok(())
}

/// The `DATA_COMPRESSION` of an external file format for a codec, if it needs one.
fn hadoop_codec(codec: Compression) -> Option<&'static str> {
    match codec {
        Compression::Snappy => Some("org.apache.hadoop.io.compress.SnappyCodec"),
        Compression::Gzip => Some("org.apache.hadoop.io.compress.GzipCodec"),
        Compression::None | Compression::Zstd => None,
    }
}

/// The body of `CREATE EXTERNAL FILE FORMAT … WITH (…)`: the format's type and options, the
/// CSV parser version when the format states one, and the codec.
fn external_file_format(synapse: &Synapse, codec: Compression) -> String {
    let mut def = format!("FORMAT_TYPE = {}", synapse.file_type.external_format_type());
    let mut options: Vec<&str> = synapse.external_options.to_vec();
    if synapse.external_parser_version {
        options.push(if codec == Compression::Gzip {
            "PARSER_VERSION = '1.0'"
        } else {
            "PARSER_VERSION = '2.0'"
        });
    }
    if !options.is_empty() {
        let _ = write!(def, ", FORMAT_OPTIONS ({})", options.join(", "));
    }
    if let Some(codec) = hadoop_codec(codec) {
        let _ = write!(def, ", DATA_COMPRESSION = '{codec}'");
    }
    def
}

/// `OPENROWSET(BULK …) WITH (…) AS [rows]` over the run's files: the format's reader and
/// options, and for delimited text the parser its codec needs.
fn rowset(manifest: &Manifest, pattern: &str, base: &str, with_cols: &str) -> String {
    let synapse = manifest.format.synapse();
    let mut options = vec![format!(
        "FORMAT = '{}'",
        synapse.file_type.openrowset_format()
    )];
    if synapse.file_type == SynapseFileType::DelimitedText {
        options.push(csv_parser(manifest.compression).to_owned());
    }
    options.extend(synapse.openrowset_options.iter().map(|o| (*o).to_owned()));
    format!(
        "OPENROWSET(BULK {}, DATA_SOURCE = {}, {}) WITH ({with_cols}) AS [rows]",
        quote_literal(pattern),
        quote_literal(base),
        options.join(", ")
    )
}

/// The CSV parser options of a serverless OPENROWSET: gzip is read by parser 1.0 with
/// `DATA_COMPRESSION = 'GZIP'` (parser 2.0 does not take that option).
fn csv_parser(compression: Compression) -> &'static str {
    match compression {
        Compression::Gzip => "PARSER_VERSION = '1.0', DATA_COMPRESSION = 'GZIP'",
        _ => "PARSER_VERSION = '2.0'",
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
