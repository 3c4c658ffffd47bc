//! One stored log line (API §4.1) and the rules applied to a line before it is stored: masking
//! with the job's mask set (WF §16.3), the 64 KiB length cap (WF §11.2) and the step filter of
//! reads (API §4.2).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::mask::Masker;
use crate::runner::spec::{LogLine, Stream};

/// Longest line text kept, in bytes; longer lines are cut with a `…[truncated N bytes]` marker,
/// the same rule as the runner's capture (WF §11.2).
pub const LINE_LIMIT: usize = 64 * 1024;

/// The step name of lines the server writes itself (API §4.1).
pub const SERVER_STEP: &str = "_server";

/// One line as stored and served: the fields and their order are exactly API §4.1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLine {
    pub seq: u64,
    #[serde(with = "millis")]
    pub ts: DateTime<Utc>,
    pub stream: Stream,
    pub step: String,
    pub attempt: Option<u32>,
    pub line: String,
}

impl StoredLine {
    /// The line as one JSONL record without the newline, as in the file and on the wire.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and a timestamp into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Timestamps are written with millisecond precision and a `Z`, like API §4.1's example, so
/// every line has the same width of timestamp whatever precision the worker captured.
mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|ts| ts.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Masks and cuts `line` and gives it `seq`: the server-side rules every stored line passes.
pub fn prepare(line: &LogLine, seq: u64, masker: &Masker) -> StoredLine {
    // Mask before cutting: cutting first could split a secret and leave its first part, which
    // no longer matches the mask value, readable.
    let masked = masker.mask(&line.line);
    StoredLine {
        seq,
        ts: line.ts,
        stream: line.stream,
        step: line.step.clone(),
        attempt: line.attempt,
        line: cut(&masked),
    }
}

/// Cuts `text` to [`LINE_LIMIT`] bytes on a character boundary and appends the marker. A line
/// the worker already cut (its kept part fits and it ends with the marker) is left alone, so a
/// line is never marked twice.
pub fn cut(text: &str) -> String {
    if text.len() <= LINE_LIMIT || already_cut(text) {
        return text.to_owned();
    }
    let mut end = LINE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated {} bytes]", &text[..end], text.len() - end)
}

fn already_cut(text: &str) -> bool {
    let Some(body) = text.strip_suffix(" bytes]") else {
        return false;
    };
    let Some(marker) = body.rfind("…[truncated ") else {
        return false;
    };
    let digits = &body[marker + "…[truncated ".len()..];
    marker <= LINE_LIMIT && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a line of `step` passes the filter `filter` (API §4.2): the exact step name, or a
/// loop step's name matching each of its instances `name[i]`.
pub fn step_matches(filter: &str, step: &str) -> bool {
    if step == filter {
        return true;
    }
    step.strip_prefix(filter)
        .and_then(|rest| rest.strip_prefix('['))
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|index| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_on_a_char_boundary_with_a_marker() {
        let text = format!("{}ø{}", "a".repeat(LINE_LIMIT - 1), "b".repeat(10));
        let stored = cut(&text);
        assert_eq!(
            stored,
            format!("{}…[truncated 12 bytes]", "a".repeat(LINE_LIMIT - 1))
        );
        assert_eq!(cut("short"), "short");
    }

    #[test]
    fn a_line_the_worker_cut_is_not_marked_again() {
        let worker_cut = format!("{}…[truncated 99 bytes]", "a".repeat(LINE_LIMIT));
        assert_eq!(cut(&worker_cut), worker_cut);
        let fake = format!("{}…[truncated 99 bytes]", "a".repeat(LINE_LIMIT + 5));
        assert!(cut(&fake).ends_with("a…[truncated 28 bytes]"));
    }

    #[test]
    fn step_filter_matches_loop_instances_only() {
        assert!(step_matches("deploy", "deploy"));
        assert!(step_matches("deploy", "deploy[12]"));
        assert!(step_matches("deploy[1]", "deploy[1]"));
        assert!(!step_matches("deploy", "deploy2"));
        assert!(!step_matches("deploy", "deploy[]"));
        assert!(!step_matches("deploy", "deploy[x]"));
        assert!(!step_matches("deploy[1]", "deploy[12]"));
    }
}
