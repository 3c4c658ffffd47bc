//! Defaults, legacy files, environment overrides, `*_file` secrets and flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::Setup;
use crate::config::{
    Capability, Config, ConfigSource, DbBackend, GitAuth, LogFormat, LogLevel, Secret,
    WorkspaceConfig,
};
use crate::workflow::model::Duration;

#[test]
fn no_file_gives_the_zero_configuration_defaults() {
    let config = Setup::new(None).ok();
    // Without `auth`, only this machine may connect by default (issue #12 item 9).
    assert_eq!(
        config.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().expect("address")
    );
    assert_eq!(config.exposure_warning(), None);
    assert_eq!(config.data_dir, PathBuf::from("./stroem-data"));
    assert_eq!(config.db.url.expose(), "sqlite://./stroem-data/stroem.db");
    assert_eq!(config.db.backend, DbBackend::Sqlite);
    assert_eq!(config.db.max_connections, 10);
    assert_eq!(
        config.log_storage.local_dir,
        PathBuf::from("./stroem-data/logs")
    );
    assert!(config.log_storage.s3.is_none());
    assert!(matches!(
        config.workspaces.get("default"),
        Some(WorkspaceConfig::Example)
    ));
    assert_eq!(config.workspaces.len(), 1);
    assert!(config.embedded_worker);
    assert!(config.auth.is_none());
    assert!(config.worker_token.is_none());
    assert_eq!(config.log_level, LogLevel::Info);
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.recovery.heartbeat_timeout_secs, 60);
    assert_eq!(config.recovery.sweep_interval_secs, 10);
    assert_eq!(config.recovery.unmatched_step_timeout_secs, 120);
    assert_eq!(config.default_step_timeout, None);
    assert_eq!(config.default_job_timeout, None);
    assert_eq!(
        config.secret_file_dirs,
        vec![
            PathBuf::from("/run/secrets"),
            PathBuf::from("/var/run/secrets")
        ]
    );
    assert!(config.trusted_proxies.is_empty());
    assert!(!config.metrics.public);

    let worker = &config.worker;
    assert_eq!(worker.server_url, "http://localhost:8080");
    assert_eq!(worker.worker_name, "test-host");
    assert_eq!(worker.max_concurrent, 4);
    assert_eq!(worker.poll_interval_secs, 2);
    assert_eq!(worker.heartbeat_interval_secs, 5);
    assert_eq!(worker.kill_grace_secs, 10);
    assert_eq!(worker.shutdown_grace_secs, 60);
    assert_eq!(
        worker.workspace_cache_dir,
        PathBuf::from("./stroem-data/workspace-cache")
    );
    assert_eq!(worker.capabilities, vec![Capability::Script]);
    assert!(worker.tags.is_empty());
    assert!(
        worker
            .runner_image
            .starts_with("ghcr.io/fremvaerk/stroem-runner:")
    );
    assert!(worker.docker.is_none() && worker.kubernetes.is_none());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(config.refused_secret_files().is_empty());
}

#[test]
fn a_local_workspace_directory_becomes_the_default_workspace() {
    let setup = Setup::new(None).file("workspace/.workflows/a.yaml", "actions: {}\n");
    let config = setup.ok();
    let Some(WorkspaceConfig::Folder {
        path,
        poll_interval_secs,
    }) = config.workspaces.get("default")
    else {
        panic!("expected a folder workspace: {:?}", config.workspaces);
    };
    assert_eq!(path, &PathBuf::from("./workspace"));
    assert_eq!(*poll_interval_secs, 30);
}

/// `server-config.yaml` of the earlier release (seed README), unchanged.
const LEGACY_SERVER: &str = r#"listen: "0.0.0.0:8080"
db:
  url: "postgres://stroem:stroem@localhost:5432/stroem"
log_storage:
  local_dir: /tmp/stroem/logs
workspaces:
  default:
    type: folder
    path: ./workspace
  # Add more workspaces:
  # data-team:
  #   type: git
  #   url: https://github.com/org/data-workflows.git
  #   ref: main
  #   poll_interval_secs: 60
worker_token: "dev-worker-token-change-in-production"
# Optional: enable authentication
# auth:
#   jwt_secret: "your-jwt-secret"
#   refresh_secret: "your-refresh-secret"
"#;

/// `worker-config.yaml` of the earlier release (seed README), unchanged.
const LEGACY_WORKER: &str = r#"server_url: "http://localhost:8080"
worker_token: "dev-worker-token-change-in-production"
worker_name: "worker-1"
max_concurrent: 4
poll_interval_secs: 2
workspace_cache_dir: "/tmp/stroem-workspace"
capabilities:
  - shell

# Optional: enable Docker runner (requires Docker daemon access)
# docker: {}
"#;

#[test]
fn legacy_server_config_loads_unchanged() {
    let config = Setup::new(Some(LEGACY_SERVER)).ok();
    assert_eq!(config.db.backend, DbBackend::Postgres);
    assert_eq!(
        config.db.url.expose(),
        "postgres://stroem:stroem@localhost:5432/stroem"
    );
    assert_eq!(
        config.log_storage.local_dir,
        PathBuf::from("/tmp/stroem/logs")
    );
    assert!(matches!(
        config.workspaces.get("default"),
        Some(WorkspaceConfig::Folder { path, poll_interval_secs: 30 }) if path == &PathBuf::from("./workspace")
    ));
    assert_eq!(
        config.worker_token.as_ref().map(Secret::expose),
        Some("dev-worker-token-change-in-production")
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn legacy_worker_config_loads_unchanged() {
    let config = Setup::new(Some(LEGACY_WORKER)).ok();
    let worker = &config.worker;
    assert_eq!(worker.server_url, "http://localhost:8080");
    assert_eq!(worker.worker_name, "worker-1");
    assert_eq!(
        worker.workspace_cache_dir,
        PathBuf::from("/tmp/stroem-workspace")
    );
    assert_eq!(worker.capabilities, vec![Capability::Script]);
    assert!(config.require_worker_token().is_ok());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn environment_overrides_the_file_and_matches_map_keys_loosely() {
    let yaml = "workspaces:\n  data-team:\n    type: git\n    url: https://git.example.com/d.git\n\
                worker_token_file: /nonexistent/token\nmax_concurrent: 2\n";
    let config = Setup::new(Some(yaml))
        .env("STROEM__DB__URL", "postgresql://u:p#1@db/stroem")
        .env("STROEM__WORKSPACES__DATA_TEAM__REF", "release")
        .env("STROEM__WORKSPACES__OPS__PATH", "/srv/ops")
        .env("STROEM__max_Concurrent", "8")
        .env("STROEM__TAGS", "[deploy, gpu]")
        .env("STROEM__CAPABILITIES", "shell")
        .env("STROEM__DEFAULT_JOB_TIMEOUT", "2h30m")
        .env("STROEM__WORKER_TOKEN", "0123456789abcdef0123456789abcdef")
        .env("STROEM__EMBEDDED_WORKER", "false")
        .env("STROEM_URL", "http://not-a-config-key")
        .ok();
    assert_eq!(config.db.url.expose(), "postgresql://u:p#1@db/stroem");
    assert_eq!(config.db.backend, DbBackend::Postgres);
    let names: Vec<&str> = config.workspaces.keys().map(String::as_str).collect();
    assert_eq!(names, ["data-team", "ops"]);
    assert!(matches!(
        config.workspaces.get("data-team"),
        Some(WorkspaceConfig::Git { git_ref, poll_interval_secs: 60, auth: None, .. }) if git_ref == "release"
    ));
    assert!(matches!(
        config.workspaces.get("ops"),
        Some(WorkspaceConfig::Folder { path, .. }) if path == &PathBuf::from("/srv/ops")
    ));
    assert_eq!(config.worker.max_concurrent, 8);
    assert_eq!(config.worker.tags, ["deploy", "gpu"]);
    assert_eq!(config.worker.capabilities, vec![Capability::Script]);
    assert_eq!(config.default_job_timeout, Some(Duration(9000)));
    // The variable replaced the file's `worker_token_file`, whose file does not exist.
    assert_eq!(
        config.worker_token.as_ref().map(Secret::expose),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert!(!config.embedded_worker);
    assert!(config.refused_secret_files().is_empty());
}

#[test]
fn an_empty_variable_unsets_the_key() {
    let config = Setup::new(Some("max_concurrent: 2\n"))
        .env("STROEM__MAX_CONCURRENT", "")
        .ok();
    assert_eq!(config.worker.max_concurrent, 4);
}

#[test]
fn the_file_is_found_by_flag_then_variable_then_working_directory() {
    let setup = Setup::new(Some("max_concurrent: 1\n"))
        .file("from-env.yaml", "max_concurrent: 2\n")
        .file("from-flag.yaml", "max_concurrent: 3\n");
    assert_eq!(setup.ok().worker.max_concurrent, 1);
    let setup = setup.env("STROEM_CONFIG", "from-env.yaml");
    assert_eq!(setup.ok().worker.max_concurrent, 2);
    let mut source = setup.source();
    source.config = Some(PathBuf::from("from-flag.yaml"));
    let config = Config::load(source).expect("loads");
    assert_eq!(config.worker.max_concurrent, 3);

    let mut missing = setup.source();
    missing.config = Some(PathBuf::from("absent.yaml"));
    let error = Config::load(missing).expect_err("a named file must exist");
    assert!(error.to_string().contains("absent.yaml"), "{error}");
}

#[test]
fn secret_files_are_read_with_one_trailing_newline_dropped() {
    let yaml = "worker_token_file: secrets/token\nauth:\n  jwt_secret_file: secrets/jwt\n  \
                refresh_secret: refresh\n  initial_user: {email: a@b.c, password_file: secrets/pw}\n";
    let setup = Setup::new(Some(yaml))
        .file("secrets/token", "short-token\n\n")
        .file("secrets/jwt", "0123456789abcdef0123456789abcdef\n")
        .file("secrets/pw", "pass word\r\n");
    let config = setup.ok();
    assert_eq!(
        config.worker_token.as_ref().map(Secret::expose),
        Some("short-token\n")
    );
    let auth = config.auth.as_ref().expect("auth is on");
    assert_eq!(auth.jwt_secret.expose(), "0123456789abcdef0123456789abcdef");
    assert_eq!(auth.access_token_ttl, Duration(900));
    assert_eq!(auth.refresh_token_ttl, Duration(30 * 86_400));
    let user = auth.initial_user.as_ref().expect("initial user");
    assert_eq!(user.password.expose(), "pass word");
    let canonical = setup.path().canonicalize().expect("canonical");
    let expected: Vec<PathBuf> = ["token", "jwt", "pw"]
        .iter()
        .map(|name| canonical.join("secrets").join(name))
        .collect();
    let mut refused = config.refused_secret_files().to_vec();
    refused.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(refused, expected_sorted);
    assert_eq!(
        config.warnings,
        ["stroem.yaml:1:1: 'worker_token' is shorter than 32 characters; use a long random value"]
    );
}

#[test]
fn debug_output_never_shows_a_secret() {
    let yaml = r#"
worker_token: SECRET-worker-token-0123456789abcdef
db: {url: "postgres://user:SECRET-db@h/db"}
workspaces:
  a: {type: git, url: "https://x/y.git", auth: {type: token, token: SECRET-git}}
  b: {type: git, url: "ssh://x/y.git", auth: {type: ssh_key, key: SECRET-key}}
auth:
  jwt_secret: SECRET-jwt-0123456789abcdef0123456789
  refresh_secret: SECRET-refresh
  base_url: https://stroem.example.com
  providers:
    sso: {provider_type: oidc, issuer_url: "https://i", client_id: c, client_secret: SECRET-oidc}
  initial_user: {email: a@b.c, password: SECRET-password}
metrics: {token: SECRET-metrics}
"#;
    let config = Setup::new(Some(yaml)).ok();
    let debug = format!("{config:?}");
    assert!(!debug.contains("SECRET"), "{debug}");
    assert_eq!(debug.matches("***").count(), 9, "{debug}");
    let Some(WorkspaceConfig::Git {
        auth: Some(GitAuth::Token { token, username }),
        ..
    }) = config.workspaces.get("a")
    else {
        panic!("token auth expected");
    };
    assert_eq!(token.expose(), "SECRET-git");
    assert_eq!(username, "x-access-token");
    let secret = Secret::new("hidden");
    assert_eq!(format!("{secret} {secret:?}"), "*** ***");
}

#[test]
fn docker_and_kubernetes_sections_add_default_capabilities() {
    let yaml = "docker: {}\nkubernetes: {namespace: jobs}\nworkspace_dir: /cache\n";
    let config = Setup::new(Some(yaml)).ok();
    assert_eq!(
        config.worker.capabilities,
        vec![
            Capability::Script,
            Capability::Docker,
            Capability::Kubernetes
        ]
    );
    assert_eq!(config.worker.workspace_cache_dir, PathBuf::from("/cache"));
    insta::assert_debug_snapshot!(config.warnings);
}

#[test]
fn capability_words_in_tags_are_capabilities_not_tags() {
    // API §10.2: capability words in `tags` count as capabilities. Kept as tags they would
    // reach the server, which reads them as capabilities the worker cannot honour.
    let yaml = "tags: [deploy, docker, shell, kubernetes, deploy]\n";
    let config = Setup::new(Some(yaml)).ok();
    assert_eq!(
        config.worker.capabilities,
        vec![
            Capability::Script,
            Capability::Docker,
            Capability::Kubernetes
        ]
    );
    assert_eq!(config.worker.tags, vec!["deploy".to_owned()]);
    // Both are capabilities of this version, registered when their runner can run steps.
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn serve_flags_override_keys_and_move_derived_paths() {
    let yaml = "log_storage: {local_dir: /var/log/stroem}\nworkspaces:\n  a: {type: folder, path: /a}\n  b: {type: folder, path: /b}\n";
    let mut config = Setup::new(Some(yaml)).ok();
    config.apply_serve_flags(
        Some("127.0.0.1:9000".parse().expect("address")),
        Some(PathBuf::from("/data")),
        Some(PathBuf::from("/ws")),
        true,
    );
    assert_eq!(config.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(config.data_dir, PathBuf::from("/data"));
    assert_eq!(config.db.url.expose(), "sqlite:///data/stroem.db");
    assert_eq!(
        config.log_storage.local_dir,
        PathBuf::from("/var/log/stroem")
    );
    assert_eq!(
        config.worker.workspace_cache_dir,
        PathBuf::from("/data/workspace-cache")
    );
    let names: Vec<&str> = config.workspaces.keys().map(String::as_str).collect();
    assert_eq!(names, ["default"]);
    assert!(matches!(
        config.workspaces.get("default"),
        Some(WorkspaceConfig::Folder { path, .. }) if path == &PathBuf::from("/ws")
    ));
    assert!(!config.embedded_worker);
}

#[test]
fn work_flags_override_keys_only_when_given() {
    let mut config = Setup::new(Some("server_url: https://a.example\n")).ok();
    config
        .apply_work_flags(None, None, None)
        .expect("no flags is fine");
    assert_eq!(config.worker.server_url, "https://a.example");
    config
        .apply_work_flags(Some("http://b:8080".into()), Some("w9".into()), Some(16))
        .expect("valid flags");
    assert_eq!(config.worker.server_url, "http://b:8080");
    assert_eq!(config.worker.worker_name, "w9");
    assert_eq!(config.worker.max_concurrent, 16);
    assert!(config.require_worker_token().is_err());
    let error = config
        .apply_work_flags(Some("b:8080".into()), Some(" ".into()), Some(0))
        .expect_err("invalid flags");
    insta::assert_snapshot!(error.to_string());
}

#[test]
fn data_dir_from_the_environment_moves_the_defaults() {
    let setup = Setup::new(None).env("STROEM__DATA_DIR", "/srv/stroem");
    let config = Config::load(ConfigSource {
        cwd: setup.path().to_path_buf(),
        ..setup.source()
    })
    .expect("loads");
    assert_eq!(config.db.url.expose(), "sqlite:///srv/stroem/stroem.db");
    assert_eq!(
        config.log_storage.local_dir,
        PathBuf::from("/srv/stroem/logs")
    );
}

#[test]
fn the_default_listen_address_follows_auth_and_exposure_is_warned() {
    let with_auth = Setup::new(Some(
        "auth: {jwt_secret: 0123456789abcdef0123456789abcdef, refresh_secret: r}\n",
    ))
    .ok();
    assert_eq!(
        with_auth.listen,
        "0.0.0.0:8080".parse::<SocketAddr>().expect("address")
    );
    assert_eq!(with_auth.exposure_warning(), None);

    let exposed = Setup::new(Some("listen: 0.0.0.0:9000\n")).ok();
    let warning = exposed.exposure_warning().expect("a warning");
    assert!(
        warning.contains("0.0.0.0:9000") && warning.contains("authentication off"),
        "{warning}"
    );
    let by_env = Setup::new(None).env("STROEM__LISTEN", "0.0.0.0:9999").ok();
    assert!(by_env.exposure_warning().is_some());
    let mut flagged = Setup::new(None).ok();
    flagged.apply_serve_flags(
        Some("10.1.2.3:80".parse().expect("address")),
        None,
        None,
        false,
    );
    assert!(flagged.exposure_warning().is_some());
    let local = Setup::new(Some("listen: \"[::1]:8080\"\n")).ok();
    assert_eq!(local.exposure_warning(), None);
}

#[test]
fn a_short_jwt_secret_is_a_warning_and_acl_rules_are_read() {
    let yaml = "auth:
  jwt_secret: your-jwt-secret
  refresh_secret: r
  acl:
    default: view
    rules:
      - {workspace: prod, tasks: [deploy-*], groups: [ops], allow: run}
      - {users: [Ada@Example.com], allow: none}
trusted_proxies: [10.0.0.0/8, 192.0.2.1]
";
    let config = Setup::new(Some(yaml)).ok();
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("'auth.jwt_secret' is shorter than 32")),
        "{:?}",
        config.warnings
    );
    let acl = &config.auth.as_ref().expect("auth").acl;
    assert_eq!(acl.default, crate::config::Access::View);
    assert_eq!(acl.rules.len(), 2);
    assert_eq!(acl.rules[0].tasks, ["deploy-*"]);
    assert_eq!(acl.rules[1].workspace, "*");
    assert_eq!(acl.rules[1].users, ["ada@example.com"]);
    assert_eq!(config.trusted_proxies.len(), 2);
    assert!(
        config.trusted_proxies[1].contains(&"192.0.2.1".parse::<std::net::IpAddr>().expect("ip"))
    );
}

#[test]
fn bad_acl_rules_and_proxies_name_their_key() {
    let yaml = "auth:
  jwt_secret: 0123456789abcdef0123456789abcdef
  refresh_secret: r
  acl:
    default: everything
    rules:
      - {workspace: prod, task: [x], allow: run}
      - {groups: [bad group], allow: maybe}
      - {tasks: [y]}
      - just-a-string
trusted_proxies: [not-an-address]
";
    let error = Setup::new(Some(yaml)).error();
    for expected in [
        "'auth.acl.default' must be one of none, view, run, found 'everything'",
        "unknown key 'auth.acl.rules[0].task'; did you mean 'auth.acl.rules[0].tasks'?",
        "'auth.acl.rules[1].groups': invalid group name 'bad group'",
        "'auth.acl.rules[1].allow' must be one of none, view, run, found 'maybe'",
        "'auth.acl.rules[2].allow' is required",
        "'auth.acl.rules[3]' must be a map",
        "'trusted_proxies[0]' must be an IP address or a network",
    ] {
        assert!(
            error.contains(expected),
            "missing {expected:?} in:\n{error}"
        );
    }
}

#[test]
fn every_secret_read_is_a_credential_kept_from_steps() {
    let config = Setup::new(Some(
        "db: {url: \"postgres://app:pg-pass-4e1d@db/stroem\"}\n\
         auth:\n  base_url: \"https://stroem.example\"\n  refresh_secret_file: refresh\n  providers:\n    sso:\n      provider_type: oidc\n      \
         issuer_url: \"https://idp.example\"\n      client_id: stroem\n      client_secret: oidc-client-9f3c\n",
    ))
    .file("refresh", "refresh-secret-0123456789abcdef01234567\n")
    .env("STROEM__AUTH__JWT_SECRET", "jwt-secret-0123456789abcdef0123456789")
    .env("STROEM__WORKER_TOKEN", "worker-token-0123456789abcdef012345")
    .ok();
    let environment: std::collections::BTreeMap<String, String> = [
        (
            "STROEM__AUTH__JWT_SECRET",
            "jwt-secret-0123456789abcdef0123456789",
        ),
        ("JWT_COPY", "jwt-secret-0123456789abcdef0123456789"),
        ("REFRESH_COPY", "refresh-secret-0123456789abcdef01234567"),
        ("OIDC_SECRET", "oidc-client-9f3c"),
        ("PGPASSWORD", "pg-pass-4e1d"),
        ("DATABASE_URL", "postgres://app:pg-pass-4e1d@db/stroem"),
        ("TOKEN_COPY", "worker-token-0123456789abcdef012345"),
        ("HOME", "/home/stroem"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let kept = config.credentials.scrub(&environment);
    assert_eq!(kept.keys().collect::<Vec<_>>(), ["HOME"], "{kept:?}");
    let masker = config.credentials.masker();
    assert!(masker.matches("password pg-pass-4e1d"));
    assert!(!format!("{:?}", config.credentials).contains("pg-pass"));
}
