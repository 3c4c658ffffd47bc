//! `cargo xtask`: Strøm's build automation in Rust instead of shell scripts
//! (matklad/cargo-xtask). The `justfile` recipes and `.ci/run` are thin aliases for these
//! commands, so local runs and CI do exactly the same thing.

mod check;
mod dist;
mod oidc;
/// The packing `build.rs` does, so the size check measures exactly what the binary embeds.
#[allow(dead_code)] // xtask uses only `compressible` and `gzip`
#[path = "../../src/server/ui/pack.rs"]
mod pack;
mod process;
mod ui;

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [FILTER…]   run every test: builds the web UI when stale, doctests, then all targets
                   (cargo-nextest when installed, else cargo test), then test-ui; a FILTER
                   runs only the matching Rust tests
  test-ui          the web UI's tests: Vitest, then browser tests (headless Chromium) against
                   a real `stroem serve`
  ui               install (npm ci) and build the web UI into web/dist, check its size
  serve [ARGS…]    build the web UI when web/ changed, then `cargo run -- serve ARGS…`
  oidc             install the OpenID provider the OIDC tests sign in through (npm
                   oidc-provider, cached in <target dir>/oidc-provider); `test` does it too
  lint             cargo fmt --check and clippy with warnings denied, then the web UI's
                   `npm run lint` (Prettier, tsc) when web/node_modules is installed
  ci               lint, then test (what .ci/run does after installing Chromium)
  dist [--debug]   release build of `stroem` packed into dist/ (static with musl when the
                   target is installed); --debug builds the dev profile to check packaging
  help             this text";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[OsString]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        println!("{USAGE}");
        return Ok(());
    };
    match command.to_string_lossy().as_ref() {
        "test" => {
            if rest.is_empty() {
                // Build the UI first so the Rust build embeds it once, not twice.
                ui::build_if_stale()?;
                // Both suites run even when the first fails, so one CI run shows everything.
                let rust = check::test(rest);
                let web = ui::test_ui();
                match (rust, web) {
                    (Ok(()), Ok(())) => Ok(()),
                    (Err(error), Ok(())) | (Ok(()), Err(error)) => Err(error),
                    (Err(rust), Err(web)) => bail!("{rust:#}\nand the UI tests: {web:#}"),
                }
            } else {
                check::test(rest)
            }
        }
        "test-ui" => no_arguments("test-ui", rest).and_then(|()| ui::test_ui()),
        "oidc" => {
            no_arguments("oidc", rest)?;
            let dir = oidc::prepare()?;
            println!("{}={}", oidc::DIR_VAR, dir.display());
            Ok(())
        }
        "ui" => no_arguments("ui", rest).and_then(|()| ui::ui()),
        "serve" => ui::serve(rest),
        "lint" => no_arguments("lint", rest).and_then(|()| lint()),
        "ci" => {
            no_arguments("ci", rest)?;
            lint()?;
            dispatch(&["test".into()])
        }
        "dist" => dist::dist(dist_options(rest)?),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// Rust formatting and clippy, then the web UI's Prettier and TypeScript checks.
fn lint() -> Result<()> {
    check::lint()?;
    ui::lint()
}

fn no_arguments(command: &str, rest: &[OsString]) -> Result<()> {
    if let Some(extra) = rest.first() {
        bail!(
            "`{command}` takes no arguments, got `{}`",
            extra.to_string_lossy()
        );
    }
    Ok(())
}

fn dist_options(rest: &[OsString]) -> Result<dist::Options> {
    let mut options = dist::Options::default();
    for arg in rest {
        match arg.to_string_lossy().as_ref() {
            "--debug" => options.debug = true,
            other => bail!("unknown option `{other}` for `dist`"),
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_commands_and_options_are_rejected_with_usage() {
        let error = dispatch(&["deploy".into()]).expect_err("unknown command");
        assert!(error.to_string().contains("unknown command `deploy`"));
        assert!(error.to_string().contains("usage: cargo xtask"));
        let error = dispatch(&["lint".into(), "--fix".into()]).expect_err("lint takes no args");
        assert_eq!(error.to_string(), "`lint` takes no arguments, got `--fix`");
        assert!(dist_options(&["--release".into()]).is_err());
        assert!(dist_options(&["--debug".into()]).expect("valid").debug);
    }
}
