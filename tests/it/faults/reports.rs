//! A worker that sends garbage or replays old reports (issue #16 item 19): every such report
//! is refused with an API §1.3 error, the job it names does not change, and the real worker's
//! jobs go on.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::server_harness::{Home, Server, serve_test, step};

const TOKEN: &str = "replay-suite-worker-token-long-enough";

const WORKFLOW: &str = r#"
tasks:
  pair:
    flow:
      a: { type: script, script: "echo a" }
      b: { type: script, script: "echo b", depends_on: [a] }
"#;

async fn worker_call(server: &Server, path: &str, body: &str) -> (u16, Value) {
    let bearer = format!("Bearer {TOKEN}");
    let reply = server
        .send(
            "POST",
            path,
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes().to_vec(),
        )
        .await;
    let json = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    (reply.status, json)
}

serve_test! {
    async fn garbage_and_replayed_reports_change_nothing(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKFLOW);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\nworker_token: {TOKEN}",
            workspace.display()
        ));
        let server = home.start().await;
        let done = server.execute("default", "pair", "{}").await;
        let before = server.wait_settled(done).await;
        assert_eq!(before["status"], "completed", "{before:#}");
        let leases = server
            .orchestrator()
            .store()
            .job_leases(done)
            .await
            .expect("leases");
        let old = leases.iter().find(|lease| lease.step_name == "a").expect("lease of a");

        let complete = |outcome: &str| {
            json!({
                "worker_id": old.worker_id,
                "lease_id": old.lease_id,
                "outcome": outcome,
                "output": {"forged": true},
                "error_message": null,
                "started_at": "2026-01-01T00:00:00Z",
                "finished_at": "2026-01-01T00:00:01Z",
            })
            .to_string()
        };
        let a = format!("/worker/jobs/{done}/steps/a/complete");
        let b = format!("/worker/jobs/{done}/steps/b/complete");
        let garbage: Vec<(String, String)> = vec![
            // A replay of an ended lease with another result.
            (a.clone(), complete("failed")),
            // The same lease on another step; an unknown lease; an unknown job.
            (b.clone(), complete("succeeded")),
            (a.clone(), complete("succeeded").replace(&old.lease_id.to_string(), &Uuid::new_v4().to_string())),
            (format!("/worker/jobs/{}/steps/a/complete", Uuid::new_v4()), complete("succeeded")),
            // Bodies that are not reports at all.
            (a.clone(), "{\"worker_id\": 5}".to_owned()),
            (a.clone(), "[1, 2, 3]".to_owned()),
            (a.clone(), "\u{0}\u{1}garbage".to_owned()),
            (a.clone(), complete("exploded")),
            (format!("/worker/jobs/{done}/steps/a/logs"), json!({"worker_id": old.worker_id, "lease_id": old.lease_id, "offset": 0, "lines": [{"ts": "x"}]}).to_string()),
            (format!("/worker/jobs/{done}/steps/a/start"), json!({"worker_id": old.worker_id, "lease_id": old.lease_id}).to_string()),
            ("/worker/heartbeat".to_owned(), json!({"worker_id": Uuid::new_v4(), "leases": [old.lease_id]}).to_string()),
        ];
        for (path, body) in &garbage {
            let (status, reply) = worker_call(&server, path, body).await;
            assert!((400..500).contains(&status), "{path} {body}: {status} {reply}");
            assert!(reply["error"].is_string() && reply["code"].is_string(), "{path}: {reply}");
        }
        let after = server.job(done).await;
        assert_eq!(after, before, "a refused report changed the job");
        assert_eq!(step(&after, "a")["output"], before["steps"][0]["output"]);

        // The real worker goes on.
        let next = server.execute("default", "pair", "{}").await;
        let job = server.wait_finished(next).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        server.stop().await;
    }
}
