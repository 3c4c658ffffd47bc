//! `cargo xtask test-chart`: the Helm chart's tests, `charts/tests/test_chart.py`, in a Python
//! venv holding the PyPI packages `helm-python-sdk` (Helm's library: lint, values schema,
//! rendering; no helm binary) and `kubernetes-validate` (the Kubernetes schemas, offline).
//!
//! The venv lives under `$STROEM_CHART_VENV`, else `/var/cache/stroem/chart-venv`, and is made
//! or completed only when it cannot import both packages, so a warm run costs seconds.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::process::{probe, repo_root, run};

/// The pinned packages; a version change here is picked up on the next run.
const PACKAGES: &[&str] = &["helm-python-sdk==0.2.2", "kubernetes-validate==1.37.0"];

/// The check that the venv is complete: both packages at their pinned versions.
const IMPORT_CHECK: &str = "\
import importlib.metadata as m, sys
wanted = dict(p.split('==') for p in sys.argv[1:])
sys.exit(any(m.version(name) != version for name, version in wanted.items()))";

pub fn test_chart() -> Result<()> {
    let venv = venv_dir();
    let python = venv.join("bin").join("python");
    let complete = python.is_file()
        && probe(
            Command::new(&python)
                .args(["-c", IMPORT_CHECK])
                .args(PACKAGES),
        )
        .is_some();
    if !complete {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PACKAGES))?;
    }
    run(Command::new(&python)
        .arg(repo_root().join("charts/tests/test_chart.py"))
        .current_dir(repo_root()))
}

fn venv_dir() -> PathBuf {
    match std::env::var_os("STROEM_CHART_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/var/cache/stroem/chart-venv"),
    }
}
