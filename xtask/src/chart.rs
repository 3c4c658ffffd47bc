//! `cargo xtask test-chart`: the Helm chart's tests, `charts/tests/test_chart.py`, run by the
//! tools venv's Python (helm-python-sdk and kubernetes-validate, see `venv.rs`).

use std::process::Command;

use anyhow::Result;

use crate::process::{repo_root, run};
use crate::venv;

pub fn test_chart() -> Result<()> {
    let bin = venv::tools(venv::TEST_TOOLS)?;
    run(Command::new(bin.join("python"))
        .arg(repo_root().join("charts/tests/test_chart.py"))
        .current_dir(repo_root()))
}
