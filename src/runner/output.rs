//! A step's output and error message (WF §11.3, §11.4): the `$STROEM_OUTPUT` file wins, else
//! the last valid `OUTPUT:` line on stdout, else `null`; the `key=value` lines of
//! `$STROEM_OUTPUT_VARS` (issue #15, like GitHub's `$GITHUB_OUTPUT`) are added to it as string
//! fields; failures carry the last stderr lines.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::Path;

use serde_json::Value;

use super::capture::{OUTPUT_LIMIT, OUTPUT_PREFIX, RawLine};

/// How many stderr lines an error message ends with, and how many bytes they may take.
const TAIL_LINES: usize = 20;
const TAIL_BYTES: usize = 4 * 1024;

/// Why an otherwise successful attempt has no acceptable output.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("invalid JSON in $STROEM_OUTPUT: {0}")]
    InvalidFile(serde_json::Error),
    #[error("cannot read $STROEM_OUTPUT: {0}")]
    Unreadable(io::Error),
    #[error("output larger than 1 MiB ({0} bytes)")]
    TooLarge(usize),
    #[error("$STROEM_OUTPUT_VARS line {line}: {message}")]
    InvalidVars { line: usize, message: String },
    #[error("$STROEM_OUTPUT_VARS sets fields, but the output is not an object")]
    VarsBesideNonObject,
}

/// The name of the `key=value` outputs file, beside the `$STROEM_OUTPUT` file.
pub const VARS_FILE: &str = "output.vars";

/// `key=value` lines, and `key<<DELIMITER` … `DELIMITER` for values of several lines.
fn parse_vars(text: &str) -> Result<serde_json::Map<String, Value>, OutputError> {
    let mut fields = serde_json::Map::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let invalid = |message: &str| OutputError::InvalidVars {
            line: index + 1,
            message: message.to_owned(),
        };
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = match (line.find("<<"), line.find('=')) {
            (Some(at), equals) if equals.is_none_or(|equals| at < equals) => {
                let delimiter = &line[at + 2..];
                if delimiter.is_empty() {
                    return Err(invalid("`key<<DELIMITER` needs a delimiter"));
                }
                let mut value = Vec::new();
                loop {
                    match lines.next() {
                        Some((_, text)) if text == delimiter => break,
                        Some((_, text)) => value.push(text),
                        None => return Err(invalid(&format!("no closing line '{delimiter}'"))),
                    }
                }
                (&line[..at], value.join("\n"))
            }
            (_, Some(at)) => (&line[..at], line[at + 1..].to_owned()),
            (_, None) => return Err(invalid("expected `key=value` or `key<<DELIMITER`")),
        };
        if key.is_empty() {
            return Err(invalid("the key is empty"));
        }
        fields.insert(key.to_owned(), Value::String(value));
    }
    Ok(fields)
}

/// The last `OUTPUT:` line seen on stdout.
#[derive(Debug, Default)]
pub struct OutputLines {
    last: Option<Result<Value, usize>>,
}

impl OutputLines {
    /// Looks at one stdout line. Returns a note for the step's stderr when the line carries
    /// invalid JSON; such a line is ignored and the previous output stays.
    pub fn observe(&mut self, line: &RawLine) -> Option<String> {
        if !line.is_output() {
            return None;
        }
        let json = line.bytes[OUTPUT_PREFIX.len()..].trim_ascii();
        let size = json.len() + line.dropped;
        if size > OUTPUT_LIMIT {
            self.last = Some(Err(size));
            return None;
        }
        match serde_json::from_slice(json) {
            Ok(value) => {
                self.last = Some(Ok(value));
                None
            }
            Err(error) => Some(format!(
                "stroem: ignored an OUTPUT: line with invalid JSON ({error})"
            )),
        }
    }

    /// The output after the process exited successfully, `output_file` taking precedence, with
    /// the fields of the vars file beside it added.
    pub fn finish(self, output_file: &Path) -> Result<Value, OutputError> {
        let output = self.json_output(output_file)?;
        let vars = output_file.with_file_name(VARS_FILE);
        let text = match fs::read(&vars) {
            Ok(bytes) if bytes.len() > OUTPUT_LIMIT => {
                return Err(OutputError::TooLarge(bytes.len()));
            }
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(OutputError::Unreadable(error)),
        };
        let fields = parse_vars(&text)?;
        if fields.is_empty() {
            return Ok(output);
        }
        match output {
            Value::Null => Ok(Value::Object(fields)),
            Value::Object(mut object) => {
                object.extend(fields);
                Ok(Value::Object(object))
            }
            _ => Err(OutputError::VarsBesideNonObject),
        }
    }

    fn json_output(self, output_file: &Path) -> Result<Value, OutputError> {
        let size = fs::metadata(output_file)
            .map_err(OutputError::Unreadable)?
            .len();
        if size > 0 {
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > OUTPUT_LIMIT {
                return Err(OutputError::TooLarge(size));
            }
            let text = fs::read(output_file).map_err(OutputError::Unreadable)?;
            return serde_json::from_slice(&text).map_err(OutputError::InvalidFile);
        }
        match self.last {
            None => Ok(Value::Null),
            Some(Ok(value)) => Ok(value),
            Some(Err(size)) => Err(OutputError::TooLarge(size)),
        }
    }
}

/// The last [`TAIL_LINES`] stderr lines, already masked.
#[derive(Debug, Default)]
pub struct StderrTail {
    lines: VecDeque<String>,
}

impl StderrTail {
    pub fn push(&mut self, line: String) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// `head`, then the tail lines on their own lines, cut to [`TAIL_BYTES`] from the end.
    pub fn message(&self, head: &str) -> String {
        let mut kept: Vec<&str> = Vec::new();
        let mut total = 0;
        for line in self.lines.iter().rev() {
            let separator = usize::from(!kept.is_empty());
            if total + separator + line.len() > TAIL_BYTES {
                if kept.is_empty() {
                    kept.push(end_of(line, TAIL_BYTES));
                }
                break;
            }
            total += separator + line.len();
            kept.push(line);
        }
        if kept.is_empty() {
            return head.to_owned();
        }
        kept.reverse();
        format!("{head}\n{}", kept.join("\n"))
    }
}

/// The last `max` bytes of `text` or fewer, starting on a character boundary.
fn end_of(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::runner::spec::Stream;

    fn stdout(text: &str) -> RawLine {
        RawLine {
            stream: Stream::Stdout,
            ts: Utc::now(),
            bytes: text.as_bytes().to_vec(),
            dropped: 0,
        }
    }

    fn empty_file() -> tempfile::NamedTempFile {
        tempfile::NamedTempFile::new().expect("temp file")
    }

    #[test]
    fn last_valid_output_line_wins_and_invalid_ones_get_a_note() {
        let mut lines = OutputLines::default();
        assert_eq!(lines.observe(&stdout("OUTPUT: {\"a\": 1}")), None);
        assert_eq!(lines.observe(&stdout("OUTPUT:[2]")), None);
        assert_eq!(lines.observe(&stdout("output: 3")), None);
        assert_eq!(
            lines.observe(&stdout("OUTPUT: {broken")).as_deref(),
            Some(
                "stroem: ignored an OUTPUT: line with invalid JSON (key must be a string at line 1 column 2)"
            )
        );
        assert_eq!(
            lines.finish(empty_file().path()).expect("output"),
            json!([2])
        );
    }

    #[test]
    fn output_file_takes_precedence() {
        let mut lines = OutputLines::default();
        lines.observe(&stdout("OUTPUT: 1"));
        let file = empty_file();
        fs::write(file.path(), "{\"from\": \"file\"}\n").expect("write");
        assert_eq!(
            lines.finish(file.path()).expect("output"),
            json!({"from": "file"})
        );
    }

    #[test]
    fn invalid_output_file_fails() {
        let file = empty_file();
        fs::write(file.path(), "not json").expect("write");
        let error = OutputLines::default()
            .finish(file.path())
            .expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "invalid JSON in $STROEM_OUTPUT: expected ident at line 1 column 2"
        );
    }

    #[test]
    fn no_output_is_null_and_oversized_output_fails() {
        assert_eq!(
            OutputLines::default()
                .finish(empty_file().path())
                .expect("null"),
            Value::Null
        );
        let file = empty_file();
        let big = format!("\"{}\"", "z".repeat(OUTPUT_LIMIT));
        fs::write(file.path(), &big).expect("write");
        let error = OutputLines::default()
            .finish(file.path())
            .expect_err("too large");
        assert_eq!(
            error.to_string(),
            "output larger than 1 MiB (1048578 bytes)"
        );
        let mut lines = OutputLines::default();
        lines.observe(&stdout(&format!("OUTPUT: {big}")));
        let error = lines.finish(empty_file().path()).expect_err("too large");
        assert_eq!(
            error.to_string(),
            "output larger than 1 MiB (1048578 bytes)"
        );
    }

    #[test]
    fn tail_keeps_the_last_twenty_lines_within_four_kib() {
        let mut tail = StderrTail::default();
        assert_eq!(tail.message("exit code 1"), "exit code 1");
        for n in 1..=25 {
            tail.push(format!("line {n}"));
        }
        let message = tail.message("exit code 2");
        assert!(message.starts_with("exit code 2\nline 6\n"), "{message}");
        assert!(message.ends_with("\nline 25"));
        tail.push("é".repeat(3000));
        let message = tail.message("killed by signal 9 (SIGKILL)");
        let body = message
            .strip_prefix("killed by signal 9 (SIGKILL)\n")
            .expect("head");
        assert_eq!(body, "é".repeat(2048));
    }
}
