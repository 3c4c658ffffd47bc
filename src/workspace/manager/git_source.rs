//! Polling a git source (see the module documentation of [`super`]): fetch under the
//! workspace's own lock, then load the commit only when it is neither the active revision nor
//! one already refused. A failed fetch becomes the workspace's failure, with one `git-fetch`
//! diagnostic whose message names the URL (without userinfo) and the ref.

use chrono::{DateTime, Utc};

use super::load::{Fill, source_error};
use super::{Entry, Failure, ReloadOutcome, ReloadResult, Workspaces, lock};
use crate::workspace::git::{self, Remote};

impl Workspaces {
    /// Fetches `remote` and loads its commit when that is new. `forced` (start-up, `POST
    /// …/refresh`) also re-validates a commit that was refused before (a secret it lacked may
    /// be there now) and reports an unchanged commit; a poll reports only changes.
    pub(super) fn refresh_git(
        &self,
        name: &str,
        entry: &Entry,
        remote: &Remote,
        forced: bool,
        now: DateTime<Utc>,
    ) -> Option<ReloadOutcome> {
        let _fetching = lock(&entry.fetching);
        let mirror = entry.root.as_path();
        let commit = match git::fetch(mirror, remote) {
            Ok(commit) => commit,
            Err(error) => return Some(self.fetch_failed(name, entry, error, now)),
        };
        {
            let mut state = lock(&entry.state);
            let active = state.active.as_ref().map(|a| a.revision.clone());
            if active.as_deref() == Some(commit.as_str()) {
                // Back at the active commit (a fetch that failed before now works, or a refused
                // commit was reverted): the workspace is healthy again.
                let was_failing = state.failure.take().is_some();
                return (forced || was_failing).then(|| ReloadOutcome {
                    workspace: name.to_owned(),
                    result: ReloadResult::Unchanged { revision: commit },
                });
            }
            let refused = state.failure.as_ref().and_then(|f| f.revision.as_deref());
            if !forced && refused == Some(commit.as_str()) {
                return None;
            }
        }
        let outcome = self.reload_with(
            name,
            entry,
            Fill::Git {
                mirror,
                commit: &commit,
            },
            None,
            now,
        );
        if let Some(ReloadOutcome {
            result: ReloadResult::Activated { revision, .. },
            ..
        }) = &outcome
            && let Err(error) = git::mark_good(mirror, revision)
        {
            tracing::warn!(workspace = name, %error, "cannot record the good commit in the mirror");
        }
        outcome
    }

    /// Records a failed fetch as the workspace's failure. Nothing loaded yet (a start-up
    /// without the remote): the last good commit the mirror keeps is loaded first, so the
    /// server serves what it served before it stopped.
    fn fetch_failed(
        &self,
        name: &str,
        entry: &Entry,
        error: git::GitError,
        now: DateTime<Utc>,
    ) -> ReloadOutcome {
        let never_loaded = lock(&entry.state).active.is_none();
        if never_loaded && let Some(commit) = git::last_good(&entry.root) {
            let fill = Fill::Git {
                mirror: &entry.root,
                commit: &commit,
            };
            if let Some(outcome) = self.reload_with(name, entry, fill, None, now) {
                super::log_outcome(&outcome);
            }
        }
        let errors = vec![source_error("git-fetch", error.0)];
        lock(&entry.state).failure = Some(Failure {
            revision: None,
            errors: errors.clone(),
        });
        ReloadOutcome {
            workspace: name.to_owned(),
            result: ReloadResult::Rejected {
                revision: None,
                errors,
            },
        }
    }
}
