//! The recovery sweep's server-side backstops (API §8.5): a ready step that no active worker
//! can run fails after the unmatched timeout (item 6), and a worker step still running well
//! past its timeout has its lease revoked and its attempt failed (item 3); and a worker whose
//! lease expired under it kills the step's process (API §7.2 `unknown`).

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use stroem::orchestrator::JobSource;

use super::leases::{claim, key_of, register, succeeded};
use crate::server_harness::{Home, Server, eventually, serve_test, step, step_pid};

const WORKSPACE: &str = r#"
actions:
  on-gpu:
    type: script
    script: echo gpu
    tags: [gpu]
  plain:
    type: script
    script: echo plain
tasks:
  gpu:
    flow:
      train: { action: on-gpu }
  plain:
    flow:
      run: { action: plain }
  bounded:
    flow:
      work:
        type: script
        script: sleep 30
        timeout: 1s
"#;

async fn server(home: &Home) -> Server {
    let workspace = home.workspace(WORKSPACE);
    home.configure(&format!(
        "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\nembedded_worker: false\n\
         recovery:\n  heartbeat_timeout_secs: 60\n  sweep_interval_secs: 1\n  \
         unmatched_step_timeout_secs: 5",
        workspace.display()
    ));
    home.start().await
}

async fn create(server: &Server, task: &str) -> uuid::Uuid {
    server
        .orchestrator()
        .create_job("default", task, json!({}), JobSource::api())
        .await
        .expect("job")
        .id
}

serve_test! {
    async fn a_step_no_active_worker_can_run_fails_after_the_unmatched_timeout(backend) {
        let home = Home::new(backend).await;
        let server = server(&home).await;
        let orchestrator = server.orchestrator();
        // An active script worker without tags: it could run `plain`, never `gpu`.
        register(orchestrator, "plain worker").await;
        let gpu = create(&server, "gpu").await;
        let plain = create(&server, "plain").await;

        let early = orchestrator.recovery_tick(Utc::now()).await.expect("sweep");
        assert_eq!(early.unmatched_steps, 0, "{early:?}");
        let sweep = orchestrator
            .recovery_tick(Utc::now() + TimeDelta::seconds(7))
            .await
            .expect("sweep");
        assert_eq!(sweep.unmatched_steps, 1, "{sweep:?}");

        let job = server.job(gpu).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(
            step(&job, "train")["error_message"],
            "no active worker can run this step (needs capability 'script', tags [gpu])"
        );
        assert_eq!(step(&job, "train")["attempt"], 0);
        // A matching worker that merely has not claimed yet keeps the step waiting.
        let job = server.job(plain).await;
        assert_eq!(step(&job, "run")["status"], "ready", "{job:#}");
        server.stop().await;
    }
}

serve_test! {
    async fn a_worker_step_far_past_its_timeout_is_failed_by_the_server(backend) {
        let home = Home::new(backend).await;
        let server = server(&home).await;
        let orchestrator = server.orchestrator();
        let id = create(&server, "bounded").await;
        let worker = register(orchestrator, "stuck").await;
        let claimed = claim(orchestrator, worker).await;
        orchestrator.start_step(&key_of(&claimed)).await.expect("start");

        // Past the timeout but within kill grace (2 s) + 30 s: still the worker's to stop.
        let sweep = orchestrator
            .recovery_tick(Utc::now() + TimeDelta::seconds(5))
            .await
            .expect("sweep");
        assert_eq!(sweep.events, 0, "{sweep:?}");
        assert_eq!(step(&server.job(id).await, "work")["status"], "running");

        // The lease (60 s) outlives the backstop (timeout + kill grace + 30 s).
        let sweep = orchestrator
            .recovery_tick(Utc::now() + TimeDelta::seconds(34))
            .await
            .expect("sweep");
        assert_eq!(sweep.expired_leases, 0, "{sweep:?}");
        let job = server.job(id).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(step(&job, "work")["error_message"], "timed out after 1s");
        let leases = orchestrator.store().job_leases(id).await.expect("leases");
        assert_eq!(leases[0].state.as_str(), "revoked");
        let late = orchestrator
            .complete_step(&key_of(&claimed), succeeded(Value::Null))
            .await;
        assert!(late.is_err(), "a report under the revoked lease is refused");
        assert_eq!(server.job(id).await, job);
        server.stop().await;
    }
}

const SLEEPER: &str = r#"
tasks:
  sleeper:
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

serve_test! {
    async fn a_worker_kills_the_process_of_a_lease_the_server_expired(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(SLEEPER);
        home.configure_workspace(&workspace);
        let scratch = home.scratch();
        let server = home.start().await;
        let body = json!({"input": {"dir": scratch}}).to_string();
        let id = server.execute("default", "sleeper", &body).await;
        let pid = step_pid(&scratch.join("pid")).await;

        // As if the worker had been silent for two minutes.
        let sweep = server
            .orchestrator()
            .recovery_tick(Utc::now() + TimeDelta::minutes(2))
            .await
            .expect("sweep");
        assert_eq!(sweep.expired_leases, 1, "{sweep:?}");
        let job = server.job(id).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(step(&job, "wait")["error_message"], "worker lost (lease expired)");

        // The next heartbeat (1 s) answers the lease `unknown`; kill grace is 2 s.
        let pid = &pid;
        eventually("the process to be killed", Duration::from_secs(10), move || async move {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |stat| stat.contains(") Z "))
        })
        .await;
        assert_eq!(server.job(id).await, job, "the worker's late report changed the job");
        server.stop().await;
    }
}
