//! [`LogStore`]: the per-job writers behind their locks, the notice channels of followers, and
//! the life of a log from its first line through `finish` (compression) to `delete`.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;
use uuid::Uuid;

use super::follow::{Follower, Notice, Subscription};
use super::reader::{self, Page};
use super::writer::JobWriter;
use super::{
    AppendResult, BatchKey, JobPaths, LogConfig, LogError, StoredLine, archive, remove_file,
};
use crate::mask::Masker;
use crate::runner::spec::LogLine;

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
        // Log lines are masked, but a log still tells what ran and what it printed: the
        // directory and its files are the server's user's alone.
        crate::private::create_dir(&dir).map_err(|source| LogError::io(&dir, source))?;
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
        masker: &Masker,
    ) -> Result<AppendResult, LogError> {
        self.write(job_id, |writer| writer.append(lines, masker))
    }

    /// Appends one worker batch (API §7.6): lines of the lease the log already holds (a retried
    /// batch) are skipped, the rest masked and stored.
    pub fn append_batch(
        &self,
        job_id: Uuid,
        key: &BatchKey,
        lines: &[LogLine],
        masker: &Masker,
    ) -> Result<AppendResult, LogError> {
        self.write(job_id, |writer| writer.append_batch(key, lines, masker))
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
