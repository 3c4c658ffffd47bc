//! Tests of the folder scan on real directories.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;

fn write(root: &Path, path: &str, text: &[u8]) {
    let full = root.join(path);
    fs::create_dir_all(full.parent().expect("a parent")).expect("create dirs");
    fs::write(full, text).expect("write file");
}

fn workflow_paths(files: &WorkspaceFiles) -> Vec<&str> {
    files
        .workflow_files
        .iter()
        .map(|f| f.path.as_str())
        .collect()
}

#[test]
fn reads_workflows_dir_recursively_in_byte_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, ".workflows/b.yaml", b"tasks: {}\n");
    write(root, ".workflows/a.yml", b"actions: {}\n");
    write(root, ".workflows/ops/Z.yaml", b"");
    write(root, ".workflows/.hidden/x.yaml", b"");
    write(root, ".workflows/notes.txt", b"");
    write(root, "top.yaml", b"ignored: because .workflows exists\n");
    write(root, "scripts/deploy.sh", b"echo hi\n");
    write(root, ".git/config", b"[core]\n");
    let files = scan(root).expect("scan");
    assert_eq!(
        workflow_paths(&files),
        [
            ".workflows/.hidden/x.yaml",
            ".workflows/a.yml",
            ".workflows/b.yaml",
            ".workflows/ops/Z.yaml"
        ]
    );
    assert_eq!(files.workflow_files[2].text, "tasks: {}\n");
    let all: Vec<&str> = files.all_files.iter().map(String::as_str).collect();
    assert_eq!(
        all,
        [
            ".workflows/.hidden/x.yaml",
            ".workflows/a.yml",
            ".workflows/b.yaml",
            ".workflows/notes.txt",
            ".workflows/ops/Z.yaml",
            "scripts/deploy.sh",
            "top.yaml"
        ]
    );
}

#[test]
fn scans_the_root_without_dot_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "a.yaml", b"");
    write(root, ".top.yaml", b"");
    write(root, "ops/b.yml", b"");
    write(root, ".github/workflows/ci.yaml", b"");
    write(root, "ops/.cache/c.yaml", b"");
    let files = scan(root).expect("scan");
    assert_eq!(workflow_paths(&files), [".top.yaml", "a.yaml", "ops/b.yml"]);
}

#[test]
fn follows_only_file_links_inside_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(outside.path(), "secret.yaml", b"actions: {}\n");
    write(outside.path(), "tree/deep.yaml", b"");
    write(root, "shared/real.yaml", b"tasks: {}\n");
    write(root, "lib/inner.yaml", b"");
    symlink(root.join("shared/real.yaml"), root.join("linked.yaml")).expect("link");
    symlink(outside.path().join("secret.yaml"), root.join("escape.yaml")).expect("link");
    symlink(outside.path().join("tree"), root.join("tree")).expect("link");
    symlink(root.join("lib"), root.join("lib2")).expect("link");
    symlink(root.join("missing"), root.join("broken.yaml")).expect("link");
    let files = scan(root).expect("scan");
    assert_eq!(
        workflow_paths(&files),
        ["lib/inner.yaml", "linked.yaml", "shared/real.yaml"]
    );
    assert_eq!(files.workflow_files[1].text, "tasks: {}\n");
    assert!(!files.all_files.contains("escape.yaml"));
}

#[test]
fn unreadable_files_become_diagnostics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "good.yaml", b"tasks: {}\n");
    write(root, "bad.yaml", b"tasks: \xff\xfe\n");
    write(root, "worse.yml", b"\xc3\x28");
    let error = scan(root).expect_err("invalid UTF-8 is unreadable");
    let diagnostics: Vec<(String, String, String)> = error
        .diagnostics()
        .into_iter()
        .map(|d| (d.code, d.file, d.message))
        .collect();
    insta::assert_debug_snapshot!(diagnostics);
}

#[test]
fn a_missing_root_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = scan(&dir.path().join("nope")).expect_err("no such root");
    assert!(matches!(error, ScanError::Root { .. }));
    assert_eq!(error.diagnostics()[0].code, "unreadable-file");
}

#[test]
fn revision_hashes_paths_and_contents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "a.yaml", b"tasks: {}\n");
    write(root, "run.sh", b"echo 1\n");
    let first = revision(root, &scan(root).expect("scan")).expect("revision");
    assert_eq!(first.len(), 64);
    let again = revision(root, &scan(root).expect("scan")).expect("revision");
    assert_eq!(first, again);
    write(root, "run.sh", b"echo 2\n");
    let changed = revision(root, &scan(root).expect("scan")).expect("revision");
    assert_ne!(first, changed);
    fs::rename(root.join("run.sh"), root.join("run2.sh")).expect("rename");
    let renamed = revision(root, &scan(root).expect("scan")).expect("revision");
    assert_ne!(changed, renamed);
}
