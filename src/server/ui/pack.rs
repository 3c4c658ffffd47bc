//! Packing the built web UI for embedding, shared by `build.rs` (which runs it on `web/dist`)
//! and the tests (which run it on a fixture folder), so both see the same packed layout.
//!
//! Text assets (HTML, JavaScript, CSS, SVG, JSON, …) are stored only gzip-compressed, as
//! `<name>.gz`, when that is smaller: almost every browser accepts gzip, so the binary carries
//! the bytes it sends, and the rare client without gzip gets them decompressed on the fly.
//! Everything else (images, fonts that are already compressed) is stored as is. Compression
//! files that a build tool may have left in the folder (`.gz`, `.br`) are skipped: the packer
//! makes its own, so they can never be stale.
//!
//! This file is compiled into the build script as well, so it uses only `std` and `flate2`.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

/// Extensions of files worth compressing.
const COMPRESSIBLE: &[&str] = &[
    "html",
    "js",
    "mjs",
    "css",
    "svg",
    "json",
    "txt",
    "map",
    "xml",
    "webmanifest",
    "ico",
    "wasm",
];

/// Suffix of a gzip-compressed packed file.
pub const GZIP_SUFFIX: &str = ".gz";

/// What the packer did, for the build script's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Packed {
    pub files: usize,
    /// Bytes of the original files.
    pub raw_bytes: u64,
    /// Bytes stored for embedding (compressed where that helped).
    pub stored_bytes: u64,
}

/// Replaces the contents of `out` with the packed form of every file under `dist`. A `dist`
/// that does not exist packs to an empty `out`: the binary then serves the "not built" page.
pub fn pack(dist: &Path, out: &Path) -> io::Result<Packed> {
    if out.exists() {
        fs::remove_dir_all(out)?;
    }
    fs::create_dir_all(out)?;
    let mut packed = Packed::default();
    if dist.is_dir() {
        pack_dir(dist, out, &mut packed)?;
    }
    Ok(packed)
}

fn pack_dir(from: &Path, to: &Path, packed: &mut Packed) -> io::Result<()> {
    let mut entries = fs::read_dir(from)?.collect::<Result<Vec<_>, _>>()?;
    // Sorted, so the build output does not depend on directory order.
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name();
        let source = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            let target = to.join(&name);
            fs::create_dir_all(&target)?;
            pack_dir(&source, &target, packed)?;
            continue;
        }
        let name = name.to_string_lossy().into_owned();
        if name.ends_with(".gz") || name.ends_with(".br") {
            continue;
        }
        let bytes = fs::read(&source)?;
        packed.files += 1;
        packed.raw_bytes += bytes.len() as u64;
        let compressed = compressible(&name).then(|| gzip(&bytes)).transpose()?;
        match compressed {
            Some(gz) if gz.len() < bytes.len() => {
                packed.stored_bytes += gz.len() as u64;
                fs::write(to.join(format!("{name}{GZIP_SUFFIX}")), gz)?;
            }
            _ => {
                packed.stored_bytes += bytes.len() as u64;
                fs::write(to.join(&name), bytes)?;
            }
        }
    }
    Ok(())
}

/// Whether a file name has a text-like extension worth compressing.
pub fn compressible(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| COMPRESSIBLE.contains(&ext.to_ascii_lowercase().as_str()))
}

/// gzip at the highest level: packing happens once per build, serving many times.
pub fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()
}
