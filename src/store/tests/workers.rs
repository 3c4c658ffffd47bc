//! Worker registration, listing, liveness and history.

use chrono::TimeDelta;

use super::backend_test;
use super::fixture::{Fixture, at, registration, ttl};
use crate::engine::StepStatus;
use crate::store::WorkerStatus;

backend_test! {
    async fn workers_register_go_inactive_and_come_back(db) {
        let fx = Fixture::new();
        let first = db
            .store
            .register_worker(&registration("one", &["script", "docker"], &["eu"], 4), at(0))
            .await
            .expect("register");
        assert_eq!(first.status, WorkerStatus::Active);
        assert_eq!((first.capabilities.len(), first.tags.clone()), (2, vec!["eu".to_owned()]));
        let second = db
            .store
            .register_worker(&registration("two", &["script"], &[], 1), at(10))
            .await
            .expect("register");
        assert_ne!(first.worker_id, second.worker_id);
        assert_eq!(db.store.get_worker(first.worker_id).await.expect("get"), Some(first.clone()));

        let timeout = TimeDelta::seconds(60);
        assert_eq!(db.store.mark_inactive_workers(at(60), timeout).await.expect("sweep"), Vec::<uuid::Uuid>::new());
        assert_eq!(
            db.store.mark_inactive_workers(at(61), timeout).await.expect("sweep"),
            vec![first.worker_id]
        );
        // Active first, then newest.
        let (workers, total) = db.store.list_workers(50, 0).await.expect("list");
        assert_eq!(total, 2);
        assert_eq!(workers.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["two", "one"]);
        db.store.heartbeat(first.worker_id, &[], at(62), ttl()).await.expect("heartbeat");
        let back = db.store.get_worker(first.worker_id).await.expect("get").expect("exists");
        assert_eq!((back.status, back.last_heartbeat), (WorkerStatus::Active, at(62)));
        let (workers, total) = db.store.list_workers(1, 1).await.expect("list");
        assert_eq!((workers[0].name.as_str(), total), ("one", 2));

        let (job, routing) = fx.job("pipeline", at(63), 0);
        db.store.create_job(&job, &routing).await.expect("create");
        db.store.claim(&second, at(64), ttl(), fx.claimer(at(64))).await.expect("claim").expect("step");
        let steps = db.store.worker_steps(second.worker_id, 50, None).await.expect("steps");
        assert_eq!(steps.len(), 1);
        assert_eq!((steps[0].step_name.as_str(), steps[0].status), ("build", StepStatus::Running));
        assert_eq!(steps[0].task_name, "pipeline");
        assert!(db.store.worker_steps(first.worker_id, 50, None).await.expect("steps").is_empty());
    }
}
