//! Decoding the merged configuration tree into [`Config`], with the defaults of API §10.2.
//!
//! Every key is read even after a problem, so the error lists them all. Defaults that depend on
//! `data_dir` are filled in last ([`Config::derive_from_data_dir`]), after the flags could still
//! move `data_dir`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::workflow::model::Duration;

use super::auth::auth;
use super::read::{Cx, Section};
use super::types::{
    Config, DbBackend, DbConfig, Derived, HttpConfig, LogFormat, LogLevel, LogStorageConfig,
    MetricsConfig, RecoveryConfig, RetentionConfig, S3Config,
};
use super::worker::worker;
use super::workspaces::workspaces;

pub const DEFAULT_DATA_DIR: &str = "./stroem-data";
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// A worker token shorter than this is accepted with a warning (API §10.2).
pub const MIN_WORKER_TOKEN_CHARS: usize = 32;
const MAX_STEP_TIMEOUT: Duration = Duration(86_400);
const MAX_JOB_TIMEOUT: Duration = Duration(7 * 86_400);
const DEFAULT_SECRET_FILE_DIRS: [&str; 2] = ["/run/secrets", "/var/run/secrets"];

/// Builds the typed configuration; problems and warnings are left in `cx`.
pub fn decode(cx: &mut Cx, root: &Section, cwd: &Path, host_name: &dyn Fn() -> String) -> Config {
    let data_dir = cx
        .path(root, "data_dir")
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let log_level = cx
        .choice(root, "log_level", &LogLevel::ALL)
        .unwrap_or(LogLevel::Info);
    let log_format = cx
        .choice(
            root,
            "log_format",
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        )
        .unwrap_or(LogFormat::Text);
    let worker_token = cx.secret(root, "worker_token");
    if let Some(token) = &worker_token
        && token.expose().chars().count() < MIN_WORKER_TOKEN_CHARS
    {
        let origin = root
            .entry("worker_token")
            .or_else(|| root.entry("worker_token_file"))
            .map_or_else(|| root.origin.clone(), |entry| entry.key_origin.clone());
        cx.warn(
            &origin,
            format!("'worker_token' is shorter than {MIN_WORKER_TOKEN_CHARS} characters; use a long random value"),
        );
    }
    let (db, db_url_set) = db(cx, root);
    let log_section = cx.section(root, "log_storage");
    let local_dir = log_section
        .as_ref()
        .and_then(|section| cx.path(section, "local_dir"));
    let s3 = log_section
        .as_ref()
        .and_then(|section| cx.section(section, "s3"))
        .and_then(|section| s3(cx, &section));
    let auth = auth(cx, root);
    let mut config = Config {
        listen: listen(cx, root, auth.is_some()),
        db,
        http: http(cx, root),
        log_storage: LogStorageConfig {
            local_dir: local_dir.clone().unwrap_or_default(),
            s3,
        },
        workspaces: workspaces(cx, root, cwd),
        embedded_worker: cx.boolean(root, "embedded_worker").unwrap_or(true),
        auth,
        recovery: recovery(cx, root),
        default_step_timeout: cx.duration(root, "default_step_timeout", MAX_STEP_TIMEOUT),
        default_job_timeout: cx.duration(root, "default_job_timeout", MAX_JOB_TIMEOUT),
        secret_file_dirs: secret_file_dirs(cx, root),
        trusted_proxies: trusted_proxies(cx, root),
        retention: cx
            .section(root, "retention")
            .and_then(|section| retention(cx, &section)),
        metrics: metrics(cx, root),
        worker: worker(cx, root, host_name),
        warnings: Vec::new(),
        secret_files: Vec::new(),
        derived: Derived {
            db_url: !db_url_set,
            log_dir: local_dir.is_none(),
            workspace_cache_dir: false,
        },
        data_dir,
        log_level,
        log_format,
        worker_token,
    };
    config.derived.workspace_cache_dir = config.worker.workspace_cache_dir.as_os_str().is_empty();
    config.derive_from_data_dir();
    config
}

fn listen(cx: &mut Cx, root: &Section, auth_on: bool) -> SocketAddr {
    // Without `auth` nothing asks for a token, so by default only this machine may connect
    // (issue #12 item 9); with it, every interface, as API §10.2 says.
    let default = if auth_on {
        SocketAddr::from(([0, 0, 0, 0], 8080))
    } else {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    };
    let Some(text) = cx.string(root, "listen") else {
        return default;
    };
    match text.parse() {
        Ok(address) => address,
        Err(error) => {
            let origin = root
                .get("listen")
                .map_or_else(|| root.origin.clone(), |item| item.origin.clone());
            let message = format!(
                "'listen' must be an IP address and port such as {DEFAULT_LISTEN}, found '{text}': {error}"
            );
            cx.error(&origin, "listen".to_owned(), message);
            default
        }
    }
}

/// `trusted_proxies`: addresses (`10.0.0.5`, `::1`) or networks (`10.0.0.0/8`).
fn trusted_proxies(cx: &mut Cx, root: &Section) -> Vec<ipnet::IpNet> {
    let Some(texts) = cx.strings(root, "trusted_proxies") else {
        return Vec::new();
    };
    let mut networks = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let parsed = text.parse::<ipnet::IpNet>().ok().or_else(|| {
            text.parse::<std::net::IpAddr>()
                .ok()
                .map(ipnet::IpNet::from)
        });
        match parsed {
            Some(network) => networks.push(network),
            None => {
                let origin = root
                    .get("trusted_proxies")
                    .map_or_else(|| root.origin.clone(), |item| item.origin.clone());
                let key = format!("trusted_proxies[{index}]");
                let message = format!(
                    "'{key}' must be an IP address or a network such as 10.0.0.0/8, found '{text}'"
                );
                cx.error(&origin, key, message);
            }
        }
    }
    networks
}

/// The `db` section and whether `db.url` was set (else it derives from `data_dir`).
fn db(cx: &mut Cx, root: &Section) -> (DbConfig, bool) {
    let section = cx
        .section(root, "db")
        .unwrap_or_else(|| Section::empty("db".to_owned(), root.origin.clone()));
    let max_connections = cx
        .uint(&section, "max_connections", 1)
        .map_or(10, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let busy_timeout_secs = cx
        .uint(&section, "busy_timeout_secs", 1)
        .unwrap_or(DEFAULT_BUSY_TIMEOUT_SECS);
    let url = cx.secret(&section, "url");
    let mut backend = DbBackend::Sqlite;
    if let Some(url) = &url {
        let text = url.expose();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            backend = DbBackend::Postgres;
        } else if !text.starts_with("sqlite://") {
            let origin = section
                .get("url")
                .or_else(|| section.get("url_file"))
                .map_or_else(|| section.origin.clone(), |item| item.origin.clone());
            // The URL may carry a password, so the message shows only its scheme.
            let scheme = text.split_once(':').map_or("", |(scheme, _)| scheme);
            let message = format!(
                "'db.url' must start with sqlite://, postgres:// or postgresql://, found scheme '{scheme}'"
            );
            cx.error(&origin, "db.url".to_owned(), message);
        }
    }
    let set = url.is_some();
    let config = DbConfig {
        url: url.unwrap_or_else(|| super::Secret::new("")),
        backend,
        max_connections,
        busy_timeout_secs,
    };
    (config, set)
}

const DEFAULT_BUSY_TIMEOUT_SECS: u64 = 5;

/// The `http` section: timeouts of at least a second, origins as `scheme://host[:port]`.
fn http(cx: &mut Cx, root: &Section) -> HttpConfig {
    let defaults = HttpConfig::default();
    let Some(section) = cx.section(root, "http") else {
        return defaults;
    };
    let allowed_origins = cx
        .strings(&section, "allowed_origins")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|origin| {
            let normal = origin.trim_end_matches('/').to_ascii_lowercase();
            let shaped = (normal.starts_with("http://") || normal.starts_with("https://"))
                && !normal
                    .split_once("://")
                    .is_some_and(|(_, rest)| rest.is_empty() || rest.contains('/'));
            if shaped {
                return Some(normal);
            }
            let origin_of = section
                .get("allowed_origins")
                .map_or_else(|| section.origin.clone(), |item| item.origin.clone());
            cx.error(
                &origin_of,
                "http.allowed_origins".to_owned(),
                format!(
                    "'http.allowed_origins' holds '{origin}': an origin is scheme://host[:port]"
                ),
            );
            None
        })
        .collect();
    HttpConfig {
        header_timeout_secs: cx
            .uint(&section, "header_timeout_secs", 1)
            .unwrap_or(defaults.header_timeout_secs),
        body_timeout_secs: cx
            .uint(&section, "body_timeout_secs", 1)
            .unwrap_or(defaults.body_timeout_secs),
        request_timeout_secs: cx
            .uint(&section, "request_timeout_secs", 1)
            .unwrap_or(defaults.request_timeout_secs),
        allowed_origins,
    }
}

fn s3(cx: &mut Cx, section: &Section) -> Option<S3Config> {
    let region = cx.string(section, "region");
    let prefix = cx.string(section, "prefix").unwrap_or_default();
    let endpoint = cx.string(section, "endpoint");
    let Some(bucket) = cx.string(section, "bucket") else {
        cx.missing(section, "bucket", "for S3 log storage");
        return None;
    };
    Some(S3Config {
        bucket,
        region,
        prefix,
        endpoint,
    })
}

fn recovery(cx: &mut Cx, root: &Section) -> RecoveryConfig {
    let section = cx
        .section(root, "recovery")
        .unwrap_or_else(|| Section::empty("recovery".to_owned(), root.origin.clone()));
    RecoveryConfig {
        heartbeat_timeout_secs: cx
            .uint(&section, "heartbeat_timeout_secs", 10)
            .unwrap_or(60),
        sweep_interval_secs: cx.uint(&section, "sweep_interval_secs", 1).unwrap_or(10),
        unmatched_step_timeout_secs: cx
            .uint(&section, "unmatched_step_timeout_secs", 5)
            .unwrap_or(120),
    }
}

fn secret_file_dirs(cx: &mut Cx, root: &Section) -> Vec<PathBuf> {
    let Some(dirs) = cx.strings(root, "secret_file_dirs") else {
        return DEFAULT_SECRET_FILE_DIRS.iter().map(PathBuf::from).collect();
    };
    let dirs: Vec<PathBuf> = dirs.into_iter().map(PathBuf::from).collect();
    if let Some(relative) = dirs.iter().find(|dir| !dir.is_absolute())
        && let Some(item) = root.get("secret_file_dirs")
    {
        // WF §16.1 compares absolute, resolved paths; a relative directory would depend on
        // the directory the server was started from.
        let message = format!(
            "'secret_file_dirs' must hold absolute paths, found '{}'",
            relative.display()
        );
        cx.error(&item.origin, "secret_file_dirs".to_owned(), message);
    }
    dirs
}

fn retention(cx: &mut Cx, section: &Section) -> Option<RetentionConfig> {
    let worker_hours = cx.uint(section, "worker_hours", 1).unwrap_or(24);
    let interval_secs = cx.uint(section, "interval_secs", 1).unwrap_or(3600);
    let Some(job_days) = cx.uint(section, "job_days", 1) else {
        if section.get("job_days").is_none() {
            cx.missing(section, "job_days", "for retention");
        }
        return None;
    };
    Some(RetentionConfig {
        job_days,
        worker_hours,
        interval_secs,
    })
}

fn metrics(cx: &mut Cx, root: &Section) -> MetricsConfig {
    let Some(section) = cx.section(root, "metrics") else {
        return MetricsConfig {
            public: false,
            token: None,
        };
    };
    MetricsConfig {
        public: cx.boolean(&section, "public").unwrap_or(false),
        token: cx.secret(&section, "token"),
    }
}
