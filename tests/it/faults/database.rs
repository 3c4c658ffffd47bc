//! The database goes away under a running job (issue #16 item 19): SQLite locked by another
//! connection for longer than the busy timeout, and every PostgreSQL connection of the
//! server terminated mid-run. Reports that fail meanwhile are retried; the job ends
//! `completed`, each step once, and the database agrees.

use std::time::Duration;

use sqlx::Connection;

use super::cluster::pg_admin;
use crate::server_harness::{Backend, Home, Server, eventually};

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
          for f in "$INPUT_DIR"/running-*; do [ -e "$f" ] && echo "$f" >> "$INPUT_DIR"/overlap; done
          touch "$INPUT_DIR/running-a"; echo "$STROEM_ATTEMPT" >> "$INPUT_DIR/runs-a"
          sleep 1.5; rm "$INPUT_DIR/running-a"
      b:
        type: script
        depends_on: [a]
        input: { dir: "{{ input.dir }}" }
        script: |
          touch "$INPUT_DIR/running-b"; echo "$STROEM_ATTEMPT" >> "$INPUT_DIR/runs-b"
          sleep 1.5; rm "$INPUT_DIR/running-b"
"#;

async fn start(backend: Backend) -> (Home, Server, std::path::PathBuf) {
    let home = Home::new(backend).await;
    home.configure_workspace(&home.workspace(WORKFLOW));
    let server = home.start().await;
    let dir = home.scratch();
    (home, server, dir)
}

/// The job completed, each step ran once and never beside itself.
async fn assert_whole(server: &Server, id: uuid::Uuid, dir: &std::path::Path) {
    let job = server.wait_finished(id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    for step in ["a", "b"] {
        let runs = std::fs::read_to_string(dir.join(format!("runs-{step}"))).unwrap_or_default();
        assert_eq!(runs, "1\n", "step {step} ran once");
    }
    assert!(!dir.join("overlap").exists(), "steps overlapped");
    let leases = server
        .orchestrator()
        .store()
        .job_leases(id)
        .await
        .expect("leases");
    assert_eq!(leases.len(), 2, "{leases:?}");
    assert!(
        leases
            .iter()
            .all(|lease| lease.state == stroem::store::LeaseStatus::Ended),
        "{leases:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_by_another_connection_mid_run() {
    let (home, server, dir) = start(Backend::Sqlite).await;
    let id = server
        .execute(
            "default",
            "chain",
            &serde_json::json!({"input": {"dir": dir}}).to_string(),
        )
        .await;
    eventually("step a to run", Duration::from_secs(20), || async {
        dir.join("running-a").exists()
    })
    .await;
    // Another connection takes the write lock past step a's end and the 5 s busy timeout.
    let mut other = sqlx::SqliteConnection::connect(home.db_url())
        .await
        .expect("opens");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .expect("locks");
    tokio::time::sleep(Duration::from_secs(7)).await;
    let health = server.get("/healthz").await;
    assert_eq!(health.status, 503, "{}", health.body);
    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("unlocks");
    other.close().await.expect("closes");
    assert_whole(&server, id, &dir).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_dropped_mid_run() {
    let (home, server, dir) = start(Backend::Postgres).await;
    let database = home.db_url().rsplit('/').next().expect("name").to_owned();
    let id = server
        .execute(
            "default",
            "chain",
            &serde_json::json!({"input": {"dir": dir}}).to_string(),
        )
        .await;
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    );
    // While each step runs and as it ends.
    for marker in ["running-a", "running-b"] {
        eventually(marker, Duration::from_secs(30), || async {
            dir.join(marker).exists()
        })
        .await;
        pg_admin(&terminate);
        tokio::time::sleep(Duration::from_millis(1600)).await;
        pg_admin(&terminate);
    }
    assert_whole(&server, id, &dir).await;
    // New work is taken after the drops too.
    std::fs::create_dir_all(home.path().join("next")).expect("dir");
    let next = server
        .execute(
            "default",
            "chain",
            &serde_json::json!({"input": {"dir": home.path().join("next")}}).to_string(),
        )
        .await;
    assert_eq!(server.wait_finished(next).await["status"], "completed");
    server.stop().await;
}
