//! The typed configuration (API §10.2) that the rest of Strøm reads.
//!
//! Keys map to fields one to one, except that the worker keys, which sit at the top level of
//! `stroem.yaml` next to the server keys, are grouped in [`WorkerConfig`] so that `stroem work`
//! and the embedded worker receive exactly their part. 🔒 values are [`Secret`]s, whose `Debug`
//! and `Display` print `***`, so logging a `Config` can never leak one.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use indexmap::IndexMap;

use crate::workflow::model::Duration;

/// A 🔒 value: printed as `***`; [`Secret::expose`] is the one way to the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret's text, for the one place that needs it (a connection, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Everything `stroem serve` and `stroem work` read from configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// Shared secret of the server and its remote workers; `None` refuses remote workers.
    pub worker_token: Option<Secret>,
    pub listen: SocketAddr,
    pub db: DbConfig,
    pub http: HttpConfig,
    pub log_storage: LogStorageConfig,
    /// Named workspaces in the order written; never empty (API §10.3).
    pub workspaces: IndexMap<String, WorkspaceConfig>,
    pub embedded_worker: bool,
    /// `None`: authentication is off.
    pub auth: Option<AuthConfig>,
    pub recovery: RecoveryConfig,
    pub default_step_timeout: Option<Duration>,
    pub default_job_timeout: Option<Duration>,
    /// Directories `file()` may read in workflow `secrets:` (WF §16.1).
    pub secret_file_dirs: Vec<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed (API §1.6); single addresses are stored as
    /// host-length networks.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Deleting old jobs and workers (API §8.5 item 7); `None`: keep everything.
    pub retention: Option<RetentionConfig>,
    /// [P2] Parsed, without effect in this version.
    pub metrics: MetricsConfig,
    pub worker: WorkerConfig,
    /// Things worth telling the operator at start-up (weak worker token, keys of later
    /// phases); each starts with where the key was written.
    pub warnings: Vec<String>,
    /// Canonical paths of the files read through `*_file` keys (WF §16.1 refuses them).
    pub(super) secret_files: Vec<PathBuf>,
    /// Strøm's own credentials as loaded: kept from steps and masked in job text.
    pub credentials: super::Credentials,
    /// Which `data_dir`-relative values took their default, so `--data-dir` can move them.
    pub(super) derived: Derived,
}

/// The values whose defaults depend on `data_dir` and were not set explicitly.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Derived {
    pub db_url: bool,
    pub log_dir: bool,
    pub workspace_cache_dir: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const ALL: [(&'static str, LogLevel); 5] = [
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Trace),
    ];

    /// The level as `tracing`'s filters spell it.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, level)| *level == self)
            .map_or("info", |(name, _)| name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbBackend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite://…`, `postgres://…` or `postgresql://…`; may hold a password.
    pub url: Secret,
    /// Which backend the URL's scheme selects.
    pub backend: DbBackend,
    pub max_connections: u32,
    /// How long a request waits for SQLite's write lock or a free pooled connection before it
    /// fails with 503 (`db.busy_timeout_secs`).
    pub busy_timeout_secs: u64,
}

/// The `http` section: bounds on how long a client may take, and the origins allowed to send
/// state-changing `/api` requests besides the server's own (docs/security.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// From the connection (or the previous request) to the end of the request's headers.
    pub header_timeout_secs: u64,
    /// The longest pause while a request body arrives.
    pub body_timeout_secs: u64,
    /// From the headers to the answer, except for streams and long polls.
    pub request_timeout_secs: u64,
    /// `scheme://host[:port]` origins, compared without case and trailing slash.
    pub allowed_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            request_timeout_secs: 60,
            allowed_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogStorageConfig {
    pub local_dir: PathBuf,
    /// [P3] Parsed, without effect in this version.
    pub s3: Option<S3Config>,
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    pub region: Option<String>,
    pub prefix: String,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone)]
pub enum WorkspaceConfig {
    Folder {
        path: PathBuf,
        poll_interval_secs: u64,
    },
    Git {
        url: String,
        git_ref: String,
        poll_interval_secs: u64,
        auth: Option<GitAuth>,
        /// The secret a git host's push webhook authenticates with
        /// (`POST /hooks/_workspaces/<name>/refresh`); absent ⇒ no push hook.
        webhook_secret: Option<Secret>,
    },
    /// The example workspace built into the binary, read-only (API §10.3): the default
    /// `default` when no workspace is configured and `./workspace` does not exist.
    Example,
}

#[derive(Debug, Clone)]
pub enum GitAuth {
    SshKey {
        key: SshKey,
        username: Option<String>,
    },
    Token {
        token: Secret,
        /// Default `x-access-token`.
        username: String,
    },
}

#[derive(Debug, Clone)]
pub enum SshKey {
    /// `key_path`: a private key file the git client reads itself.
    Path(PathBuf),
    /// `key` or `key_file`: the private key's text.
    Inline(Secret),
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub jwt_secret: Secret,
    pub refresh_secret: Secret,
    pub base_url: Option<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Login providers by id, in the order written.
    pub providers: IndexMap<String, ProviderConfig>,
    pub initial_user: Option<InitialUser>,
    /// Access rules (issue #12; `docs/authentication.md`).
    pub acl: AclConfig,
}

/// What a rule grants on the tasks it matches, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// The task and its jobs do not exist for the caller (404, left out of lists).
    None,
    /// Sees the task, its jobs and their logs.
    View,
    /// Also triggers and cancels.
    Run,
}

impl Access {
    pub const ALL: [(&'static str, Access); 3] = [
        ("none", Access::None),
        ("view", Access::View),
        ("run", Access::Run),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::View => "view",
            Access::Run => "run",
        }
    }
}

/// `auth.acl`: rules matched in order, first match wins; `default` when none matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclConfig {
    pub default: Access,
    pub rules: Vec<AclRule>,
}

impl Default for AclConfig {
    fn default() -> Self {
        AclConfig {
            default: Access::Run,
            rules: Vec::new(),
        }
    }
}

/// One access rule. Globs know `*` (any run of characters) and `?` (one character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// Workspace glob; `*` when absent.
    pub workspace: String,
    /// Task globs, any of which may match; `["*"]` when absent.
    pub tasks: Vec<String>,
    /// The rule applies to members of any of these groups…
    pub groups: Vec<String>,
    /// …or to these users (e-mail addresses, compared case-insensitively). With neither
    /// `groups` nor `users` it applies to everyone.
    pub users: Vec<String>,
    pub allow: Access,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderType {
    Internal,
    /// OIDC sign-in (API §5.4).
    Oidc,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub provider_type: ProviderType,
    pub display_name: Option<String>,
    pub issuer_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Groups a user created by this provider's first sign-in joins (API §5.4).
    pub default_groups: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct InitialUser {
    pub email: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryConfig {
    pub heartbeat_timeout_secs: u64,
    pub sweep_interval_secs: u64,
    pub unmatched_step_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    pub job_days: u64,
    pub worker_hours: u64,
    pub interval_secs: u64,
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub public: bool,
    pub token: Option<Secret>,
}

/// The worker keys: read by `stroem work` and by the embedded worker of `stroem serve`.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub server_url: String,
    /// Display only; defaults to the host name.
    pub worker_name: String,
    pub max_concurrent: usize,
    pub poll_interval_secs: u64,
    pub heartbeat_interval_secs: u64,
    pub kill_grace_secs: u64,
    /// [P2] Parsed, without effect in this version.
    pub shutdown_grace_secs: u64,
    pub workspace_cache_dir: PathBuf,
    /// The most a revision may take once extracted, in bytes, and the most one of its files
    /// may take (`workspace_cache_max_bytes`, `workspace_cache_max_file_bytes`).
    pub workspace_cache_max_bytes: u64,
    pub workspace_cache_max_file_bytes: u64,
    /// Never empty; no duplicates.
    pub capabilities: Vec<Capability>,
    pub tags: Vec<String>,
    pub runner_image: String,
    /// The Docker runner's settings (cargo feature `docker`).
    pub docker: Option<DockerConfig>,
    /// The Kubernetes runner's settings (cargo feature `kubernetes`).
    pub kubernetes: Option<KubernetesConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `script`, also spelled `shell` (the name of earlier releases).
    Script,
    Docker,
    Kubernetes,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Script => "script",
            Capability::Docker => "docker",
            Capability::Kubernetes => "kubernetes",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DockerConfig {
    pub host: Option<String>,
    pub pull_policy: Option<PullPolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    IfNotPresent,
    Always,
    Never,
}

#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    pub namespace: String,
    /// The image of the `workspace-init` container (it needs `sh`, `curl` and `tar`).
    pub init_image: Option<String>,
    /// Where pods reach the server; default: the worker's `server_url`.
    pub server_url: Option<String>,
    /// How long a pod may stay unschedulable before its attempt fails (default 120).
    pub unschedulable_timeout_secs: Option<u64>,
}
