//! Helpers shared by the integration tests: a builder that runs the real `stroem` binary.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Root of the checked-in fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One invocation of the `stroem` binary, built up argument by argument.
#[derive(Debug, Default)]
pub struct Stroem {
    args: Vec<OsString>,
    dir: Option<PathBuf>,
}

/// What a finished invocation printed and how it exited.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Stroem {
    pub fn new() -> Self {
        Stroem::default()
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs in `dir` (default: the crate root).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Runs the binary to completion. Colours are off (`NO_COLOR`) so output is comparable.
    pub fn run(self) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stroem"));
        command.args(&self.args).env("NO_COLOR", "1");
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let output = command.output().expect("the stroem binary runs");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The engine of the container tests (`.ci/start-podman.sh`): `STROEM_TEST_DOCKER_HOST`, else
/// `DOCKER_HOST`, else the socket that script serves.
#[cfg(feature = "docker")]
pub fn docker_host() -> String {
    ["STROEM_TEST_DOCKER_HOST", "DOCKER_HOST"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|host| !host.is_empty()))
        .unwrap_or_else(|| "unix:///tmp/stroem-podman.sock".to_owned())
}
