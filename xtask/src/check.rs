//! `cargo xtask test` and `cargo xtask lint`: the checks CI runs, in the same form a developer
//! runs them locally.
//!
//! Tests run under cargo-nextest when it is installed (one process per test, a clear summary),
//! otherwise under `cargo test`. Nextest cannot run doctests, so those always go through
//! `cargo test --doc`; they run first so that the last summary printed is the main run's.
//!
//! Tests and clippy build with `--all-features`, so the container runners (features `docker`
//! and `kubernetes`) are checked and tested, and one feature set is compiled for both (cargo
//! rebuilds the crate for each feature set it sees).

use std::ffi::OsString;

use anyhow::Result;

use crate::process::{cargo, probe, run};

/// Which test runner executes the workspace's test binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    Nextest,
    CargoTest,
}

impl Runner {
    /// Nextest when `cargo nextest` answers, else plain `cargo test`.
    pub fn detect() -> Runner {
        if probe(&mut cargo(["nextest", "--version"])).is_some() {
            Runner::Nextest
        } else {
            Runner::CargoTest
        }
    }

    /// Arguments for the main test run; `extra` (test filters, runner flags) comes last.
    fn args(self, extra: &[OsString]) -> Vec<OsString> {
        let base: &[&str] = match self {
            // Failures are reported together at the end rather than stopping at the first, so
            // one CI run shows every broken test.
            Runner::Nextest => &[
                "nextest",
                "run",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--no-fail-fast",
            ],
            Runner::CargoTest => &[
                "test",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--no-fail-fast",
            ],
        };
        let mut args: Vec<OsString> = base.iter().map(OsString::from).collect();
        if !extra.is_empty() {
            if self == Runner::CargoTest {
                // `cargo test` hands everything after `--` to the test harness (filters).
                args.push("--".into());
            }
            args.extend(extra.iter().cloned());
        }
        args
    }
}

/// Runs doctests, then every other test of the workspace. `extra` is passed to the main run
/// (a test name filter, for example).
/// The OIDC tests' identity provider is installed first and its place passed on, so they
/// sign in through a real one (they fail, never skip, without it).
pub fn test(extra: &[OsString]) -> Result<()> {
    let runner = Runner::detect();
    let oidc = crate::oidc::prepare()?;
    // The `/metrics` test parses the exposition with prometheus-client from this venv.
    let python = crate::venv::tools(crate::venv::TEST_TOOLS)?.join("python");
    if extra.is_empty() {
        run(&mut cargo([
            "test",
            "--workspace",
            "--all-features",
            "--doc",
        ]))?;
    }
    run(cargo(runner.args(extra))
        .env(crate::oidc::DIR_VAR, oidc)
        .env("STROEM_TEST_PYTHON", python))
}

/// Formatting and clippy with warnings denied, exactly as CI checks them.
pub fn lint() -> Result<()> {
    run(&mut cargo(["fmt", "--all", "--", "--check"]))?;
    run(&mut cargo([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn nextest_takes_filters_directly() {
        let args = Runner::Nextest.args(&["workflow::".into()]);
        assert_eq!(
            strings(args),
            [
                "nextest",
                "run",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--no-fail-fast",
                "workflow::"
            ]
        );
    }

    #[test]
    fn cargo_test_passes_filters_after_a_separator() {
        let args = Runner::CargoTest.args(&["workflow::".into()]);
        assert_eq!(
            strings(args),
            [
                "test",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--no-fail-fast",
                "--",
                "workflow::"
            ]
        );
        assert_eq!(
            strings(Runner::CargoTest.args(&[])),
            [
                "test",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--no-fail-fast"
            ]
        );
    }
}
