//! `cargo xtask oidc`: the real OpenID provider the OIDC tests sign in through
//! (`tests/it/auth/oidc.rs`) — the npm package `oidc-provider@9`, installed once into
//! `<target dir>/oidc-provider`, where the tests find it (or through `STROEM_TEST_OIDC_DIR`,
//! which `cargo xtask test` sets). Idempotent: a warm cache costs nothing.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::process::{repo_root, run};

/// The package and major version the tests were written against.
const PACKAGE: &str = "oidc-provider@9";

/// The variable that tells the tests where the provider is installed.
pub const DIR_VAR: &str = "STROEM_TEST_OIDC_DIR";

/// `<target dir>/oidc-provider`.
fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        repo_root().join(target)
    };
    target.join("oidc-provider")
}

/// Installs the provider when it is missing; returns the folder holding its `node_modules`.
pub fn prepare() -> Result<PathBuf> {
    let dir = dir();
    if dir
        .join("node_modules/oidc-provider/package.json")
        .is_file()
    {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let manifest = dir.join("package.json");
    if !manifest.is_file() {
        std::fs::write(&manifest, "{\"private\": true, \"type\": \"module\"}\n")
            .with_context(|| format!("cannot write {}", manifest.display()))?;
    }
    run(std::process::Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            PACKAGE,
        ])
        .current_dir(&dir))?;
    Ok(dir)
}
