//! One conformance suite for every `Sink` backend: the local folder and Azure Blob Storage
//! (through Azurite, started by `scripts/test.sh`). Each check is a plain async function over
//! `Arc<dyn Sink>`; the `conformance!` macro instantiates every check for each backend, so a
//! new backend is one more `conformance!` line and behaves the same or fails here.
//!
//! After the shared suite come the Azure-only checks: the failures `check()` must explain
//! (missing container, wrong key, unreachable endpoint) and that no secret reaches a URL or an
//! error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use gatelake::secret::Secret;
use gatelake::sink::azure::{auth, AzureLocation, AzureSinkBuilder, StorageCredential};
use gatelake::sink::local::LocalSink;
use gatelake::sink::{Digests, ETag, LockHolder, PutMode, Sink, SinkError};
use gatelake::state::{Checkpoint, CheckpointStore, RunStatus, StateError, CHECKPOINT_VERSION};
use std::any::Any;
use std::sync::Arc;
use support::azurite::azurite;

/// A sink under test, the things that must outlive it (a temp dir), and the secrets its URLs
/// and errors must never show.
struct Backend {
    sink: Arc<dyn Sink>,
    /// A new sink on the same destination, as a rerun (another process) would build.
    reopen: Box<dyn Fn() -> Arc<dyn Sink> + Send + Sync>,
    secrets: Vec<String>,
    _keep: Box<dyn Any + Send>,
}

async fn local_backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let sink = LocalSink::new(root.clone());
    Backend {
        sink: Arc::new(sink),
        reopen: Box::new(move || Arc::new(LocalSink::new(root.clone()))),
        secrets: vec![],
        _keep: Box::new(dir),
    }
}

async fn azurite_backend() -> Backend {
    let az = azurite();
    let (name, sink) = az.new_container("conformance").await;
    let key = az.key.to_string();
    Backend {
        sink: Arc::new(sink),
        reopen: Box::new(move || Arc::new(az.sink(&name, "", az.credential()))),
        secrets: vec![key],
        _keep: Box::new(()),
    }
}

fn assert_no_secret(text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "a secret leaked into: {text}");
    }
}

/// Deterministic, non-repeating-looking bytes (so a misplaced block would show).
fn pattern(len: usize, seed: u64) -> Bytes {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

// --- the checks -----------------------------------------------------------------------------

async fn check_passes_on_a_usable_destination(b: Backend) {
    b.sink
        .check()
        .await
        .expect("check() on a fresh destination");
}

async fn put_get_round_trip_with_etag(b: Backend) {
    let s = &b.sink;
    assert!(s.get("run1/part-00000.jsonl.gz").await.unwrap().is_none());
    let data = Bytes::from_static(b"{\"id\":1}\n{\"id\":2}\n");
    let put = s
        .put("run1/part-00000.jsonl.gz", data.clone(), PutMode::Overwrite)
        .await
        .unwrap();
    assert!(!put.etag.0.is_empty());
    assert_eq!(put.url, s.url_of("run1/part-00000.jsonl.gz"));
    let got = s
        .get("run1/part-00000.jsonl.gz")
        .await
        .unwrap()
        .expect("object exists");
    assert_eq!(got.data, data);
    assert_eq!(got.etag, put.etag, "get returns the ETag put returned");
}

async fn empty_object_round_trips(b: Backend) {
    let s = &b.sink;
    s.put("_SUCCESS", Bytes::new(), PutMode::Create)
        .await
        .unwrap();
    let got = s.get("_SUCCESS").await.unwrap().expect("marker exists");
    assert!(got.data.is_empty());
}

async fn overwrite_replaces(b: Backend) {
    let s = &b.sink;
    let v1 = s
        .put("o.txt", Bytes::from_static(b"one"), PutMode::Overwrite)
        .await
        .unwrap();
    let v2 = s
        .put("o.txt", Bytes::from_static(b"two!"), PutMode::Overwrite)
        .await
        .unwrap();
    assert_ne!(v1.etag, v2.etag);
    let got = s.get("o.txt").await.unwrap().unwrap();
    assert_eq!(&got.data[..], b"two!");
    assert_eq!(got.etag, v2.etag);
}

async fn create_on_existing_is_already_exists(b: Backend) {
    let s = &b.sink;
    s.put("c.txt", Bytes::from_static(b"first"), PutMode::Create)
        .await
        .unwrap();
    let err = s
        .put("c.txt", Bytes::from_static(b"second"), PutMode::Create)
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("c.txt"), "{err}");
    assert_no_secret(&err.to_string(), &b.secrets);
    assert_eq!(&s.get("c.txt").await.unwrap().unwrap().data[..], b"first");
}

async fn update_with_stale_etag_is_precondition_failed(b: Backend) {
    let s = &b.sink;
    let v1 = s
        .put(
            "u.json",
            Bytes::from_static(b"{\"seq\":1}"),
            PutMode::Create,
        )
        .await
        .unwrap();
    s.put(
        "u.json",
        Bytes::from_static(b"{\"seq\":2}"),
        PutMode::Overwrite,
    )
    .await
    .unwrap();
    let err = s
        .put(
            "u.json",
            Bytes::from_static(b"{\"seq\":3}"),
            PutMode::Update(v1.etag),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::PreconditionFailed { .. }),
        "{err:?}"
    );
    assert_eq!(
        &s.get("u.json").await.unwrap().unwrap().data[..],
        b"{\"seq\":2}"
    );
    let err = s
        .put(
            "u.json",
            Bytes::from_static(b"x"),
            PutMode::Update(ETag("\"bogus\"".into())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::PreconditionFailed { .. }),
        "{err:?}"
    );
}

async fn update_with_current_etag_succeeds(b: Backend) {
    let s = &b.sink;
    let v1 = s
        .put(
            "cp.json",
            Bytes::from_static(b"{\"seq\":1}"),
            PutMode::Create,
        )
        .await
        .unwrap();
    let v2 = s
        .put(
            "cp.json",
            Bytes::from_static(b"{\"seq\":2}"),
            PutMode::Update(v1.etag.clone()),
        )
        .await
        .unwrap();
    assert_ne!(v2.etag, v1.etag, "an update returns a new ETag");
    let got = s.get("cp.json").await.unwrap().unwrap();
    assert_eq!(&got.data[..], b"{\"seq\":2}");
    assert_eq!(got.etag, v2.etag);
    // The new ETag is usable for the next compare-and-swap; the old one is not.
    s.put(
        "cp.json",
        Bytes::from_static(b"{\"seq\":3}"),
        PutMode::Update(v2.etag),
    )
    .await
    .unwrap();
    assert!(s
        .put(
            "cp.json",
            Bytes::from_static(b"{\"seq\":4}"),
            PutMode::Update(v1.etag)
        )
        .await
        .is_err());
}

async fn update_never_creates_a_missing_object(b: Backend) {
    let s = &b.sink;
    let err = s
        .put(
            "missing.json",
            Bytes::from_static(b"{}"),
            PutMode::Update(ETag("\"0x8DEADBEEF\"".into())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SinkError::NotFound { .. } | SinkError::PreconditionFailed { .. }
        ),
        "{err:?}"
    );
    assert!(s.get("missing.json").await.unwrap().is_none());
}

async fn list_by_prefix_is_sorted_and_exact(b: Backend) {
    let s = &b.sink;
    for (path, body) in [
        ("run1/part-00001.gz", "bb"),
        ("run10/part-00000.gz", "ccc"),
        ("run1/part-00000.gz", "a"),
        ("run1/sub/_manifest.json", "dddd"),
        ("run2/part-00000.gz", "eeeee"),
    ] {
        s.put(path, Bytes::from(body), PutMode::Overwrite)
            .await
            .unwrap();
    }
    let got: Vec<(String, u64)> = s
        .list("run1/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.path, m.size))
        .collect();
    assert_eq!(
        got,
        vec![
            ("run1/part-00000.gz".to_string(), 1),
            ("run1/part-00001.gz".to_string(), 2),
            ("run1/sub/_manifest.json".to_string(), 4),
        ]
    );
    let all: Vec<String> = s
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .collect();
    assert_eq!(
        all,
        vec![
            "run1/part-00000.gz",
            "run1/part-00001.gz",
            "run1/sub/_manifest.json",
            "run10/part-00000.gz",
            "run2/part-00000.gz",
        ]
    );
    let run1x: Vec<String> = s
        .list("run1")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .collect();
    assert_eq!(
        run1x.len(),
        4,
        "a prefix without '/' matches run1 and run10: {run1x:?}"
    );
    assert!(s.list("nothing-here/").await.unwrap().is_empty());
}

async fn delete_and_delete_missing(b: Backend) {
    let s = &b.sink;
    s.put("d/x.gz", Bytes::from_static(b"x"), PutMode::Overwrite)
        .await
        .unwrap();
    s.put("d/y.gz", Bytes::from_static(b"y"), PutMode::Overwrite)
        .await
        .unwrap();
    s.delete("d/x.gz").await.unwrap();
    assert!(s.get("d/x.gz").await.unwrap().is_none());
    let left: Vec<String> = s
        .list("d/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .collect();
    assert_eq!(left, vec!["d/y.gz"]);
    s.delete("d/x.gz")
        .await
        .expect("deleting a missing object is not an error");
    s.delete("never/was.gz")
        .await
        .expect("deleting a missing object is not an error");
    // A deleted path can be created again.
    s.put("d/x.gz", Bytes::from_static(b"x2"), PutMode::Create)
        .await
        .unwrap();
}

async fn large_object_round_trips_byte_exact(b: Backend) {
    let s = &b.sink;
    // 20 MiB plus an odd tail: three blocks on Azure, the last one short.
    let data = pattern(20 * 1024 * 1024 + 12_345, 7);
    let put = s
        .put("big/part-00000.parquet", data.clone(), PutMode::Create)
        .await
        .unwrap();
    let got = s.get("big/part-00000.parquet").await.unwrap().unwrap();
    assert_eq!(got.data.len(), data.len());
    assert!(got.data == data, "large object changed in transit");
    assert_eq!(got.etag, put.etag);
    let listed = s.list("big/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, data.len() as u64);

    // Conditional puts hold for multi-block uploads too.
    let err = s
        .put(
            "big/part-00000.parquet",
            pattern(9 * 1024 * 1024, 8),
            PutMode::Create,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::AlreadyExists { .. }), "{err:?}");
    let data2 = pattern(17 * 1024 * 1024, 9);
    let v2 = s
        .put(
            "big/part-00000.parquet",
            data2.clone(),
            PutMode::Update(put.etag.clone()),
        )
        .await
        .unwrap();
    let err = s
        .put(
            "big/part-00000.parquet",
            pattern(17 * 1024 * 1024, 10),
            PutMode::Update(put.etag),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::PreconditionFailed { .. }),
        "{err:?}"
    );
    let got = s.get("big/part-00000.parquet").await.unwrap().unwrap();
    assert!(got.data == data2);
    assert_eq!(got.etag, v2.etag);
}

async fn concurrent_creates_have_exactly_one_winner(b: Backend) {
    let writers = 8;
    let mut tasks = Vec::new();
    for i in 0..writers {
        let sink = b.sink.clone();
        tasks.push(tokio::spawn(async move {
            let body = Bytes::from(format!("writer {i}"));
            (
                body.clone(),
                sink.put("_state/lock", body, PutMode::Create).await,
            )
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (body, result) = t.await.unwrap();
        match result {
            Ok(_) => winners.push(body),
            Err(SinkError::AlreadyExists { .. }) => {}
            Err(other) => panic!("unexpected error from a racing create: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one concurrent create wins");
    let got = b.sink.get("_state/lock").await.unwrap().unwrap();
    assert_eq!(got.data, winners[0], "the stored object is the winner's");
}

async fn urls_carry_no_secret(b: Backend) {
    let s = &b.sink;
    let url = s.url_of("run1/part-00000.gz");
    assert!(url.ends_with("/run1/part-00000.gz"), "{url}");
    assert!(url.starts_with(&s.root_url()), "{url} vs {}", s.root_url());
    assert_no_secret(&url, &b.secrets);
    assert_no_secret(&s.root_url(), &b.secrets);
    assert_no_secret(&format!("{:?}", s), &b.secrets);
    let put = s
        .put(
            "run1/part-00000.gz",
            Bytes::from_static(b"z"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    assert_no_secret(&put.url, &b.secrets);
}

async fn dot_segments_are_rejected(b: Backend) {
    let err = b
        .sink
        .put(
            "../escape.txt",
            Bytes::from_static(b"x"),
            PutMode::Overwrite,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::InvalidDestination { .. }),
        "{err:?}"
    );
}

async fn lock_is_exclusive_names_the_holder_and_releases(b: Backend) {
    let first = LockHolder {
        host: "host-a".into(),
        pid: 4242,
        job: "orders".into(),
        since: "2026-11-24T23:00:00Z".into(),
        ..LockHolder::default()
    };
    let second = LockHolder {
        host: "host-b".into(),
        pid: 7,
        ..first.clone()
    };
    let held = b.sink.lock("_state/lock", &first).await.unwrap();
    let err = b.sink.lock("_state/lock", &second).await.unwrap_err();
    match &err {
        SinkError::Busy { holder, .. } => {
            assert!(
                holder.contains("4242") && holder.contains("host-a"),
                "{holder}"
            )
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(
        err.to_string().contains("Wait for that run to finish"),
        "{err}"
    );
    held.release().await.unwrap();
    let again = b.sink.lock("_state/lock", &second).await.unwrap();
    again.release().await.unwrap();
}

fn checkpoint(run: &str, next_seq: u64) -> Checkpoint {
    Checkpoint {
        version: CHECKPOINT_VERSION,
        job: "orders".into(),
        run_id: run.into(),
        status: RunStatus::Running,
        source_url: "https://api.example.com/prod/orders".into(),
        next_seq,
        next_request: Some(format!(
            "https://api.example.com/prod/orders?cursor={next_seq}"
        )),
        last_request: None,
        next_body: None,
        schema_changes: vec![],
        compared_with_run: None,
        rejected: vec![],
        pages: next_seq,
        files: vec![],
        schema: None,
        first_request: None,
        since: None,
        watermark: None,
        listing: Default::default(),
        objects: None,
        started_at: "2026-11-24T23:00:00Z".into(),
        updated_at: "2026-11-24T23:00:00Z".into(),
    }
}

async fn checkpoint_store_detects_a_lost_race(b: Backend) {
    let mut mine = CheckpointStore::new(b.sink.clone());
    assert!(mine.load().await.unwrap().is_none());
    mine.save(&checkpoint("r1", 1)).await.unwrap();
    mine.save(&checkpoint("r1", 2)).await.unwrap();

    // Another writer reads and advances it.
    let mut theirs = CheckpointStore::new(b.sink.clone());
    assert_eq!(theirs.load().await.unwrap().unwrap().next_seq, 2);
    theirs.save(&checkpoint("r1", 3)).await.unwrap();

    // Our next write must not overwrite theirs.
    let err = mine.save(&checkpoint("r1", 4)).await.unwrap_err();
    assert!(matches!(err, StateError::LostRace { .. }), "{err:?}");
    assert_eq!(theirs.load().await.unwrap().unwrap().next_seq, 3);

    // A store that never read one may not create over an existing checkpoint.
    let mut fresh = CheckpointStore::new(b.sink.clone());
    let err = fresh.save(&checkpoint("r2", 0)).await.unwrap_err();
    assert!(matches!(err, StateError::LostRace { .. }), "{err:?}");

    // Writing what is already stored (a retried write that had landed) is not a conflict.
    let mut retry = CheckpointStore::new(b.sink.clone());
    retry.save(&checkpoint("r1", 3)).await.unwrap();
}

async fn checkpoint_of_unknown_version_is_refused(b: Backend) {
    b.sink
        .put(
            "_state/checkpoint.json",
            Bytes::from_static(br#"{"version": 99, "run_id": "x"}"#),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let err = CheckpointStore::new(b.sink.clone())
        .load()
        .await
        .unwrap_err();
    assert!(
        matches!(err, StateError::Version { found: 99, .. }),
        "{err:?}"
    );
    b.sink
        .put(
            "_state/checkpoint.json",
            Bytes::from_static(b"{not json"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let err = CheckpointStore::new(b.sink.clone())
        .load()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Move it aside"), "{err}");
}

// --- multi-part writes -----------------------------------------------------------------------

/// Parts 0..n of `sizes`, each with its own pattern, and their concatenation.
fn parts_of(sizes: &[usize], seed: u64) -> (Vec<Bytes>, Bytes) {
    let parts: Vec<Bytes> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| pattern(n, seed + i as u64))
        .collect();
    let whole: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    (parts, Bytes::from(whole))
}

async fn parts_staged_in_any_order_commit_in_order(b: Backend) {
    let s = &b.sink;
    let path = "run1/objects/data.bin";
    let (parts, whole) = parts_of(&[1000, 2000, 1500, 7], 100);
    // Concurrently, out of order, one part twice.
    let mut tasks = Vec::new();
    for i in [3usize, 1, 0, 2, 1] {
        let sink = s.clone();
        let data = parts[i].clone();
        tasks.push(tokio::spawn(async move {
            sink.stage_part(path, "run1-data", i as u32, data).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        s.staged_parts(path, "run1-data").await.unwrap(),
        vec![0, 1, 2, 3]
    );
    // Nothing is visible before the commit: not the object, not the parts.
    assert!(s.get(path).await.unwrap().is_none());
    assert!(
        s.list("").await.unwrap().is_empty(),
        "{:?}",
        s.list("").await
    );

    let put = s
        .commit_parts(path, "run1-data", 4, PutMode::Create)
        .await
        .unwrap();
    assert_eq!(put.url, s.url_of(path));
    let got = s.get(path).await.unwrap().expect("committed");
    assert!(got.data == whole, "the parts, in part order");
    assert_eq!(
        got.etag, put.etag,
        "get returns the ETag the commit returned"
    );
    let listed = s.list("").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].path.as_str(), listed[0].size),
        (path, whole.len() as u64)
    );
    assert!(
        s.staged_parts(path, "run1-data").await.unwrap().is_empty(),
        "a commit consumes its parts"
    );
}

async fn staged_parts_survive_a_rerun_and_cleanup(b: Backend) {
    let path = "run2/big.parquet";
    let (parts, whole) = parts_of(&[9 * 1024 * 1024, 9 * 1024 * 1024, 12_345], 200);
    b.sink
        .stage_part(path, "run2-big", 0, parts[0].clone())
        .await
        .unwrap();
    b.sink
        .stage_part(path, "run2-big", 2, parts[2].clone())
        .await
        .unwrap();
    drop(b.sink.clone());

    // Another process, after the first one died: it finds the staged parts, and the
    // clean-up of killed writes (run under the job's lock on resume) keeps them.
    let rerun = (b.reopen)();
    rerun.remove_incomplete("run2/").await.unwrap();
    rerun.remove_incomplete("").await.unwrap();
    assert_eq!(
        rerun.staged_parts(path, "run2-big").await.unwrap(),
        vec![0, 2]
    );
    assert!(rerun
        .staged_parts(path, "run2-other")
        .await
        .unwrap()
        .is_empty());
    assert!(rerun
        .staged_parts("run2/never.bin", "run2-big")
        .await
        .unwrap()
        .is_empty());
    rerun
        .stage_part(path, "run2-big", 1, parts[1].clone())
        .await
        .unwrap();
    // Staging a part again with the same content changes nothing.
    rerun
        .stage_part(path, "run2-big", 2, parts[2].clone())
        .await
        .unwrap();
    rerun
        .commit_parts(path, "run2-big", 3, PutMode::Overwrite)
        .await
        .unwrap();
    let got = b.sink.get(path).await.unwrap().unwrap();
    assert_eq!(got.data.len(), whole.len());
    assert!(got.data == whole, "large parts changed in transit");
}

async fn commit_with_a_missing_part_names_the_object_and_part(b: Backend) {
    let s = &b.sink;
    let path = "run3/gap.bin";
    s.stage_part(path, "run3-gap", 0, Bytes::from_static(b"zero"))
        .await
        .unwrap();
    s.stage_part(path, "run3-gap", 2, Bytes::from_static(b"two"))
        .await
        .unwrap();
    let err = s
        .commit_parts(path, "run3-gap", 3, PutMode::Create)
        .await
        .unwrap_err();
    match &err {
        SinkError::PartsMissing {
            url,
            missing,
            parts,
            ..
        } => {
            assert_eq!(url, &s.url_of(path));
            assert_eq!((missing.as_str(), *parts), ("1", 3));
        }
        other => panic!("expected PartsMissing, got {other:?}"),
    }
    assert!(err.to_string().contains("gap.bin"), "{err}");
    assert!(
        s.get(path).await.unwrap().is_none(),
        "a failed commit leaves nothing"
    );
    // The parts stay staged: stage the missing one and commit.
    assert_eq!(s.staged_parts(path, "run3-gap").await.unwrap(), vec![0, 2]);
    s.stage_part(path, "run3-gap", 1, Bytes::from_static(b"one"))
        .await
        .unwrap();
    s.commit_parts(path, "run3-gap", 3, PutMode::Create)
        .await
        .unwrap();
    assert_eq!(&s.get(path).await.unwrap().unwrap().data[..], b"zeroonetwo");
}

async fn commit_parts_honours_put_modes(b: Backend) {
    let s = &b.sink;
    let path = "modes.bin";
    let v1 = s
        .put(path, Bytes::from_static(b"v1"), PutMode::Create)
        .await
        .unwrap();

    s.stage_part(path, "m-a", 0, Bytes::from_static(b"a"))
        .await
        .unwrap();
    let err = s
        .commit_parts(path, "m-a", 1, PutMode::Create)
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(&s.get(path).await.unwrap().unwrap().data[..], b"v1");

    let err = s
        .commit_parts(path, "m-a", 1, PutMode::Update(ETag("\"stale\"".into())))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::PreconditionFailed { .. }),
        "{err:?}"
    );

    let v2 = s
        .commit_parts(path, "m-a", 1, PutMode::Update(v1.etag.clone()))
        .await
        .unwrap();
    assert_ne!(v2.etag, v1.etag);
    let got = s.get(path).await.unwrap().unwrap();
    assert_eq!((&got.data[..], &got.etag), (&b"a"[..], &v2.etag));

    // Zero parts make an empty object.
    let empty = s
        .commit_parts("empty.bin", "m-e", 0, PutMode::Create)
        .await
        .unwrap();
    let got = s.get("empty.bin").await.unwrap().unwrap();
    assert!(got.data.is_empty());
    assert_eq!(got.etag, empty.etag);
}

async fn a_commit_discards_other_uploads_of_the_path(b: Backend) {
    let s = &b.sink;
    let path = "twice/obj.json";
    s.stage_part(path, "old-upload", 0, Bytes::from_static(b"old"))
        .await
        .unwrap();
    s.stage_part(path, "new-upload", 0, Bytes::from_static(b"new"))
        .await
        .unwrap();
    // Another object's parts are not touched.
    s.stage_part("twice/obj.json2", "old-upload", 0, Bytes::from_static(b"x"))
        .await
        .unwrap();
    s.commit_parts(path, "new-upload", 1, PutMode::Create)
        .await
        .unwrap();
    assert_eq!(&s.get(path).await.unwrap().unwrap().data[..], b"new");
    assert!(s.staged_parts(path, "old-upload").await.unwrap().is_empty());
    assert_eq!(
        s.staged_parts("twice/obj.json2", "old-upload")
            .await
            .unwrap(),
        vec![0]
    );
}

async fn bad_upload_ids_and_parts_are_refused(b: Backend) {
    let s = &b.sink;
    for bad in ["", "a/b", "a.b", "with space", &"x".repeat(41)] {
        let err = s
            .stage_part("p.bin", bad, 0, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SinkError::InvalidDestination { .. }),
            "{bad:?}: {err:?}"
        );
    }
    let err = s
        .stage_part(
            "p.bin",
            "ok",
            gatelake::sink::MAX_PARTS,
            Bytes::from_static(b"x"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::InvalidDestination { .. }),
        "{err:?}"
    );
    let err = s
        .stage_part("../p.bin", "ok", 0, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::InvalidDestination { .. }),
        "{err:?}"
    );
}

/// Instantiate every check for one backend.
/// A put given the data's digests stores what `put` stores, keeps the put modes, and returns
/// the ETag a read then sees (the local folder derives it from the SHA-256 handed in, so a
/// wrong derivation shows here as an ETag that no read agrees with).
async fn put_digested_stores_what_put_stores(b: Backend) {
    let s = &b.sink;
    // Empty, one Put Blob on Azure, and one block carrying the MD5.
    for (i, len) in [0usize, 5_000, 20 * 1024 * 1024 + 7]
        .into_iter()
        .enumerate()
    {
        let path = format!("digested/part-{i}.bin");
        let data = pattern(len, 60 + i as u64);
        let put = s
            .put_digested(&path, data.clone(), PutMode::Create, &Digests::of(&data))
            .await
            .unwrap();
        let got = s.get(&path).await.unwrap().unwrap();
        assert!(got.data == data, "{len} bytes changed in transit");
        assert_eq!(got.etag, put.etag, "{len} bytes");

        let err = s
            .put_digested(&path, data.clone(), PutMode::Create, &Digests::of(&data))
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::AlreadyExists { .. }), "{err:?}");
        let data2 = pattern(len + 1, 70 + i as u64);
        let v2 = s
            .put_digested(
                &path,
                data2.clone(),
                PutMode::Update(put.etag.clone()),
                &Digests::of(&data2),
            )
            .await
            .unwrap();
        let err = s
            .put_digested(
                &path,
                data.clone(),
                PutMode::Update(put.etag),
                &Digests::of(&data),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, SinkError::PreconditionFailed { .. }),
            "{err:?}"
        );
        let got = s.get(&path).await.unwrap().unwrap();
        assert!(got.data == data2);
        assert_eq!(got.etag, v2.etag, "{len} bytes, updated");
    }
}

macro_rules! conformance {
    ($backend:ident, $make:ident) => {
        mod $backend {
            conformance!(@one $make:
                check_passes_on_a_usable_destination,
                put_get_round_trip_with_etag,
                empty_object_round_trips,
                overwrite_replaces,
                create_on_existing_is_already_exists,
                update_with_stale_etag_is_precondition_failed,
                update_with_current_etag_succeeds,
                update_never_creates_a_missing_object,
                list_by_prefix_is_sorted_and_exact,
                delete_and_delete_missing,
                large_object_round_trips_byte_exact,
                put_digested_stores_what_put_stores,
                concurrent_creates_have_exactly_one_winner,
                urls_carry_no_secret,
                dot_segments_are_rejected,
                lock_is_exclusive_names_the_holder_and_releases,
                checkpoint_store_detects_a_lost_race,
                checkpoint_of_unknown_version_is_refused,
                parts_staged_in_any_order_commit_in_order,
                staged_parts_survive_a_rerun_and_cleanup,
                commit_with_a_missing_part_names_the_object_and_part,
                commit_parts_honours_put_modes,
                a_commit_discards_other_uploads_of_the_path,
                bad_upload_ids_and_parts_are_refused
            );
        }
    };
    (@one $make:ident: $($check:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check(super::$make().await).await;
            }
        )+
    };
}

conformance!(local, local_backend);
conformance!(azurite, azurite_backend);

// --- Azure-only checks ----------------------------------------------------------------------

#[tokio::test]
async fn azure_check_reports_a_missing_container_with_the_fix() {
    let az = azurite();
    let sink = az.sink("no-such-container-here", "p", az.credential());
    let err = sink.check().await.unwrap_err();
    match &err {
        SinkError::ContainerNotFound { hint, .. } => {
            assert!(
                hint.contains("az storage container create --name no-such-container-here --account-name devstoreaccount1"),
                "{hint}"
            );
        }
        other => panic!("expected ContainerNotFound, got {other:?}"),
    }
    // Reading from it is an error too, not "object absent".
    let err = sink.get("x").await.unwrap_err();
    assert!(
        matches!(err, SinkError::ContainerNotFound { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn azure_wrong_key_is_an_auth_error_naming_the_fix() {
    let az = azurite();
    let (container, _good) = az.new_container("wrongkey").await;
    // A valid-looking key that is not the account's.
    let wrong = "bm90LXRoZS1yZWFsLWtleS1ub3QtdGhlLXJlYWwta2V5LW5vdC10aGUtcmVhbC1rZXk=";
    let sink = az.sink(
        &container,
        "",
        StorageCredential::SharedKey {
            account: az.account.to_string(),
            key: Secret::new(wrong),
        },
    );
    let err = sink.check().await.unwrap_err();
    match &err {
        SinkError::Auth {
            status, message, ..
        } => {
            assert_eq!(*status, 403);
            assert!(message.contains("account key"), "{message}");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    assert!(!err.to_string().contains(wrong));
    let err = sink
        .put("x", Bytes::from_static(b"x"), PutMode::Overwrite)
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Auth { .. }), "{err:?}");
}

#[tokio::test]
async fn azure_sas_never_appears_in_urls_or_errors() {
    let az = azurite();
    let (container, _good) = az.new_container("sas").await;
    // Azurite validates SAS signatures: this one is well-formed but not signed by the key.
    let sig = "c2lnbmF0dXJlLXRoYXQtaXMtbm90LXZhbGlk";
    let sas = format!("sv=2023-11-03&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&sig={sig}");
    let sink = az.sink(
        &container,
        "p",
        StorageCredential::Sas(Secret::new(sas.clone())),
    );
    assert!(!sink.url_of("a/b").contains(sig));
    assert!(!sink.root_url().contains(sig));
    assert!(!format!("{sink:?}").contains(sig));
    let err = sink.check().await.unwrap_err();
    assert!(matches!(err, SinkError::Auth { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(!msg.contains(sig), "{msg}");
    assert!(msg.contains("SAS"), "{msg}");
}

#[tokio::test]
async fn azure_unreachable_endpoint_is_a_connect_error() {
    // A port nothing listens on: bind one, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let loc =
        AzureLocation::parse(&format!("http://127.0.0.1:{port}/devstoreaccount1/c/p")).unwrap();
    let sink = AzureSinkBuilder::new(loc)
        .with_credential(azurite_free_credential())
        .build()
        .unwrap();
    let err = sink.check().await.unwrap_err();
    match &err {
        SinkError::Connect { message, .. } => {
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

fn azurite_free_credential() -> StorageCredential {
    StorageCredential::SharedKey {
        account: auth::DEV_ACCOUNT.to_string(),
        key: Secret::new(auth::DEV_ACCOUNT_KEY),
    }
}

#[tokio::test]
async fn azure_connection_string_redirects_an_abfss_destination_to_the_emulator() {
    let az = azurite();
    let (container, direct) = az.new_container("connstr").await;
    // The user names the lake as Synapse does; the connection string points the same account
    // at the emulator.
    let dest = format!("abfss://{container}@devstoreaccount1.dfs.core.windows.net/jobs/orders");
    let cs = az.connection_string();
    let env = move |k: &str| (k == "AZURE_STORAGE_CONNECTION_STRING").then(|| cs.clone());
    let (loc, cred) = auth::resolve(AzureLocation::parse(&dest).unwrap(), &env).unwrap();
    let sink = AzureSinkBuilder::new(loc)
        .with_credential(cred)
        .build()
        .unwrap();
    sink.check().await.unwrap();
    sink.put("run1/_SUCCESS", Bytes::new(), PutMode::Create)
        .await
        .unwrap();
    let seen: Vec<String> = direct
        .list("jobs/orders/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .collect();
    assert_eq!(seen, vec!["jobs/orders/run1/_SUCCESS"]);
    assert_eq!(sink.list("").await.unwrap().len(), 1);
}

#[tokio::test]
async fn local_server_side_copy_is_unsupported_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let sink = LocalSink::new(dir.path());
    let src = "http://127.0.0.1:9/bucket/key.bin?X-Amz-Signature=deadbeefcafe0123&X-Amz-Expires=60";
    let err = sink
        .stage_part_from_url("key.bin", "u", 0, src, 0..10)
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Unsupported { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("--copy-mode client"), "{text}");
    assert!(text.contains("http://127.0.0.1:9/bucket/key.bin"), "{text}");
    assert!(
        !text.contains("deadbeefcafe0123") && !text.contains('?'),
        "{text}"
    );
}

#[tokio::test]
async fn azure_create_container_if_missing_is_idempotent() {
    let az = azurite();
    let (container, sink) = az.new_container("idem").await;
    sink.create_container_if_missing().await.unwrap();
    sink.check().await.unwrap();
    assert!(sink.root_url().contains(&container));
}

// --- server-side copy (Put Block From URL) -------------------------------------------------
// Azurite implements Put Block From URL from 3.37 on, for sources on the same Azurite
// instance only: it compares the copy source's host with the request's Host header and reads
// the source from its own socket's address, never over the network. So the service reads a
// blob of the emulator itself here; a presigned moto URL is refused (next test) without
// moto ever being contacted. Against a real account, the service reads S3 the same way.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_server_side_copy_stages_the_ranges_the_service_reads() {
    let az = azurite();
    let (src_container, src) = az.new_public_container("copy-src").await;
    let data = pattern(3 * 1024 * 1024 + 17, 77);
    src.put("in/object.bin", data.clone(), PutMode::Create)
        .await
        .unwrap();
    // A presigned-style URL: the source needs no Azure credential; the query string stands
    // for an S3 signature and must never be shown.
    let secret_sig = "5ec12e7516a7ed0000feedfacecafe0123456789";
    let source = format!(
        "{}/{src_container}/in/object.bin?X-Amz-Expires=600&X-Amz-Signature={secret_sig}",
        az.blob_endpoint
    );
    let (_dst_container, dst) = az.new_container("copy-dst").await;
    let dst: Arc<dyn Sink> = Arc::new(dst);
    let mib = 1024 * 1024u64;
    let ranges = [0..mib, mib..2 * mib + 5, 2 * mib + 5..data.len() as u64];
    // Out of order and concurrently, one part again.
    let mut tasks = Vec::new();
    for part in [2usize, 0, 1, 0] {
        let (dst, source, range) = (dst.clone(), source.clone(), ranges[part].clone());
        tasks.push(tokio::spawn(async move {
            dst.stage_part_from_url("out/object.bin", "copy-1", part as u32, &source, range)
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        dst.staged_parts("out/object.bin", "copy-1").await.unwrap(),
        vec![0, 1, 2]
    );
    assert!(dst.get("out/object.bin").await.unwrap().is_none());
    let put = dst
        .commit_parts("out/object.bin", "copy-1", 3, PutMode::Create)
        .await
        .unwrap();
    let got = dst.get("out/object.bin").await.unwrap().unwrap();
    assert_eq!(got.data.len(), data.len());
    assert!(
        got.data == data,
        "the service staged exactly the ranges asked for"
    );
    assert_eq!(got.etag, put.etag);

    // A source that is not there: the service says so, and the error shows the source
    // without its query string.
    let gone = source.replace("object.bin", "missing.bin");
    let err = dst
        .stage_part_from_url("out/other.bin", "copy-2", 0, &gone, 0..10)
        .await
        .unwrap_err();
    match &err {
        SinkError::CopySource {
            source_url, status, ..
        } => {
            assert_eq!(*status, 404);
            assert!(source_url.ends_with("/in/missing.bin"), "{source_url}");
        }
        other => panic!("expected CopySource, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        !text.contains(secret_sig) && !text.contains("X-Amz"),
        "{text}"
    );
    assert!(text.contains("--copy-mode client"), "{text}");

    // An empty range is refused before any request.
    let err = dst
        .stage_part_from_url("out/other.bin", "copy-2", 0, &source, 5..5)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::InvalidDestination { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(secret_sig), "{err}");
}

/// A put given the object's digests sends its MD5: the service keeps it as the blob's
/// `Content-MD5` whatever the object's size (one Put Blob, one block, or blocks of 8 MiB), and
/// refuses bytes that do not match it, leaving nothing at the path.
#[tokio::test]
async fn azure_put_digested_sends_the_md5_the_service_checks_and_keeps() {
    let az = azurite();
    let (container, sink) = az.new_public_container("digested").await;
    let mib = 1024 * 1024;
    let http = reqwest::Client::new();
    for (i, len) in [1_000usize, 20 * mib + 3, 40 * mib + 5]
        .into_iter()
        .enumerate()
    {
        let path = format!("d/part-{i}.bin");
        let data = pattern(len, 40 + i as u64);
        let digests = Digests::of(&data);
        sink.put_digested(&path, data.clone(), PutMode::Create, &digests)
            .await
            .unwrap();
        let got = sink.get(&path).await.unwrap().unwrap();
        assert!(got.data == data, "{len} bytes changed in transit");
        let head = http
            .head(format!("{}/{container}/{path}", az.blob_endpoint))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()
                .get("content-md5")
                .map(|v| v.to_str().unwrap()),
            Some(digests.md5_base64().as_str()),
            "{len} bytes: the blob's Content-MD5 is the manifest's"
        );
    }

    // Bytes that do not match the MD5 sent with them (a body damaged on its way) are refused,
    // and nothing becomes visible.
    let data = pattern(20 * mib, 50);
    let mut wrong = Digests::of(&data);
    wrong.md5[0] ^= 1;
    let err = sink
        .put_digested("d/damaged.bin", data, PutMode::Create, &wrong)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("d/damaged.bin"), "{text}");
    assert!(text.to_lowercase().contains("md5"), "{text}");
    assert!(sink.get("d/damaged.bin").await.unwrap().is_none());
}

/// An object in moto's S3 and a presigned GET URL for it.
async fn moto_presigned_object(data: Bytes) -> String {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_s3::presigning::PresigningConfig;
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(support::identity::moto_url())
        .force_path_style(true)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    let bucket = format!("copy-src-{:08x}", rand::random::<u32>());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("exports/part-0.jsonl.gz")
        .body(data.to_vec().into())
        .send()
        .await
        .unwrap();
    let presigned = s3
        .get_object()
        .bucket(&bucket)
        .key("exports/part-0.jsonl.gz")
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    presigned.uri().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_cannot_read_a_presigned_moto_url_and_the_error_says_so_without_the_signature() {
    let data = pattern(100_000, 5);
    let url = moto_presigned_object(data.clone()).await;
    // The URL itself is good: a plain ranged GET reads the bytes from moto.
    let got = reqwest::Client::new()
        .get(&url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 206);
    assert_eq!(&got.bytes().await.unwrap()[..], &data[..100]);

    let az = azurite();
    let (_c, dst) = az.new_container("copy-moto").await;
    let err = dst
        .stage_part_from_url("o.jsonl.gz", "moto-1", 0, &url, 0..100)
        .await
        .unwrap_err();
    // Azurite refuses a source on another host (moto's port) before reading it.
    match &err {
        SinkError::CopySource {
            status, source_url, ..
        } => {
            assert_eq!(*status, 404, "{err}");
            assert!(
                source_url.ends_with("/exports/part-0.jsonl.gz"),
                "{source_url}"
            );
        }
        other => panic!("expected CopySource, got {other:?}"),
    }
    let text = err.to_string();
    let signature = url.split("X-Amz-Signature=").nth(1).unwrap();
    assert!(!text.contains(signature), "{text}");
    assert!(!text.contains("X-Amz-Credential"), "{text}");
    assert!(dst
        .staged_parts("o.jsonl.gz", "moto-1")
        .await
        .unwrap()
        .is_empty());
}
