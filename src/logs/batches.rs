//! Which worker log lines a job's log already holds, so a retried batch is stored once (API §7.6).
//!
//! A worker numbers the lines of a lease from 0 and sends each batch with the `offset` of its
//! first line. The store keeps, per (step, attempt) — a lease's identity in the log — how many
//! lines it holds (the end of the furthest accepted batch), and skips lines below that.
//!
//! Persistence: the sidecar `<job>.batches` gets one JSON record per accepted batch, written
//! *after* the batch's lines reach the log, carrying the log's length at that moment. On
//! recovery the records give each lease's count as of the last record, and the lines after the
//! recorded length (those of a batch whose record a crash prevented) are counted from the log
//! itself, so a crash between the two writes neither loses nor duplicates lines. The sidecar is
//! created before the first batch is written, so "no sidecar" means "no batch ever".

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::LogError;

/// The lease a worker batch belongs to and the index of its first line within the lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchKey {
    pub step: String,
    pub attempt: u32,
    /// 0-based index, within the lease, of the batch's first line.
    pub offset: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    step: String,
    attempt: u32,
    /// Lines of the lease held after this batch.
    end: u64,
    /// Length of the log file right after the batch was written.
    log_len: u64,
}

/// The per-lease counts of one job, and its sidecar file.
#[derive(Debug)]
pub struct Batches {
    path: PathBuf,
    file: Option<File>,
    held: HashMap<(String, u32), u64>,
}

impl Batches {
    /// Loads the sidecar if there is one. Returns the counts and the log length of the last
    /// record (`Some(0)` for a sidecar without records, `None` without a sidecar).
    pub fn load(path: PathBuf) -> Result<(Batches, Option<u64>), LogError> {
        let mut batches = Batches {
            path,
            file: None,
            held: HashMap::new(),
        };
        let file = match File::open(&batches.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((batches, None)),
            Err(source) => return Err(LogError::io(&batches.path, source)),
        };
        let mut log_len = 0;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|source| LogError::io(&batches.path, source))?;
            // A record cut by a crash is ignored; the log-tail count below makes up for it.
            let Ok(record) = serde_json::from_str::<Record>(&line) else {
                continue;
            };
            let held = batches
                .held
                .entry((record.step, record.attempt))
                .or_default();
            *held = (*held).max(record.end);
            log_len = log_len.max(record.log_len);
        }
        Ok((batches, Some(log_len)))
    }

    /// Lines of the lease the log already holds.
    pub fn held(&self, step: &str, attempt: u32) -> u64 {
        self.held
            .get(&(step.to_owned(), attempt))
            .copied()
            .unwrap_or(0)
    }

    /// Counts a line found in the log after the last record (see the module doc).
    pub fn count_recovered(&mut self, step: &str, attempt: u32) {
        *self.held.entry((step.to_owned(), attempt)).or_default() += 1;
    }

    /// Creates the sidecar before the first batch's lines are written.
    pub fn ensure_file(&mut self) -> Result<(), LogError> {
        if self.file.is_none() {
            let file = crate::private::options()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|source| LogError::io(&self.path, source))?;
            self.file = Some(file);
        }
        Ok(())
    }

    /// Records that the lease now holds `end` lines and the log is `log_len` bytes long.
    pub fn record(
        &mut self,
        step: &str,
        attempt: u32,
        end: u64,
        log_len: u64,
    ) -> Result<(), LogError> {
        self.ensure_file()?;
        let record = Record {
            step: step.to_owned(),
            attempt,
            end,
            log_len,
        };
        let mut text = serde_json::to_string(&record).unwrap_or_default();
        text.push('\n');
        if let Some(file) = self.file.as_mut() {
            file.write_all(text.as_bytes())
                .map_err(|source| LogError::io(&self.path, source))?;
        }
        self.held.insert((step.to_owned(), attempt), end);
        Ok(())
    }
}
