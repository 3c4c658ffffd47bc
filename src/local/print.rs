//! How `stroem run` shows a job on a terminal: `[step] line` log lines as they arrive, then a
//! summary table.
//!
//! Colours are used only when the stream is a terminal and `NO_COLOR` is unset; piped output is
//! plain text so scripts and CI logs stay readable.

use std::io::{IsTerminal, Write};

use crate::runner::spec::{LogLine, Stream};

const RESET: &str = "\x1b[0m";
const RED: &str = "\x1b[31m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
/// Step names cycle through these so interleaved parallel output stays easy to follow.
const STEP_COLOURS: [&str; 6] = [
    "\x1b[36m", "\x1b[35m", "\x1b[34m", "\x1b[33m", "\x1b[32m", "\x1b[96m",
];

/// Where log lines go and whether they are coloured.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// In JSON mode stdout carries exactly one document, so log lines go to stderr.
    to_stderr: bool,
    colour: bool,
}

impl Printer {
    /// `no_color` is the value of `NO_COLOR` captured by the caller (only `cli` reads the
    /// environment).
    pub fn new(logs_to_stderr: bool, no_color: bool) -> Self {
        let terminal = if logs_to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        Printer {
            to_stderr: logs_to_stderr,
            colour: terminal && !no_color,
        }
    }

    pub fn colour(&self) -> bool {
        self.colour
    }

    /// Prints one captured line as `[step] line`; stderr lines are highlighted on a terminal.
    pub fn line(&self, line: &LogLine) {
        let text = self.format(line);
        // A closed pipe (e.g. `| head`) must not abort the job: the write error is ignored and
        // the job goes on to its end.
        if self.to_stderr {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        } else {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }

    fn format(&self, line: &LogLine) -> String {
        if !self.colour {
            return format!("[{}] {}", line.step, line.line);
        }
        let step_colour = STEP_COLOURS[colour_index(&line.step)];
        let body = match line.stream {
            Stream::Stdout => line.line.clone(),
            Stream::Stderr => format!("{RED}{}{RESET}", line.line),
        };
        format!("{step_colour}[{}]{RESET} {body}", line.step)
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(BOLD, text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint(DIM, text)
    }

    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }
}

fn colour_index(step: &str) -> usize {
    // Instances of one loop share their loop's colour.
    let base = step.split('[').next().unwrap_or(step);
    let hash = base.bytes().fold(0usize, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(b as usize)
    });
    hash % STEP_COLOURS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: &str, stream: Stream, text: &str) -> LogLine {
        LogLine {
            ts: chrono::Utc::now(),
            stream,
            step: step.to_owned(),
            attempt: Some(1),
            line: text.to_owned(),
        }
    }

    #[test]
    fn plain_output_is_step_in_brackets_then_the_line() {
        let printer = Printer {
            to_stderr: false,
            colour: false,
        };
        assert_eq!(
            printer.format(&line("say-hello", Stream::Stderr, "oops")),
            "[say-hello] oops"
        );
    }

    #[test]
    fn loop_instances_share_a_colour() {
        assert_eq!(colour_index("deploy[0]"), colour_index("deploy[7]"));
    }
}
