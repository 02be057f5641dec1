//! Local folders that a failed command created are removed again when they are left empty.
//!
//! Writing the first object into `./lake/orders` creates `./lake` and `./lake/orders`; when the
//! command then fails with nothing kept there (the library removes a failed first run's state,
//! `gatelake::state::fresh`), those folders would only mislead: they look like a job that ran.
//! Only folders that did not exist (or were empty) before the command are touched, and only
//! while they are empty: `remove_dir` refuses anything else.

use gatelake::sink::Destination;
use std::path::{Path, PathBuf};

/// What a local destination looked like before the command.
#[derive(Debug)]
pub struct LocalFolders {
    root: PathBuf,
    /// The root was missing or held nothing: empty folders under it are this command's.
    root_was_empty: bool,
    /// The topmost of the root and its ancestors that did not exist.
    first_created: Option<PathBuf>,
}

impl LocalFolders {
    /// Note the state of a local destination; `None` for other destinations.
    pub fn before(dest: &Destination) -> Option<Self> {
        let Destination::Local(root) = dest else {
            return None;
        };
        let root = std::path::absolute(root).unwrap_or_else(|_| root.clone());
        let root_was_empty = match std::fs::read_dir(&root) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        let mut first_created = None;
        let mut probe = Some(root.as_path());
        while let Some(p) = probe {
            if p.exists() {
                break;
            }
            first_created = Some(p.to_path_buf());
            probe = p.parent();
        }
        Some(Self {
            root,
            root_was_empty,
            first_created,
        })
    }

    /// Remove what this command created and left empty.
    pub fn remove_empty(&self) {
        if !self.root_was_empty {
            return;
        }
        remove_empty_below(&self.root);
        let Some(top) = &self.first_created else {
            return;
        };
        let mut dir = Some(self.root.as_path());
        while let Some(d) = dir {
            if std::fs::remove_dir(d).is_err() || d == top {
                break;
            }
            dir = d.parent();
        }
    }
}

/// Remove the empty folders under `dir` (not `dir` itself), deepest first.
fn remove_empty_below(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_below(&path);
            // Fails, as it should, when the folder still holds anything.
            let _ = std::fs::remove_dir(&path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_what_was_not_there_and_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lake/orders");
        let folders = LocalFolders::before(&Destination::Local(root.clone())).unwrap();
        std::fs::create_dir_all(root.join("_state")).unwrap();
        folders.remove_empty();
        assert!(!dir.path().join("lake").exists());

        // An existing empty root stays; its new empty subfolders go.
        std::fs::create_dir_all(&root).unwrap();
        let folders = LocalFolders::before(&Destination::Local(root.clone())).unwrap();
        std::fs::create_dir_all(root.join("_state")).unwrap();
        folders.remove_empty();
        assert!(root.exists() && !root.join("_state").exists());

        // A file anywhere keeps its folders.
        let folders = LocalFolders::before(&Destination::Local(root.clone())).unwrap();
        std::fs::create_dir_all(root.join("_state")).unwrap();
        std::fs::write(root.join("_state/checkpoint.json"), b"{}").unwrap();
        folders.remove_empty();
        assert!(root.join("_state/checkpoint.json").exists());

        // A root that held something before is left alone entirely.
        std::fs::create_dir_all(root.join("empty-by-choice")).unwrap();
        let folders = LocalFolders::before(&Destination::Local(root.clone())).unwrap();
        folders.remove_empty();
        assert!(root.join("empty-by-choice").exists());
    }
}
