//! `stroem run <task>`: validate a local workspace, then run one job in-process (API §9.2).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Task to run.
    pub task: String,
}

pub fn run(args: Args) -> ExitCode {
    let _ = args;
    ExitCode::from(2)
}
