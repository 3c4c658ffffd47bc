//! Fencing, heartbeats, cancellation delivery and lease expiry.

use serde_json::json;

use super::backend_test;
use super::fixture::{Fixture, TestError, at, finished, script_worker, ttl};
use crate::engine::{Event, JobStatus, StepStatus};
use crate::runner::spec::Outcome;
use crate::store::{Claim, LeaseKey, LeaseStatus, LeaseUse, StoreError};

fn key_of(claim: &Claim<String>) -> LeaseKey {
    LeaseKey {
        lease_id: claim.lease.lease_id,
        worker_id: claim.lease.worker_id,
        job_id: claim.lease.job_id,
        step_name: claim.lease.step_name.clone(),
    }
}

backend_test! {
    async fn stale_leases_are_rejected_and_change_nothing(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("single", at(0), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let worker = script_worker(&db.store, at(0), 4).await;
        let other = script_worker(&db.store, at(0), 4).await;
        let claim = db.store.claim(&worker, at(1), ttl(), fx.claimer(at(1))).await.expect("claim").expect("step");
        let key = key_of(&claim);
        assert_eq!(db.store.check_lease(&key).await.expect("current").state, LeaseStatus::Active);

        let before = db.store.get_job(job.id).await.expect("get");
        let complete = |key: LeaseKey| {
            let store = db.store.clone();
            let fx = &fx;
            async move {
                store
                    .with_lease(&key, LeaseUse::Complete { digest: Some("abc".into()) }, |job, lease| {
                        let result = finished(Outcome::Succeeded, at(3), json!({}));
                        fx.apply(job, Event::StepFinished { step: lease.step_name.clone(), result }, at(3))
                            .map_err(TestError::from)
                    })
                    .await
            }
        };
        // Another worker, another step name, an unknown lease: all stale, nothing written.
        let wrong_worker = LeaseKey { worker_id: other.worker_id, ..key.clone() };
        let wrong_step = LeaseKey { step_name: "other".into(), ..key.clone() };
        let unknown = LeaseKey { lease_id: uuid::Uuid::new_v4(), ..key.clone() };
        for stale in [wrong_worker, wrong_step, unknown] {
            let result = complete(stale.clone()).await;
            assert!(
                matches!(result, Err(TestError::Store(StoreError::StaleLease { lease_id, .. })) if lease_id == stale.lease_id),
                "{result:?}"
            );
            assert!(matches!(db.store.check_lease(&stale).await, Err(StoreError::StaleLease { .. })));
        }
        assert_eq!(db.store.get_job(job.id).await.expect("get"), before);

        // The real report is applied once; a retry finds the lease ended with its digest.
        let (_, state, _) = complete(key.clone()).await.expect("complete");
        assert_eq!(state.status, JobStatus::Completed);
        let after = db.store.get_job(job.id).await.expect("get");
        match complete(key.clone()).await {
            Err(TestError::Store(StoreError::StaleLease { state, report_digest, .. })) => {
                assert_eq!(state, Some(LeaseStatus::Ended));
                assert_eq!(report_digest.as_deref(), Some("abc"));
            }
            other => panic!("expected a stale lease, got {other:?}"),
        }
        assert_eq!(db.store.get_job(job.id).await.expect("get"), after);
    }
}

backend_test! {
    async fn heartbeats_renew_and_deliver_cancellation(db) {
        let fx = Fixture::new();
        let worker = script_worker(&db.store, at(0), 4).await;
        let mut keys = Vec::new();
        for secs in 0..2 {
            let (job, routing) = fx.job("single", at(secs), 0);
            db.store.create_job(&job, &routing).await.expect("create");
            let claim = db.store.claim(&worker, at(5), ttl(), fx.claimer(at(5))).await.expect("claim").expect("step");
            keys.push(key_of(&claim));
        }
        // Cancel the first job: its running step's lease becomes `cancelling`.
        let (_, cancelled) = db
            .store
            .with_job(keys[0].job_id, |job| {
                fx.apply(job, Event::CancelRequested { by: Some("alice".into()) }, at(6)).map_err(TestError::from)
            })
            .await
            .expect("cancel");
        assert_eq!(cancelled.step("only").map(|s| s.status), Some(StepStatus::Running));
        let forgotten = uuid::Uuid::new_v4();
        let reply = db
            .store
            .heartbeat(worker.worker_id, &[keys[0].lease_id, keys[1].lease_id, forgotten], at(30), ttl())
            .await
            .expect("heartbeat");
        assert_eq!(reply.cancel, vec![keys[0].lease_id]);
        assert_eq!(reply.unknown, vec![forgotten]);
        let lease = db.store.check_lease(&keys[1]).await.expect("current");
        assert_eq!(lease.expires_at, at(90));
        assert_eq!(db.store.expired_leases(at(89)).await.expect("expired"), vec![]);

        // The worker confirms the kill: the step is cancelled, the job finishes, the lease ends.
        let (_, state, _) = db
            .store
            .with_lease(&keys[0], LeaseUse::Complete { digest: None }, |job, lease| {
                let result = finished(Outcome::Cancelled, at(31), json!(null));
                fx.apply(job, Event::StepFinished { step: lease.step_name.clone(), result }, at(31))
                    .map_err(TestError::from)
            })
            .await
            .expect("confirm");
        assert!(state.is_finished());
        assert_eq!(state.step("only").map(|s| s.status), Some(StepStatus::Cancelled));
        let reply = db.store.heartbeat(worker.worker_id, &[keys[0].lease_id], at(32), ttl()).await.expect("heartbeat");
        assert_eq!((reply.cancel, reply.unknown), (vec![], vec![keys[0].lease_id]));

        let stranger = uuid::Uuid::new_v4();
        assert!(matches!(
            db.store.heartbeat(stranger, &[], at(33), ttl()).await,
            Err(StoreError::WorkerNotFound(id)) if id == stranger
        ));
    }
}

backend_test! {
    async fn a_start_under_a_cancelling_lease_cancels_the_step(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("single", at(0), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let worker = script_worker(&db.store, at(0), 4).await;
        let claim = db.store.claim(&worker, at(1), ttl(), fx.claimer(at(1))).await.expect("claim").expect("step");
        db.store
            .with_job(job.id, |job| fx.apply(job, Event::CancelRequested { by: None }, at(2)).map_err(TestError::from))
            .await
            .expect("cancel");
        let (_, state, lease) = db
            .store
            .with_lease(&key_of(&claim), LeaseUse::Start, |job, lease| {
                fx.apply(job, Event::StepStarted { step: lease.step_name.clone() }, at(3)).map_err(TestError::from)
            })
            .await
            .expect("start");
        // The server answers 409 because the lease it found was `cancelling`.
        assert_eq!(lease.state, LeaseStatus::Cancelling);
        assert_eq!(state.step("only").map(|s| s.status), Some(StepStatus::Cancelled));
        let leases = db.store.job_leases(job.id).await.expect("leases");
        assert_eq!(leases[0].state, LeaseStatus::Ended);
    }
}

backend_test! {
    async fn expired_leases_are_found_and_expired_once(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("retrying", at(0), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let worker = script_worker(&db.store, at(0), 4).await;
        let claim = db.store.claim(&worker, at(0), ttl(), fx.claimer(at(0))).await.expect("claim").expect("step");
        assert_eq!(claim.lease.expires_at, at(60));
        assert_eq!(db.store.expired_leases(at(59)).await.expect("list"), vec![]);
        let expired = db.store.expired_leases(at(60)).await.expect("list");
        assert_eq!(expired.iter().map(|l| l.lease_id).collect::<Vec<_>>(), vec![claim.lease.lease_id]);

        // A heartbeat renewed it in the meantime: expiring it now changes nothing.
        db.store.heartbeat(worker.worker_id, &[claim.lease.lease_id], at(61), ttl()).await.expect("heartbeat");
        let lost = |job: &mut crate::engine::JobState, lease: &crate::store::Lease| {
            let mut result = finished(Outcome::Failed, at(200), json!(null));
            result.error_message = Some("worker lost (lease expired)".into());
            fx.apply(job, Event::StepFinished { step: lease.step_name.clone(), result }, at(200))
                .map_err(TestError::from)
        };
        let outcome = db.store.expire_lease(claim.lease.lease_id, at(61), lost).await.expect("expire");
        assert!(outcome.is_none());

        let outcome = db.store.expire_lease(claim.lease.lease_id, at(200), lost).await.expect("expire");
        let (_, state) = outcome.expect("expired");
        let step = state.step("try").expect("step");
        assert_eq!((step.status, step.attempt), (StepStatus::Ready, 1));
        assert_eq!(step.retry_history[0].error_message.as_deref(), Some("worker lost (lease expired)"));
        let leases = db.store.job_leases(job.id).await.expect("leases");
        assert_eq!(leases[0].state, LeaseStatus::Expired);
        assert_eq!(db.store.expired_leases(at(1000)).await.expect("list"), vec![]);
        let reply = db.store.heartbeat(worker.worker_id, &[claim.lease.lease_id], at(201), ttl()).await.expect("heartbeat");
        assert_eq!(reply.unknown, vec![claim.lease.lease_id]);
        assert!(db.store.expire_lease(claim.lease.lease_id, at(300), lost).await.expect("expire").is_none());
    }
}

backend_test! {
    async fn a_step_the_server_takes_away_revokes_its_lease(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("single", at(0), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let worker = script_worker(&db.store, at(0), 4).await;
        let claim = db.store.claim(&worker, at(1), ttl(), fx.claimer(at(1))).await.expect("claim").expect("step");
        assert_eq!(db.store.live_leases().await.expect("live").len(), 1);
        // The step-timeout backstop (API §8.5 item 3) fails the attempt through `with_job`.
        let (_, state) = db
            .store
            .with_job(job.id, |job| {
                fx.apply(job, Event::StepTimedOut { step: "only".into() }, at(900)).map_err(TestError::from)
            })
            .await
            .expect("time out");
        assert_eq!(state.step("only").map(|s| s.status), Some(StepStatus::Failed));
        let leases = db.store.job_leases(job.id).await.expect("leases");
        assert_eq!(leases[0].state, LeaseStatus::Revoked);
        assert!(db.store.live_leases().await.expect("live").is_empty());
        let reply = db.store.heartbeat(worker.worker_id, &[claim.lease.lease_id], at(901), ttl()).await.expect("heartbeat");
        assert_eq!(reply.unknown, vec![claim.lease.lease_id]);
        assert!(matches!(db.store.check_lease(&key_of(&claim)).await, Err(StoreError::StaleLease { .. })));
    }
}
