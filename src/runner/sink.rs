//! Where a running step's lines go: each captured line is cut, masked, stamped with the step and
//! attempt and handed to the caller's log sink, while the runner keeps what it needs for the
//! result (the last `OUTPUT:` line and the stderr tail for the error message).

use chrono::Utc;

use super::capture::RawLine;
use super::output::{OutputLines, StderrTail};
use super::spec::{LogLine, Stream};
use crate::mask::Masker;

/// The caller's log sink: called once per line, in order per stream, from the task running
/// the attempt. Keep it quick (push to a buffer or a channel); a slow sink slows the reading of
/// the process's output and, through the pipe, the process itself.
pub type LogSink<'a> = &'a mut (dyn FnMut(LogLine) + Send);

pub struct Sink<'a> {
    step: &'a str,
    attempt: u32,
    masker: Masker,
    logs: LogSink<'a>,
    pub tail: StderrTail,
    pub output: OutputLines,
}

impl<'a> Sink<'a> {
    pub fn new(step: &'a str, attempt: u32, masker: Masker, logs: LogSink<'a>) -> Self {
        Sink {
            step,
            attempt,
            masker,
            logs,
            tail: StderrTail::default(),
            output: OutputLines::default(),
        }
    }

    /// Delivers one captured line; an `OUTPUT:` line with invalid JSON is followed by a note.
    pub fn line(&mut self, raw: RawLine) {
        let note = self.output.observe(&raw);
        let line = self.mask(&raw.log_text());
        if raw.stream == Stream::Stderr {
            self.tail.push(line.clone());
        }
        self.emit(raw.stream, raw.ts, line);
        if let Some(note) = note {
            self.note(&note);
        }
    }

    /// A line from Strøm itself, on the step's stderr (not part of the stderr tail).
    pub fn note(&mut self, text: &str) {
        let line = self.mask(text);
        self.emit(Stream::Stderr, Utc::now(), line);
    }

    pub fn mask(&self, text: &str) -> String {
        self.masker.mask(text).into_owned()
    }

    fn emit(&mut self, stream: Stream, ts: chrono::DateTime<Utc>, line: String) {
        (self.logs)(LogLine {
            ts,
            stream,
            step: self.step.to_owned(),
            attempt: Some(self.attempt),
            line,
        });
    }
}
