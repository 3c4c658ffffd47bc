//! One load of a workspace: copy the source into a staging directory, scan it (WF §1), decode
//! and validate it (WF §18), resolve its secrets (WF §16.1), check webhook names against the
//! other workspaces (WF §15.2) and hash it. Every problem becomes a diagnostic; the caller
//! activates the result only when none is an error.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::snapshot;
use super::{Revision, Settings};
use crate::runner::workcopy::copy_tree;
use crate::workflow::diagnostic::{self, Diagnostic, Location};
use crate::workflow::model::{TriggerKind, WorkspaceDef};
use crate::workflow::source::{SourceMap, join};
use crate::workflow::{self, Loaded};
use crate::workspace::secrets::{self, SecretError};
use crate::workspace::{folder, git};

/// Where a load's files come from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fill<'a> {
    /// A directory copied as it is (a folder, the materialised example); the revision is the
    /// content hash.
    Copy(&'a Path),
    /// A commit's tree written from a git mirror; the revision is the commit id.
    Git { mirror: &'a Path, commit: &'a str },
}

impl Fill<'_> {
    /// What an error message calls the source.
    fn describe(&self) -> String {
        match self {
            Fill::Copy(root) => format!("the workspace at '{}'", root.display()),
            Fill::Git { commit, .. } => format!("commit {commit}"),
        }
    }
}

/// The result of one load.
#[derive(Debug)]
pub(super) enum Attempt {
    /// Valid; its snapshot is in place under `<data_dir>/revisions/<ws>/<rev>/`.
    Loaded(Box<Revision>),
    Rejected(Rejection),
}

/// A load with at least one error.
#[derive(Debug)]
pub(super) struct Rejection {
    /// `None` when the files could not even be read.
    pub revision: Option<String>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// Loads the files `fill` names as a new revision of `ws`. `taken_webhooks` maps the webhook
/// names other workspaces serve to those workspaces.
pub(super) fn attempt(
    settings: &Settings,
    ws: &str,
    fill: Fill<'_>,
    taken_webhooks: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Attempt {
    let staging = match snapshot::staging_dir(&settings.data_dir, ws) {
        Ok(dir) => dir,
        Err(error) => return unreadable(&fill, &error.to_string()),
    };
    let filled = match fill {
        Fill::Copy(root) => copy_tree(root, staging.path()).map_err(|e| e.to_string()),
        Fill::Git { mirror, commit } => {
            git::export(mirror, commit, staging.path()).map_err(|e| e.to_string())
        }
    };
    if let Err(error) = filled {
        return unreadable(&fill, &error);
    }
    // Version-control metadata is not workspace content (folder scanning and tarballs skip
    // it too); dropping it keeps snapshots small.
    let git = staging.path().join(".git");
    if git.is_dir()
        && let Err(error) = fs::remove_dir_all(&git)
    {
        return unreadable(&fill, &error.to_string());
    }
    let commit = match fill {
        Fill::Git { commit, .. } => Some(commit),
        Fill::Copy(_) => None,
    };
    let checked = match check(settings, staging.path(), taken_webhooks, commit) {
        Ok(checked) => checked,
        Err(rejection) => return Attempt::Rejected(rejection),
    };
    let root = match snapshot::install(&settings.data_dir, ws, &checked.revision, staging) {
        Ok(root) => root,
        Err(error) => return unreadable(&fill, &error.to_string()),
    };
    Attempt::Loaded(Box::new(Revision {
        workspace: ws.to_owned(),
        revision: checked.revision,
        mask: super::masks::revision_mask(&checked.loaded.def, &checked.secrets),
        def: checked.loaded.def,
        sources: checked.loaded.sources,
        secrets: checked.secrets,
        missing_secrets: checked.missing_secrets,
        root,
        loaded_at: now,
        diagnostics: checked.loaded.diagnostics,
    }))
}

/// Re-adopts a revision from its snapshot on disk (a job's pinned revision after a restart).
/// `None` when the snapshot is missing, no longer loads cleanly, or (for a content-hash
/// revision) hashes differently. A git revision is named by its commit, which the snapshot's
/// files cannot be checked against without the commit itself; the snapshot directory is only
/// ever written whole (renamed into place), so its name is trusted.
pub(super) fn adopt(
    settings: &Settings,
    ws: &str,
    revision: &str,
    commit_named: bool,
) -> Option<Revision> {
    // The revision names a directory: anything but lowercase hex could escape it (API §7.7).
    if revision.is_empty() || !revision.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return None;
    }
    let root = snapshot::revision_dir(&settings.data_dir, ws, revision);
    if !root.is_dir() {
        return None;
    }
    // Webhook clashes decide which workspace may serve a hook, not whether a running job may
    // finish on its files: no cross-workspace check here.
    let commit = commit_named.then_some(revision);
    let checked = check(settings, &root, &HashMap::new(), commit).ok()?;
    if checked.revision != revision {
        return None;
    }
    let loaded_at = fs::metadata(&root)
        .and_then(|meta| meta.modified())
        .map_or_else(|_| Utc::now(), DateTime::<Utc>::from);
    Some(Revision {
        workspace: ws.to_owned(),
        revision: checked.revision,
        mask: super::masks::revision_mask(&checked.loaded.def, &checked.secrets),
        def: checked.loaded.def,
        sources: checked.loaded.sources,
        secrets: checked.secrets,
        missing_secrets: checked.missing_secrets,
        root,
        loaded_at,
        diagnostics: checked.loaded.diagnostics,
    })
}

struct Checked {
    revision: String,
    loaded: Loaded,
    secrets: Value,
    missing_secrets: Vec<SecretError>,
}

/// Scans, validates, resolves and hashes the tree at `root`; a git source's revision is its
/// `commit` instead of the hash.
fn check(
    settings: &Settings,
    root: &Path,
    taken_webhooks: &HashMap<String, String>,
    commit: Option<&str>,
) -> Result<Checked, Rejection> {
    let files = folder::scan(root)
        .map_err(|error| rejected(commit.map(str::to_owned), error.diagnostics()))?;
    let revision = match commit {
        Some(commit) => commit.to_owned(),
        None => {
            folder::revision(root, &files).map_err(|error| rejected(None, error.diagnostics()))?
        }
    };
    let mut loaded = workflow::load(&files);
    let (secrets, missing_secrets) = match secrets::resolve_available(
        &loaded.def.secrets,
        &settings.env,
        &settings.secret_file_dirs,
        &settings.refused_files,
    ) {
        Ok(secrets::Resolved {
            value: resolved,
            missing,
        }) => {
            for name in secrets::unmaskable(&resolved) {
                let path = secret_path(&name);
                loaded.diagnostics.push(Diagnostic::warning(
                    "short-secret",
                    format!(
                        "secret '{name}' is shorter than {} characters and will not be masked",
                        crate::mask::MIN_LEN
                    ),
                    &loaded.sources.key_or_value(&path),
                    &path,
                ));
            }
            // WF §16.1: the workspace serves; only jobs that use these are refused.
            for error in &missing {
                let path = secret_path(&error.name);
                loaded.diagnostics.push(Diagnostic::warning(
                    "secret-unresolved",
                    format!("{error}; jobs that use it are refused until it is set"),
                    &loaded.sources.key_or_value(&path),
                    &path,
                ));
            }
            (resolved, missing)
        }
        Err(errors) => {
            let unresolved = errors.iter().map(|e| unresolved(&loaded.sources, e));
            loaded.diagnostics.extend(unresolved.collect::<Vec<_>>());
            (Value::Null, Vec::new())
        }
    };
    loaded.diagnostics.extend(webhook_clashes(
        &loaded.def,
        &loaded.sources,
        taken_webhooks,
    ));
    diagnostic::sort(&mut loaded.diagnostics);
    if loaded.has_errors() {
        let (errors, warnings) = loaded
            .diagnostics
            .into_iter()
            .partition(Diagnostic::is_error);
        return Err(Rejection {
            revision: Some(revision),
            errors,
            warnings,
        });
    }
    Ok(Checked {
        revision,
        loaded,
        secrets,
        missing_secrets,
    })
}

/// `aws.key_id` → the field path `secrets.aws.key_id`.
fn secret_path(name: &str) -> String {
    name.split('.')
        .fold("secrets".to_owned(), |path, key| join(&path, key))
}

fn unresolved(sources: &SourceMap, error: &SecretError) -> Diagnostic {
    let path = secret_path(&error.name);
    Diagnostic::error(
        "secret-unresolved",
        error.to_string(),
        &sources.key_or_value(&path),
        &path,
    )
}

/// The webhook names a workspace serves (`/hooks/<name>`).
pub(super) fn webhook_names(def: &WorkspaceDef) -> impl Iterator<Item = String> + '_ {
    def.triggers
        .values()
        .filter_map(|trigger| match &trigger.kind {
            TriggerKind::Webhook(hook) => Some(hook.name.clone()),
            TriggerKind::Scheduler(_) => None,
        })
}

/// Webhook names another workspace already serves: an error for this one (WF §15.2).
fn webhook_clashes(
    def: &WorkspaceDef,
    sources: &SourceMap,
    taken: &HashMap<String, String>,
) -> Vec<Diagnostic> {
    let mut clashes = Vec::new();
    for (name, trigger) in &def.triggers {
        let TriggerKind::Webhook(hook) = &trigger.kind else {
            continue;
        };
        let Some(owner) = taken.get(&hook.name) else {
            continue;
        };
        let trigger_path = join("triggers", name);
        let name_path = join(&trigger_path, "name");
        let path = if sources.key(&name_path).is_some() {
            name_path
        } else {
            trigger_path
        };
        clashes.push(Diagnostic::error(
            "duplicate-webhook",
            format!(
                "webhook name '{}' is already served by workspace '{owner}'",
                hook.name
            ),
            &sources.key_or_value(&path),
            &path,
        ));
    }
    clashes
}

fn rejected(revision: Option<String>, errors: Vec<Diagnostic>) -> Rejection {
    Rejection {
        revision,
        errors,
        warnings: Vec::new(),
    }
}

/// A source that cannot be copied at all: one diagnostic at the workspace root.
fn unreadable(fill: &Fill<'_>, reason: &str) -> Attempt {
    let message = format!("cannot read {}: {reason}", fill.describe());
    let revision = match fill {
        Fill::Git { commit, .. } => Some((*commit).to_owned()),
        Fill::Copy(_) => None,
    };
    Attempt::Rejected(rejected(
        revision,
        vec![source_error("unreadable-file", message)],
    ))
}

/// A problem with the source as a whole, located at the workspace root.
pub(super) fn source_error(code: &str, message: String) -> Diagnostic {
    let at = Location {
        file: String::new(),
        line: 1,
        column: 1,
    };
    Diagnostic::error(code, message, &at, "")
}
