//! Cancelling a running job (API §8.4): the answer is immediate, the worker learns it from its
//! next heartbeat, the step's process is stopped and the step ends `cancelled`. A job timeout
//! takes the same path from the recovery loop, failing the job instead.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::server_harness::{Home, eventually, serve_test, step, step_pid};

const WORKSPACE: &str = r#"
tasks:
  hang:
    input:
      dir: { type: string, required: true }
    flow:
      wait:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          echo "waiting for cancel"
          echo $$ > "$INPUT_DIR/pid"
          exec sleep 30
      after:
        depends_on: [wait]
        type: script
        script: echo never
  bounded:
    timeout: 2s
    input:
      dir: { type: string, required: true }
    flow:
      wait:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          echo $$ > "$INPUT_DIR/pid"
          exec sleep 30
"#;

/// Whether the process `pid` still exists (a zombie counts as gone: it runs nothing).
fn alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(Path::new("/proc").join(pid).join("stat"));
    stat.is_ok_and(|stat| !stat.contains(") Z "))
}

serve_test! {
    async fn cancelling_a_running_job_stops_its_process(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let scratch = home.scratch();
        let server = home.start().await;
        let body = json!({"input": {"dir": scratch}}).to_string();
        let id = server.execute("default", "hang", &body).await;

        let pid = step_pid(&scratch.join("pid")).await;
        assert!(alive(&pid));
        let running = server.job(id).await;
        assert_eq!(running["status"], "running", "{running:#}");
        assert_eq!(step(&running, "wait")["status"], "running");
        // Lines reach the log while the step still runs (batches of at most 100 ms).
        let server_ref = &server;
        eventually("the live log line", Duration::from_secs(5), move || async move {
            let logs = server_ref.get(&format!("/api/jobs/{id}/steps/wait/logs")).await.json();
            logs["logs"].as_str().is_some_and(|text| text.contains("waiting for cancel"))
        })
        .await;

        let reply = server.post_json(&format!("/api/jobs/{id}/cancel"), "").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json(), json!({"job_id": id, "status": "cancelled"}));

        // Heartbeat (1 s) + kill grace (2 s), with room for a loaded machine.
        let job = server
            .wait_job(id, Duration::from_secs(10), |job| {
                step(job, "wait")["status"] == "cancelled"
            })
            .await;
        assert_eq!(job["status"], "cancelled", "{job:#}");
        assert_eq!(step(&job, "after")["status"], "cancelled");
        assert!(job["completed_at"].is_string(), "{job:#}");
        let pid = &pid;
        eventually("the process to be gone", Duration::from_secs(5), move || async move {
            !alive(pid)
        })
        .await;

        let again = server.post_json(&format!("/api/jobs/{id}/cancel"), "").await;
        assert_eq!(again.status, 409, "{}", again.body);
        assert_eq!(again.json()["code"], "already_terminal");
        assert_eq!(again.json()["error"], format!("job {id} is already cancelled"));
        let stats = server.get("/api/stats").await.json();
        assert_eq!(stats["cancelled"], 1, "{stats}");
        server.stop().await;
    }
}

serve_test! {
    async fn a_job_past_its_timeout_fails_and_its_process_is_stopped(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let scratch = home.scratch();
        let server = home.start().await;
        let body = json!({"input": {"dir": scratch}}).to_string();
        let id = server.execute("default", "bounded", &body).await;

        // Timeout 2 s, sweep 1 s, heartbeat 1 s, kill grace 2 s.
        let job = server
            .wait_job(id, Duration::from_secs(15), |job| {
                step(job, "wait")["status"] == "cancelled"
            })
            .await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(job["error"], "job timed out after 2s");
        assert!(job["completed_at"].is_string(), "{job:#}");
        let pid = std::fs::read_to_string(scratch.join("pid")).expect("the step ran");
        let pid = pid.trim();
        eventually("the process to be gone", Duration::from_secs(5), move || async move {
            !alive(pid)
        })
        .await;
        server.stop().await;
    }
}

const DEFAULTED: &str = r#"
tasks:
  unbounded:
    flow:
      wait:
        type: script
        script: exec sleep 30
  patient:
    flow:
      wait:
        type: script
        timeout: 20s
        script: sleep 3 && echo done
"#;

serve_test! {
    async fn a_step_without_a_timeout_gets_the_default_step_timeout(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(DEFAULTED);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\n\
             default_step_timeout: 1s",
            workspace.display()
        ));
        let server = home.start().await;
        let unbounded = server.execute("default", "unbounded", "{}").await;
        let patient = server.execute("default", "patient", "{}").await;

        // The worker stops the step after the default 1 s (kill grace 2 s), far before 30 s.
        let job = server.wait_finished(unbounded).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(step(&job, "wait")["error_message"], "timed out after 1s");
        // A step's own timeout wins over the default: 3 s of work under `timeout: 20s`.
        let job = server.wait_finished(patient).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        server.stop().await;
    }
}

serve_test! {
    /// A cancel that races the embedded worker's claim and start of the first step (sent right
    /// after the job is created) is answered 200 or 409 `already_terminal`, never a 500, and
    /// the job ends `cancelled` with nothing left running.
    async fn a_cancel_right_after_creation_races_the_claim_cleanly(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        let scratch = home.scratch();
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}",
            workspace.display()
        ));
        let server = home.start().await;
        let body = json!({"input": {"dir": scratch}}).to_string();
        let mut jobs = Vec::new();
        for _ in 0..12 {
            let id = server.execute("default", "hang", &body).await;
            let cancel = server.post_json(&format!("/api/jobs/{id}/cancel"), "").await;
            assert!(
                cancel.status == 200 || cancel.status == 409,
                "cancel answered {}: {}",
                cancel.status,
                cancel.body
            );
            jobs.push(id);
        }
        for id in jobs {
            let server = &server;
            eventually("the cancelled job to end", Duration::from_secs(60), move || async move {
                let job = server.job(id).await;
                job["status"] == "cancelled"
                    && job["steps"]
                        .as_array()
                        .is_some_and(|steps| steps.iter().all(|s| s["status"] != "running"))
            })
            .await;
        }
        server.stop().await;
    }
}
