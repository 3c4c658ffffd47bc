//! The WebSocket log stream (API §4.3) with real subscribers: backfill then live lines exactly
//! once and in order, the end frame, errors before the upgrade, `stroem logs --follow`
//! resuming after a dropped connection, and server shutdown.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Server, code, redact, stderr, stdout};

/// A subscriber reading the stream to its end: every line record and the end frame.
fn subscribe(url: &str) -> (Vec<Value>, Value, Option<u16>) {
    let (mut socket, _) = tungstenite::connect(url).expect("upgrade");
    let mut lines = Vec::new();
    let mut end = Value::Null;
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Text(text)) => {
                assert!(text.as_str().ends_with('\n'), "frames hold whole lines");
                for record in text.as_str().lines() {
                    let record: Value = serde_json::from_str(record).expect("JSON record");
                    if record.get("event").is_some() {
                        end = record;
                    } else {
                        assert!(end.is_null(), "no line after the end frame");
                        lines.push(record);
                    }
                }
            }
            Ok(tungstenite::Message::Close(frame)) => {
                return (lines, end, frame.map(|frame| u16::from(frame.code)));
            }
            Ok(_) => {}
            Err(error) => panic!("stream broke: {error}"),
        }
    }
}

fn seqs(lines: &[Value]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|line| line["seq"].as_u64())
        .collect()
}

#[test]
fn stream_subscribers_mid_run_and_resuming_get_exactly_the_right_lines() {
    let server = Server::start();
    let id = server.trigger("slow", serde_json::json!({}));
    let ws = server.url.replacen("http", "ws", 1);
    // Attach once the job has printed a few lines, so backfill and live both matter.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply: Value =
            serde_json::from_str(&server.get(&format!("/api/jobs/{id}/logs"))).expect("logs");
        if reply["last_seq"].as_u64() >= Some(3) {
            break;
        }
        assert!(Instant::now() < deadline, "no log lines: {reply}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let from_start = format!("{ws}/api/jobs/{id}/logs/stream");
    let resuming = format!("{ws}/api/jobs/{id}/logs/stream?after=3");
    let first = std::thread::spawn(move || subscribe(&from_start));
    let second = std::thread::spawn(move || subscribe(&resuming));
    let (all, end, close) = first.join().expect("subscriber");
    let (tail, tail_end, tail_close) = second.join().expect("subscriber");
    assert_eq!(
        server.job(&id)["status"],
        "completed",
        "the stream ends with the job"
    );

    let stored: Value =
        serde_json::from_str(&server.get(&format!("/api/jobs/{id}/logs"))).expect("logs");
    let stored: Vec<Value> = stored["logs"]
        .as_str()
        .expect("jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).expect("line"))
        .collect();
    let count = stored.len() as u64;
    assert!(count >= 8, "{stored:?}");
    assert_eq!(seqs(&all), (1..=count).collect::<Vec<_>>());
    assert_eq!(all, stored);
    assert_eq!(seqs(&tail), (4..=count).collect::<Vec<_>>());
    assert_eq!(tail, stored[3..].to_vec());
    let texts: Vec<&str> = all
        .iter()
        .filter_map(|line| line["line"].as_str())
        .collect();
    let expected: Vec<String> = (1..=8).map(|i| format!("line {i}")).collect();
    assert_eq!(texts, expected);
    for (end, close) in [(end, close), (tail_end, tail_close)] {
        assert_eq!(
            end,
            serde_json::json!({"event": "end", "status": "completed"})
        );
        assert_eq!(close, Some(1000));
    }

    // A finished job: backfill, then the end frame at once; the step filter applies.
    let (lines, end, _) = subscribe(&format!(
        "{ws}/api/jobs/{id}/logs/stream?after=6&step=count"
    ));
    assert_eq!(seqs(&lines), (7..=count).collect::<Vec<_>>());
    assert_eq!(end["status"], "completed");
    // A step the job does not have is refused before the upgrade (issue #15).
    match tungstenite::connect(format!("{ws}/api/jobs/{id}/logs/stream?step=other")) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 400),
        other => panic!("expected 400, got {other:?}"),
    }

    // `stroem logs --follow` on a finished job prints the log, then exits 0.
    let output = server.run(&["logs", &id, "-f", "--after", "7"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        redact(&stdout(&output), server.dir.path()),
        "[ts] count | line 8\n"
    );
}

#[test]
fn stream_failures_answer_before_the_upgrade() {
    let server = Server::start();
    let ws = server.url.replacen("http", "ws", 1);
    let unknown = format!("{ws}/api/jobs/00000000-0000-0000-0000-000000000000/logs/stream");
    match tungstenite::connect(unknown) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 404);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().expect("body")).expect("JSON");
            assert_eq!(body["code"], "not_found");
        }
        other => panic!("expected 404, got {other:?}"),
    }
    let id = server.trigger("hello", serde_json::json!({"name": "x"}));
    match tungstenite::connect(format!("{ws}/api/jobs/{id}/logs/stream?after=-1")) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
    // Not a WebSocket request: a JSON 400, not axum's plain text.
    let response = ureq::get(&format!("{}/api/jobs/{id}/logs/stream", server.url))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("answer");
    assert_eq!(response.status().as_u16(), 400);
    // Following an unknown job with the CLI: exit 3.
    let output = server.run(&["logs", "-f", "00000000-0000-0000-0000-000000000000"]);
    assert_eq!(code(&output), 3, "{}", stderr(&output));
}

/// A TCP proxy in front of the server that cuts its first connection once `cut_after` went
/// through from the server; later connections pass untouched. Returns its address and a
/// counter of connections.
fn cutting_proxy(
    server: std::net::SocketAddr,
    cut_after: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&connections);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
            let mut upstream = TcpStream::connect(server).expect("connect upstream");
            let (mut client_in, mut upstream_out) = (
                client.try_clone().expect("clone"),
                upstream.try_clone().expect("clone"),
            );
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut upstream_out);
            });
            std::thread::spawn(move || {
                let mut buffer = [0u8; 16 * 1024];
                let mut seen = Vec::new();
                while let Ok(read) = upstream.read(&mut buffer) {
                    if read == 0 || client.write_all(&buffer[..read]).is_err() {
                        let _ = client.shutdown(Shutdown::Both);
                        break;
                    }
                    seen.extend_from_slice(&buffer[..read]);
                    if first && String::from_utf8_lossy(&seen).contains(cut_after) {
                        let _ = client.shutdown(Shutdown::Both);
                        let _ = upstream.shutdown(Shutdown::Both);
                        break;
                    }
                }
            });
        }
    });
    (address, connections)
}

#[test]
fn logs_follow_resumes_after_a_dropped_connection_without_loss_or_duplicates() {
    let server = Server::start();
    let address = server.running.as_ref().expect("running").address;
    let (proxy, connections) = cutting_proxy(address, "line 3");
    let id = server.trigger("slow", serde_json::json!({}));
    let output = server.run(&["logs", &id, "--follow", "-s", &proxy]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(connections.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    let texts: Vec<String> = stdout(&output)
        .lines()
        .map(|line| line.split(" | ").nth(1).unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (1..=8).map(|i| format!("line {i}")).collect();
    assert_eq!(texts, expected);
}

#[test]
fn server_shutdown_closes_open_streams() {
    let mut server = Server::start();
    let id = server.trigger("long", serde_json::json!({}));
    server.wait_for_job(&id, "the step to run", |job| job["status"] == "running");
    let url = format!(
        "{}/api/jobs/{id}/logs/stream",
        server.url.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tungstenite::connect(url).expect("upgrade");
    let running = server.running.take().expect("running");
    let stopped = Instant::now();
    server.runtime.block_on(running.stop());
    // The stream ends with the server (going away, or the end of the job it cancelled), not
    // when the step's 30 s sleep would have.
    let close = loop {
        match socket.read() {
            Ok(tungstenite::Message::Close(frame)) => {
                break frame.map(|frame| u16::from(frame.code));
            }
            Ok(_) => {}
            Err(error) => panic!("no close frame: {error}"),
        }
    };
    assert!(matches!(close, Some(1000 | 1001)), "{close:?}");
    assert!(stopped.elapsed() < Duration::from_secs(15));
}

/// The lines a cancelled step prints while it stops reach every follower before the end frame:
/// the job is `cancelled` at once (API §8.4), but the stream ends only when the job has finished
/// and its log is drained (§4.3).
#[test]
fn followers_of_a_cancelled_job_get_the_lines_its_steps_print_while_stopping() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let server = Server::start();
    // `stroem trigger --follow` creates the job and follows it from the start.
    let mut trigger = server
        .stroem()
        .args(["trigger", "trapped", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn trigger");
    let mut trigger_out = BufReader::new(trigger.stdout.take().expect("stdout")).lines();
    let id = trigger_out.next().expect("id line").expect("read");
    let trigger_rest =
        std::thread::spawn(move || trigger_out.map_while(Result::ok).collect::<Vec<_>>());
    server.wait_for_job(&id, "the step to print", |_| {
        let logs: Value =
            serde_json::from_str(&server.get(&format!("/api/jobs/{id}/logs"))).expect("logs");
        logs["logs"]
            .as_str()
            .is_some_and(|text| text.contains("started"))
    });
    let ws = format!(
        "{}/api/jobs/{id}/logs/stream",
        server.url.replacen("http", "ws", 1)
    );
    let subscriber = std::thread::spawn(move || subscribe(&ws));
    let follower = server
        .stroem()
        .args(["logs", &id, "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn logs --follow");
    // Let both attach before the cancellation.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(code(&server.run(&["cancel", &id])), 0);

    let (lines, end, close) = subscriber.join().expect("subscriber");
    let texts: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["line"].as_str())
        .collect();
    for expected in ["started", "stopping", "stopped"] {
        assert!(
            texts.contains(&expected),
            "{expected} missing from {texts:?}"
        );
    }
    assert_eq!(
        end,
        serde_json::json!({"event": "end", "status": "cancelled"})
    );
    assert_eq!(close, Some(1000));
    let job = server.job(&id);
    assert_eq!(job["status"], "cancelled");
    assert!(
        !job["completed_at"].is_null(),
        "the job has finished: {job}"
    );

    let output = follower.wait_with_output().expect("logs --follow ends");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let printed = stdout(&output);
    for expected in ["| started", "| stopping", "| stopped"] {
        assert!(
            printed.contains(expected),
            "{expected} missing from {printed}"
        );
    }

    assert_eq!(trigger.wait().expect("trigger ends").code(), Some(1));
    let rest = trigger_rest.join().expect("reader");
    for expected in ["| stopping", "| stopped"] {
        assert!(
            rest.iter().any(|line| line.contains(expected)),
            "{expected} missing from {rest:?}"
        );
    }
    assert!(
        rest.iter()
            .any(|line| line.starts_with(&format!("job {id} cancelled in "))),
        "{rest:?}"
    );
}
