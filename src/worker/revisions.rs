//! A remote worker's cache of workspace revisions (API §7.7, DESIGN §4): each revision is
//! downloaded once as a tarball, extracted defensively into `workspace_cache_dir/<ws>/<rev>/`,
//! and every attempt then runs in its own copy of that tree.
//!
//! Extraction trusts nothing in the archive: absolute paths, `..` segments, hard links,
//! devices, FIFOs and symbolic links whose target leaves the tree are refused, and no entry is
//! ever written through a link. A link's target is resolved against the extracted tree, through
//! the other links in it, once the whole tree is there, so chains such as `a/b -> ..` plus
//! `c -> a/b/..` cannot climb out. The decompressed archive may take at most
//! `workspace_cache_max_bytes`, and one file at most `workspace_cache_max_file_bytes`, so a
//! small archive cannot fill the disk. A tree is extracted beside its final place and renamed,
//! so a revision directory that exists is always complete; a refused one leaves nothing.
//!
//! Old revisions are pruned after each download: those in use by a running attempt and the
//! [`KEEP_RECENT`] most recently used stay.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

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
    #[error("the revision is too large: {0}")]
    TooLarge(String),
    #[error("cannot extract the revision: {0}")]
    Io(#[from] io::Error),
}

/// How many revisions of a workspace stay cached besides those in use.
pub const KEEP_RECENT: usize = 3;

/// How much an extracted revision may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionLimits {
    /// The whole decompressed archive, headers included.
    pub max_bytes: u64,
    /// One file.
    pub max_file_bytes: u64,
}

impl Default for RevisionLimits {
    fn default() -> Self {
        RevisionLimits {
            max_bytes: crate::config::DEFAULT_CACHE_MAX_BYTES,
            max_file_bytes: crate::config::DEFAULT_CACHE_MAX_FILE_BYTES,
        }
    }
}

/// The extracted revisions under one directory.
#[derive(Debug, Clone)]
pub struct RevisionCache {
    dir: PathBuf,
    limits: RevisionLimits,
}

impl RevisionCache {
    pub fn new(dir: PathBuf) -> Self {
        RevisionCache::with_limits(dir, RevisionLimits::default())
    }

    pub fn with_limits(dir: PathBuf, limits: RevisionLimits) -> Self {
        RevisionCache { dir, limits }
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
        unpack_limited(tar, staging.path(), self.limits)?;
        let staged = staging.keep();
        if let Err(error) = fs::rename(&staged, &target) {
            let _ = fs::remove_dir_all(&staged);
            if !target.is_dir() {
                return Err(error.into());
            }
        }
        Ok(target)
    }

    /// Marks `ws`'s `revision` as just used, so pruning keeps it among the recent ones.
    pub fn touch(&self, ws: &str, revision: &str) -> Result<(), RevisionError> {
        let path = self.path(ws, revision)?;
        fs::File::open(&path)?.set_modified(std::time::SystemTime::now())?;
        Ok(())
    }

    /// Deletes `ws`'s cached revisions except those in `in_use` and the [`KEEP_RECENT`] most
    /// recently used (by modification time, see [`RevisionCache::touch`]); returns how many
    /// went. Leftovers of interrupted extractions are removed too.
    pub fn prune(&self, ws: &str, in_use: &HashSet<String>) -> Result<usize, RevisionError> {
        if !crate::config::valid_workspace_name(ws) {
            return Err(RevisionError::InvalidWorkspace(ws.to_owned()));
        }
        let parent = self.dir.join(ws);
        let mut revisions = Vec::new();
        for entry in fs::read_dir(&parent)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                // A partial extraction is under way only while its archive downloads, which is
                // bounded well under an hour; an older one was interrupted by a crash.
                let stale = entry
                    .metadata()?
                    .modified()?
                    .elapsed()
                    .is_ok_and(|age| age > std::time::Duration::from_secs(3600));
                if stale {
                    remove_tree(&entry.path())?;
                }
                continue;
            }
            if self.path(ws, &name).is_err() || in_use.contains(&name) {
                continue;
            }
            revisions.push((entry.metadata()?.modified()?, entry.path()));
        }
        revisions.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        let old = revisions.split_off(KEEP_RECENT.min(revisions.len()));
        for (_, path) in &old {
            remove_tree(path)?;
        }
        Ok(old.len())
    }
}

/// Deletes a tree whose directories may be read-only (their archive modes).
fn remove_tree(path: &Path) -> io::Result<()> {
    fn writable(path: &Path) -> io::Result<()> {
        let meta = fs::symlink_metadata(path)?;
        if meta.is_dir() {
            fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
            for entry in fs::read_dir(path)? {
                writable(&entry?.path())?;
            }
        }
        Ok(())
    }
    writable(path)?;
    fs::remove_dir_all(path)
}

/// A reader that fails once more than `limit` bytes were read, remembering that it did.
struct Capped<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        // One byte past the limit tells a stream that is exactly at it from a longer one.
        let room = usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX);
        let take = buffer.len().min(room);
        let read = self.inner.read(&mut buffer[..take])?;
        if read as u64 > self.left {
            self.exceeded.set(true);
            return Err(io::Error::other(
                "the decompressed archive exceeds its limit",
            ));
        }
        self.left -= read as u64;
        Ok(read)
    }
}

/// Unpacks every entry of `tar` under `root`, refusing anything unsafe (API §7.7) or over
/// `limits`.
pub fn unpack_limited(
    tar: impl Read,
    root: &Path,
    limits: RevisionLimits,
) -> Result<(), RevisionError> {
    let exceeded = Rc::new(Cell::new(false));
    let capped = Capped {
        inner: tar,
        left: limits.max_bytes,
        exceeded: Rc::clone(&exceeded),
    };
    let result = unpack_entries(capped, root, limits.max_file_bytes);
    if exceeded.get() {
        return Err(RevisionError::TooLarge(format!(
            "more than {} bytes once decompressed (workspace_cache_max_bytes)",
            limits.max_bytes
        )));
    }
    result
}

fn unpack_entries(tar: impl Read, root: &Path, max_file_bytes: u64) -> Result<(), RevisionError> {
    let mut archive = tar::Archive::new(tar);
    // Links are checked once every entry is in place: a later link can change where an
    // earlier one leads.
    let mut links = Vec::new();
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
                let too_large = || {
                    RevisionError::TooLarge(format!(
                        "'{name}' is larger than {max_file_bytes} bytes \
                         (workspace_cache_max_file_bytes)"
                    ))
                };
                if entry.header().size()? > max_file_bytes {
                    return Err(too_large());
                }
                // `create_new` never follows or replaces an existing entry, link or not.
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                let copied = io::copy(&mut (&mut entry).take(max_file_bytes + 1), &mut file)?;
                if copied > max_file_bytes {
                    return Err(too_large());
                }
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
                links.push((name.clone(), relative));
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
    for (name, relative) in links {
        if !resolves_inside(root, &relative)? {
            return Err(RevisionError::Unsafe {
                path: name,
                reason: "symbolic link leaves the tree through other links",
            });
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

/// Most links followed while resolving one (Linux's own limit), so a loop ends.
const MAX_LINK_HOPS: usize = 40;

/// Whether the link at `relative` (below `root`) resolves inside the tree, following every
/// link on the way as the kernel would, but judging each step against the tree: a `..` that
/// would climb above `root` is an escape even when the link it passes through is inside.
/// Names that do not exist are taken as written (a dangling link stays dangling inside).
fn resolves_inside(root: &Path, relative: &Path) -> io::Result<bool> {
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: std::collections::VecDeque<std::ffi::OsString> = relative
        .components()
        .map(|component| component.as_os_str().to_owned())
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match Path::new(&part).components().next() {
            Some(Component::CurDir) | None => continue,
            Some(Component::ParentDir) => {
                if resolved.pop().is_none() {
                    return Ok(false);
                }
                continue;
            }
            Some(Component::RootDir | Component::Prefix(_)) => return Ok(false),
            Some(Component::Normal(_)) => {}
        }
        resolved.push(part);
        let here: PathBuf = resolved.iter().collect();
        let meta = match fs::symlink_metadata(root.join(&here)) {
            Ok(meta) => meta,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        hops += 1;
        if hops > MAX_LINK_HOPS {
            return Ok(false);
        }
        let target = fs::read_link(root.join(&here))?;
        resolved.pop();
        for component in target.components().rev() {
            if matches!(component, Component::RootDir | Component::Prefix(_)) {
                return Ok(false);
            }
            pending.push_front(component.as_os_str().to_owned());
        }
    }
    Ok(true)
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
