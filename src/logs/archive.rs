//! The finished form of a log: `<job>.jsonl.zst`, a sequence of independent zstd frames of about
//! 64 KiB of JSONL each, followed by a seek table in a zstd *skippable* frame. Plain `zstd -d`
//! decompresses the file to the original JSONL (decoders skip skippable frames), and a read from
//! seq N decompresses only from the frame holding N, so reads stay cheap however long the log.
//!
//! Seek table frame: magic `0x184D2A5E` and payload length (both `u32` LE), then one
//! [`index::Entry`] per frame (first seq, byte offset of the frame), then the frame count
//! (`u64` LE) and the 8-byte tag [`TAG`]. A reader finds the table from the file's last 16 bytes.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::index::{self, Entry, RECORD, Records};
use super::reader::{self, Page, Query};
use super::{JobPaths, LogError};

/// Uncompressed bytes per frame: small enough that a seek decompresses little, large enough
/// for zstd to find the repetition in log lines.
pub const FRAME_BYTES: usize = 64 * 1024;
/// zstd's default level: fast to write, and logs compress well at it.
const LEVEL: i32 = 3;
/// Marks the end of a Strøm log archive.
const TAG: &[u8; 8] = b"STROEMLZ";
/// A skippable-frame magic number (zstd reserves 0x184D2A50..=0x184D2A5F for these).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
const FOOTER: u64 = 16;

/// Compresses the plain log (if any) into the archive, atomically: the archive is written to a
/// temporary file, synced, and renamed into place, so a crash leaves either no archive or a
/// complete one. The caller removes the plain file afterwards.
pub fn write(paths: &JobPaths) -> Result<(), LogError> {
    let tmp = &paths.archive_tmp;
    let file = crate::private::create(tmp).map_err(|source| LogError::io(tmp, source))?;
    let mut out = BufWriter::new(file);
    let mut frames: Vec<Entry> = Vec::new();
    let mut written = 0u64;
    let mut chunk: Vec<u8> = Vec::with_capacity(FRAME_BYTES + 1024);
    let mut chunk_seq = 0;

    let mut flush = |chunk: &mut Vec<u8>, seq: u64, out: &mut BufWriter<File>| {
        let frame =
            zstd::bulk::compress(chunk, LEVEL).map_err(|source| LogError::io(tmp, source))?;
        out.write_all(&frame)
            .map_err(|source| LogError::io(tmp, source))?;
        frames.push(Entry {
            seq,
            offset: written,
        });
        written += frame.len() as u64;
        chunk.clear();
        Ok::<(), LogError>(())
    };

    match File::open(&paths.plain) {
        Ok(plain) => reader::for_each_line(&plain, 0, &paths.plain, |line| {
            if chunk.is_empty() {
                chunk_seq =
                    index::seq_prefix(line).ok_or_else(|| reader::corrupt(&paths.plain, line))?;
            }
            chunk.extend_from_slice(line);
            if chunk.len() >= FRAME_BYTES {
                flush(&mut chunk, chunk_seq, &mut out)?;
            }
            Ok(())
        })?,
        // A job that never logged gets an empty archive, which still marks it finished.
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(LogError::io(&paths.plain, source)),
    }
    if !chunk.is_empty() {
        flush(&mut chunk, chunk_seq, &mut out)?;
    }

    let table_len = frames.len() as u64 * RECORD + FOOTER;
    let payload = u32::try_from(table_len).map_err(|_| LogError::Corrupt {
        path: paths.plain.clone(),
        detail: "log too large for its seek table".to_owned(),
    })?;
    let mut table = Vec::with_capacity(8 + table_len as usize);
    table.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    table.extend_from_slice(&payload.to_le_bytes());
    for frame in &frames {
        table.extend_from_slice(&frame.encode());
    }
    table.extend_from_slice(&(frames.len() as u64).to_le_bytes());
    table.extend_from_slice(TAG);
    out.write_all(&table)
        .map_err(|source| LogError::io(tmp, source))?;
    let file = out
        .into_inner()
        .map_err(|error| LogError::io(tmp, error.into_error()))?;
    file.sync_all()
        .map_err(|source| LogError::io(tmp, source))?;
    drop(file);
    fs::rename(tmp, &paths.archive).map_err(|source| LogError::io(&paths.archive, source))?;
    sync_dir(&paths.archive)
}

/// Makes a rename durable: on Linux the new directory entry is only safe once the directory
/// itself is synced.
fn sync_dir(path: &Path) -> Result<(), LogError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| LogError::io(dir, source))
}

/// Reads a range from an archive: finds the frame holding `after + 1` in the seek table and
/// stream-decompresses from there, stopping at `limit` lines.
pub fn read(path: &Path, mut file: File, query: Query<'_>) -> Result<Page, LogError> {
    let len = file
        .metadata()
        .map_err(|source| LogError::io(path, source))?
        .len();
    let bad = |detail: &str| LogError::Corrupt {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    if len < FOOTER + 8 {
        return Err(bad("archive too short for its seek table"));
    }
    let mut footer = [0u8; FOOTER as usize];
    file.read_exact_at(&mut footer, len - FOOTER)
        .map_err(|source| LogError::io(path, source))?;
    if &footer[8..] != TAG {
        return Err(bad("archive has no seek table"));
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&footer[..8]);
    let count = u64::from_le_bytes(count);
    let table_bytes = count
        .checked_mul(RECORD)
        .and_then(|bytes| bytes.checked_add(FOOTER + 8))
        .filter(|bytes| *bytes <= len)
        .ok_or_else(|| bad("archive seek table larger than the file"))?;
    let table_start = len - table_bytes + 8;
    let frames_end = len - table_bytes;
    let records = Records {
        file: &file,
        base: table_start,
        count,
    };
    let start = records
        .floor(query.after.saturating_add(1))
        .map_err(|source| LogError::io(path, source))?
        .map_or(0, |(_, entry)| entry.offset);
    if start >= frames_end {
        return Ok(Page::default());
    }
    file.seek(SeekFrom::Start(start))
        .map_err(|source| LogError::io(path, source))?;
    let frames = (&file).take(frames_end - start);
    let decoder =
        zstd::stream::read::Decoder::new(frames).map_err(|source| LogError::io(path, source))?;
    reader::scan(BufReader::new(decoder), query, path)
}
