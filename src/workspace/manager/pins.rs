//! Pinning revisions for jobs (see the module documentation of [`super`]): explicit counts
//! per revision, re-adoption of snapshots left on disk by an earlier run, and pruning of the
//! snapshots nobody needs.

use std::sync::Arc;

use super::{Pin, Revision, Source, Workspaces, load, lock, snapshot};

impl Workspaces {
    /// Pins `revision` for a job: its snapshot stays on disk until a matching
    /// [`release`](Self::release). A revision no longer in memory is re-adopted from its
    /// snapshot on disk when one is left (after a restart). `None` when the revision is gone.
    pub fn retain(&self, ws: &str, revision: &str) -> Option<Arc<Revision>> {
        let entry = self.entries.get(ws)?;
        {
            let mut state = lock(&entry.state);
            if let Some(pin) = state.pins.get_mut(revision) {
                pin.count += 1;
                return Some(Arc::clone(&pin.revision));
            }
            if let Some(active) = state.active.clone()
                && active.revision == revision
            {
                state.pins.insert(
                    revision.to_owned(),
                    Pin {
                        revision: Arc::clone(&active),
                        count: 1,
                    },
                );
                return Some(active);
            }
        }
        let _serial = lock(&self.load_lock);
        let commit_named = matches!(entry.source, Source::Git { .. });
        let adopted = Arc::new(load::adopt(&self.settings, ws, revision, commit_named)?);
        let mut state = lock(&entry.state);
        let pin = state.pins.entry(revision.to_owned()).or_insert(Pin {
            revision: adopted,
            count: 0,
        });
        pin.count += 1;
        Some(Arc::clone(&pin.revision))
    }

    /// Pins the active revision of `ws` for a new job, atomically with reading it, so a reload
    /// in between cannot delete the files the job is about to use.
    pub fn retain_active(&self, ws: &str) -> Option<Arc<Revision>> {
        let entry = self.entries.get(ws)?;
        let mut state = lock(&entry.state);
        let active = state.active.clone()?;
        state
            .pins
            .entry(active.revision.clone())
            .or_insert(Pin {
                revision: Arc::clone(&active),
                count: 0,
            })
            .count += 1;
        Some(active)
    }

    /// Drops one pin of `revision`; the last one deletes its snapshot unless it is active.
    /// Returns false when the revision was not retained. The deletion waits for a load in
    /// progress: that load may be about to activate this very revision from its snapshot.
    pub fn release(&self, ws: &str, revision: &str) -> bool {
        let Some(entry) = self.entries.get(ws) else {
            return false;
        };
        {
            let mut state = lock(&entry.state);
            let Some(pin) = state.pins.get_mut(revision) else {
                return false;
            };
            pin.count -= 1;
            if pin.count > 0 {
                return true;
            }
            state.pins.remove(revision);
        }
        let _serial = lock(&self.load_lock);
        let state = lock(&entry.state);
        if !state.is_kept(revision) {
            snapshot::remove(&self.settings.data_dir, ws, revision);
        }
        true
    }

    /// Deletes every snapshot and tarball on disk that is neither active nor retained, and
    /// leftover staging directories. Call after start-up has retained the revisions of
    /// non-terminal jobs.
    pub fn prune(&self) {
        let _serial = lock(&self.load_lock);
        for (name, entry) in &self.entries {
            let state = lock(&entry.state);
            snapshot::prune(&self.settings.data_dir, name, |rev| state.is_kept(rev));
        }
    }
}
