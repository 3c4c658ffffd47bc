//! Retention (API §8.5 item 7, `retention` in API §10.2): the server that leads the scheduler
//! deletes jobs finished longer ago than `job_days`, with their log files, and leaves the rest;
//! another replica's scheduler never sweeps while one leads.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::Connection;
use stroem::orchestrator::Retention;
use stroem::scheduler::Scheduler;
use uuid::Uuid;

use crate::server_harness::{Backend, Home, eventually, serve_test};

const WORKSPACE: &str = r#"
tasks:
  quick:
    flow:
      say: { type: script, script: echo "a line to keep or lose" }
"#;

/// The log files of a job.
fn log_files(home: &Home, id: Uuid) -> Vec<PathBuf> {
    let dir = home.path().join("data/logs");
    let prefix = id.to_string();
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.starts_with(&prefix))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Moves a job's times `days` into the past, as if it had run then.
async fn age(backend: Backend, url: &str, id: Uuid, days: i64) {
    let shift = days * 86_400_000;
    let sql = "UPDATE jobs SET created_at = created_at - $1, started_at = started_at - $1, \
               completed_at = completed_at - $1 WHERE id = $2";
    let updated = match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
            sqlx::query(sql)
                .bind(shift)
                .bind(id)
                .execute(&mut conn)
                .await
                .expect("age")
                .rows_affected()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("postgres");
            sqlx::query(sql)
                .bind(shift)
                .bind(id)
                .execute(&mut conn)
                .await
                .expect("age")
                .rows_affected()
        }
    };
    assert_eq!(updated, 1);
}

serve_test! {
    async fn old_jobs_are_deleted_with_their_logs_by_the_leading_server(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\nretention:\n  job_days: 30\n",
            workspace.display()
        ));
        let server = home.start().await;
        let old = server.execute("default", "quick", "{}").await;
        let kept = server.execute("default", "quick", "{}").await;
        for id in [old, kept] {
            let job = server.wait_finished(id).await;
            assert_eq!(job["status"], "completed", "{job:#}");
        }
        let home_ref = &home;
        eventually("both logs on disk", Duration::from_secs(30), || async move {
            !log_files(home_ref, old).is_empty() && !log_files(home_ref, kept).is_empty()
        })
        .await;
        server.stop().await;

        // 40 days pass for one of them; the restarted server sweeps at once.
        age(backend, home.db_url(), old, 40).await;
        let server = home.start().await;
        let server_ref = &server;
        eventually("the old job to be deleted", Duration::from_secs(30), || async move {
            let deleted = &server_ref.orchestrator().store().metrics().families().retention_deleted;
            // The counter moves just after the batch's commit.
            server_ref.get(&format!("/api/jobs/{old}")).await.status == 404 && deleted.get(&["jobs"]) == 1
        })
        .await;
        assert!(log_files(&home, old).is_empty(), "{:?}", log_files(&home, old));
        assert_eq!(server.get(&format!("/api/jobs/{kept}")).await.status, 200);
        assert!(!log_files(&home, kept).is_empty());
        let logs = server.get(&format!("/api/jobs/{kept}/logs")).await.json();
        assert!(logs["logs"].as_str().is_some_and(|text| text.contains("a line to keep")), "{logs:#}");

        // Another scheduler on the same database (a second replica's) follows while the
        // server's leads: it does not sweep.
        let follower = Scheduler::new(server.orchestrator().clone())
            .with_retention(Some(Retention::new(1, 1, 3600)));
        let swept = follower.retention_round(chrono::Utc::now()).await.expect("round");
        assert_eq!(swept, None);
        server.stop().await;
    }
}
