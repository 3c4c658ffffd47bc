//! `stroem serve`: the HTTP API and webhooks, the job engine, the recovery loop, the workspace
//! poller, the cron scheduler and (unless `--no-worker`) an embedded worker, in one process
//! (API §9.2, §10.3).
//!
//! Shutdown (SIGTERM or Ctrl-C): stop accepting requests and claims, stop running attempts
//! (reported as retryable `worker shutting down` failures, or recovered by lease expiry on the
//! next start), close the store. Nothing is left `running` forever.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::config::{Config, ConfigSource, GitAuth, LogFormat, SshKey, WorkspaceConfig};
use crate::logs::LogStore;
use crate::orchestrator::workspace_token::WorkspaceTokens;
use crate::orchestrator::{Orchestrator, Retention, Settings};
use crate::runner::LocalRunner;
use crate::scheduler::Scheduler;
use crate::server::{AppState, Health, MetricsAccess, Security, WorkerAccess};
use crate::store::{Store, WorkerRegistration};
use crate::worker::{InProcess, WorkerSettings};
use crate::workspace::git;
use crate::workspace::manager::{self, Source, Workspaces};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (default: `STROEM_CONFIG`, else `./stroem.yaml` when present).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (`listen`; default 127.0.0.1:8080 without `auth`, 0.0.0.0:8080
    /// with it).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Base directory for the database, logs and snapshots (`data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Serve this folder as the `default` workspace, replacing the configured ones.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Do not start the embedded worker (`embedded_worker: false`).
    #[arg(long)]
    pub no_worker: bool,
    /// Log lines on stderr as `text` or `json`, one object per line (`log_format`).
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub log_format: Option<LogFormatArg>,
}

/// `--log-format` of `serve` and `work`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(format: LogFormatArg) -> Self {
        match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

pub fn run(args: Args) -> ExitCode {
    let environment = super::environment();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut config = match Config::load(ConfigSource {
        config: args.config.clone(),
        env: environment.clone(),
        cwd,
    }) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    config.apply_serve_flags(args.listen, args.data_dir, args.workspace, args.no_worker);
    if let Some(format) = args.log_format {
        config.log_format = format.into();
    }
    init_tracing(&config, &environment);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(warning) = config.exposure_warning() {
        tracing::warn!("{warning}");
    }
    super::run_role(serve(config, environment))
}

/// The log subscriber of `serve` and `work`: `log_level` (or `RUST_LOG`) filters, and
/// `log_format` picks human-readable text or JSON lines (docs/observability.md).
pub(super) fn init_tracing(config: &Config, environment: &BTreeMap<String, String>) {
    let filter = environment
        .get("RUST_LOG")
        .cloned()
        .unwrap_or_else(|| format!("{},sqlx=warn", config.log_level.as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: a log file or collector gets plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && !environment.contains_key("NO_COLOR"),
        );
    // A second initialisation (tests run several servers in one process) keeps the first.
    let _ = match config.log_format {
        // One flat object per line: `timestamp`, `level`, `target`, `message` and the event's
        // fields beside them, and the span the event happened in, for log shippers.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Everything `serve` starts, until `shutdown` is cancelled. Public so tests can run a real
/// server in-process on port 0.
pub struct Running {
    pub address: SocketAddr,
    pub orchestrator: Orchestrator,
    tasks: tokio::task::JoinSet<()>,
    shutdown: CancellationToken,
}

impl Running {
    /// Stops everything and waits for it to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.orchestrator.store().close().await;
    }
}

/// Starts the server described by `config` on `listener`.
pub async fn start(
    config: Config,
    environment: BTreeMap<String, String>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Running> {
    crate::install_crypto_provider();
    // Steps and the secrets' `env` context never see the server's own credentials.
    let environment = config.credentials.scrub(&environment);
    // The data directory holds the database, logs and snapshots: the server's user's alone.
    crate::private::create_dir(&config.data_dir)
        .with_context(|| format!("cannot create data_dir '{}'", config.data_dir.display()))?;
    let store = Store::connect_with(
        config.db.url.expose(),
        config.db.max_connections,
        std::time::Duration::from_secs(config.db.busy_timeout_secs),
    )
    .await
    .context("cannot open the database")?;
    let logs = LogStore::open(config.log_storage.local_dir.clone()).with_context(|| {
        format!(
            "cannot open the log directory '{}'",
            config.log_storage.local_dir.display()
        )
    })?;
    let sources = workspace_sources(&config)?;
    let settings = manager::Settings {
        data_dir: config.data_dir.clone(),
        env: environment.clone(),
        secret_file_dirs: config.secret_file_dirs.clone(),
        refused_files: config.refused_secret_files().to_vec(),
    };
    // The first load copies folders and fetches git sources: blocking work.
    let workspaces =
        tokio::task::spawn_blocking(move || Workspaces::new(settings, sources, Utc::now()))
            .await
            .context("loading the workspaces panicked")??;
    for view in workspaces.list() {
        for error in &view.errors {
            tracing::error!(workspace = %view.name, "{}:{}:{}: {}", error.file, error.line, error.column, error.message);
        }
    }
    let workspaces = Arc::new(workspaces);
    let heartbeat_timeout =
        TimeDelta::seconds(i64::try_from(config.recovery.heartbeat_timeout_secs)?);
    let orchestrator = Orchestrator::new(
        store.clone(),
        logs,
        Arc::clone(&workspaces),
        Settings {
            lease_ttl: heartbeat_timeout,
            heartbeat_timeout,
            default_job_timeout: config.default_job_timeout,
            default_step_timeout: config.default_step_timeout,
            unmatched_step_timeout: TimeDelta::seconds(i64::try_from(
                config.recovery.unmatched_step_timeout_secs,
            )?),
            step_timeout_grace: TimeDelta::seconds(
                i64::try_from(config.worker.kill_grace_secs)?.saturating_add(30),
            ),
            credentials: config.credentials.masker(),
            workspace_tokens: config
                .worker_token
                .as_ref()
                .map_or_else(WorkspaceTokens::default, |token| {
                    WorkspaceTokens::from_worker_token(token.expose())
                }),
        },
    );
    orchestrator.resume().await?;
    let auth = match &config.auth {
        Some(auth_config) => {
            let auth = Auth::new(auth_config, store.clone())?;
            auth.bootstrap(Utc::now())
                .await
                .context("cannot create the initial user")?;
            Some(auth)
        }
        None => None,
    };

    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let address = listener.local_addr()?;
    let health_store = store.clone();
    let state = AppState {
        health: Health::new(move || {
            let store = health_store.clone();
            async move { store.ping().await.is_ok() }
        }),
        orchestrator: Some(orchestrator.clone()),
        workers: WorkerAccess {
            token: config.worker_token.clone(),
            lease_timeout_secs: config.recovery.heartbeat_timeout_secs,
            shutdown: shutdown.clone(),
        },
        ui: crate::server::UiBundle::embedded(),
        security: Security {
            auth,
            trusted_proxies: config.trusted_proxies.clone().into(),
        },
        http: crate::server::HttpPolicy::new(
            &config.http,
            config
                .auth
                .as_ref()
                .and_then(|auth| auth.base_url.as_deref()),
        ),
        metrics: MetricsAccess {
            public: config.metrics.public,
            token: config.metrics.token.clone(),
            metrics: store.metrics().clone(),
        },
    };
    let token = shutdown.clone();
    tasks.spawn(async move {
        if let Err(error) = crate::server::serve(listener, state, token).await {
            tracing::error!(%error, "HTTP server failed");
        }
    });
    tasks.spawn(orchestrator.clone().run_recovery(
        Duration::from_secs(config.recovery.sweep_interval_secs),
        shutdown.clone(),
    ));
    tasks.spawn(Arc::clone(&workspaces).run_poller(shutdown.clone()));
    tasks.spawn(orchestrator.clone().run_wakeups(shutdown.clone()));
    // Retention (API §8.5 item 7) runs on the scheduler's leader: one replica sweeps.
    let retention = config.retention.as_ref().map(|retention| {
        Retention::new(
            retention.job_days,
            retention.worker_hours,
            retention.interval_secs,
        )
    });
    tasks.spawn(
        Scheduler::new(orchestrator.clone())
            .with_retention(retention)
            .run(shutdown.clone()),
    );
    if config.embedded_worker {
        let worker = &config.worker;
        let name = format!("{} (embedded)", worker.worker_name);
        let scratch = super::work::scratch(&config.data_dir)?;
        let runner = LocalRunner::new(
            Duration::from_secs(worker.kill_grace_secs),
            environment.clone(),
        )
        .masking(config.credentials.masker())
        .in_scratch(Arc::clone(&scratch));
        let super::runners::Runners {
            runner,
            capabilities,
        } = super::runners::attach(&config, &environment, runner, &scratch, &name).await?;
        let registration = WorkerRegistration {
            name,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities,
            tags: worker.tags.clone(),
            max_concurrent: u32::try_from(worker.max_concurrent).unwrap_or(u32::MAX),
        };
        let transport = Arc::new(InProcess::new(orchestrator.clone(), registration));
        let settings = WorkerSettings {
            max_concurrent: worker.max_concurrent,
            heartbeat_interval: Duration::from_secs(worker.heartbeat_interval_secs.max(1)),
            claim_wait: Duration::from_secs(10),
            retry_pause: Duration::from_secs(worker.poll_interval_secs.max(1)),
            shutdown_grace: Duration::from_secs(worker.shutdown_grace_secs),
        };
        let token = shutdown.clone();
        tasks.spawn(async move {
            if let Err(error) = crate::worker::run(transport, runner, settings, token).await {
                tracing::error!(%error, "embedded worker failed");
            }
        });
    }
    Ok(Running {
        address,
        orchestrator,
        tasks,
        shutdown,
    })
}

async fn serve(config: Config, environment: BTreeMap<String, String>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let running = start(config, environment, listener).await?;
    let shown = match running.address {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => format!("localhost:{}", v4.port()),
        other => other.to_string(),
    };
    super::out::line(format_args!(
        "Strøm is serving on http://{shown} (API under /api, UI at /)"
    ));
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

pub(super) async fn wait_for_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// A git workspace's credentials as the fetch uses them. An inline ssh key (`key`, `key_file`
/// read by the configuration) is written to a private file under `<data_dir>/git/` for `ssh -i`.
fn git_auth(
    config: &Config,
    workspace: &str,
    auth: Option<&GitAuth>,
) -> anyhow::Result<Option<git::Auth>> {
    Ok(match auth {
        None => None,
        Some(GitAuth::Token { token, username }) => Some(git::Auth::Token {
            username: username.clone(),
            token: token.expose().to_owned(),
        }),
        Some(GitAuth::SshKey { key, username }) => {
            let key_path = match key {
                SshKey::Path(path) => path.clone(),
                SshKey::Inline(text) => {
                    let dir = config.data_dir.join("git");
                    crate::private::create_dir(&dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    let path = dir.join(format!("{workspace}.key"));
                    let mut text = text.expose().to_owned();
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                    crate::private::write(&path, text).with_context(|| {
                        format!("cannot write the ssh key of workspace '{workspace}'")
                    })?;
                    path
                }
            };
            Some(git::Auth::SshKey {
                username: username.clone(),
                key_path,
            })
        }
    })
}

fn workspace_sources(config: &Config) -> anyhow::Result<Vec<(String, Source)>> {
    config
        .workspaces
        .iter()
        .map(|(name, workspace)| {
            let source = match workspace {
                WorkspaceConfig::Folder {
                    path,
                    poll_interval_secs,
                } => Source::Folder {
                    path: path.clone(),
                    poll_interval: Duration::from_secs(*poll_interval_secs),
                },
                WorkspaceConfig::Example => Source::Example,
                WorkspaceConfig::Git {
                    url,
                    git_ref,
                    poll_interval_secs,
                    auth,
                    webhook_secret,
                } => Source::Git {
                    remote: git::Remote::new(url, git_ref, git_auth(config, name, auth.as_ref())?)
                        .with_webhook_secret(
                            webhook_secret.as_ref().map(|s| s.expose().to_owned()),
                        ),
                    poll_interval: Duration::from_secs(*poll_interval_secs),
                },
            };
            Ok((name.clone(), source))
        })
        .collect()
}
