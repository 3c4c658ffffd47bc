//! Configuration (API §10): `stroem.yaml`, `STROEM__` variables and flags, loaded once into
//! types at start-up.
//!
//! Layers, lowest first: built-in defaults < the file < `STROEM__…` variables < flags
//! ([`Config::apply_serve_flags`], [`Config::apply_work_flags`]). The file is found from
//! `--config`, else `$STROEM_CONFIG`, else `./stroem.yaml` when present; without one every key
//! takes its default. The key table in [`keys`] is the one list of keys: unknown keys in the file
//! or the environment stop start-up with their location and a suggestion, and every problem is
//! reported at once. 🔒 values are [`Secret`]s (printed `***`) and may be read from a file
//! through `<key>_file`.
//!
//! Nothing here reads the process environment: the CLI captures it once and passes it in
//! [`ConfigSource`]. The only I/O is reading the configuration file, the `*_file` secrets,
//! checking whether `./workspace` exists (API §10.3) and, when `worker_name` is unset and the
//! captured environment has no `HOSTNAME`, reading `/etc/hostname`.

mod acl;
mod auth;
mod decode;
mod env;
mod error;
mod flags;
pub mod keys;
mod read;
mod tree;
mod types;
mod worker;
mod workspaces;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use auth::{GROUP_RULE, valid_group};
pub use decode::{DEFAULT_DATA_DIR, MIN_WORKER_TOKEN_CHARS};
pub use error::{ConfigError, Origin, Problem};
pub use types::*;
pub use worker::{
    DEFAULT_CACHE_MAX_BYTES, DEFAULT_CACHE_MAX_FILE_BYTES, DEFAULT_RUNNER_IMAGE, DEFAULT_SERVER_URL,
};
pub use workspaces::valid_name as valid_workspace_name;

use read::{Cx, Section};
use tree::Item;

/// What the CLI hands to [`Config::load`]: everything the loader may know about the process.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config`/`-c`, if given.
    pub config: Option<PathBuf>,
    /// The environment, captured once at start-up.
    pub env: BTreeMap<String, String>,
    /// The working directory: base of `./stroem.yaml`, `./workspace` and relative file paths.
    pub cwd: PathBuf,
}

/// The variable naming the configuration file when `--config` is not given.
pub const CONFIG_VAR: &str = "STROEM_CONFIG";
/// The file read from the working directory when neither `--config` nor `STROEM_CONFIG` is set.
pub const DEFAULT_FILE: &str = "stroem.yaml";

impl Config {
    /// Loads defaults, the configuration file and the `STROEM__` variables of `source`.
    /// Warnings (weak worker token, keys of later phases) are in [`Config::warnings`].
    pub fn load(source: ConfigSource) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut root = match locate(&source) {
            Some((label, path)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::ReadFile { path, source })?;
                tree::parse_file(&label, &text, &mut problems)
            }
            None => Item::empty_map(Origin::Default),
        };
        env::overlay(&mut root, &source.env, &mut problems);
        let mut warnings = Vec::new();
        keys::check(&root, &mut problems, &mut warnings);

        let mut cx = Cx {
            problems,
            warnings,
            secret_files: Vec::new(),
            cwd: &source.cwd,
        };
        let section = Section::of(&root, String::new())
            .unwrap_or_else(|| Section::empty(String::new(), root.origin.clone()));
        let host_name = || host_name(&source.env);
        let mut config = decode::decode(&mut cx, &section, &source.cwd, &host_name);
        if !cx.problems.is_empty() {
            let mut problems = cx.problems;
            problems.sort_by_key(|problem| order(&problem.origin));
            return Err(ConfigError::Invalid { problems });
        }
        let mut warnings = cx.warnings;
        warnings.sort_by_key(|(origin, _)| order(origin));
        config.warnings = warnings
            .into_iter()
            .map(|(origin, message)| format!("{origin}: {message}"))
            .collect();
        config.secret_files = cx.secret_files;
        Ok(config)
    }
}

/// The configuration file to read, as (name shown in messages, path to open).
fn locate(source: &ConfigSource) -> Option<(String, PathBuf)> {
    let named = source.config.clone().or_else(|| {
        source
            .env
            .get(CONFIG_VAR)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    });
    if let Some(path) = named {
        return Some((path.display().to_string(), source.cwd.join(path)));
    }
    let local = source.cwd.join(DEFAULT_FILE);
    local.is_file().then(|| (DEFAULT_FILE.to_owned(), local))
}

/// The default `worker_name`: `$HOSTNAME` from the captured environment, else `/etc/hostname`,
/// else `stroem-worker`.
fn host_name(env: &BTreeMap<String, String>) -> String {
    env.get("HOSTNAME")
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| read_host_name(Path::new("/etc/hostname")))
        .unwrap_or_else(|| "stroem-worker".to_owned())
}

fn read_host_name(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let name = text.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Problems in reading order: the file by position, then variables by name, then the rest.
fn order(origin: &Origin) -> (u8, u32, u32, String) {
    match origin {
        Origin::File { line, column, .. } => (0, *line, *column, String::new()),
        Origin::Env(name) => (1, 0, 0, name.clone()),
        Origin::Flag(flag) => (2, 0, 0, (*flag).to_owned()),
        Origin::Default => (3, 0, 0, String::new()),
    }
}

#[cfg(test)]
mod tests;
