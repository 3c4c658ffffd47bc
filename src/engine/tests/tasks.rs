//! `type: task` steps: child jobs, their outcome, retries and nesting depth (WF §6.7).

use serde_json::json;

use super::fixtures::{
    after, for_each_items, inline, retry, task, task_action, uses, with_input, workspace,
};
use super::{Harness, child_id};
use crate::engine::{Event, JobStatus};
use crate::workflow::model::{Backoff, Duration, Step, WorkspaceDef};

fn parent_workspace(sub: Step) -> WorkspaceDef {
    let child = task(vec![("work", inline("work"))]);
    let parent = task(vec![
        ("prepare", inline("prepare")),
        ("sub", after(sub, &["prepare"])),
    ]);
    workspace(
        vec![("run-child", task_action("child"))],
        vec![("parent", parent), ("child", child)],
    )
}

fn finished(
    step: &str,
    child: u128,
    status: JobStatus,
    output: serde_json::Value,
    error: Option<&str>,
) -> Event {
    Event::ChildJobFinished {
        step: step.into(),
        child_job_id: child_id(child),
        status,
        output,
        error: error.map(str::to_owned),
    }
}

#[test]
fn task_step_completes_with_the_child_output() {
    let sub = with_input(
        uses("run-child"),
        json!({"version": "{{ input.version }}", "from": "{{ prepare.output.id }}", "token": "{{ secret.TOKEN }}"}),
    );
    let mut h = Harness::new(
        &parent_workspace(sub),
        "parent",
        json!({"version": "1.4.0"}),
    );
    h.run(1.0, "prepare")
        .succeed(2.0, "prepare", json!({"id": 42}))
        .event(
            2.1,
            Event::ChildJobCreated {
                step: "sub".into(),
                child_job_id: child_id(1),
            },
        )
        .event(
            9.0,
            finished(
                "sub",
                1,
                JobStatus::Completed,
                json!({"work": "done"}),
                None,
            ),
        );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn failed_child_is_retried_with_a_new_child_then_fails_the_step() {
    let sub = Step {
        retry: Some(retry(2, 10, Backoff::Fixed, false)),
        ..uses("run-child")
    };
    let mut h = Harness::new(&parent_workspace(sub), "parent", json!({}));
    h.run(1.0, "prepare")
        .succeed(2.0, "prepare", json!(null))
        .event(
            3.0,
            Event::ChildJobCreated {
                step: "sub".into(),
                child_job_id: child_id(1),
            },
        )
        .event(
            5.0,
            finished(
                "sub",
                1,
                JobStatus::Failed,
                json!(null),
                Some("step 'work' failed: exit code 1"),
            ),
        )
        .event(10.0, Event::Tick)
        .event(15.0, Event::Tick)
        .event(
            16.0,
            finished(
                "sub",
                1,
                JobStatus::Failed,
                json!(null),
                Some("duplicate report"),
            ),
        )
        .event(
            16.0,
            Event::ChildJobCreated {
                step: "sub".into(),
                child_job_id: child_id(2),
            },
        )
        .event(
            20.0,
            finished(
                "sub",
                2,
                JobStatus::Failed,
                json!(null),
                Some("step 'work' failed: exit code 2"),
            ),
        );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn rejected_timed_out_and_cancelled_children_fail_the_step() {
    let sub = Step {
        timeout: Some(Duration(60)),
        retry: Some(retry(2, 0, Backoff::Fixed, false)),
        ..uses("run-child")
    };
    let def = workspace(
        vec![("run-child", task_action("child"))],
        vec![
            (
                "parent",
                task(vec![("rejected", uses("run-child")), ("slow", sub)]),
            ),
            ("child", task(vec![("work", inline("work"))])),
        ],
    );
    let mut h = Harness::new(&def, "parent", json!({}));
    h.event(
        1.0,
        Event::ChildJobRejected {
            step: "rejected".into(),
            error: "input.version: required field is missing".into(),
        },
    )
    .event(
        1.0,
        Event::ChildJobCreated {
            step: "slow".into(),
            child_job_id: child_id(1),
        },
    );
    assert_eq!(
        crate::engine::step_deadline(&h.job, &h.plan, "slow"),
        Some(super::t0() + chrono::TimeDelta::seconds(60))
    );
    h.event(
        61.0,
        Event::StepTimedOut {
            step: "slow".into(),
        },
    )
    .event(
        61.5,
        Event::ChildJobCreated {
            step: "slow".into(),
            child_job_id: child_id(2),
        },
    )
    .event(
        70.0,
        finished(
            "slow",
            2,
            JobStatus::Cancelled,
            json!(null),
            Some("cancelled by bob@example.com"),
        ),
    );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn nesting_deeper_than_ten_fails_the_step() {
    let mut h = Harness::with_depth(
        &parent_workspace(uses("run-child")),
        "parent",
        json!({}),
        10,
    );
    h.run(1.0, "prepare").succeed(2.0, "prepare", json!(null));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn loop_of_task_steps_starts_one_child_per_item() {
    let sub = for_each_items(
        with_input(
            uses("run-child"),
            json!({"region": "{{ each.item }}", "n": "{{ each.index }}/{{ each.total }}", "step": "{{ step.name }}#{{ step.attempt }}"}),
        ),
        vec![json!("eu"), json!("us")],
        true,
    );
    let mut h = Harness::new(&parent_workspace(sub), "parent", json!({}));
    h.run(1.0, "prepare")
        .succeed(2.0, "prepare", json!(null))
        .event(
            3.0,
            Event::ChildJobCreated {
                step: "sub[0]".into(),
                child_job_id: child_id(1),
            },
        )
        .event(
            4.0,
            finished("sub[0]", 1, JobStatus::Completed, json!("eu"), None),
        )
        .event(
            5.0,
            Event::ChildJobCreated {
                step: "sub[1]".into(),
                child_job_id: child_id(2),
            },
        )
        .event(
            6.0,
            finished("sub[1]", 2, JobStatus::Completed, json!("us"), None),
        );
    insta::assert_snapshot!(h.transcript());
}
