//! `stroem.example.yaml` loads (that it shows every key is checked in
//! `tests/it/config_example.rs`).

use std::path::PathBuf;

use super::Setup;
use crate::config::{Capability, DbBackend, WorkspaceConfig};
use crate::workflow::model::Duration;

fn example_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/stroem.example.yaml");
    std::fs::read_to_string(path).expect("stroem.example.yaml is readable")
}

/// The `*_file` secrets the example reads from `/run/secrets`.
const SECRET_FILES: [(&str, &str); 8] = [
    ("worker_token", "worker-token-0123456789abcdef0123456789"),
    ("jwt", "jwt-secret-0123456789abcdef0123456789"),
    ("refresh", "refresh-secret"),
    ("git_token", "git-token"),
    ("data_team_hook", "data-team-push-hook-secret"),
    ("oidc_client_secret", "client-secret"),
    ("admin_pw", "admin-password"),
    ("metrics_token", "metrics-token"),
];

#[test]
fn the_example_configuration_loads() {
    // The example points its secrets at /run/secrets; here they live in the test directory.
    let mut setup = Setup::new(None);
    let secrets = setup.path().join("secrets");
    let text = example_text().replace("/run/secrets/", &format!("{}/", secrets.display()));
    setup = setup.file("stroem.yaml", &text);
    for (name, value) in SECRET_FILES {
        setup = setup.file(&format!("secrets/{name}"), &format!("{value}\n"));
    }
    let config = setup.ok();

    assert_eq!(config.db.backend, DbBackend::Postgres);
    let names: Vec<&str> = config.workspaces.keys().map(String::as_str).collect();
    assert_eq!(names, ["default", "data-team", "platform"]);
    assert!(matches!(
        config.workspaces.get("platform"),
        Some(WorkspaceConfig::Git { git_ref, .. }) if git_ref == "main"
    ));
    let auth = config.auth.as_ref().expect("auth is on");
    assert_eq!(auth.refresh_secret.expose(), "refresh-secret");
    assert_eq!(auth.access_token_ttl, Duration(900));
    assert_eq!(config.default_job_timeout, Some(Duration(6 * 3600)));
    assert_eq!(
        config.worker.capabilities,
        vec![Capability::Script, Capability::Docker]
    );
    assert_eq!(
        config.worker.workspace_cache_dir,
        PathBuf::from("./stroem-data/workspace-cache")
    );
    assert_eq!(config.refused_secret_files().len(), SECRET_FILES.len());
    insta::assert_debug_snapshot!(config.warnings);
}
