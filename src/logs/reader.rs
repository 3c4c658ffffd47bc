//! Reading a range of a job's log by seq, from the live plain file or the finished archive,
//! without loading either whole: the sparse index finds the chunk holding the first wanted seq,
//! and the scan stops as soon as `limit` lines are collected.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::archive;
use super::index::{self, RECORD, Records};
use super::line::{StoredLine, step_matches};
use super::{JobPaths, LogError};

/// One read: the matching lines, and the last seq the read looked at (matching or not), so a
/// follower with a step filter does not scan the same non-matching lines again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub lines: Vec<StoredLine>,
    /// The highest seq examined; `0` when the read saw no line after `after`.
    pub scanned_to: u64,
}

/// What a read asks for.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub after: u64,
    pub limit: usize,
    pub step: Option<&'a str>,
}

/// Reads from whichever form of the log exists. The plain file is tried first: `finish` renames
/// the archive into place before it removes the plain file, so one of them always exists for a
/// job that has a log, and an open plain file stays complete after its removal.
pub fn read(paths: &JobPaths, query: Query<'_>) -> Result<Page, LogError> {
    match File::open(&paths.plain) {
        Ok(file) => return read_plain(paths, file, query),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(LogError::io(&paths.plain, source)),
    }
    match File::open(&paths.archive) {
        Ok(file) => archive::read(&paths.archive, file, query),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Page::default()),
        Err(source) => Err(LogError::io(&paths.archive, source)),
    }
}

fn read_plain(paths: &JobPaths, file: File, query: Query<'_>) -> Result<Page, LogError> {
    let start = plain_start(paths, &file, query.after)
        .map_err(|source| LogError::io(&paths.plain, source))?;
    let mut reader = BufReader::new(file);
    reader
        .seek(SeekFrom::Start(start))
        .map_err(|source| LogError::io(&paths.plain, source))?;
    scan(reader, query, &paths.plain)
}

/// The byte offset to start scanning from for lines after `after`: the indexed chunk holding
/// `after + 1`, or the start of the file when there is no usable index record.
fn plain_start(paths: &JobPaths, log: &File, after: u64) -> io::Result<u64> {
    let index = match File::open(&paths.index) {
        Ok(index) => index,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let count = index.metadata()?.len() / RECORD;
    let records = Records {
        file: &index,
        base: 0,
        count,
    };
    match records.floor(after.saturating_add(1))? {
        Some((_, entry)) if index::points_at_line(log, entry)? => Ok(entry.offset),
        _ => Ok(0),
    }
}

/// Collects the lines after `query.after` from `reader`, positioned at a line start. A last
/// line without its newline is being written (or was cut by a crash) and is not read.
pub fn scan(mut reader: impl BufRead, query: Query<'_>, path: &Path) -> Result<Page, LogError> {
    let mut page = Page::default();
    if query.limit == 0 {
        return Ok(page);
    }
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let read = reader
            .read_until(b'\n', &mut buffer)
            .map_err(|source| LogError::io(path, source))?;
        if read == 0 || buffer.last() != Some(&b'\n') {
            break;
        }
        // Skipping needs only the seq, so lines before the range are not fully parsed.
        let seq = index::seq_prefix(&buffer).ok_or_else(|| corrupt(path, &buffer))?;
        if seq <= query.after {
            continue;
        }
        page.scanned_to = seq;
        let line: StoredLine =
            serde_json::from_slice(&buffer[..read - 1]).map_err(|_| corrupt(path, &buffer))?;
        if query.step.is_none_or(|step| step_matches(step, &line.step)) {
            page.lines.push(line);
            if page.lines.len() >= query.limit {
                break;
            }
        }
    }
    Ok(page)
}

/// Reads the complete lines of a plain log from `offset` to its end, one at a time, for
/// recovery and compression (which must not hold the whole log in memory).
pub fn for_each_line(
    file: &File,
    offset: u64,
    path: &Path,
    mut each: impl FnMut(&[u8]) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut handle = file;
    handle
        .seek(SeekFrom::Start(offset))
        .map_err(|source| LogError::io(path, source))?;
    let mut reader = BufReader::new(handle.take(u64::MAX));
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let read = reader
            .read_until(b'\n', &mut buffer)
            .map_err(|source| LogError::io(path, source))?;
        if read == 0 || buffer.last() != Some(&b'\n') {
            return Ok(());
        }
        each(&buffer)?;
    }
}

pub fn corrupt(path: &Path, line: &[u8]) -> LogError {
    let shown: String = String::from_utf8_lossy(line).chars().take(80).collect();
    LogError::Corrupt {
        path: path.to_owned(),
        detail: format!("unreadable log record {shown:?}"),
    }
}
