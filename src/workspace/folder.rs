//! Reading a workspace folder into [`WorkspaceFiles`] (WF §1.1) and hashing it into a revision.
//!
//! Rules: workflow files come from `<root>/.workflows/` when that is a directory, otherwise
//! from the root, where directories whose name starts with `.` are skipped; `*.yaml` and
//! `*.yml` files are collected recursively, in byte order of their relative paths. Symbolic
//! links to directories are never followed; symbolic links to files count only when their
//! target lies inside the root. `all_files` lists every regular file of the workspace (the same
//! link rules, `.git/` excluded: version-control metadata is not workspace content).
//!
//! An unreadable file is never skipped silently: the scan goes on, and when it is over every
//! file that could not be read is returned in [`ScanError::Unreadable`], which converts to one
//! `unreadable-file` diagnostic per file (WF §1.4: the whole workspace is in error).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::workflow::diagnostic::{Diagnostic, Location};
use crate::workflow::{WorkflowFile, WorkspaceFiles};

/// The directory that holds workflow files when it exists (WF §1.1).
pub const WORKFLOWS_DIR: &str = ".workflows";

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read workspace root '{}': {source}", path.display())]
    Root { path: PathBuf, source: io::Error },
    #[error("{} file(s) of the workspace cannot be read", files.len())]
    Unreadable { files: Vec<UnreadableFile> },
}

/// A file or directory that exists but could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableFile {
    /// Relative to the workspace root, `/`-separated.
    pub path: String,
    pub reason: String,
}

impl ScanError {
    /// The problem as diagnostics, so `stroem validate` and the server show it like any other.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            ScanError::Root { path, .. } => vec![Diagnostic::error(
                "unreadable-file",
                self.to_string(),
                &start_of(&path.display().to_string()),
                "",
            )],
            ScanError::Unreadable { files } => files
                .iter()
                .map(|f| {
                    let message = format!("cannot read '{}': {}", f.path, f.reason);
                    Diagnostic::error("unreadable-file", message, &start_of(&f.path), "")
                })
                .collect(),
        }
    }
}

fn start_of(file: &str) -> Location {
    Location {
        file: file.to_owned(),
        line: 1,
        column: 1,
    }
}

/// Scans the workspace at `root` (WF §1.1).
pub fn scan(root: &Path) -> Result<WorkspaceFiles, ScanError> {
    let canonical = root.canonicalize().map_err(|source| ScanError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let mut walk = Walk {
        root: &canonical,
        files: Vec::new(),
        unreadable: Vec::new(),
    };
    if let Err(source) = fs::read_dir(&canonical) {
        return Err(ScanError::Root {
            path: root.to_path_buf(),
            source,
        });
    }
    walk.dir(&canonical, "");
    walk.files.sort();
    let in_workflows =
        fs::symlink_metadata(canonical.join(WORKFLOWS_DIR)).is_ok_and(|m| m.is_dir());
    let mut files = WorkspaceFiles::default();
    for path in &walk.files {
        if !is_workflow_file(path, in_workflows) {
            continue;
        }
        match fs::read(canonical.join(path)) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => files.workflow_files.push(WorkflowFile {
                    path: path.clone(),
                    text,
                }),
                Err(_) => walk.unreadable.push(UnreadableFile {
                    path: path.clone(),
                    reason: "the file is not valid UTF-8".to_owned(),
                }),
            },
            Err(error) => walk.unreadable.push(UnreadableFile {
                path: path.clone(),
                reason: error.to_string(),
            }),
        }
    }
    if !walk.unreadable.is_empty() {
        walk.unreadable.sort_by(|a, b| a.path.cmp(&b.path));
        return Err(ScanError::Unreadable {
            files: walk.unreadable,
        });
    }
    files.all_files = walk.files.into_iter().collect();
    Ok(files)
}

/// Whether the relative path is a workflow file under the scanning rules.
fn is_workflow_file(path: &str, in_workflows: bool) -> bool {
    if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
        return false;
    }
    let (dirs, _) = path.rsplit_once('/').unwrap_or(("", path));
    if in_workflows {
        dirs == WORKFLOWS_DIR || dirs.starts_with(".workflows/")
    } else {
        !dirs.split('/').any(|segment| segment.starts_with('.'))
    }
}

struct Walk<'r> {
    root: &'r Path,
    files: Vec<String>,
    unreadable: Vec<UnreadableFile>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path, relative: &str) {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) => {
                self.unreadable.push(UnreadableFile {
                    path: relative.to_owned(),
                    reason: error.to_string(),
                });
                return;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    self.unreadable.push(UnreadableFile {
                        path: relative.to_owned(),
                        reason: error.to_string(),
                    });
                    continue;
                }
            };
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                self.unreadable.push(UnreadableFile {
                    path: format!("{relative}/{}", name.to_string_lossy()),
                    reason: "the file name is not valid UTF-8".to_owned(),
                });
                continue;
            };
            let child = if relative.is_empty() {
                name.to_owned()
            } else {
                format!("{relative}/{name}")
            };
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if name != ".git" {
                    self.dir(&path, &child);
                }
            } else if meta.is_file() || (meta.file_type().is_symlink() && self.inside(&path)) {
                self.files.push(child);
            }
        }
    }

    /// A symbolic link counts when it points at a regular file inside the root.
    fn inside(&self, link: &Path) -> bool {
        link.canonicalize()
            .is_ok_and(|target| target.starts_with(self.root) && target.is_file())
    }
}

/// The content hash of a workspace: SHA-256 over every file's path and content, in path order.
pub fn revision(root: &Path, files: &WorkspaceFiles) -> Result<String, ScanError> {
    let mut hasher = Sha256::new();
    let mut unreadable = Vec::new();
    for path in &files.all_files {
        match fs::read(root.join(path)) {
            Ok(content) => {
                // Lengths keep (path, content) pairs from running into each other.
                hasher.update((path.len() as u64).to_le_bytes());
                hasher.update(path.as_bytes());
                hasher.update((content.len() as u64).to_le_bytes());
                hasher.update(&content);
            }
            Err(error) => unreadable.push(UnreadableFile {
                path: path.clone(),
                reason: error.to_string(),
            }),
        }
    }
    if !unreadable.is_empty() {
        return Err(ScanError::Unreadable { files: unreadable });
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests;
