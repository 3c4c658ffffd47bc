//! A network between worker and server that stalls, then drops every connection, then heals
//! (issue #16 item 19): a real `stroem work` reaches a real `stroem serve` through a small TCP
//! proxy in the test. The partition is shorter than the lease, so the step's attempt stays
//! the only one; its reports get through after the heal, and the job ends `completed`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::cluster::{Cluster, WAIT, http, wait_until};
use crate::server_harness::Backend;

const WORKFLOW: &str = r#"
tasks:
  chain:
    input:
      dir: { type: string, required: true }
    flow:
      a:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          touch "$INPUT_DIR/running-a"; echo "$STROEM_ATTEMPT" >> "$INPUT_DIR/runs-a"
          for i in 1 2 3 4 5 6 7 8; do echo "line $i"; sleep 0.5; done
          rm "$INPUT_DIR/running-a"
      b:
        type: script
        depends_on: [a]
        input: { dir: "{{ input.dir }}" }
        script: |
          [ -e "$INPUT_DIR/running-a" ] && touch "$INPUT_DIR/overlap"
          echo "$STROEM_ATTEMPT" >> "$INPUT_DIR/runs-b"
"#;

/// What the proxy does with the bytes it relays.
#[derive(Default)]
struct Switch {
    stalled: AtomicBool,
    /// Bumped to drop every connection made before.
    generation: AtomicU64,
}

/// A TCP proxy to `upstream` on its own runtime; returns its port.
fn proxy(upstream: u16, switch: Arc<Switch>) -> (u16, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("proxy port");
    let port = listener.local_addr().expect("address").port();
    runtime.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let switch = Arc::clone(&switch);
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let born = switch.generation.load(Ordering::SeqCst);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::select! {
                    () = relay(client_read, server_write, &switch, born) => {}
                    () = relay(server_read, client_write, &switch, born) => {}
                }
            });
        }
    });
    (port, runtime)
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    switch: &Switch,
    born: u64,
) {
    let alive = || switch.generation.load(Ordering::SeqCst) == born;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            () = async { while alive() { tokio::time::sleep(Duration::from_millis(50)).await } } => return,
        };
        let Ok(n @ 1..) = read else { return };
        while switch.stalled.load(Ordering::SeqCst) && alive() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !alive() || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[test]
fn a_partition_between_worker_and_server_heals_without_a_second_attempt() {
    let mut cluster = Cluster::new(Backend::Sqlite, false);
    std::fs::write(
        cluster.root().join("workspace/.workflows/main.yaml"),
        WORKFLOW,
    )
    .expect("write");
    cluster.start_server();
    let switch = Arc::new(Switch::default());
    let (port, _runtime) = proxy(cluster.port, Arc::clone(&switch));
    cluster.start_worker_via(&format!("http://127.0.0.1:{port}"));

    let dir = cluster.root().join("files");
    std::fs::create_dir_all(&dir).expect("files");
    let (status, reply) = http(
        "POST",
        &format!(
            "{}/api/workspaces/default/tasks/chain/execute",
            cluster.url()
        ),
        Some(json!({"input": {"dir": dir}})),
    )
    .expect("execute");
    assert_eq!(status, 200, "{reply}");
    let id = reply["job_id"].as_str().expect("id").to_owned();
    wait_until("step a to run", WAIT, || dir.join("running-a").exists());

    // Stall (heartbeats and log batches hang mid-request), then drop every connection, then
    // heal — all within the 10 s lease.
    switch.stalled.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(5));
    switch.generation.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    switch.stalled.store(false, Ordering::SeqCst);

    let job = cluster.ended_job(&id);
    assert_eq!(job["status"], "completed", "{job:#}\n{}", cluster.logs());
    for step in ["a", "b"] {
        let runs = std::fs::read_to_string(dir.join(format!("runs-{step}"))).unwrap_or_default();
        assert_eq!(runs, "1\n", "step {step} ran once\n{}", cluster.logs());
    }
    assert!(!dir.join("overlap").exists(), "b ran while a still did");
    // Log batches cut off by the drop were sent again, and stored once.
    let (_, logs) = http(
        "GET",
        &format!("{}/api/jobs/{id}/logs", cluster.url()),
        None,
    )
    .expect("logs");
    let text = logs["logs"].as_str().expect("jsonl");
    for i in 1..=8 {
        let needle = format!("\"line {i}\"");
        assert_eq!(
            text.matches(&needle).count(),
            1,
            "line {i} once in:\n{text}"
        );
    }
    cluster.assert_consistent(&id);
}
