//! Unknown keys and invalid values: every problem reported at once, each with its origin.

use super::Setup;

#[test]
fn unknown_keys_in_the_file_and_the_environment_are_reported_with_suggestions() {
    let yaml = "\
db:
  max_conections: 5
workspaces:
  default:
    type: folder
    pth: ./workspace
auth:
  jwt_secret: 0123456789abcdef0123456789abcdef
  refresh_secret: r
  providers:
    local: {provider_type: internal, display_nam: Local}
max_concurent: 3
totally_unrelated: 1
";
    let setup = Setup::new(Some(yaml))
        .env("STROEM__AUTH__JWT_SECRT", "x")
        .env("STROEM__LISTEN__PORT", "1")
        .env("STROEM__DB____URL", "x")
        .env("STROEM__WORKSPACES__DEFAULT__REFF", "main");
    insta::assert_snapshot!(setup.error());
}

#[test]
fn invalid_values_name_their_key() {
    let yaml = "\
listen: localhost:80
db: {url: mysql://root:hunter2@db/x, max_connections: 0}
workspaces:
  bad.name: {type: folder, path: /x}
  git-one: {type: git, path: /x, ref: dev}
  folder-one: {type: folder, url: https://x}
  cloud: {type: svn, url: x}
  creds: {type: git, url: https://x, auth: {type: token}}
auth:
  jwt_secret: too-short
  access_token_ttl: 1x
recovery: {heartbeat_timeout_secs: 5, sweep_interval_secs: 0, unmatched_step_timeout_secs: -1}
default_step_timeout: 25h
default_job_timeout: 8d
secret_file_dirs: [relative/dir]
log_level: verbose
log_format: jsn
capabilities: [script, dockr]
embedded_worker: maybe
server_url: localhost:8080
kubernetes: {}
";
    let setup = Setup::new(Some(yaml));
    insta::assert_snapshot!(setup.error());
}

#[test]
fn a_secret_and_its_file_variant_cannot_both_be_set() {
    let setup = Setup::new(Some(
        "worker_token: abc\nworker_token_file: token\ndb: {url_file: missing-file}\n",
    ))
    .file("token", "abc\n");
    insta::assert_snapshot!(setup.error());
}

#[test]
fn yaml_syntax_errors_are_problems_with_a_location() {
    let setup = Setup::new(Some("listen: [unclosed\n"));
    insta::assert_snapshot!(setup.error());
}

#[test]
fn invalid_environment_values_name_the_variable() {
    let setup = Setup::new(None)
        .env("STROEM__MAX_CONCURRENT", "many")
        .env("STROEM__TAGS", "[unclosed")
        .env("STROEM__WORKSPACES__X", "[1, 2]");
    insta::assert_snapshot!(setup.error());
}

#[test]
fn keys_inside_an_environment_map_value_are_checked_too() {
    let setup = Setup::new(None).env("STROEM__DOCKER", "{hots: tcp://x, pull_policy: never}");
    let error = setup.error();
    assert!(
        error.contains(
            "environment variable STROEM__DOCKER: unknown key 'docker.hots'; did you mean 'docker.host'?"
        ),
        "{error}"
    );
}

#[test]
fn both_spellings_of_a_secret_in_the_environment_are_an_error() {
    let setup = Setup::new(Some("auth: {jwt_secret: in-the-file, refresh_secret: r}\n"))
        .file("jwt", "0123456789abcdef0123456789abcdef\n")
        .env("STROEM__AUTH__JWT_SECRET_FILE", "jwt")
        .env("STROEM__WORKER_TOKEN", "a")
        .env("STROEM__WORKER_TOKEN_FILE", "jwt");
    let error = setup.error();
    assert!(
        error.contains(
            "environment variable STROEM__WORKER_TOKEN_FILE: set only one of 'worker_token' and 'worker_token_file'"
        ),
        "{error}"
    );
    // The file's inline `jwt_secret` gave way to the variable's `jwt_secret_file`.
    assert!(!error.contains("jwt_secret"), "{error}");
}
