//! Creating, changing, reading and listing jobs.

use serde_json::json;
use uuid::Uuid;

use super::backend_test;
use super::fixture::{Fixture, TestError, at, finished};
use crate::engine::{Event, JobStatus, StepStatus};
use crate::runner::spec::Outcome;
use crate::store::{JobFilter, StoreError};

backend_test! {
    async fn create_and_load_round_trip(db) {
        let fx = Fixture::new();
        for task in ["pipeline", "fanout", "boxed"] {
            let (job, routing) = fx.job(task, at(0), 0);
            db.store.create_job(&job, &routing).await.expect("create");
            let loaded = db.store.get_job(job.id).await.expect("get").expect("exists");
            assert_eq!(loaded, job, "{task}");
        }
        // The loop expanded at creation: its instances are rows in plan order.
        let (job, routing) = fx.job("fanout", at(1), 0);
        assert_eq!(job.steps.len(), 11);
        db.store.create_job(&job, &routing).await.expect("create");
        assert!(matches!(
            db.store.create_job(&job, &routing).await,
            Err(StoreError::DuplicateJob(id)) if id == job.id
        ));
        assert_eq!(db.store.get_job(Uuid::new_v4()).await.expect("get"), None);
    }
}

backend_test! {
    async fn with_job_writes_changes_and_new_steps(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("pipeline", at(0), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let now = at(5);
        let (effects, state) = db
            .store
            .with_job(job.id, |job| {
                fx.apply(job, Event::StepClaimed { step: "build".into() }, now)?;
                fx.apply(job, Event::StepStarted { step: "build".into() }, now)?;
                let result = finished(Outcome::Succeeded, now, json!({"v": 1}));
                Ok::<_, TestError>(fx.apply(job, Event::StepFinished { step: "build".into(), result }, now)?)
            })
            .await
            .expect("with_job");
        assert!(!effects.is_empty());
        assert_eq!(state.status, JobStatus::Running);
        assert_eq!(state.step("build").map(|s| s.status), Some(StepStatus::Completed));
        assert_eq!(state.step("test").map(|s| s.status), Some(StepStatus::Ready));
        let loaded = db.store.get_job(job.id).await.expect("get").expect("exists");
        assert_eq!(loaded, state);
    }
}

backend_test! {
    async fn with_job_rolls_back_when_the_callback_fails(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("pipeline", at(0), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let result = db
            .store
            .with_job(job.id, |job| {
                fx.apply(job, Event::CancelRequested { by: None }, at(1))?;
                assert_eq!(job.status, JobStatus::Cancelled);
                Err::<(), _>(TestError::Refused)
            })
            .await;
        assert!(matches!(result, Err(TestError::Refused)));
        assert_eq!(db.store.get_job(job.id).await.expect("get"), Some(job));

        let missing = Uuid::new_v4();
        let result = db.store.with_job(missing, |_| Ok::<_, StoreError>(())).await;
        assert!(matches!(result, Err(StoreError::JobNotFound(id)) if id == missing));
    }
}

backend_test! {
    async fn history_survives_reopening_the_store(db) {
        let fx = Fixture::new();
        let (job, routing) = fx.job("fanout", at(0), 3);
        db.store.create_job(&job, &routing).await.expect("create");
        db.store.close().await;
        let reopened = db.reopen().await;
        assert_eq!(reopened.get_job(job.id).await.expect("get"), Some(job.clone()));
        let (jobs, total) = reopened.list_jobs(&JobFilter::default()).await.expect("list");
        assert_eq!(total, 1);
        assert_eq!(jobs[0].job_id, job.id);
        assert_eq!(jobs[0].priority, 3);
        reopened.close().await;
    }
}

backend_test! {
    async fn list_jobs_filters_pages_and_counts(db) {
        let fx = Fixture::new();
        let mut ids = Vec::new();
        for (index, task) in ["pipeline", "single", "pipeline", "single", "pipeline"]
            .into_iter()
            .enumerate()
        {
            let (mut job, routing) = fx.job(task, at(index as i64), 0);
            if index == 1 {
                job.workspace = "other".to_owned();
            }
            if index == 3 {
                job.source_type = "hook".to_owned();
                job.source_id = Some("Nightly-Backup/on_error".to_owned());
            }
            db.store.create_job(&job, &routing).await.expect("create");
            ids.push(job.id);
        }
        db.store
            .with_job(ids[2], |job| {
                fx.apply(job, Event::CancelRequested { by: None }, at(10)).map_err(TestError::from)
            })
            .await
            .expect("cancel");

        let list = |filter: JobFilter| {
            let store = db.store.clone();
            async move { store.list_jobs(&filter).await.expect("list") }
        };
        let (all, total) = list(JobFilter::default()).await;
        assert_eq!(total, 5);
        let newest_first: Vec<Uuid> = ids.iter().rev().copied().collect();
        assert_eq!(all.iter().map(|j| j.job_id).collect::<Vec<_>>(), newest_first);

        let (page, total) = list(JobFilter { limit: 2, offset: 1, ..JobFilter::default() }).await;
        assert_eq!(total, 5);
        assert_eq!(page.iter().map(|j| j.job_id).collect::<Vec<_>>(), newest_first[1..3]);

        let (pipelines, total) = list(JobFilter {
            workspace: Some("default".into()),
            task_name: Some("pipeline".into()),
            ..JobFilter::default()
        })
        .await;
        assert_eq!(total, 3);
        assert!(pipelines.iter().all(|j| j.task_name == "pipeline"));

        let (cancelled, total) = list(JobFilter {
            statuses: vec![JobStatus::Cancelled, JobStatus::Failed],
            ..JobFilter::default()
        })
        .await;
        assert_eq!((total, cancelled[0].job_id), (1, ids[2]));

        let (hooks, _) = list(JobFilter { source_type: Some("hook".into()), ..JobFilter::default() }).await;
        assert_eq!(hooks.iter().map(|j| j.job_id).collect::<Vec<_>>(), vec![ids[3]]);
        let (top, total) = list(JobFilter { top_level: true, ..JobFilter::default() }).await;
        assert_eq!(total, 4);
        assert!(top.iter().all(|j| j.job_id != ids[3]));

        // Search: a substring of the source id in any case, a task name, a job-id prefix.
        let (found, _) = list(JobFilter { search: Some("nightly-back".into()), ..JobFilter::default() }).await;
        assert_eq!(found.iter().map(|j| j.job_id).collect::<Vec<_>>(), vec![ids[3]]);
        let prefix = ids[4].to_string()[..8].to_owned();
        let (found, _) = list(JobFilter { search: Some(prefix), ..JobFilter::default() }).await;
        assert_eq!(found.iter().map(|j| j.job_id).collect::<Vec<_>>(), vec![ids[4]]);
        // Any part of the id, as job routes take it (issue #15): the UI's short id (the end)
        // and a middle part written with its dashes.
        let short = ids[4].simple().to_string()[24..].to_owned();
        let (found, _) = list(JobFilter { search: Some(short.to_uppercase()), ..JobFilter::default() }).await;
        assert_eq!(found.iter().map(|j| j.job_id).collect::<Vec<_>>(), vec![ids[4]]);
        let middle = ids[4].to_string()[9..23].to_owned();
        let (found, _) = list(JobFilter { search: Some(middle), ..JobFilter::default() }).await;
        assert_eq!(found.iter().map(|j| j.job_id).collect::<Vec<_>>(), vec![ids[4]]);
        let (found, total) = list(JobFilter { search: Some("100%".into()), ..JobFilter::default() }).await;
        assert_eq!((found.len(), total), (0, 0));

        let counts = db.store.job_counts(None, None).await.expect("counts");
        assert_eq!((counts.pending, counts.cancelled, counts.running), (4, 1, 0));
        let counts = db.store.job_counts(Some("other"), None).await.expect("counts");
        assert_eq!((counts.pending, counts.cancelled), (1, 0));
        // The cancelled job has no running steps, so it finished at once.
        let unfinished = db.store.unfinished_jobs().await.expect("unfinished");
        assert_eq!(unfinished, vec![ids[0], ids[1], ids[3], ids[4]]);
    }
}

backend_test! {
    async fn a_child_job_is_created_with_its_parents_change_or_not_at_all(db) {
        let fx = Fixture::new();
        let (parent, routing) = fx.job("parent", at(0), 0);
        assert_eq!(parent.step("call").map(|s| s.status), Some(StepStatus::Running));
        db.store.create_job(&parent, &routing).await.expect("create");
        let (mut child, child_routing) = fx.job("single", at(1), 0);
        child.parent_job_id = Some(parent.id);
        child.parent_step_name = Some("call".into());
        child.source_type = "task".into();
        child.depth = 1;

        // The child clashes with an existing job: nothing of the change is kept.
        let (clash, clash_routing) = fx.job("single", at(1), 0);
        db.store.create_job(&clash, &clash_routing).await.expect("create");
        let result = db
            .store
            .with_job_creating(parent.id, |job| {
                fx.apply(job, Event::ChildJobCreated { step: "call".into(), child_job_id: clash.id }, at(1))?;
                Ok::<_, TestError>(((), vec![(clash.clone(), clash_routing.clone())]))
            })
            .await;
        assert!(matches!(result, Err(TestError::Store(StoreError::DuplicateJob(id))) if id == clash.id));
        assert_eq!(db.store.get_job(parent.id).await.expect("get"), Some(parent.clone()));

        let (_, state) = db
            .store
            .with_job_creating(parent.id, |job| {
                fx.apply(job, Event::ChildJobCreated { step: "call".into(), child_job_id: child.id }, at(1))?;
                Ok::<_, TestError>(((), vec![(child.clone(), child_routing.clone())]))
            })
            .await
            .expect("create child");
        assert_eq!(state.step("call").and_then(|s| s.child_job_id), Some(child.id));
        assert_eq!(db.store.get_job(child.id).await.expect("get"), Some(child.clone()));
        let (children, total) = db
            .store
            .list_jobs(&JobFilter { parent_job_id: Some(parent.id), ..JobFilter::default() })
            .await
            .expect("list");
        assert_eq!((total, children[0].job_id), (1, child.id));
    }
}

backend_test! {
    async fn a_job_changed_through_another_store_is_never_served_stale(db) {
        // Two stores on one database are two servers: each caches the jobs it touched, and a
        // change made through one must be what the other reads and changes next.
        let fx = Fixture::new();
        let other = db.reopen().await;
        let (job, routing) = fx.job("pipeline", at(0), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let cached = db.store.get_job(job.id).await.expect("get").expect("exists");
        assert_eq!(other.get_job(job.id).await.expect("get"), Some(cached));

        let (_, changed) = other
            .with_job(job.id, |job| {
                Ok::<_, TestError>(fx.apply(job, Event::StepClaimed { step: "build".into() }, at(1))?)
            })
            .await
            .expect("change through the other store");
        let seen = db.store.get_job(job.id).await.expect("get").expect("exists");
        assert_eq!(seen, changed);
        assert_eq!(seen.step("build").map(|s| s.status), Some(StepStatus::Running));

        // A change through the first store starts from the other's state, and the other then
        // sees it in turn.
        let (_, again) = db
            .store
            .with_job(job.id, |job| {
                Ok::<_, TestError>(fx.apply(job, Event::StepStarted { step: "build".into() }, at(2))?)
            })
            .await
            .expect("change through the first store");
        assert_eq!(other.get_job(job.id).await.expect("get"), Some(again));
        other.close().await;
    }
}

backend_test! {
    async fn a_job_first_read_from_its_rows_by_a_change_is_cached_at_its_committed_version(db) {
        // A change that misses the cache reads the rows after its lock has incremented the
        // row's version: caching it under that version would make a later change, made through
        // another store, look like this store's copy (issue #3).
        let fx = Fixture::new();
        let other = db.reopen().await;
        let (job, routing) = fx.job("pipeline", at(0), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        let claimed = Event::StepClaimed { step: "build".into() };
        other
            .with_job(job.id, |job| Ok::<_, TestError>(fx.apply(job, claimed, at(1))?))
            .await
            .expect("first change, read from the rows");
        let (_, started) = db
            .store
            .with_job(job.id, |job| {
                Ok::<_, TestError>(fx.apply(job, Event::StepStarted { step: "build".into() }, at(2))?)
            })
            .await
            .expect("second change, through the creating store");
        assert_eq!(other.get_job(job.id).await.expect("get"), Some(started.clone()));
        assert_eq!(db.store.get_job(job.id).await.expect("get"), Some(started));
        other.close().await;
    }
}
