//! Cancellation and job timeouts (API §8.4, WF §13.2).

use serde_json::json;

use super::fixtures::{after, for_each_items, inline, single, task, task_action, workspace};
use super::{Harness, child_id};
use crate::engine::{Event, JobStatus};
use crate::runner::spec::Outcome;
use crate::workflow::model::Duration;

#[test]
fn cancellation_mid_run_stops_workers_and_cancels_the_rest() {
    let def = single(vec![
        ("a", inline("a")),
        ("b", inline("b")),
        ("c", after(inline("c"), &["a", "b"])),
        (
            "fan",
            for_each_items(inline("f"), vec![json!(1), json!(2)], false),
        ),
        ("claimed", inline("d")),
    ]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "a")
        .run(1.0, "fan[0]")
        .event(
            1.5,
            Event::StepClaimed {
                step: "claimed".into(),
            },
        )
        .event(
            2.0,
            Event::CancelRequested {
                by: Some("alice@example.com".into()),
            },
        )
        .event(
            2.5,
            Event::CancelRequested {
                by: Some("bob@example.com".into()),
            },
        )
        .event(
            2.7,
            Event::StepStarted {
                step: "claimed".into(),
            },
        )
        .event(3.0, Event::StepClaimed { step: "b".into() })
        .succeed(4.0, "a", json!({"late": true}))
        .finish(
            5.0,
            "fan[0]",
            Outcome::Cancelled,
            json!(null),
            Some("killed by signal 15"),
        )
        .event(6.0, Event::Tick);
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn job_timeout_fails_the_job_and_cancels_unfinished_steps() {
    let mut main = task(vec![
        ("long", inline("sleep")),
        ("next", after(inline("n"), &["long"])),
    ]);
    main.timeout = Some(Duration(3_600));
    let def = workspace(Vec::new(), vec![("main", main)]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "long");
    assert_eq!(
        crate::engine::job_deadline(&h.job),
        Some(super::t0() + chrono::TimeDelta::seconds(3_601))
    );
    h.event(3_601.0, Event::JobTimedOut)
        .fail(3_605.0, "long", "killed by signal 15");
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn cancelling_a_parent_cancels_its_child_jobs() {
    let child = task(vec![("work", inline("work"))]);
    let parent = task(vec![
        ("sub", super::fixtures::uses("run-child")),
        ("starting", super::fixtures::uses("run-child")),
    ]);
    let def = workspace(
        vec![("run-child", task_action("child"))],
        vec![("parent", parent), ("child", child)],
    );
    let mut h = Harness::new(&def, "parent", json!({}));
    h.event(
        1.0,
        Event::ChildJobCreated {
            step: "sub".into(),
            child_job_id: child_id(1),
        },
    )
    .event(2.0, Event::CancelRequested { by: None })
    .event(
        3.0,
        Event::ChildJobCreated {
            step: "starting".into(),
            child_job_id: child_id(2),
        },
    )
    .event(
        4.0,
        Event::ChildJobFinished {
            step: "sub".into(),
            child_job_id: child_id(1),
            status: JobStatus::Cancelled,
            output: json!(null),
            error: Some("cancelled".into()),
        },
    );
    insta::assert_snapshot!(h.transcript());
}
