//! How a job splits (`--window*`, `--keys*`, `--ranges`, the job file's `[partitions]`):
//! the real binary's `--show-settings` and usage errors, and the library's partition lists
//! applied against the API Gateway emulator — every record of the dataset in exactly one
//! partition, for windows, keys in the path, keys in a query parameter and ranges.
//! (Running the partitions with workers and leases is `partitions_e2e.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gatelake::config::{ApiAuth, ListingChecks, Pagination, RetryPolicy, SourceConfig};
use gatelake::partition::{
    apply, KeySpec, Partition, PartitionSpec, RangeSpec, WindowEnd, WindowFormat, WindowSpec,
};
use gatelake::report::SilentReporter;
use gatelake::source::client::ApiClient;
use gatelake::source::extract::JsonDoc;
use gatelake::source::paginate::{self, PageView};
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use support::apigw::{ApiConfig, ApiGateway};

fn gatelake(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    support::run::command()
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run gatelake")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `--show-settings --output json` as (key, value, origin).
fn settings(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<(String, String, String)> {
    let mut all = vec!["pull"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--show-settings", "--output", "json"]);
    let out = gatelake(dir, &all, env);
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("key"), s("value"), s("origin"))
        })
        .collect()
}

fn setting(rows: &[(String, String, String)], key: &str) -> (String, String) {
    rows.iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, v, o)| (v.clone(), o.clone()))
        .unwrap_or_else(|| panic!("{key} missing in {rows:?}"))
}

#[test]
fn show_settings_shows_the_split_and_its_partition_count() {
    let dir = tempfile::tempdir().unwrap();
    let rows = settings(
        dir.path(),
        &[
            "--url",
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders",
            "--window-start",
            "2026-01-01",
            "--window-end",
            "2026-01-02T00:00:00Z",
            "--window-params",
            "since,until",
        ],
        &[("GATELAKE_WINDOW", "6h")],
    );
    assert_eq!(
        setting(&rows, "window"),
        ("6h".into(), "env GATELAKE_WINDOW".into())
    );
    assert_eq!(
        setting(&rows, "window-start"),
        ("2026-01-01".into(), "flag --window-start".into())
    );
    assert_eq!(setting(&rows, "window-format").1, "default");
    let (value, _) = setting(&rows, "partitions");
    assert!(value.contains("windows of 6h"), "{value}");
    assert!(value.contains("?since=…&until=…"), "{value}");
    assert!(value.ends_with("4 partition(s)"), "{value}");

    // The same in the job file, the parameters as a pair.
    std::fs::write(
        dir.path().join("gatelake.toml"),
        r#"[jobs.daily]
url = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders"

[jobs.daily.partitions]
window_start = "2026-01-01"
window_end = "2026-02-01"
window = "1d"
window_params = ["day_from", "day_to"]
window_format = "date"
"#,
    )
    .unwrap();
    let rows = settings(dir.path(), &["--job", "daily"], &[]);
    assert_eq!(
        setting(&rows, "window-params"),
        ("day_from,day_to".into(), "job file".into())
    );
    let (value, _) = setting(&rows, "partitions");
    assert!(value.contains("(date)"), "{value}");
    assert!(value.ends_with("31 partition(s)"), "{value}");
}

#[test]
fn the_job_files_partitions_table_splits_the_job_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gatelake.toml"),
        r#"[jobs.orders]
url = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders"

[jobs.orders.partitions]
keys = ["acme", "globex", "initech", "umbrella", "hooli"]
key_param = "tenant"
keys_per_partition = 2
"#,
    )
    .unwrap();
    let rows = settings(dir.path(), &["--job", "orders"], &[]);
    assert_eq!(
        setting(&rows, "keys-per-partition"),
        ("2".into(), "job file".into())
    );
    assert_eq!(setting(&rows, "keys").1, "job file");
    assert!(setting(&rows, "partitions").0.ends_with("3 partition(s)"));
    // A flag wins over the job file, key by key.
    let rows = settings(
        dir.path(),
        &["--job", "orders", "--keys-per-partition", "1"],
        &[],
    );
    assert!(setting(&rows, "partitions").0.ends_with("5 partition(s)"));
    // A keys file: one key a line, comments skipped.
    std::fs::write(dir.path().join("tenants.txt"), "# live\nacme\n\nglobex\n").unwrap();
    let rows = settings(
        dir.path(),
        &[
            "--url",
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/tenants/{key}/orders",
            "--keys-file",
            "tenants.txt",
        ],
        &[],
    );
    assert_eq!(
        setting(&rows, "keys"),
        ("acme, globex".into(), "flag --keys-file".into())
    );
    assert!(setting(&rows, "partitions").0.ends_with("2 partition(s)"));
    // A typo in the table is an error, not an ignored setting.
    std::fs::write(
        dir.path().join("gatelake.toml"),
        "[jobs.orders]\nurl = \"https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders\"\n[jobs.orders.partitions]\nwindow_lenght = \"1d\"\n",
    )
    .unwrap();
    let out = gatelake(
        dir.path(),
        &["pull", "--job", "orders", "--show-settings"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("window_lenght"), "{}", stderr(&out));
}

#[test]
fn a_split_that_cannot_work_is_a_usage_error_saying_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let api = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders";
    let keyed = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/tenants/{key}/orders";
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--url",
                api,
                "--window-start",
                "2026-01-01",
                "--window",
                "1d",
                "--keys",
                "a",
            ],
            "splits one way",
        ),
        (&["--url", keyed], "has {key} but no keys were given"),
        (&["--url", api, "--keys", "a,b"], "has no {key}"),
        (
            &["--url", api, "--keys", "a,,b", "--key-param", "t"],
            "a key is empty",
        ),
        (
            &[
                "--url",
                api,
                "--window-start",
                "2026-02-01",
                "--window-end",
                "2026-01-01",
                "--window",
                "1d",
            ],
            "is not after --window-start",
        ),
        (
            &["--url", api, "--window-start", "2026-01-01"],
            "need both --window-start",
        ),
        (
            &[
                "--url",
                api,
                "--window-start",
                "2026-01-01",
                "--window",
                "1w",
            ],
            "not a window unit",
        ),
        (
            &[
                "--url",
                api,
                "--window-start",
                "2020-01-01",
                "--window-end",
                "2026-01-01",
                "--window",
                "1m",
            ],
            "more than 100000",
        ),
        (
            &[
                "--url",
                api,
                "--window-start",
                "2026-01-01",
                "--window",
                "1d",
                "--window-format",
                "iso",
            ],
            "rfc3339, date, epoch, epoch-ms",
        ),
        (&["--url", api, "--window-end", "now"], "no --window-start"),
        (
            &[
                "--url",
                api,
                "--keys",
                "a",
                "--key-param",
                "t",
                "--expect-rows",
                "10",
            ],
            "drop --expect-rows",
        ),
        (
            &["--url", api, "--ranges", "4", "--paginate", "offset"],
            "--total-path",
        ),
        (
            &[
                "--url",
                api,
                "--ranges",
                "4",
                "--paginate",
                "cursor",
                "--cursor-path",
                "next",
                "--total-path",
                "total",
            ],
            "cannot",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["pull"];
        all.extend_from_slice(args);
        let out = gatelake(dir.path(), &all, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}

// ---------------------------------------------------------------------------------------------
// Partition lists applied against the emulator
// ---------------------------------------------------------------------------------------------

fn source(url: &str, pagination: Pagination) -> SourceConfig {
    SourceConfig {
        url: url::Url::parse(url).unwrap(),
        pagination,
        records_path: "items".into(),
        auth: ApiAuth::None,
        usage_plan_key: None,
        headers: Vec::new(),
        timeout: Duration::from_secs(10),
        retry: RetryPolicy::default(),
        max_pages: None,
        checks: ListingChecks::default(),
        max_page_bytes: 16 << 20,
        on_bad_page: Default::default(),
        concurrency: 1,
        read_ahead: true,
        request: Default::default(),
    }
}

fn cursor() -> Pagination {
    Pagination::new("cursor")
        .with("cursor_path", "next_cursor")
        .with("cursor_param", "cursor")
}

/// Walk one source's listing as a pull does (its paginator and the shared stop rules): the
/// ids of its records, in order.
async fn ids_of(client: &ApiClient, s: &SourceConfig) -> Vec<u64> {
    let paginator = paginate::paginator(&s.pagination).unwrap();
    let mut next = Some(paginator.first(&s.url));
    let (mut ids, mut so_far, mut page_no) = (Vec::new(), 0, 0);
    while let Some(url) = next.take() {
        page_no += 1;
        assert!(page_no < 500, "runaway listing at {url}");
        let page = client.fetch(&url, page_no, &SilentReporter).await.unwrap();
        let text = std::str::from_utf8(&page.body).unwrap();
        let doc = JsonDoc::parse(text).unwrap();
        let records = doc.records(&s.records_path).unwrap();
        for r in &records {
            let v: serde_json::Value = serde_json::from_str(r).unwrap();
            ids.push(v["id"].as_u64().unwrap());
        }
        so_far += records.len() as u64;
        let view = PageView {
            url: &page.url,
            headers: &page.headers,
            doc: &doc,
            records: records.len() as u64,
            records_so_far: so_far,
            page: page_no,
        };
        next = paginate::next_request(&*paginator, &s.pagination.stop, &s.url, &view)
            .unwrap()
            .next;
    }
    ids
}

/// Every partition applied and pulled: each record of `0..records` exactly once. Returns the
/// ids each partition got.
async fn pull_partitions(
    client: &ApiClient,
    job: &SourceConfig,
    list: &[Partition],
    records: u64,
) -> Vec<Vec<u64>> {
    let mut per = Vec::new();
    for p in list {
        let s = apply(job, p).unwrap();
        let ids = ids_of(client, &s).await;
        if let Some(expected) = s.checks.expect_rows {
            assert_eq!(ids.len() as u64, expected, "{}", p.id);
        }
        per.push(ids);
    }
    let mut all: Vec<u64> = per.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..records).collect::<Vec<_>>(),
        "every record exactly once"
    );
    per
}

async fn client_for(job: &SourceConfig) -> ApiClient {
    ApiClient::new(job, reqwest::Client::new(), None)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_cover_every_record_once_in_each_bound_format() {
    let server = ApiGateway::start(ApiConfig {
        records: 500,
        page_size: 30,
        ..ApiConfig::default()
    })
    .await;
    // Records are created from 2026-01-02T03:04:05Z, one every 61 s: 500 span 8½ hours.
    let job = source(&server.url("/prod/windowed"), cursor());
    let client = client_for(&job).await;
    for format in [
        WindowFormat::Rfc3339,
        WindowFormat::Epoch,
        WindowFormat::EpochMs,
    ] {
        let spec = PartitionSpec::Windows(WindowSpec {
            start: time::macros::datetime!(2026-01-02 03:00 UTC),
            end: WindowEnd::At(time::macros::datetime!(2026-01-02 12:00 UTC)),
            step: Duration::from_secs(3_600),
            from_param: "from".into(),
            to_param: "to".into(),
            format,
        });
        let list = spec.plan(&job, &client).await.unwrap();
        assert_eq!(list.len(), 9);
        let per = pull_partitions(&client, &job, &list, 500).await;
        // A window's records are the ones created in it: 3600 s / 61 s ≈ 59 per full hour.
        assert!(per[1].len() == 59 || per[1].len() == 60, "{}", per[1].len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_the_path_or_in_a_parameter_cover_every_record_once() {
    let server = ApiGateway::start(ApiConfig {
        records: 240,
        page_size: 25,
        ..ApiConfig::default()
    })
    .await;
    let countries: Vec<String> = ["DE", "US", "JP", "BR", "FR", "IN"]
        .map(String::from)
        .to_vec();
    let in_path = source(&server.url("/prod/tenants/{key}/orders"), cursor());
    let client = client_for(&in_path).await;
    let spec = PartitionSpec::Keys(KeySpec {
        keys: countries.clone(),
        param: None,
        per_partition: 1,
    });
    let list = spec.plan(&in_path, &client).await.unwrap();
    assert_eq!(list.len(), 6);
    let per = pull_partitions(&client, &in_path, &list, 240).await;
    assert!(per.iter().all(|ids| ids.len() == 40));

    let in_query = source(&server.url("/prod/by-country"), cursor());
    let spec = PartitionSpec::Keys(KeySpec {
        keys: countries,
        param: Some("country".into()),
        per_partition: 4,
    });
    let list = spec.plan(&in_query, &client).await.unwrap();
    assert_eq!(list.len(), 2);
    let per = pull_partitions(&client, &in_query, &list, 240).await;
    assert_eq!((per[0].len(), per[1].len()), (160, 80));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_cover_every_record_once_even_when_the_api_caps_its_pages() {
    // Asked for 100 a page, the API serves 40: ranges are cut in pages of 40.
    let server = ApiGateway::start(ApiConfig {
        records: 1_050,
        max_page_size: Some(40),
        ..ApiConfig::default()
    })
    .await;
    let mut job = source(
        &server.url("/prod/offset"),
        Pagination::new("offset").with("page_size", 100),
    );
    job.pagination.stop.total_path = Some("total".into());
    let client = client_for(&job).await;
    let list = PartitionSpec::Ranges(RangeSpec { count: 4 })
        .plan(&job, &client)
        .await
        .unwrap();
    assert_eq!(list.len(), 4);
    let per = pull_partitions(&client, &job, &list, 1_050).await;
    // Contiguous ranges, each starting on a page of 40.
    let firsts: Vec<u64> = per.iter().map(|ids| ids[0]).collect();
    assert!(firsts.iter().all(|f| f % 40 == 0), "{firsts:?}");
    // The plan asked once, for the first page; the pulls asked for no page past a range.
    let past_end = server
        .requests()
        .iter()
        .filter(|r| {
            r.query_param("offset")
                .and_then(|o| o.parse::<u64>().ok())
                .is_some_and(|o| o >= 1_050)
        })
        .count();
    assert_eq!(past_end, 0);
}

/// A range's pull through the real pipeline, with page requests in flight ahead
/// (`--concurrency 4`): it ends at the range's end, lands exactly its records as a complete
/// run, and asks for no page past it (a page ahead past the end is a wasted request, and an
/// API that refuses offsets past its data answers it with an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_pulled_with_pages_ahead_asks_for_nothing_past_its_end() {
    use gatelake::config::{OutputConfig, PullConfig};
    use gatelake::encode::{EncodeOptions, Format};
    use gatelake::run::{run, RunOptions, StopSignal};
    use gatelake::sink::local::LocalSink;
    use std::sync::Arc;

    let server = ApiGateway::start(ApiConfig {
        records: 1_000,
        ..ApiConfig::default()
    })
    .await;
    let mut job = source(
        &server.url("/prod/offset"),
        Pagination::new("offset").with("page_size", 50),
    );
    job.pagination.stop.total_path = Some("total".into());
    job.concurrency = 4;
    let client = client_for(&job).await;
    let list = PartitionSpec::Ranges(RangeSpec { count: 4 })
        .plan(&job, &client)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rows = 0;
    for p in &list {
        let before = server.requests().len();
        let config = PullConfig {
            job: p.id.clone(),
            source: apply(&job, p).unwrap(),
            output: OutputConfig {
                encode: EncodeOptions::new(Format::JSONL, None),
                chunk_bytes: 1 << 30,
                chunk_rows: None,
                schema: Default::default(),
            },
            upload_concurrency: 2,
            incremental: None,
            partitions: None,
        };
        let client = client_for(&config.source).await;
        let summary = run(
            &config,
            Arc::new(LocalSink::new(dir.path().join(&p.id))),
            client,
            Arc::new(SilentReporter),
            &RunOptions::default(),
            StopSignal::never(),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
        assert_eq!(summary.status, "succeeded", "{}", p.id);
        assert_eq!(Some(summary.rows), p.request.records, "{}", p.id);
        rows += summary.rows;
        let gatelake::partition::Covers::Range { last, .. } = p.covers else {
            panic!("{p:?}")
        };
        let past: Vec<String> = server.requests()[before..]
            .iter()
            .filter_map(|r| r.query_param("offset"))
            .filter(|o| o.parse::<u64>().unwrap() > last)
            .collect();
        assert!(
            past.is_empty(),
            "{} (ends at {last}) asked for offsets {past:?}",
            p.id
        );
    }
    assert_eq!(rows, 1_000);
}
