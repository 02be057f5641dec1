//! A local folder as a destination: the embedded default (`./lake`) and the sink the demo
//! uses. Puts are atomic through a temporary file in the same folder plus `rename` (or a hard
//! link for create-only puts, which fails if the target exists). ETags are content hashes, so
//! a conditional update detects any change made through another path.
//!
//! Conditional updates are serialised inside this process by a mutex; between processes the
//! job lock (a later addition, an OS file lock) keeps a single writer per job.

use super::{
    join_path, ETag, GetResult, LockGuard, LockHolder, ObjectMeta, PutMode, PutResult, Sink,
    SinkError,
};
use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
pub struct LocalSink {
    root: PathBuf,
    update_lock: Arc<Mutex<()>>,
}

impl LocalSink {
    /// A sink rooted at `root`. The folder is created on the first put, so that a fresh
    /// machine can run the demo with no set-up.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            update_lock: Arc::new(Mutex::new(())),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, path: &str) -> Result<PathBuf, SinkError> {
        let clean = join_path(&[path]);
        if clean.split('/').any(|seg| seg == ".." || seg == ".") {
            return Err(SinkError::InvalidDestination {
                dest: path.to_string(),
                reason: "path segments '.' and '..' are not allowed".into(),
            });
        }
        Ok(self.root.join(clean))
    }
}

fn etag_of(data: &[u8]) -> ETag {
    let digest = Sha256::digest(data);
    ETag(format!("\"{}\"", hex::encode(&digest[..12])))
}

fn io_err(path: &Path, source: std::io::Error) -> SinkError {
    SinkError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn read_existing(path: &Path) -> Result<Option<Vec<u8>>, SinkError> {
    match std::fs::read(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

/// Whether a file name is one of [`write_temp`]'s temporary files.
fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Write `data` to a temporary file beside `target`, flushed to disk, and return its path.
fn write_temp(target: &Path, data: &[u8]) -> Result<PathBuf, SinkError> {
    let dir = target.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", rand::random::<u64>()));
    let mut file = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    file.write_all(data).map_err(|e| io_err(&tmp, e))?;
    file.sync_all().map_err(|e| io_err(&tmp, e))?;
    Ok(tmp)
}

fn put_blocking(
    target: &Path,
    data: &[u8],
    mode: &PutMode,
    url: String,
) -> Result<ETag, SinkError> {
    if let PutMode::Update(expected) = mode {
        match read_existing(target)? {
            Some(current) if &etag_of(&current) == expected => {}
            Some(_) => return Err(SinkError::PreconditionFailed { url }),
            None => return Err(SinkError::NotFound { url }),
        }
    }
    let tmp = write_temp(target, data)?;
    let result = match mode {
        // A hard link fails with AlreadyExists when the target exists: an atomic create-only.
        PutMode::Create => match std::fs::hard_link(&tmp, target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(SinkError::AlreadyExists { url })
            }
            Err(e) => Err(io_err(target, e)),
        },
        PutMode::Overwrite | PutMode::Update(_) => {
            std::fs::rename(&tmp, target).map_err(|e| io_err(target, e))
        }
    };
    // After a rename the temp file is gone; after a link (or a failure) it must be removed.
    let _ = std::fs::remove_file(&tmp);
    result.map(|()| etag_of(data))
}

fn list_blocking(root: &Path, prefix: &str) -> Result<Vec<ObjectMeta>, SinkError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&dir, e))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(|e| io_err(&path, e))?;
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            // Temporary files of in-flight puts are not objects.
            if is_temp_name(rel.rsplit('/').next().unwrap_or(&rel)) {
                continue;
            }
            if rel.starts_with(prefix) {
                out.push(ObjectMeta {
                    path: rel,
                    size: meta.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SinkError::Io {
            path: "<local sink task>".into(),
            source: std::io::Error::other(e.to_string()),
        })?
}

#[async_trait]
impl Sink for LocalSink {
    fn root_url(&self) -> String {
        format!("file://{}", absolute(&self.root).display())
    }

    fn url_of(&self, path: &str) -> String {
        format!(
            "file://{}",
            absolute(&self.root.join(join_path(&[path]))).display()
        )
    }

    async fn check(&self) -> Result<(), SinkError> {
        // The folder may not exist yet (it is created on first put); its nearest existing
        // ancestor must be a writable directory.
        let mut probe = absolute(&self.root);
        loop {
            match std::fs::metadata(&probe) {
                Ok(m) if m.is_dir() => {
                    return if m.permissions().readonly() {
                        Err(SinkError::Io {
                            path: probe.display().to_string(),
                            source: std::io::Error::new(
                                std::io::ErrorKind::PermissionDenied,
                                "folder is read-only",
                            ),
                        })
                    } else {
                        Ok(())
                    };
                }
                Ok(_) => {
                    return Err(SinkError::InvalidDestination {
                        dest: self.root.display().to_string(),
                        reason: format!("{} exists and is not a folder", probe.display()),
                    })
                }
                Err(_) => {
                    if !probe.pop() {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn ensure_root(&self) -> Result<(), SinkError> {
        let root = self.root.clone();
        blocking(move || std::fs::create_dir_all(&root).map_err(|e| io_err(&root, e))).await
    }

    async fn put(&self, path: &str, data: Bytes, mode: PutMode) -> Result<PutResult, SinkError> {
        let target = self.path_of(path)?;
        let url = self.url_of(path);
        let _guard = match mode {
            PutMode::Update(_) => Some(self.update_lock.lock().await),
            _ => None,
        };
        let url2 = url.clone();
        let etag = blocking(move || put_blocking(&target, &data, &mode, url2)).await?;
        Ok(PutResult { etag, url })
    }

    async fn get(&self, path: &str) -> Result<Option<GetResult>, SinkError> {
        let target = self.path_of(path)?;
        blocking(move || {
            Ok(read_existing(&target)?.map(|d| GetResult {
                etag: etag_of(&d),
                data: Bytes::from(d),
            }))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, SinkError> {
        let root = self.root.clone();
        let prefix = prefix.trim_start_matches('/').to_string();
        blocking(move || list_blocking(&root, &prefix)).await
    }

    async fn delete(&self, path: &str) -> Result<(), SinkError> {
        let target = self.path_of(path)?;
        blocking(move || match std::fs::remove_file(&target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&target, e)),
        })
        .await
    }

    async fn remove_incomplete(&self, prefix: &str) -> Result<(), SinkError> {
        let dir = self.path_of(prefix)?;
        blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_err(&dir, e)),
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if is_temp_name(&name) {
                    let path = entry.path();
                    std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn lock(&self, path: &str, holder: &LockHolder) -> Result<Box<dyn LockGuard>, SinkError> {
        let target = self.path_of(path)?;
        let url = self.url_of(path);
        let holder = holder.clone();
        let lock = blocking(move || lock_blocking(&target, &holder, url)).await?;
        Ok(Box::new(lock))
    }
}

/// An OS file lock (`flock`) on the lock file, held by keeping the file open: the operating
/// system releases it when the process ends, however it ends.
#[derive(Debug)]
struct LocalLock {
    file: std::fs::File,
}

#[async_trait]
impl LockGuard for LocalLock {
    async fn release(self: Box<Self>) -> Result<(), SinkError> {
        // Closing the file releases the lock as well; unlocking first makes it immediate.
        let _ = self.file.unlock();
        Ok(())
    }
}

fn lock_blocking(target: &Path, holder: &LockHolder, url: String) -> Result<LocalLock, SinkError> {
    use std::io::{Read, Seek};
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(target)
        .map_err(|e| io_err(target, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            return Err(SinkError::Busy {
                url,
                holder: LockHolder::describe(&bytes),
                hint: "; a local lock is released as soon as that process exits, however it exits. Pass --wait-for-lock [DURATION] to wait for it".into(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(target, e)),
    }
    let json = serde_json::to_vec(holder).unwrap_or_default();
    file.set_len(0).map_err(|e| io_err(target, e))?;
    file.rewind().map_err(|e| io_err(target, e))?;
    file.write_all(&json).map_err(|e| io_err(target, e))?;
    Ok(LocalLock { file })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
