//! Following a live log (API §4.3, `stroem logs --follow`): backfill from a seq, then live lines,
//! each exactly once and in seq order, then the end.
//!
//! Writers broadcast only *notices* ("lines up to seq N are stored", "finished"), never lines,
//! so a slow follower never holds up a writer and a follower that misses notices (the channel is
//! bounded) loses nothing: every batch is read from the file after its last delivered seq. The
//! file is in seq order without gaps, which makes "exactly once, in order" hold by construction.

use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use super::reader::Page;
use super::{LogError, LogStore, StoredLine};

/// What a writer tells subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Lines up to `last_seq` are stored.
    Appended { last_seq: u64 },
    /// The log is finished; no line follows.
    Finished,
}

/// A job's notices. Ends (returns `None`) when the log is finished or deleted.
#[derive(Debug)]
pub struct Subscription {
    receiver: Option<broadcast::Receiver<Notice>>,
}

impl Subscription {
    pub(super) fn new(receiver: Option<broadcast::Receiver<Notice>>) -> Subscription {
        Subscription { receiver }
    }

    /// The next notice. A subscriber that fell behind gets the newest notices still buffered:
    /// the ones it missed only said that lines were stored, which it reads from the file anyway.
    pub async fn recv(&mut self) -> Option<Notice> {
        let receiver = self.receiver.as_mut()?;
        loop {
            match receiver.recv().await {
                Ok(Notice::Finished) | Err(RecvError::Closed) => {
                    self.receiver = None;
                    return Some(Notice::Finished);
                }
                Ok(notice) => return Some(notice),
                Err(RecvError::Lagged(_)) => continue,
            }
        }
    }

    fn has_ended(&self) -> bool {
        self.receiver.is_none()
    }
}

/// Lines per batch a follower reads at a time.
const BATCH_LINES: usize = 1_000;

/// Follows one job's log; see the module doc for the contract.
#[derive(Debug)]
pub struct Follower {
    store: LogStore,
    job_id: Uuid,
    after: u64,
    step: Option<String>,
    subscription: Subscription,
}

impl Follower {
    pub(super) fn new(
        store: LogStore,
        job_id: Uuid,
        after: u64,
        step: Option<&str>,
        subscription: Subscription,
    ) -> Follower {
        Follower {
            store,
            job_id,
            after,
            step: step.map(str::to_owned),
            subscription,
        }
    }

    /// The seq after which the next batch starts: the last line delivered (or looked at, with a
    /// step filter). A client that reconnects passes it as `after`.
    pub fn last_seq(&self) -> u64 {
        self.after
    }

    /// The next lines in seq order (never empty), waiting for them while the job runs; `None`
    /// once the log is finished (or deleted) and every line was delivered.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<StoredLine>>, LogError> {
        loop {
            // Decide "finished" before reading: a read that starts after the archive exists
            // sees the whole log, so an empty read then means the end.
            let finished = self.subscription.has_ended() || self.store.is_finished(self.job_id);
            let page = self.read().await?;
            self.after = self.after.max(page.scanned_to);
            if !page.lines.is_empty() {
                return Ok(Some(page.lines));
            }
            if finished {
                return Ok(None);
            }
            // Any notice means "look again"; the end is confirmed by the next empty read.
            self.subscription.recv().await;
        }
    }

    async fn read(&self) -> Result<Page, LogError> {
        let store = self.store.clone();
        let (job_id, after, step) = (self.job_id, self.after, self.step.clone());
        tokio::task::spawn_blocking(move || {
            store.read_page(job_id, after, BATCH_LINES, step.as_deref())
        })
        .await?
    }
}
