//! Line capture of a child's stdout and stderr (WF §11.2): bytes are split into lines as they
//! arrive, each line is timestamped when it ends, and nothing beyond the limits is buffered, so a
//! process printing gigabytes without a newline cannot exhaust the worker's memory.
//!
//! A line keeps at most [`LINE_LIMIT`] bytes for the log. A stdout line starting with `OUTPUT:`
//! keeps up to the output limit instead, because it may carry the step's output (WF §11.3), which
//! may be larger than a log line; the log still shows only its first [`LINE_LIMIT`] bytes.

use chrono::{DateTime, Utc};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::spec::Stream;

/// Longest log line, in bytes; longer lines are cut with a `…[truncated N bytes]` marker.
pub const LINE_LIMIT: usize = 64 * 1024;
/// Largest accepted output, in bytes (WF §11.3).
pub const OUTPUT_LIMIT: usize = 1024 * 1024;
/// The prefix of a stdout line carrying output.
pub const OUTPUT_PREFIX: &[u8] = b"OUTPUT:";
/// Room for the prefix and whitespace in front of an output line's JSON.
const OUTPUT_LINE_LIMIT: usize = OUTPUT_LIMIT + 4096;

/// One line as read, before masking.
#[derive(Debug)]
pub struct RawLine {
    pub stream: Stream,
    pub ts: DateTime<Utc>,
    /// The kept bytes, without the line terminator.
    pub bytes: Vec<u8>,
    /// How many bytes of the line were dropped beyond the kept ones.
    pub dropped: usize,
}

impl RawLine {
    pub fn is_output(&self) -> bool {
        self.stream == Stream::Stdout && self.bytes.starts_with(OUTPUT_PREFIX)
    }

    /// The text for the log: at most [`LINE_LIMIT`] bytes, cut on a character boundary,
    /// followed by the truncation marker when anything was cut.
    pub fn log_text(&self) -> String {
        let mut kept = &self.bytes[..self.bytes.len().min(LINE_LIMIT)];
        if kept.len() < self.bytes.len() || self.dropped > 0 {
            // Do not split a UTF-8 sequence at the cut; invalid bytes elsewhere stay lossy.
            if let Err(error) = std::str::from_utf8(kept)
                && error.error_len().is_none()
            {
                kept = &kept[..error.valid_up_to()];
            }
        }
        let cut = self.bytes.len() - kept.len() + self.dropped;
        let mut text = String::from_utf8_lossy(kept).into_owned();
        if cut > 0 {
            text.push_str(&format!("…[truncated {cut} bytes]"));
        }
        text
    }
}

/// Splits a byte stream into [`RawLine`]s.
#[derive(Debug)]
pub struct LineSplitter {
    stream: Stream,
    current: Vec<u8>,
    dropped: usize,
}

impl LineSplitter {
    pub fn new(stream: Stream) -> Self {
        LineSplitter {
            stream,
            current: Vec::new(),
            dropped: 0,
        }
    }

    /// Feeds a chunk; every line it completes is pushed to `lines`.
    pub fn feed(&mut self, mut chunk: &[u8], lines: &mut Vec<RawLine>) {
        while let Some(end) = chunk.iter().position(|&byte| byte == b'\n') {
            self.keep(&chunk[..end]);
            lines.push(self.take());
            chunk = &chunk[end + 1..];
        }
        self.keep(chunk);
    }

    /// The last line when the stream ended without a newline.
    pub fn finish(mut self) -> Option<RawLine> {
        (!self.current.is_empty() || self.dropped > 0).then(|| self.take())
    }

    fn keep(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = self.limit().saturating_sub(self.current.len());
            if room == 0 {
                self.dropped += bytes.len();
                return;
            }
            let take = room.min(bytes.len());
            self.current.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
    }

    /// Re-evaluated while a line grows: the prefix decides once the first bytes are in.
    fn limit(&self) -> usize {
        if self.stream == Stream::Stdout && self.current.starts_with(OUTPUT_PREFIX) {
            OUTPUT_LINE_LIMIT
        } else {
            LINE_LIMIT
        }
    }

    fn take(&mut self) -> RawLine {
        let mut bytes = std::mem::take(&mut self.current);
        if self.dropped == 0 && bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        RawLine {
            stream: self.stream,
            ts: Utc::now(),
            bytes,
            dropped: std::mem::take(&mut self.dropped),
        }
    }
}

/// Reads `reader` to its end on a task of its own, sending every line to `lines`. The task ends
/// at end of file, on a read error, or when the receiver is gone.
pub fn spawn_reader<R>(
    mut reader: R,
    stream: Stream,
    lines: mpsc::Sender<RawLine>,
) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut splitter = LineSplitter::new(stream);
        let mut buffer = vec![0u8; 16 * 1024];
        let mut complete = Vec::new();
        loop {
            let read = match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            splitter.feed(&buffer[..read], &mut complete);
            for line in complete.drain(..) {
                if lines.send(line).await.is_err() {
                    return;
                }
            }
        }
        if let Some(line) = splitter.finish() {
            // The receiver may already be gone; the line then has nowhere to go.
            let _ = lines.send(line).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(stream: Stream, chunks: &[&[u8]]) -> Vec<RawLine> {
        let mut splitter = LineSplitter::new(stream);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, &mut lines);
        }
        lines.extend(splitter.finish());
        lines
    }

    fn texts(lines: &[RawLine]) -> Vec<String> {
        lines.iter().map(RawLine::log_text).collect()
    }

    #[test]
    fn splits_across_chunks_and_keeps_the_unterminated_tail() {
        let lines = split(Stream::Stderr, &[b"one\ntw", b"o\r\n\nthr", b"ee"]);
        assert_eq!(texts(&lines), ["one", "two", "", "three"]);
    }

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        let long = vec![b'x'; LINE_LIMIT + 10];
        let lines = split(Stream::Stderr, &[&long[..100], &long[100..], b"\nnext"]);
        let first = lines[0].log_text();
        assert_eq!(first.len(), LINE_LIMIT + "…[truncated 10 bytes]".len());
        assert!(first.ends_with("x…[truncated 10 bytes]"));
        assert_eq!(lines[0].bytes.len(), LINE_LIMIT);
        assert_eq!(lines[1].log_text(), "next");
    }

    #[test]
    fn cut_never_splits_a_character() {
        let mut line = vec![b'a'; LINE_LIMIT - 1];
        line.extend("ø tail".as_bytes());
        let lines = split(Stream::Stdout, &[&line]);
        assert_eq!(
            lines[0].log_text(),
            format!("{}…[truncated 7 bytes]", "a".repeat(LINE_LIMIT - 1))
        );
    }

    #[test]
    fn output_lines_keep_more_than_a_log_line_but_log_only_the_limit() {
        let mut line = b"OUTPUT: \"".to_vec();
        line.extend(vec![b'y'; LINE_LIMIT * 2]);
        line.push(b'"');
        let lines = split(Stream::Stdout, &[&line]);
        assert!(lines[0].is_output());
        assert_eq!(lines[0].bytes.len(), line.len());
        assert_eq!(lines[0].dropped, 0);
        let cut = line.len() - LINE_LIMIT;
        assert!(
            lines[0]
                .log_text()
                .ends_with(&format!("…[truncated {cut} bytes]"))
        );
        // On stderr the same line is an ordinary one.
        let lines = split(Stream::Stderr, &[&line]);
        assert_eq!(lines[0].bytes.len(), LINE_LIMIT);
        assert!(!lines[0].is_output());
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let lines = split(Stream::Stdout, &[b"ok \xff\xfe end\n"]);
        assert_eq!(lines[0].log_text(), "ok \u{fffd}\u{fffd} end");
    }
}
