//! Bounded resources and clear failures (issue 16, items 7–16), against a real server over
//! real sockets: hostile WebSocket frames, slow and stalled requests, a SQLite database locked
//! by another connection, absurd query parameters, huge log ranges, oversized outputs from a
//! worker, cross-site requests and a lower-case `bearer` scheme.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stroem::orchestrator::JobSource;
use stroem::runner::spec::{LogLine, Stream};
use uuid::Uuid;

use super::leases::{claim, key_of, register, succeeded};
use crate::server_harness::{Backend, Home, Server, serve_test, step};

/// How long any awaited condition here may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

const WORKSPACE: &str = r#"
secrets:
  HOOK: "{{ env.TEST_HOOK_SECRET }}"
actions:
  ok:
    type: script
    script: echo ok
tasks:
  single:
    flow:
      only: { action: ok }
triggers:
  open: { type: webhook, name: open-door, task: single }
  guarded: { type: webhook, task: single, secret: "{{ secret.HOOK }}" }
"#;

const HOOK_SECRET: &str = "hook-s3cr3t-value";

/// A server on [`WORKSPACE`] without an embedded worker (jobs stay pending), plus `extra`.
async fn server(home: &Home, extra: &str) -> Server {
    let workspace = home.workspace(WORKSPACE);
    home.configure(&format!(
        "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\nembedded_worker: false\n{extra}",
        workspace.display()
    ));
    home.start_with_env(&[("TEST_HOOK_SECRET", HOOK_SECRET)])
        .await
}

async fn create(server: &Server) -> Uuid {
    server
        .orchestrator()
        .create_job("default", "single", json!({}), JobSource::api())
        .await
        .expect("job created")
        .id
}

async fn job_count(server: &Server) -> String {
    let reply = server.get("/api/jobs").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.headers["x-total-count"].clone()
}

/// Item 7: a client frame larger than a few KiB ends the stream instead of being buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_stream_refuses_a_huge_client_frame() {
    let home = Home::new(Backend::Sqlite).await;
    let server = server(&home, "").await;
    let id = create(&server).await;
    let url = format!("ws://{}/api/jobs/{id}/logs/stream", server.address());
    let outcome = tokio::task::spawn_blocking(move || {
        let (mut socket, _) = tungstenite::connect(url.as_str()).expect("upgrade");
        if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_mut() {
            stream.set_read_timeout(Some(WAIT)).expect("timeout");
        }
        // Small frames are ignored (API §4.3)...
        socket
            .send(tungstenite::Message::text("hello"))
            .expect("small frame");
        // ...a 1 MiB one is not buffered: the server closes the connection.
        let _ = socket.send(tungstenite::Message::binary(vec![b'x'; 1024 * 1024]));
        loop {
            match socket.read() {
                Ok(tungstenite::Message::Close(frame)) => return format!("closed {frame:?}"),
                Ok(_) => {}
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return "still open".to_owned();
                }
                Err(error) => return format!("closed: {error}"),
            }
        }
    })
    .await
    .expect("client thread");
    assert!(outcome.starts_with("closed"), "{outcome}");
    server.stop().await;
}

/// Reads from `stream` until the server closes it or [`WAIT`] passes; returns what came.
fn read_until_closed(stream: &mut TcpStream) -> (String, bool) {
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&received).into_owned(), true),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&received).into_owned(), true);
            }
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), false),
        }
    }
}

/// Item 9: slow headers and a stalled body do not hold a connection forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_stalled_bodies_are_cut_off() {
    let home = Home::new(Backend::Sqlite).await;
    let server = server(
        &home,
        "http:\n  header_timeout_secs: 1\n  body_timeout_secs: 1\n  request_timeout_secs: 5",
    )
    .await;
    let address = server.address();
    let (headers, body) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut slow = TcpStream::connect(address).expect("connect");
        slow.write_all(b"GET /api/workspaces HTTP/1.1\r\nHost: x\r\n")
            .expect("partial headers");
        let (_, closed) = read_until_closed(&mut slow);
        let headers = (closed, started.elapsed());

        let started = Instant::now();
        let mut stalled = TcpStream::connect(address).expect("connect");
        stalled
            .write_all(
                b"POST /api/workspaces/default/tasks/single/execute HTTP/1.1\r\nHost: x\r\n\
                  Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"inp",
            )
            .expect("partial body");
        let (answer, closed) = read_until_closed(&mut stalled);
        (headers, (answer, closed, started.elapsed()))
    })
    .await
    .expect("client thread");
    assert!(headers.0, "slow headers kept the connection open");
    assert!(headers.1 < WAIT, "{:?}", headers.1);
    let (answer, closed, elapsed) = body;
    assert!(closed, "a stalled body kept the connection open: {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(elapsed < WAIT, "{elapsed:?}");
    assert_eq!(job_count(&server).await, "0");
    server.stop().await;
}

/// Item 10: another connection holding SQLite's write lock gives a prompt 503 with
/// `Retry-After`, `/healthz` says the database is unhealthy, and both recover with the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_database_answers_503_and_recovers() {
    use sqlx::Connection;
    let home = Home::new(Backend::Sqlite).await;
    let server = server(&home, "").await;
    assert_eq!(server.get("/healthz").await.status, 200);
    let url = format!("sqlite://{}", home.path().join("data/stroem.db").display());
    let mut locker = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("second connection");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .expect("lock");

    let started = Instant::now();
    let execute = "/api/workspaces/default/tasks/single/execute";
    let refused = server.post_json(execute, "{}").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["code"], "unavailable");
    assert!(
        refused.headers.contains_key("retry-after"),
        "{:?}",
        refused.headers
    );
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
    let health = server.get("/healthz").await;
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.json()["db"], "error");

    sqlx::query("ROLLBACK")
        .execute(&mut locker)
        .await
        .expect("unlock");
    locker.close().await.expect("close");
    assert_eq!(server.get("/healthz").await.status, 200);
    let accepted = server.post_json(execute, "{}").await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(job_count(&server).await, "1");
    server.stop().await;
}

serve_test! {
    /// Item 11: every numeric query parameter out of range is 400 naming it, never 500.
    async fn numeric_query_parameters_are_checked(backend) {
        let home = Home::new(backend).await;
        let server = server(&home, "").await;
        let id = create(&server).await;
        let huge = u64::MAX.to_string();
        let cases = [
            ("/api/jobs?offset=HUGE", "offset"),
            ("/api/jobs?offset=-1", "offset"),
            ("/api/jobs?offset=ten", "offset"),
            ("/api/jobs?limit=0", "limit"),
            ("/api/jobs?limit=501", "limit"),
            ("/api/jobs?limit=HUGE", "limit"),
            ("/api/workers?offset=HUGE", "offset"),
            ("/api/workers?limit=-5", "limit"),
            ("/api/jobs/ID/logs?after=HUGE", "after"),
            ("/api/jobs/ID/logs?after=-1", "after"),
            ("/api/jobs/ID/logs?limit=100001", "limit"),
            ("/api/jobs/ID/logs?limit=1.5", "limit"),
            ("/api/jobs/ID/steps/only/logs?after=HUGE", "after"),
            ("/api/jobs/ID/steps/only/logs?limit=0", "limit"),
            ("/api/jobs/ID/logs/stream?after=HUGE", "after"),
            ("/hooks/open-door/jobs/ID?timeout=0", "timeout"),
            ("/hooks/open-door/jobs/ID?timeout=301", "timeout"),
            ("/hooks/open-door/jobs/ID?timeout=HUGE", "timeout"),
            ("/hooks/open-door/jobs/ID?timeout=-1", "timeout"),
        ];
        let mut wrong = Vec::new();
        for (path, field) in cases {
            let path = path.replace("HUGE", &huge).replace("ID", &id.to_string());
            let reply = server.get(&path).await;
            let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
            if reply.status != 400 || body["field"] != field || body["code"] != "bad_request" {
                wrong.push(format!("{path}: {} {}", reply.status, reply.body));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        server.stop().await;
    }
}

serve_test! {
    /// Item 12: a log read stops at its size cap and says where to go on; reading on from
    /// `last_seq` returns the rest, every line once.
    async fn log_reads_are_capped_in_size_and_continue(backend) {
        let home = Home::new(backend).await;
        let server = server(&home, "").await;
        let orchestrator = server.orchestrator();
        let id = create(&server).await;
        let worker = register(orchestrator, "writer").await;
        let claimed = claim(orchestrator, worker).await;
        let key = key_of(&claimed);
        let text = "y".repeat(60_000);
        let total = 200u64;
        for batch in 0..total / 20 {
            let lines = (0..20)
                .map(|_| LogLine {
                    ts: chrono::Utc::now(),
                    stream: Stream::Stdout,
                    step: String::new(),
                    attempt: None,
                    line: text.clone(),
                })
                .collect();
            orchestrator
                .append_logs(&key, batch * 20, lines)
                .await
                .expect("append");
        }
        let mut after = 0;
        let mut seqs = Vec::new();
        let mut reads = 0;
        loop {
            let reply = server
                .get(&format!("/api/jobs/{id}/logs?after={after}&limit=100000"))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body.len());
            assert!(
                reply.body.len() <= 9 * 1024 * 1024,
                "one read returned {} bytes",
                reply.body.len()
            );
            let body = reply.json();
            for line in body["logs"].as_str().expect("logs").lines() {
                let line: Value = serde_json::from_str(line).expect("a JSON line");
                seqs.push(line["seq"].as_u64().expect("seq"));
            }
            reads += 1;
            after = body["last_seq"].as_u64().expect("last_seq");
            if body["has_more"] == false {
                break;
            }
            assert!(reads < 10, "too many reads");
        }
        assert!(reads >= 2, "the whole log came in one read");
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
        server.stop().await;
    }
}

serve_test! {
    /// Item 13: the server enforces the 1 MiB output limit (WF §11.3) on a worker's report.
    async fn an_oversized_output_from_a_worker_fails_the_step(backend) {
        let home = Home::new(backend).await;
        let server = server(&home, "").await;
        let orchestrator = server.orchestrator();
        let id = create(&server).await;
        let worker = register(orchestrator, "hostile").await;
        let claimed = claim(orchestrator, worker).await;
        let key = key_of(&claimed);
        orchestrator.start_step(&key).await.expect("start");
        let output = json!({"blob": "z".repeat(1024 * 1024 + 100)});
        orchestrator
            .complete_step(&key, succeeded(output))
            .await
            .expect("report taken");
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        let only = step(&job, "only");
        assert_eq!(only["status"], "failed");
        assert!(only["output"].is_null(), "{}", only["output"]);
        let error = only["error_message"].as_str().unwrap_or_default();
        assert!(error.contains("output larger than 1 MiB"), "{error}");
        server.stop().await;
    }
}

serve_test! {
    /// Items 15 and 16: cross-site requests cannot start jobs, the UI refuses to be framed,
    /// webhooks stay open to other origins, and `bearer` works in any case.
    async fn cross_site_requests_are_refused(backend) {
        let home = Home::new(backend).await;
        let server = server(&home, "").await;
        let execute = "/api/workspaces/default/tasks/single/execute";

        let bodiless = server.post_empty(execute).await;
        assert_eq!(bodiless.status, 415, "{}", bodiless.body);
        assert_eq!(bodiless.json()["code"], "unsupported_media_type");
        let form = server.request("POST", execute, Some(("text/plain", b"{}".to_vec()))).await;
        assert_eq!(form.status, 415, "{}", form.body);
        let evil = server
            .send("POST", execute, &[("Content-Type", "application/json"), ("Origin", "https://evil.example")], b"{}".to_vec())
            .await;
        assert_eq!(evil.status, 403, "{}", evil.body);
        assert_eq!(evil.json()["code"], "forbidden");
        assert_eq!(job_count(&server).await, "0");

        let own = format!("http://{}", server.address());
        let same = server
            .send("POST", execute, &[("Content-Type", "application/json"), ("Origin", &own)], b"{}".to_vec())
            .await;
        assert_eq!(same.status, 200, "{}", same.body);
        let id = same.json()["job_id"].as_str().expect("job id").to_owned();
        let cancel = server.post_empty(&format!("/api/jobs/{id}/cancel")).await;
        assert_eq!(cancel.status, 415, "{}", cancel.body);
        let cancel = server.post_json(&format!("/api/jobs/{id}/cancel"), "").await;
        assert_eq!(cancel.status, 200, "{}", cancel.body);

        // Without `auth.base_url` no CORS headers are sent (API §1.6): the UI is same-origin.
        let preflight = server
            .send("OPTIONS", execute, &[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")], Vec::new())
            .await;
        assert!(!preflight.headers.keys().any(|name| name.starts_with("access-control-")), "{:?}", preflight.headers);

        let page = server.get("/").await;
        assert_eq!(page.headers.get("x-frame-options").map(String::as_str), Some("DENY"));
        let policy = page.headers.get("content-security-policy").cloned().unwrap_or_default();
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");

        // Webhooks come from other sites by design, with any content type.
        let hook = server
            .send("POST", "/hooks/open-door", &[("Origin", "https://ci.example")], Vec::new())
            .await;
        assert_eq!(hook.status, 202, "{}", hook.body);
        let lower = format!("bearer {HOOK_SECRET}");
        let hook = server
            .send("POST", "/hooks/guarded", &[("Authorization", &lower)], Vec::new())
            .await;
        assert_eq!(hook.status, 202, "{}", hook.body);
        assert_eq!(job_count(&server).await, "3");
        server.stop().await;
    }
}
