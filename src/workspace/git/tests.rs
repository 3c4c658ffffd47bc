//! Fetches from real repositories made with the `git` program over `file://`; the HTTP server
//! and auth tests are in `tests/it/serve/git.rs`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::*;

/// Runs git in `dir` with a fixed identity, panicking with its stderr on failure.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository with `files` committed on `main`; returns the commit id.
pub(crate) fn commit(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    if !repo.join(".git").exists() {
        fs::create_dir_all(repo).expect("dir");
        git(repo, &["init", "-q"]);
    }
    for (path, text) in files {
        let path = repo.join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        fs::write(path, text).expect("write");
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "--allow-empty", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

pub(crate) fn url(repo: &Path) -> String {
    format!("file://{}", repo.display())
}

#[test]
fn a_branch_is_fetched_shallow_and_its_tree_exported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path().join("origin");
    commit(&repo, &[("old.txt", "1")], "first");
    fs::write(repo.join("run.sh"), "#!/bin/sh\n").expect("write");
    fs::set_permissions(repo.join("run.sh"), fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::symlink("old.txt", repo.join("link")).expect("link");
    let head = commit(&repo, &[(".workflows/a.yaml", "tasks: {}\n")], "second");
    let mirror = tmp.path().join("mirror");

    let fetched = fetch(&mirror, &Remote::new(url(&repo), "main", None)).expect("fetch");
    assert_eq!(fetched, head);
    let shallow = fs::read_to_string(mirror.join("shallow")).expect("a shallow mirror");
    assert_eq!(shallow.trim(), head, "only the tip commit is fetched");

    let out = tmp.path().join("out");
    fs::create_dir(&out).expect("dir");
    export(&mirror, &fetched, &out).expect("export");
    assert_eq!(
        fs::read_to_string(out.join(".workflows/a.yaml")).expect("a"),
        "tasks: {}\n"
    );
    let mode = fs::metadata(out.join("run.sh"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        fs::read_link(out.join("link")).expect("link"),
        Path::new("old.txt")
    );
    assert!(!out.join(".git").exists());
}

#[test]
fn a_tag_and_a_commit_id_are_refs_too() {
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path().join("origin");
    let first = commit(&repo, &[("a", "1")], "first");
    git(&repo, &["tag", "-a", "v1", "-m", "release"]);
    let second = commit(&repo, &[("a", "2")], "second");

    let mirror = tmp.path().join("tag");
    assert_eq!(
        fetch(&mirror, &Remote::new(url(&repo), "v1", None)),
        Ok(first.clone())
    );
    let mirror = tmp.path().join("full");
    assert_eq!(
        fetch(&mirror, &Remote::new(url(&repo), "refs/heads/main", None)),
        Ok(second)
    );
    let mirror = tmp.path().join("pinned");
    assert_eq!(
        fetch(&mirror, &Remote::new(url(&repo), &first, None)),
        Ok(first)
    );
}

#[test]
fn a_force_push_and_a_deleted_ref_are_followed_and_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path().join("origin");
    commit(&repo, &[("a", "1")], "first");
    let remote = Remote::new(url(&repo), "main", None);
    let mirror = tmp.path().join("mirror");
    let before = fetch(&mirror, &remote).expect("fetch");

    git(&repo, &["checkout", "-q", "--orphan", "rewritten"]);
    let rewritten = commit(&repo, &[("a", "rewritten")], "history rewritten");
    git(&repo, &["branch", "-q", "-M", "rewritten", "main"]);
    assert_ne!(before, rewritten);
    assert_eq!(fetch(&mirror, &remote), Ok(rewritten));

    git(&repo, &["checkout", "-q", "-b", "other"]);
    git(&repo, &["branch", "-q", "-D", "main"]);
    let error = fetch(&mirror, &remote).expect_err("the ref is gone");
    assert!(
        error.0.contains("cannot fetch 'main' from file://"),
        "{error}"
    );
    assert!(error.0.contains("no branch, tag or commit"), "{error}");
}

#[test]
fn a_missing_repository_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let remote = Remote::new(url(&tmp.path().join("nowhere")), "main", None);
    let error = fetch(&tmp.path().join("mirror"), &remote).expect_err("no repository");
    assert!(
        error.0.starts_with("cannot fetch 'main' from file://"),
        "{error}"
    );
}

#[test]
fn userinfo_and_tokens_never_show() {
    let remote = Remote::new(
        "https://alice:s3cr%40t@git.example.com/org/repo.git",
        "main",
        Some(Auth::Token {
            username: "x-access-token".into(),
            token: "tok-123456".into(),
        }),
    );
    assert_eq!(remote.display_url(), "https://git.example.com/org/repo.git");
    let text = "failed https://alice:s3cr%40t@git.example.com/org/repo.git as alice:s3cr@t \
                with s3cr%40t and tok-123456";
    let redacted = remote.redact(text);
    assert_eq!(
        redacted,
        "failed https://git.example.com/org/repo.git as *** with *** and ***"
    );
    let debug = format!("{remote:?}");
    assert!(
        !debug.contains("s3cr") && !debug.contains("tok-1"),
        "{debug}"
    );
}

#[test]
fn an_unsafe_tree_entry_fails_the_export() {
    assert!(!export::safe_name(".."));
    assert!(!export::safe_name(".GIT"));
    assert!(!export::safe_name("a/b"));
    assert!(export::safe_name(".workflows"));
}

#[test]
fn the_last_good_commit_survives_in_the_mirror() {
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path().join("origin");
    let head = commit(&repo, &[("a", "1")], "first");
    let mirror = tmp.path().join("mirror");
    assert_eq!(last_good(&mirror), None);
    fetch(&mirror, &Remote::new(url(&repo), "main", None)).expect("fetch");
    assert_eq!(last_good(&mirror), None);
    mark_good(&mirror, &head).expect("mark");
    assert_eq!(last_good(&mirror), Some(head));
}
