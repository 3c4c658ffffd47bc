//! `cargo xtask image`: the container image of the top-level `Dockerfile`, built from local
//! inputs only (no registry is reachable where CI runs).
//!
//! It builds the static binary for the host's musl target, assembles the image's root
//! filesystem under `dist/image/rootfs` — the binary, Debian's static busybox as `/bin/sh` with
//! its applets (the tools script steps commonly need), CA certificates, a `stroem` user
//! (uid 10001) and the default `/etc/stroem/stroem.yaml` — and runs `docker build` or `podman
//! build` on the Dockerfile, which only copies that tree into `FROM scratch`.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::dist::{self, Profile, copy, linkage, megabytes};
use crate::process::{probe, repo_root, run};

/// The image's repository name; a release build is tagged with the package version and
/// `latest`, a test build with `<version>-<profile>`.
pub const IMAGE_NAME: &str = "localhost/stroem";

/// Largest image a release build may produce (issue #14: ≤ 40 MB).
const SIZE_LIMIT: u64 = 40_000_000;

/// The user the image runs as; the data volume belongs to it.
const UID: u32 = 10001;

/// `/etc/stroem/stroem.yaml` in the image: only what differs from the defaults because of
/// where the image keeps things. Everything else comes from a mounted file or `STROEM__…`.
const DEFAULT_CONFIG: &str = "\
# Strøm's container image configuration. Replace this file (mount your own at
# /etc/stroem/stroem.yaml) or override any key with STROEM__… variables, for example
# STROEM__DB__URL, STROEM__WORKER_TOKEN, STROEM__SERVER_URL. See docs/configuration.md.
data_dir: /var/lib/stroem
listen: \"0.0.0.0:8080\"
";

/// Options of `cargo xtask image`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub profile: Profile,
    /// Assemble `dist/image` only, without a container engine (a multi-stage build's stage).
    pub rootfs_only: bool,
}

/// The built image: its reference and size in bytes.
#[derive(Debug, Clone)]
pub struct Built {
    pub reference: String,
    pub size: u64,
}

/// Builds the image; `None` with `rootfs_only`.
pub fn image(options: Options) -> Result<Option<Built>> {
    let root = repo_root();
    let engine = if options.rootfs_only {
        None
    } else {
        Some(Engine::detect()?)
    };
    let busybox = find_busybox()?;
    let target = dist::host_musl_target()?;
    let binary = dist::build(&target, options.profile)?;

    let staging = root.join("dist").join("image");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing {}", staging.display()))?;
    }
    assemble(&staging.join("rootfs"), &binary, &busybox)?;
    std::fs::create_dir_all(staging.join("data"))?;
    let Some(engine) = engine else {
        println!("{}: the image's root filesystem", staging.display());
        return Ok(None);
    };

    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let version = dist::package_version(&manifest).context("no version in Cargo.toml")?;
    // A test build is tagged so that it never passes for a release build of this version.
    let tags = match options.profile {
        Profile::Dist => vec![
            format!("{IMAGE_NAME}:{version}"),
            format!("{IMAGE_NAME}:latest"),
        ],
        _ => vec![format!(
            "{IMAGE_NAME}:{version}-{}",
            options.profile.cargo_name()
        )],
    };
    let reference = tags[0].clone();
    let mut build = engine.command();
    build.arg("build");
    if engine == Engine::Podman {
        // The OCI format has no HEALTHCHECK; Docker's keeps it.
        build.args(["--format", "docker"]);
    }
    for tag in &tags {
        build.args(["--tag", tag]);
    }
    build.arg("--file").arg(root.join("Dockerfile")).arg(&root);
    run(&mut build)?;

    let size =
        probe(
            engine
                .command()
                .args(["image", "inspect", "--format", "{{.Size}}", &reference]),
        )
        .and_then(|size| size.trim().parse::<u64>().ok())
        .context("could not read the image's size")?;
    println!(
        "{reference}: {} (stroem {}, {})",
        megabytes(size),
        megabytes(dist::file_size(&binary)?),
        linkage(&binary)
    );
    if options.profile == Profile::Dist && size > SIZE_LIMIT {
        bail!(
            "the image is {}, over the limit of {}",
            megabytes(size),
            megabytes(SIZE_LIMIT)
        );
    }
    Ok(Some(Built { reference, size }))
}

/// The container engine that builds and runs images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    /// Docker when its daemon answers, else podman.
    pub fn detect() -> Result<Engine> {
        if probe(Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"])).is_some()
        {
            return Ok(Engine::Docker);
        }
        if probe(Command::new("podman").arg("--version")).is_some() {
            return Ok(Engine::Podman);
        }
        bail!(
            "no container engine: install podman (`bash .ci/start-podman.sh` sets it up) or \
             start Docker"
        )
    }

    pub fn command(self) -> Command {
        Command::new(match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        })
    }
}

/// A statically linked busybox: Debian's `busybox-static` installs one as `/bin/busybox`.
fn find_busybox() -> Result<PathBuf> {
    let candidates = [
        PathBuf::from("/bin/busybox"),
        PathBuf::from("/usr/bin/busybox"),
    ];
    let Some(busybox) = candidates.into_iter().find(|path| path.is_file()) else {
        bail!(
            "no busybox found: install Debian's `busybox-static` (apt-get install busybox-static)"
        );
    };
    if linkage(&busybox) != "statically linked" {
        bail!(
            "{} is {}; the image needs a static one: install Debian's `busybox-static`",
            busybox.display(),
            linkage(&busybox)
        );
    }
    Ok(busybox)
}

/// Writes the image's root filesystem into `rootfs`.
fn assemble(rootfs: &Path, binary: &Path, busybox: &Path) -> Result<()> {
    for dir in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "usr/local/bin",
        "etc/stroem",
        "etc/ssl/certs",
        "tmp",
        "var/tmp",
    ] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    for dir in ["tmp", "var/tmp"] {
        std::fs::set_permissions(rootfs.join(dir), std::fs::Permissions::from_mode(0o1777))?;
    }

    copy(busybox, &rootfs.join("bin/busybox"))?;
    let applets =
        probe(Command::new(busybox).arg("--list-full")).context("`busybox --list-full` failed")?;
    for applet in applet_paths(&applets) {
        let link = rootfs.join(applet);
        if !link.exists() {
            symlink("/bin/busybox", &link)
                .with_context(|| format!("linking {}", link.display()))?;
        }
    }

    let installed = rootfs.join("usr/local/bin/stroem");
    copy(binary, &installed)?;
    std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o755))?;

    std::fs::write(
        rootfs.join("etc/passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\n\
             stroem:x:{UID}:{UID}:Strøm:/var/lib/stroem:/bin/sh\n\
             nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        ),
    )?;
    std::fs::write(
        rootfs.join("etc/group"),
        format!("root:x:0:\nstroem:x:{UID}:\nnogroup:x:65534:\n"),
    )?;
    std::fs::write(rootfs.join("etc/stroem/stroem.yaml"), DEFAULT_CONFIG)?;

    // TLS to git hosts, OIDC providers and registries needs the CA bundle.
    let bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if bundle.is_file() {
        copy(bundle, &rootfs.join("etc/ssl/certs/ca-certificates.crt"))?;
    } else {
        bail!(
            "no CA bundle at {}: install Debian's `ca-certificates`",
            bundle.display()
        );
    }
    Ok(())
}

/// The paths (relative to `/`) of busybox's applets from `busybox --list-full`, without
/// busybox itself and without anything that is not a plain relative path.
fn applet_paths(list: &str) -> Vec<&str> {
    list.lines()
        .map(str::trim)
        .filter(|path| {
            !path.is_empty()
                && !path.starts_with('/')
                && !path.split('/').any(|part| part == ".." || part.is_empty())
                && Path::new(path)
                    .file_name()
                    .is_some_and(|name| name != "busybox")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applet_paths_skip_busybox_and_odd_entries() {
        let list = "bin/sh\nusr/bin/env\nbin/busybox\n\n/etc/passwd\nusr/../etc/x\nsbin/ip\n";
        assert_eq!(applet_paths(list), ["bin/sh", "usr/bin/env", "sbin/ip"]);
    }

    #[test]
    fn the_default_configuration_keeps_data_in_the_volume() {
        assert!(DEFAULT_CONFIG.contains("data_dir: /var/lib/stroem\n"));
        let dockerfile =
            std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile");
        assert!(dockerfile.contains("VOLUME [\"/var/lib/stroem\"]"));
        assert!(dockerfile.contains(&format!("USER {UID}:{UID}")));
        assert!(dockerfile.contains("STROEM_CONFIG=/etc/stroem/stroem.yaml"));
    }
}
