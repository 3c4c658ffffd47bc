//! A remote worker's cache of workspace revisions (API §7.7, DESIGN §4): each revision is
//! downloaded once as a tarball, extracted defensively into `workspace_cache_dir/<ws>/<rev>/`,
//! and every attempt then runs in its own copy of that tree.
//!
//! Extraction trusts nothing in the archive: absolute paths, `..` segments, hard links,
//! devices, FIFOs and symbolic links whose target leaves the tree are refused, and no entry is
//! ever written through a link. A tree is extracted beside its final place and renamed, so a
//! revision directory that exists is always complete.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

/// Why a revision could not be made available.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error("invalid revision '{0}': a revision is lowercase hexadecimal")]
    InvalidRevision(String),
    #[error("invalid workspace name '{0}'")]
    InvalidWorkspace(String),
    #[error("unsafe archive entry '{path}': {reason}")]
    Unsafe { path: String, reason: &'static str },
    #[error("cannot extract the revision: {0}")]
    Io(#[from] io::Error),
}

/// The extracted revisions under one directory.
#[derive(Debug, Clone)]
pub struct RevisionCache {
    dir: PathBuf,
}

impl RevisionCache {
    pub fn new(dir: PathBuf) -> Self {
        RevisionCache { dir }
    }

    /// Where `ws`'s `revision` lives once extracted. Both names are checked first, since they
    /// come from the server and become path segments.
    pub fn path(&self, ws: &str, revision: &str) -> Result<PathBuf, RevisionError> {
        if revision.is_empty()
            || !revision
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        {
            return Err(RevisionError::InvalidRevision(revision.to_owned()));
        }
        if !crate::config::valid_workspace_name(ws) {
            return Err(RevisionError::InvalidWorkspace(ws.to_owned()));
        }
        Ok(self.dir.join(ws).join(revision))
    }

    /// The extracted tree, if this revision was fetched before.
    pub fn cached(&self, ws: &str, revision: &str) -> Result<Option<PathBuf>, RevisionError> {
        let path = self.path(ws, revision)?;
        Ok(path.is_dir().then_some(path))
    }

    /// Extracts a `tar` stream (already decompressed) as `ws`'s `revision` and returns its
    /// directory. Blocking. When another extraction of the same revision won the race, its tree
    /// is kept and this one discarded.
    pub fn extract(
        &self,
        ws: &str,
        revision: &str,
        tar: impl Read,
    ) -> Result<PathBuf, RevisionError> {
        let target = self.path(ws, revision)?;
        let parent = self.dir.join(ws);
        fs::create_dir_all(&parent)?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{revision}.partial-"))
            .tempdir_in(&parent)?;
        unpack(tar, staging.path())?;
        let staged = staging.keep();
        if let Err(error) = fs::rename(&staged, &target) {
            let _ = fs::remove_dir_all(&staged);
            if !target.is_dir() {
                return Err(error.into());
            }
        }
        Ok(target)
    }
}

/// Unpacks every entry of `tar` under `root`, refusing anything unsafe (API §7.7).
pub fn unpack(tar: impl Read, root: &Path) -> Result<(), RevisionError> {
    let mut archive = tar::Archive::new(tar);
    // Directory modes are applied last, deepest first, so a read-only directory does not stop
    // its own contents from being written.
    let mut directories = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let unsafe_entry = |reason| RevisionError::Unsafe {
            path: name.clone(),
            reason,
        };
        let relative = safe_relative(&entry.path()?)
            .ok_or_else(|| unsafe_entry("absolute paths and '..' segments are not allowed"))?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let path = root.join(&relative);
        if crosses_link(root, &relative)? {
            return Err(unsafe_entry("a parent directory is a symbolic link"));
        }
        let mode = entry.header().mode()? & 0o777;
        match entry.header().entry_type() {
            EntryType::Directory => {
                match fs::create_dir(&path) {
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                        if !fs::symlink_metadata(&path)?.is_dir() {
                            return Err(unsafe_entry("a directory replaces another entry"));
                        }
                    }
                    other => other?,
                }
                directories.push((path, mode));
            }
            EntryType::Regular | EntryType::Continuous => {
                // `create_new` never follows or replaces an existing entry, link or not.
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                io::copy(&mut entry, &mut file)?;
                file.set_permissions(fs::Permissions::from_mode(mode))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| unsafe_entry("symbolic link without a target"))?;
                if !link_stays_inside(&relative, &target) {
                    return Err(unsafe_entry("symbolic link leaves the tree"));
                }
                std::os::unix::fs::symlink(&target, &path)?;
            }
            EntryType::Link => return Err(unsafe_entry("hard links are not allowed")),
            EntryType::XGlobalHeader | EntryType::XHeader => {}
            _ => {
                return Err(unsafe_entry(
                    "devices, FIFOs and other special files are not allowed",
                ));
            }
        }
    }
    directories.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
    for (path, mode) in directories {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The entry path without `.` segments, or `None` when it is absolute or has `..`.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(clean)
}

/// Whether a directory on the way to `relative` (below `root`) is a symbolic link, which
/// writing the entry would follow.
fn crosses_link(root: &Path, relative: &Path) -> io::Result<bool> {
    let mut current = root.to_path_buf();
    let Some(parent) = relative.parent() else {
        return Ok(false);
    };
    for component in parent.components() {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => return Ok(true),
            Ok(_) => {}
            // A missing parent makes the write fail on its own.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error),
        }
    }
    Ok(false)
}

/// Whether a link at `relative` pointing to `target` resolves inside the tree, judged on the
/// names alone: relative targets only, never climbing above the root.
fn link_stays_inside(relative: &Path, target: &Path) -> bool {
    let mut depth = relative.components().count().saturating_sub(1);
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
#[path = "revisions_tests.rs"]
mod tests;
