//! The server's workspace registry (DESIGN §4, API §2.1, §7.7): named workspaces, each read
//! from a source, loaded into immutable [`Revision`]s that jobs pin, re-scanned on an interval.
//!
//! Loading a source copies its files into a staging directory under
//! `<data_dir>/revisions/<ws>/`, scans, validates, resolves secrets and hashes **that copy**, so
//! the revision's hash, its definition and its files on disk always describe the same bytes
//! even while someone edits the folder. A revision with any error is never activated: the last
//! good one keeps serving and the workspace turns `stale` (or `error` when nothing ever
//! loaded). A good one is renamed to `<data_dir>/revisions/<ws>/<rev>/` and becomes active.
//!
//! *Pinning.* A job keeps the files of the revision it was created on: the server calls
//! [`Workspaces::retain`] when it creates a job and [`Workspaces::release`] when the job ends.
//! A revision's snapshot (and its cached tarballs) is deleted once it is neither active nor
//! retained. The count is explicit rather than an `Arc` count because pins must follow jobs in
//! the database across restarts: after a restart the server retains the revisions of its
//! non-terminal jobs (re-adopted from their snapshots on disk), then calls
//! [`Workspaces::prune`] to drop every snapshot no job needs. An `Arc<Revision>` held by a
//! reader keeps the definition in memory, not the files.
//!
//! All loads are serialised by one lock, so the cross-workspace rule that a webhook name is
//! unique across the server (WF §15.2) sees a consistent set of active revisions.
//!
//! *Git sources* ([`crate::workspace::git`]) fetch before they load, outside that lock, under
//! a lock of their own workspace (a slow remote holds up nobody else). Their revision is the
//! commit id rather than a content hash; a commit is loaded once — the next poll that finds the
//! same commit active or already refused does nothing — and a failed fetch is reported like a
//! refused revision (`stale`, or `error` before anything loaded) while the last good one keeps
//! serving. A restart that cannot reach the remote serves the last good commit kept in the
//! mirror.

mod fingerprint;
mod git_source;
mod load;
mod masks;
mod pins;
mod poller;
mod schedule;
mod snapshot;
mod tarball;
mod views;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::workflow::diagnostic::Diagnostic;
use crate::workflow::model::WorkspaceDef;
use crate::workflow::source::SourceMap;
use crate::workspace::git;
use fingerprint::Fingerprint;
use load::{Attempt, Fill, Rejection};

pub use masks::{action_of, revision_mask};
pub use poller::log_outcome;
pub use schedule::{DueTicks, due_ticks, next_fire_times, previous_fire_time};
pub use tarball::{Encoding, TarballError};
pub use views::{
    SourceView, StepView, TaskDetail, TaskSummary, TriggerView, WebhookView, WorkspaceStatus,
    WorkspaceView, api_time, task_detail, task_summaries, trigger_views,
};

/// Folder sources are re-scanned this often unless configured (API §10.2).
pub const DEFAULT_FOLDER_POLL: Duration = Duration::from_secs(30);

/// How often [`Workspaces::run_poller`] asks whether some workspace is due for a re-scan.
const POLLER_TICK: Duration = Duration::from_secs(1);

/// Git sources are fetched this often unless configured (API §10.2).
pub const DEFAULT_GIT_POLL: Duration = Duration::from_secs(60);

/// Where a workspace's files come from (API §10.2). Everything downstream of loading only sees
/// a staging directory filled from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory on the server, re-scanned every `poll_interval`.
    Folder {
        path: PathBuf,
        poll_interval: Duration,
    },
    /// One ref of a git repository, fetched every `poll_interval`.
    Git {
        remote: git::Remote,
        poll_interval: Duration,
    },
    /// The example built into the binary (API §10.3); read-only, never re-scanned.
    Example,
}

impl Source {
    fn poll_interval(&self) -> Option<Duration> {
        match self {
            Source::Folder { poll_interval, .. } | Source::Git { poll_interval, .. } => {
                Some(*poll_interval)
            }
            Source::Example => None,
        }
    }
}

/// The zero-configuration workspace `default` (API §10.3): `./workspace` when that directory
/// exists, otherwise the built-in example.
pub fn default_source(cwd: &Path) -> Source {
    let path = cwd.join("workspace");
    if path.is_dir() {
        Source::Folder {
            path,
            poll_interval: DEFAULT_FOLDER_POLL,
        }
    } else {
        Source::Example
    }
}

/// What loading needs from the server's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Snapshots go to `<data_dir>/revisions`, tarballs to `<data_dir>/tarballs`, the example
    /// to `<data_dir>/example/<ws>`.
    pub data_dir: PathBuf,
    /// The server environment copied at start-up, for secrets' `env` (WF §16.1).
    pub env: BTreeMap<String, String>,
    /// Where `file()` may read secrets.
    pub secret_file_dirs: Vec<PathBuf>,
    /// Files the server configuration reads through `*_file` keys; `file()` refuses them.
    pub refused_files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(
        "invalid workspace name '{0}': use 1–64 letters, digits, '_' or '-', starting with a letter or digit"
    )]
    InvalidName(String),
    #[error("workspace '{0}' is configured twice")]
    Duplicate(String),
    #[error("workspace '{0}' was refreshed less than 5 seconds ago")]
    TooSoon(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// One loaded, valid revision of a workspace. Immutable: a reload makes a new one.
#[derive(Debug)]
pub struct Revision {
    pub workspace: String,
    /// The content hash, or a git source's commit id (lowercase hex).
    pub revision: String,
    pub def: WorkspaceDef,
    pub sources: SourceMap,
    /// Resolved secrets: a nested JSON object of strings.
    pub secrets: Value,
    /// Secrets whose variable or file is missing (WF §16.1): a warning of the revision, and
    /// the jobs that use one are refused at creation.
    pub missing_secrets: Vec<crate::workspace::secrets::SecretError>,
    /// What every job of this revision and its views mask (WF §16.3): the resolved secrets and
    /// the literal values of `secret: true` fields ([`masks`]).
    pub mask: crate::mask::Masker,
    /// The snapshot of the workspace's files at this revision.
    pub root: PathBuf,
    pub loaded_at: DateTime<Utc>,
    /// Warnings of this revision (a revision with errors is never built).
    pub diagnostics: Vec<Diagnostic>,
}

/// What one reload did, for the server log.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadOutcome {
    pub workspace: String,
    pub result: ReloadResult,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReloadResult {
    /// A new revision serves now.
    Activated {
        revision: String,
        previous: Option<String>,
    },
    /// The files changed on disk but hash to the active revision (touched, or reverted).
    Unchanged { revision: String },
    /// The new files have errors; the previous revision (if any) keeps serving.
    Rejected {
        revision: Option<String>,
        errors: Vec<Diagnostic>,
    },
}

/// The registry. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Workspaces {
    settings: Settings,
    entries: BTreeMap<String, Entry>,
    /// Serialises loads (see the module documentation).
    load_lock: Mutex<()>,
}

#[derive(Debug)]
struct Entry {
    source: Source,
    /// The directory loads copy from: the folder, or the materialised example; a git
    /// source's mirror.
    root: PathBuf,
    state: Mutex<State>,
    /// Held by a git source's fetch and load: one at a time per mirror.
    fetching: Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    active: Option<Arc<Revision>>,
    /// The newest load's problems; `failure.is_some()` with an active revision means `stale`.
    failure: Option<Failure>,
    /// Warnings of the newest load, good or not.
    warnings: Vec<Diagnostic>,
    fingerprint: Option<Fingerprint>,
    checked_at: Option<DateTime<Utc>>,
    /// The last `POST …/refresh` (API §3.2: one per 5 s).
    refreshed_at: Option<DateTime<Utc>>,
    /// Revisions retained by jobs, with their counts.
    pins: HashMap<String, Pin>,
}

#[derive(Debug, Clone)]
struct Failure {
    revision: Option<String>,
    errors: Vec<Diagnostic>,
}

#[derive(Debug)]
struct Pin {
    revision: Arc<Revision>,
    count: usize,
}

impl State {
    fn is_kept(&self, revision: &str) -> bool {
        self.active.as_ref().is_some_and(|a| a.revision == revision)
            || self.pins.contains_key(revision)
    }
}

/// Workspace names appear in paths and URLs (API §10.2).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind, still consistent enough to
    // serve; refusing every later request would be worse.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Workspaces {
    /// Builds the registry and loads every workspace once, in name order (WF §15.2). A
    /// workspace that fails to load is kept with status `error`; only I/O problems with the
    /// data dir itself fail here.
    pub fn new(
        settings: Settings,
        sources: impl IntoIterator<Item = (String, Source)>,
        now: DateTime<Utc>,
    ) -> Result<Workspaces, ManagerError> {
        let mut entries = BTreeMap::new();
        for (name, source) in sources {
            if !valid_name(&name) {
                return Err(ManagerError::InvalidName(name));
            }
            let root = match &source {
                Source::Folder { path, .. } => path.clone(),
                Source::Git { .. } => git::mirror_dir(&settings.data_dir, &name),
                Source::Example => {
                    let dir = settings.data_dir.join("example").join(&name);
                    super::example::materialise(&dir).map_err(|source| ManagerError::Io {
                        context: format!("cannot write the example workspace to {}", dir.display()),
                        source,
                    })?;
                    dir
                }
            };
            snapshot::prepare_dirs(&settings.data_dir, &name)?;
            let entry = Entry {
                source,
                root,
                state: Mutex::new(State::default()),
                fetching: Mutex::new(()),
            };
            if entries.insert(name.clone(), entry).is_some() {
                return Err(ManagerError::Duplicate(name));
            }
        }
        let workspaces = Workspaces {
            settings,
            entries,
            load_lock: Mutex::new(()),
        };
        for name in workspaces.entries.keys() {
            workspaces.reload(name, now);
        }
        Ok(workspaces)
    }

    /// Names of every configured workspace, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// The active revision of `ws`, if it ever loaded.
    pub fn get(&self, ws: &str) -> Option<Arc<Revision>> {
        let entry = self.entries.get(ws)?;
        lock(&entry.state).active.clone()
    }

    /// A revision that is active or retained by a job.
    pub fn revision(&self, ws: &str, revision: &str) -> Option<Arc<Revision>> {
        let entry = self.entries.get(ws)?;
        let state = lock(&entry.state);
        match &state.active {
            Some(active) if active.revision == revision => Some(Arc::clone(active)),
            _ => state.pins.get(revision).map(|p| Arc::clone(&p.revision)),
        }
    }

    /// Re-scans every workspace whose poll interval has elapsed and reloads those whose files
    /// changed (a fingerprint of paths, sizes and times decides before any content is read; a
    /// git source compares commit ids).
    pub fn tick(&self, now: DateTime<Utc>) -> Vec<ReloadOutcome> {
        self.due(now, &HashSet::new())
            .iter()
            .filter_map(|name| self.poll(name, now))
            .collect()
    }

    /// The workspaces whose poll interval has elapsed at `now`, marked as checked. Those in
    /// `polling` (a poll still running) are left alone, due or not, so a request to poll soon
    /// ([`poll_soon`](Self::poll_soon)) made during a poll is answered by the next one.
    pub fn due(&self, now: DateTime<Utc>, polling: &HashSet<String>) -> Vec<String> {
        let mut due = Vec::new();
        for (name, entry) in &self.entries {
            let Some(interval) = entry.source.poll_interval() else {
                continue;
            };
            if polling.contains(name) {
                continue;
            }
            let mut state = lock(&entry.state);
            let elapsed = state.checked_at.is_none_or(|at| {
                now.signed_duration_since(at)
                    .to_std()
                    .is_ok_and(|elapsed| elapsed >= interval)
            });
            if elapsed {
                state.checked_at = Some(now);
                due.push(name.clone());
            }
        }
        due
    }

    /// One poll of `ws`: reloads it when its source changed. `None` when nothing happened.
    pub fn poll(&self, ws: &str, now: DateTime<Utc>) -> Option<ReloadOutcome> {
        let entry = self.entries.get(ws)?;
        if let Source::Git { remote, .. } = &entry.source {
            return self.refresh_git(ws, entry, remote, false, now);
        }
        // Walked without the state lock: readers of the active revision never wait on disk.
        let fingerprint = Fingerprint::of(&entry.root);
        if fingerprint.is_some() && lock(&entry.state).fingerprint == fingerprint {
            return None;
        }
        self.reload_with(ws, entry, Fill::Copy(&entry.root), fingerprint, now)
    }

    /// The push webhook secret of git workspace `ws`; `None` when it has none (or is no git
    /// workspace), which disables its push hook.
    pub fn push_secret(&self, ws: &str) -> Option<String> {
        match &self.entries.get(ws)?.source {
            Source::Git { remote, .. } => remote.webhook_secret().map(str::to_owned),
            Source::Folder { .. } | Source::Example => None,
        }
    }

    /// Asks the poller to look at `ws` at its next round (a push webhook). False for an
    /// unknown workspace.
    pub fn poll_soon(&self, ws: &str) -> bool {
        let Some(entry) = self.entries.get(ws) else {
            return false;
        };
        lock(&entry.state).checked_at = None;
        true
    }

    /// Reloads `ws` now, whatever its fingerprint says (start-up); a git source fetches first.
    pub fn reload(&self, ws: &str, now: DateTime<Utc>) -> Option<ReloadOutcome> {
        let entry = self.entries.get(ws)?;
        lock(&entry.state).checked_at = Some(now);
        if let Source::Git { remote, .. } = &entry.source {
            return self.refresh_git(ws, entry, remote, true, now);
        }
        let fingerprint = Fingerprint::of(&entry.root);
        self.reload_with(ws, entry, Fill::Copy(&entry.root), fingerprint, now)
    }

    /// `POST /api/workspaces/{ws}/refresh` (API §3.2): [`reload`](Self::reload), at most once
    /// per 5 seconds per workspace. `Ok(None)` for an unknown workspace.
    pub fn refresh(
        &self,
        ws: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ReloadOutcome>, ManagerError> {
        let Some(entry) = self.entries.get(ws) else {
            return Ok(None);
        };
        {
            let mut state = lock(&entry.state);
            let recent = state
                .refreshed_at
                .is_some_and(|at| now.signed_duration_since(at) < chrono::TimeDelta::seconds(5));
            if recent {
                return Err(ManagerError::TooSoon(ws.to_owned()));
            }
            state.refreshed_at = Some(now);
        }
        Ok(self.reload(ws, now))
    }

    fn reload_with(
        &self,
        name: &str,
        entry: &Entry,
        fill: Fill<'_>,
        fingerprint: Option<Fingerprint>,
        now: DateTime<Utc>,
    ) -> Option<ReloadOutcome> {
        let _serial = lock(&self.load_lock);
        let taken = self.webhook_names_except(name);
        let attempt = load::attempt(&self.settings, name, fill, &taken, now);
        let mut state = lock(&entry.state);
        state.fingerprint = fingerprint;
        let result = match attempt {
            Attempt::Rejected(Rejection {
                revision,
                errors,
                warnings,
            }) => {
                state.warnings = warnings;
                state.failure = Some(Failure {
                    revision: revision.clone(),
                    errors: errors.clone(),
                });
                ReloadResult::Rejected { revision, errors }
            }
            Attempt::Loaded(revision) => {
                state.failure = None;
                state.warnings = revision.diagnostics.clone();
                let hash = revision.revision.clone();
                let previous = state.active.as_ref().map(|a| a.revision.clone());
                if previous.as_deref() == Some(hash.as_str()) {
                    ReloadResult::Unchanged { revision: hash }
                } else {
                    state.active = Some(Arc::from(revision));
                    if let Some(old) = &previous
                        && !state.is_kept(old)
                    {
                        snapshot::remove(&self.settings.data_dir, name, old);
                    }
                    ReloadResult::Activated {
                        revision: hash,
                        previous,
                    }
                }
            }
        };
        Some(ReloadOutcome {
            workspace: name.to_owned(),
            result,
        })
    }

    /// Webhook names served by the other workspaces' active revisions, with their owner.
    fn webhook_names_except(&self, ws: &str) -> HashMap<String, String> {
        let mut taken = HashMap::new();
        for (name, entry) in &self.entries {
            if name == ws {
                continue;
            }
            if let Some(active) = &lock(&entry.state).active {
                for hook in load::webhook_names(&active.def) {
                    taken.insert(hook, name.clone());
                }
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests;
