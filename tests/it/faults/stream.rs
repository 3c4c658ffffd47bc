//! A log-stream client that never reads (issue #16 item 19): while its socket is full, the
//! step that floods the log runs to its end, the server answers everyone else at once, and
//! stopping the server does not wait on the stuck client.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::server_harness::{Home, serve_test};

const WORKFLOW: &str = r#"
tasks:
  flood:
    flow:
      loud:
        type: script
        script: |
          i=0
          while [ $i -lt 400 ]; do
            seq -f "flooding line %06g of a step that prints far more than a socket buffer holds" $((i * 100)) $((i * 100 + 99))
            i=$((i + 1))
          done
"#;

serve_test! {
    async fn a_client_that_never_reads_its_log_stream_holds_nothing_up(backend) {
        let home = Home::new(backend).await;
        home.configure_workspace(&home.workspace(WORKFLOW));
        let server = home.start().await;
        let id = server.execute("default", "flood", "{}").await;
        // A WebSocket upgrade, then silence: the server's frames pile up in the socket.
        let mut stuck = TcpStream::connect(server.address()).expect("connects");
        write!(
            stuck,
            "GET /api/jobs/{id}/logs/stream HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
            server.address()
        )
        .expect("upgrade request");

        let started = Instant::now();
        loop {
            let asked = Instant::now();
            let health = server.get("/healthz").await;
            assert_eq!(health.status, 200, "{}", health.body);
            assert!(asked.elapsed() < Duration::from_secs(3), "the server kept others waiting");
            let job = server.job(id).await;
            if job["completed_at"].is_string() {
                assert_eq!(job["status"], "completed", "{job:#}");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "the flood never ended: {job:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let logs = server.get(&format!("/api/jobs/{id}/logs?limit=1")).await;
        assert_eq!(logs.status, 200, "{}", logs.body);
        let stopping = Instant::now();
        server.stop().await;
        assert!(stopping.elapsed() < Duration::from_secs(15), "stop waited on the stuck client");
        drop(stuck);
    }
}
