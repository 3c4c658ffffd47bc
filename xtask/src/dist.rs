//! `cargo xtask dist`: release archives of the `stroem` binary in `dist/`, one per target,
//! plus `SHA256SUMS`.
//!
//! Release binaries are static (DESIGN §1): Linux targets build for musl — the host's with
//! `musl-gcc` for the crates that compile C, another architecture's with cargo-zigbuild (zig
//! from PyPI, in the tools venv) — and the build fails when the result links anything
//! dynamically. The `docker` and `kubernetes` cargo features are turned
//! on when the package has them, and `STROEM_COMMIT` is set so that `stroem --version` names
//! the commit (build.rs). Archives are named `stroem-<target>.tar.gz` with no version in the
//! name, so `releases/latest/download/<archive>` stays a stable address; each holds the binary
//! at its top level, so `tar xz -C /usr/local/bin stroem` installs it.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::process::{cargo, probe, repo_root, run};

/// Files packed next to the binary in every archive.
const BUNDLED_FILES: &[&str] = &["README.md", "LICENSE", "stroem.example.yaml"];

/// Cargo features a release build turns on when the package defines them.
const RELEASE_FEATURES: &[&str] = &["docker", "kubernetes"];

/// Options of `cargo xtask dist`.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Build with the dev profile: checks the packaging quickly, not for release.
    pub debug: bool,
    /// Targets to build (`--target`, repeatable); none means the host's musl target.
    pub targets: Vec<String>,
}

/// Which cargo profile a build uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `[profile.dist]`: release, stripped.
    Dist,
    /// `[profile.image-test]`: dev code generation without debug info, for CI's image test.
    ImageTest,
    /// The dev profile (`dist --debug`).
    Dev,
}

impl Profile {
    pub fn cargo_name(self) -> &'static str {
        match self {
            Profile::Dist => "dist",
            Profile::ImageTest => "image-test",
            Profile::Dev => "dev",
        }
    }

    /// The folder under `target/<triple>/` cargo writes this profile to.
    fn dir(self) -> &'static str {
        match self {
            Profile::Dev => "debug",
            other => other.cargo_name(),
        }
    }
}

pub fn dist(options: Options) -> Result<()> {
    let root = repo_root();
    let profile = if options.debug {
        Profile::Dev
    } else {
        Profile::Dist
    };
    let targets = if options.targets.is_empty() {
        vec![default_target()?]
    } else {
        options.targets.clone()
    };
    let out = root.join("dist");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for target in &targets {
        let binary = build(target, profile)?;
        // A dev-profile package is named so that it cannot pass for a release.
        let suffix = if options.debug { "-debug" } else { "" };
        let name = format!("stroem-{target}{suffix}");
        let archive = pack(&root, &binary, &out, &name)?;
        let size = file_size(&binary)?;
        println!(
            "{}: stroem {} ({}), archive {}",
            archive.display(),
            megabytes(size),
            linkage(&binary),
            megabytes(file_size(&archive)?)
        );
    }
    let sums = write_checksums(&out)?;
    println!("{}", sums.display());
    Ok(())
}

/// The host's musl target, or the host itself (with a note) where there is no musl target.
fn default_target() -> Result<String> {
    let host = host_triple()?;
    match musl_target(&host) {
        Some(musl) => Ok(musl),
        None => {
            eprintln!("note: {host} has no musl target; building a host binary");
            Ok(host)
        }
    }
}

/// Builds `stroem` for `target` with `profile` and returns the binary's path. A musl build
/// that is not static fails.
pub fn build(target: &str, profile: Profile) -> Result<PathBuf> {
    let root = repo_root();
    if target.ends_with("-linux-musl") && !target_installed(target) {
        bail!("the Rust target {target} is not installed: run `rustup target add {target}`");
    }
    // Another architecture's musl target builds with cargo-zigbuild: zig compiles the C of
    // SQLite, zstd and ring against musl headers for that target and links. (Debian's
    // gcc-<arch>-linux-gnu has glibc headers only, whose `open64`-style names musl lacks.)
    let cross = is_cross(target);
    let mut command = cargo([
        if cross { "zigbuild" } else { "build" },
        "--locked",
        "--package",
        "stroem",
        "--bin",
        "stroem",
        "--profile",
        profile.cargo_name(),
        "--target",
        target,
    ]);
    if cross {
        let tools = crate::venv::tools(crate::venv::CROSS_TOOLS)?;
        let path = std::env::var_os("PATH").unwrap_or_default();
        let paths = std::iter::once(tools).chain(std::env::split_paths(&path));
        command.env("PATH", std::env::join_paths(paths)?);
    }
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let features = release_features(&manifest);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    if let Some(commit) = commit(&root) {
        command.env("STROEM_COMMIT", commit);
    }
    if !cross && target.ends_with("-linux-musl") {
        // Debian's musl-tools: musl-gcc compiles the C code for the host's musl target.
        let cc_var = format!("CC_{}", target.replace('-', "_"));
        if std::env::var_os(&cc_var).is_none()
            && probe(Command::new("which").arg("musl-gcc")).is_some()
        {
            command.env(cc_var, "musl-gcc");
        }
    }
    run(&mut command)?;

    let binary = target_dir(&root)
        .join(target)
        .join(profile.dir())
        .join("stroem");
    if target.ends_with("-linux-musl") && linkage(&binary) != "statically linked" {
        bail!("{} is {}, not static", binary.display(), linkage(&binary));
    }
    Ok(binary)
}

/// Whether `target` is a Linux musl target of another architecture than this host's.
fn is_cross(target: &str) -> bool {
    target
        .strip_suffix("-unknown-linux-musl")
        .is_some_and(|arch| arch != std::env::consts::ARCH)
}

/// The cargo features of `RELEASE_FEATURES` that the manifest's `[features]` section defines.
fn release_features(manifest: &str) -> Vec<&'static str> {
    let mut in_features = false;
    let mut defined = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_features = line == "[features]";
            continue;
        }
        if let Some((key, _)) = line.split_once('=').filter(|_| in_features) {
            defined.push(key.trim().trim_matches('"').to_owned());
        }
    }
    RELEASE_FEATURES
        .iter()
        .copied()
        .filter(|feature| defined.iter().any(|name| name == feature))
        .collect()
}

/// The commit to embed: `STROEM_COMMIT` when set, else `git rev-parse --short=12 HEAD`.
pub fn commit(root: &Path) -> Option<String> {
    if let Some(commit) = std::env::var("STROEM_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
    {
        return Some(commit.trim().to_owned());
    }
    probe(
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(root),
    )
    .map(|commit| commit.trim().to_owned())
    .filter(|commit| !commit.is_empty())
}

/// Packs the binary and [`BUNDLED_FILES`] into `<out>/<name>.tar.gz`, all at the top level.
fn pack(root: &Path, binary: &Path, out: &Path, name: &str) -> Result<PathBuf> {
    let stage = out.join(name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    std::fs::create_dir_all(&stage).with_context(|| format!("creating {}", stage.display()))?;
    copy(binary, &stage.join("stroem"))?;
    for file in BUNDLED_FILES {
        copy(&root.join(file), &stage.join(file))?;
    }
    let archive = out.join(format!("{name}.tar.gz"));
    run(Command::new("tar")
        .arg("--owner=0")
        .arg("--group=0")
        .arg("--numeric-owner")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&stage)
        .arg("stroem")
        .args(BUNDLED_FILES))?;
    std::fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    Ok(archive)
}

/// Writes `<out>/SHA256SUMS` (the `sha256sum` format) over every `stroem-*` archive in `out`.
fn write_checksums(out: &Path) -> Result<PathBuf> {
    let mut archives: Vec<PathBuf> = std::fs::read_dir(out)
        .with_context(|| format!("reading {}", out.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("stroem-") && name.ends_with(".tar.gz"))
        })
        .collect();
    archives.sort();
    let mut sums = String::new();
    for archive in &archives {
        let bytes =
            std::fs::read(archive).with_context(|| format!("reading {}", archive.display()))?;
        let name = archive
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(sums, "{}  {name}", hex(&Sha256::digest(&bytes)));
    }
    let path = out.join("SHA256SUMS");
    std::fs::write(&path, sums).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// `version = "…"` of the `[package]` section of a Cargo.toml.
pub fn package_version(manifest: &str) -> Option<String> {
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

/// The host's musl target (`x86_64-unknown-linux-musl` here).
pub fn host_musl_target() -> Result<String> {
    let host = host_triple()?;
    musl_target(&host).with_context(|| format!("{host} has no musl target"))
}

pub fn target_installed(target: &str) -> bool {
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

pub fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

pub fn file_size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len())
}

/// `12.3 MB` (10⁶ bytes, as container engines print image sizes).
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// One line saying how the binary links: from `file` when it is installed (it reads binaries
/// of any architecture), else from `ldd` (which calls a foreign binary "not a dynamic
/// executable" whatever it is).
pub fn linkage(binary: &Path) -> String {
    if let Some(kind) = probe(Command::new("file").arg("-b").arg(binary)) {
        if kind.contains("statically linked") || kind.contains("static-pie linked") {
            return "statically linked".to_owned();
        }
        // `file` spells the host's architecture `x86-64` or `aarch64`; for a host binary, ldd
        // below names the libraries.
        let host_arch = std::env::consts::ARCH.replace('_', "-");
        if kind.contains("dynamically linked") && !kind.contains(&host_arch) {
            return "dynamically linked".to_owned();
        }
    }
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
    fn release_features_are_those_the_package_defines() {
        let none = "[package]\nname = \"stroem\"\n\n[features]\ndefault = []\n";
        assert!(release_features(none).is_empty());
        let both = "[features]\ndefault = []\nkubernetes = [\"dep:kube\"]\ndocker = [\"dep:bollard\"]\n\
                    \n[dependencies]\ndocker = \"1\"\n";
        assert_eq!(release_features(both), ["docker", "kubernetes"]);
        let docker_only =
            "[features]\ndocker = [\"dep:bollard\"]\n[dependencies]\nkubernetes = \"1\"\n";
        assert_eq!(release_features(docker_only), ["docker"]);
    }

    #[test]
    fn other_architectures_musl_targets_are_cross_builds() {
        let host = std::env::consts::ARCH;
        let other = if host == "aarch64" {
            "x86_64"
        } else {
            "aarch64"
        };
        assert!(!is_cross(&format!("{host}-unknown-linux-musl")));
        assert!(is_cross(&format!("{other}-unknown-linux-musl")));
        assert!(!is_cross(&format!("{other}-apple-darwin")));
    }

    #[test]
    fn checksums_cover_every_archive_in_sha256sum_format() {
        let dir = std::env::temp_dir().join(format!("xtask-sums-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("stroem-b.tar.gz"), b"abc").expect("write");
        std::fs::write(dir.join("stroem-a.tar.gz"), b"").expect("write");
        std::fs::write(dir.join("notes.txt"), b"not an archive").expect("write");
        let path = write_checksums(&dir).expect("checksums");
        let sums = std::fs::read_to_string(path).expect("read");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(
            sums,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  stroem-a.tar.gz\n\
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  stroem-b.tar.gz\n"
        );
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
        assert_eq!(megabytes(23_456_789), "23.5 MB");
    }
}
