//! A local folder as a destination: the embedded default (`./lake`) and the sink the demo
//! uses. Puts are atomic through a temporary file in the same folder plus `rename` (or a hard
//! link for create-only puts, which fails if the target exists). ETags are content hashes, so
//! a conditional update detects any change made through another path.
//!
//! Conditional updates are serialised inside this process by a mutex; between processes the
//! job lock (a later addition, an OS file lock) keeps a single writer per job.
//!
//! Multi-part writes stage each part as a file (written atomically, like a put) in a hidden
//! folder beside the object, `.<name>.parts-<upload>/`, which `list` never shows and
//! `remove_incomplete` never removes (a rerun resumes it). The commit concatenates the parts
//! into a temporary file, streaming (memory stays small whatever the object's size), renames
//! (or links) it into place, then removes the object's part folders.

use super::{
    check_part, join_path, missing_parts_error, url_without_query, Digests, ETag, GetResult,
    LockGuard, LockHolder, ObjectMeta, PutMode, PutResult, Sink, SinkError,
};
use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
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

    /// `put`, with the data's ETag when the caller knows its SHA-256.
    async fn put_with(
        &self,
        path: &str,
        data: Bytes,
        mode: PutMode,
        etag: Option<ETag>,
    ) -> Result<PutResult, SinkError> {
        let target = self.path_of(path)?;
        let url = self.url_of(path);
        let _guard = match mode {
            PutMode::Update(_) => Some(self.update_lock.lock().await),
            _ => None,
        };
        let url2 = url.clone();
        let etag = blocking(move || put_blocking(&target, &data, &mode, url2, etag)).await?;
        Ok(PutResult { etag, url })
    }
}

fn etag_of(data: &[u8]) -> ETag {
    let mut hasher = Sha256::new();
    hasher.update(data);
    etag_from(hasher)
}

/// The ETag of the content fed to `hasher`: the same for the same bytes however they came.
fn etag_from(hasher: Sha256) -> ETag {
    etag_from_sha256(&hasher.finalize())
}

/// The ETag of the content whose SHA-256 is `sha256`.
fn etag_from_sha256(sha256: &[u8]) -> ETag {
    ETag(format!("\"{}\"", hex::encode(&sha256[..12])))
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

/// Whether a folder name is one of [`parts_dir`]'s hidden part folders.
fn is_parts_dir_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(PARTS_MARK)
}

const PARTS_MARK: &str = ".parts-";

/// The hidden folder holding the staged parts of `upload` for the object at `target`.
fn parts_dir(target: &Path, upload: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}{PARTS_MARK}{upload}"))
}

fn part_file(dir: &Path, part: u32) -> PathBuf {
    dir.join(format!("{part:05}.part"))
}

/// The staged parts in `dir` (sorted); a missing folder has none.
fn staged_blocking(dir: &Path) -> Result<Vec<u32>, SinkError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut parts = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files of killed part writes are skipped: not staged.
        if let Some(n) = name.strip_suffix(".part").filter(|_| !is_temp_name(&name)) {
            if let Ok(n) = n.parse::<u32>() {
                parts.push(n);
            }
        }
    }
    parts.sort_unstable();
    Ok(parts)
}

fn stage_blocking(dir: &Path, part: u32, data: &[u8]) -> Result<(), SinkError> {
    let target = part_file(dir, part);
    let tmp = write_temp(&target, data)?;
    let renamed = std::fs::rename(&tmp, &target).map_err(|e| io_err(&target, e));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// SHA-256 of a file, read in pieces; `None` when it does not exist.
fn etag_of_file(path: &Path) -> Result<Option<ETag>, SinkError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = file.read(&mut buf).map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Some(etag_from(hasher)))
}

/// Buffer of the streaming copies (commit, hashing): memory stays this small per commit.
const COPY_BUFFER: usize = 1024 * 1024;

/// Concatenate parts `0..parts` of `dir` into a temporary file beside `target`, flushed to
/// disk; returns its path and the content's ETag.
fn concat_parts(target: &Path, dir: &Path, parts: u32) -> Result<(PathBuf, ETag), SinkError> {
    let tmp = write_temp(target, &[])?;
    let result = (|| {
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; COPY_BUFFER];
        for part in 0..parts {
            let path = part_file(dir, part);
            let mut input = std::fs::File::open(&path).map_err(|e| io_err(&path, e))?;
            loop {
                let n = input.read(&mut buf).map_err(|e| io_err(&path, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(|e| io_err(&tmp, e))?;
            }
        }
        out.sync_all().map_err(|e| io_err(&tmp, e))?;
        Ok(etag_from(hasher))
    })();
    match result {
        Ok(etag) => Ok((tmp, etag)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Remove every part folder of the object at `target` (of any upload): after a commit none
/// of them can be resumed, as on Azure, where a commit discards all uncommitted blocks.
fn remove_part_dirs(target: &Path) -> Result<(), SinkError> {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Ok(());
    };
    let prefix = format!(".{}{PARTS_MARK}", name.to_string_lossy());
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let path = entry.path();
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path, e)),
            }
        }
    }
    Ok(())
}

/// What a multi-part commit needs to know.
struct Commit {
    target: PathBuf,
    dir: PathBuf,
    upload: String,
    parts: u32,
    mode: PutMode,
    url: String,
}

fn commit_blocking(c: Commit) -> Result<ETag, SinkError> {
    let staged = staged_blocking(&c.dir)?;
    if let Some(err) = missing_parts_error(&c.url, &c.upload, c.parts, &staged) {
        return Err(err);
    }
    if let PutMode::Update(expected) = &c.mode {
        match etag_of_file(&c.target)? {
            Some(current) if &current == expected => {}
            Some(_) => return Err(SinkError::PreconditionFailed { url: c.url }),
            None => return Err(SinkError::NotFound { url: c.url }),
        }
    }
    if c.mode == PutMode::Create && c.target.exists() {
        // Fail before copying every part; the link below still decides any race.
        return Err(SinkError::AlreadyExists { url: c.url });
    }
    let (tmp, etag) = concat_parts(&c.target, &c.dir, c.parts)?;
    let placed = match c.mode {
        PutMode::Create => match std::fs::hard_link(&tmp, &c.target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(SinkError::AlreadyExists { url: c.url })
            }
            Err(e) => Err(io_err(&c.target, e)),
        },
        PutMode::Overwrite | PutMode::Update(_) => {
            std::fs::rename(&tmp, &c.target).map_err(|e| io_err(&c.target, e))
        }
    };
    let _ = std::fs::remove_file(&tmp);
    placed?;
    remove_part_dirs(&c.target)?;
    Ok(etag)
}

/// Store `data` at `target`; `etag` is the data's ETag when its SHA-256 is already known.
fn put_blocking(
    target: &Path,
    data: &[u8],
    mode: &PutMode,
    url: String,
    etag: Option<ETag>,
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
    result.map(|()| etag.unwrap_or_else(|| etag_of(data)))
}

/// Remove the temporary files (of killed writes) directly in `dir`.
fn remove_temp_files(dir: &Path) -> Result<(), SinkError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    };
    for entry in entries.flatten() {
        if is_temp_name(&entry.file_name().to_string_lossy()) {
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path, e)),
            }
        }
    }
    Ok(())
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
                // Staged parts of multi-part writes are not objects (yet).
                if !is_parts_dir_name(&entry.file_name().to_string_lossy()) {
                    stack.push(path);
                }
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
        self.put_with(path, data, mode, None).await
    }

    async fn put_digested(
        &self,
        path: &str,
        data: Bytes,
        mode: PutMode,
        digests: &Digests,
    ) -> Result<PutResult, SinkError> {
        let etag = etag_from_sha256(&digests.sha256);
        self.put_with(path, data, mode, Some(etag)).await
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
                let path = entry.path();
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if is_dir && is_parts_dir_name(&name) {
                    // Staged parts stay (a rerun resumes them); a killed part write's
                    // temporary file inside goes.
                    remove_temp_files(&path)?;
                } else if !is_dir && is_temp_name(&name) {
                    std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn stage_part(
        &self,
        path: &str,
        upload: &str,
        part: u32,
        data: Bytes,
    ) -> Result<(), SinkError> {
        let target = self.path_of(path)?;
        check_part(&self.url_of(path), upload, part)?;
        let dir = parts_dir(&target, upload);
        blocking(move || stage_blocking(&dir, part, &data)).await
    }

    async fn staged_parts(&self, path: &str, upload: &str) -> Result<Vec<u32>, SinkError> {
        let target = self.path_of(path)?;
        check_part(&self.url_of(path), upload, 0)?;
        let dir = parts_dir(&target, upload);
        blocking(move || staged_blocking(&dir)).await
    }

    async fn commit_parts(
        &self,
        path: &str,
        upload: &str,
        parts: u32,
        mode: PutMode,
    ) -> Result<PutResult, SinkError> {
        let target = self.path_of(path)?;
        let url = self.url_of(path);
        check_part(&url, upload, parts.saturating_sub(1))?;
        let _guard = match mode {
            PutMode::Update(_) => Some(self.update_lock.lock().await),
            _ => None,
        };
        let commit = Commit {
            dir: parts_dir(&target, upload),
            target,
            upload: upload.to_string(),
            parts,
            mode,
            url: url.clone(),
        };
        let etag = blocking(move || commit_blocking(commit)).await?;
        Ok(PutResult { etag, url })
    }

    async fn stage_part_from_url(
        &self,
        path: &str,
        _upload: &str,
        _part: u32,
        source_url: &str,
        _range: std::ops::Range<u64>,
    ) -> Result<(), SinkError> {
        Err(SinkError::Unsupported {
            url: self.url_of(path),
            what: format!(
                "a server-side copy (from {}) into a local folder",
                url_without_query(source_url)
            ),
            fix: "a folder cannot fetch a URL by itself: copy through this process instead (--copy-mode client)".into(),
        })
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
