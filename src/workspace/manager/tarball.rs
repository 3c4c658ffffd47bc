//! Revision archives for remote workers (API §7.7): the snapshot's tree as `tar`, compressed
//! with zstd or gzip, cached on disk per revision and encoding.
//!
//! Archives are deterministic — entries in byte order of their paths, directories before their
//! contents, mtime 0, owner 0:0, no user or group names — so building one twice gives the same
//! bytes, and an archive served after a restart matches the ETag a worker cached.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tar::{Builder, EntryType, Header};

use super::snapshot::tarballs_dir;
use super::{Revision, Workspaces};

/// zstd level: the default trade-off; workers download each revision once.
const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Zstd,
    Gzip,
}

impl Encoding {
    pub const ALL: [Encoding; 2] = [Encoding::Zstd, Encoding::Gzip];

    /// The file extension, also the route suffix (`/worker/workspace/{ws}.tar.zst`).
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Zstd => "tar.zst",
            Encoding::Gzip => "tar.gz",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Zstd => "application/zstd",
            Encoding::Gzip => "application/gzip",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TarballError {
    /// The revision's snapshot is no longer on disk (API §7.7: 410 `gone`).
    #[error("revision {0} is no longer retained")]
    Gone(String),
    #[error("cannot build the archive of revision {revision}: {source}")]
    Io { revision: String, source: io::Error },
}

pub(super) fn cache_path(data_dir: &Path, ws: &str, revision: &str, encoding: Encoding) -> PathBuf {
    tarballs_dir(data_dir, ws).join(format!("{revision}.{}", encoding.extension()))
}

impl Workspaces {
    /// The archive of `rev` in `encoding`, built on first request and cached on disk until
    /// the revision is dropped. Returns the cached file's path.
    pub fn tarball(&self, rev: &Revision, encoding: Encoding) -> Result<PathBuf, TarballError> {
        let path = cache_path(
            &self.settings.data_dir,
            &rev.workspace,
            &rev.revision,
            encoding,
        );
        if path.is_file() {
            return Ok(path);
        }
        if !rev.root.is_dir() {
            return Err(TarballError::Gone(rev.revision.clone()));
        }
        let io_error = |source| TarballError::Io {
            revision: rev.revision.clone(),
            source,
        };
        let dir = tarballs_dir(&self.settings.data_dir, &rev.workspace);
        // Built beside its final place and renamed, so a reader never sees half an archive.
        let mut partial = tempfile::Builder::new()
            .prefix(&format!("{}.partial-", rev.revision))
            .tempfile_in(&dir)
            .map_err(io_error)?;
        write_archive(&rev.root, encoding, BufWriter::new(partial.as_file_mut()))
            .map_err(io_error)?;
        partial
            .persist(&path)
            .map_err(|error| io_error(error.error))?;
        Ok(path)
    }
}

/// Writes the compressed archive of the tree at `root` to `out`.
pub(super) fn write_archive(root: &Path, encoding: Encoding, out: impl Write) -> io::Result<()> {
    match encoding {
        Encoding::Zstd => {
            let mut builder = Builder::new(zstd::Encoder::new(out, ZSTD_LEVEL)?);
            append_tree(&mut builder, root)?;
            builder.into_inner()?.finish()?.flush()
        }
        Encoding::Gzip => {
            // GzBuilder writes mtime 0 and no file name unless told otherwise.
            let gz = flate2::GzBuilder::new().write(out, flate2::Compression::default());
            let mut builder = Builder::new(gz);
            append_tree(&mut builder, root)?;
            builder.into_inner()?.finish()?.flush()
        }
    }
}

fn append_tree<W: Write>(builder: &mut Builder<W>, root: &Path) -> io::Result<()> {
    let root = root.canonicalize()?;
    append_dir(builder, &root, &root, "")
}

fn append_dir<W: Write>(
    builder: &mut Builder<W>,
    root: &Path,
    dir: &Path,
    relative: &str,
) -> io::Result<()> {
    let mut entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if relative.is_empty() && name == ".git" {
            continue;
        }
        let path = entry.path();
        let archived = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        let meta = fs::symlink_metadata(&path)?;
        let kind = meta.file_type();
        let mode = meta.permissions().mode() & 0o7777;
        if kind.is_dir() {
            let mut header = header(EntryType::Directory, mode, 0);
            builder.append_data(&mut header, format!("{archived}/"), io::empty())?;
            append_dir(builder, root, &path, &archived)?;
        } else if kind.is_file() {
            let mut header = header(EntryType::Regular, mode, meta.len());
            builder.append_data(&mut header, &archived, File::open(&path)?)?;
        } else if kind.is_symlink() {
            // Snapshots hold only links that stay inside the tree; checked again because
            // workers must never be handed one that leaves it (API §7.7).
            let inside = path
                .canonicalize()
                .is_ok_and(|target| target.starts_with(root));
            if inside {
                let target = fs::read_link(&path)?;
                let mut header = header(EntryType::Symlink, 0o777, 0);
                builder.append_link(&mut header, &archived, target)?;
            }
        }
    }
    Ok(())
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}
