//! A dedicated pool's script: `CREATE TABLE` (or `AUTO_CREATE_TABLE` for parquet), the
//! columns an evolving run added, and `COPY INTO` from the run's files, grouped by how many
//! leading columns each file holds. The format's part — `FILE_TYPE` and its options, or why
//! COPY INTO cannot read it — comes from its descriptor ([`crate::encode::Synapse`]).

use super::{
    column_defs, column_name, endpoint_url, quote_ident, quote_literal, quote_string, run_folder,
    sql_type, Credential, FileSelection, SqlError, SqlOptions,
};
use crate::encode::drift::ChangeKind;
use crate::encode::format::or_list;
use crate::encode::{Compression, Format, SynapseFileType};
use crate::load::manifest::Manifest;
use std::fmt::Write as _;

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

/// `COPY INTO`'s `COMPRESSION` for a codec, if it names one.
fn copy_codec(codec: Compression) -> Option<&'static str> {
    match codec {
        Compression::Snappy => Some("Snappy"),
        Compression::Gzip => Some("GZIP"),
        Compression::None | Compression::Zstd => None,
    }
}

/// The dedicated pool's script for `manifest`, appended to `out`.
pub(super) fn copy_into(
    manifest: &Manifest,
    opts: &SqlOptions,
    out: &mut String,
) -> Result<(), SqlError> {
    let synapse = manifest.format.synapse();
    let format_options = synapse
        .copy_into
        .map_err(|why| SqlError::Unsupported(why.to_owned()))?;
    let schema = manifest.schema.as_ref().ok_or(SqlError::NoSchema)?;
    let table = opts.target.quoted();
    let auto = opts.auto_create_table && synapse.file_type == SynapseFileType::Parquet;
    if opts.auto_create_table && !auto {
        let creatable = Format::ALL
            .iter()
            .filter(|f| f.synapse().file_type == SynapseFileType::Parquet)
            .map(|f| f.name().to_owned());
        return Err(SqlError::Unsupported(format!(
            "AUTO_CREATE_TABLE is only available for {}; gatelake creates the table for {}",
            or_list(creatable),
            manifest.format
        )));
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
            if change.change == ChangeKind::Added {
                altered = true;
            }
            let Some(field) = schema.fields.iter().find(|f| f.name == change.field) else {
                continue;
            };
            let col = quote_ident(&column_name(&field.name));
            let ty = sql_type(field, opts.strings);
            match change.change {
                ChangeKind::Added => {
                    let _ = writeln!(
                        out,
                        "IF COL_LENGTH({}, {}) IS NULL\n    ALTER TABLE {table} ADD {col} {ty} NULL;",
                        quote_string(&table),
                        quote_string(&column_name(&field.name))
                    );
                }
                ChangeKind::Widened => {
                    let _ = writeln!(out, "ALTER TABLE {table} ALTER COLUMN {col} {ty} NULL;");
                }
                _ => {}
            }
        }
        out.push('\n');
    }
    let file_type = synapse.file_type.copy_file_type();
    let compression = copy_codec(manifest.compression);
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
        with.extend(format_options.iter().map(|o| (*o).to_owned()));
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
