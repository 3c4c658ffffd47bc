//! The command line: one clap `Cli`, one module per verb. `main` only calls [`main`].
//!
//! In a container the role may come from `STROEM_ROLE=serve|work` when no verb is given; that is
//! resolved here, in one place, into the same [`Command`] enum.

pub mod job_input;
pub mod run;
pub mod serve;
pub mod validate;
pub mod work;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stroem",
    version,
    about = "Strøm: workflow and task orchestration"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a task from a local workspace without a server.
    Run(run::Args),
    /// Serve the HTTP API and web UI, run the job engine and an embedded worker.
    Serve(serve::Args),
    /// Lint workflow files: every problem, with file, line and a suggestion.
    Validate(validate::Args),
    /// Run steps for a server: register, claim, run, stream logs, report.
    Work(work::Args),
}

/// `-o text|json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// Parses the command line (applying `STROEM_ROLE`) and runs the verb.
pub fn main() -> ExitCode {
    let role = std::env::var("STROEM_ROLE").ok();
    let cli = Cli::parse_from(with_role(std::env::args_os().collect(), role.as_deref()));
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Work(args) => work::run(args),
    }
}

/// In a container the verb may come from `STROEM_ROLE` (API §9): when no verb is given (no
/// argument, or only options), the role is inserted as the verb.
fn with_role(mut args: Vec<std::ffi::OsString>, role: Option<&str>) -> Vec<std::ffi::OsString> {
    let Some(role) = role.filter(|role| !role.is_empty()) else {
        return args;
    };
    let has_verb = args
        .get(1)
        .is_some_and(|first| !first.to_string_lossy().starts_with('-'));
    let asks_for_help = args
        .iter()
        .skip(1)
        .any(|arg| matches!(arg.to_str(), Some("-h" | "--help" | "-V" | "--version")));
    if !has_verb && !asks_for_help {
        args.insert(1.min(args.len()), role.into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn stroem_role_supplies_a_missing_verb_only() {
        let args = |list: &[&str]| list.iter().map(Into::into).collect::<Vec<_>>();
        assert_eq!(
            with_role(args(&["stroem"]), Some("serve")),
            args(&["stroem", "serve"])
        );
        assert_eq!(
            with_role(args(&["stroem", "--listen", "0:1"]), Some("serve")),
            args(&["stroem", "serve", "--listen", "0:1"])
        );
        assert_eq!(
            with_role(args(&["stroem", "validate"]), Some("serve")),
            args(&["stroem", "validate"])
        );
        assert_eq!(with_role(args(&["stroem"]), None), args(&["stroem"]));
    }
}
