//! Approval steps (WF §6.8, API §8.3): suspension with the rendered message, approve, reject,
//! the approval timeout and cancellation of a waiting step.

use serde_json::{Value, json};

use super::Harness;
use super::fixtures::{after, approval, field, inline, task, uses, with_input, workspace};
use crate::engine::{
    EvalContext, Event, JobStatus, StepStatus, approval_input, hook_variable,
    prepare_suspended_hooks, step_deadline,
};
use crate::workflow::model::{ActionRef, Duration, Hook, HookEvent, InputField, Map, WorkspaceDef};

fn required(field_type: &str) -> InputField {
    InputField {
        required: true,
        ..field(field_type)
    }
}

/// `build` → `confirm` (approval of version, with a required ticket) → `deploy`.
fn release(timeout: Option<u64>) -> WorkspaceDef {
    let confirm = approval(
        "Deploy {{ input.version }} to production?",
        vec![("version", field("string")), ("ticket", required("string"))],
    );
    let mut step = after(
        with_input(uses("confirm"), json!({"version": "{{ input.version }}"})),
        &["build"],
    );
    step.timeout = timeout.map(Duration);
    let mut release = task(vec![
        ("build", inline("make")),
        ("confirm", step),
        ("deploy", after(inline("deploy"), &["confirm"])),
    ]);
    release.hooks.on_suspended = vec![Hook {
        action: ActionRef::Named("notify".to_owned()),
        input: [(
            "text".to_owned(),
            json!("{{ hook.step_name }}: {{ hook.message }}"),
        )]
        .into_iter()
        .collect::<Map<Value>>(),
        timeout: None,
        retry: None,
    }];
    workspace(
        vec![
            ("confirm", confirm),
            ("notify", super::fixtures::script("echo")),
        ],
        vec![("release", release)],
    )
}

fn suspended(def: &WorkspaceDef) -> Harness {
    let mut h = Harness::new(def, "release", json!({"version": "1.4.0"}));
    h.run(1.0, "build").succeed(2.0, "build", json!({}));
    h
}

fn checked(h: &Harness, values: Value) -> Result<Value, Vec<String>> {
    let ctx = EvalContext {
        templates: &h.templates,
        secrets: &h.secrets,
        mask: &h.mask,
    };
    approval_input(&h.job, &h.plan, "confirm", &values, &ctx)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

#[test]
fn an_approval_suspends_the_job_and_approving_it_goes_on() {
    let def = release(None);
    let mut h = suspended(&def);
    assert_eq!(
        h.job.step("confirm").map(|s| s.status),
        Some(StepStatus::Suspended)
    );
    assert_eq!(h.job.status, JobStatus::Running);

    // The form: the step's input pre-fills `version`; the required `ticket` is the approver's.
    assert_eq!(
        checked(&h, json!({})),
        Err(vec!["input.ticket: required field is missing".to_owned()])
    );
    let wrong = checked(&h, json!({"ticket": ["CHG-1"]})).expect_err("a list is no string");
    assert!(wrong[0].starts_with("input.ticket: "), "{wrong:?}");
    let input = checked(&h, json!({"ticket": "CHG-1042"})).expect("valid form");
    assert_eq!(input, json!({"version": "1.4.0", "ticket": "CHG-1042"}));

    h.event(
        10.0,
        Event::StepApproved {
            step: "confirm".into(),
            by: "alice@example.com".into(),
            input,
        },
    )
    // A second decision finds the step decided.
    .event(
        11.0,
        Event::StepDeclined {
            step: "confirm".into(),
            by: "bob@example.com".into(),
            reason: None,
        },
    )
    .run(12.0, "deploy")
    .succeed(13.0, "deploy", json!({}));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn rejecting_fails_the_step_and_skips_what_depends_on_it() {
    let def = release(None);
    let mut h = suspended(&def);
    h.event(
        10.0,
        Event::StepDeclined {
            step: "confirm".into(),
            by: "bob@example.com".into(),
            reason: Some("wrong version".into()),
        },
    );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn an_approval_times_out_from_its_suspension() {
    let def = release(Some(3_600));
    let mut h = suspended(&def);
    assert_eq!(
        step_deadline(&h.job, &h.plan, "confirm").map(|at| (at - super::t0()).num_seconds()),
        Some(2 + 3_600)
    );
    h.event(
        3_602.0,
        Event::StepTimedOut {
            step: "confirm".into(),
        },
    );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn cancelling_cancels_a_waiting_approval() {
    let def = release(None);
    let mut h = suspended(&def);
    h.event(
        5.0,
        Event::CancelRequested {
            by: Some("alice@example.com".into()),
        },
    )
    .event(
        6.0,
        Event::StepApproved {
            step: "confirm".into(),
            by: "bob@example.com".into(),
            input: json!({}),
        },
    );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn on_suspended_hooks_see_the_step_and_its_message() {
    let def = release(None);
    let h = suspended(&def);
    let ctx = EvalContext {
        templates: &h.templates,
        secrets: &h.secrets,
        mask: &h.mask,
    };
    let message = "Deploy 1.4.0 to production?";
    let hooks = prepare_suspended_hooks(&def, &h.job, &h.plan, &ctx, "confirm", message);
    let inputs: Vec<Value> = hooks
        .into_iter()
        .map(|hook| {
            hook.map(|hook| hook.input)
                .map_err(|refused| refused.reason)
        })
        .collect::<Result<_, _>>()
        .expect("the hook prepares");
    assert_eq!(
        inputs,
        vec![json!({"text": "confirm: Deploy 1.4.0 to production?"})]
    );
    let variable = hook_variable(&h.job, &h.plan, HookEvent::Suspended);
    assert_eq!(variable["event"], json!("suspended"));
}
