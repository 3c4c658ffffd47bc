//! Command-line flags, the last layer of precedence (API §9.2), and the defaults that follow
//! `data_dir` wherever it was set.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::Secret;
use super::error::{ConfigError, Origin, Problem};
use super::types::{Config, WorkspaceConfig};
use super::workspaces::FOLDER_POLL_SECS;

impl Config {
    /// Applies the flags of `stroem serve`: `--listen` and `--data-dir` override their keys
    /// (values derived from `data_dir` follow it unless set explicitly); `--workspace DIR`
    /// replaces the configured workspaces with `default` = DIR; `--no-worker` sets
    /// `embedded_worker: false`.
    pub fn apply_serve_flags(
        &mut self,
        listen: Option<SocketAddr>,
        data_dir: Option<PathBuf>,
        workspace: Option<PathBuf>,
        no_worker: bool,
    ) {
        if let Some(listen) = listen {
            self.listen = listen;
        }
        if let Some(data_dir) = data_dir {
            self.data_dir = data_dir;
            self.derive_from_data_dir();
        }
        if let Some(path) = workspace {
            self.workspaces.clear();
            self.workspaces.insert(
                "default".to_owned(),
                WorkspaceConfig::Folder {
                    path,
                    poll_interval_secs: FOLDER_POLL_SECS,
                },
            );
        }
        if no_worker {
            self.embedded_worker = false;
        }
    }

    /// The start-up warning for a server that anyone on the network can use: authentication
    /// is off and `listen` is not a loopback address.
    pub fn exposure_warning(&self) -> Option<String> {
        if self.auth.is_some() || self.listen.ip().is_loopback() {
            return None;
        }
        Some(format!(
            "listening on {} with authentication off: anyone who can reach this address can run \
             tasks (shell commands) on the workers; configure 'auth' or listen on 127.0.0.1",
            self.listen
        ))
    }

    /// Applies the flags of `stroem work`. `server` is `--server` or `$STROEM_URL` and is
    /// passed only when one of them was given (API §9.1), so `server_url` keeps its value
    /// otherwise.
    pub fn apply_work_flags(
        &mut self,
        server: Option<String>,
        name: Option<String>,
        max_concurrent: Option<usize>,
    ) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if let Some(server) = server {
            if server.starts_with("http://") || server.starts_with("https://") {
                self.worker.server_url = server;
            } else {
                problems.push(Problem {
                    origin: Origin::Flag("--server"),
                    key: "server_url".to_owned(),
                    message: format!(
                        "the server URL must start with http:// or https://, found '{server}'"
                    ),
                });
            }
        }
        if let Some(name) = name {
            if name.trim().is_empty() {
                problems.push(Problem {
                    origin: Origin::Flag("--name"),
                    key: "worker_name".to_owned(),
                    message: "the worker name must not be empty".to_owned(),
                });
            } else {
                self.worker.worker_name = name;
            }
        }
        match max_concurrent {
            Some(0) => problems.push(Problem {
                origin: Origin::Flag("--max-concurrent"),
                key: "max_concurrent".to_owned(),
                message: "'max_concurrent' must be at least 1, found 0".to_owned(),
            }),
            Some(n) => self.worker.max_concurrent = n,
            None => {}
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }

    /// The worker token, which `stroem work` cannot run without (API §10.2).
    pub fn require_worker_token(&self) -> Result<&Secret, ConfigError> {
        self.worker_token
            .as_ref()
            .ok_or_else(|| ConfigError::Invalid {
                problems: vec![Problem {
                    origin: Origin::Default,
                    key: "worker_token".to_owned(),
                    message:
                        "'worker_token' is required by `stroem work`: set it, 'worker_token_file' \
                          or STROEM__WORKER_TOKEN to the server's worker token"
                            .to_owned(),
                }],
            })
    }

    /// The files read through `*_file` keys, canonicalised: WF §16.1 refuses them to `file()`
    /// in workflow secrets, so a workflow cannot read the server's own credentials.
    pub fn refused_secret_files(&self) -> &[PathBuf] {
        &self.secret_files
    }

    /// Recomputes the defaults that live under `data_dir` (database, logs, workspace cache),
    /// keeping the ones that were set explicitly.
    pub(super) fn derive_from_data_dir(&mut self) {
        if self.derived.db_url {
            let file = self.data_dir.join("stroem.db");
            self.db.url = Secret::new(format!("sqlite://{}", file.display()));
            self.db.backend = super::DbBackend::Sqlite;
        }
        if self.derived.log_dir {
            self.log_storage.local_dir = self.data_dir.join("logs");
        }
        if self.derived.workspace_cache_dir {
            self.worker.workspace_cache_dir = self.data_dir.join("workspace-cache");
        }
    }
}
