//! Fencing and lease expiry (API §7.4, §8.5), through the running server's orchestrator with a
//! test worker standing in for a real one (the embedded worker is off): a report under a
//! forged lease or from the wrong worker changes nothing; a worker that never heartbeats loses
//! its step to recovery.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use stroem::orchestrator::{ClaimedStep, JobSource, Orchestrator, OrchestratorError};
use stroem::runner::spec::{AttemptResult, Outcome};
use stroem::store::{LeaseKey, WorkerRegistration};
use uuid::Uuid;

use crate::server_harness::{Home, Server, serve_test, step};

pub const WORKSPACE: &str = r#"
actions:
  ok:
    type: script
    script: echo ok
  flaky:
    type: script
    script: exit 1
    retry: { max_attempts: 2, delay: 0 }
  patient:
    type: script
    script: exit 1
    retry: { max_attempts: 2, delay: 1s }
tasks:
  single:
    flow:
      only: { action: ok }
  retrying:
    flow:
      try: { action: flaky }
  delayed:
    flow:
      try: { action: patient }
  diamond:
    flow:
      a: { action: ok }
      b: { action: ok, depends_on: [a] }
      c: { action: ok, depends_on: [a] }
      d: { action: ok, depends_on: [b, c] }
"#;

/// A server on [`WORKSPACE`] without its embedded worker, so only the test claims steps.
pub async fn server_without_worker(home: &Home) -> Server {
    let workspace = home.workspace(WORKSPACE);
    home.configure(&format!(
        "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\nembedded_worker: false",
        workspace.display()
    ));
    home.start().await
}

/// Registers a script worker named `name`.
pub async fn register(orchestrator: &Orchestrator, name: &str) -> Uuid {
    let registration = WorkerRegistration {
        name: name.to_owned(),
        version: "test".to_owned(),
        capabilities: vec!["script".to_owned()],
        tags: Vec::new(),
        max_concurrent: 4,
    };
    orchestrator
        .register_worker(&registration)
        .await
        .expect("register")
        .worker_id
}

/// Claims the next step for `worker`, which must exist.
pub async fn claim(orchestrator: &Orchestrator, worker: Uuid) -> ClaimedStep {
    orchestrator
        .claim(worker, Duration::from_secs(5))
        .await
        .expect("claim")
        .expect("a claimable step")
}

pub fn key_of(claimed: &ClaimedStep) -> LeaseKey {
    LeaseKey {
        lease_id: claimed.lease.lease_id,
        worker_id: claimed.lease.worker_id,
        job_id: claimed.lease.job_id,
        step_name: claimed.lease.step_name.clone(),
    }
}

pub fn succeeded(output: Value) -> AttemptResult {
    AttemptResult {
        outcome: Outcome::Succeeded,
        output,
        error_message: None,
        started_at: Utc::now(),
        finished_at: Utc::now(),
    }
}

/// Whether a report was refused as stale (API §7.4: 409 `stale_lease`).
// The braces match the variant whether it is a unit or carries the lease's state.
#[allow(clippy::unneeded_struct_pattern)]
fn is_stale<T>(result: &Result<T, OrchestratorError>) -> bool {
    matches!(result, Err(OrchestratorError::StaleLease { .. }))
}

async fn create(server: &Server, task: &str) -> Uuid {
    server
        .orchestrator()
        .create_job("default", task, json!({}), JobSource::api())
        .await
        .expect("job created")
        .id
}

serve_test! {
    async fn reports_under_a_stale_lease_change_nothing(backend) {
        let home = Home::new(backend).await;
        let server = server_without_worker(&home).await;
        let orchestrator = server.orchestrator();
        let id = create(&server, "single").await;
        let worker = register(orchestrator, "honest").await;
        let other = register(orchestrator, "other").await;
        let claimed = claim(orchestrator, worker).await;
        let key = key_of(&claimed);
        orchestrator.start_step(&key).await.expect("start");
        let before = server.job(id).await;
        assert_eq!(step(&before, "only")["status"], "running");

        let forged = LeaseKey { lease_id: Uuid::new_v4(), ..key.clone() };
        let wrong_worker = LeaseKey { worker_id: other, ..key.clone() };
        let wrong_step = LeaseKey { step_name: "elsewhere".to_owned(), ..key.clone() };
        for stale in [&forged, &wrong_worker, &wrong_step] {
            let result = orchestrator.complete_step(stale, succeeded(json!({"x": 1}))).await;
            assert!(
                is_stale(&result),
                "{stale:?}: {result:?}"
            );
            let result = orchestrator.append_logs(stale, 0, Vec::new()).await;
            assert!(is_stale(&result), "{result:?}");
            assert_eq!(server.job(id).await, before, "a stale report changed the job");
        }

        orchestrator
            .complete_step(&key, succeeded(json!({"x": 1})))
            .await
            .expect("the current lease is accepted");
        let job = server.job(id).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(step(&job, "only")["output"], json!({"x": 1}));
        assert_eq!(step(&job, "only")["worker_id"], worker.to_string());

        // The lease ended with the report: a different report under it is stale now.
        let result = orchestrator.complete_step(&key, succeeded(json!({"x": 2}))).await;
        assert!(is_stale(&result), "{result:?}");
        assert_eq!(server.job(id).await, job);
        server.stop().await;
    }
}

serve_test! {
    async fn an_expired_lease_is_retried_or_failed_by_recovery(backend) {
        let home = Home::new(backend).await;
        let server = server_without_worker(&home).await;
        let orchestrator = server.orchestrator();
        let retrying = create(&server, "retrying").await;
        let single = create(&server, "single").await;
        let silent = register(orchestrator, "silent").await;
        let first = claim(orchestrator, silent).await;
        let second = claim(orchestrator, silent).await;
        orchestrator.start_step(&key_of(&first)).await.expect("start");

        let sweep = orchestrator
            .recovery_tick(Utc::now() + TimeDelta::minutes(2))
            .await
            .expect("recovery");
        assert_eq!(sweep.expired_leases, 2, "{sweep:?}");
        assert_eq!(orchestrator.store().metrics().families().leases_expired.get(&[]), 2);
        assert_eq!(sweep.inactive_workers, 1, "{sweep:?}");

        // `try` has an attempt left: back to ready, the lost attempt in its history.
        let job = server.job(retrying).await;
        let try_step = step(&job, "try");
        assert_eq!(try_step["status"], "ready", "{job:#}");
        assert_eq!(
            try_step["retry_history"][0]["error_message"],
            "worker lost (lease expired)"
        );
        assert_ne!(job["status"], "failed");
        // `only` has none: failed, and so is its job.
        let job = server.job(single).await;
        assert_eq!(step(&job, "only")["status"], "failed", "{job:#}");
        assert_eq!(step(&job, "only")["error_message"], "worker lost (lease expired)");
        assert_eq!(job["status"], "failed");

        // The lost worker's late reports are stale.
        for claimed in [&first, &second] {
            let late = orchestrator.complete_step(&key_of(claimed), succeeded(Value::Null)).await;
            assert!(is_stale(&late), "{late:?}");
        }
        let workers = server.get("/api/workers").await.json();
        assert_eq!(workers[0]["status"], "inactive", "{workers:#}");

        server.stop().await;
    }
}

serve_test! {
    async fn a_waiting_claim_gets_a_step_whose_retry_delay_ends_during_the_wait(backend) {
        // The end of a retry delay wakes nobody: a long-polling claim must look again then by
        // itself, or the retry waits for the worker's next claim (up to its whole wait).
        let home = Home::new(backend).await;
        let server = server_without_worker(&home).await;
        let orchestrator = server.orchestrator();
        let id = create(&server, "delayed").await;
        let worker = register(orchestrator, "patient").await;
        let first = claim(orchestrator, worker).await;
        let failed = AttemptResult {
            outcome: Outcome::Failed,
            error_message: Some("exit code 1".to_owned()),
            ..succeeded(Value::Null)
        };
        orchestrator.complete_step(&key_of(&first), failed).await.expect("complete");
        let retried = orchestrator
            .claim(worker, Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("the retry is claimed once its delay ends, within the wait");
        assert_eq!((retried.lease.job_id, retried.lease.attempt), (id, 2));
        server.stop().await;
    }
}
