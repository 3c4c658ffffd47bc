//! Task `concurrency` (queued jobs, WF §8) and task-level `retry` (retried jobs, WF §13.1).

use serde_json::json;

use super::fixtures::{after, inline, retry, task, workspace};
use super::{Harness, child_id};
use crate::engine::{Event, RetryOf, hook_event, hooks_to_fire};
use crate::workflow::model::{ActionRef, Backoff, Hook, Hooks, Task, WorkspaceDef};

fn limited(concurrency: u32, priority: i64) -> WorkspaceDef {
    let deploy = Task {
        concurrency: Some(concurrency),
        priority: Some(priority),
        ..task(vec![
            ("build", inline("make")),
            ("ship", after(inline("ship"), &["build"])),
        ])
    };
    workspace(Vec::new(), vec![("deploy", deploy)])
}

fn retrying(max_attempts: u32, backoff: Backoff) -> WorkspaceDef {
    let flaky = Task {
        retry: Some(retry(max_attempts, 30, backoff, false)),
        ..task(vec![("call", inline("curl"))])
    };
    workspace(Vec::new(), vec![("flaky", flaky)])
}

#[test]
fn a_job_of_a_limited_task_waits_queued_until_admitted() {
    let mut h = Harness::new(&limited(1, 5), "deploy", json!({}));
    h.event(1.0, Event::Tick)
        .run(2.0, "build")
        .event(10.0, Event::JobAdmitted)
        .run(11.0, "build")
        .succeed(12.0, "build", json!({}))
        .event(12.5, Event::JobAdmitted)
        .run(13.0, "ship")
        .succeed(14.0, "ship", json!({}));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn cancelling_a_queued_job_finishes_it_without_running_anything() {
    let mut h = Harness::new(&limited(2, 0), "deploy", json!({}));
    h.event(
        3.0,
        Event::CancelRequested {
            by: Some("alice@example.com".into()),
        },
    )
    .event(4.0, Event::JobAdmitted);
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn a_failed_job_with_attempts_left_is_retried_as_a_new_job() {
    let mut h = Harness::new(&retrying(3, Backoff::Exponential), "flaky", json!({}));
    h.run(1.0, "call")
        .fail(2.0, "call", "exit code 7")
        .event(3.0, Event::Tick)
        .event(
            32.0,
            Event::RetryCreated {
                retry_job_id: child_id(2),
            },
        )
        .event(
            33.0,
            Event::RetryCreated {
                retry_job_id: child_id(3),
            },
        );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn a_retry_counts_its_attempt_and_waits_longer_with_exponential_backoff() {
    let of = RetryOf {
        first_job_id: child_id(1),
        attempt: 2,
    };
    let mut h = Harness::retry_of(&retrying(3, Backoff::Exponential), "flaky", json!({}), of);
    h.run(1.0, "call").fail(2.0, "call", "exit code 7");
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn the_last_attempt_of_a_chain_is_not_retried() {
    let of = RetryOf {
        first_job_id: child_id(1),
        attempt: 3,
    };
    let mut h = Harness::retry_of(&retrying(3, Backoff::Fixed), "flaky", json!({}), of);
    h.run(1.0, "call").fail(2.0, "call", "exit code 7");
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn cancelling_during_the_retry_delay_cancels_the_retry() {
    let mut h = Harness::new(&retrying(3, Backoff::Fixed), "flaky", json!({}));
    h.run(1.0, "call")
        .fail(2.0, "call", "exit code 7")
        .event(
            10.0,
            Event::CancelRequested {
                by: Some("alice@example.com".into()),
            },
        )
        .event(
            32.0,
            Event::RetryCreated {
                retry_job_id: child_id(2),
            },
        );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn a_cancelled_job_is_not_retried() {
    let mut h = Harness::new(&retrying(3, Backoff::Fixed), "flaky", json!({}));
    h.run(1.0, "call")
        .event(2.0, Event::CancelRequested { by: None })
        .finish(
            3.0,
            "call",
            crate::runner::spec::Outcome::Cancelled,
            json!(null),
            Some("stopped"),
        );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn on_error_hooks_wait_for_the_last_attempt_of_the_chain() {
    let hook = Hook {
        action: ActionRef::Named("notify".to_owned()),
        input: Default::default(),
        timeout: None,
        retry: None,
    };
    let mut def = retrying(2, Backoff::Fixed);
    if let Some(flaky) = def.tasks.get_mut("flaky") {
        flaky.hooks = Hooks {
            on_error: vec![hook],
            ..Hooks::default()
        };
    }

    let mut first = Harness::new(&def, "flaky", json!({}));
    first.run(1.0, "call").fail(2.0, "call", "exit code 7");
    assert!(first.job.retry_pending(), "{}", first.transcript());
    let event = hook_event(&first.job).expect("a finished job has a hook event");
    assert!(hooks_to_fire(&def, &first.job, event).is_empty());

    let of = RetryOf {
        first_job_id: child_id(1),
        attempt: 2,
    };
    let mut last = Harness::retry_of(&def, "flaky", json!({}), of);
    last.run(1.0, "call").fail(2.0, "call", "exit code 7");
    assert!(!last.job.retry_pending(), "{}", last.transcript());
    let event = hook_event(&last.job).expect("a finished job has a hook event");
    assert_eq!(hooks_to_fire(&def, &last.job, event).len(), 1);
}
