//! The load SQL's tests: golden scripts for every pool, credential and format, refusals,
//! and hostile names.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::encode::drift::{ChangeKind, SchemaChange};
use crate::encode::Compression;
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
        land: None,
        objects: vec![],
        objects_skipped: 0,
        partitions: Vec::new(),
        lineage: None,
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
            Format::PARQUET,
            Compression::Snappy,
            Some(orders_schema()),
        ),
        ("csv", Format::CSV, Compression::Gzip, Some(orders_schema())),
        (
            "jsonl",
            Format::JSONL,
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
                            *format == Format::JSONL && pool == Pool::Dedicated,
                            "{name}: {e}"
                        );
                        assert!(e.to_string().contains("COPY INTO does not read JSON lines"));
                    }
                }
            }
        }
    }
    // Variants: wildcard, AUTO_CREATE_TABLE, strings as MAX, an evolved run.
    let m = manifest(Format::PARQUET, Compression::Snappy, Some(orders_schema()));
    let mut opts = SqlOptions::new("[stage].[orders]".parse().unwrap());
    opts.files = FileSelection::Wildcard;
    opts.auto_create_table = true;
    golden(
        "dedicated-mi-parquet-wildcard-autocreate.sql",
        &render(&m, &opts).unwrap(),
    );
    let mut evolved = manifest(Format::CSV, Compression::Gzip, Some(orders_schema()));
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
    let m = manifest(Format::PARQUET, Compression::Zstd, Some(orders_schema()));
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
    let mut csv = manifest(Format::CSV, Compression::Gzip, Some(orders_schema()));
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
    for format in [Format::PARQUET, Format::CSV, Format::JSONL] {
        let compression = if format == Format::PARQUET {
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
            if format == Format::PARQUET {
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

#[test]
fn every_refusal_names_its_fix_in_full() {
    let table = || SqlOptions::new("dbo.orders".parse().unwrap());
    let dedicated = table();
    let mut serverless = table();
    serverless.pool = Pool::Serverless;
    let mut auto = table();
    auto.auto_create_table = true;
    let cases = [
        (Format::PARQUET, Compression::Zstd, &dedicated, "Synapse cannot read zstd-compressed parquet files; pull with --compression snappy instead"),
        (Format::CSV, Compression::Zstd, &serverless, "Synapse cannot read zstd-compressed csv files; pull with --compression gzip instead"),
        (Format::JSONL, Compression::Zstd, &dedicated, "Synapse cannot read zstd-compressed jsonl files; pull with --compression gzip instead"),
        (Format::JSONL, Compression::Gzip, &dedicated, "COPY INTO does not read JSON lines; pull with --format parquet or csv, or use --pool serverless (OPENROWSET reads jsonl)"),
        (Format::JSONL, Compression::Snappy, &dedicated, "COPY INTO does not read JSON lines; pull with --format parquet or csv, or use --pool serverless (OPENROWSET reads jsonl)"),
        (Format::JSONL, Compression::Snappy, &serverless, "snappy is only used inside parquet files"),
        (Format::CSV, Compression::Snappy, &dedicated, "snappy is only used inside parquet files"),
        (Format::CSV, Compression::Gzip, &auto, "AUTO_CREATE_TABLE is only available for parquet; gatelake creates the table for csv"),
    ];
    for (format, compression, opts, want) in cases {
        let m = manifest(format, compression, Some(orders_schema()));
        let got = render(&m, opts).unwrap_err().to_string();
        assert_eq!(got, want, "{format} {compression} {:?}", opts.pool);
    }
    // A run COPY INTO cannot read gets a serverless script by default.
    let jsonl = manifest(Format::JSONL, Compression::Gzip, Some(orders_schema()));
    assert!(render_for_run(&jsonl).contains("OPENROWSET"));
}
