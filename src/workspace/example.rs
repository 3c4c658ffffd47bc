//! The example workspace built into the binary (API §10.3): `examples/hello-world`, served as
//! workspace `default` when `stroem serve` starts without configuration and without a
//! `./workspace` directory, so a first start shows a runnable task.
//!
//! The files are embedded at compile time and written out to a directory under the data dir
//! when the server starts, because runners execute real files from a real tree. The directory
//! is rewritten from the embedded copy on every start: the example is read-only, and whatever
//! was changed on disk since must not survive as if it were part of it.

use std::fs;
use std::io;
use std::path::Path;

use include_dir::{Dir, DirEntry, include_dir};

/// The example workspace's files, with their relative paths.
static EXAMPLE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/examples/hello-world");

/// Replaces whatever is at `into` with the example workspace's files.
pub fn materialise(into: &Path) -> io::Result<()> {
    match fs::remove_dir_all(into) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    fs::create_dir_all(into)?;
    write_dir(&EXAMPLE, into)
}

fn write_dir(dir: &Dir<'_>, into: &Path) -> io::Result<()> {
    for entry in dir.entries() {
        // include_dir paths are relative to the embedded root, whatever the nesting.
        let target = into.join(entry.path());
        match entry {
            DirEntry::Dir(child) => {
                fs::create_dir_all(&target)?;
                write_dir(child, into)?;
            }
            DirEntry::File(file) => fs::write(&target, file.contents())?,
        }
    }
    Ok(())
}

/// Relative paths of every embedded file, sorted; for tests and diagnostics.
pub fn files() -> Vec<String> {
    let mut paths = Vec::new();
    collect(&EXAMPLE, &mut paths);
    paths.sort();
    paths
}

fn collect(dir: &Dir<'_>, out: &mut Vec<String>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(child) => collect(child, out),
            DirEntry::File(file) => out.push(file.path().to_string_lossy().into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow;
    use crate::workspace::folder;

    #[test]
    fn embeds_hello_world_with_its_workflow_directory() {
        assert_eq!(
            files(),
            vec![".workflows/hello.yaml".to_owned(), "README.md".to_owned()]
        );
    }

    #[test]
    fn materialises_a_valid_workspace_and_replaces_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("example");
        fs::create_dir_all(root.join(".workflows")).unwrap();
        fs::write(root.join(".workflows/stale.yaml"), "tasks: {}\n").unwrap();

        materialise(&root).unwrap();

        assert!(!root.join(".workflows/stale.yaml").exists());
        let on_disk = fs::read_to_string(root.join(".workflows/hello.yaml")).unwrap();
        let embedded = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/hello-world/.workflows/hello.yaml"),
        )
        .unwrap();
        assert_eq!(on_disk, embedded);
        let loaded = workflow::load(&folder::scan(&root).unwrap());
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        assert!(loaded.def.tasks.contains_key("hello-world"));
    }
}
