//! `stroem.example.yaml` documents every configuration key of API §10.2. This test keeps it
//! from going stale: the file must be valid YAML and show each key of the loader's key table
//! ([`stroem::config::keys`], the one list of keys, which also rejects unknown keys at
//! start-up). That the example *loads* is tested next to the loader (`src/config/tests`).

use serde_yaml::Value;
use stroem::config::keys::{ROOT, leaf_paths};

/// Leaves the example may show only in a comment, because it demonstrates an alternative.
const SHOWN_IN_COMMENTS: &[&str] = &[
    // `key` is the inline alternative to `key_path`; one ssh_key auth takes only one of them.
    "workspaces.*.auth.key",
];

fn example_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/stroem.example.yaml");
    std::fs::read_to_string(path).expect("stroem.example.yaml is readable")
}

fn example() -> Value {
    serde_yaml::from_str(&example_text()).expect("stroem.example.yaml is valid YAML")
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
    let missing: Vec<String> = leaf_paths()
        .into_iter()
        .filter(|(path, _)| !SHOWN_IN_COMMENTS.contains(&path.as_str()))
        .filter(|(path, secret)| {
            let segments: Vec<&str> = path.split('.').collect();
            !has_path(&example, &segments, *secret)
        })
        .map(|(path, _)| path)
        .collect();
    assert!(
        missing.is_empty(),
        "stroem.example.yaml lacks these keys: {missing:?}"
    );
    let text = example_text();
    for path in SHOWN_IN_COMMENTS {
        let last = path.rsplit('.').next().unwrap_or(path);
        assert!(
            text.contains(&format!("`{last}`")),
            "no comment shows {path}"
        );
    }
}

#[test]
fn example_config_has_no_key_outside_the_table() {
    // The reverse direction: a top-level key in the example that the table does not define is
    // a typo or a stale key. (Loading the example checks every level.)
    let example = example();
    let Value::Mapping(map) = &example else {
        panic!("the example's top level must be a mapping");
    };
    let known: Vec<String> = ROOT.iter().flat_map(|key| key.spellings()).collect();
    let unknown: Vec<&str> = map
        .keys()
        .filter_map(Value::as_str)
        .filter(|key| !known.iter().any(|known| known == key))
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

#[test]
fn the_key_table_covers_the_keys_of_api_10_2() {
    // A sample of keys from every part of the table, so that a key dropped from the table by
    // mistake (and so from the example check above) is noticed.
    let paths: Vec<String> = leaf_paths().into_iter().map(|(path, _)| path).collect();
    for key in [
        "data_dir",
        "db.url",
        "log_storage.s3.endpoint",
        "workspaces.*.auth.username",
        "auth.providers.*.client_secret",
        "auth.initial_user.password",
        "recovery.unmatched_step_timeout_secs",
        "metrics.token",
        "workspace_cache_dir",
        "kubernetes.init_image",
    ] {
        assert!(paths.iter().any(|path| path == key), "{key} is missing");
    }
}
