//! Defensive extraction of revision archives (API §7.7): a well-formed tree comes out with its
//! modes and inside links; every kind of unsafe entry is refused.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use tar::{Builder, EntryType, Header};

use super::*;

/// A header whose name is written raw, so tests can build entries `tar::Builder` refuses.
fn header(name: &str, kind: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    let gnu = header.as_gnu_mut().expect("gnu header");
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    header
}

/// An archive entry: name, kind, and the content or link target.
type Entry<'a> = (&'a str, EntryType, &'a str);

fn archive(entries: &[Entry]) -> Vec<u8> {
    let mut builder = Builder::new(Vec::new());
    for (name, kind, content) in entries {
        match kind {
            EntryType::Symlink | EntryType::Link => {
                let mut header = header(name, *kind, 0o777, 0);
                let gnu = header.as_gnu_mut().expect("gnu header");
                gnu.linkname[..content.len()].copy_from_slice(content.as_bytes());
                header.set_cksum();
                builder.append(&header, std::io::empty()).expect("append");
            }
            _ => {
                let mode = if *kind == EntryType::Directory {
                    0o755
                } else {
                    0o750
                };
                let header = header(name, *kind, mode, content.len() as u64);
                builder.append(&header, content.as_bytes()).expect("append");
            }
        }
    }
    builder.into_inner().expect("archive")
}

#[test]
fn a_tree_is_extracted_with_modes_and_inside_links() {
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = RevisionCache::new(cache_dir.path().to_owned());
    let tar = archive(&[
        ("scripts/", EntryType::Directory, ""),
        ("scripts/run.sh", EntryType::Regular, "echo hi\n"),
        ("run", EntryType::Symlink, "scripts/run.sh"),
        ("scripts/self", EntryType::Symlink, "../scripts"),
    ]);
    assert_eq!(cache.cached("default", "ab12").expect("valid names"), None);
    let root = cache
        .extract("default", "ab12", tar.as_slice())
        .expect("extracts");
    assert_eq!(root, cache_dir.path().join("default/ab12"));
    assert_eq!(
        fs::read_to_string(root.join("run")).expect("link resolves"),
        "echo hi\n"
    );
    let mode = fs::metadata(root.join("scripts/run.sh"))
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o750);
    assert_eq!(
        cache.cached("default", "ab12").expect("valid names"),
        Some(root)
    );
    // Nothing but the revision is left behind.
    let names: Vec<_> = fs::read_dir(cache_dir.path().join("default"))
        .expect("listing")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec!["ab12"]);
}

#[test]
fn unsafe_entries_are_refused() {
    let cases: [(&str, Vec<Entry>); 6] = [
        ("absolute", vec![("/etc/evil", EntryType::Regular, "x")]),
        ("parent", vec![("a/../../evil", EntryType::Regular, "x")]),
        ("hard link", vec![("h", EntryType::Link, "etc/passwd")]),
        ("fifo", vec![("pipe", EntryType::Fifo, "")]),
        (
            "escaping link",
            vec![("up", EntryType::Symlink, "../outside")],
        ),
        (
            "write through a link",
            vec![
                ("sub/", EntryType::Directory, ""),
                ("alias", EntryType::Symlink, "sub"),
                ("alias/file", EntryType::Regular, "x"),
            ],
        ),
    ];
    for (label, entries) in cases {
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let cache = RevisionCache::new(cache_dir.path().to_owned());
        let error = cache
            .extract("default", "ab12", archive(&entries).as_slice())
            .expect_err(label);
        assert!(
            matches!(error, RevisionError::Unsafe { .. }),
            "{label}: {error}"
        );
        assert_eq!(
            cache.cached("default", "ab12").expect("valid"),
            None,
            "{label}"
        );
    }
}

#[test]
fn revisions_and_workspaces_are_checked_before_use_in_a_path() {
    let cache = RevisionCache::new(PathBuf::from("/nonexistent"));
    for revision in ["", "../x", "ABCD", "12/34"] {
        assert!(
            matches!(
                cache.path("default", revision),
                Err(RevisionError::InvalidRevision(_))
            ),
            "{revision}"
        );
    }
    assert!(matches!(
        cache.path("../etc", "ab"),
        Err(RevisionError::InvalidWorkspace(_))
    ));
}

#[test]
fn link_chains_that_climb_out_through_other_links_are_refused() {
    // Each link alone stays inside by its name, but `c` resolves through `a/b` (the root)
    // to the root's parent. Both orders: the later link changes what the earlier one means.
    let chains: [Vec<Entry>; 2] = [
        vec![
            ("a/", EntryType::Directory, ""),
            ("a/b", EntryType::Symlink, ".."),
            ("c", EntryType::Symlink, "a/b/.."),
        ],
        vec![
            ("a/", EntryType::Directory, ""),
            ("c", EntryType::Symlink, "a/b/../x"),
            ("a/b", EntryType::Symlink, ".."),
        ],
    ];
    for entries in chains {
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let cache = RevisionCache::new(cache_dir.path().to_owned());
        let error = cache
            .extract("default", "ab12", archive(&entries).as_slice())
            .expect_err("escapes");
        assert!(
            matches!(error, RevisionError::Unsafe { ref path, .. } if path == "c"),
            "{error}"
        );
        assert_eq!(cache.cached("default", "ab12").expect("valid"), None);
    }
    // A chain that stays inside is fine.
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = RevisionCache::new(cache_dir.path().to_owned());
    let inside = archive(&[
        ("a/", EntryType::Directory, ""),
        ("a/f", EntryType::Regular, "x"),
        ("a/b", EntryType::Symlink, "."),
        ("c", EntryType::Symlink, "a/b/b/f"),
    ]);
    let root = cache
        .extract("default", "ab12", inside.as_slice())
        .expect("extracts");
    assert_eq!(fs::read_to_string(root.join("c")).expect("reads"), "x");
}
#[test]
fn decompressed_size_is_capped_per_file_and_in_total() {
    let limits = RevisionLimits {
        max_bytes: 64 * 1024,
        max_file_bytes: 16 * 1024,
    };
    let big_file = "x".repeat(17 * 1024);
    let medium = "y".repeat(15 * 1024);
    let one_too_big = archive(&[("big", EntryType::Regular, big_file.as_str())]);
    let many: Vec<String> = (0..5).map(|n| format!("f{n}")).collect();
    let too_many: Vec<Entry> = many
        .iter()
        .map(|name| (name.as_str(), EntryType::Regular, medium.as_str()))
        .collect();
    for (label, tar) in [("file", one_too_big), ("total", archive(&too_many))] {
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let cache = RevisionCache::with_limits(cache_dir.path().to_owned(), limits);
        let error = cache
            .extract("default", "ab12", tar.as_slice())
            .expect_err(label);
        assert!(
            matches!(error, RevisionError::TooLarge(_)),
            "{label}: {error}"
        );
        assert_eq!(cache.cached("default", "ab12").expect("valid"), None);
        // Nothing of the partial tree is left behind.
        let left = fs::read_dir(cache_dir.path().join("default"))
            .expect("listing")
            .count();
        assert_eq!(left, 0, "{label}");
    }
}

#[test]
fn old_revisions_are_pruned_except_those_in_use_and_the_most_recent() {
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = RevisionCache::new(cache_dir.path().to_owned());
    let tar = archive(&[("f", EntryType::Regular, "x")]);
    let revisions = ["a1", "a2", "a3", "a4", "a5", "a6"];
    for revision in revisions {
        cache
            .extract("default", revision, tar.as_slice())
            .expect("extracts");
        // Modification times order the revisions by last use.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Using a revision again makes it recent.
    cache.touch("default", "a2").expect("touch");
    let in_use = std::collections::HashSet::from(["a1".to_owned()]);
    let removed = cache.prune("default", &in_use).expect("prunes");
    assert_eq!(removed, 6 - 1 - KEEP_RECENT);
    let mut left: Vec<String> = fs::read_dir(cache_dir.path().join("default"))
        .expect("listing")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    left.sort();
    assert_eq!(left, ["a1", "a2", "a5", "a6"]);
}
