//! Claim order, routing, concurrency and the claim → start → complete sequence.

use std::collections::BTreeSet;

use serde_json::json;

use super::backend_test;
use super::fixture::{Fixture, TestError, at, finished, registration, script_worker, ttl};
use crate::engine::{Event, StepStatus};
use crate::runner::spec::Outcome;
use crate::store::{LeaseKey, LeaseStatus, LeaseUse, Store, StoreError, Worker};

async fn claim_name(
    fx: &Fixture,
    store: &Store,
    worker: &Worker,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    store
        .claim(worker, now, ttl(), fx.claimer(now))
        .await
        .expect("claim")
        .map(|claim| format!("{}:{}", claim.job.task, claim.value))
}

backend_test! {
    async fn claims_follow_priority_then_fifo(db) {
        let fx = Fixture::new();
        // Created in this order; `single` jobs became ready at their creation time.
        for (secs, task, priority) in [(0, "single", 0), (1, "pipeline", 0), (2, "single", 5)] {
            let (job, routing) = fx.job(task, at(secs), priority);
            db.store.create_job(&job, &routing).await.expect("create");
        }
        let worker = db
            .store
            .register_worker(&registration("w", &["script"], &["deploy"], 10), at(0))
            .await
            .expect("register");
        let mut order = Vec::new();
        while let Some(claimed) = claim_name(&fx, &db.store, &worker, at(10)).await {
            order.push(claimed);
        }
        // Highest priority first, then oldest ready; `test` waits for `build`.
        assert_eq!(order, ["single:only", "single:only", "pipeline:build"]);
        let (jobs, _) = db.store.list_jobs(&Default::default()).await.expect("list");
        assert_eq!(jobs[0].priority, 5);
    }
}

backend_test! {
    async fn routing_needs_capability_and_tags(db) {
        let fx = Fixture::new();
        for (secs, task) in [(0, "tagged"), (1, "boxed"), (2, "single")] {
            let (job, routing) = fx.job(task, at(secs), 0);
            db.store.create_job(&job, &routing).await.expect("create");
        }
        let plain = script_worker(&db.store, at(0), 10).await;
        let docker = db
            .store
            .register_worker(&registration("d", &["docker"], &[], 10), at(0))
            .await
            .expect("register");
        let deployer = db
            .store
            .register_worker(&registration("t", &["script"], &["deploy", "eu"], 10), at(0))
            .await
            .expect("register");
        // The plain script worker lacks the `deploy` tag and the docker capability.
        assert_eq!(claim_name(&fx, &db.store, &plain, at(5)).await.as_deref(), Some("single:only"));
        assert_eq!(claim_name(&fx, &db.store, &plain, at(5)).await, None);
        assert_eq!(claim_name(&fx, &db.store, &docker, at(5)).await.as_deref(), Some("boxed:run"));
        assert_eq!(claim_name(&fx, &db.store, &docker, at(5)).await, None);
        assert_eq!(claim_name(&fx, &db.store, &deployer, at(5)).await.as_deref(), Some("tagged:release"));
        assert_eq!(claim_name(&fx, &db.store, &deployer, at(5)).await, None);
    }
}

backend_test! {
    async fn a_retry_is_claimable_only_after_its_delay(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("retrying", at(0), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let worker = script_worker(&db.store, at(0), 10).await;
        let waiting = db.store.waiting_steps(at(0)).await.expect("waiting");
        assert_eq!(
            waiting.iter().map(|w| (w.step_name.as_str(), w.capability.as_str())).collect::<Vec<_>>(),
            [("try", "script")]
        );
        let claim = db.store.claim(&worker, at(1), ttl(), fx.claimer(at(1))).await.expect("claim").expect("a step");
        assert!(db.store.waiting_steps(at(1)).await.expect("waiting").is_empty());
        let key = LeaseKey {
            lease_id: claim.lease.lease_id,
            worker_id: worker.worker_id,
            job_id: job.id,
            step_name: "try".into(),
        };
        let (_, state, _) = db
            .store
            .with_lease(&key, LeaseUse::Complete { digest: None }, |job, _| {
                let result = finished(Outcome::Failed, at(2), json!(null));
                fx.apply(job, Event::StepFinished { step: "try".into(), result }, at(2)).map_err(TestError::from)
            })
            .await
            .expect("complete");
        let step = state.step("try").expect("step");
        assert_eq!((step.status, step.retry_at), (StepStatus::Ready, Some(at(32))));
        assert_eq!(claim_name(&fx, &db.store, &worker, at(31)).await, None);
        assert_eq!(claim_name(&fx, &db.store, &worker, at(32)).await.as_deref(), Some("retrying:try"));
        let leases = db.store.job_leases(job.id).await.expect("leases");
        let attempts: Vec<(u32, LeaseStatus)> = leases.iter().map(|l| (l.attempt, l.state)).collect();
        assert_eq!(attempts, [(1, LeaseStatus::Ended), (2, LeaseStatus::Active)]);
    }
}

backend_test! {
    async fn a_worker_never_holds_more_than_max_concurrent(db) {
        let fx = Fixture::new();
        for secs in 0..3 {
            let (job, routing) = fx.job("single", at(secs), 0);
            db.store.create_job(&job, &routing).await.expect("create");
        }
        let worker = script_worker(&db.store, at(0), 2).await;
        assert!(claim_name(&fx, &db.store, &worker, at(5)).await.is_some());
        assert!(claim_name(&fx, &db.store, &worker, at(5)).await.is_some());
        assert_eq!(claim_name(&fx, &db.store, &worker, at(5)).await, None);
        let worker = db.store.get_worker(worker.worker_id).await.expect("get").expect("exists");
        assert_eq!(worker.running_steps, 2);
    }
}

backend_test! {
    async fn a_rejected_step_fails_and_the_claim_moves_on(db) {
        let fx = Fixture::new();
        for secs in 0..2 {
            let (job, routing) = fx.job("single", at(secs), 0);
            db.store.create_job(&job, &routing).await.expect("create");
        }
        let worker = script_worker(&db.store, at(0), 10).await;
        let mut seen = 0;
        let claim = db
            .store
            .claim(&worker, at(5), ttl(), |job, step| {
                seen += 1;
                if seen == 1 {
                    let error = "input.name: required field is missing".to_owned();
                    fx.apply(job, Event::StepRejected { step: step.into(), error }, at(5))?;
                    return Ok(None);
                }
                fx.apply(job, Event::StepClaimed { step: step.into() }, at(5))?;
                Ok::<_, TestError>(Some(job.id))
            })
            .await
            .expect("claim")
            .expect("the second job's step");
        let (jobs, _) = db.store.list_jobs(&Default::default()).await.expect("list");
        // Newest first: the second job was claimed, the first failed at claim time.
        assert_eq!(claim.value, jobs[0].job_id);
        let first = db.store.get_job(jobs[1].job_id).await.expect("get").expect("exists");
        assert_eq!(first.step("only").map(|s| s.status), Some(StepStatus::Failed));

        // A callback that decides nothing is refused and rolled back.
        let (job, routing) = fx.job("single", at(3), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let result = db.store.claim(&worker, at(5), ttl(), |_, _| Ok::<Option<()>, StoreError>(None)).await;
        assert!(matches!(result, Err(StoreError::ClaimUndecided { .. })));
        let stored = db.store.get_job(job.id).await.expect("get").expect("exists");
        assert_eq!(stored.step("only").map(|s| s.status), Some(StepStatus::Ready));
    }
}

backend_test! {
    async fn concurrent_claimers_never_get_the_same_step(db) {
        let fx = Fixture::new();
        // Five jobs of ten loop instances each: 50 ready steps, several per job.
        for secs in 0..5 {
            let (job, routing) = fx.job("fanout", at(secs), 0);
            db.store.create_job(&job, &routing).await.expect("create");
        }
        let mut handles = Vec::new();
        for name in ["a", "b"] {
            let store = db.store.clone();
            let worker = store
                .register_worker(&registration(name, &["script"], &[], 100), at(0))
                .await
                .expect("register");
            handles.push(tokio::spawn(async move {
                let fx = Fixture::new();
                let mut claimed = Vec::new();
                while let Some(claim) = store
                    .claim(&worker, at(10), ttl(), fx.claimer(at(10)))
                    .await
                    .expect("claim")
                {
                    claimed.push((claim.lease.job_id, claim.value));
                }
                claimed
            }));
        }
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.await.expect("claimer"));
        }
        let distinct: BTreeSet<_> = all.iter().cloned().collect();
        assert_eq!(all.len(), 50, "every step claimed once");
        assert_eq!(distinct.len(), 50, "no step claimed twice");
    }
}

backend_test! {
    async fn claim_start_complete_snapshot(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("pipeline", at(0), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let worker = db
            .store
            .register_worker(&registration("w", &["script"], &["deploy"], 4), at(0))
            .await
            .expect("register");
        let mut transcript = Vec::new();
        for (index, step) in ["build", "test", "ship"].into_iter().enumerate() {
            let now = at(10 * (index as i64 + 1));
            let claim = db.store.claim(&worker, now, ttl(), fx.claimer(now)).await.expect("claim");
            let claim = match claim {
                Some(claim) => claim,
                None => {
                    transcript.push(format!("{step}: nothing to claim"));
                    break;
                }
            };
            let key = LeaseKey {
                lease_id: claim.lease.lease_id,
                worker_id: worker.worker_id,
                job_id: job.id,
                step_name: claim.value.clone(),
            };
            db.store
                .with_lease(&key, LeaseUse::Start, |job, lease| {
                    fx.apply(job, Event::StepStarted { step: lease.step_name.clone() }, now + chrono::TimeDelta::seconds(1))
                        .map_err(TestError::from)
                })
                .await
                .expect("start");
            let done = now + chrono::TimeDelta::seconds(2);
            let (_, state, lease) = db
                .store
                .with_lease(&key, LeaseUse::Complete { digest: Some(format!("d{index}")) }, |job, lease| {
                    let result = finished(Outcome::Succeeded, done, json!({"step": lease.step_name}));
                    fx.apply(job, Event::StepFinished { step: lease.step_name.clone(), result }, done)
                        .map_err(TestError::from)
                })
                .await
                .expect("complete");
            let steps: Vec<String> = state
                .steps
                .iter()
                .map(|step| format!("{}={}", step.step_name, step.status.as_str()))
                .collect();
            transcript.push(format!(
                "{} attempt {} complete: job {}, {}",
                lease.step_name,
                lease.attempt,
                state.status.as_str(),
                steps.join(" ")
            ));
        }
        let more = db.store.claim(&worker, at(100), ttl(), fx.claimer(at(100))).await.expect("claim");
        assert!(more.is_none(), "a finished job has nothing to claim");
        let state = db.store.get_job(job.id).await.expect("get").expect("exists");
        let leases = db.store.job_leases(job.id).await.expect("leases");
        // One snapshot name for both backends: they must store exactly the same thing.
        insta::assert_yaml_snapshot!(
            "claim_start_complete",
            (transcript, state, leases),
            {
                "[1].id" => "[job id]",
                "[2][].lease_id" => "[lease id]",
                "[2][].job_id" => "[job id]",
                "[2][].worker_id" => "[worker id]",
            }
        );
    }
}
