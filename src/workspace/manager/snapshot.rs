//! Revision snapshots on disk: `<data_dir>/revisions/<ws>/<rev>/` holds the workspace's files
//! at that revision, and `<data_dir>/tarballs/<ws>/<rev>.tar.{zst,gz}` their cached archives.
//!
//! A snapshot is built in a staging directory beside its final place and renamed into it, so a
//! `<rev>` directory is always complete: a crash leaves at most a `.staging-*` directory, which
//! [`prune`] removes.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::ManagerError;

const STAGING_PREFIX: &str = ".staging-";

pub(super) fn revisions_dir(data_dir: &Path, ws: &str) -> PathBuf {
    data_dir.join("revisions").join(ws)
}

pub(super) fn tarballs_dir(data_dir: &Path, ws: &str) -> PathBuf {
    data_dir.join("tarballs").join(ws)
}

pub(super) fn revision_dir(data_dir: &Path, ws: &str, revision: &str) -> PathBuf {
    revisions_dir(data_dir, ws).join(revision)
}

/// Creates the workspace's snapshot and tarball directories and drops staging leftovers.
pub(super) fn prepare_dirs(data_dir: &Path, ws: &str) -> Result<(), ManagerError> {
    for dir in [revisions_dir(data_dir, ws), tarballs_dir(data_dir, ws)] {
        fs::create_dir_all(&dir).map_err(|source| ManagerError::Io {
            context: format!("cannot create {}", dir.display()),
            source,
        })?;
    }
    prune(data_dir, ws, |_| true);
    Ok(())
}

/// A fresh, empty staging directory, deleted when dropped unless [`install`]ed.
pub(super) fn staging_dir(data_dir: &Path, ws: &str) -> io::Result<TempDir> {
    tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(revisions_dir(data_dir, ws))
}

/// Moves a checked staging directory to its revision's place. When that revision's snapshot
/// exists already (the same content was loaded before), the staging copy is dropped: equal
/// hashes mean equal files.
pub(super) fn install(
    data_dir: &Path,
    ws: &str,
    revision: &str,
    staging: TempDir,
) -> io::Result<PathBuf> {
    let target = revision_dir(data_dir, ws, revision);
    if target.is_dir() {
        force_remove(&staging.keep());
        return Ok(target);
    }
    let staged = staging.keep();
    if let Err(error) = fs::rename(&staged, &target) {
        force_remove(&staged);
        return Err(error);
    }
    Ok(target)
}

/// Deletes a revision's snapshot and cached tarballs. Failures are logged, not returned:
/// nothing waits on the deletion, and [`prune`] retries at the next start.
pub(super) fn remove(data_dir: &Path, ws: &str, revision: &str) {
    force_remove(&revision_dir(data_dir, ws, revision));
    for encoding in super::Encoding::ALL {
        let path = super::tarball::cache_path(data_dir, ws, revision, encoding);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot delete a cached tarball");
            }
        }
    }
}

/// Deletes staging leftovers, and every snapshot and tarball whose revision `keep` refuses.
pub(super) fn prune(data_dir: &Path, ws: &str, keep: impl Fn(&str) -> bool) {
    for name in entries(&revisions_dir(data_dir, ws)) {
        if name.starts_with(STAGING_PREFIX) || !keep(&name) {
            force_remove(&revisions_dir(data_dir, ws).join(&name));
        }
    }
    for name in entries(&tarballs_dir(data_dir, ws)) {
        let revision = name.split('.').next().unwrap_or_default();
        if revision.is_empty() || !keep(revision) {
            let path = tarballs_dir(data_dir, ws).join(&name);
            if let Err(error) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot delete a cached tarball");
            }
        }
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    read.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect()
}

/// `remove_dir_all`, and when it fails, again after making every directory writable: a
/// snapshot keeps the source's permissions, and a read-only directory cannot be emptied.
fn force_remove(path: &Path) {
    match fs::remove_dir_all(path) {
        Ok(()) => return,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return,
        Err(_) => {}
    }
    make_writable(path);
    if let Err(error) = fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), %error, "cannot delete a workspace snapshot");
    }
}

fn make_writable(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mut permissions = meta.permissions();
    permissions.set_mode(permissions.mode() | 0o700);
    // Best effort: whatever still fails shows up in the retried removal's warning.
    let _ = fs::set_permissions(dir, permissions);
    if let Ok(read) = fs::read_dir(dir) {
        for entry in read.filter_map(Result::ok) {
            make_writable(&entry.path());
        }
    }
}
