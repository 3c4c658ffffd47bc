//! Retention (API §8.5 item 7): which finished jobs and which workers may be deleted, oldest
//! first, in batches, with old timestamps standing in for the passing of days.

use std::collections::BTreeSet;

use chrono::TimeDelta;
use serde_json::json;
use uuid::Uuid;

use super::backend_test;
use super::fixture::{Fixture, TestError, at, finished, script_worker, ttl};
use crate::engine::{Event, JobState, JobStatus, StepStatus};
use crate::runner::spec::Outcome;
use crate::store::{JobRouting, LeaseKey, LeaseUse};

/// A `single` job that finished at `secs`, with its parent.
fn finished_job(fx: &Fixture, secs: i64, parent: Option<Uuid>) -> (JobState, JobRouting) {
    let (mut job, routing) = fx.job("single", at(secs - 5), 0);
    for step in job.steps.iter_mut() {
        step.status = StepStatus::Completed;
        step.completed_at = Some(at(secs));
    }
    job.status = JobStatus::Completed;
    job.started_at = Some(at(secs - 5));
    job.completed_at = Some(at(secs));
    job.parent_job_id = parent;
    (job, routing)
}

/// A `single` job not finished yet, with its parent.
fn unfinished_job(fx: &Fixture, secs: i64, parent: Option<Uuid>) -> (JobState, JobRouting) {
    let (mut job, routing) = fx.job("single", at(secs), 0);
    job.parent_job_id = parent;
    (job, routing)
}

fn set(ids: &[Uuid]) -> BTreeSet<Uuid> {
    ids.iter().copied().collect()
}

backend_test! {
    async fn retention_deletes_old_finished_jobs_but_never_an_unfinished_family(db) {
        let fx = Fixture::new();
        let store = &db.store;
        // One job that really ran: finished at 12 s with an ended lease and steps.
        let (ran, routing) = fx.job("single", at(0), 0);
        store.create_job(&ran, &routing).await.expect("create");
        let worker = script_worker(store, at(0), 1).await;
        let claim = store.claim(&worker, at(10), ttl(), fx.claimer(at(10))).await.expect("claim").expect("claimed");
        let key = LeaseKey {
            lease_id: claim.lease.lease_id,
            worker_id: worker.worker_id,
            job_id: ran.id,
            step_name: claim.value.clone(),
        };
        store
            .with_lease(&key, LeaseUse::Complete { digest: None }, |job, lease| {
                let result = finished(Outcome::Succeeded, at(12), json!(null));
                let event = Event::StepFinished { step: lease.step_name.clone(), result };
                fx.apply(job, event, at(12)).map_err(TestError::from)
            })
            .await
            .expect("complete");

        let mut jobs = Vec::new();
        let mut create = |pair: (JobState, JobRouting)| {
            jobs.push(pair.clone());
            pair.0.id
        };
        let old = create(finished_job(&fx, 20, None));
        let recent = create(finished_job(&fx, 5_000, None));
        let running = create(unfinished_job(&fx, 0, None));
        // An old child of an unfinished parent, and an old parent of an unfinished child.
        let running_parent = create(unfinished_job(&fx, 0, None));
        let child_of_running = create(finished_job(&fx, 30, Some(running_parent)));
        let parent_of_running = create(finished_job(&fx, 30, None));
        let running_child = create(unfinished_job(&fx, 0, Some(parent_of_running)));
        // An old family that finished: both go.
        let done_parent = create(finished_job(&fx, 40, None));
        let done_child = create(finished_job(&fx, 35, Some(done_parent)));
        for (job, routing) in &jobs {
            store.create_job(job, routing).await.expect("create");
        }

        let cutoff = at(1_000);
        let first = store.expired_jobs(cutoff, 2).await.expect("expired");
        assert_eq!(first, [ran.id, old], "oldest first, at most the batch");
        let all = store.expired_jobs(cutoff, 100).await.expect("expired");
        assert_eq!(set(&all), set(&[ran.id, old, done_parent, done_child]));

        // The deletion checks again: only the deletable ones of the list go.
        let asked = [ran.id, old, recent, running, child_of_running, parent_of_running, done_child];
        let deleted = store.delete_jobs(&asked, cutoff).await.expect("delete");
        assert_eq!(set(&deleted), set(&[ran.id, old, done_child]));
        assert!(store.get_job(ran.id).await.expect("read").is_none());
        assert!(store.job_leases(ran.id).await.expect("leases").is_empty(), "leases go with the job");
        for kept in [recent, running, child_of_running, parent_of_running, running_child, done_parent] {
            assert!(store.get_job(kept).await.expect("read").is_some(), "{kept} was kept");
        }
        assert_eq!(store.expired_jobs(cutoff, 100).await.expect("expired"), [done_parent]);
        assert!(store.delete_jobs(&[], cutoff).await.expect("nothing").is_empty());
    }
}

backend_test! {
    async fn retention_deletes_workers_inactive_for_longer_than_the_limit(db) {
        let store = &db.store;
        let gone = script_worker(store, at(0), 1).await;
        let back = script_worker(store, at(0), 1).await;
        let alive = script_worker(store, at(0), 1).await;
        store.heartbeat(alive.worker_id, &[], at(3_000), ttl()).await.expect("heartbeat");
        store.heartbeat(back.worker_id, &[], at(2_000), ttl()).await.expect("heartbeat");
        let inactive = store
            .mark_inactive_workers(at(2_500), TimeDelta::seconds(60))
            .await
            .expect("sweep");
        assert_eq!(set(&inactive), set(&[gone.worker_id, back.worker_id]));
        // Cut-off at 1000 s: `back` was heard of since, `alive` is active.
        assert_eq!(store.delete_stale_workers(at(1_000)).await.expect("delete"), 1);
        assert!(store.get_worker(gone.worker_id).await.expect("read").is_none());
        assert!(store.get_worker(back.worker_id).await.expect("read").is_some());
        assert!(store.get_worker(alive.worker_id).await.expect("read").is_some());
        // A deleted worker's heartbeat is refused: it registers again (API §7.2).
        assert!(store.heartbeat(gone.worker_id, &[], at(4_000), ttl()).await.is_err());
    }
}
