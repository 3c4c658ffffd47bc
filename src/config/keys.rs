//! Every configuration key of API §10.2, as one table.
//!
//! This table is the single source of truth for which keys exist: the loader rejects keys that
//! are not in it (with a suggestion from their siblings), resolves `STROEM__` variable segments
//! against it, knows from it which keys are 🔒 secrets (and so also accept `<key>_file`) and which
//! belong to a later phase, and a tidy test checks every leaf of it against
//! `stroem.example.yaml`. Decoding into types ([`super::decode`]) reads the same names.

use crate::workflow::diagnostic::suggest;

use super::error::{Origin, Problem};
use super::tree::{Entry, Item};

/// One key: its name, what sits under it, and how it may be spelled.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub shape: Shape,
    /// 🔒: the value may instead come from a file named by `<name>_file`.
    pub secret: bool,
    /// Another accepted spelling (`workspace_dir` for `workspace_cache_dir`).
    pub alias: Option<&'static str>,
    /// `Some("P2")` for keys of a later phase: accepted, warned about, without effect.
    pub phase: Option<&'static str>,
}

#[derive(Debug)]
pub enum Shape {
    /// A scalar or a list; its type is checked by decoding.
    Leaf,
    /// A map with the fixed keys given.
    Section(&'static [Key]),
    /// A map of user-chosen names (workspaces, providers), each a map with the keys given.
    Named(&'static [Key]),
}

const fn leaf(name: &'static str) -> Key {
    Key {
        name,
        shape: Shape::Leaf,
        secret: false,
        alias: None,
        phase: None,
    }
}

const fn secret(name: &'static str) -> Key {
    Key {
        secret: true,
        ..leaf(name)
    }
}

const fn section(name: &'static str, keys: &'static [Key]) -> Key {
    Key {
        shape: Shape::Section(keys),
        ..leaf(name)
    }
}

const fn named(name: &'static str, keys: &'static [Key]) -> Key {
    Key {
        shape: Shape::Named(keys),
        ..leaf(name)
    }
}

const fn later(phase: &'static str, key: Key) -> Key {
    Key {
        phase: Some(phase),
        ..key
    }
}

/// The top level of `stroem.yaml`: the union of the server and worker keys.
pub const ROOT: &[Key] = &[
    // common
    leaf("data_dir"),
    leaf("log_level"),
    leaf("log_format"),
    secret("worker_token"),
    // server
    leaf("listen"),
    section(
        "db",
        &[
            secret("url"),
            leaf("max_connections"),
            leaf("busy_timeout_secs"),
        ],
    ),
    section(
        "http",
        &[
            leaf("header_timeout_secs"),
            leaf("body_timeout_secs"),
            leaf("request_timeout_secs"),
            leaf("allowed_origins"),
        ],
    ),
    section(
        "log_storage",
        &[
            leaf("local_dir"),
            later(
                "P3",
                section(
                    "s3",
                    &[
                        leaf("bucket"),
                        leaf("region"),
                        leaf("prefix"),
                        leaf("endpoint"),
                    ],
                ),
            ),
        ],
    ),
    named(
        "workspaces",
        &[
            leaf("type"),
            leaf("path"),
            leaf("url"),
            leaf("ref"),
            leaf("poll_interval_secs"),
            secret("webhook_secret"),
            section(
                "auth",
                &[
                    leaf("type"),
                    leaf("key_path"),
                    secret("key"),
                    secret("token"),
                    leaf("username"),
                ],
            ),
        ],
    ),
    leaf("embedded_worker"),
    section(
        "auth",
        &[
            secret("jwt_secret"),
            secret("refresh_secret"),
            leaf("base_url"),
            leaf("access_token_ttl"),
            leaf("refresh_token_ttl"),
            named(
                "providers",
                &[
                    leaf("provider_type"),
                    leaf("display_name"),
                    leaf("issuer_url"),
                    leaf("client_id"),
                    secret("client_secret"),
                    leaf("default_groups"),
                ],
            ),
            section("initial_user", &[leaf("email"), secret("password")]),
            // `rules` is a list of maps; their keys are checked where they are decoded
            // (`config::acl`), since the table describes maps, not lists.
            section("acl", &[leaf("default"), leaf("rules")]),
        ],
    ),
    section(
        "recovery",
        &[
            leaf("heartbeat_timeout_secs"),
            leaf("sweep_interval_secs"),
            leaf("unmatched_step_timeout_secs"),
        ],
    ),
    leaf("default_step_timeout"),
    leaf("default_job_timeout"),
    leaf("secret_file_dirs"),
    leaf("trusted_proxies"),
    section(
        "retention",
        &[
            leaf("job_days"),
            leaf("worker_hours"),
            leaf("interval_secs"),
        ],
    ),
    section("metrics", &[leaf("public"), secret("token")]),
    // worker
    leaf("server_url"),
    leaf("worker_name"),
    leaf("max_concurrent"),
    leaf("poll_interval_secs"),
    leaf("heartbeat_interval_secs"),
    leaf("kill_grace_secs"),
    // Tagged [P2] in API §10.2 but used by this build's workers (docs/deviations.md).
    leaf("shutdown_grace_secs"),
    Key {
        alias: Some("workspace_dir"),
        ..leaf("workspace_cache_dir")
    },
    leaf("workspace_cache_max_bytes"),
    leaf("workspace_cache_max_file_bytes"),
    leaf("capabilities"),
    leaf("tags"),
    // The image of script steps with `runner: docker` that name none.
    leaf("runner_image"),
    section("docker", &[leaf("host"), leaf("pull_policy")]),
    // `server_url` and `unschedulable_timeout_secs` are this build's additions
    // (docs/deviations.md).
    section(
        "kubernetes",
        &[
            leaf("namespace"),
            leaf("init_image"),
            leaf("server_url"),
            leaf("unschedulable_timeout_secs"),
        ],
    ),
];

impl Key {
    /// Every accepted spelling: the name, `<name>_file` for secrets, the alias.
    pub fn spellings(&self) -> Vec<String> {
        let mut spellings = vec![self.name.to_owned()];
        if self.secret {
            spellings.push(format!("{}_file", self.name));
        }
        spellings.extend(self.alias.map(str::to_owned));
        spellings
    }
}

/// The key among `keys` that `text` spells, and the canonical spelling it matched.
/// `loose` compares ASCII case-insensitively, for `STROEM__` variable segments.
pub(super) fn find<'k>(keys: &'k [Key], text: &str, loose: bool) -> Option<(&'k Key, String)> {
    keys.iter().find_map(|key| {
        key.spellings()
            .into_iter()
            .find(|spelling| {
                if loose {
                    spelling.eq_ignore_ascii_case(text)
                } else {
                    spelling == text
                }
            })
            .map(|spelling| (key, spelling))
    })
}

/// `unknown key 'a.b'; did you mean 'a.c'?`, suggesting among the siblings' spellings.
pub(super) fn unknown_message(keys: &[Key], prefix: &str, text: &str) -> String {
    let spellings: Vec<String> = keys.iter().flat_map(Key::spellings).collect();
    let mut message = format!("unknown key '{}'", join(prefix, text));
    if let Some(near) = suggest(text, spellings.iter().map(String::as_str)) {
        message.push_str(&format!("; did you mean '{}'?", join(prefix, near)));
    }
    message
}

/// `prefix.name`, or `name` at the top level.
pub(super) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Checks the merged tree against the table: every unknown key is a problem, every present
/// later-phase key a warning. Values of the wrong shape are left to decoding.
pub(super) fn check(
    root: &Item,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<(Origin, String)>,
) {
    if let Some(entries) = root.entries() {
        walk(ROOT, entries, "", problems, warnings);
    }
}

fn walk(
    keys: &[Key],
    entries: &[Entry],
    prefix: &str,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<(Origin, String)>,
) {
    for entry in entries {
        let path = join(prefix, &entry.key);
        let Some((key, _)) = find(keys, &entry.key, false) else {
            problems.push(Problem {
                origin: entry.key_origin.clone(),
                key: path,
                message: unknown_message(keys, prefix, &entry.key),
            });
            continue;
        };
        if let Some(phase) = key.phase
            && !entry.item.is_null()
        {
            warnings.push((
                entry.key_origin.clone(),
                format!("'{path}' ({phase}) is not supported in this version and has no effect"),
            ));
        }
        match (&key.shape, entry.item.entries()) {
            (Shape::Section(sub), Some(children)) => walk(sub, children, &path, problems, warnings),
            (Shape::Named(sub), Some(children)) => {
                for child in children {
                    if let Some(grandchildren) = child.item.entries() {
                        let child_path = join(&path, &child.key);
                        walk(sub, grandchildren, &child_path, problems, warnings);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Every leaf key as a dotted path, `*` standing for a user-chosen name
/// (`workspaces.*.auth.token`), each with whether it is a secret.
pub fn leaf_paths() -> Vec<(String, bool)> {
    fn collect(keys: &[Key], prefix: &str, out: &mut Vec<(String, bool)>) {
        for key in keys {
            let path = join(prefix, key.name);
            match &key.shape {
                Shape::Leaf => out.push((path, key.secret)),
                Shape::Section(sub) => collect(sub, &path, out),
                Shape::Named(sub) => collect(sub, &join(&path, "*"), out),
            }
        }
    }
    let mut out = Vec::new();
    collect(ROOT, "", &mut out);
    out
}
