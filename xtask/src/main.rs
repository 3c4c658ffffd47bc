//! `cargo xtask`: Strøm's build automation in Rust instead of shell scripts
//! (matklad/cargo-xtask). The `justfile` recipes and `.ci/run` are thin aliases for these
//! commands, so local runs and CI do exactly the same thing.

mod chart;
mod check;
mod dist;
mod image;
mod image_test;
mod oidc;
/// The packing `build.rs` does, so the size check measures exactly what the binary embeds.
#[allow(dead_code)] // xtask uses only `compressible` and `gzip`
#[path = "../../src/server/ui/pack.rs"]
mod pack;
mod process;
mod ui;
mod venv;

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [FILTER…]   run every test: builds the web UI when stale, doctests, then all targets
                   (cargo-nextest when installed, else cargo test), then test-ui,
                   test-chart and test-image (when podman or Docker is installed); a
                   FILTER runs only the matching Rust tests
  test-ui          the web UI's tests: Vitest, then browser tests (headless Chromium) against
                   a real `stroem serve`
  ui               install (npm ci) and build the web UI into web/dist, check its size
  serve [ARGS…]    build the web UI when web/ changed, then `cargo run -- serve ARGS…`
  oidc             install the OpenID provider the OIDC tests sign in through (npm
                   oidc-provider, cached in <target dir>/oidc-provider); `test` does it too
  lint             cargo fmt --check and clippy with warnings denied, then the web UI's
                   `npm run lint` (Prettier, tsc) when web/node_modules is installed
  ci               lint, then test (what .ci/run does after installing Chromium)
  dist [--debug] [--target TRIPLE]…
                   static (musl) release builds of `stroem` with the web UI, packed into
                   dist/stroem-<target>.tar.gz with dist/SHA256SUMS; default target: the
                   host's musl target; --debug builds the dev profile to check packaging
  image [--profile dist|image-test] [--rootfs-only]
                   the container image (Dockerfile) from a static build: localhost/stroem;
                   --rootfs-only assembles dist/image without a container engine
  test-image [--profile dist|image-test]
                   builds the image (default profile image-test), runs a server and a
                   worker container on the PostgreSQL at 127.0.0.1:5432 and the README's
                   quick start against them, then the same with docker-compose.yml
  test-chart       lints and renders charts/stroem with several value sets and validates
                   every manifest against the Kubernetes schemas (Python venv under
                   /var/cache/stroem/tools-venv, or $STROEM_TOOLS_VENV)
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
                // Every suite runs even when an earlier one fails, so one CI run shows
                // everything.
                let results = [
                    ("the Rust tests", check::test(rest)),
                    ("the UI tests", ui::test_ui()),
                    ("the chart tests", chart::test_chart()),
                    ("the image tests", image_tests_when_possible()),
                ];
                let failures: Vec<String> = results
                    .into_iter()
                    .filter_map(|(suite, result)| {
                        result.err().map(|error| format!("{suite}: {error:#}"))
                    })
                    .collect();
                if failures.is_empty() {
                    Ok(())
                } else {
                    bail!("{}", failures.join("\n"))
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
        "image" => {
            let rootfs_only = rest.iter().any(|arg| arg == "--rootfs-only");
            let rest: Vec<OsString> = rest
                .iter()
                .filter(|arg| *arg != "--rootfs-only")
                .cloned()
                .collect();
            image::image(image::Options {
                profile: profile_option(&rest, dist::Profile::Dist)?,
                rootfs_only,
            })
            .map(drop)
        }
        "test-image" => image_test::test_image(profile_option(rest, dist::Profile::ImageTest)?),
        "test-chart" => no_arguments("test-chart", rest).and_then(|()| chart::test_chart()),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// `test-image` when a container engine and the Rust musl target are installed; without them
/// it says so and passes, so `cargo xtask test` works on a machine without podman or where
/// rustup's servers are out of reach (`.ci/run` installs both when it can).
fn image_tests_when_possible() -> Result<()> {
    if image::Engine::detect().is_err() {
        eprintln!(
            "note: no container engine (podman or Docker): the image tests did not run; \
             `bash .ci/start-podman.sh` installs podman"
        );
        return Ok(());
    }
    let musl = dist::host_musl_target()?;
    if !dist::target_installed(&musl) {
        eprintln!(
            "note: the Rust target {musl} is not installed: the image tests did not run; \
             `rustup target add {musl}` installs it"
        );
        return Ok(());
    }
    image_test::test_image(dist::Profile::ImageTest)
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
    let mut args = rest.iter().map(|arg| arg.to_string_lossy());
    while let Some(arg) = args.next() {
        match arg.as_ref() {
            "--debug" => options.debug = true,
            "--target" => match args.next() {
                Some(target) if !target.starts_with('-') => {
                    options.targets.push(target.into_owned())
                }
                _ => bail!("`--target` needs a target triple"),
            },
            other => bail!("unknown option `{other}` for `dist`"),
        }
    }
    Ok(options)
}

/// `[--profile dist|image-test]`, else `default`.
fn profile_option(rest: &[OsString], default: dist::Profile) -> Result<dist::Profile> {
    let args: Vec<_> = rest.iter().map(|arg| arg.to_string_lossy()).collect();
    match args.iter().map(AsRef::as_ref).collect::<Vec<&str>>()[..] {
        [] => Ok(default),
        ["--profile", "dist"] => Ok(dist::Profile::Dist),
        ["--profile", "image-test"] => Ok(dist::Profile::ImageTest),
        _ => bail!(
            "expected `--profile dist` or `--profile image-test`, got `{}`",
            args.join(" ")
        ),
    }
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
        let targets = dist_options(&["--target".into(), "a".into(), "--target".into(), "b".into()])
            .expect("valid");
        assert_eq!(targets.targets, ["a", "b"]);
        assert!(dist_options(&["--target".into()]).is_err());
        assert_eq!(
            profile_option(&[], dist::Profile::Dist).expect("default"),
            dist::Profile::Dist
        );
        assert_eq!(
            profile_option(
                &["--profile".into(), "image-test".into()],
                dist::Profile::Dist
            )
            .expect("valid"),
            dist::Profile::ImageTest
        );
        assert!(profile_option(&["--profile".into(), "fast".into()], dist::Profile::Dist).is_err());
    }
}
