//! `stroem healthcheck` (hidden): the container image's `HEALTHCHECK`, which has no curl or
//! wget to call. It asks a server's `GET /healthz` (API §3.6) and exits 0 when the server
//! answers 200 with `"status": "ok"`, 1 otherwise, printing why.
//!
//! Which server: `--url` when given; else, for the `work` role (`STROEM_ROLE=work`), the
//! worker's `server_url`, since a worker without its server cannot do anything; else this
//! host's `serve` at the port of `listen`. Both come from the same configuration `serve` and
//! `work` load (`-c`, `STROEM_CONFIG`, `STROEM__…`), so the check follows a changed port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::api::HealthReply;
use crate::config::{Config, ConfigSource};

/// The whole check, connection included, gives up after this (Docker's default check timeout
/// is 30 s; a probe that hangs is as unhealthy as one that fails).
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of an unexpected answer the failure message shows.
const SHOWN_BODY: usize = 200;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (default: `STROEM_CONFIG`, else `./stroem.yaml` when present).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check this URL instead of the one the configuration implies.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// `STROEM_ROLE`, read once by `cli::main`.
    #[arg(skip)]
    pub role: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let url = match args.url {
        Some(url) => url,
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            let config = match Config::load(ConfigSource {
                config: args.config,
                env: super::environment(),
                cwd,
            }) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("unhealthy: {error}");
                    return ExitCode::FAILURE;
                }
            };
            health_url(&config, args.role.as_deref())
        }
    };
    match check(&url) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("unhealthy: {url}: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// The `/healthz` URL to ask for `role`.
fn health_url(config: &Config, role: Option<&str>) -> String {
    if role.is_some_and(|role| role.eq_ignore_ascii_case("work")) {
        let base = config.worker.server_url.trim_end_matches('/');
        return format!("{base}/healthz");
    }
    format!("http://{}/healthz", local_address(config.listen))
}

/// `listen` as an address this host can connect to: the wildcard addresses become loopback.
fn local_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

fn check(url: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(CHECK_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|error| error.to_string())?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .map_err(|error| format!("HTTP {status}, unreadable body: {error}"))?;
    let reply: Option<HealthReply> = serde_json::from_str(&body).ok();
    match reply {
        Some(reply) if status == 200 && reply.is_healthy() => Ok(()),
        _ => {
            let shown: String = body.trim().chars().take(SHOWN_BODY).collect();
            Err(format!("HTTP {status}: {shown}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_checked_on_loopback() {
        let cases = [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:9000", "[::1]:9000"),
            ("10.1.2.3:8080", "10.1.2.3:8080"),
        ];
        for (listen, expected) in cases {
            let listen: SocketAddr = listen.parse().expect("address");
            assert_eq!(local_address(listen).to_string(), expected, "{listen}");
        }
    }

    #[test]
    fn the_work_role_checks_its_server() {
        let cwd = tempfile::tempdir().expect("temporary directory");
        let config = Config::load(ConfigSource {
            config: None,
            env: [
                (
                    "STROEM__SERVER_URL".to_owned(),
                    "http://server:8080/".to_owned(),
                ),
                ("STROEM__LISTEN".to_owned(), "0.0.0.0:9090".to_owned()),
            ]
            .into(),
            cwd: cwd.path().to_path_buf(),
        })
        .expect("configuration");
        assert_eq!(
            health_url(&config, Some("work")),
            "http://server:8080/healthz"
        );
        assert_eq!(
            health_url(&config, Some("serve")),
            "http://127.0.0.1:9090/healthz"
        );
        assert_eq!(health_url(&config, None), "http://127.0.0.1:9090/healthz");
    }
}
