//! Task-level `retry` (WF §13.1 [P2]) and task `concurrency` with `priority` (WF §8, API §7.5
//! [P2]) through a real server on both backends: a failed job is re-run as a chain of jobs
//! visible in the API, durably across a restart and cancellable during its delay; a limited
//! task admits at most its limit of jobs, queues the rest in order with their positions, and
//! two servers on one database racing to admit never admit more.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use stroem::orchestrator::JobSource;
use uuid::Uuid;

use super::leases::{claim, register};
use crate::server_harness::{Home, Server, eventually, serve_test, step};

/// The one bound every wait of these tests shares.
const WAIT: Duration = Duration::from_secs(60);

/// `flaky` fails until its third attempt (a counter file in `SCRATCH`); `patient` waits an
/// hour between attempts; `limited` admits two jobs at once and blocks until its gate file
/// exists.
const WORKSPACE: &str = r#"
tasks:
  flaky:
    retry: { max_attempts: 3, delay: 0s }
    flow:
      call:
        type: script
        script: |
          n=$(cat "$SCRATCH/count" 2>/dev/null || echo 0)
          n=$((n + 1))
          echo "$n" > "$SCRATCH/count"
          echo "attempt $n"
          [ "$n" -ge 3 ]
    on_error:
      - action: { type: script, script: echo failed for good }
  patient:
    retry: { max_attempts: 2, delay: 1h }
    flow:
      call: { type: script, script: exit 1 }
    on_error:
      - action: { type: script, script: echo failed for good }
  parent:
    flow:
      sub: { type: task, task: flaky }
  plain:
    flow:
      work: { type: script, script: echo plain }
  urgent:
    priority: 9
    flow:
      work: { type: script, script: echo urgent }
  limited:
    concurrency: 2
    priority: 7
    flow:
      wait:
        type: script
        script: |
          while [ ! -f "$SCRATCH/gate-$STROEM_JOB_ID" ]; do sleep 0.05; done
"#;

async fn start(home: &Home, embedded_worker: bool) -> Server {
    let workspace = home.workspace(WORKSPACE);
    home.configure(&format!(
        "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\nembedded_worker: {embedded_worker}",
        workspace.display()
    ));
    let scratch = home.scratch();
    let scratch = scratch.to_str().expect("utf-8 path");
    home.start_with_env(&[("SCRATCH", scratch)]).await
}

fn id_of(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a job id: {value}"))
}

/// The jobs of `task`, newest first.
async fn jobs_of(server: &Server, task: &str) -> Vec<Value> {
    let reply = server
        .get(&format!(
            "/api/jobs?workspace=default&task_name={task}&limit=100"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json().as_array().cloned().expect("a list of jobs")
}

serve_test! {
    async fn a_failed_job_is_retried_as_a_chain_until_it_succeeds(backend) {
        let home = Home::new(backend).await;
        let server = start(&home, true).await;
        let first = server.execute("default", "flaky", "{}").await;
        let server_ref = &server;
        eventually("the chain to end", WAIT, move || async move {
            jobs_of(server_ref, "flaky")
                .await
                .iter()
                .any(|job| job["retry_attempt"] == 3 && job["status"] == "completed")
        })
        .await;

        let jobs = jobs_of(&server, "flaky").await;
        assert_eq!(jobs.len(), 3, "{jobs:#?}");
        let last = jobs
            .iter()
            .find(|job| job["retry_attempt"] == 3)
            .expect("the third attempt");
        let last = server.job(id_of(&last["job_id"])).await;
        assert_eq!(last["source_type"], "retry", "{last:#}");
        assert_eq!(last["retry_of_job_id"], first.to_string(), "{last:#}");
        let chain = last["retry_chain"].as_array().expect("retry_chain");
        let attempts: Vec<_> = chain.iter().map(|link| link["retry_attempt"].clone()).collect();
        assert_eq!(attempts, vec![json!(1), json!(2), json!(3)], "{last:#}");
        let statuses: Vec<_> = chain.iter().map(|link| link["status"].clone()).collect();
        assert_eq!(statuses, vec![json!("failed"), json!("failed"), json!("completed")]);
        assert_eq!(chain[0]["job_id"], first.to_string());
        // Each retry names the job it repeats.
        assert_eq!(last["source_id"], chain[1]["job_id"], "{last:#}");

        let original = server.job(first).await;
        assert_eq!(original["status"], "failed", "{original:#}");
        assert_eq!(original["retry_attempt"], 1);
        assert_eq!(original["retry_job_id"], chain[1]["job_id"], "{original:#}");
        assert!(original.get("retry_due_at").is_none(), "{original:#}");
        assert_eq!(original["retry_chain"], last["retry_chain"]);
        // The chain did not end failed: no `on_error` hook fired for its failed attempts.
        for link in chain {
            let job = server.job(id_of(&link["job_id"])).await;
            assert_eq!(job["hook_jobs"], json!([]), "{job:#}");
        }
        server.stop().await;
    }
}

serve_test! {
    async fn a_due_retry_survives_a_restart(backend) {
        let home = Home::new(backend).await;
        let server = start(&home, true).await;
        let first = server.execute("default", "patient", "{}").await;
        let failed = server.wait_finished(first).await;
        assert_eq!(failed["status"], "failed", "{failed:#}");
        assert!(failed["retry_due_at"].is_string(), "{failed:#}");
        assert_eq!(failed["retry_chain"].as_array().map(Vec::len), Some(1), "{failed:#}");
        server.stop().await;

        // A new server knows the retry from the database, and makes it once it is due.
        let server = start(&home, true).await;
        let orchestrator = server.orchestrator();
        let early = orchestrator.recovery_tick(Utc::now()).await.expect("sweep");
        assert_eq!(early.retries, 0, "{early:?}");
        let later = Utc::now() + TimeDelta::hours(2);
        let sweep = orchestrator.recovery_tick(later).await.expect("sweep");
        assert_eq!(sweep.retries, 1, "{sweep:?}");
        let again = orchestrator.recovery_tick(later).await.expect("sweep");
        assert_eq!(again.retries, 0, "a retry is made once: {again:?}");

        let original = server.job(first).await;
        assert!(original.get("retry_due_at").is_none(), "{original:#}");
        let retry = id_of(&original["retry_job_id"]);
        let done = server.wait_finished(retry).await;
        assert_eq!(done["status"], "failed", "{done:#}");
        assert_eq!(done["retry_attempt"], 2, "{done:#}");
        assert_eq!(done["retry_of_job_id"], first.to_string(), "{done:#}");
        // The last attempt failed: no retry is due, and `on_error` fires for it.
        assert!(done.get("retry_due_at").is_none(), "{done:#}");
        let server_ref = &server;
        eventually("the last attempt's on_error hook", WAIT, move || async move {
            server_ref.job(retry).await["hook_jobs"]
                .as_array()
                .is_some_and(|hooks| hooks.len() == 1)
        })
        .await;
        assert_eq!(server.job(first).await["hook_jobs"], json!([]));
        server.stop().await;
    }
}

serve_test! {
    async fn cancelling_a_failed_job_during_its_delay_cancels_the_retry(backend) {
        let home = Home::new(backend).await;
        let server = start(&home, true).await;
        let first = server.execute("default", "patient", "{}").await;
        let failed = server.wait_finished(first).await;
        assert!(failed["retry_due_at"].is_string(), "{failed:#}");

        let reply = server.post_json(&format!("/api/jobs/{first}/cancel"), "").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let job = server.job(first).await;
        assert_eq!(job["status"], "failed", "the job keeps its outcome: {job:#}");
        assert!(job.get("retry_due_at").is_none(), "{job:#}");
        // The chain ended with this job: its `on_error` hook fires now.
        let server_ref = &server;
        eventually("the on_error hook", WAIT, move || async move {
            server_ref.job(first).await["hook_jobs"]
                .as_array()
                .is_some_and(|hooks| hooks.len() == 1)
        })
        .await;
        let sweep = server
            .orchestrator()
            .recovery_tick(Utc::now() + TimeDelta::hours(2))
            .await
            .expect("sweep");
        assert_eq!(sweep.retries, 0, "{sweep:?}");
        assert_eq!(jobs_of(&server, "patient").await.len(), 1);
        // Nothing is left to cancel.
        let again = server.post_json(&format!("/api/jobs/{first}/cancel"), "").await;
        assert_eq!(again.status, 409, "{}", again.body);
        server.stop().await;
    }
}

serve_test! {
    async fn a_limited_task_queues_jobs_in_order_and_admits_them_as_slots_free(backend) {
        let home = Home::new(backend).await;
        let server = start(&home, true).await;
        let gate = |id: Uuid| home.scratch().join(format!("gate-{id}"));
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(server.execute("default", "limited", "{}").await);
        }
        let detail = server.job(ids[2]).await;
        assert_eq!(detail["status"], "pending", "{detail:#}");
        assert_eq!(detail["queue_position"], 1, "{detail:#}");
        assert_eq!(detail["priority"], 7, "{detail:#}");
        assert_eq!(server.job(ids[3]).await["queue_position"], 2);
        for admitted in &ids[..2] {
            let job = server.job(*admitted).await;
            assert!(job.get("queue_position").is_none(), "{job:#}");
        }
        // The list shows the same positions.
        let listed = jobs_of(&server, "limited").await;
        let position = |id: Uuid| {
            listed
                .iter()
                .find(|job| job["job_id"] == id.to_string())
                .map(|job| job["queue_position"].clone())
        };
        assert_eq!(position(ids[2]), Some(json!(1)), "{listed:#?}");
        assert_eq!(position(ids[3]), Some(json!(2)), "{listed:#?}");
        assert_eq!(position(ids[0]), Some(Value::Null), "{listed:#?}");

        // A queued job can be cancelled; it never ran.
        let reply = server.post_json(&format!("/api/jobs/{}/cancel", ids[2]), "").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let cancelled = server.wait_finished(ids[2]).await;
        assert_eq!(cancelled["status"], "cancelled", "{cancelled:#}");
        assert!(cancelled["steps"][0]["started_at"].is_null(), "{cancelled:#}");
        assert_eq!(server.job(ids[3]).await["queue_position"], 1);

        // One admitted job ends: the next in line takes its slot.
        std::fs::write(gate(ids[0]), "").expect("open the gate");
        server.wait_finished(ids[0]).await;
        let next = server
            .wait_job(ids[3], WAIT, |job| job.get("queue_position").is_none())
            .await;
        assert_ne!(next["status"], "cancelled", "{next:#}");
        for id in [ids[1], ids[3]] {
            std::fs::write(gate(id), "").expect("open the gate");
            let done = server.wait_finished(id).await;
            assert_eq!(done["status"], "completed", "{done:#}");
        }
        server.stop().await;
    }
}

serve_test! {
    async fn two_servers_racing_to_admit_never_admit_more_than_the_limit(backend) {
        let home = Home::new(backend).await;
        // No workers: admitted jobs stay unfinished until cancelled.
        let one = start(&home, false).await;
        let two = home.start_with_env(&[]).await;

        let mut created = Vec::new();
        for round in 0..16 {
            let (a, b) = (one.orchestrator().clone(), two.orchestrator().clone());
            created.push(tokio::spawn(async move {
                let server = if round % 2 == 0 { a } else { b };
                server
                    .create_job("default", "limited", json!({}), JobSource::api())
                    .await
                    .expect("job")
                    .id
            }));
        }
        for handle in created {
            handle.await.expect("creation task");
        }
        let limit = 2;
        for _ in 0..6 {
            // Both servers' sweeps run admission passes at once as well.
            let (a, b) = (one.orchestrator().clone(), two.orchestrator().clone());
            let (swept_a, swept_b) = tokio::join!(
                a.recovery_tick(Utc::now()),
                b.recovery_tick(Utc::now())
            );
            swept_a.expect("sweep");
            swept_b.expect("sweep");

            let jobs = jobs_of(&one, "limited").await;
            let unfinished: Vec<&Value> =
                jobs.iter().filter(|job| job["completed_at"].is_null()).collect();
            assert_eq!(jobs.len(), 16, "{jobs:#?}");
            assert!(!unfinished.is_empty(), "{jobs:#?}");
            let admitted: Vec<&Value> = unfinished
                .iter()
                .copied()
                .filter(|job| job["queue_position"].is_null())
                .collect();
            assert_eq!(admitted.len(), limit.min(unfinished.len()), "{jobs:#?}");
            let mut positions: Vec<u64> = unfinished
                .iter()
                .filter_map(|job| job["queue_position"].as_u64())
                .collect();
            positions.sort_unstable();
            let expected: Vec<u64> = (1..=positions.len() as u64).collect();
            assert_eq!(positions, expected, "{jobs:#?}");

            // Free every slot at once, half through each server.
            let mut cancels = Vec::new();
            for (index, job) in admitted.iter().enumerate() {
                let server = if index % 2 == 0 { one.orchestrator() } else { two.orchestrator() };
                let server = server.clone();
                let id = id_of(&job["job_id"]);
                cancels.push(tokio::spawn(async move { server.cancel_job(id, None).await }));
            }
            for handle in cancels {
                handle.await.expect("cancel task").expect("cancelled");
            }
        }
        one.stop().await;
        two.stop().await;
    }
}

serve_test! {
    async fn a_parent_step_waits_for_its_child_chain_and_takes_its_last_result(backend) {
        let home = Home::new(backend).await;
        let server = start(&home, true).await;
        let parent = server.execute("default", "parent", "{}").await;
        let done = server.wait_finished(parent).await;
        assert_eq!(done["status"], "completed", "{done:#}");
        let sub = step(&done, "sub");
        assert_eq!(sub["status"], "completed", "{done:#}");
        // The step knows the chain by its first job, whose detail shows the whole chain.
        let first = server.job(id_of(&sub["child_job_id"])).await;
        assert_eq!(first["retry_attempt"], 1, "{first:#}");
        assert_eq!(first["parent_job_id"], parent.to_string(), "{first:#}");
        let chain = first["retry_chain"].as_array().expect("retry_chain");
        assert_eq!(chain.len(), 3, "{first:#}");
        let last = server.job(id_of(&chain[2]["job_id"])).await;
        assert_eq!(last["parent_job_id"], parent.to_string(), "{last:#}");
        assert_eq!(last["status"], "completed", "{last:#}");
        server.stop().await;
    }
}

serve_test! {
    async fn steps_of_a_higher_priority_task_are_claimed_first(backend) {
        let home = Home::new(backend).await;
        let server = start(&home, false).await;
        let orchestrator = server.orchestrator();
        let plain = orchestrator
            .create_job("default", "plain", json!({}), JobSource::api())
            .await
            .expect("job");
        let urgent = orchestrator
            .create_job("default", "urgent", json!({}), JobSource::api())
            .await
            .expect("job");
        assert_eq!(server.job(urgent.id).await["priority"], 9);
        assert_eq!(server.job(plain.id).await["priority"], 0);
        let worker = register(orchestrator, "test worker").await;
        // The older job waits: the newer one's task has the higher priority (API §7.5).
        assert_eq!(claim(orchestrator, worker).await.lease.job_id, urgent.id);
        assert_eq!(claim(orchestrator, worker).await.lease.job_id, plain.id);
        server.stop().await;
    }
}
