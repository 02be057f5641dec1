//! Synapse-ready output, end to end: the real binary pulls from the API Gateway emulator into
//! Azurite, and independent readers check the result — pyarrow (from the venv that
//! `scripts/test.sh` prepares, `GATELAKE_TEST_PYTHON`) reads the parquet with the documented
//! types, Python's csv module parses the csv — against every served record (commas, quotes,
//! line breaks, tabs, emoji, int64 near ±2^62, nulls, nested objects and arrays). Also: the
//! run's `load.sql` and `gatelake sql`, the manifest's checksums, and schema drift across runs
//! under each policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use gatelake::sink::Sink;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use support::apigw::{self, ApiConfig, ApiGateway};
use support::azurite::azurite;
use support::manifest::check_manifest;
use support::run::{gatelake, s, text};

/// The venv's python with pyarrow; a missing one fails the test (never skips it).
fn python() -> String {
    std::env::var("GATELAKE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "GATELAKE_TEST_PYTHON is not set: these tests read parquet with pyarrow. Run them with \
             `bash scripts/test.sh`, which installs it into .testbed/venv."
        )
    })
}

fn storage_env() -> Vec<(String, String)> {
    vec![(
        "AZURE_STORAGE_CONNECTION_STRING".into(),
        azurite().connection_string(),
    )]
}

fn cursor_args(api: &ApiGateway) -> Vec<String> {
    s(&[
        "pull",
        "--url",
        &api.url("/prod/cursor"),
        "--paginate",
        "cursor",
        "--cursor-path",
        "next_cursor",
        "--records",
        "items",
        "--output",
        "json",
        "--progress",
        "none",
    ])
}

/// The parquet types the README documents for the emulator's records.
const TYPES: [(&str, &str); 9] = [
    ("id", "int64"),
    ("name", "string"),
    ("amount", "double"),
    ("active", "bool"),
    ("created_at", "timestamp[us, tz=UTC]"),
    ("tags", "string"),
    ("customer", "string"),
    ("note", "string"),
    ("big", "int64"),
];

#[tokio::test]
async fn parquet_and_csv_read_back_with_independent_readers() {
    let python = python();
    let records = 437;
    let api = ApiGateway::start(ApiConfig {
        records,
        page_size: 50,
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("synapse").await;
    let dir = tempfile::tempdir().unwrap();
    let expected: Vec<Value> = (0..records).map(apigw::record).collect();
    for format in ["parquet", "csv"] {
        let mut a = cursor_args(&api);
        a.extend(s(&["--format", format, "--chunk-rows", "150", "--dest"]));
        a.push(azurite().dest_url(&container, format));
        let out = gatelake(a, storage_env()).await;
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        let run = summary["run_id"].as_str().unwrap();
        let manifest: Value = serde_json::from_slice(
            &sink
                .get(&format!("{format}/{run}/_manifest.json"))
                .await
                .unwrap()
                .unwrap()
                .data,
        )
        .unwrap();
        // Documented fields, checksums as stored.
        for key in [
            "manifest_version",
            "tool",
            "run_id",
            "job",
            "source",
            "identities",
            "format",
            "compression",
            "schema",
            "schema_policy",
            "schema_changes",
            "files",
            "totals",
            "started_at",
            "finished_at",
            "watermark",
            "load_sql",
        ] {
            assert!(
                manifest.get(key).is_some(),
                "manifest lacks {key}: {manifest}"
            );
        }
        assert_eq!(manifest["identities"][1]["role"], "storage", "{manifest}");
        check_manifest(&manifest);
        let mut paths = Vec::new();
        for (i, file) in manifest["files"].as_array().unwrap().iter().enumerate() {
            let data = sink
                .get(&format!("{format}/{}", file["path"].as_str().unwrap()))
                .await
                .unwrap()
                .unwrap()
                .data;
            use md5::Digest;
            let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&data));
            assert_eq!(file["content_md5"], md5.as_str());
            let path = dir.path().join(format!("{format}-{i}"));
            std::fs::write(&path, &data).unwrap();
            paths.push(path.display().to_string());
        }
        let spec = serde_json::json!({
            "expected": expected,
            format: paths,
            "types": TYPES.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect::<serde_json::Map<_, _>>(),
        });
        let spec_path = dir.path().join(format!("{format}.json"));
        std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
        let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/check_lake.py");
        let out = Command::new(&python)
            .arg(&checker)
            .arg(&spec_path)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{format}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout).trim(), format!("ok {records}"));

        // load.sql beside the manifest, and `gatelake sql` prints the same script.
        let load = sink
            .get(&format!("{format}/{run}/load.sql"))
            .await
            .unwrap()
            .expect("load.sql");
        let load = text(&load.data);
        assert!(load.contains("COPY INTO [dbo].[cursor]"), "{load}");
        assert!(load.contains("CREATE TABLE [dbo].[cursor]"), "{load}");
        assert!(load.contains("[created_at] DATETIME2(6) NULL"), "{load}");
        assert!(load.contains("[big] BIGINT NULL"), "{load}");
        assert!(load.contains("MAXERRORS = 0"), "{load}");
        for file in manifest["files"].as_array().unwrap() {
            assert!(load.contains(file["url"].as_str().unwrap()), "{load}");
        }
        let out = gatelake(
            s(&["sql", "--dest", &azurite().dest_url(&container, format)]),
            storage_env(),
        )
        .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), load);
        let out = gatelake(
            s(&[
                "sql",
                "--dest",
                &azurite().dest_url(&container, format),
                "--run",
                run,
                "--pool",
                "serverless",
                "--target",
                "[raw].[cursor rows]",
            ]),
            storage_env(),
        )
        .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let serverless = text(&out.stdout);
        assert!(
            serverless.contains("CREATE EXTERNAL TABLE [raw].[cursor rows]")
                && serverless.contains("OPENROWSET(BULK"),
            "{serverless}"
        );
    }
}

/// Pull the emulator's records into a local folder; `extra` adds flags.
async fn pull_local(api: &ApiGateway, dest: &Path, extra: &[&str]) -> Output {
    let mut a = cursor_args(api);
    a.extend(s(&[
        "--format",
        "parquet",
        "--dest",
        &dest.display().to_string(),
    ]));
    a.extend(s(extra));
    gatelake(a, vec![]).await
}

fn latest_manifest(dest: &Path, summary: &Output) -> Value {
    let summary: Value = serde_json::from_slice(&summary.stdout).unwrap();
    let run = summary["run_id"].as_str().unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dest.join(run).join("_manifest.json")).unwrap())
            .unwrap();
    check_manifest(&manifest);
    manifest
}

/// jsonl keeps the records as served and still records a (descriptive) schema, so the
/// serverless view has typed columns; incremental runs record `{"field", "max"}`.
#[tokio::test]
async fn jsonl_runs_record_a_schema_and_keep_the_records_as_served() {
    let records = 230;
    let api = ApiGateway::start(ApiConfig {
        records,
        page_size: 50,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let mut a = cursor_args(&api);
    a.extend(s(&[
        "--format",
        "jsonl",
        "--chunk-rows",
        "100",
        "--since-field",
        "created_at",
        "--since-param",
        "updated_since",
        "--dest",
        &dest.display().to_string(),
    ]));
    let out = gatelake(a, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = latest_manifest(&dest, &out);
    let kinds: Vec<(String, String)> = manifest["schema"]["fields"]
        .as_array()
        .expect("jsonl manifests carry a schema")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (name, kind) in [
        ("id", "int64"),
        ("amount", "float64"),
        ("active", "boolean"),
        ("created_at", "timestamp"),
        ("customer", "json"),
    ] {
        assert!(
            kinds.contains(&(name.to_owned(), kind.to_owned())),
            "{name}: {kinds:?}"
        );
    }
    assert_eq!(manifest["watermark"]["field"], "created_at", "{manifest}");
    assert!(manifest["watermark"]["max"].is_string(), "{manifest}");
    // The records, as served, one a line.
    let mut served = Vec::new();
    for file in manifest["files"].as_array().unwrap() {
        let raw = std::fs::read(dest.join(file["path"].as_str().unwrap())).unwrap();
        let mut plain = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_string(&mut plain)
            .unwrap();
        served.extend(
            plain
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
        assert!(file.get("columns").is_none(), "{file}");
    }
    let expected: Vec<Value> = (0..records).map(apigw::record).collect();
    assert_eq!(served, expected);
    // The serverless view reads typed columns.
    let run = manifest["run_id"].as_str().unwrap();
    let load = std::fs::read_to_string(dest.join(run).join("load.sql")).unwrap();
    assert!(
        load.contains("TRY_CAST(JSON_VALUE([doc], N''$.\"id\"'') AS BIGINT) AS [id]")
            && load.contains("JSON_QUERY([doc], N''$.\"customer\"'') AS [customer]")
            && load.contains("DATA_COMPRESSION = ''GZIP''"),
        "{load}"
    );
}

#[tokio::test]
async fn schema_drift_across_runs_follows_the_policy() {
    let api = ApiGateway::start(ApiConfig {
        records: 120,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    // Run 1 flattens `customer` into customer.id / customer.country.
    let out = pull_local(&api, &dest, &["--flatten"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = latest_manifest(&dest, &out);
    let names: Vec<&str> = first["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"customer.id") && !names.contains(&"customer"),
        "{names:?}"
    );

    // Run 2 does not flatten: `customer` is a new field and customer.* are missing.
    let out = pull_local(&api, &dest, &[]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("schema drift at page 1:")
            && message.contains("previous run")
            && message.contains("+ customer (json)"),
        "{message}"
    );
    let runs_with_success = std::fs::read_dir(&dest)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("_SUCCESS").exists())
        .count();
    assert_eq!(runs_with_success, 1, "the failed run must not be complete");

    let out = pull_local(&api, &dest, &["--on-schema-drift", "warn"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let warned = latest_manifest(&dest, &out);
    assert_eq!(warned["schema_policy"]["on_drift"], "warn");
    assert_eq!(
        warned["schema_policy"]["compared_with_run"],
        first["run_id"]
    );
    let has = |m: &Value, field: &str, change: &str| {
        m["schema_changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["field"] == field && c["change"] == change)
            .cloned()
    };
    let extra = has(&warned, "customer", "to_extra").expect("customer kept in _extra");
    assert_eq!(extra["values"], 120);
    assert!(has(&warned, "customer.id", "missing").is_some(), "{warned}");
    let last = warned["schema"]["fields"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["name"], "_extra");

    let out = pull_local(&api, &dest, &["--on-schema-drift", "evolve"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let evolved = latest_manifest(&dest, &out);
    let added = has(&evolved, "customer", "added").expect("customer added");
    assert_eq!(added["to"], "json");
    let sql = std::fs::read_to_string(
        dest.join(evolved["run_id"].as_str().unwrap())
            .join("load.sql"),
    )
    .unwrap();
    assert!(
        sql.contains("IF COL_LENGTH(N'[dbo].[cursor]', N'customer') IS NULL"),
        "{sql}"
    );
}

#[tokio::test]
async fn a_pinned_schema_names_the_offending_record() {
    let api = ApiGateway::start(ApiConfig {
        records: 120,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // `big` is pinned as never null, but record 0 has it null.
    let schema = r#"[{"name":"id","kind":"int64","nullable":false},
        {"name":"big","kind":"int64","nullable":false}]"#;
    let path = dir.path().join("schema.json");
    std::fs::write(&path, schema).unwrap();
    let out = pull_local(
        &api,
        &dir.path().join("lake"),
        &["--schema", &path.display().to_string()],
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("page 1, record 0 (record 0 of the run)")
            && message.contains("pinned schema"),
        "{message}"
    );
    let out = pull_local(
        &api,
        &dir.path().join("lake"),
        &[
            "--schema",
            &path.display().to_string(),
            "--on-schema-drift",
            "warn",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// Serverless Synapse binds parquet columns by name: pyarrow must see, in the file, exactly
/// the column names the load SQL uses, for names too long for SQL or holding a line break.
#[test]
fn parquet_files_carry_the_sql_column_names() {
    use gatelake::encode::chunk::{ChunkLimits, ChunkWriter};
    use gatelake::encode::schema::column_name;
    use gatelake::encode::{Compression, EncodeOptions, Format};
    let python = python();
    let long = "field_".repeat(40);
    let names = [long.as_str(), "new\nline", "it's ]bracketed[", "id"];
    let record = serde_json::Value::Object(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), serde_json::json!(i)))
            .collect(),
    )
    .to_string();
    let options = EncodeOptions::new(Format::PARQUET, Some(Compression::Snappy));
    let limits = ChunkLimits {
        max_bytes: 1 << 20,
        max_rows: None,
    };
    let mut writer = ChunkWriter::new(options, limits, 0, None).unwrap();
    writer.write_page(&[record.as_str()]).unwrap();
    let chunk = writer.finish().unwrap().expect("a chunk");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part-00000.parquet");
    std::fs::write(&path, &chunk.data).unwrap();
    let out = Command::new(&python)
        .arg("-c")
        .arg(
            "import json, sys, pyarrow.parquet as pq\n\
             s = pq.read_schema(sys.argv[1])\n\
             print(json.dumps([[f.name, (f.metadata or {}).get(b'gatelake.field', b'').decode()] for f in s]))",
        )
        .arg(&path)
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: Vec<(String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    // Field order in the file follows first appearance in the record (serde_json sorts keys).
    let record: Value = serde_json::from_str(&record).unwrap();
    let want: Vec<(String, String)> = record
        .as_object()
        .unwrap()
        .keys()
        .map(|k| {
            let col = column_name(k);
            let original = if &col == k { String::new() } else { k.clone() };
            (col, original)
        })
        .collect();
    assert_eq!(got, want);
    for (col, _) in &got {
        assert!(
            col.chars().count() <= 128 && !col.chars().any(char::is_control),
            "{col:?}"
        );
    }
}

/// `examples/load_sql_script_activity.json`: the pipeline's Lookup must hand the Script activity
/// the WHOLE of a run's `load.sql`. A Lookup reads a DelimitedText dataset as Data Factory's
/// format documentation describes: rows split at `rowDelimiter` (one character, or the default
/// newlines), each row split into `Prop_0`, `Prop_1`, … at `columnDelimiter` (default `,`),
/// no header (`firstRowAsHeader` false), and with `quoteChar`/`escapeChar` empty no quote
/// processing. This test applies those rules to the `load.sql` of real runs (parquet and csv,
/// into Azurite): with the example's dataset, `firstRow.Prop_0` is the script byte for byte;
/// with the defaults (what the example used to rely on) it is only the first line.
#[tokio::test]
async fn pipeline_example_reads_the_whole_load_sql() {
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/load_sql_script_activity.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let dataset = &example["dataset"];
    let props = &dataset["properties"]["typeProperties"];
    assert_eq!(dataset["properties"]["type"], "DelimitedText");
    assert_eq!(props["quoteChar"], "", "no quote processing");
    assert_eq!(props["escapeChar"], "", "no escape processing");
    assert_eq!(props["firstRowAsHeader"], false);
    let row = props["rowDelimiter"].as_str().unwrap();
    let column = props["columnDelimiter"].as_str().unwrap();
    assert_eq!(
        row.chars().count(),
        1,
        "a Lookup takes one character or \\r\\n"
    );
    assert_eq!(column.chars().count(), 1);

    // The Lookup reads that dataset, first row only; the Script runs what it read.
    let activities = example["activities"].as_array().unwrap();
    let lookup = activities.iter().find(|a| a["type"] == "Lookup").unwrap();
    assert_eq!(
        lookup["typeProperties"]["dataset"]["referenceName"],
        dataset["name"]
    );
    assert_eq!(lookup["typeProperties"]["firstRowOnly"], true);
    let script = activities.iter().find(|a| a["type"] == "Script").unwrap();
    assert_eq!(script["dependsOn"][0]["activity"], lookup["name"]);
    assert_eq!(
        script["typeProperties"]["scripts"][0]["text"]["value"],
        format!(
            "@activity('{}').output.firstRow.Prop_0",
            lookup["name"].as_str().unwrap()
        )
    );

    let first_prop = |text: &str, row: &[char], column: char| -> String {
        let first_row = text.split(row).next().unwrap_or_default();
        first_row
            .split(column)
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let api = ApiGateway::start(ApiConfig {
        records: 120,
        page_size: 40,
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("pipeline").await;
    for format in ["parquet", "csv"] {
        let mut a = cursor_args(&api);
        a.extend(s(&["--format", format, "--chunk-rows", "40", "--dest"]));
        a.push(azurite().dest_url(&container, format));
        let out = gatelake(a, storage_env()).await;
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        let run = summary["run_id"].as_str().unwrap();
        let load = String::from_utf8(
            sink.get(&format!("{format}/{run}/load.sql"))
                .await
                .unwrap()
                .expect("load.sql")
                .data
                .to_vec(),
        )
        .unwrap();
        assert!(load.contains("COPY INTO"), "{load}");
        let read = first_prop(
            &load,
            &row.chars().collect::<Vec<_>>(),
            column.chars().next().unwrap(),
        );
        assert_eq!(read, load, "{format}: the Lookup must read load.sql whole");
        let with_defaults = first_prop(&load, &['\r', '\n'], ',');
        assert_ne!(with_defaults, load, "the default delimiters cut the script");
    }
}
