//! Where a worker's attempts keep their files: the I/O directory (the step's input, output and
//! inline script, which may hold secrets) and the working copy. Each worker process owns one
//! private directory `<root>/<instance>/`, locked for as long as the process lives; each attempt
//! makes its directories inside it and removes them when it ends.
//!
//! A worker killed mid-attempt cannot remove anything, so every worker that starts removes the
//! directories of instances whose lock nobody holds any more — whatever an earlier life of it,
//! or of another worker on the same root, left behind (issue #16 item 4). The check and the
//! creation of the new instance happen under a lock on the root, so a starting worker never
//! takes another one's half-made directory for a dead one.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::private;

/// The lock file of the root and of each instance.
const LOCK: &str = ".lock";

/// This process's attempt directory; removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    root: PathBuf,
    dir: PathBuf,
    /// Held (locked) while this value lives: it marks the directory as in use.
    _lock: File,
}

impl Scratch {
    /// Creates `root` (private), removes the instance directories nobody holds, and creates and
    /// locks this process's own. Returns it with how many stale directories were removed.
    pub fn open(root: &Path) -> io::Result<(Scratch, usize)> {
        private::create_dir(root)?;
        let guard = private::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(root.join(LOCK))?;
        guard.lock()?;
        let removed = remove_stale(root)?;
        let dir = root.join(Uuid::now_v7().to_string());
        private::create_dir(&dir)?;
        let lock = private::options()
            .write(true)
            .create_new(true)
            .open(dir.join(LOCK))?;
        lock.try_lock().map_err(io::Error::other)?;
        guard.unlock()?;
        let scratch = Scratch {
            root: root.to_owned(),
            dir,
            _lock: lock,
        };
        Ok((scratch, removed))
    }

    /// Where this process's attempts make their directories.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The root holding the directories of every worker process that uses it.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Whatever cannot be removed now is removed by the next worker on this root.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes every entry of `root` but its lock file and the instances whose lock is held.
fn remove_stale(root: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_name() == LOCK {
            continue;
        }
        let path = entry.path();
        if !entry.file_type()?.is_dir() {
            fs::remove_file(&path)?;
            removed += 1;
            continue;
        }
        let held = match File::open(path.join(LOCK)) {
            Ok(lock) => lock.try_lock().is_err(),
            // Instances are made whole under the root's lock: one without a lock file is
            // debris, never one being made.
            Err(error) if error.kind() == io::ErrorKind::NotFound => false,
            Err(error) => return Err(error),
        };
        if !held {
            // Before its files go: what the dead worker's steps left running (issue #16 item 18).
            super::leftover::stop_recorded(&path);
            fs::remove_dir_all(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_instances_go_and_live_ones_stay() {
        let root = tempfile::tempdir().expect("tempdir");
        let stale = root.path().join("0190c1a2-dead");
        fs::create_dir_all(stale.join("io-1")).expect("stale");
        fs::write(stale.join("io-1/input.json"), "{}").expect("stale input");
        fs::write(stale.join(LOCK), "").expect("stale lock");
        fs::create_dir_all(root.path().join("no-lock/wc")).expect("debris");

        let (first, removed) = Scratch::open(root.path()).expect("first");
        assert_eq!(removed, 2);
        assert!(!stale.exists() && !root.path().join("no-lock").exists());
        fs::write(first.dir().join("io-2"), "in use").expect("attempt file");

        // A second worker on the same root keeps the first one's directory.
        let (second, removed) = Scratch::open(root.path()).expect("second");
        assert_eq!(removed, 0);
        assert!(first.dir().join("io-2").exists());
        assert_ne!(first.dir(), second.dir());

        let gone = first.dir().to_owned();
        drop(first);
        assert!(!gone.exists());
        drop(second);
        let left: Vec<_> = fs::read_dir(root.path())
            .expect("read")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(left, [LOCK]);
    }
}
