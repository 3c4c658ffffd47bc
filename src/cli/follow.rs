//! Following a job's log over the WebSocket stream (API §4.3) for `logs --follow` and
//! `trigger --follow`.
//!
//! A background thread owns the (blocking) socket and sends [`Event`]s over a channel, so the
//! verb's thread can print as lines arrive and still give up at its `--timeout`. When the
//! connection drops before the end frame, the thread reconnects with `after` = the last seq it
//! delivered: nothing is lost, and lines at or below that seq are never delivered twice.

use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::client::{Client, ClientError, error_from, segment};
use crate::logs::StoredLine;

/// Connection attempts in a row that may fail before following gives up (exit 3).
const MAX_ATTEMPTS: u32 = 8;
/// Pause before the first reconnection; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(4);
/// Three missed server pings (API §4.3: every 30 s).
const SILENCE_LIMIT: Duration = Duration::from_secs(90);

/// What the follower reports.
#[derive(Debug)]
pub enum Event {
    /// New lines, in seq order.
    Lines(Vec<StoredLine>),
    /// The end frame: the job's terminal status.
    End(String),
    /// Following failed for good.
    Failed(ClientError),
}

/// Starts following `job_id` from `after`; events arrive on the returned channel, which closes
/// after [`Event::End`] or [`Event::Failed`].
pub fn spawn(
    client: &Client,
    job_id: impl std::fmt::Display,
    after: u64,
    step: Option<String>,
) -> mpsc::Receiver<Event> {
    let (sender, receiver) = mpsc::channel();
    let follow = Follow {
        base: client.base().replacen("http", "ws", 1),
        token: client.token().map(str::to_owned),
        job_id: job_id.to_string(),
        after,
        step,
    };
    thread::spawn(move || follow.run(&sender));
    receiver
}

struct Follow {
    /// `ws://host:port` or `wss://…`.
    base: String,
    token: Option<String>,
    /// The job's id or the part of it the user gave (the server resolves it).
    job_id: String,
    after: u64,
    step: Option<String>,
}

/// How one connection ended.
enum Ended {
    End(String),
    Dropped,
    /// The receiver is gone: nobody listens any more.
    Abandoned,
}

impl Follow {
    fn run(mut self, sender: &mpsc::Sender<Event>) {
        let mut failures = 0;
        let mut pause = FIRST_PAUSE;
        loop {
            match self.connect() {
                Ok(socket) => {
                    failures = 0;
                    pause = FIRST_PAUSE;
                    match self.read(socket, sender) {
                        Ended::End(status) => {
                            let _ = sender.send(Event::End(status));
                            return;
                        }
                        Ended::Abandoned => return,
                        Ended::Dropped => {}
                    }
                }
                Err(Connect::Refused(error)) => {
                    let _ = sender.send(Event::Failed(error));
                    return;
                }
                Err(Connect::Failed(message)) => {
                    failures += 1;
                    if failures >= MAX_ATTEMPTS {
                        let _ = sender.send(Event::Failed(ClientError::Unreachable {
                            url: self.base.clone(),
                            message,
                        }));
                        return;
                    }
                }
            }
            thread::sleep(pause);
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    fn url(&self) -> String {
        let mut url = format!(
            "{}/api/jobs/{}/logs/stream?after={}",
            self.base, self.job_id, self.after
        );
        if let Some(step) = &self.step {
            url.push_str(&format!("&step={}", segment(step)));
        }
        url
    }

    fn connect(&self) -> Result<WebSocket<MaybeTlsStream<TcpStream>>, Connect> {
        let url = self.url();
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|error| Connect::Refused(ClientError::Usage(error.to_string())))?;
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|error| Connect::Refused(ClientError::Usage(error.to_string())))?;
            request.headers_mut().insert("Authorization", value);
        }
        match tungstenite::connect(request) {
            Ok((socket, _)) => {
                // The server pings every 30 s: silence much longer than that means a half-open
                // connection, which is treated like a dropped one (reconnect and resume).
                let timeout = Some(SILENCE_LIMIT);
                let set = match socket.get_ref() {
                    MaybeTlsStream::Plain(stream) => stream.set_read_timeout(timeout),
                    MaybeTlsStream::Rustls(stream) => stream.sock.set_read_timeout(timeout),
                    _ => Ok(()),
                };
                set.map_err(|error| Connect::Failed(error.to_string()))?;
                Ok(socket)
            }
            // The server answered before the upgrade: an API error (400, 401, 404), final.
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                Err(Connect::Refused(error_from(&url, status, &body)))
            }
            Err(error) => Err(Connect::Failed(error.to_string())),
        }
    }

    fn read(
        &mut self,
        mut socket: WebSocket<MaybeTlsStream<TcpStream>>,
        sender: &mpsc::Sender<Event>,
    ) -> Ended {
        loop {
            // Pings are answered inside `read`; anything but text is of no interest.
            let text = match socket.read() {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(_)) | Err(_) => return Ended::Dropped,
                Ok(_) => continue,
            };
            let mut lines = Vec::new();
            let mut end = None;
            for record in text.as_str().lines().filter(|record| !record.is_empty()) {
                match parse(record) {
                    Some(Record::Line(line)) if line.seq > self.after => {
                        self.after = line.seq;
                        lines.push(line);
                    }
                    Some(Record::End(status)) => end = Some(status),
                    // An already delivered line (after a reconnect) or a record of a newer
                    // server this client does not know.
                    _ => {}
                }
            }
            if !lines.is_empty() && sender.send(Event::Lines(lines)).is_err() {
                return Ended::Abandoned;
            }
            if let Some(status) = end {
                // Answer the server's close, but do not wait for the connection to go away:
                // everything this client needs has arrived.
                let _ = socket.close(None);
                let _ = socket.flush();
                return Ended::End(status);
            }
        }
    }
}

enum Connect {
    /// Retrying cannot help.
    Refused(ClientError),
    /// Transport failure: retry.
    Failed(String),
}

enum Record {
    Line(StoredLine),
    End(String),
}

fn parse(record: &str) -> Option<Record> {
    let value: serde_json::Value = serde_json::from_str(record).ok()?;
    if value.get("event").and_then(|event| event.as_str()) == Some("end") {
        let status = value.get("status").and_then(|status| status.as_str());
        return Some(Record::End(status.unwrap_or("unknown").to_owned()));
    }
    serde_json::from_value(value).ok().map(Record::Line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_lines_or_the_end() {
        let line = r#"{"seq":3,"ts":"2026-03-01T12:00:01.250Z","stream":"stderr","step":"a","attempt":1,"line":"x"}"#;
        match parse(line) {
            Some(Record::Line(line)) => assert_eq!((line.seq, line.line.as_str()), (3, "x")),
            _ => panic!("a log line"),
        }
        match parse(r#"{"event":"end","status":"failed"}"#) {
            Some(Record::End(status)) => assert_eq!(status, "failed"),
            _ => panic!("the end frame"),
        }
        // Records of a newer server are skipped, not fatal.
        assert!(parse(r#"{"event":"something-new"}"#).is_none());
        assert!(parse("not json").is_none());
    }
}
