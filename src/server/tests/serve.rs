//! `serve` on a real socket: answers on port 0 and stops when the token is cancelled.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::state;
use crate::server::serve;

/// Named bound for every wait in this test.
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn serves_until_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds port 0");
    let address = listener.local_addr().expect("bound address");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, state(true), shutdown.clone()));

    let mut stream = tokio::time::timeout(WAIT, TcpStream::connect(address))
        .await
        .expect("connects in time")
        .expect("connects");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes request");
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .expect("answers in time")
        .expect("reads response");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("x-request-id: "), "{response}");
    assert!(
        response.ends_with(r#"{"status":"ok","db":"ok"}"#),
        "{response}"
    );

    shutdown.cancel();
    let result = tokio::time::timeout(WAIT, server)
        .await
        .expect("stops in time")
        .expect("task did not panic");
    assert!(result.is_ok(), "{result:?}");
}
