//! The command line: one clap `Cli`, one module per verb. `main` only calls [`main`].
//!
//! In a container the role may come from `STROEM_ROLE=serve|work` when no verb is given; that is
//! resolved here, in one place, into the same [`Command`] enum.

pub mod run;
pub mod validate;

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
    /// Lint workflow files: every problem, with file, line and a suggestion.
    Validate(validate::Args),
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
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
