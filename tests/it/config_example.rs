//! `stroem.example.yaml` documents every configuration key of API §10.2. This test keeps it
//! from going stale: the file must be valid YAML and contain each key listed here. When a key
//! is added to the configuration, add it to [`KEYS`] and to the example.

use serde_yaml::Value;

/// Every key of API §10.2 as a dotted path. `*` matches any entry of a map (for
/// `workspaces.<name>` and `auth.providers.<id>`); the path must exist under at least one.
/// Sub-keys documented in the table's notes are listed too.
const KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "db.url",
    "db.max_connections",
    "log_storage.local_dir",
    "log_storage.s3.bucket",
    "log_storage.s3.region",
    "log_storage.s3.prefix",
    "log_storage.s3.endpoint",
    "workspaces.*.type",
    "workspaces.*.path",
    "workspaces.*.url",
    "workspaces.*.ref",
    "workspaces.*.poll_interval_secs",
    "workspaces.*.auth.type",
    "workspaces.*.auth.key_path",
    "workspaces.*.auth.token",
    "workspaces.*.auth.username",
    "worker_token",
    "embedded_worker",
    "auth.jwt_secret",
    "auth.refresh_secret",
    "auth.base_url",
    "auth.access_token_ttl",
    "auth.refresh_token_ttl",
    "auth.providers.*.provider_type",
    "auth.providers.*.display_name",
    "auth.providers.*.issuer_url",
    "auth.providers.*.client_id",
    "auth.providers.*.client_secret",
    "auth.providers.*.default_groups",
    "auth.initial_user.email",
    "auth.initial_user.password",
    "recovery.heartbeat_timeout_secs",
    "recovery.sweep_interval_secs",
    "recovery.unmatched_step_timeout_secs",
    "default_step_timeout",
    "default_job_timeout",
    "secret_file_dirs",
    "trusted_proxies",
    "retention.job_days",
    "retention.worker_hours",
    "retention.interval_secs",
    "metrics.public",
    "metrics.token",
    "log_level",
    "log_format",
    "server_url",
    "worker_name",
    "max_concurrent",
    "poll_interval_secs",
    "heartbeat_interval_secs",
    "kill_grace_secs",
    "shutdown_grace_secs",
    "workspace_cache_dir",
    "capabilities",
    "tags",
    "runner_image",
    "docker.host",
    "docker.pull_policy",
    "kubernetes.namespace",
    "kubernetes.init_image",
];

/// The 🔒 keys of API §10.2 (by their last segment): each may appear as `<key>_file`, the form
/// a deployment should use, and the example does.
const SECRET_KEYS: &[&str] = &[
    "db.url",
    "workspaces.*.auth.token",
    "worker_token",
    "auth.jwt_secret",
    "auth.refresh_secret",
    "auth.providers.*.client_secret",
    "auth.initial_user.password",
    "metrics.token",
];

fn example() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/stroem.example.yaml");
    let text = std::fs::read_to_string(path).expect("stroem.example.yaml is readable");
    serde_yaml::from_str(&text).expect("stroem.example.yaml is valid YAML")
}

/// Whether `value` has the (possibly wildcarded) `path`; a secret's last segment may carry
/// the `_file` suffix.
fn has_path(value: &Value, path: &[&str], secret: bool) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    let Value::Mapping(map) = value else {
        return false;
    };
    if *first == "*" {
        return map.values().any(|child| has_path(child, rest, secret));
    }
    let mut candidates = vec![(*first).to_owned()];
    if secret && rest.is_empty() {
        candidates.push(format!("{first}_file"));
    }
    candidates
        .iter()
        .filter_map(|key| map.get(key.as_str()))
        .any(|child| has_path(child, rest, secret))
}

#[test]
fn example_config_documents_every_key() {
    let example = example();
    let missing: Vec<&str> = KEYS
        .iter()
        .copied()
        .filter(|key| {
            let path: Vec<&str> = key.split('.').collect();
            !has_path(&example, &path, SECRET_KEYS.contains(key))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "stroem.example.yaml lacks these keys: {missing:?}"
    );
}

#[test]
fn example_config_has_no_key_outside_the_list() {
    // The reverse direction: a key in the example that API §10.2 does not define is a typo or
    // a stale key. Only fixed (non-wildcard) top-level keys are compared here.
    let example = example();
    let Value::Mapping(map) = &example else {
        panic!("the example's top level must be a mapping");
    };
    let known: Vec<String> = KEYS
        .iter()
        .map(|key| key.split('.').next().unwrap_or(key).to_owned())
        .collect();
    let unknown: Vec<String> = map
        .keys()
        .filter_map(Value::as_str)
        .map(|key| key.strip_suffix("_file").unwrap_or(key).to_owned())
        .filter(|key| !known.contains(key))
        .collect();
    assert!(unknown.is_empty(), "keys not in API §10.2: {unknown:?}");
}

#[test]
fn path_matching_follows_wildcards_and_file_variants() {
    let value: Value = serde_yaml::from_str(
        "workspaces: {a: {type: folder}, b: {auth: {token_file: /t}}}\nworker_token_file: /w\n",
    )
    .expect("valid YAML");
    assert!(has_path(&value, &["workspaces", "*", "type"], false));
    assert!(has_path(
        &value,
        &["workspaces", "*", "auth", "token"],
        true
    ));
    assert!(!has_path(
        &value,
        &["workspaces", "*", "auth", "token"],
        false
    ));
    assert!(has_path(&value, &["worker_token"], true));
    assert!(!has_path(&value, &["workspaces", "*", "url"], false));
}
