//! Restart from the failed step (docs/restart.md): `POST /api/jobs/{id}/restart` makes a new
//! job pinned to the source's revision that reuses the outputs of the steps that completed —
//! they do not run again — and runs the failed one; a job still running, a completed one, an
//! unknown one and one whose revision is gone are refused.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::server_harness::{Home, Server, serve_test, step};

/// `prepare` (a loop, counting its runs in `prepare.count`) → `deploy`, which fails until
/// the file `ready` exists; `wait` suspends on an approval until decided.
fn workspace(scratch: &std::path::Path) -> String {
    let scratch = scratch.display();
    format!(
        r#"
tasks:
  release:
    input:
      version: {{ type: string, default: "1.0" }}
    flow:
      prepare:
        type: script
        for_each: ["amd64", "arm64"]
        input: {{ arch: "{{{{ each.item }}}}" }}
        script: |
          echo "$INPUT_ARCH" >> '{scratch}/prepare.count'
          echo "OUTPUT: {{\"file\": \"$INPUT_ARCH.tar\"}}"
      deploy:
        type: script
        depends_on: [prepare]
        input: {{ file: "{{{{ prepare.output[1].file }}}}", version: "{{{{ input.version }}}}" }}
        script: |
          test -f '{scratch}/ready' || {{ echo "not ready" >&2; exit 1; }}
          echo "deployed $INPUT_FILE $INPUT_VERSION"
  gated:
    flow:
      wait:
        type: approval
        message: go?
"#
    )
}

async fn restart(server: &Server, id: impl std::fmt::Display) -> (u16, Value) {
    let reply = server
        .post_json(&format!("/api/jobs/{id}/restart"), "{}")
        .await;
    let body = if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    };
    (reply.status, body)
}

fn id_of(reply: &Value) -> Uuid {
    reply["job_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no job_id in {reply}"))
}

serve_test! {
    async fn a_restart_reuses_the_completed_steps_and_runs_the_failed_one(backend) {
        let home = Home::new(backend).await;
        let scratch = home.scratch();
        let dir = home.workspace(&workspace(&scratch));
        home.configure_workspace(&dir);
        let server = home.start().await;

        let first = server.execute("default", "release", r#"{"input": {"version": "2.0"}}"#).await;
        let failed = server.wait_job(first, crate::auth::JOB_TIMEOUT, |job| job["completed_at"].is_string()).await;
        assert_eq!(failed["status"], "failed", "{failed:#}");
        assert_eq!(step(&failed, "prepare")["status"], "completed");
        assert_eq!(step(&failed, "deploy")["status"], "failed");
        let count = || std::fs::read_to_string(scratch.join("prepare.count")).unwrap_or_default().lines().count();
        assert_eq!(count(), 2);

        std::fs::write(scratch.join("ready"), "").expect("marker");
        // The UI's short id is accepted, as on every job route.
        let short = &first.simple().to_string()[24..];
        let (status, reply) = restart(&server, short).await;
        assert_eq!(status, 200, "{reply}");
        let second = id_of(&reply);
        let job = server.wait_job(second, crate::auth::JOB_TIMEOUT, |job| job["completed_at"].is_string()).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(job["source_type"], "restart");
        assert_eq!(job["source_job_id"], json!(first));
        assert_eq!(job["revision"], failed["revision"]);
        assert_eq!(job["input"], failed["input"]);
        // `prepare` and its instances were reused, not run again.
        let prepare = step(&job, "prepare");
        assert_eq!(prepare["status"], "completed");
        assert_eq!(prepare["reused_from"], json!(first));
        assert_eq!(prepare["output"], json!([{"file": "amd64.tar"}, {"file": "arm64.tar"}]));
        assert_eq!(prepare["started_at"], Value::Null);
        assert_eq!(step(&job, "prepare[1]")["status"], "completed");
        assert_eq!(step(&job, "prepare[1]")["reused_from"], json!(first));
        assert_eq!(count(), 2, "a reused step ran again");
        let deploy = step(&job, "deploy");
        assert_eq!(deploy["status"], "completed");
        assert!(deploy.get("reused_from").is_none(), "{deploy:#}");
        assert_eq!(deploy["input"]["file"], "arm64.tar");
        let logs = server.get(&format!("/api/jobs/{second}/logs")).await.json();
        assert!(logs["logs"].as_str().is_some_and(|text| text.contains("deployed arm64.tar 2.0")), "{logs:#}");

        // A completed job has nothing to restart; an unknown one is not found.
        let (status, reply) = restart(&server, second).await;
        assert_eq!((status, reply["code"].as_str()), (409, Some("conflict")), "{reply}");
        let (status, reply) = restart(&server, Uuid::nil()).await;
        assert_eq!((status, reply["code"].as_str()), (404, Some("not_found")), "{reply}");

        // A job still running cannot be restarted; once cancelled it can.
        let gated = server.execute("default", "gated", "{}").await;
        server.wait_job(gated, crate::auth::JOB_TIMEOUT, |job| step(job, "wait")["status"] == "suspended").await;
        let (status, reply) = restart(&server, gated).await;
        assert_eq!((status, reply["code"].as_str()), (409, Some("not_terminal")), "{reply}");
        let jobs_before = server.get("/api/jobs").await.json()["total"].clone();
        assert_eq!(server.post_json(&format!("/api/jobs/{gated}/cancel"), "{}").await.status, 200);
        server.wait_job(gated, crate::auth::JOB_TIMEOUT, |job| job["completed_at"].is_string()).await;
        assert_eq!(server.get("/api/jobs").await.json()["total"], jobs_before, "a refused restart stored a job");
        let (status, reply) = restart(&server, gated).await;
        assert_eq!(status, 200, "{reply}");
        let third = server.wait_job(id_of(&reply), crate::auth::JOB_TIMEOUT, |job| step(job, "wait")["status"] == "suspended").await;
        assert_eq!(step(&third, "wait")["status"], "suspended");
        assert_eq!(server.post_json(&format!("/api/jobs/{}/cancel", id_of(&reply)), "{}").await.status, 200);
        server.stop().await;
    }
}

serve_test! {
    async fn a_restart_of_a_job_whose_revision_is_gone_is_refused(backend) {
        let home = Home::new(backend).await;
        let scratch = home.scratch();
        let dir = home.workspace(&workspace(&scratch));
        home.configure_workspace(&dir);
        let server = home.start().await;
        let first = server.execute("default", "release", "{}").await;
        let failed = server.wait_job(first, crate::auth::JOB_TIMEOUT, |job| job["completed_at"].is_string()).await;
        assert_eq!(failed["status"], "failed", "{failed:#}");

        // A new revision replaces the one the job ran, which no job pins any more.
        home.workspace(&format!("{}\n# changed\n", workspace(&scratch)));
        let reply = server.post_json("/api/workspaces/default/refresh", "{}").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_ne!(reply.json()["revision"], failed["revision"], "{}", reply.body);
        let (status, reply) = restart(&server, first).await;
        assert_eq!((status, reply["code"].as_str()), (410, Some("gone")), "{reply}");
        server.stop().await;
    }
}
