//! A cheap change detector for folder sources: a hash of every entry's path, type, size, inode
//! and modification and change times, read from metadata only. Polling hashes this every few
//! seconds; the contents are read and hashed only when it differs from the last load's.
//!
//! `ctime` is included because tools that preserve `mtime` (`cp -p`, `rsync -t`, `touch -d`)
//! still bump it, and the inode because an editor's save-by-rename swaps it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of the tree under `root`, or `None` when the root cannot be read (a
    /// load then reports why).
    pub(super) fn of(root: &Path) -> Option<Fingerprint> {
        fs::read_dir(root).ok()?;
        let mut lines = Vec::new();
        walk(root, "", &mut lines);
        lines.sort();
        let mut hasher = Sha256::new();
        for line in &lines {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        Some(Fingerprint(hasher.finalize().into()))
    }
}

fn walk(dir: &Path, relative: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        out.push(format!("{relative}\tunreadable"));
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if relative.is_empty() && name == ".git" {
            continue;
        }
        let child = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        out.push(format!(
            "{child}\t{:o}\t{}\t{}\t{}.{}\t{}.{}",
            meta.mode(),
            meta.len(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        ));
        if meta.file_type().is_symlink() {
            // A link's own times do not change when its target does.
            let target = fs::read_link(&path).unwrap_or_default();
            let followed = fs::metadata(&path)
                .map(|m| format!("{}\t{}.{}", m.len(), m.mtime(), m.mtime_nsec()))
                .unwrap_or_default();
            out.push(format!("{child}\t-> {}\t{followed}", target.display()));
        } else if meta.is_dir() {
            walk(&path, &child, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_content_size_and_new_files_only() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.yaml"), "a").unwrap();
        let first = Fingerprint::of(dir.path()).unwrap();
        assert_eq!(Fingerprint::of(dir.path()), Some(first.clone()));

        fs::write(dir.path().join("a.yaml"), "ab").unwrap();
        let grown = Fingerprint::of(dir.path()).unwrap();
        assert_ne!(grown, first);

        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/b.yaml"), "b").unwrap();
        assert_ne!(Fingerprint::of(dir.path()).unwrap(), grown);
    }

    #[test]
    fn ignores_git_metadata_and_reports_a_missing_root() {
        let dir = tempfile::tempdir().unwrap();
        let before = Fingerprint::of(dir.path()).unwrap();
        fs::create_dir(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "ref").unwrap();
        assert_eq!(Fingerprint::of(dir.path()), Some(before));
        assert_eq!(Fingerprint::of(&dir.path().join("missing")), None);
    }
}
