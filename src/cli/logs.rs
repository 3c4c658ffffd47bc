//! `stroem logs <job-id>`: a job's log as `<ts> <step> | <line>` (API §4.2), or followed live
//! over the WebSocket stream until the job ends (`--follow`, API §4.3).

use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use chrono::SecondsFormat;

use super::Global;
use super::client::{Client, ClientError, exit};
use super::follow::{self, Event};
use super::render::Style;
use crate::api::{JobRef, LogsReply};
use crate::logs::StoredLine;
use crate::runner::spec::Stream;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's id: in full, the 8 characters the UI shows, or any longer start or end of it.
    #[arg(value_name = "JOB_ID")]
    pub job_id: JobRef,
    /// Only this step's lines (a loop step's name matches all its instances; `_server` the
    /// server's own lines).
    #[arg(long, value_name = "NAME")]
    pub step: Option<String>,
    /// Keep streaming new lines until the job ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines after this seq.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub after: u64,
}

pub fn run(args: Args, global: &Global) -> Result<u8, ClientError> {
    let client = global.client()?;
    let style = Style::detect();
    if args.follow {
        let events = follow::spawn(&client, &args.job_id, args.after, args.step.clone());
        let to = if global.json() { To::Jsonl } else { To::Stdout };
        stream(&events, None, to, style)?;
        return Ok(exit::OK);
    }
    let mut after = args.after;
    loop {
        let reply = read_page(&client, &args.job_id, after, args.step.as_deref())?;
        if global.json() {
            // One document: the API's answer for the first page (`--after` pages on).
            super::out::line(&reply.body);
            return Ok(exit::OK);
        }
        let page: LogsReply = reply.parse()?;
        let mut out = std::io::stdout().lock();
        for record in page.logs.lines() {
            if let Ok(line) = serde_json::from_str::<StoredLine>(record) {
                let _ = writeln!(out, "{}", format_line(&line, style));
            }
        }
        if !page.has_more || page.last_seq <= after {
            return Ok(exit::OK);
        }
        after = page.last_seq;
    }
}

fn read_page(
    client: &Client,
    job_id: &JobRef,
    after: u64,
    step: Option<&str>,
) -> Result<super::client::Reply, ClientError> {
    let mut query = vec![("after", after.to_string())];
    if let Some(step) = step {
        query.push(("step", step.to_owned()));
    }
    let path = format!("/api/jobs/{job_id}/logs");
    client.get(&path, &query)
}

/// `<ts> <step> | <line>`, stderr lines highlighted.
pub fn format_line(line: &StoredLine, style: Style) -> String {
    let ts = line.ts.to_rfc3339_opts(SecondsFormat::Millis, true);
    let text = match line.stream {
        Stream::Stderr => style.stderr_line(&line.line),
        Stream::Stdout => line.line.clone(),
    };
    format!("{} {} | {text}", style.dim(&ts), line.step)
}

/// Where followed lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// `<ts> <step> | <line>` on stdout.
    Stdout,
    /// The same on stderr, when stdout carries one JSON document.
    Stderr,
    /// The stream's JSONL records (lines, then the end record) on stdout.
    Jsonl,
}

/// Prints followed lines as they arrive until the end frame and returns the job's status.
/// Gives up with [`ClientError::Timeout`] at `deadline`.
pub fn stream(
    events: &std::sync::mpsc::Receiver<Event>,
    deadline: Option<(Instant, Duration)>,
    to: To,
    style: Style,
) -> Result<String, ClientError> {
    loop {
        let event = match deadline {
            None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some((at, _)) => events.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let event = match event {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => {
                let limit = deadline.map(|(_, limit)| limit).unwrap_or_default();
                return Err(ClientError::Timeout(format!("{limit:?}")));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(ClientError::Unexpected {
                    url: "log stream".to_owned(),
                    status: 0,
                    message: "the log follower stopped without an end".to_owned(),
                });
            }
        };
        match event {
            Event::Lines(lines) => {
                let text: String = lines
                    .iter()
                    .map(|line| match to {
                        To::Jsonl => line.to_json() + "\n",
                        To::Stdout | To::Stderr => format_line(line, style) + "\n",
                    })
                    .collect();
                // A closed pipe (`| head`) must not stop the follow: write errors are ignored.
                if to == To::Stderr {
                    let _ = std::io::stderr().lock().write_all(text.as_bytes());
                } else {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                }
            }
            Event::End(status) => {
                if to == To::Jsonl {
                    let end = serde_json::json!({"event": "end", "status": status});
                    super::out::line(&end);
                }
                return Ok(status);
            }
            Event::Failed(error) => return Err(error),
        }
    }
}
