//! The server's job log storage (API §4, DESIGN §5): one append-only JSON-lines file per job,
//! with seqs assigned here, server-side masking (WF §16.3), line and per-job size caps,
//! exactly-once storage of retried worker batches (API §7.6), reads by seq range that seek
//! instead of scanning, zstd compression when the job ends, and live following for the
//! WebSocket stream and `stroem logs --follow`. No HTTP: the server module wraps it.
//!
//! Files under the log directory, per job:
//! - `<job>.jsonl` — the live log, one API §4.1 record per line, in seq order;
//! - `<job>.idx` — its sparse index, one `(seq, byte offset)` record per ~64 KiB chunk
//!   ([`index`]);
//! - `<job>.batches` — which worker batches it holds ([`batches`]);
//! - `<job>.jsonl.zst` — the finished log, replacing the three above ([`archive`]).
//!
//! Memory does not grow with a log: writers keep counters and per-lease counts, reads
//! hold one chunk and the lines asked for, compression one 64 KiB frame and the frame table.
//!
//! The API is synchronous and does blocking file I/O bounded by the lines written or asked for
//! (plus, once per job, the compression in [`LogStore::finish`]); [`Follower`] runs its reads
//! on tokio's blocking pool.

mod archive;
mod batches;
mod follow;
mod index;
mod line;
mod reader;
mod writer;

#[cfg(test)]
mod follow_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;
use uuid::Uuid;

pub use batches::BatchKey;
pub use follow::{Follower, Notice, Subscription};
pub use line::{LINE_LIMIT, SERVER_STEP, StoredLine, step_matches};
pub use reader::Page;
pub use writer::CAP_NOTICE;

use crate::runner::mask::Masker;
use crate::runner::spec::LogLine;
use writer::JobWriter;

/// Limits of the store.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Largest plain log of one job, in bytes. Past it lines are dropped and one `_server` line
    /// says so. 100 MiB holds about a million ordinary lines — far more than anyone reads in a
    /// browser — while a step flooding its output cannot fill the disk.
    pub max_job_bytes: u64,
    /// Bytes of log per sparse index record: a read from any seq scans at most about this much.
    pub chunk_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_job_bytes: 100 * 1024 * 1024,
            chunk_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("log file {path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    /// The job's log was finished (compressed); it takes no more lines.
    #[error("the job's log is finished and takes no more lines")]
    Finished,
    /// A read on the blocking pool panicked or was cancelled.
    #[error("log read task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl LogError {
    fn io(path: &Path, source: io::Error) -> LogError {
        LogError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The seqs an append gave its stored lines: `first_seq..=last_seq`, empty when
/// `last_seq < first_seq` (every line was a duplicate or dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub first_seq: u64,
    pub last_seq: u64,
    /// Lines of a retried worker batch the log already held.
    pub duplicates: usize,
    /// Lines dropped because the job's log reached its size cap.
    pub dropped: usize,
}

impl AppendResult {
    /// How many lines were stored (including a size-cap notice).
    pub fn stored(&self) -> u64 {
        (self.last_seq + 1).saturating_sub(self.first_seq)
    }
}

/// The files of one job's log.
#[derive(Debug, Clone)]
pub struct JobPaths {
    pub plain: PathBuf,
    pub index: PathBuf,
    pub batches: PathBuf,
    pub archive: PathBuf,
    pub archive_tmp: PathBuf,
}

impl JobPaths {
    fn new(dir: &Path, job_id: Uuid) -> JobPaths {
        let file = |suffix: &str| dir.join(format!("{job_id}{suffix}"));
        JobPaths {
            plain: file(".jsonl"),
            index: file(".idx"),
            batches: file(".batches"),
            archive: file(".jsonl.zst"),
            archive_tmp: file(".jsonl.zst.tmp"),
        }
    }
}

/// The job log store. Cheap to clone; clones share the open writers and subscriptions. One
/// store (and its clones) per directory: two stores on one directory would both write.
#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    config: LogConfig,
    /// Jobs with an open writer or live subscribers; finished and deleted jobs leave.
    jobs: Mutex<HashMap<Uuid, Arc<JobEntry>>>,
}

#[derive(Debug)]
struct JobEntry {
    writer: Mutex<Slot>,
    notify: broadcast::Sender<Notice>,
}

impl JobEntry {
    fn new() -> Arc<JobEntry> {
        Arc::new(JobEntry {
            writer: Mutex::new(Slot::Closed),
            notify: broadcast::channel(NOTICE_CAPACITY).0,
        })
    }
}

#[derive(Debug)]
enum Slot {
    /// Not opened in this process yet, or dropped after an I/O error so the next append reopens
    /// (and repairs) the file.
    Closed,
    Open(Box<JobWriter>),
    Finished,
}

/// Notices buffered per subscriber. A subscriber that falls further behind loses only wake-ups,
/// never lines: it reads the lines from the file.
const NOTICE_CAPACITY: usize = 64;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; were one poisoned, the state it guards is still
    // consistent with the files (a failed append drops its writer), so keep going.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LogStore {
    /// Opens the store in `dir` (created if missing) with the default [`LogConfig`].
    pub fn open(dir: PathBuf) -> Result<LogStore, LogError> {
        LogStore::open_with(dir, LogConfig::default())
    }

    /// Opens the store and finishes what a crash interrupted: a half-written archive is removed,
    /// and a plain log whose archive is complete is removed with its sidecars.
    pub fn open_with(dir: PathBuf, config: LogConfig) -> Result<LogStore, LogError> {
        fs::create_dir_all(&dir).map_err(|source| LogError::io(&dir, source))?;
        let entries = fs::read_dir(&dir).map_err(|source| LogError::io(&dir, source))?;
        for entry in entries {
            let path = entry.map_err(|source| LogError::io(&dir, source))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".jsonl.zst.tmp") {
                remove_file(&path)?;
                continue;
            }
            // Only live jobs have these files, so the check below costs one lookup per live
            // job, not per finished one.
            let job = [".jsonl", ".idx", ".batches"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .and_then(|job| job.parse::<Uuid>().ok());
            if let Some(job_id) = job
                && JobPaths::new(&dir, job_id).archive.exists()
            {
                remove_file(&path)?;
            }
        }
        Ok(LogStore {
            inner: Arc::new(Inner {
                dir,
                config,
                jobs: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn paths(&self, job_id: Uuid) -> JobPaths {
        JobPaths::new(&self.inner.dir, job_id)
    }

    fn entry(&self, job_id: Uuid) -> Arc<JobEntry> {
        let mut jobs = lock(&self.inner.jobs);
        Arc::clone(jobs.entry(job_id).or_insert_with(JobEntry::new))
    }

    /// Appends lines, masking them with the job's full mask set. Meant for `_server` lines:
    /// a worker lease's lines must all come through [`LogStore::append_batch`], because
    /// recovery counts the non-`_server` lines after the last batch record as lease lines.
    pub fn append(
        &self,
        job_id: Uuid,
        lines: &[LogLine],
        mask: &[String],
    ) -> Result<AppendResult, LogError> {
        let masker = Masker::new(mask);
        self.write(job_id, |writer| writer.append(lines, &masker))
    }

    /// Appends one worker batch (API §7.6): lines of the lease the log already holds (a retried
    /// batch) are skipped, the rest masked and stored.
    pub fn append_batch(
        &self,
        job_id: Uuid,
        key: &BatchKey,
        lines: &[LogLine],
        mask: &[String],
    ) -> Result<AppendResult, LogError> {
        let masker = Masker::new(mask);
        self.write(job_id, |writer| writer.append_batch(key, lines, &masker))
    }

    fn write(
        &self,
        job_id: Uuid,
        append: impl FnOnce(&mut JobWriter) -> Result<AppendResult, LogError>,
    ) -> Result<AppendResult, LogError> {
        let entry = self.entry(job_id);
        let mut slot = lock(&entry.writer);
        if matches!(*slot, Slot::Closed) {
            let writer = JobWriter::open(self.paths(job_id), self.inner.config.clone())?;
            *slot = Slot::Open(Box::new(writer));
        }
        let Slot::Open(writer) = &mut *slot else {
            return Err(LogError::Finished);
        };
        match append(writer) {
            Ok(result) => {
                if result.stored() > 0 {
                    // Sent under the lock, so notices arrive in seq order; nobody listening is fine.
                    let _ = entry.notify.send(Notice::Appended {
                        last_seq: result.last_seq,
                    });
                }
                Ok(result)
            }
            Err(error) => {
                *slot = Slot::Closed;
                Err(error)
            }
        }
    }

    /// Lines with `seq > after_seq`, at most `limit`, optionally only those of `step` (an exact
    /// name, `_server`, or a loop step's name for all its instances), from the live or the
    /// finished log. An unknown job has an empty log.
    pub fn read(
        &self,
        job_id: Uuid,
        after_seq: u64,
        limit: usize,
        step: Option<&str>,
    ) -> Result<Vec<StoredLine>, LogError> {
        Ok(self.read_page(job_id, after_seq, limit, step)?.lines)
    }

    /// [`LogStore::read`], also telling how far the read looked.
    pub fn read_page(
        &self,
        job_id: Uuid,
        after_seq: u64,
        limit: usize,
        step: Option<&str>,
    ) -> Result<Page, LogError> {
        let query = reader::Query {
            after: after_seq,
            limit,
            step,
        };
        reader::read(&self.paths(job_id), query)
    }

    /// Whether the job's log is finished (compressed).
    pub fn is_finished(&self, job_id: Uuid) -> bool {
        self.paths(job_id).archive.exists()
    }

    /// Ends the job's log: compresses it to `<job>.jsonl.zst` atomically, removes the plain file
    /// and sidecars, and tells subscribers it ended. Later appends fail with
    /// [`LogError::Finished`]. Finishing twice is harmless.
    pub fn finish(&self, job_id: Uuid) -> Result<(), LogError> {
        let entry = self.entry(job_id);
        let paths = self.paths(job_id);
        {
            let mut slot = lock(&entry.writer);
            if !matches!(*slot, Slot::Finished) {
                // Close the writer's files before compressing what they wrote.
                *slot = Slot::Closed;
                if !paths.archive.exists() {
                    archive::write(&paths)?;
                }
                *slot = Slot::Finished;
                remove_file(&paths.plain)?;
                remove_file(&paths.index)?;
                remove_file(&paths.batches)?;
            }
            let _ = entry.notify.send(Notice::Finished);
        }
        self.forget(job_id, &entry);
        Ok(())
    }

    /// Deletes every file of the job's log (retention). Subscribers see their stream end.
    pub fn delete(&self, job_id: Uuid) -> Result<(), LogError> {
        let entry = self.entry(job_id);
        let paths = self.paths(job_id);
        {
            let mut slot = lock(&entry.writer);
            *slot = Slot::Finished;
            for path in [
                &paths.plain,
                &paths.index,
                &paths.batches,
                &paths.archive,
                &paths.archive_tmp,
            ] {
                remove_file(path)?;
            }
        }
        self.forget(job_id, &entry);
        Ok(())
    }

    /// Drops the job's entry, closing its notice channel once the last sender goes.
    fn forget(&self, job_id: Uuid, entry: &Arc<JobEntry>) {
        let mut jobs = lock(&self.inner.jobs);
        if jobs
            .get(&job_id)
            .is_some_and(|current| Arc::ptr_eq(current, entry))
        {
            jobs.remove(&job_id);
        }
    }

    /// Subscribes to the job's notices. A job already finished gets a subscription that has
    /// ended. Subscribe before reading the backfill, so nothing stored in between is missed.
    pub fn subscribe(&self, job_id: Uuid) -> Subscription {
        // All under the map lock: `finish` renames the archive into place before it removes
        // the entry, so a job without an entry and without an archive is not finished yet, and
        // the entry created here is the one its writer and `finish` will use.
        let mut jobs = lock(&self.inner.jobs);
        if !jobs.contains_key(&job_id) && self.is_finished(job_id) {
            return Subscription::new(None);
        }
        let entry = jobs.entry(job_id).or_insert_with(JobEntry::new);
        Subscription::new(Some(entry.notify.subscribe()))
    }

    /// Follows the job's log from `after_seq`: the stored lines, then live lines as they are
    /// stored, each exactly once and in seq order, then the end once the log is finished.
    pub fn follow(&self, job_id: Uuid, after_seq: u64, step: Option<&str>) -> Follower {
        let subscription = self.subscribe(job_id);
        Follower::new(self.clone(), job_id, after_seq, step, subscription)
    }
}

/// Removes a file, ignoring one that does not exist.
fn remove_file(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(LogError::io(path, error)),
        _ => Ok(()),
    }
}
