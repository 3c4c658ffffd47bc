//! `stroem work`: a remote worker (API §9.2, §7). It registers with the server, long-polls for
//! steps, runs them with the local runner in private copies of their workspace revision,
//! streams their logs and reports their results — the same loop as the embedded worker, over
//! the HTTP transport.
//!
//! Shutdown (SIGTERM or Ctrl-C): stop claiming, let running attempts finish for up to
//! `shutdown_grace_secs`, stop the rest and report them as retryable failures (`worker shutting
//! down`), then deregister (API §7.2) so the server re-queues at once anything still leased to
//! this worker — such as a claim granted as it stopped listening — and exit without waiting
//! for the abandoned long poll's blocking thread ([`super::run_role`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::api::protocol::{MAX_CLAIM_WAIT_SECS, RegisterRequest};
use crate::config::{Config, ConfigSource};
use crate::runner::{LocalRunner, Scratch};
use crate::worker::{HttpSettings, HttpTransport, WorkerSettings};

/// How long one claim waits for work on the server (API §7.3 allows up to 30 s).
const CLAIM_WAIT: Duration = Duration::from_secs(25);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (default: `STROEM_CONFIG`, else `./stroem.yaml` when present).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The global `--server`/`STROEM_URL`, when given (overrides `server_url`).
    #[arg(skip)]
    pub server: Option<String>,
    /// The name shown for this worker (`worker_name`; default: the host name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How many steps run at once (`max_concurrent`; default 4).
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<usize>,
    /// Log lines on stderr as `text` or `json`, one object per line (`log_format`).
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub log_format: Option<super::serve::LogFormatArg>,
}

pub fn run(args: Args) -> ExitCode {
    let environment = super::environment();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let loaded = Config::load(ConfigSource {
        config: args.config.clone(),
        env: environment.clone(),
        cwd,
    })
    .and_then(|mut config| {
        config.apply_work_flags(args.server, args.name, args.max_concurrent)?;
        if let Some(format) = args.log_format {
            config.log_format = format.into();
        }
        config.require_worker_token()?;
        Ok(config)
    });
    let config = match loaded {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    super::serve::init_tracing(&config, &environment);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    super::run_role(work(config, environment))
}

/// Runs the worker until SIGTERM or Ctrl-C.
async fn work(config: Config, environment: BTreeMap<String, String>) -> anyhow::Result<()> {
    let worker = &config.worker;
    let token = config.require_worker_token()?.clone();
    crate::private::create_dir(&config.data_dir)
        .with_context(|| format!("cannot create data_dir '{}'", config.data_dir.display()))?;
    std::fs::create_dir_all(&worker.workspace_cache_dir).with_context(|| {
        format!(
            "cannot create workspace_cache_dir '{}'",
            worker.workspace_cache_dir.display()
        )
    })?;
    // Steps never see the worker's own credentials, and their lines never show one.
    let environment = config.credentials.scrub(&environment);
    let scratch = scratch(&config.data_dir)?;
    let runner = LocalRunner::new(
        Duration::from_secs(worker.kill_grace_secs),
        environment.clone(),
    )
    .masking(config.credentials.masker())
    .in_scratch(Arc::clone(&scratch));
    // A capability is advertised only when its runner can run steps now (API §7.5): the
    // server must never hand this worker a step it cannot run.
    let super::runners::Runners {
        runner,
        capabilities,
    } = super::runners::attach(&config, &environment, runner, &scratch, &worker.worker_name)
        .await?;
    let registration = RegisterRequest {
        name: worker.worker_name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        capabilities,
        tags: worker.tags.clone(),
        max_concurrent: u32::try_from(worker.max_concurrent).unwrap_or(u32::MAX),
    };
    let retry_pause = Duration::from_secs(worker.poll_interval_secs.max(1));
    let transport = Arc::new(HttpTransport::new(HttpSettings {
        server_url: worker.server_url.clone(),
        worker_token: token,
        registration,
        cache_dir: worker.workspace_cache_dir.clone(),
        revision_limits: crate::worker::RevisionLimits {
            max_bytes: worker.workspace_cache_max_bytes,
            max_file_bytes: worker.workspace_cache_max_file_bytes,
        },
        retry_pause,
    }));
    let settings = WorkerSettings {
        max_concurrent: worker.max_concurrent,
        heartbeat_interval: Duration::from_secs(worker.heartbeat_interval_secs.max(1)),
        claim_wait: CLAIM_WAIT.min(Duration::from_secs(u64::from(MAX_CLAIM_WAIT_SECS))),
        retry_pause,
        shutdown_grace: Duration::from_secs(worker.shutdown_grace_secs),
    };
    tracing::info!(server = %worker.server_url, name = %worker.worker_name, "worker starting");
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        super::serve::wait_for_signal().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    crate::worker::run(transport, runner, settings, shutdown).await
}

/// The worker's attempt directory under `<data_dir>/attempts`, after removing what attempts of
/// dead workers left there (see [`Scratch`]).
pub(super) fn scratch(data_dir: &std::path::Path) -> anyhow::Result<Arc<Scratch>> {
    let root = data_dir.join("attempts");
    let (scratch, removed) = Scratch::open(&root)
        .with_context(|| format!("cannot prepare the attempt directory '{}'", root.display()))?;
    if removed > 0 {
        tracing::info!(
            removed,
            "removed files that attempts of an earlier worker left behind"
        );
    }
    Ok(Arc::new(scratch))
}
