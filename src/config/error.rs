//! What can go wrong while loading configuration, as data.
//!
//! Loading collects every problem of the file, the `STROEM__` variables and the flags before it
//! gives up (STYLE §4), so one start-up attempt shows the whole list. Each problem says where the
//! value came from — `file:line:column`, the variable's name or the flag — and names the key.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A position in the configuration file (1-based line and column).
    File {
        file: String,
        line: u32,
        column: u32,
    },
    /// A `STROEM__…` environment variable, by name.
    Env(String),
    /// A command-line flag such as `--server`.
    Flag(&'static str),
    /// No file and no variable: the built-in defaults.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { file, line, column } => write!(f, "{file}:{line}:{column}"),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Default => f.write_str("built-in defaults"),
        }
    }
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub origin: Origin,
    /// The dotted key path the problem is about, e.g. `db.url` or `workspaces.data-team.ref`.
    pub key: String,
    /// One sentence that names the key; ends with `did you mean '…'?` when a suggestion exists.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// Why [`Config::load`](super::Config::load) failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file named by `--config` or `STROEM_CONFIG` could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found in the file, the environment and the flags; never empty.
    #[error("{}", render(problems))]
    Invalid { problems: Vec<Problem> },
}

fn render(problems: &[Problem]) -> String {
    let count = problems.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    let mut text = format!("invalid configuration ({count} {noun}):");
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(&problem.to_string());
    }
    text
}
