//! Files and directories that hold secrets, readable by Strøm's own user only (issue #16 item
//! 4): the data directory, the SQLite database, job logs, each attempt's I/O directory with the
//! step's input, output and script.
//!
//! Directories are `0700` and files `0600` whatever the umask. Existing ones are tightened,
//! never loosened, so an operator who chose stricter modes keeps them. One this user does not
//! own (a volume's mount point, say) cannot be tightened: that is logged as a warning rather
//! than refusing to start, since what Strøm creates inside it is private anyway.
//!
//! *Invariant*: depends on nothing else of Strøm's.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of private directories.
pub const DIR_MODE: u32 = 0o700;
/// Mode of private files.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents as private directories; an existing `path` loses
/// its group and other permissions. Parents that exist are left as they are.
pub fn create_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)?;
    tighten(path)
}

/// Takes group and other permissions away from an existing file or directory; warns when it
/// belongs to someone else.
pub fn tighten(path: &Path) -> io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    match fs::set_permissions(path, Permissions::from_mode(mode & !0o077)) {
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "cannot make this private (this user does not own it): other users may read it"
            );
            Ok(())
        }
        other => other,
    }
}

/// [`tighten`] for a file that may not exist.
pub fn tighten_if_present(path: &Path) -> io::Result<()> {
    match tighten(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Options that create files readable by the owner only.
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Writes `contents` to a new or truncated private file.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> io::Result<()> {
    use std::io::Write as _;
    let mut file = options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(contents.as_ref())?;
    tighten(path)
}

/// Creates a private file for writing, truncating one that exists.
pub fn create(path: &Path) -> io::Result<File> {
    let file = options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    tighten(path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_are_private_whatever_existed() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a/b");
        create_dir(&dir).expect("create");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        fs::set_permissions(&dir, Permissions::from_mode(0o755)).expect("loosen");
        create_dir(&dir).expect("again");
        assert_eq!(mode(&dir), 0o700);

        let file = dir.join("f");
        fs::write(&file, "x").expect("write");
        fs::set_permissions(&file, Permissions::from_mode(0o644)).expect("loosen");
        write(&file, "secret").expect("rewrite");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::read_to_string(&file).expect("read"), "secret");
        let new = dir.join("g");
        drop(create(&new).expect("create"));
        assert_eq!(mode(&new), 0o600);

        // Stricter modes stay.
        fs::set_permissions(&file, Permissions::from_mode(0o400)).expect("stricter");
        tighten(&file).expect("tighten");
        assert_eq!(mode(&file), 0o400);
        tighten_if_present(&dir.join("missing")).expect("missing is fine");
    }
}
