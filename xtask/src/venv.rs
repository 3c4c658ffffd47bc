//! The Python tools xtask uses, in one venv: for the chart and image tests `helm-python-sdk`
//! (Helm's own library: lint, values schema, rendering — no helm binary), `kubernetes-validate`
//! (the Kubernetes schemas, offline) and `podman-compose` (Debian's 1.0.3 cannot run a service
//! on the host network), and for the Rust tests `prometheus-client` (the Prometheus project's
//! text-format parser, which the `/metrics` test reads the exposition with); for cross builds
//! (`dist --target` another architecture) `ziglang` and `cargo-zigbuild`, whose zig is a C
//! compiler and linker with musl headers for every target.
//!
//! The venv lives under `$STROEM_TOOLS_VENV`, else `/var/cache/stroem/tools-venv`, and is made
//! or completed only when it lacks a package at its pinned version, so a warm run costs a
//! fraction of a second.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::process::{probe, run};

/// The test tools, pinned; a version change here is installed on the next run.
pub const TEST_TOOLS: &[&str] = &[
    "helm-python-sdk==0.2.2",
    "kubernetes-validate==1.37.0",
    "podman-compose==1.6.0",
    "prometheus-client==0.26.0",
];

/// The cross-build tools, pinned.
pub const CROSS_TOOLS: &[&str] = &["ziglang==0.17.0", "cargo-zigbuild==0.24.0"];

/// Exits non-zero when a package of argv is missing or at another version.
const VERSION_CHECK: &str = "\
import importlib.metadata as m, sys
def installed(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
sys.exit(any(installed(n) != v for n, v in (p.split('==') for p in sys.argv[1:])))";

/// The venv's `bin` directory, after making sure `packages` are installed.
pub fn tools(packages: &[&str]) -> Result<PathBuf> {
    let venv = match std::env::var_os("STROEM_TOOLS_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/var/cache/stroem/tools-venv"),
    };
    let bin = venv.join("bin");
    let python = bin.join("python");
    let complete = python.is_file()
        && probe(
            Command::new(&python)
                .args(["-c", VERSION_CHECK])
                .args(packages),
        )
        .is_some();
    if !complete {
        if !python.is_file() {
            run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        }
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages))?;
    }
    Ok(bin)
}
