//! Packs the built web UI (`web/dist`, made by `cargo xtask ui`) into `$OUT_DIR/ui`, which
//! `src/server/ui` embeds with `include_dir!`. The packing (gzip for text assets) is in
//! `src/server/ui/pack.rs`, shared with the tests.
//!
//! When `web/dist` has not been built the packed folder is empty and the binary serves a page
//! that says how to build the UI, so `cargo build` never needs Node.js.

#[path = "src/server/ui/pack.rs"]
mod pack;

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let dist = manifest_dir.join("web").join("dist");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/server/ui/pack.rs");
    // A directory is watched recursively, so a rebuilt bundle is re-embedded. Until the
    // bundle exists, watch `web/` instead: a path that does not exist would rerun this script,
    // and recompile the crate, on every build.
    if dist.is_dir() {
        println!("cargo:rerun-if-changed=web/dist");
    } else {
        println!("cargo:rerun-if-changed=web");
    }

    let packed = pack::pack(&dist, &out_dir.join("ui"))?;
    if packed.files == 0 {
        println!(
            "cargo:warning=web/dist is not built: the binary serves a page saying so at /. \
             Run `cargo xtask ui` to build the web UI."
        );
    }
    Ok(())
}
