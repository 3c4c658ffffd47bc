//! Restart from the failed step (docs/restart.md): the restarted job's initial state and first
//! settle — completed steps reused with their outputs (loops with their instances, task steps
//! with their child, approved approvals), everything else run again.

use serde_json::json;

use super::fixtures::{
    after, approval, for_each_items, inline, task, task_action, tolerant, uses, when, with_input,
    workspace,
};
use super::{Harness, child_id};
use crate::engine::{EvalContext, Event, JobStatus, StepStatus, render_step_input, reused_steps};
use crate::workflow::model::{When, WorkspaceDef};

/// `build` (a loop) → `confirm` (approval) → `package` (task step) → `deploy`, with `docs`
/// skipped by its `when` and `notify` tolerating `deploy`'s failure.
fn release() -> WorkspaceDef {
    let release = task(vec![
        (
            "build",
            for_each_items(inline("build"), vec![json!("amd64"), json!("arm64")], false),
        ),
        ("confirm", after(uses("confirm"), &["build"])),
        (
            "package",
            after(
                with_input(uses("package"), json!({"arch": "{{ build.output[1] }}"})),
                &["confirm"],
            ),
        ),
        (
            "deploy",
            after(
                with_input(
                    inline("deploy"),
                    json!({"artifact": "{{ package.output.file }}", "by": "{{ confirm.output.approved_by }}"}),
                ),
                &["package"],
            ),
        ),
        (
            "docs",
            after(when(inline("docs"), When::Constant(false)), &["build"]),
        ),
        (
            "notify",
            tolerant(after(inline("notify"), &["deploy", "docs"])),
        ),
    ]);
    let child = task(vec![("pack", inline("pack"))]);
    workspace(
        vec![
            ("confirm", approval("Release?", Vec::new())),
            ("package", task_action("child")),
        ],
        vec![("release", release), ("child", child)],
    )
}

/// The source job: everything up to `deploy` completes, `deploy` fails, `notify` completes
/// anyway (it tolerates the failure).
fn failed_release(def: &WorkspaceDef) -> Harness {
    let mut h = Harness::new(def, "release", json!({}));
    h.run(1.0, "build[0]")
        .run(1.0, "build[1]")
        .succeed(2.0, "build[0]", json!("a.tar"))
        .succeed(3.0, "build[1]", json!("b.tar"))
        .event(
            4.0,
            Event::StepApproved {
                step: "confirm".into(),
                by: "alice@example.com".into(),
                input: json!({}),
            },
        )
        .event(
            4.1,
            Event::ChildJobCreated {
                step: "package".into(),
                child_job_id: child_id(1),
            },
        )
        .event(
            6.0,
            Event::ChildJobFinished {
                step: "package".into(),
                child_job_id: child_id(1),
                status: JobStatus::Completed,
                output: json!({"file": "release.tgz"}),
                error: None,
            },
        )
        .run(7.0, "deploy")
        .fail(8.0, "deploy", "exit code 1")
        .run(9.0, "notify")
        .succeed(10.0, "notify", json!(null));
    h
}

#[test]
fn a_restart_reuses_completed_steps_and_runs_the_failed_one_again() {
    let def = release();
    let source = failed_release(&def);
    assert_eq!(source.job.status, JobStatus::Failed);
    let mut h = source.restart(60.0);
    // The reused steps are complete before anything runs; `deploy` sees their outputs.
    assert_eq!(
        h.job.step("deploy").map(|step| step.status),
        Some(StepStatus::Ready)
    );
    let ctx = EvalContext {
        templates: &h.templates,
        secrets: &h.secrets,
        mask: &h.mask,
    };
    let deploy = h.job.step("deploy").expect("deploy").clone();
    assert_eq!(
        render_step_input(&h.job, &h.plan, &deploy, &ctx),
        Ok(json!({"artifact": "release.tgz", "by": "alice@example.com"}))
    );
    h.run(61.0, "deploy")
        .succeed(62.0, "deploy", json!({"url": "https://example.com"}))
        .run(63.0, "notify")
        .succeed(64.0, "notify", json!(null));
    assert_eq!(h.job.status, JobStatus::Completed);
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn a_rejected_approval_asks_again_and_what_follows_runs_again() {
    let def = release();
    let mut source = Harness::new(&def, "release", json!({}));
    source
        .run(1.0, "build[0]")
        .run(1.0, "build[1]")
        .succeed(2.0, "build[0]", json!("a.tar"))
        .succeed(3.0, "build[1]", json!("b.tar"))
        .event(
            4.0,
            Event::StepDeclined {
                step: "confirm".into(),
                by: "alice@example.com".into(),
                reason: Some("not today".into()),
            },
        )
        // `notify` tolerates failures: it runs whatever happened before it.
        .run(5.0, "notify")
        .succeed(6.0, "notify", json!(null));
    assert_eq!(source.job.status, JobStatus::Failed);
    let h = source.restart(60.0);
    assert_eq!(
        h.job.step("confirm").map(|step| step.status),
        Some(StepStatus::Suspended)
    );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn a_partly_failed_loop_runs_again_whole() {
    let def = release();
    let mut source = Harness::new(&def, "release", json!({}));
    source
        .run(1.0, "build[0]")
        .run(1.0, "build[1]")
        .succeed(2.0, "build[0]", json!("a.tar"))
        .fail(3.0, "build[1]", "out of disk")
        .run(4.0, "notify")
        .succeed(5.0, "notify", json!(null));
    assert_eq!(source.job.status, JobStatus::Failed);
    let h = source.restart(60.0);
    assert!(h.job.steps.iter().all(|step| step.reused_from.is_none()));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn a_cancelled_job_reuses_what_completed_before_the_cancellation() {
    let def = release();
    let mut source = Harness::new(&def, "release", json!({}));
    source
        .run(1.0, "build[0]")
        .run(1.0, "build[1]")
        .succeed(2.0, "build[0]", json!("a.tar"))
        .succeed(3.0, "build[1]", json!("b.tar"))
        .event(4.0, Event::CancelRequested { by: None });
    assert_eq!(source.job.status, JobStatus::Cancelled);
    let h = source.restart(60.0);
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn a_step_that_saw_a_failed_steps_output_is_not_reused() {
    // `notify` completed in the source, but after `deploy` failed: it runs again, since the
    // re-run `deploy` may end otherwise. `docs` was skipped by its `when`, which decides the
    // same again, so it does not stand in the way of reuse.
    let def = release();
    let source = failed_release(&def);
    let reused = reused_steps(&source.plan, &source.job);
    let mut names: Vec<&str> = reused.into_iter().collect();
    names.sort_unstable();
    assert_eq!(names, ["build", "confirm", "package"]);
}
