//! Writing a commit's tree into a directory: what a checkout does, without an index or a
//! working tree to keep. Files get mode 0644 or 0755 as git records them, links become
//! symbolic links (the loader's scan applies the workspace's link rules to them), and
//! submodules are left out (their commits are not in this repository).
//!
//! Tree entries come from the remote and are not trusted: a name that could leave the
//! directory (`..`, `/`, NUL) or write version-control metadata (`.git`) fails the export.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;

use super::GitError;
use super::fetch::chain;

/// Writes the tree of `commit` (hex) from the mirror at `mirror` into `dest`, which exists and
/// is empty.
pub fn export(mirror: &Path, commit: &str, dest: &Path) -> Result<(), GitError> {
    let fail = |detail: String| GitError(format!("cannot check out commit {commit}: {detail}"));
    let repo =
        gix::open_opts(mirror, gix::open::Options::isolated()).map_err(|e| fail(chain(&e)))?;
    let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| fail(chain(&e)))?;
    let tree = repo
        .find_commit(id)
        .and_then(|commit| commit.tree())
        .map_err(|e| fail(chain(&e)))?;
    write_tree(&tree, dest, "").map_err(fail)
}

fn write_tree(tree: &gix::Tree<'_>, dir: &Path, relative: &str) -> Result<(), String> {
    for entry in tree.iter() {
        let entry = entry.map_err(|e| chain(&e))?;
        let name = entry
            .filename()
            .to_str()
            .map_err(|_| format!("'{relative}{}' is not a UTF-8 file name", entry.filename()))?;
        let shown = format!("{relative}{name}");
        if !safe_name(name) {
            return Err(format!("the tree holds an unsafe path '{shown}'"));
        }
        let path = dir.join(name);
        let object = || {
            entry
                .object()
                .map_err(|e| format!("{shown}: {}", chain(&e)))
        };
        match entry.mode().kind() {
            EntryKind::Tree => {
                fs::create_dir(&path).map_err(|e| format!("{shown}: {e}"))?;
                let subtree = object()?
                    .try_into_tree()
                    .map_err(|e| format!("{shown}: {}", chain(&e)))?;
                write_tree(&subtree, &path, &format!("{shown}/"))?;
            }
            kind @ (EntryKind::Blob | EntryKind::BlobExecutable) => {
                let blob = object()?;
                fs::write(&path, &blob.data).map_err(|e| format!("{shown}: {e}"))?;
                let mode = if kind == EntryKind::BlobExecutable {
                    0o755
                } else {
                    0o644
                };
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .map_err(|e| format!("{shown}: {e}"))?;
            }
            EntryKind::Link => {
                let blob = object()?;
                let target = blob
                    .data
                    .to_str()
                    .map_err(|_| format!("{shown}: the link target is not UTF-8"))?;
                std::os::unix::fs::symlink(target, &path).map_err(|e| format!("{shown}: {e}"))?;
            }
            EntryKind::Commit => {}
        }
    }
    Ok(())
}

pub(super) fn safe_name(name: &str) -> bool {
    !(name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.eq_ignore_ascii_case(".git"))
}
