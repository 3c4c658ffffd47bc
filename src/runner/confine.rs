//! Keeps a step's `source` and `workdir` inside its working copy (WF §6.6).
//!
//! The server already rejected rendered paths that are empty, absolute or contain `..`; the
//! worker checks them again and also checks the *resolved* path, because a symbolic link inside
//! the copy may point elsewhere. Such an escape is permanent: a retry would render the same path.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("{what} escapes the workspace")]
    Escapes { what: &'static str },
    #[error("source `{path}` not found in the workspace")]
    SourceMissing { path: String },
    #[error("source `{path}` is not a file")]
    SourceNotFile { path: String },
    #[error("cannot prepare {what} `{path}`: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: io::Error,
    },
}

/// Resolves an existing `source` file; `root` must be canonical.
pub fn source_file(root: &Path, rel: &str) -> Result<PathBuf, ConfineError> {
    const WHAT: &str = "source";
    let rel_path = lexically_inside(rel, WHAT)?;
    let resolved = match root.join(rel_path).canonicalize() {
        Ok(resolved) => resolved,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            // A link pointing outside is an escape even when its target does not exist.
            if let Some(escape) = escapes_through_link(root, rel_path, WHAT) {
                return Err(escape);
            }
            return Err(ConfineError::SourceMissing {
                path: rel.to_owned(),
            });
        }
        Err(source) => return Err(io_error(WHAT, rel, source)),
    };
    if !resolved.starts_with(root) {
        return Err(ConfineError::Escapes { what: WHAT });
    }
    if !resolved.is_file() {
        return Err(ConfineError::SourceNotFile {
            path: rel.to_owned(),
        });
    }
    Ok(resolved)
}

/// Resolves `workdir`, creating the missing part of it; `root` must be canonical. The existing
/// part is resolved first, so directories are never created through a link that leads out.
pub fn workdir(root: &Path, rel: &str) -> Result<PathBuf, ConfineError> {
    const WHAT: &str = "workdir";
    let rel_path = lexically_inside(rel, WHAT)?;
    let mut existing = root.to_path_buf();
    let mut missing = PathBuf::new();
    for component in rel_path.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        if !missing.as_os_str().is_empty() {
            missing.push(name);
            continue;
        }
        let next = existing.join(name);
        match next.canonicalize() {
            Ok(resolved) if resolved.starts_with(root) => existing = resolved,
            Ok(_) => return Err(ConfineError::Escapes { what: WHAT }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if fs::symlink_metadata(&next).is_ok() {
                    // A dangling link: creating through it would write wherever it points.
                    return Err(ConfineError::Escapes { what: WHAT });
                }
                missing.push(name);
            }
            Err(source) => return Err(io_error(WHAT, rel, source)),
        }
    }
    let dir = existing.join(&missing);
    fs::create_dir_all(&dir).map_err(|source| io_error(WHAT, rel, source))?;
    let resolved = dir
        .canonicalize()
        .map_err(|source| io_error(WHAT, rel, source))?;
    if !resolved.starts_with(root) {
        return Err(ConfineError::Escapes { what: WHAT });
    }
    if !resolved.is_dir() {
        return Err(io_error(
            WHAT,
            rel,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    Ok(resolved)
}

/// The text checks: not empty, not absolute, no `..` segment.
fn lexically_inside<'a>(rel: &'a str, what: &'static str) -> Result<&'a Path, ConfineError> {
    let path = Path::new(rel);
    let escapes = rel.trim().is_empty()
        || path.is_absolute()
        || path
            .components()
            .any(|component| !matches!(component, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err(ConfineError::Escapes { what });
    }
    Ok(path)
}

/// Whether some existing prefix of `rel` resolves outside `root`.
fn escapes_through_link(root: &Path, rel: &Path, what: &'static str) -> Option<ConfineError> {
    let mut prefix = root.to_path_buf();
    for component in rel.components() {
        prefix.push(component);
        match prefix.canonicalize() {
            Ok(resolved) if !resolved.starts_with(root) => {
                return Some(ConfineError::Escapes { what });
            }
            Ok(_) => {}
            Err(_) => {
                let target = fs::read_link(&prefix).ok()?;
                let dangling_to = prefix.parent().unwrap_or(root).join(target);
                return (!normalized(&dangling_to).starts_with(root))
                    .then_some(ConfineError::Escapes { what });
            }
        }
    }
    None
}

/// `..` and `.` removed lexically; used only for a dangling link, which cannot be resolved.
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn io_error(what: &'static str, path: &str, source: io::Error) -> ConfineError {
    ConfineError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn copy_with_links() -> (tempfile::TempDir, tempfile::TempDir, PathBuf) {
        let outside = tempfile::tempdir().expect("tempdir");
        fs::write(outside.path().join("evil.sh"), "echo evil").expect("write");
        let copy = tempfile::tempdir().expect("tempdir");
        let root = copy.path().canonicalize().expect("canonical");
        fs::create_dir(root.join("scripts")).expect("mkdir");
        fs::write(root.join("scripts/ok.sh"), "echo ok").expect("write");
        symlink(outside.path(), root.join("out")).expect("link");
        symlink("scripts", root.join("in")).expect("link");
        symlink("/nonexistent/stroem-dangling", root.join("dangling")).expect("link");
        (outside, copy, root)
    }

    fn escape(result: Result<PathBuf, ConfineError>) -> String {
        result.expect_err("refused").to_string()
    }

    #[test]
    fn source_inside_is_resolved() {
        let (_outside, _copy, root) = copy_with_links();
        assert_eq!(
            source_file(&root, "scripts/ok.sh").expect("inside"),
            root.join("scripts/ok.sh")
        );
        assert_eq!(
            source_file(&root, "./in/ok.sh").expect("inside through a link"),
            root.join("scripts/ok.sh")
        );
    }

    #[test]
    fn source_escapes_are_refused() {
        let (_outside, _copy, root) = copy_with_links();
        for rel in [
            "",
            " ",
            "/etc/passwd",
            "../x",
            "scripts/../scripts/ok.sh",
            "out/evil.sh",
        ] {
            assert_eq!(
                escape(source_file(&root, rel)),
                "source escapes the workspace",
                "{rel}"
            );
        }
        assert_eq!(
            escape(source_file(&root, "dangling")),
            "source escapes the workspace"
        );
        assert_eq!(
            escape(source_file(&root, "scripts/missing.sh")),
            "source `scripts/missing.sh` not found in the workspace"
        );
        assert_eq!(
            escape(source_file(&root, "scripts")),
            "source `scripts` is not a file"
        );
    }

    #[test]
    fn workdir_is_created_inside() {
        let (_outside, _copy, root) = copy_with_links();
        assert_eq!(
            workdir(&root, "build/out").expect("created"),
            root.join("build/out")
        );
        assert!(root.join("build/out").is_dir());
        assert_eq!(
            workdir(&root, "in/sub").expect("created"),
            root.join("scripts/sub")
        );
    }

    #[test]
    fn workdir_escapes_are_refused_without_creating_anything_outside() {
        let (outside, _copy, root) = copy_with_links();
        for rel in [
            "",
            "/tmp",
            "..",
            "a/../..",
            "out",
            "out/sub",
            "dangling/sub",
        ] {
            assert_eq!(
                escape(workdir(&root, rel)),
                "workdir escapes the workspace",
                "{rel}"
            );
        }
        assert!(!outside.path().join("sub").exists());
    }
}
