//! `stroem completions bash|zsh|fish`: a shell completion script on stdout.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells supported (API §9: bash, zsh, fish).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: Args) -> ExitCode {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut command = super::Cli::command();
    // Generated into memory: clap_complete panics when writing to a closed pipe
    // (`stroem completions bash | head`); `out::print` ends quietly instead.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "stroem", &mut script);
    super::out::print(String::from_utf8_lossy(&script));
    ExitCode::SUCCESS
}
