//! Task `concurrency` in the store (WF §8 [P2]): the queue's order and positions, and admission
//! that never fills more slots than the limit, on both backends.

use uuid::Uuid;

use super::backend_test;
use super::fixture::{Fixture, TestError, at};
use crate::engine::{Event, JobState};

/// Admits queued `limited` jobs into a limit of `limit`; the ids admitted, in order.
async fn admit(db: &super::TestDb, fx: &Fixture, limit: u32) -> Vec<Uuid> {
    let admitted = db
        .store
        .admit_queued(
            "default",
            "limited",
            limit,
            |_| true,
            |job: &mut JobState| {
                fx.apply(job, Event::JobAdmitted, at(100))?;
                Ok::<_, TestError>(Some(job.id))
            },
        )
        .await
        .expect("admission");
    admitted.into_iter().map(|(id, _)| id).collect()
}

backend_test! {
    async fn queued_jobs_are_admitted_by_priority_then_age_up_to_the_limit(db) {
        let fx = Fixture::new();
        let mut ids = Vec::new();
        for (second, priority) in [(0, 0), (1, 5), (2, 0), (3, 5)] {
            let (job, routing) = fx.job("limited", at(second), priority);
            assert!(job.queued, "a job of a limited task starts queued");
            db.store.create_job(&job, &routing).await.expect("create");
            ids.push(job.id);
        }
        let order = db.store.queued_jobs("default", "limited", 10).await.expect("queue");
        assert_eq!(order, vec![ids[1], ids[3], ids[0], ids[2]]);
        for (place, id) in order.iter().enumerate() {
            let job = db.store.get_job(*id).await.expect("get").expect("exists");
            let position = db.store.queue_position(&job).await.expect("position");
            assert_eq!(position, Some(u32::try_from(place + 1).expect("small")));
        }
        assert_eq!(
            db.store.tasks_with_queued_jobs().await.expect("tasks"),
            vec![("default".to_owned(), "limited".to_owned())]
        );

        assert_eq!(admit(db, &fx, 2).await, vec![ids[1], ids[3]]);
        // The slots are taken: a second pass admits nothing.
        assert_eq!(admit(db, &fx, 2).await, Vec::<Uuid>::new());
        let waiting = db.store.get_job(ids[0]).await.expect("get").expect("exists");
        assert_eq!(db.store.queue_position(&waiting).await.expect("position"), Some(1));
        let admitted = db.store.get_job(ids[1]).await.expect("get").expect("exists");
        assert!(!admitted.queued);
        assert_eq!(db.store.queue_position(&admitted).await.expect("position"), None);

        // An admitted job finishes: its slot goes to the next in line.
        db.store
            .with_job(ids[1], |job| {
                fx.apply(job, Event::CancelRequested { by: None }, at(101))
                    .map_err(TestError::from)
            })
            .await
            .expect("cancel");
        assert_eq!(admit(db, &fx, 2).await, vec![ids[0]]);
        // A higher limit admits the rest.
        assert_eq!(admit(db, &fx, 5).await, vec![ids[2]]);
        assert!(db.store.tasks_with_queued_jobs().await.expect("tasks").is_empty());
    }
}

backend_test! {
    async fn a_job_cancelled_while_queued_is_passed_over(db) {
        let fx = Fixture::new();
        let (first, routing) = fx.job("limited", at(0), 0);
        db.store.create_job(&first, &routing).await.expect("create");
        let (second, routing) = fx.job("limited", at(1), 0);
        db.store.create_job(&second, &routing).await.expect("create");
        db.store
            .with_job(first.id, |job| {
                fx.apply(job, Event::CancelRequested { by: None }, at(2))
                    .map_err(TestError::from)
            })
            .await
            .expect("cancel");
        let cancelled = db.store.get_job(first.id).await.expect("get").expect("exists");
        assert!(cancelled.is_finished());
        assert_eq!(db.store.queue_position(&cancelled).await.expect("position"), None);
        assert_eq!(admit(db, &fx, 1).await, vec![second.id]);
    }
}
