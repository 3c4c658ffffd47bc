//! `stroem validate [PATH]`: lint a workspace like a compiler (API §9.2, WF §18).
//!
//! OWNER: front-end helper.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workspace root, its `.workflows/` directory, or one file.
    pub path: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let _ = args;
    ExitCode::from(2)
}
