//! Revision archives: they unpack to the snapshot's tree, are byte-identical when rebuilt, are
//! cached, and go with their revision.

use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};

use super::*;

/// Every entry under `root` as `path kind mode [content|target]`, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("readable") {
        let path = entry.expect("entry").path();
        let rel = path
            .strip_prefix(root)
            .expect("inside")
            .display()
            .to_string();
        let meta = fs::symlink_metadata(&path).expect("metadata");
        let mode = meta.permissions().mode() & 0o777;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).expect("target");
            out.push(format!("{rel} link -> {}", target.display()));
        } else if meta.is_dir() {
            out.push(format!("{rel}/ dir {mode:o}"));
            walk(root, &path, out);
        } else {
            out.push(format!("{rel} file {mode:o} {:?}", read(&path)));
        }
    }
}

fn unpack(bytes: &[u8], encoding: Encoding, into: &Path) {
    let mut tar = Vec::new();
    match encoding {
        Encoding::Zstd => {
            zstd::Decoder::new(bytes)
                .expect("zstd")
                .read_to_end(&mut tar)
                .expect("decompress");
        }
        Encoding::Gzip => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut tar)
                .expect("decompress");
        }
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    archive.set_preserve_permissions(true);
    archive.unpack(into).expect("unpack");
}

/// A workspace with nested directories, an executable script, an inside and an outside link
/// and version-control metadata.
fn fixture() -> (Fixture, Workspaces) {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", GOOD);
    fx.write("default", "scripts/deploy.sh", "#!/bin/sh\necho deploy\n");
    fx.write("default", "docs/a/b/notes.md", "notes\n");
    fx.write("default", ".git/HEAD", "ref: refs/heads/main\n");
    let folder = fx.folder("default");
    fs::set_permissions(
        folder.join("scripts/deploy.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    symlink("scripts/deploy.sh", folder.join("deploy")).expect("symlink");
    symlink("/etc/hostname", folder.join("outside")).expect("symlink");
    let workspaces = fx.open(&["default"]);
    (fx, workspaces)
}

#[test]
fn archives_round_trip_to_the_snapshot_tree_without_git_or_outside_links() {
    let (fx, workspaces) = fixture();
    let rev = workspaces.get("default").expect("active");
    for encoding in Encoding::ALL {
        let path = workspaces.tarball(&rev, encoding).expect("archive");
        assert_eq!(
            path,
            fx.data_dir().join("tarballs/default").join(format!(
                "{}.{}",
                rev.revision,
                encoding.extension()
            ))
        );
        let out = TempDir::new().expect("temp dir");
        unpack(&fs::read(&path).expect("read"), encoding, out.path());
        let unpacked = listing(out.path());
        assert_eq!(unpacked, listing(&rev.root), "{encoding:?}");
        assert!(unpacked.contains(&"deploy link -> scripts/deploy.sh".to_owned()));
        assert!(unpacked.contains(&format!(
            "scripts/deploy.sh file 755 {:?}",
            "#!/bin/sh\necho deploy\n"
        )));
        assert!(
            !unpacked
                .iter()
                .any(|e| e.starts_with(".git") || e.starts_with("outside"))
        );
    }
}

#[test]
fn archives_are_byte_identical_when_rebuilt_and_cached_until_the_revision_goes() {
    let (fx, workspaces) = fixture();
    let rev = workspaces.get("default").expect("active");
    for encoding in Encoding::ALL {
        let path = workspaces.tarball(&rev, encoding).expect("archive");
        let first = fs::read(&path).expect("read");
        fs::remove_file(&path).expect("rm");
        let rebuilt = fs::read(workspaces.tarball(&rev, encoding).expect("archive")).expect("read");
        assert_eq!(first, rebuilt, "{encoding:?}");

        // A second request is served from the cache file, which is not rewritten.
        let modified = fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        workspaces.tarball(&rev, encoding).expect("archive");
        assert_eq!(
            fs::metadata(&path)
                .and_then(|m| m.modified())
                .expect("mtime"),
            modified
        );
    }

    // A snapshot made from a fresh copy of the same files archives to the same bytes.
    let mut again = Vec::new();
    let copy = TempDir::new().expect("temp dir");
    crate::runner::workcopy::copy_tree(&rev.root, copy.path()).expect("copy");
    tarball::write_archive(copy.path(), Encoding::Zstd, &mut again).expect("archive");
    let cached =
        fs::read(workspaces.tarball(&rev, Encoding::Zstd).expect("archive")).expect("read");
    assert_eq!(again, cached);

    fx.write("default", ".workflows/main.yaml", GOOD_TWO);
    workspaces.tick(at(30));
    assert!(
        fs::read_dir(fx.data_dir().join("tarballs/default"))
            .expect("dir")
            .next()
            .is_none()
    );
    assert!(matches!(
        workspaces.tarball(&rev, Encoding::Gzip),
        Err(TarballError::Gone(_))
    ));
}
