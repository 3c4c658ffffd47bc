//! Writing to stdout without `print!`: `print!` panics when stdout is a closed pipe
//! (`stroem jobs | head -1`), and the crate forbids the `unsafe` it would take to restore the
//! default SIGPIPE action. A reader that went away is not the verb's failure: the rest of the
//! output is dropped and the verb ends with its own exit code.

use std::fmt::Display;
use std::io::{ErrorKind, Write};

/// Writes `text` to stdout as it is.
pub(crate) fn print(text: impl Display) {
    let text = text.to_string();
    let mut out = std::io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(error) = written
        && error.kind() != ErrorKind::BrokenPipe
    {
        // Stdout is gone for another reason (a full disk); say so where the user can see it.
        let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {error}");
    }
}

/// Writes `text` and a newline to stdout.
pub(crate) fn line(text: impl Display) {
    print(format_args!("{text}\n"));
}
