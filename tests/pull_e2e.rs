//! End to end: the real `gatelake` binary pulls from the local API Gateway emulator
//! (`support/apigw.rs`) into Azurite (started by `scripts/test.sh`), and every record is read
//! back from storage and compared with what the server served — for every pagination style
//! in every format, each auth kind, throttling, and the failures a user must be told about.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use gatelake::sink::Sink;
use serde_json::Value;
use std::io::Read;
use support::apigw::{self, ApiAuthCheck, ApiConfig, ApiGateway, LinkForm};
use support::azurite::azurite;
use support::run::{gatelake, s, summary, text};

fn storage_env() -> Vec<(String, String)> {
    vec![(
        "AZURE_STORAGE_CONNECTION_STRING".into(),
        azurite().connection_string(),
    )]
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

/// Decode a stored chunk into JSON records, using the served record to interpret untyped
/// cells (csv) and JSON-text columns (csv/parquet nested values).
fn decode(format: &str, data: &[u8]) -> Vec<Value> {
    match format {
        "jsonl" => text(&gunzip(data))
            .lines()
            .map(|l| serde_json::from_str(l).expect("jsonl line"))
            .collect(),
        "csv" => {
            let raw = gunzip(data);
            let mut reader = csv::Reader::from_reader(raw.as_slice());
            let headers = reader.headers().expect("csv header").clone();
            reader
                .records()
                .map(|row| {
                    let row = row.expect("csv row");
                    let map = headers
                        .iter()
                        .zip(row.iter())
                        .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
                        .collect();
                    Value::Object(map)
                })
                .collect()
        }
        "parquet" => {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                Bytes::copy_from_slice(data),
            )
            .expect("parquet file")
            .build()
            .expect("parquet reader");
            let mut out = Vec::new();
            for batch in reader {
                let batch = timestamps_as_text(batch.expect("record batch"));
                let mut buf = Vec::new();
                {
                    let mut w = arrow_json::LineDelimitedWriter::new(&mut buf);
                    w.write(&batch).expect("to json");
                    w.finish().expect("finish json");
                }
                out.extend(
                    text(&buf)
                        .lines()
                        .map(|l| serde_json::from_str::<Value>(l).expect("row json")),
                );
            }
            out
        }
        other => panic!("unknown format {other}"),
    }
}

/// The instant a timestamp text names: RFC 3339 (served, and arrow's JSON of a parquet
/// timestamp) or the UTC `YYYY-MM-DD hh:mm:ss.ffffff` that csv chunks hold.
fn instant(text: &str) -> Option<i128> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    let f = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]"
    );
    time::PrimitiveDateTime::parse(text, &f)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp_nanos())
}

/// Timestamp columns as RFC 3339 text, so the batch converts to JSON without a time-zone
/// database.
fn timestamps_as_text(batch: arrow_array::RecordBatch) -> arrow_array::RecordBatch {
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampMicrosecondType;
    use std::sync::Arc;
    let mut fields = Vec::new();
    let mut columns: Vec<arrow_array::ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if let arrow_schema::DataType::Timestamp(_, _) = field.data_type() {
            let text: arrow_array::StringArray = column
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .map(|v| {
                    v.map(|micros| {
                        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
                            .unwrap()
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap()
                    })
                })
                .collect();
            fields.push(arrow_schema::Field::new(
                field.name(),
                arrow_schema::DataType::Utf8,
                true,
            ));
            columns.push(Arc::new(text));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    arrow_array::RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns).unwrap()
}

/// Whether a stored value `got` represents the served value `want` in `format`.
fn same(format: &str, want: &Value, got: Option<&Value>) -> bool {
    let got_null = matches!(got, None | Some(Value::Null));
    // Timestamps become timestamp columns in csv and parquet: compare the instants.
    if let (true, Some(w)) = (format != "jsonl", want.as_str().and_then(instant)) {
        return got.and_then(Value::as_str).and_then(instant) == Some(w);
    }
    match (format, want) {
        (_, Value::Null) => {
            got_null || (format == "csv" && got == Some(&Value::String(String::new())))
        }
        ("jsonl", w) => got == Some(w),
        ("csv", Value::String(w)) => got == Some(&Value::String(w.clone())),
        ("csv", Value::Object(_) | Value::Array(_)) => {
            got.and_then(Value::as_str)
                .and_then(|g| serde_json::from_str::<Value>(g).ok())
                .as_ref()
                == Some(want)
        }
        ("csv", w) => {
            got.and_then(Value::as_str)
                .and_then(|g| serde_json::from_str::<Value>(g).ok())
                .as_ref()
                == Some(w)
        }
        ("parquet", Value::Object(_) | Value::Array(_)) => {
            got.and_then(Value::as_str)
                .and_then(|g| serde_json::from_str::<Value>(g).ok())
                .as_ref()
                == Some(want)
        }
        ("parquet", Value::Number(n)) if n.is_f64() => got.and_then(Value::as_f64) == n.as_f64(),
        ("parquet", w) => got == Some(w),
        _ => false,
    }
}

/// The manifest stored in the run folder `run_dir`.
async fn stored_manifest(sink: &dyn Sink, run_dir: &str) -> Value {
    let got = sink
        .get(&format!("{run_dir}/_manifest.json"))
        .await
        .unwrap();
    serde_json::from_slice(&got.expect("manifest").data).unwrap()
}

/// Check that the run in `summary` holds exactly records `0..count` as served, in order, and
/// that the manifest and `_SUCCESS` agree with the files.
async fn assert_landed(sink: &dyn Sink, prefix: &str, summary: &Value, format: &str, count: u64) {
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(summary["rows"].as_u64(), Some(count), "{summary}");
    let run = summary["run_id"].as_str().unwrap();
    let run_dir = format!("{prefix}/{run}");
    assert!(
        sink.get(&format!("{run_dir}/_SUCCESS"))
            .await
            .unwrap()
            .is_some(),
        "no _SUCCESS"
    );
    let manifest = stored_manifest(sink, &run_dir).await;
    assert_eq!(manifest["totals"]["rows"].as_u64(), Some(count));
    support::manifest::check_manifest(&manifest);

    let mut next = 0u64;
    for file in manifest["files"].as_array().unwrap() {
        let path = format!("{prefix}/{}", file["path"].as_str().unwrap());
        let data = sink
            .get(&path)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{path} missing"))
            .data;
        assert_eq!(file["bytes"].as_u64(), Some(data.len() as u64), "{path}");
        use sha2::Digest;
        assert_eq!(
            file["sha256"].as_str().unwrap(),
            hex::encode(sha2::Sha256::digest(&data)),
            "{path}"
        );
        let rows = decode(format, &data);
        assert_eq!(file["rows"].as_u64(), Some(rows.len() as u64), "{path}");
        for row in rows {
            let want = apigw::record(next);
            for (key, value) in want.as_object().unwrap() {
                assert!(
                    same(format, value, row.get(key)),
                    "{format} record {next} field {key}: served {value}, stored {:?}",
                    row.get(key)
                );
            }
            next += 1;
        }
    }
    assert_eq!(next, count, "records read back");
    // Nothing but the run's files, its manifest, load script, lineage and marker under the
    // run folder.
    let listed = sink.list(&format!("{run_dir}/")).await.unwrap();
    assert_eq!(
        listed.len(),
        manifest["files"].as_array().unwrap().len() + 4,
        "{listed:?}"
    );
}

/// How to pull each emulated pagination style.
fn style_args(style: &str) -> (&'static str, Vec<String>) {
    match style {
        "cursor" => (
            "/prod/cursor",
            s(&[
                "--paginate",
                "cursor",
                "--cursor-path",
                "next_cursor",
                "--records",
                "items",
            ]),
        ),
        "cursor-header" => (
            "/prod/cursor-header",
            s(&["--paginate", "cursor", "--cursor-header", "x-next-cursor"]),
        ),
        "next-link" => (
            "/prod/next-link",
            s(&[
                "--paginate",
                "next-link",
                "--next-path",
                "links.next",
                "--records",
                "data.rows",
            ]),
        ),
        "link-header" => ("/prod/link-header", s(&["--paginate", "link-header"])),
        "offset" => (
            "/prod/offset",
            s(&[
                "--paginate",
                "offset",
                "--page-size",
                "70",
                "--records",
                "items",
                "--total-path",
                "total",
            ]),
        ),
        "page" => (
            "/prod/page",
            s(&[
                "--paginate",
                "page",
                "--page-size-param",
                "per_page",
                "--page-size",
                "70",
                "--records",
                "results",
                "--has-more-path",
                "has_more",
            ]),
        ),
        other => panic!("unknown style {other}"),
    }
}

async fn pull_style_in_every_format(style: &str, link_form: LinkForm) {
    pull_style_in_every_format_with(style, short_pages(link_form), &[]).await;
}

/// 437 records in pages of 50: not a multiple of any page size, so the last page is short.
fn short_pages(link_form: LinkForm) -> ApiConfig {
    ApiConfig {
        records: 437,
        page_size: 50,
        link_form,
        ..Default::default()
    }
}

/// [`pull_style_in_every_format`] with extra flags (the run's prefix in the container says
/// which).
async fn pull_style_in_every_format_with(
    style: &str,
    config: ApiConfig,
    extra: &[&str],
) -> Vec<Value> {
    let records = config.records;
    let api = ApiGateway::start(config).await;
    let mut summaries = Vec::new();
    let (container, sink) = azurite().new_container(&format!("e2e-{style}")).await;
    let (path, mut args) = style_args(style);
    args.extend(s(extra));
    for format in ["jsonl", "csv", "parquet"] {
        let prefix = format!("{style}/{format}");
        let mut a = s(&[
            "pull",
            "--url",
            &api.url(path),
            "--format",
            format,
            "--chunk-rows",
            "150",
            "--output",
            "json",
            "--progress",
            "none",
        ]);
        a.extend(["--dest".into(), azurite().dest_url(&container, &prefix)]);
        a.append(&mut args.clone());
        let out = gatelake(a, storage_env()).await;
        assert!(
            out.status.success(),
            "{style} {format}: {}",
            text(&out.stderr)
        );
        let summary = summary(&out);
        // Whole pages only: every chunk but the last holds a multiple of the page size.
        let files = summary["files"].as_array().unwrap();
        assert!(
            files.len() >= 2,
            "{style} {format}: expected rotation, got {summary}"
        );
        assert_landed(&sink, &prefix, &summary, format, records).await;
        summaries.push(summary);
    }
    summaries
}

/// Pages above a mebibyte are parsed with the runtime worker's other tasks handed to another
/// thread, smaller ones on the worker itself: a pull whose pages straddle that size (two of
/// about 1.5 MiB, then one of about 0.75 MiB) lands every record once, in every format.
#[tokio::test]
async fn pages_on_both_sides_of_a_mebibyte_land_whole() {
    let api = ApiConfig {
        records: 15_000,
        page_size: 6_000,
        ..Default::default()
    };
    for summary in pull_style_in_every_format_with("cursor", api, &[]).await {
        assert_eq!(summary["pages"].as_u64(), Some(3), "{summary}");
        // Each full page holds two fifths of the records.
        let raw = summary["raw_bytes"].as_u64().unwrap();
        assert!(
            raw * 2 / 5 > 1 << 20,
            "pages of over 1 MiB were asked for: {summary}"
        );
    }
}

/// Every file a pull lands in Azure carries the manifest's MD5 as its `Content-MD5`, sent with
/// its bytes (which the service checks) whether it went up in one request or, over 8 MiB, as
/// one block: whoever downloads it (azcopy, Storage Explorer) can check it against the manifest.
#[tokio::test]
async fn landed_files_carry_the_manifests_md5() {
    let records = 60_000;
    let api = ApiGateway::start(ApiConfig {
        records,
        page_size: 5_000,
        ..Default::default()
    })
    .await;
    let az = azurite();
    let (container, sink) = az.new_public_container("e2e-md5").await;
    let (path, mut args) = style_args("cursor");
    let mut a = s(&[
        "pull",
        "--url",
        &api.url(path),
        "--format",
        "jsonl",
        "--compression",
        "none",
        "--chunk-rows",
        "50000",
        "--output",
        "json",
        "--progress",
        "none",
    ]);
    a.extend(["--dest".into(), az.dest_url(&container, "md5")]);
    a.append(&mut args);
    let out = gatelake(a, storage_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = summary(&out);
    assert_eq!(summary["rows"].as_u64(), Some(records), "{summary}");
    let files = summary["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{summary}");
    // Every record once, in order (plain jsonl: assert_landed reads gzip).
    let mut next = 0;
    for file in files {
        let path = format!("md5/{}", file["path"].as_str().unwrap());
        let data = sink.get(&path).await.unwrap().unwrap().data;
        for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let row: Value = serde_json::from_slice(line).unwrap();
            assert_eq!(row, apigw::record(next), "record {next}");
            next += 1;
        }
    }
    assert_eq!(next, records);
    assert!(
        files[0]["bytes"].as_u64().unwrap() > 8 << 20,
        "the first file must be large enough to go up as a block: {summary}"
    );
    let http = reqwest::Client::new();
    let content_md5 = |url: String| {
        let http = http.clone();
        async move {
            let head = http.head(&url).send().await.unwrap();
            assert_eq!(head.status(), 200, "{url}");
            head.headers()
                .get("content-md5")
                .map(|v| v.to_str().unwrap().to_string())
        }
    };
    for file in files {
        let url = file["url"].as_str().unwrap().to_string();
        let stored = content_md5(url).await;
        assert_eq!(stored.as_deref(), file["content_md5"].as_str(), "{file}");
    }
    // The run's lineage file too, against the MD5 its manifest records.
    let run = summary["run_id"].as_str().unwrap();
    let manifest = stored_manifest(&sink, &format!("md5/{run}")).await;
    let lineage = &manifest["lineage"];
    let url = az.dest_url(
        &container,
        &format!("md5/{}", lineage["path"].as_str().unwrap()),
    );
    assert_eq!(
        content_md5(url).await.as_deref(),
        lineage["md5"].as_str(),
        "{lineage}"
    );
}

#[tokio::test]
async fn cursor_in_body() {
    pull_style_in_every_format("cursor", LinkForm::Absolute).await;
}

#[tokio::test]
async fn cursor_in_header() {
    pull_style_in_every_format("cursor-header", LinkForm::Absolute).await;
}

#[tokio::test]
async fn next_link_absolute() {
    pull_style_in_every_format("next-link", LinkForm::Absolute).await;
}

#[tokio::test]
async fn next_link_relative() {
    pull_style_in_every_format("next-link", LinkForm::Relative).await;
}

#[tokio::test]
async fn link_header() {
    pull_style_in_every_format("link-header", LinkForm::Relative).await;
}

#[tokio::test]
async fn offset_limit() {
    pull_style_in_every_format("offset", LinkForm::Absolute).await;
}

#[tokio::test]
async fn page_number() {
    pull_style_in_every_format("page", LinkForm::Absolute).await;
}

#[tokio::test]
async fn offset_limit_with_requests_in_flight() {
    pull_style_in_every_format_with(
        "offset",
        short_pages(LinkForm::Absolute),
        &["--concurrency", "4"],
    )
    .await;
}

#[tokio::test]
async fn page_number_with_requests_in_flight() {
    pull_style_in_every_format_with(
        "page",
        short_pages(LinkForm::Absolute),
        &["--concurrency", "8"],
    )
    .await;
}

/// One auth kind: a pull that must succeed, and one with a wrong credential that must fail
/// with exit code 3 and the given hint.
async fn auth_case(
    check: ApiAuthCheck,
    good: Vec<(&str, &str)>,
    bad: Vec<(&str, &str)>,
    extra: &[&str],
    hint: &str,
) {
    let api = ApiGateway::start(ApiConfig {
        records: 120,
        auth: check,
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("e2e-auth").await;
    let args = |prefix: &str| {
        let mut a = s(&[
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
            "--dest",
        ]);
        a.push(azurite().dest_url(&container, prefix));
        a.extend(s(extra));
        a
    };
    let env = |pairs: &[(&str, &str)]| {
        let mut e = storage_env();
        e.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        e
    };
    let out = gatelake(args("good"), env(&good)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_landed(&sink, "good", &summary(&out), "jsonl", 120).await;
    for (_, secret) in &good {
        assert!(
            !text(&out.stdout).contains(secret) && !text(&out.stderr).contains(secret),
            "secret leaked"
        );
    }

    let out = gatelake(args("bad"), env(&bad)).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = summary(&out);
    assert_eq!(err["error_kind"], "auth");
    assert!(err["error"].as_str().unwrap().contains(hint), "{err}");
    assert!(sink
        .list("bad/")
        .await
        .unwrap()
        .iter()
        .all(|o| !o.path.ends_with("_SUCCESS")));
}

#[tokio::test]
async fn api_key_auth() {
    auth_case(
        ApiAuthCheck::ApiKey("k-3f9a".into()),
        vec![("GATELAKE_API_KEY", "k-3f9a")],
        vec![("GATELAKE_API_KEY", "wrong")],
        &["--api-auth", "api-key"],
        "usage plan",
    )
    .await;
}

#[tokio::test]
async fn bearer_auth() {
    auth_case(
        ApiAuthCheck::Bearer("tok-77".into()),
        vec![("GATELAKE_BEARER_TOKEN", "tok-77")],
        vec![("GATELAKE_BEARER_TOKEN", "expired")],
        &["--api-auth", "bearer"],
        "bearer token was rejected",
    )
    .await;
}

#[tokio::test]
async fn iam_sigv4_auth_with_session_token() {
    auth_case(
        ApiAuthCheck::SigV4 {
            access_key: "AKIDGATELAKETEST".into(),
            secret_key: "s3cr3t/Key+example".into(),
            session_token: Some("session-token-xyz".into()),
            region: "eu-north-1".into(),
        },
        vec![
            ("AWS_ACCESS_KEY_ID", "AKIDGATELAKETEST"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t/Key+example"),
            ("AWS_SESSION_TOKEN", "session-token-xyz"),
        ],
        vec![
            ("AWS_ACCESS_KEY_ID", "AKIDGATELAKETEST"),
            ("AWS_SECRET_ACCESS_KEY", "wrong-secret"),
            ("AWS_SESSION_TOKEN", "session-token-xyz"),
        ],
        &["--api-auth", "iam", "--region", "eu-north-1"],
        "secret key",
    )
    .await;
}

#[tokio::test]
async fn throttling_and_transient_errors_are_retried() {
    // A storm: every 3rd request throttled, 10% random 5xx, page 2 failing twice with 503,
    // pages 1 and 3 arriving truncated (Content-Length larger than the body) before whole.
    let mut fail_first_n = std::collections::HashMap::new();
    fail_first_n.insert(2, 2);
    let mut truncate_first_n = std::collections::HashMap::new();
    truncate_first_n.insert(1, 1);
    truncate_first_n.insert(3, 2);
    let api = ApiGateway::start(ApiConfig {
        records: 400,
        throttle_every: Some(3),
        error_rate: 0.1,
        fail_first_n,
        truncate_first_n,
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("e2e-retry").await;
    let (path, args) = style_args("cursor");
    let mut a = s(&[
        "pull",
        "--url",
        &api.url(path),
        "--output",
        "json",
        "--progress",
        "plain",
        "--dest",
    ]);
    a.push(azurite().dest_url(&container, "t"));
    a.extend(args);
    let out = gatelake(a, storage_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_landed(&sink, "t", &summary(&out), "jsonl", 400).await;
    let throttled = api.requests().len();
    assert!(
        throttled > 4 + 2,
        "expected retried requests, saw {throttled}"
    );
    assert!(
        text(&out.stderr).contains("429 throttled"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn pages_that_time_out_are_fetched_in_halves() {
    // Pages over 120 records hit the integration timeout (504): asked for 400, the pull must
    // retry with 200, then 100, and still land every record once, for both page-size styles.
    let api = ApiGateway::start(ApiConfig {
        records: 1000,
        timeout_above: Some(120),
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("e2e-504").await;
    for (prefix, style_flags) in [
        (
            "offset",
            s(&[
                "--paginate",
                "offset",
                "--page-size",
                "400",
                "--records",
                "items",
            ]),
        ),
        (
            "page",
            s(&[
                "--paginate",
                "page",
                "--page-size-param",
                "per_page",
                "--page-size",
                "400",
                "--records",
                "results",
                "--has-more-path",
                "has_more",
            ]),
        ),
    ] {
        let path = if prefix == "offset" {
            "/prod/offset"
        } else {
            "/prod/page"
        };
        let mut a = s(&[
            "pull",
            "--url",
            &api.url(path),
            "--output",
            "json",
            "--progress",
            "plain",
            "--dest",
        ]);
        a.push(azurite().dest_url(&container, prefix));
        a.extend(style_flags);
        let out = gatelake(a, storage_env()).await;
        assert!(out.status.success(), "{prefix}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("asking for smaller pages"),
            "{}",
            text(&out.stderr)
        );
        assert_landed(&sink, prefix, &summary(&out), "jsonl", 1000).await;
    }
}

#[tokio::test]
async fn hostile_next_link_is_never_requested() {
    // A second server on another loopback address plays the attacker's host.
    let attacker = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2");
    let attacker_addr = attacker.local_addr().unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let h = hits.clone();
    let accept = tokio::spawn(async move {
        while let Ok((_sock, _)) = attacker.accept().await {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let api = ApiGateway::start(ApiConfig {
        records: 300,
        auth: ApiAuthCheck::ApiKey("k".into()),
        hostile_next: Some(format!("http://{attacker_addr}/steal?x=1")),
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("e2e-hostile").await;
    let mut a = s(&[
        "pull",
        "--url",
        &api.url("/prod/next-link"),
        "--paginate",
        "next-link",
        "--next-path",
        "links.next",
        "--records",
        "data.rows",
        "--api-auth",
        "api-key",
        "--output",
        "json",
        "--progress",
        "none",
        "--dest",
    ]);
    a.push(azurite().dest_url(&container, "h"));
    let mut env = storage_env();
    env.push(("GATELAKE_API_KEY".into(), "k".into()));
    let out = gatelake(a, env).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = summary(&out)["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("refusing to follow") && err.contains(&attacker_addr.to_string()),
        "{err}"
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the foreign host received a connection"
    );
    assert_eq!(api.requests().len(), 1, "only the first page was requested");
    assert!(sink
        .list("h/")
        .await
        .unwrap()
        .iter()
        .all(|o| !o.path.ends_with("_SUCCESS")));
    accept.abort();
}

#[tokio::test]
async fn skip_sets_bad_pages_aside_and_goes_on() {
    // Offset pagination can find the page after a broken one without reading it.
    let api = ApiGateway::start(ApiConfig {
        records: 500,
        malformed_page: Some(2),
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("e2e-skip").await;
    let mut a = s(&[
        "pull",
        "--url",
        &api.url("/prod/offset"),
        "--paginate",
        "offset",
        "--page-size",
        "100",
        "--records",
        "items",
        "--on-bad-page",
        "skip",
        "--output",
        "json",
        "--progress",
        "plain",
        "--dest",
    ]);
    a.push(azurite().dest_url(&container, "skip"));
    let out = gatelake(a, storage_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("page 3 set aside"),
        "{}",
        text(&out.stderr)
    );
    let sum = summary(&out);
    assert_eq!(sum["rows"], 400);
    let run = sum["run_id"].as_str().unwrap();
    let manifest = stored_manifest(&sink, &format!("skip/{run}")).await;
    support::manifest::check_manifest(&manifest);
    let rejected = &manifest["rejected"][0];
    assert_eq!(rejected["page"], 3);
    assert!(
        rejected["reason"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{rejected}"
    );
    assert!(
        rejected["request"].as_str().unwrap().contains("offset=200"),
        "{rejected}"
    );
    let body = sink
        .get(&format!("skip/{}", rejected["body_path"].as_str().unwrap()))
        .await
        .unwrap()
        .unwrap()
        .data;
    assert_eq!(rejected["bytes"].as_u64(), Some(body.len() as u64));
    assert!(
        text(&body).contains("<html>502 Bad Gateway</html>"),
        "the raw body is kept"
    );
    // Every other record landed once: 0..200 and 300..500.
    let mut ids = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let data = sink
            .get(&format!("skip/{}", f["path"].as_str().unwrap()))
            .await
            .unwrap()
            .unwrap()
            .data;
        ids.extend(
            decode("jsonl", &data)
                .iter()
                .map(|r| r["id"].as_u64().unwrap()),
        );
    }
    assert_eq!(ids, (0..200).chain(300..500).collect::<Vec<_>>());
}

#[tokio::test]
async fn bad_pages_and_records_paths_fail_clearly() {
    let api = ApiGateway::start(ApiConfig {
        records: 300,
        malformed_page: Some(2),
        ..Default::default()
    })
    .await;
    let (container, sink) = azurite().new_container("e2e-bad").await;
    let run = |extra: Vec<String>, prefix: &'static str| {
        let mut a = s(&[
            "pull",
            "--url",
            &api.url("/prod/cursor"),
            "--paginate",
            "cursor",
            "--cursor-path",
            "next_cursor",
            "--output",
            "json",
            "--progress",
            "none",
            "--dest",
        ]);
        a.push(azurite().dest_url(&container, prefix));
        a.extend(extra);
        gatelake(a, storage_env())
    };
    let out = run(
        s(&["--records", "items", "--chunk-rows", "100"]),
        "malformed",
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = summary(&out)["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("page 3") && err.contains("not valid JSON"),
        "{err}"
    );
    // The two good pages before it are committed, and the checkpoint points at the bad page,
    // so a rerun after the API is fixed continues there.
    let cp: Value = serde_json::from_slice(
        &sink
            .get("malformed/_state/checkpoint.json")
            .await
            .unwrap()
            .unwrap()
            .data,
    )
    .unwrap();
    assert_eq!(cp["status"], "running");
    assert_eq!(cp["next_seq"], 2);
    assert!(
        cp["next_request"].as_str().unwrap().contains("cursor="),
        "{cp}"
    );

    // --on-bad-page skip cannot go past a broken body when the next cursor is inside it.
    let out = run(
        s(&["--records", "items", "--on-bad-page", "skip"]),
        "skip-cursor",
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = summary(&out)["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("cannot go past it") && err.contains("cursor or link"),
        "{err}"
    );
    assert!(sink
        .list("malformed/")
        .await
        .unwrap()
        .iter()
        .all(|o| !o.path.ends_with("_SUCCESS")));

    let out = run(s(&["--records", "rows"]), "nomatch").await;
    assert_eq!(out.status.code(), Some(4));
    let err = summary(&out)["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("'rows' matched nothing") && err.contains("items, next_cursor"),
        "{err}"
    );
}

#[tokio::test]
async fn storage_failures_name_the_fix() {
    let api = ApiGateway::start(ApiConfig {
        records: 50,
        ..Default::default()
    })
    .await;
    let base = s(&[
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
        "--dest",
    ]);

    let mut a = base.clone();
    a.push(azurite().dest_url("no-such-container-e2e", "x"));
    let out = gatelake(a, storage_env()).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let err = summary(&out)["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("does not exist") && err.contains("az storage container create"),
        "{err}"
    );
    assert_eq!(
        api.requests().len(),
        0,
        "no page is fetched when the destination is unusable"
    );

    // The same pull with --create-container creates it and lands the records.
    let fresh = format!("e2e-created-{}", std::process::id());
    let mut a = base.clone();
    a.push(azurite().dest_url(&fresh, "x"));
    a.push("--create-container".into());
    let out = gatelake(a, storage_env()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["rows"], 50);

    let (container, _sink) = azurite().new_container("e2e-key").await;
    let mut a = base.clone();
    a.push(azurite().dest_url(&container, "x"));
    let bad_key = azurite().connection_string().replace(
        azurite().key,
        "d3JvbmcgYWNjb3VudCBrZXkgZm9yIGF6dXJpdGUgdGVzdHMgb25seSE=",
    );
    let out = gatelake(a, vec![("AZURE_STORAGE_CONNECTION_STRING".into(), bad_key)]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("d3JvbmcgYWNjb3VudCBrZXk"),
        "the key leaked"
    );
}

// ---- Issue 14 (cli-surface): a failed first run leaves no state in the container ----

/// A run that fails on its first page, in a job that never ran there, removes the checkpoint
/// and the leased lock blob it made (the lease is released before the blob can go); a job
/// with an earlier run keeps everything.
#[tokio::test]
async fn a_failed_first_run_leaves_no_state_in_azure() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (container, sink) = azurite().new_container("e2e-fresh-fail").await;
    let pull = |url: String, prefix: &str| {
        let mut a = s(&[
            "pull",
            "--paginate",
            "cursor",
            "--cursor-path",
            "next_cursor",
            "--records",
            "items",
            "--max-retries",
            "0",
            "--output",
            "json",
            "--progress",
            "none",
            "--url",
        ]);
        a.push(url);
        a.push("--dest".into());
        a.push(azurite().dest_url(&container, prefix));
        gatelake(a, storage_env())
    };
    let unreachable = format!("http://127.0.0.1:{closed}/prod/orders");
    let out = pull(unreachable.clone(), "fresh").await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let left = sink.list("fresh/").await.unwrap();
    assert!(left.is_empty(), "the failed first run left {left:?}");
    // The lock is free again: the same job can run at once.
    let out = pull(unreachable.clone(), "fresh").await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));

    // A job that ran before keeps its state and its runs.
    let api = ApiGateway::start(ApiConfig {
        records: 30,
        ..Default::default()
    })
    .await;
    let out = pull(api.url("/prod/cursor"), "ran").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = sink.list("ran/").await.unwrap();
    let out = pull(unreachable, "ran").await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let after = sink.list("ran/").await.unwrap();
    for o in &before {
        assert!(
            after.iter().any(|a| a.path == o.path),
            "{} was removed",
            o.path
        );
    }
}
