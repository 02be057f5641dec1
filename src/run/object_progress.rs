//! The checkpoint of an object run while its objects land: one shared copy in memory, saved
//! by whoever asks after changing it, with the saves coalesced: one save carries every change
//! made before it started. A save that loses the race to another writer stops the run
//! ([`StateError::LostRace`]).
//!
//! Two kinds of change:
//! - [`SharedCheckpoint::update`] returns once a save holds the change: the plan, a source's
//!   notes, a `--land records` object's progress (whose record offset must be durable before
//!   the next chunk lands);
//! - [`SharedCheckpoint::note`] (an as-is object landed, a part staged) saves at most every
//!   [`NOTE_INTERVAL`]: a note lost in a kill only means that object is landed again, at the
//!   same path with the same bytes, or that part staged again — the storage's own list of
//!   staged parts is what a resume trusts. So a thousand small objects cost a few writes of
//!   the checkpoint, not a thousand. [`SharedCheckpoint::flush`] saves what is left.

use crate::encode::schema::Schema;
use crate::objects::land::PartLedger;
use crate::objects::source::SourceNotes;
use crate::state::objects::{ManifestObject, ObjectsProgress, StagingObject};
use crate::state::records::RecordsProgress;
use crate::state::run_id::now_rfc3339;
use crate::state::{Checkpoint, CheckpointStore, StateError};
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest an as-is object's landing stays unsaved while others land (at least: see
/// [`SAVE_SHARE`]).
pub(super) const NOTE_INTERVAL: Duration = Duration::from_millis(500);
/// A note waits at least this many times as long as the last save took: the checkpoint grows
/// with the run's objects (a 10,000-object run's is megabytes), and saving it every
/// [`NOTE_INTERVAL`] whatever its size would make the saves' cost grow with the square of
/// the objects. This way saving takes at most about a tenth of the run's time.
pub(super) const SAVE_SHARE: u32 = 9;

/// The run's checkpoint, shared by the tasks landing its objects.
#[derive(Debug)]
pub(super) struct SharedCheckpoint {
    cp: Mutex<Checkpoint>,
    store: tokio::sync::Mutex<CheckpointStore>,
    /// Changes made (a counter), and the last change a completed save included.
    changed: AtomicU64,
    saved: AtomicU64,
    /// When the last save started, and how long the last completed save took.
    last_save: Mutex<Instant>,
    save_took: Mutex<Duration>,
}

impl SharedCheckpoint {
    pub(super) fn new(cp: Checkpoint, store: CheckpointStore) -> Self {
        Self {
            cp: Mutex::new(cp),
            store: tokio::sync::Mutex::new(store),
            changed: AtomicU64::new(0),
            saved: AtomicU64::new(0),
            last_save: Mutex::new(Instant::now()),
            save_took: Mutex::new(Duration::ZERO),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Checkpoint> {
        // A panic while holding the lock leaves a checkpoint that is still whole (every
        // change is one assignment): keep using it.
        self.cp.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the objects' progress, then save (coalesced with concurrent changes).
    pub(super) async fn update(
        &self,
        change: impl FnOnce(&mut ObjectsProgress),
    ) -> Result<(), StateError> {
        let mine = {
            let mut cp = self.lock();
            change(cp.objects.get_or_insert_with(Default::default));
            self.changed.fetch_add(1, Ordering::SeqCst) + 1
        };
        self.save_including(mine).await
    }

    /// Change the objects' progress; save when the last save is [`NOTE_INTERVAL`] old.
    pub(super) async fn note(
        &self,
        change: impl FnOnce(&mut ObjectsProgress),
    ) -> Result<(), StateError> {
        let mine = {
            let mut cp = self.lock();
            change(cp.objects.get_or_insert_with(Default::default));
            self.changed.fetch_add(1, Ordering::SeqCst) + 1
        };
        let wait = self
            .save_took
            .lock()
            .map(|d| NOTE_INTERVAL.max(*d * SAVE_SHARE))
            .unwrap_or(NOTE_INTERVAL);
        let due = self
            .last_save
            .lock()
            .map(|t| t.elapsed() >= wait)
            .unwrap_or(true);
        if due {
            self.save_including(mine).await?;
        }
        Ok(())
    }

    /// Save every change made so far.
    pub(super) async fn flush(&self) -> Result<(), StateError> {
        let now = self.changed.load(Ordering::SeqCst);
        self.save_including(now).await
    }

    /// Change the whole checkpoint, then save.
    pub(super) async fn update_checkpoint(
        &self,
        change: impl FnOnce(&mut Checkpoint),
    ) -> Result<(), StateError> {
        let mine = {
            let mut cp = self.lock();
            change(&mut cp);
            self.changed.fetch_add(1, Ordering::SeqCst) + 1
        };
        self.save_including(mine).await
    }

    async fn save_including(&self, change: u64) -> Result<(), StateError> {
        let mut store = self.store.lock().await;
        if self.saved.load(Ordering::SeqCst) >= change {
            // A save that started after this change carried it.
            return Ok(());
        }
        let started = Instant::now();
        if let Ok(mut t) = self.last_save.lock() {
            *t = started;
        }
        let (snapshot, upto) = {
            let mut cp = self.lock();
            cp.updated_at = now_rfc3339();
            (cp.clone(), self.changed.load(Ordering::SeqCst))
        };
        store.save(&snapshot).await?;
        self.saved.fetch_max(upto, Ordering::SeqCst);
        if let Ok(mut d) = self.save_took.lock() {
            *d = started.elapsed();
        }
        Ok(())
    }

    /// The store, once every task is done (for the run's commit).
    pub(super) fn into_parts(self) -> (Checkpoint, CheckpointStore) {
        let cp = self.cp.into_inner().unwrap_or_else(|e| e.into_inner());
        (cp, self.store.into_inner())
    }

    pub(super) fn progress(&self) -> ObjectsProgress {
        self.lock().objects.clone().unwrap_or_default()
    }

    /// The staged parts the checkpoint records for `name` (without copying the whole
    /// progress: a run asks once per object).
    pub(super) fn staging_of(&self, name: &str) -> Option<StagingObject> {
        self.lock()
            .objects
            .as_ref()
            .and_then(|p| p.staging_of(name).cloned())
    }

    /// The planned objects not landed yet, in plan order.
    pub(super) fn unlanded(&self) -> Vec<crate::state::objects::PlannedObject> {
        let cp = self.lock();
        let Some(p) = cp.objects.as_ref() else {
            return Vec::new();
        };
        let landed: std::collections::HashSet<&str> =
            p.landed.iter().map(|l| l.name.as_str()).collect();
        p.planned
            .iter()
            .flatten()
            .filter(|o| !landed.contains(o.name.as_str()))
            .cloned()
            .collect()
    }

    /// The progress of an object landing as records, when it has some.
    pub(super) fn records_progress(&self, name: &str) -> Option<RecordsProgress> {
        self.lock()
            .objects
            .as_ref()
            .and_then(|p| p.records.get(name).cloned())
    }

    /// The columns of the run's committed chunks (`--land records`).
    pub(super) fn schema(&self) -> Option<Schema> {
        self.lock().schema.clone()
    }

    pub(super) async fn landed(&self, object: ManifestObject) -> Result<(), StateError> {
        self.note(|p| p.record_landed(object)).await
    }
}

#[async_trait]
impl PartLedger for SharedCheckpoint {
    async fn staged(&self, staging: &StagingObject, part: u32) -> Result<(), String> {
        self.note(|p| p.record_staged(staging, part))
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl SourceNotes for SharedCheckpoint {
    async fn get(&self, key: &str) -> Option<String> {
        self.lock()
            .objects
            .as_ref()
            .and_then(|p| p.source_notes.get(key).cloned())
    }

    async fn set(&self, key: &str, value: &str) -> Result<(), String> {
        let (key, value) = (key.to_string(), value.to_string());
        self.update(|p| {
            p.source_notes.insert(key, value);
        })
        .await
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sink::local::LocalSink;
    use crate::sink::Sink;
    use crate::state::{RunStatus, CHECKPOINT_VERSION};
    use std::sync::Arc;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            job: "j".into(),
            run_id: "r".into(),
            status: RunStatus::Running,
            source_url: "s3://b/p/".into(),
            next_seq: 0,
            next_request: None,
            next_body: None,
            last_request: None,
            pages: 0,
            files: vec![],
            schema: None,
            schema_changes: vec![],
            compared_with_run: None,
            rejected: vec![],
            first_request: None,
            since: None,
            watermark: None,
            listing: Default::default(),
            objects: Some(Default::default()),
            started_at: "t".into(),
            updated_at: "t".into(),
        }
    }

    fn planned(name: &str) -> crate::state::objects::PlannedObject {
        crate::state::objects::PlannedObject {
            name: name.into(),
            source: format!("s3://b/p/{name}"),
            size: Some(1),
            checksum: None,
            records: None,
            etag: None,
            version_id: None,
            last_modified: None,
        }
    }

    #[tokio::test]
    async fn unlanded_objects_keep_plan_order_and_staging_is_found_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
        let mut cp = checkpoint();
        let p = cp.objects.as_mut().unwrap();
        p.planned = Some(["c", "a", "b", "d"].map(planned).to_vec());
        p.record_landed(ManifestObject {
            name: "a".into(),
            source: "s3://b/p/a".into(),
            version_id: None,
            etag: None,
            size: 1,
            checksum: None,
            verified: vec!["size".into()],
            path: "r/a".into(),
            url: "u".into(),
            land: "as-is".into(),
            mode: "client".into(),
        });
        let staging = StagingObject {
            name: "d".into(),
            upload: "up".into(),
            part_size: 8,
            parts: 3,
            staged: vec![],
        };
        p.record_staged(&staging, 1);
        let shared = SharedCheckpoint::new(cp, CheckpointStore::new(sink));
        let names: Vec<String> = shared.unlanded().into_iter().map(|o| o.name).collect();
        assert_eq!(names, ["c", "b", "d"]);
        assert_eq!(shared.staging_of("d").unwrap().staged, vec![1]);
        assert!(shared.staging_of("c").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_changes_are_all_saved_in_fewer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(dir.path()));
        let shared = Arc::new(SharedCheckpoint::new(
            checkpoint(),
            CheckpointStore::new(sink.clone()),
        ));
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = shared.clone();
            tasks.push(tokio::spawn(async move {
                s.set(&format!("k{i}"), "v").await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let saved = CheckpointStore::new(sink).load().await.unwrap().unwrap();
        assert_eq!(saved.objects.unwrap().source_notes.len(), 200);
        assert_eq!(shared.get("k7").await.as_deref(), Some("v"));
    }
}
