//! Running the tools xtask drives (cargo, rustup, ldd, tar): one place that echoes each command
//! before running it, so a CI log shows exactly what was executed, and turns a non-zero exit
//! into an error that names the command.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The repository root: the parent of the `xtask` package.
pub fn repo_root() -> PathBuf {
    // `cargo run` sets the variable at run time too. Prefer that: a target directory shared by
    // several checkouts may hold an xtask binary compiled in another one, whose compile-time
    // path would point there.
    let runtime = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let manifest_dir = runtime
        .as_deref()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// A `cargo` command run from the repository root. Uses `$CARGO` when cargo itself started
/// xtask, so the same toolchain builds everything.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.args(args).current_dir(repo_root());
    command
}

/// Runs `command` with inherited stdio, failing when it does not exit successfully.
pub fn run(command: &mut Command) -> Result<()> {
    let shown = describe(command);
    eprintln!("$ {shown}");
    let status = command
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs `command` quietly and returns its stdout, or `None` when the program is missing or
/// exits unsuccessfully. Used to probe for optional tools.
pub fn probe(command: &mut Command) -> Option<String> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The command line as a person would type it (program name without its directory).
fn describe(command: &Command) -> String {
    let program = Path::new(command.get_program())
        .file_name()
        .unwrap_or(command.get_program())
        .to_string_lossy()
        .into_owned();
    std::iter::once(program)
        .chain(
            command
                .get_args()
                .map(|arg| arg.to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_strips_the_program_directory() {
        let mut command = Command::new("/usr/bin/cargo");
        command.args(["fmt", "--all"]);
        assert_eq!(describe(&command), "cargo fmt --all");
    }

    #[test]
    fn probe_reports_missing_programs_and_failures_as_none() {
        assert_eq!(
            probe(Command::new("sh").args(["-c", "echo hi"])),
            Some("hi\n".into())
        );
        assert_eq!(probe(Command::new("sh").args(["-c", "exit 3"])), None);
        assert_eq!(
            probe(&mut Command::new("/nonexistent/stroem-xtask-probe")),
            None
        );
    }

    #[test]
    fn run_names_the_command_that_failed() {
        let error = run(Command::new("sh").args(["-c", "exit 3"])).expect_err("exit 3 fails");
        assert!(
            error.to_string().contains("`sh -c exit 3` failed"),
            "{error}"
        );
    }
}
