//! Graceful shutdown leaves nothing `running` forever: steps running when the server stops are
//! stopped with it, and after a restart and a recovery sweep past the lease timeout they are
//! retried (attempts left) or failed (none left); a retried step then finishes normally. A
//! step whose worker vanished without a report (a test worker here) is recovered by lease
//! expiry after the restart.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::json;

use stroem::store::WorkerRegistration;

use super::leases::{claim, key_of};
use crate::server_harness::{Home, eventually, serve_test, step};

const WORKSPACE: &str = r#"
actions:
  slow-once:
    type: script
    script: |
      if [ ! -e "$INPUT_DIR/started" ]; then
        touch "$INPUT_DIR/started"
        echo $$ > "$INPUT_DIR/resumable.pid"
        exec sleep 30
      fi
      echo 'OUTPUT: {"resumed": true}'
    input:
      dir: { type: string, required: true }
    retry: { max_attempts: 2, delay: 0 }
  by-hand:
    type: script
    script: echo manual
    tags: [manual]
tasks:
  manual:
    flow:
      work: { action: by-hand }
  resumable:
    input:
      dir: { type: string, required: true }
    flow:
      work:
        action: slow-once
        input: { dir: "{{ input.dir }}" }
  fragile:
    input:
      dir: { type: string, required: true }
    flow:
      work:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          echo $$ > "$INPUT_DIR/fragile.pid"
          exec sleep 30
"#;

fn configure(home: &Home, workspace: &Path, embedded_worker: bool) {
    home.configure(&format!(
        "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\nembedded_worker: {embedded_worker}",
        workspace.display()
    ));
}

async fn register_tagged(orchestrator: &stroem::orchestrator::Orchestrator) -> uuid::Uuid {
    let registration = WorkerRegistration {
        name: "vanishing".to_owned(),
        version: "test".to_owned(),
        capabilities: vec!["script".to_owned()],
        tags: vec!["manual".to_owned()],
        max_concurrent: 1,
    };
    orchestrator
        .register_worker(&registration)
        .await
        .expect("register")
        .worker_id
}

fn process_gone(pid_file: &Path) -> bool {
    let pid = std::fs::read_to_string(pid_file).expect("pid file");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
    stat.is_err() || stat.is_ok_and(|stat| stat.contains(") Z "))
}

serve_test! {
    async fn steps_running_at_shutdown_are_recovered_after_a_restart(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        let scratch = home.scratch();
        configure(&home, &workspace, true);
        let server = home.start().await;
        // A worker of its own holds `manual` (the embedded worker lacks the tag) and never
        // reports back, like a process that died. It claims before other jobs exist, so it
        // can only get `manual`.
        let manual = server.execute("default", "manual", "{}").await;
        let orchestrator = server.orchestrator();
        let vanished = register_tagged(orchestrator).await;
        let held = claim(orchestrator, vanished).await;
        orchestrator.start_step(&key_of(&held)).await.expect("start");

        let body = json!({"input": {"dir": scratch}}).to_string();
        let resumable = server.execute("default", "resumable", &body).await;
        let fragile = server.execute("default", "fragile", &body).await;
        let pids = [scratch.join("resumable.pid"), scratch.join("fragile.pid")];
        let pids = &pids;
        eventually("both steps to run", Duration::from_secs(20), move || async move {
            pids.iter().all(|pid| {
                std::fs::read_to_string(pid).is_ok_and(|text| text.ends_with('\n'))
            })
        })
        .await;

        let stopping = Instant::now();
        server.stop().await;
        // Kill grace is 2 s; stopping must not wait for `sleep 30`.
        assert!(stopping.elapsed() < Duration::from_secs(15), "{:?}", stopping.elapsed());
        for pid in pids {
            assert!(process_gone(pid), "{} still runs after stop", pid.display());
        }

        // The workspace changes while the server is down: the unfinished job keeps its pinned
        // revision (WF §1, API §7.7), new jobs get the new one.
        home.workspace(&WORKSPACE.replace("resumed", "changed"));

        // Restart without a worker, so the recovered state can be inspected as it is.
        configure(&home, &workspace, false);
        let server = home.start().await;
        // Past the lease timeout (10 s), before the unmatched-step timeout (120 s) would fail
        // a ready step that this worker-less server cannot run.
        server
            .orchestrator()
            .recovery_tick(Utc::now() + TimeDelta::seconds(30))
            .await
            .expect("recovery");
        let job = server.job(resumable).await;
        assert_eq!(step(&job, "work")["status"], "ready", "{job:#}");
        assert_eq!(step(&job, "work")["retry_history"].as_array().map(Vec::len), Some(1));
        let job = server.job(fragile).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(step(&job, "work")["status"], "failed", "{job:#}");
        let job = server.job(manual).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(step(&job, "work")["error_message"], "worker lost (lease expired)");
        server.stop().await;

        // With a worker again, the retry runs to completion.
        configure(&home, &workspace, true);
        let server = home.start().await;
        let job = server.wait_finished(resumable).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(step(&job, "work")["attempt"], 2);
        assert_eq!(step(&job, "work")["output"], json!({"resumed": true}));
        let fresh = server.execute("default", "resumable", &body).await;
        let fresh = server.wait_finished(fresh).await;
        assert_eq!(step(&fresh, "work")["output"], json!({"changed": true}), "{fresh:#}");
        assert_ne!(fresh["revision"], job["revision"]);

        let unfinished = server.get("/api/jobs?status=pending,running").await;
        assert_eq!(unfinished.headers.get("x-total-count").map(String::as_str), Some("0"));
        server.stop().await;
    }
}
