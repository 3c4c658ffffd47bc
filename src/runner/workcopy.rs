//! Private working copies of a workspace tree (WF §6.6): every attempt (or every local job)
//! runs in its own copy, so files written by one never leak into another or into the source.
//!
//! The copy keeps regular files with their permissions, directories and symbolic links whose
//! target stays inside the root (WF §1.1). Links pointing outside the root, dangling links and
//! special files (sockets, FIFOs, devices) are skipped. Directory links are copied as links,
//! never followed, so a link cycle cannot make the copy recurse.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use tempfile::TempDir;

/// A working copy in a temporary directory, deleted when dropped.
#[derive(Debug)]
pub struct WorkingCopy {
    dir: TempDir,
}

impl WorkingCopy {
    /// Copies `source_root` into a fresh directory under the system temporary directory.
    pub fn create(source_root: &Path) -> io::Result<WorkingCopy> {
        let dir = tempfile::Builder::new().prefix("stroem-wc-").tempdir()?;
        copy_tree(source_root, dir.path())?;
        Ok(WorkingCopy { dir })
    }

    /// Copies `source_root` into a fresh directory under `parent`.
    pub fn create_in(source_root: &Path, parent: &Path) -> io::Result<WorkingCopy> {
        let dir = tempfile::Builder::new()
            .prefix("stroem-wc-")
            .tempdir_in(parent)?;
        copy_tree(source_root, dir.path())?;
        Ok(WorkingCopy { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Deletes the copy now, reporting errors that dropping would swallow.
    pub fn remove(self) -> io::Result<()> {
        self.dir.close()
    }
}

/// Copies the tree under `source_root` into the existing directory `into`.
pub fn copy_tree(source_root: &Path, into: &Path) -> io::Result<()> {
    let root = source_root.canonicalize()?;
    copy_dir(&root, &root, into)
}

fn copy_dir(root: &Path, from: &Path, to: &Path) -> io::Result<()> {
    let mut entries = fs::read_dir(from)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::create_dir(&target)?;
            copy_dir(root, &source, &target)?;
            // Permissions last: a read-only source directory must not stop its own copy.
            fs::set_permissions(&target, fs::metadata(&source)?.permissions())?;
        } else if kind.is_file() {
            fs::copy(&source, &target)?;
        } else if kind.is_symlink()
            && let Some(link) = link_inside(root, &source)?
        {
            std::os::unix::fs::symlink(link, &target)?;
        }
    }
    Ok(())
}

/// The target to give the copied link, or `None` when the link must be skipped because it
/// dangles or resolves outside `root`. Relative targets are kept as written; absolute ones
/// would point back into the source tree, so they are rewritten relative to the link.
fn link_inside(root: &Path, link: &Path) -> io::Result<Option<PathBuf>> {
    let resolved = match link.canonicalize() {
        Ok(resolved) => resolved,
        Err(error) if is_unresolvable(&error) => return Ok(None),
        Err(error) => return Err(error),
    };
    let Ok(inside) = resolved.strip_prefix(root) else {
        return Ok(None);
    };
    let written = fs::read_link(link)?;
    if written.is_relative() {
        return Ok(Some(written));
    }
    let link_dir = link
        .parent()
        .and_then(|parent| parent.strip_prefix(root).ok())
        .unwrap_or(Path::new(""));
    let mut relative = PathBuf::new();
    for component in link_dir.components() {
        if matches!(component, Component::Normal(_)) {
            relative.push("..");
        }
    }
    relative.push(inside);
    if relative.as_os_str().is_empty() {
        relative.push(".");
    }
    Ok(Some(relative))
}

fn is_unresolvable(error: &io::Error) -> bool {
    // ELOOP has no stable `ErrorKind` yet; a link cycle is as unusable as a dangling link.
    error.kind() == io::ErrorKind::NotFound || error.raw_os_error() == Some(nix::libc::ELOOP)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn listing(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).expect("readable directory") {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("inside root").display();
            let kind = entry.file_type().expect("file type");
            if kind.is_symlink() {
                let target = fs::read_link(&path).expect("link target");
                out.push(format!("{rel} -> {}", target.display()));
            } else if kind.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                let mode = entry.metadata().expect("metadata").permissions().mode() & 0o777;
                let text = fs::read_to_string(&path).expect("text file");
                out.push(format!("{rel} {mode:o} {text:?}"));
            }
        }
    }

    #[test]
    fn copies_files_dirs_modes_and_inside_links_only() {
        let outside = tempfile::tempdir().expect("tempdir");
        fs::write(outside.path().join("secret"), "outside").expect("write");
        let source = tempfile::tempdir().expect("tempdir");
        let root = source.path();
        fs::create_dir_all(root.join("scripts/lib")).expect("mkdir");
        fs::write(root.join("scripts/run.sh"), "#!/bin/sh\necho hi\n").expect("write");
        fs::set_permissions(
            root.join("scripts/run.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        fs::write(root.join("scripts/lib/util.sh"), "x=1\n").expect("write");
        fs::write(root.join("README"), "hello").expect("write");
        symlink("scripts/run.sh", root.join("run")).expect("link");
        symlink("lib", root.join("scripts/libdir")).expect("link");
        symlink(root.join("README"), root.join("scripts/readme")).expect("link");
        symlink(outside.path().join("secret"), root.join("leak")).expect("link");
        symlink("../..", root.join("scripts/up")).expect("link");
        symlink("missing", root.join("dangling")).expect("link");
        symlink("loop", root.join("loop")).expect("link");
        let copy = WorkingCopy::create(root).expect("copy");
        insta::assert_snapshot!(listing(copy.path()).join("\n"), @r##"
        README 644 "hello"
        run -> scripts/run.sh
        scripts/
        scripts/lib/
        scripts/lib/util.sh 644 "x=1\n"
        scripts/libdir -> lib
        scripts/readme -> ../README
        scripts/run.sh 755 "#!/bin/sh\necho hi\n"
        "##);
        assert_eq!(
            fs::read_to_string(copy.path().join("scripts/readme")).expect("link resolves"),
            "hello"
        );
    }

    #[test]
    fn copy_is_independent_of_the_source_and_removed_on_drop() {
        let source = tempfile::tempdir().expect("tempdir");
        fs::write(source.path().join("file"), "original").expect("write");
        let copy = WorkingCopy::create(source.path()).expect("copy");
        fs::write(copy.path().join("file"), "changed").expect("write");
        fs::write(copy.path().join("new"), "new").expect("write");
        assert_eq!(
            fs::read_to_string(source.path().join("file")).expect("read"),
            "original"
        );
        assert!(!source.path().join("new").exists());
        let path = copy.path().to_owned();
        copy.remove().expect("remove");
        assert!(!path.exists());
    }

    #[test]
    fn read_only_directories_are_copied_with_their_contents() {
        let source = tempfile::tempdir().expect("tempdir");
        let locked = source.path().join("locked");
        fs::create_dir(&locked).expect("mkdir");
        fs::write(locked.join("inside"), "x").expect("write");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).expect("chmod");
        let parent = tempfile::tempdir().expect("tempdir");
        let copy = WorkingCopy::create_in(source.path(), parent.path()).expect("copy");
        let copied = copy.path().join("locked");
        assert_eq!(
            fs::read_to_string(copied.join("inside")).expect("read"),
            "x"
        );
        let mode = fs::metadata(&copied)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o555);
        // Let the temporary directories be deleted.
        fs::set_permissions(&copied, fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}
