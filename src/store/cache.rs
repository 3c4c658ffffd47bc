//! Unfinished jobs as this process last loaded or committed them, so a change to one step of a
//! large job does not read and decode every step row again (issue #3: a chain cost O(n²)).
//!
//! The cache is never trusted on its own: every `jobs` row carries a `version` that each
//! committed change increments under the job's lock, and an entry is used only when its version
//! equals the row's as read inside the transaction. Another replica's change (PostgreSQL), or a
//! change this process made but has not cached yet, therefore shows as a version mismatch and the
//! job is loaded from its rows. Finished jobs are evicted: they no longer change and are read
//! rarely.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use super::job::LoadedJob;

/// At most this many jobs are kept; beyond it, arbitrary entries are dropped (a miss only costs
/// a full load).
const CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct JobCache {
    jobs: Mutex<HashMap<Uuid, Arc<LoadedJob>>>,
}

impl JobCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<LoadedJob>>> {
        // A poisoned lock only means a panic elsewhere mid-insert; every entry is whole.
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached job if it is at `version`.
    pub fn get(&self, job_id: Uuid, version: i64) -> Option<Arc<LoadedJob>> {
        self.lock()
            .get(&job_id)
            .filter(|loaded| loaded.version == version)
            .cloned()
    }

    /// The cached job if it is at `version`, taken out of the cache: a change owns it until it
    /// commits (and puts the new version back), so it can move the unchanged steps into the new
    /// version instead of copying them. A change that rolls back only costs the next one a load.
    pub fn take(&self, job_id: Uuid, version: i64) -> Option<Arc<LoadedJob>> {
        let mut jobs = self.lock();
        if jobs.get(&job_id)?.version != version {
            return None;
        }
        jobs.remove(&job_id)
    }

    /// Remembers a job as committed at `loaded.version`, unless a newer version is cached
    /// already (two changes of one job may finish their commits in either order). A finished
    /// job is forgotten instead.
    pub fn put(&self, loaded: Arc<LoadedJob>) {
        let mut jobs = self.lock();
        if loaded.state.is_finished() {
            jobs.remove(&loaded.state.id);
            return;
        }
        if jobs
            .get(&loaded.state.id)
            .is_some_and(|cached| cached.version > loaded.version)
        {
            return;
        }
        if jobs.len() >= CAPACITY && !jobs.contains_key(&loaded.state.id) {
            let evict: Vec<Uuid> = jobs.keys().take(CAPACITY / 8).copied().collect();
            for id in evict {
                jobs.remove(&id);
            }
        }
        jobs.insert(loaded.state.id, loaded);
    }
}
