//! Paths the README and `--help` document that no other test ran (issue 14, item 12):
//! `--compression zstd` end to end into Azurite for jsonl and csv, read back and decompressed;
//! `--chunk-size`'s bound (uncompressed record bytes, whole pages); and the progress bar on a
//! real pseudo-terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gatelake::sink::Sink;
use serde_json::Value;
use std::io::Read;
use std::process::Command;
use support::apigw::{self, ApiConfig, ApiGateway};
use support::azurite::azurite;
use support::run::{gatelake, s, summary, text};

fn pull(api: &ApiGateway, dest: &str, extra: &[&str]) -> Vec<String> {
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
        dest,
    ]);
    a.extend(s(extra));
    a
}

async fn read(sink: &dyn Sink, path: &str) -> Vec<u8> {
    sink.get(path)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{path} is missing"))
        .data
        .to_vec()
}

/// The manifest of the run in `summary`, read through `sink` (rooted at the destination).
async fn manifest(sink: &dyn Sink, summary: &Value) -> Value {
    let run = summary["run_id"].as_str().unwrap();
    assert!(sink
        .get(&format!("{run}/_SUCCESS"))
        .await
        .unwrap()
        .is_some());
    let m: Value =
        serde_json::from_slice(&read(sink, &format!("{run}/_manifest.json")).await).unwrap();
    support::manifest::check_manifest(&m);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_jsonl_and_csv_land_in_azurite_and_decompress_to_the_served_records() {
    const RECORDS: u64 = 2500;
    let api = ApiGateway::start(ApiConfig {
        records: RECORDS,
        page_size: 100,
        ..Default::default()
    })
    .await;
    let (container, _) = azurite().new_container("zstd").await;
    let env = vec![(
        "AZURE_STORAGE_CONNECTION_STRING".to_string(),
        azurite().connection_string(),
    )];
    for format in ["jsonl", "csv"] {
        let dest = azurite().dest_url(&container, format);
        let sink = azurite().sink(&container, format, azurite().credential());
        let args = pull(
            &api,
            &dest,
            &[
                "--format",
                format,
                "--compression",
                "zstd",
                "--chunk-rows",
                "1000",
            ],
        );
        let mut args = args;
        args.push("-v".into());
        let out = gatelake(args, env.clone()).await;
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        // -v names the storage hop's credential kind, never the credential.
        let log = text(&out.stderr);
        assert!(log.contains(&format!("storage: {dest} with ")), "{log}");
        assert!(
            !log.contains(azurite().key),
            "the account key was logged: {log}"
        );
        let sum = summary(&out);
        assert_eq!(sum["rows"], RECORDS);
        let m = manifest(&sink, &sum).await;
        assert_eq!(m["compression"], "zstd", "{m}");
        let files = m["files"].as_array().unwrap();
        assert_eq!(files.len(), 3, "{m}");
        let mut ids = Vec::new();
        for f in files {
            let path = f["path"].as_str().unwrap();
            assert!(path.ends_with(&format!(".{format}.zst")), "{path}");
            let stored = read(&sink, path).await;
            // zstd's magic number: the stored bytes are zstd, not gzip or plain text.
            assert_eq!(&stored[..4], &[0x28, 0xb5, 0x2f, 0xfd], "{path}");
            let plain = zstd::stream::decode_all(stored.as_slice()).expect("zstd decodes");
            let before = ids.len();
            match format {
                "jsonl" => {
                    for line in text(&plain).lines() {
                        let record: Value = serde_json::from_str(line).unwrap();
                        let id = record["id"].as_u64().unwrap();
                        assert_eq!(record, apigw::record(id));
                        ids.push(id);
                    }
                }
                _ => {
                    let mut reader = csv::Reader::from_reader(plain.as_slice());
                    let headers = reader.headers().unwrap().clone();
                    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
                    let (id_col, name_col, note_col) = (col("id"), col("name"), col("note"));
                    for row in reader.records() {
                        let row = row.unwrap();
                        let id: u64 = row[id_col].parse().unwrap();
                        let want = apigw::record(id);
                        assert_eq!(&row[name_col], want["name"].as_str().unwrap());
                        assert_eq!(&row[note_col], want["note"].as_str().unwrap_or(""));
                        ids.push(id);
                    }
                }
            }
            assert_eq!(
                (ids.len() - before) as u64,
                f["rows"].as_u64().unwrap(),
                "{path}"
            );
        }
        assert_eq!(ids, (0..RECORDS).collect::<Vec<_>>(), "{format}");
        // Synapse cannot read zstd: the run's load.sql says so instead of holding SQL.
        let run = sum["run_id"].as_str().unwrap();
        let sql = text(&read(&sink, &format!("{run}/load.sql")).await);
        assert!(sql.contains("cannot read zstd"), "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_size_bounds_the_uncompressed_record_bytes_of_every_chunk_but_the_last() {
    const RECORDS: u64 = 3000;
    const PAGE: u64 = 100;
    const CHUNK: u64 = 100_000;
    let api = ApiGateway::start(ApiConfig {
        records: RECORDS,
        page_size: PAGE,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = gatelake(
        pull(&api, lake.to_str().unwrap(), &["--chunk-size", "100KB"]),
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sum = summary(&out);
    let sink = gatelake::sink::local::LocalSink::new(&lake);
    let m = manifest(&sink, &sum).await;
    let files = m["files"].as_array().unwrap();
    assert!(files.len() >= 3, "too few chunks to test a bound: {m}");
    // The largest page's record bytes: how far one page can carry a chunk past the bound.
    let page_bytes = |first: u64| -> u64 {
        (first..(first + PAGE).min(RECORDS))
            .map(|i| apigw::record(i).to_string().len() as u64)
            .sum()
    };
    let largest_page = (0..RECORDS)
        .step_by(PAGE as usize)
        .map(page_bytes)
        .max()
        .unwrap();
    let mut first_id = 0u64;
    for (i, f) in files.iter().enumerate() {
        let mut plain = String::new();
        flate2::read::MultiGzDecoder::new(
            std::fs::File::open(lake.join(f["path"].as_str().unwrap())).unwrap(),
        )
        .read_to_string(&mut plain)
        .unwrap();
        let rows = f["rows"].as_u64().unwrap();
        // Record bytes as served (the records, without the newline that ends each line).
        let record_bytes = plain.len() as u64 - rows;
        let served: u64 = (first_id..first_id + rows)
            .map(|id| apigw::record(id).to_string().len() as u64)
            .sum();
        assert_eq!(
            record_bytes, served,
            "chunk {i} holds the records as served"
        );
        let last = i + 1 == files.len();
        if !last {
            assert_eq!(
                rows % PAGE,
                0,
                "chunk {i} holds whole pages only: {rows} rows"
            );
            assert!(
                record_bytes >= CHUNK && record_bytes < CHUNK + largest_page,
                "chunk {i}: {record_bytes} uncompressed record bytes, bound [{CHUNK}, {})",
                CHUNK + largest_page
            );
        }
        // --chunk-size counts uncompressed bytes: the gzip file itself is much smaller.
        assert!(
            f["bytes"].as_u64().unwrap() < record_bytes / 2,
            "chunk {i}: {f}"
        );
        first_id += rows;
    }
    assert_eq!(first_id, RECORDS);
}

/// Run the binary under a pseudo-terminal (Python's `pty`, from the test bed's venv or
/// `python3`), 120 columns wide; returns everything it wrote to the terminal.
fn under_a_terminal(args: &[&str], dir: &std::path::Path) -> (std::process::ExitStatus, String) {
    const PTY: &str = r#"
import fcntl, os, pty, struct, sys, termios
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
out = b""
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    out += data
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let python = std::env::var("GATELAKE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let hermetic = support::run::command();
    let mut cmd = Command::new(&python);
    for (k, v) in hermetic.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd
        .current_dir(dir)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .arg("-c")
        .arg(PTY)
        .arg(env!("CARGO_BIN_EXE_gatelake"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} for the pseudo-terminal: {e}"));
    (out.status, text(&out.stdout))
}

#[test]
fn the_progress_bar_is_drawn_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (status, screen) = under_a_terminal(
        &["demo", "--records", "40000", "--page-size", "50"],
        dir.path(),
    );
    assert!(status.success(), "{screen}");
    // Redrawn in place: carriage returns or cursor/erase escape codes.
    assert!(
        screen.contains('\r') && screen.contains("\u{1b}["),
        "no redraws: {screen:?}"
    );
    // The live counts: pages, records and chunks, with a count above zero at some point.
    let counts: Vec<u64> = screen
        .match_indices("records ")
        .filter_map(|(at, _)| {
            screen[at + "records ".len()..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .collect();
    assert!(
        screen.contains("pages ") && counts.iter().any(|n| *n > 0),
        "no live counts: {screen:?}"
    );
    // No plain-lines fallback on a terminal, and the summary at the end.
    assert!(!screen.contains("needs a terminal"), "{screen:?}");
    assert!(
        screen.contains("Pulled 40000 records in 800 pages"),
        "{screen:?}"
    );
}
