//! The append side of one live job log: assigns seqs, masks and cuts lines, enforces the per-job
//! size cap, keeps the sparse index sidecar, and recovers all of that after a restart from the
//! file's tail instead of reading the whole log.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use chrono::Utc;

use super::batches::{BatchKey, Batches};
use super::index::{Entry, RECORD};
use super::line::{self, SERVER_STEP, StoredLine};
use super::reader;
use super::{AppendResult, JobPaths, LogConfig, LogError};
use crate::mask::Masker;
use crate::runner::spec::{LogLine, Stream};

/// The text that starts the one `_server` line written when a log reaches its size cap.
pub const CAP_NOTICE: &str = "log size limit reached";

/// The open writer of one job's plain log. Only one exists per job (the store keeps it behind
/// the job's lock), so seqs are assigned without gaps.
#[derive(Debug)]
pub struct JobWriter {
    paths: JobPaths,
    config: LogConfig,
    log: File,
    index: File,
    batches: Batches,
    /// Bytes in the log, all of them complete lines.
    len: u64,
    next_seq: u64,
    /// Where the current index chunk starts.
    chunk_start: u64,
    /// The cap was reached and its notice written: every further line is dropped.
    capped: bool,
}

impl JobWriter {
    /// Opens (creating) the plain log and repairs it after a crash: a partly written last line
    /// is cut off, index records pointing past the end are dropped, and the next seq, the cap
    /// state and the batch counts are recovered from the tail.
    pub fn open(paths: JobPaths, config: LogConfig) -> Result<JobWriter, LogError> {
        if paths.archive.exists() {
            return Err(LogError::Finished);
        }
        let io_plain = |source| LogError::io(&paths.plain, source);
        let log = crate::private::options()
            .create(true)
            .read(true)
            .append(true)
            .open(&paths.plain)
            .map_err(io_plain)?;
        let file_len = log.metadata().map_err(io_plain)?.len();
        let last = last_line(&log, file_len).map_err(io_plain)?;
        let len = last.as_ref().map_or(0, |(end, _)| *end);
        if len < file_len {
            log.set_len(len).map_err(io_plain)?;
        }
        let last_line: Option<StoredLine> = match &last {
            Some((_, bytes)) => Some(
                serde_json::from_slice(bytes).map_err(|_| reader::corrupt(&paths.plain, bytes))?,
            ),
            None => None,
        };
        let next_seq = last_line.as_ref().map_or(1, |line| line.seq + 1);
        let capped = last_line
            .as_ref()
            .is_some_and(|line| line.step == SERVER_STEP && line.line.starts_with(CAP_NOTICE));

        let (index, chunk_start) = repair_index(&paths, len)?;
        let (mut batches, recorded_len) = Batches::load(paths.batches.clone())?;
        if let Some(from) = recorded_len.filter(|from| *from < len) {
            reader::for_each_line(&log, from, &paths.plain, |bytes| {
                let line: StoredLine = serde_json::from_slice(bytes)
                    .map_err(|_| reader::corrupt(&paths.plain, bytes))?;
                if let (Some(attempt), false) = (line.attempt, line.step == SERVER_STEP) {
                    batches.count_recovered(&line.step, attempt);
                }
                Ok(())
            })?;
        }
        Ok(JobWriter {
            paths,
            config,
            log,
            index,
            batches,
            len,
            next_seq,
            chunk_start,
            capped,
        })
    }

    /// Appends `lines` (masked with `masker`) and returns the seqs they got.
    pub fn append(&mut self, lines: &[LogLine], masker: &Masker) -> Result<AppendResult, LogError> {
        let first_seq = self.next_seq;
        let mut buffer = Vec::new();
        let mut records = Vec::new();
        let mut dropped = 0;
        for input in lines {
            if self.capped {
                dropped += 1;
                continue;
            }
            let stored = line::prepare(input, self.next_seq, masker);
            let mut json = stored.to_json().into_bytes();
            json.push(b'\n');
            let offset = self.len + buffer.len() as u64;
            if offset + json.len() as u64 > self.config.max_job_bytes {
                dropped += 1;
                self.capped = true;
                // The notice itself may pass the cap by its own few bytes: it is the one line
                // that tells a reader why the log ends here.
                json = self.cap_notice().to_json().into_bytes();
                json.push(b'\n');
            }
            if offset - self.chunk_start >= self.config.chunk_bytes {
                records.extend_from_slice(
                    &Entry {
                        seq: self.next_seq,
                        offset,
                    }
                    .encode(),
                );
                self.chunk_start = offset;
            }
            buffer.extend_from_slice(&json);
            self.next_seq += 1;
        }
        // Index records go first: one pointing past the log's end is dropped at recovery, while
        // a log line without its record would only make reads scan a longer chunk.
        self.index
            .write_all(&records)
            .map_err(|source| LogError::io(&self.paths.index, source))?;
        self.log
            .write_all(&buffer)
            .map_err(|source| LogError::io(&self.paths.plain, source))?;
        self.len += buffer.len() as u64;
        Ok(AppendResult {
            first_seq,
            last_seq: self.next_seq - 1,
            duplicates: 0,
            dropped,
        })
    }

    /// Appends a worker batch, skipping the lines of it the log already holds.
    pub fn append_batch(
        &mut self,
        key: &BatchKey,
        lines: &[LogLine],
        masker: &Masker,
    ) -> Result<AppendResult, LogError> {
        let held = self.batches.held(&key.step, key.attempt);
        let duplicates = usize::try_from(held.saturating_sub(key.offset))
            .unwrap_or(usize::MAX)
            .min(lines.len());
        self.batches.ensure_file()?;
        let mut result = self.append(&lines[duplicates..], masker)?;
        result.duplicates = duplicates;
        let end = key.offset + lines.len() as u64;
        if end > held {
            self.batches.record(&key.step, key.attempt, end, self.len)?;
        }
        Ok(result)
    }

    fn cap_notice(&self) -> StoredLine {
        StoredLine {
            seq: self.next_seq,
            ts: Utc::now(),
            stream: Stream::Stderr,
            step: SERVER_STEP.to_owned(),
            attempt: None,
            line: format!(
                "{CAP_NOTICE} ({} bytes); later lines of this job are dropped",
                self.config.max_job_bytes
            ),
        }
    }
}

/// The last complete line of the log: the byte offset just after its newline, and its bytes
/// without the newline. Reads backwards in blocks, so the cost is the last line's size.
fn last_line(log: &File, len: u64) -> io::Result<Option<(u64, Vec<u8>)>> {
    const BLOCK: u64 = 64 * 1024;
    let mut tail: Vec<u8> = Vec::new();
    let mut from = len;
    let mut end: Option<u64> = None;
    while from > 0 {
        let start = from.saturating_sub(BLOCK);
        let mut block = vec![0; (from - start) as usize];
        log.read_exact_at(&mut block, start)?;
        block.extend_from_slice(&tail);
        tail = block;
        from = start;
        // The first newline from the end closes the last complete line; the one before it
        // (or the file's start) opens it.
        let newlines: Vec<usize> = tail
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, byte)| **byte == b'\n')
            .map(|(at, _)| at)
            .take(2)
            .collect();
        let close = match (end, newlines.first()) {
            (Some(close), _) => close,
            (None, Some(at)) => {
                let close = from + *at as u64;
                end = Some(close);
                close
            }
            (None, None) => continue,
        };
        let open = newlines
            .iter()
            .map(|at| from + *at as u64)
            .find(|at| *at < close);
        if open.is_some() || from == 0 {
            let open = open.map_or(0, |at| at + 1);
            let bytes = tail[(open - from) as usize..(close - from) as usize].to_vec();
            return Ok(Some((close + 1, bytes)));
        }
    }
    Ok(None)
}

/// Opens the index sidecar, drops records a crash left pointing at or past the log's end (and a
/// torn last record), and returns where the current chunk starts.
fn repair_index(paths: &JobPaths, log_len: u64) -> Result<(File, u64), LogError> {
    let io_index = |source| LogError::io(&paths.index, source);
    let index = crate::private::options()
        .create(true)
        .read(true)
        .append(true)
        .open(&paths.index)
        .map_err(io_index)?;
    let mut count = index.metadata().map_err(io_index)?.len() / RECORD;
    let mut chunk_start = 0;
    while count > 0 {
        let mut record = [0u8; RECORD as usize];
        index
            .read_exact_at(&mut record, (count - 1) * RECORD)
            .map_err(io_index)?;
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&record[8..]);
        let offset = u64::from_le_bytes(offset);
        if offset < log_len {
            chunk_start = offset;
            break;
        }
        count -= 1;
    }
    index.set_len(count * RECORD).map_err(io_index)?;
    Ok((index, chunk_start))
}
