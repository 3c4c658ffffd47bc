//! The orchestrator's state after every transition of a diamond job (a → b, c → d) driven by
//! a test worker through claim, start and complete: the job, its steps and their leases as a
//! text table, snapshotted once for the whole run.

use std::fmt::Write as _;

use serde_json::{Value, json};
use stroem::orchestrator::{JobSource, Orchestrator, StartOutcome};
use uuid::Uuid;

use super::leases::{claim, key_of, register, server_without_worker, succeeded};
use crate::server_harness::{Home, serve_test};

/// One section of the table: the job's status, then each step with its attempt and the states
/// of its leases (oldest first).
async fn table(orchestrator: &Orchestrator, id: Uuid, label: &str, out: &mut String) {
    let job = orchestrator
        .store()
        .get_job(id)
        .await
        .expect("read job")
        .expect("job exists");
    let leases = orchestrator.store().job_leases(id).await.expect("leases");
    let _ = writeln!(out, "== {label}: job {}", job.status.as_str());
    for step in &job.steps {
        let states: Vec<&str> = leases
            .iter()
            .filter(|lease| lease.step_name == step.step_name)
            .map(|lease| lease.state.as_str())
            .collect();
        let output = if step.output.is_null() {
            String::new()
        } else {
            step.output.to_string()
        };
        let line = format!(
            "{:<3} {:<10} attempt {} leases [{}] {output}",
            step.step_name,
            step.status.as_str(),
            step.attempt,
            states.join(", "),
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn output_of(step: &str) -> Value {
    json!({ "from": step })
}

serve_test! {
    async fn a_diamond_moves_through_claim_start_and_complete(backend) {
        let home = Home::new(backend).await;
        let server = server_without_worker(&home).await;
        let orchestrator = server.orchestrator();
        let id = orchestrator
            .create_job("default", "diamond", json!({}), JobSource::api())
            .await
            .expect("job")
            .id;
        let worker = register(orchestrator, "test").await;
        let mut out = String::new();
        table(orchestrator, id, "created", &mut out).await;

        let a = claim(orchestrator, worker).await;
        table(orchestrator, id, "claimed a", &mut out).await;
        assert_eq!(
            orchestrator.start_step(&key_of(&a)).await.expect("start"),
            StartOutcome::Started
        );
        table(orchestrator, id, "started a", &mut out).await;
        orchestrator
            .complete_step(&key_of(&a), succeeded(output_of("a")))
            .await
            .expect("complete a");
        table(orchestrator, id, "completed a", &mut out).await;

        // b and c are ready together; the claim order takes them by name.
        let b = claim(orchestrator, worker).await;
        let c = claim(orchestrator, worker).await;
        assert_eq!((b.lease.step_name.as_str(), c.lease.step_name.as_str()), ("b", "c"));
        table(orchestrator, id, "claimed b and c", &mut out).await;
        for claimed in [&c, &b] {
            orchestrator.start_step(&key_of(claimed)).await.expect("start");
        }
        table(orchestrator, id, "started c and b", &mut out).await;
        orchestrator
            .complete_step(&key_of(&c), succeeded(output_of("c")))
            .await
            .expect("complete c");
        table(orchestrator, id, "completed c", &mut out).await;
        orchestrator
            .complete_step(&key_of(&b), succeeded(output_of("b")))
            .await
            .expect("complete b");
        table(orchestrator, id, "completed b", &mut out).await;

        let d = claim(orchestrator, worker).await;
        assert_eq!(d.lease.step_name, "d");
        // d's rendered input sees nothing of its dependencies it did not ask for; its claim
        // carries the job's identity.
        assert_eq!(d.spec.job_id, id);
        orchestrator.start_step(&key_of(&d)).await.expect("start");
        orchestrator
            .complete_step(&key_of(&d), succeeded(output_of("d")))
            .await
            .expect("complete d");
        table(orchestrator, id, "completed d", &mut out).await;

        insta::assert_snapshot!("diamond_transitions", out);
        let job = server.job(id).await;
        assert_eq!(job["status"], "completed");
        assert_eq!(job["output"], json!({"d": {"from": "d"}}));
        server.stop().await;
    }
}
