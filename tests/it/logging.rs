//! The log format of `stroem serve` and `stroem work` (issue #17 item 8): `log_format: json` or
//! `--log-format json` writes one JSON object per line on stderr, the flag wins over the file,
//! and `text` (the default, API §10.2) stays human-readable.
//!
//! Each run starts the real binary on a port already taken, so it logs the configuration's
//! warning (a later-phase key), then fails to listen and exits: no waiting on a running server.

use std::net::TcpListener;

use serde_json::Value;

use crate::support::{Output, Stroem};

/// Runs `stroem serve` in a fresh folder whose `stroem.yaml` holds `extra`, on a taken port.
fn serve(extra: &str, flags: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    std::fs::write(
        dir.path().join("stroem.yaml"),
        format!("log_storage:\n  s3:\n    bucket: logs\n{extra}"),
    )
    .expect("write stroem.yaml");
    let output = Stroem::new()
        .args(["serve", "--no-worker", "--listen", &address])
        .args(flags)
        .current_dir(dir.path())
        .run();
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(output.stderr.contains("cannot listen"), "{}", output.stderr);
    assert!(!output.stderr.contains('\u{1b}'), "{:?}", output.stderr);
    output
}

/// The log line about `log_storage.s3`.
fn warning_line(output: &Output) -> &str {
    output
        .stderr
        .lines()
        .find(|line| line.contains("'log_storage.s3' (P3)"))
        .unwrap_or_else(|| panic!("no warning about log_storage.s3 in {}", output.stderr))
}

fn assert_json_warning(output: &Output) {
    let line: Value = serde_json::from_str(warning_line(output))
        .unwrap_or_else(|error| panic!("not a JSON line ({error}): {}", output.stderr));
    assert_eq!(line["level"], "WARN", "{line}");
    assert!(line["timestamp"].is_string(), "{line}");
    assert!(
        line["target"]
            .as_str()
            .is_some_and(|target| target.starts_with("stroem")),
        "{line}"
    );
    assert!(
        line["message"]
            .as_str()
            .is_some_and(|message| message.contains("is not supported in this version")),
        "{line}"
    );
}

#[test]
fn log_format_json_in_the_file_writes_json_lines() {
    assert_json_warning(&serve("log_format: json\n", &[]));
}

#[test]
fn the_log_format_flag_wins_over_the_file() {
    assert_json_warning(&serve("", &["--log-format", "json"]));
    let text = serve("log_format: json\n", &["--log-format", "text"]);
    let line = warning_line(&text);
    assert!(serde_json::from_str::<Value>(line).is_err(), "{line}");
    assert!(line.contains("WARN"), "{line}");
}

#[test]
fn text_is_the_default_and_a_wrong_format_names_the_key() {
    let text = serve("", &[]);
    assert!(serde_json::from_str::<Value>(warning_line(&text)).is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stroem.yaml"), "log_format: yaml\n").expect("write");
    let refused = Stroem::new()
        .args(["serve", "--no-worker"])
        .current_dir(dir.path())
        .run();
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("log_format"), "{}", refused.stderr);
    let flag = Stroem::new()
        .args(["work", "--log-format", "yaml"])
        .current_dir(dir.path())
        .run();
    assert_eq!(flag.code, 2, "{}", flag.stderr);
    assert!(flag.stderr.contains("--log-format"), "{}", flag.stderr);
}
