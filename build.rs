//! Packs the built web UI (`web/dist`, made by `cargo xtask ui`) into `$OUT_DIR/ui`, which
//! `src/server/ui` embeds with `include_dir!`. The packing (gzip for text assets) is in
//! `src/server/ui/pack.rs`, shared with the tests.
//!
//! When `web/dist` has not been built the packed folder is empty and the binary serves a page
//! that says how to build the UI, so `cargo build` never needs Node.js.
//!
//! It also sets `STROEM_LONG_VERSION`, what `stroem --version` prints: the package version and
//! the git commit it was built from (see [`commit`]).

#[path = "src/server/ui/pack.rs"]
mod pack;

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let dist = manifest_dir.join("web").join("dist");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/server/ui/pack.rs");
    // `src/store/migrate.rs` embeds every file of these trees: a new migration must rebuild.
    println!("cargo:rerun-if-changed=migrations");
    // A directory is watched recursively, so a rebuilt bundle is re-embedded. Until the
    // bundle exists, watch `web/` instead: a path that does not exist would rerun this script,
    // and recompile the crate, on every build.
    if dist.is_dir() {
        println!("cargo:rerun-if-changed=web/dist");
    } else {
        println!("cargo:rerun-if-changed=web");
    }

    let version = std::env::var("CARGO_PKG_VERSION")?;
    let built_from = match commit(&manifest_dir) {
        Commit::Known(commit) => format!("commit {commit}"),
        Commit::Unknown => "commit unknown".to_owned(),
        Commit::DevelopmentBuild => "development build".to_owned(),
    };
    println!("cargo:rustc-env=STROEM_LONG_VERSION={version} ({built_from})");

    let packed = pack::pack(&dist, &out_dir.join("ui"))?;
    if packed.files == 0 {
        println!(
            "cargo:warning=web/dist is not built: the binary serves a page saying so at /. \
             Run `cargo xtask ui` to build the web UI."
        );
    }
    Ok(())
}

/// Which commit a build is made from, as far as the build can tell.
enum Commit {
    Known(String),
    /// A release build from a source tree without git metadata and without `STROEM_COMMIT`.
    Unknown,
    /// A dev-profile build (`cargo build`, `cargo test`): the commit is left out, because
    /// embedding it would recompile the crate after every `git commit` in a working tree.
    DevelopmentBuild,
}

/// `STROEM_COMMIT` when set (a release pipeline building from a source archive sets it; `cargo
/// xtask dist` and `image` always do), else for release-profile builds `git rev-parse HEAD` of
/// the source tree, watched so that a new commit re-runs this script.
fn commit(manifest_dir: &Path) -> Commit {
    println!("cargo:rerun-if-env-changed=STROEM_COMMIT");
    if let Ok(commit) = std::env::var("STROEM_COMMIT") {
        let commit = commit.trim();
        if !commit.is_empty() {
            return Commit::Known(commit.to_owned());
        }
    }
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return Commit::DevelopmentBuild;
    }
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .args(args)
            .current_dir(manifest_dir)
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return Commit::Unknown;
    };
    // HEAD names the branch; the branch's ref (loose or packed) names the commit. In a linked
    // worktree HEAD lives in the worktree's git dir and the refs in the common one. Only paths
    // that exist are watched: a missing one would re-run this script on every build.
    let git_dir = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from);
    let common_dir = git(&["rev-parse", "--git-common-dir"]).map(|dir| manifest_dir.join(dir));
    let head_ref = git(&["symbolic-ref", "-q", "HEAD"]);
    let mut watched: Vec<PathBuf> = Vec::new();
    if let Some(git_dir) = &git_dir {
        watched.push(git_dir.join("HEAD"));
    }
    if let Some(common_dir) = &common_dir {
        watched.push(common_dir.join("packed-refs"));
        if let Some(head_ref) = &head_ref {
            watched.push(common_dir.join(head_ref));
        }
    }
    for path in watched.iter().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    Commit::Known(commit)
}
