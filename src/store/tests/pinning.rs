//! Local-mode pinning (WF §8 `mode: local`, API §7.5 rule 4, §7.9): the first claim pins the
//! job, other workers never get its steps, heartbeats learn which jobs to release, and the
//! jobs of a lost worker are found.

use std::collections::BTreeSet;

use chrono::TimeDelta;
use serde_json::json;
use uuid::Uuid;

use super::backend_test;
use super::fixture::{Fixture, TestError, at, finished, script_worker, ttl};
use crate::engine::Event;
use crate::runner::spec::Outcome;
use crate::store::{Claim, LeaseKey, LeaseUse, Store, Worker};
use crate::workflow::model::TaskMode;

async fn claim(fx: &Fixture, store: &Store, worker: &Worker, secs: i64) -> Option<Claim<String>> {
    store
        .claim(worker, at(secs), ttl(), fx.claimer(at(secs)))
        .await
        .expect("claim")
}

fn name(claim: Option<&Claim<String>>) -> Option<String> {
    claim.map(|claim| format!("{}:{}", claim.job.task, claim.value))
}

/// Reports the claimed attempt as succeeded at `secs`.
async fn succeed(fx: &Fixture, store: &Store, claim: &Claim<String>, secs: i64) {
    let key = LeaseKey {
        lease_id: claim.lease.lease_id,
        worker_id: claim.lease.worker_id,
        job_id: claim.lease.job_id,
        step_name: claim.value.clone(),
    };
    store
        .with_lease(&key, LeaseUse::Complete { digest: None }, |job, lease| {
            let result = finished(Outcome::Succeeded, at(secs), json!(null));
            let event = Event::StepFinished {
                step: lease.step_name.clone(),
                result,
            };
            fx.apply(job, event, at(secs)).map_err(TestError::from)
        })
        .await
        .expect("complete");
}

fn set(ids: &[Uuid]) -> BTreeSet<Uuid> {
    ids.iter().copied().collect()
}

backend_test! {
    async fn a_local_job_runs_every_worker_step_on_the_worker_of_its_first_claim(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("local", at(0), 0);
        let id = job.id;
        db.store.create_job(&job, &routing).await.expect("create");
        let (other, routing) = fx.job("single", at(1), 0);
        db.store.create_job(&other, &routing).await.expect("create");
        let a = script_worker(&db.store, at(0), 10).await;
        let b = script_worker(&db.store, at(0), 10).await;

        let first = claim(&fx, &db.store, &a, 5).await;
        assert_eq!(name(first.as_ref()).as_deref(), Some("local:first"));
        // `second` is ready too, but the job is `a`'s now: `b` gets the distributed job only.
        let only = claim(&fx, &db.store, &b, 5).await;
        assert_eq!(name(only.as_ref()).as_deref(), Some("single:only"));
        assert_eq!(name(claim(&fx, &db.store, &b, 5).await.as_ref()), None);
        let second = claim(&fx, &db.store, &a, 5).await;
        assert_eq!(name(second.as_ref()).as_deref(), Some("local:second"));

        let stored = db.store.get_job(id).await.expect("read").expect("job");
        assert_eq!((stored.mode, stored.pinned_worker), (TaskMode::Local, Some(a.worker_id)));
        let (listed, _) = db.store.list_jobs(&Default::default()).await.expect("list");
        let modes: BTreeSet<_> = listed.iter().map(|job| (job.task_name.as_str(), job.mode.as_str())).collect();
        assert_eq!(modes, BTreeSet::from([("local", "local"), ("single", "distributed")]));
        // A waiting step of the job names its pin (rule 4 of the unmatched-step check).
        let (first, second) = (first.expect("first"), second.expect("second"));
        succeed(&fx, &db.store, &first, 6).await;
        succeed(&fx, &db.store, &second, 6).await;
        let waiting = db.store.waiting_steps(at(10)).await.expect("waiting");
        assert_eq!(waiting.len(), 1);
        assert_eq!((waiting[0].step_name.as_str(), waiting[0].pinned_worker), ("last", Some(a.worker_id)));
        assert_eq!(name(claim(&fx, &db.store, &b, 7).await.as_ref()), None);

        // Heartbeats: `a` keeps the unfinished job; a job it does not know of, and a job pinned
        // to another worker (`b` after registering again), are released.
        let unknown = Uuid::new_v4();
        let released = db.store.released_jobs(a.worker_id, &[id, unknown]).await.expect("release");
        assert_eq!(released, [unknown]);
        let released = db.store.released_jobs(b.worker_id, &[id]).await.expect("release");
        assert_eq!(released, [id]);
        assert!(db.store.released_jobs(a.worker_id, &[]).await.expect("release").is_empty());

        let last = claim(&fx, &db.store, &a, 8).await.expect("last");
        assert_eq!(last.value, "last");
        succeed(&fx, &db.store, &last, 9).await;
        let finished = db.store.get_job(id).await.expect("read").expect("job");
        assert!(finished.is_finished(), "{:?}", finished.status);
        let released = db.store.released_jobs(a.worker_id, &[id, id]).await.expect("release");
        assert_eq!(set(&released), set(&[id]), "a finished job is released once");
    }
}

backend_test! {
    async fn the_unfinished_jobs_of_a_lost_pinned_worker_are_found(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("local", at(0), 0);
        let id = job.id;
        db.store.create_job(&job, &routing).await.expect("create");
        let (unpinned, routing) = fx.job("local", at(1), 0);
        let a = script_worker(&db.store, at(0), 1).await;
        assert!(claim(&fx, &db.store, &a, 2).await.is_some());
        db.store.create_job(&unpinned, &routing).await.expect("create");
        assert!(db.store.lost_pinned_jobs().await.expect("lost").is_empty());

        // `a` stops heartbeating: its job is lost; a job no claim pinned yet is not.
        let inactive = db
            .store
            .mark_inactive_workers(at(100), TimeDelta::seconds(60))
            .await
            .expect("sweep");
        assert_eq!(inactive, [a.worker_id]);
        assert_eq!(db.store.lost_pinned_jobs().await.expect("lost"), [(id, a.worker_id)]);
        // A heartbeat reactivates it: the job is no longer lost.
        db.store.heartbeat(a.worker_id, &[], at(101), ttl()).await.expect("heartbeat");
        assert!(db.store.lost_pinned_jobs().await.expect("lost").is_empty());
        // Deregistered: lost again. Retention keeps a worker whose lease is still live.
        db.store.deregister_worker(a.worker_id, at(102)).await.expect("deregister");
        let deleted = db.store.delete_stale_workers(at(200_000)).await.expect("delete");
        assert_eq!(deleted, 0, "a worker holding a live lease stays");
        assert_eq!(db.store.lost_pinned_jobs().await.expect("lost"), [(id, a.worker_id)]);
    }
}
