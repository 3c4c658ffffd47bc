//! `cargo xtask ui`, `serve` and `test-ui`, and the web half of `lint`: building the web UI in
//! `web/`, checking it and testing it.
//!
//! The built bundle (`web/dist`) is never committed. `build.rs` packs whatever is there into
//! the binary (text assets gzipped), so the order is always: build the UI, then the binary.
//! `cargo xtask serve` does both, rebuilding the UI only when a file under `web/` is newer than
//! the last build, which is what makes the README's first command give a working UI.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::pack;
use crate::process::{cargo, probe, repo_root, run};

/// The most the UI may add to the binary, gzip-compressed (issue #6).
pub const GZIP_LIMIT_BYTES: u64 = 1_500_000;

/// Entries of `web/` that are not inputs of the UI build.
const NOT_INPUTS: &[&str] = &["node_modules", "dist", "e2e", "test-results"];

fn web_dir() -> PathBuf {
    repo_root().join("web")
}

fn dist_dir() -> PathBuf {
    web_dir().join("dist")
}

/// An `npm` command run in `web/`.
fn npm<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new("npm");
    command.args(args).current_dir(web_dir());
    command
}

fn require_npm() -> Result<()> {
    if probe(&mut npm(["--version"])).is_none() {
        bail!(
            "npm was not found: the web UI needs Node.js 20.19 or newer with npm \
             (https://nodejs.org, or Debian's `nodejs` and `npm` packages)"
        );
    }
    Ok(())
}

/// `cargo xtask ui`: install the UI's dependencies, build it into `web/dist`, check its size.
pub fn ui() -> Result<()> {
    require_npm()?;
    install()?;
    run(&mut npm(["run", "build"]))?;
    let size = bundle_size(&dist_dir())?;
    eprintln!(
        "web UI: {} files, {} KiB, {} KiB gzip as embedded (limit {} KiB)",
        size.files,
        size.raw_bytes / 1024,
        size.gzip_bytes / 1024,
        GZIP_LIMIT_BYTES / 1024
    );
    check_size(&size)
}

/// `npm run lint` in `web/` (Prettier and the TypeScript checker). Skipped, with a note, when
/// the UI's dependencies are not installed: Rust-only work does not need Node.js, and CI runs
/// `cargo xtask ui` first.
pub fn lint() -> Result<()> {
    if !web_dir().join("node_modules").is_dir() {
        eprintln!("note: web/node_modules is missing; run `cargo xtask ui` to lint the web UI too");
        return Ok(());
    }
    require_npm()?;
    run(&mut npm(["run", "lint"]))
}

/// `npm ci` from the lock file, skipped when `node_modules` already matches it (npm writes
/// `node_modules/.package-lock.json` after every install).
fn install() -> Result<()> {
    let web = web_dir();
    let lock = web.join("package-lock.json");
    if !lock.exists() {
        return run(&mut npm(["install", "--no-audit", "--no-fund"]));
    }
    let installed = modified(&web.join("node_modules").join(".package-lock.json"));
    let wanted = [modified(&lock), modified(&web.join("package.json"))];
    let up_to_date = installed.is_some_and(|installed| {
        wanted
            .iter()
            .all(|wanted| wanted.is_some_and(|wanted| wanted <= installed))
    });
    if up_to_date {
        eprintln!("web/node_modules matches package-lock.json; skipping npm ci");
        return Ok(());
    }
    run(&mut npm(["ci", "--no-audit", "--no-fund"]))
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|meta| meta.modified()).ok()
}

/// Builds the UI when `web/dist` is missing or older than a file it is built from. Returns
/// whether it built.
pub fn build_if_stale() -> Result<bool> {
    let built = modified(&dist_dir().join("index.html"));
    let newest = newest_input(&web_dir())?;
    let stale = match (built, newest) {
        (None, _) => true,
        (Some(built), Some(newest)) => newest > built,
        (Some(_), None) => false,
    };
    if stale {
        ui()?;
    } else {
        eprintln!("web/dist is up to date");
    }
    Ok(stale)
}

/// The newest modification time of the files the UI is built from.
fn newest_input(web: &Path) -> Result<Option<SystemTime>> {
    let mut newest = None;
    let mut pending = vec![web.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if dir == web && (NOT_INPUTS.contains(&name.as_ref()) || name.starts_with('.')) {
                continue;
            }
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if let Ok(time) = meta.modified() {
                newest = newest.max(Some(time));
            }
        }
    }
    Ok(newest)
}

/// What the bundle adds to the binary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BundleSize {
    pub files: usize,
    pub raw_bytes: u64,
    /// Text assets gzipped (when that is smaller), other files as they are: what `build.rs`
    /// embeds.
    pub gzip_bytes: u64,
}

pub fn bundle_size(dist: &Path) -> Result<BundleSize> {
    if !dist.join("index.html").is_file() {
        bail!(
            "{} has no index.html: the UI build did not produce a bundle",
            dist.display()
        );
    }
    let mut size = BundleSize::default();
    let mut pending = vec![dist.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.ends_with(".gz") || name.ends_with(".br") {
                continue;
            }
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            size.files += 1;
            size.raw_bytes += bytes.len() as u64;
            let stored = if pack::compressible(&name) {
                gzip_len(&bytes)?.min(bytes.len() as u64)
            } else {
                bytes.len() as u64
            };
            size.gzip_bytes += stored;
        }
    }
    Ok(size)
}

fn check_size(size: &BundleSize) -> Result<()> {
    if size.gzip_bytes > GZIP_LIMIT_BYTES {
        bail!(
            "the web UI bundle is {} bytes gzip-compressed, over the limit of {} bytes \
             (issue #6): look for a large dependency in web/package.json or split a chunk",
            size.gzip_bytes,
            GZIP_LIMIT_BYTES
        );
    }
    Ok(())
}

fn gzip_len(bytes: &[u8]) -> Result<u64> {
    Ok(pack::gzip(bytes)?.len() as u64)
}

/// `cargo xtask serve [ARGS…]`: the UI (when stale), then `stroem serve ARGS…` via cargo.
pub fn serve(args: &[OsString]) -> Result<()> {
    if let Err(error) = require_npm().and_then(|()| build_if_stale().map(drop)) {
        // The API works without the UI; say why the UI is missing and carry on.
        eprintln!("warning: serving without a freshly built web UI: {error:#}");
    }
    let mut command = cargo(["run", "--bin", "stroem", "--", "serve"]);
    command.args(args);
    run(&mut command)
}

/// `cargo xtask test-ui`: Vitest, then the browser tests against a real `stroem serve` (and,
/// for signing in, the OpenID provider of `cargo xtask oidc`).
pub fn test_ui() -> Result<()> {
    require_npm()?;
    build_if_stale()?;
    run(&mut npm(["test"]))?;
    let binary = build_binary()?;
    // The binary lives in `<target>/debug/`; screenshots go next to it, never into the repo.
    let target = binary
        .parent()
        .and_then(Path::parent)
        .context("the stroem binary has no target directory")?;
    let screenshots = target.join("ui-screenshots");
    // The sign-in tests (web/e2e/auth.mjs) sign in through the real OpenID provider.
    let oidc = crate::oidc::prepare()?;
    let mut e2e = npm(["run", "e2e"]);
    e2e.env("STROEM_BIN", &binary)
        .env("STROEM_SCREENSHOTS", &screenshots)
        .env(crate::oidc::DIR_VAR, oidc);
    run(&mut e2e)
}

/// Builds the `stroem` binary (dev profile and features as the tests use, so nothing is
/// compiled twice) and returns its path.
fn build_binary() -> Result<PathBuf> {
    let mut command = cargo([
        "build",
        "--bin",
        "stroem",
        "--all-features",
        "--message-format=json-render-diagnostics",
    ]);
    eprintln!("$ cargo build --bin stroem --all-features");
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not start cargo build")?;
    if !output.status.success() {
        bail!(
            "`cargo build --bin stroem --all-features` failed ({})",
            output.status
        );
    }
    executable_of(&String::from_utf8_lossy(&output.stdout), "stroem")
        .context("cargo build did not report the stroem executable")
}

/// The `executable` of the `compiler-artifact` message for binary `name` in cargo's JSON
/// messages.
fn executable_of(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == name)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_size_counts_text_gzipped_and_skips_stale_compressed_files() {
        let dist = std::env::temp_dir().join(format!("xtask-ui-size-{}", std::process::id()));
        let assets = dist.join("assets");
        fs::create_dir_all(&assets).expect("fixture");
        fs::write(dist.join("index.html"), "<html></html>".repeat(100)).expect("index");
        fs::write(assets.join("app.js"), "let a = 1;\n".repeat(1000)).expect("js");
        fs::write(assets.join("app.js.gz"), vec![0; 50_000]).expect("stale gz");
        fs::write(assets.join("logo.png"), vec![7; 300]).expect("png");
        let size = bundle_size(&dist).expect("size");
        fs::remove_dir_all(&dist).expect("cleanup");
        assert_eq!(size.files, 3);
        assert_eq!(size.raw_bytes, 1300 + 11_000 + 300);
        assert!(size.gzip_bytes < 1000, "{size:?}");
        assert!(check_size(&size).is_ok());
        let huge = BundleSize {
            gzip_bytes: GZIP_LIMIT_BYTES + 1,
            ..size
        };
        let error = check_size(&huge).expect_err("over the limit");
        assert!(
            error
                .to_string()
                .contains("over the limit of 1500000 bytes")
        );
    }

    #[test]
    fn a_missing_bundle_is_an_error_naming_the_folder() {
        let error = bundle_size(Path::new("/nonexistent/web/dist")).expect_err("missing");
        assert!(
            error
                .to_string()
                .contains("/nonexistent/web/dist has no index.html")
        );
    }

    #[test]
    fn the_binary_path_comes_from_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"stroem","kind":["lib"]},"executable":null}
{"reason":"build-finished","success":true}
{"reason":"compiler-artifact","target":{"name":"stroem","kind":["bin"]},"executable":"/t/debug/stroem"}"#;
        assert_eq!(
            executable_of(messages, "stroem"),
            Some(PathBuf::from("/t/debug/stroem"))
        );
        assert_eq!(executable_of(messages, "other"), None);
    }
}
