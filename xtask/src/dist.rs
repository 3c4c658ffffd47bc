//! `cargo xtask dist`: a release build of the `stroem` binary, packed with the files a user
//! needs first (README, LICENSE, example configuration) into `dist/`.
//!
//! Release binaries should be static (DESIGN §1): when the host's musl target is installed the
//! build uses it (with `musl-gcc` as the C compiler when present, for crates that build C).
//! Otherwise it builds for the host and says plainly which shared libraries the binary needs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{cargo, probe, repo_root, run};

/// Files copied next to the binary in every archive.
const BUNDLED_FILES: &[&str] = &["README.md", "LICENSE", "stroem.example.yaml"];

/// Options of `cargo xtask dist`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    /// Build with the dev profile: checks the packaging quickly, not for release.
    pub debug: bool,
}

pub fn dist(options: Options) -> Result<()> {
    let root = repo_root();
    let version = package_version(
        &std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?,
    )
    .context("no `version` in the [package] section of Cargo.toml")?;
    let host = host_triple()?;
    let musl = musl_target(&host).filter(|target| target_installed(target));
    let triple = musl.clone().unwrap_or_else(|| host.clone());

    let mut build = cargo([
        "build",
        "--locked",
        "--package",
        "stroem",
        "--bin",
        "stroem",
    ]);
    if !options.debug {
        build.arg("--release");
    }
    if let Some(target) = &musl {
        build.args(["--target", target]);
        let cc_var = format!("CC_{}", target.replace('-', "_"));
        if std::env::var_os(&cc_var).is_none()
            && probe(Command::new("which").arg("musl-gcc")).is_some()
        {
            build.env(cc_var, "musl-gcc");
        }
    } else {
        eprintln!(
            "note: target {} is not installed, building for the host ({host}); \
             install it with `rustup target add` for a static binary",
            musl_target(&host).unwrap_or_else(|| "<arch>-unknown-linux-musl".to_owned())
        );
    }
    run(&mut build)?;

    let profile_dir = if options.debug { "debug" } else { "release" };
    let mut built = target_dir(&root);
    if let Some(target) = &musl {
        built.push(target);
    }
    built.push(profile_dir);
    built.push("stroem");

    // A dev-profile package is named so that it cannot pass for a release.
    let suffix = if options.debug { "-debug" } else { "" };
    let name = format!("stroem-{version}-{triple}{suffix}");
    let stage = root.join("dist").join(&name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    std::fs::create_dir_all(&stage).with_context(|| format!("creating {}", stage.display()))?;
    copy(&built, &stage.join("stroem"))?;
    for file in BUNDLED_FILES {
        copy(&root.join(file), &stage.join(file))?;
    }
    let archive = root.join("dist").join(format!("{name}.tar.gz"));
    run(Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(root.join("dist"))
        .arg(&name))?;

    let linkage = linkage(&stage.join("stroem"));
    println!("{}: {linkage}", archive.display());
    Ok(())
}

/// `version = "…"` of the `[package]` section of a Cargo.toml.
fn package_version(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "version" {
            return Some(value.trim().trim_matches('"').to_owned());
        }
    }
    None
}

/// The host triple as rustc reports it (`host: x86_64-unknown-linux-gnu`).
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let verbose = probe(Command::new(rustc).arg("-vV")).context("`rustc -vV` failed")?;
    match verbose.lines().find_map(|line| line.strip_prefix("host: ")) {
        Some(host) => Ok(host.trim().to_owned()),
        None => bail!("`rustc -vV` printed no host line"),
    }
}

/// The musl target for a Linux host triple (`x86_64-unknown-linux-gnu` →
/// `x86_64-unknown-linux-musl`); none for other systems.
fn musl_target(host: &str) -> Option<String> {
    let arch = host.strip_suffix("-unknown-linux-gnu")?;
    Some(format!("{arch}-unknown-linux-musl"))
}

fn target_installed(target: &str) -> bool {
    probe(Command::new("rustup").args(["target", "list", "--installed"]))
        .is_some_and(|installed| installed.lines().any(|line| line.trim() == target))
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR`, else `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        _ => root.join("target"),
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// One line saying how the binary links, from `ldd`.
fn linkage(binary: &Path) -> String {
    match probe(Command::new("ldd").arg(binary)) {
        // ldd exits non-zero for a static binary ("not a dynamic executable").
        None => "statically linked".to_owned(),
        Some(report) => describe_ldd(&report),
    }
}

/// Summarises `ldd` output: the shared libraries by name, or "statically linked".
fn describe_ldd(report: &str) -> String {
    if report.contains("statically linked") || report.contains("not a dynamic executable") {
        return "statically linked".to_owned();
    }
    let libraries: Vec<&str> = report
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| !name.starts_with("linux-vdso") && !name.starts_with('/'))
        .collect();
    format!("dynamically linked against {}", libraries.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comes_from_the_package_section_only() {
        let manifest = "[workspace]\nversion = \"9\"\n\n[package]\nname = \"stroem\"\n\
                        version = \"0.1.0\"\n\n[dependencies]\nanyhow = \"1\"\n";
        assert_eq!(package_version(manifest).as_deref(), Some("0.1.0"));
        assert_eq!(package_version("[dependencies]\nversion = \"1\"\n"), None);
    }

    #[test]
    fn musl_target_exists_for_linux_gnu_hosts_only() {
        assert_eq!(
            musl_target("x86_64-unknown-linux-gnu").as_deref(),
            Some("x86_64-unknown-linux-musl")
        );
        assert_eq!(
            musl_target("aarch64-unknown-linux-gnu").as_deref(),
            Some("aarch64-unknown-linux-musl")
        );
        assert_eq!(musl_target("aarch64-apple-darwin"), None);
    }

    #[test]
    fn ldd_reports_are_summarised() {
        let dynamic = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                       \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
                       \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                       \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            describe_ldd(dynamic),
            "dynamically linked against libgcc_s.so.1, libc.so.6"
        );
        assert_eq!(describe_ldd("\tstatically linked\n"), "statically linked");
    }
}
