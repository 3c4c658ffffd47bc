//! Decoding `workspaces.<name>` (API §10.2): folder and git workspaces, git credentials, and
//! the zero-configuration default of API §10.3.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::read::{Cx, Section};
use super::types::{GitAuth, SshKey, WorkspaceConfig};

/// The folder default of `poll_interval_secs`.
pub const FOLDER_POLL_SECS: u64 = 30;
/// The git default of `poll_interval_secs`.
pub const GIT_POLL_SECS: u64 = 60;

#[derive(Clone, Copy)]
enum Type {
    Folder,
    Git,
}

#[derive(Clone, Copy)]
enum AuthType {
    SshKey,
    Token,
}

/// The configured workspaces, or the default `default` when none is configured: `./workspace`
/// when that directory exists under `cwd`, else the example workspace built into the binary.
pub fn workspaces(cx: &mut Cx, root: &Section, cwd: &Path) -> IndexMap<String, WorkspaceConfig> {
    let mut workspaces = IndexMap::new();
    let mut configured = false;
    if let Some(section) = cx.section(root, "workspaces") {
        configured = !section.entries.is_empty();
        for entry in section.entries {
            let path = section.path_of(&entry.key);
            if !valid_name(&entry.key) {
                let message = format!(
                    "workspace name '{}' must match [A-Za-z0-9][A-Za-z0-9_-]{{0,63}}",
                    entry.key
                );
                cx.error(&entry.key_origin, path.clone(), message);
            }
            let item = &entry.item;
            let Some(section) = (if item.is_null() {
                Some(Section::empty(path.clone(), entry.key_origin.clone()))
            } else {
                Section::of_entry(entry, path.clone())
            }) else {
                let message = format!("'{path}' must be a map, found {}", item.kind().describe());
                cx.error(&item.origin, path, message);
                continue;
            };
            if let Some(workspace) = workspace(cx, &section) {
                workspaces.insert(entry.key.clone(), workspace);
            }
        }
    }
    if !configured {
        let local = cwd.join("workspace");
        let default = if local.is_dir() {
            WorkspaceConfig::Folder {
                path: PathBuf::from("./workspace"),
                poll_interval_secs: FOLDER_POLL_SECS,
            }
        } else {
            WorkspaceConfig::Example
        };
        workspaces.insert("default".to_owned(), default);
    }
    workspaces
}

/// `[A-Za-z0-9][A-Za-z0-9_-]{0,63}`
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn workspace(cx: &mut Cx, section: &Section) -> Option<WorkspaceConfig> {
    // `type` may be left out for a folder, so that `STROEM__WORKSPACES__DEFAULT__PATH=/srv/ws`
    // alone defines a workspace (docs/deviations.md).
    let kind = cx
        .choice(
            section,
            "type",
            &[("folder", Type::Folder), ("git", Type::Git)],
        )
        .or_else(|| section.get("type").is_none().then_some(Type::Folder))?;
    match kind {
        Type::Folder => {
            reject(
                cx,
                section,
                &[
                    "url",
                    "ref",
                    "auth",
                    "webhook_secret",
                    "webhook_secret_file",
                ],
                "git workspaces",
            );
            let poll_interval_secs = cx
                .uint(section, "poll_interval_secs", 1)
                .unwrap_or(FOLDER_POLL_SECS);
            let Some(path) = cx.path(section, "path") else {
                cx.missing(section, "path", "for a folder workspace");
                return None;
            };
            Some(WorkspaceConfig::Folder {
                path,
                poll_interval_secs,
            })
        }
        Type::Git => {
            reject(cx, section, &["path"], "folder workspaces");
            let git_ref = cx
                .string(section, "ref")
                .unwrap_or_else(|| "main".to_owned());
            let poll_interval_secs = cx
                .uint(section, "poll_interval_secs", 1)
                .unwrap_or(GIT_POLL_SECS);
            let auth = cx
                .section(section, "auth")
                .and_then(|auth| git_auth(cx, &auth));
            let webhook_secret = cx.secret(section, "webhook_secret");
            let Some(url) = cx.string(section, "url") else {
                cx.missing(section, "url", "for a git workspace");
                return None;
            };
            Some(WorkspaceConfig::Git {
                url,
                git_ref,
                poll_interval_secs,
                auth,
                webhook_secret,
            })
        }
    }
}

/// Reports keys that belong to the other kind of workspace or credential.
/// `other` names what they belong to: `git workspaces`, `token auth`.
fn reject(cx: &mut Cx, section: &Section, keys: &[&str], other: &str) {
    for key in keys {
        if let Some(entry) = section.entry(key) {
            let path = section.path_of(key);
            let message = format!("'{path}' applies only to {other}");
            cx.error(&entry.key_origin, path, message);
        }
    }
}

fn git_auth(cx: &mut Cx, section: &Section) -> Option<GitAuth> {
    let options = [("ssh_key", AuthType::SshKey), ("token", AuthType::Token)];
    let Some(kind) = cx.choice(section, "type", &options) else {
        if section.get("type").is_none() {
            cx.missing(section, "type", "(ssh_key or token)");
        }
        return None;
    };
    let username = cx.string(section, "username");
    match kind {
        AuthType::SshKey => {
            reject(cx, section, &["token", "token_file"], "token auth");
            let keys = ["key_path", "key", "key_file"];
            let (spelling, _) = cx.one_of(section, &keys).or_else(|| {
                cx.missing(
                    section,
                    "key_path",
                    "(or 'key' or 'key_file') for ssh_key auth",
                );
                None
            })?;
            let key = if spelling == "key_path" {
                SshKey::Path(cx.path(section, "key_path")?)
            } else {
                SshKey::Inline(cx.secret(section, "key")?)
            };
            Some(GitAuth::SshKey { key, username })
        }
        AuthType::Token => {
            reject(
                cx,
                section,
                &["key_path", "key", "key_file"],
                "ssh_key auth",
            );
            let token = cx.required_secret(section, "token", "for token auth")?;
            let username = username.unwrap_or_else(|| "x-access-token".to_owned());
            Some(GitAuth::Token { token, username })
        }
    }
}
