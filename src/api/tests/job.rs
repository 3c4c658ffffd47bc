//! A job driven by the real engine over a workspace loaded from YAML, converted into the API's
//! job detail and summary (API §2.4, §2.5) and snapshotted with ids and times redacted.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::{JobDetail, JobSummary, JobView};
use crate::engine::{
    EvalContext, Event, JobMeta, JobPlan, JobState, StepStatus, ViewMask, apply, create,
    job_masker, mask_record, prepare_attempt, record_attempt_input,
};
use crate::mask::Masker;
use crate::runner::spec::{AttemptResult, Outcome};
use crate::workflow::template::Templates;
use crate::workflow::{WorkflowFile, WorkspaceFiles, load};

const WORKFLOW: &str = r#"
actions:
  greet:
    type: script
    script: echo "hello $INPUT_NAME"
    input:
      name: { type: string, required: true }

tasks:
  release:
    input:
      version: { type: string, required: true }
      token: { type: string, secret: true }
    flow:
      build:
        type: script
        script: echo build
        retry: { max_attempts: 2, delay: 10s }
      deploy:
        depends_on: [build]
        for_each: ["web", "api"]
        action: greet
        input:
          name: "{{ each.item }} with {{ input.token }}"
      notify:
        depends_on: [deploy]
        when: "{{ input.version != '' }}"
        type: script
        script: echo "released"
      audit:
        depends_on: [build]
        continue_on_failure: true
        type: script
        script: exit 3
"#;

const SECRET_TOKEN: &str = "tok-hunter2";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .expect("fixed time parses")
        .with_timezone(&Utc)
}

/// What each attempt of each step does: `build` fails once, `audit` always fails, `deploy[1]`
/// prints a secret in its output, everything else succeeds.
fn outcome(step: &str, attempt: u32) -> (Outcome, Value, Option<String>) {
    match (step, attempt) {
        ("build", 1) => (Outcome::Failed, Value::Null, Some("exit code 1".to_owned())),
        ("audit", _) => (
            Outcome::Failed,
            Value::Null,
            Some(format!(
                "exit code 3\ncould not reach audit with {SECRET_TOKEN}"
            )),
        ),
        ("deploy[1]", _) => (
            Outcome::Succeeded,
            json!({"url": "https://api.example", "used": SECRET_TOKEN}),
            None,
        ),
        _ => (Outcome::Succeeded, json!({"ok": true}), None),
    }
}

/// Runs the job to its end as a one-slot worker would: claim, render, start, finish; when only
/// a retry delay is left, time moves to it.
fn run_job() -> (JobState, JobPlan, ViewMask) {
    let files = WorkspaceFiles {
        workflow_files: vec![WorkflowFile {
            path: ".workflows/release.yaml".to_owned(),
            text: WORKFLOW.to_owned(),
        }],
        all_files: BTreeSet::new(),
    };
    let loaded = load(&files);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let plan = JobPlan::new(&loaded.def, "release").expect("task plans");
    let templates = Templates::new();
    let secrets = json!({});
    let input = json!({"version": "1.4.0", "token": SECRET_TOKEN});
    let masker = job_masker(&Masker::default(), &mask_record(&plan, &input, &[]));
    let ctx = EvalContext {
        templates: &templates,
        secrets: &secrets,
        mask: &masker,
    };
    let meta = JobMeta {
        source_job_id: None,
        id: Uuid::from_u128(1),
        workspace: "default".to_owned(),
        revision: "3f2a9c".to_owned(),
        source_type: "user".to_owned(),
        source_id: Some("alice@example.com".to_owned()),
        parent_job_id: None,
        parent_step_name: None,
        depth: 0,
        raw_input: input.clone(),
        inherited_mask: Vec::new(),
    };
    let (mut job, _) = create(&plan, meta, input, t0(), &ctx);
    let mut now = t0();
    let mut jitter = || 0.5;

    for _ in 0..100 {
        if job.is_finished() {
            // A finished job is sealed: what it keeps is all its views need.
            let record = job.mask.clone().expect("a mask record");
            assert!(record.sealed);
            return (job, plan, ViewMask::sealed(&record));
        }
        now += TimeDelta::milliseconds(1_250);
        let due = job
            .steps
            .iter()
            .find(|step| {
                step.status == StepStatus::Ready && step.retry_at.is_none_or(|at| at <= now)
            })
            .map(|step| step.step_name.clone());
        let Some(step) = due else {
            if let Some(at) = job.next_retry_at() {
                now = at;
            }
            continue;
        };
        apply(
            &mut job,
            &plan,
            Event::StepClaimed { step: step.clone() },
            now,
            &ctx,
            &mut jitter,
        )
        .expect("claim applies");
        let spec = prepare_attempt(&job, &plan, &step, &ctx).expect("step renders");
        record_attempt_input(&mut job, &plan, &spec);
        apply(
            &mut job,
            &plan,
            Event::StepStarted { step: step.clone() },
            now,
            &ctx,
            &mut jitter,
        )
        .expect("start applies");
        let (outcome, output, error_message) = outcome(&step, spec.attempt);
        let finished_at = now + TimeDelta::milliseconds(500);
        let result = AttemptResult {
            outcome,
            output,
            error_message,
            started_at: now,
            finished_at,
        };
        apply(
            &mut job,
            &plan,
            Event::StepFinished { step, result },
            finished_at,
            &ctx,
            &mut jitter,
        )
        .expect("finish applies");
        now = finished_at;
    }
    panic!("the job did not finish: {job:#?}");
}

#[test]
fn a_finished_job_converts_to_the_api_detail_with_secrets_masked() {
    let (job, plan, mask) = run_job();
    let record = job.mask.as_ref().expect("record");
    assert!(
        record.values.iter().any(|value| value == SECRET_TOKEN),
        "{record:?}"
    );
    let view = JobView::new(&mask).with_plan(&plan);
    let detail = serde_json::to_value(JobDetail::from_state(&job, &view)).expect("serialises");
    assert!(!detail.to_string().contains(SECRET_TOKEN), "{detail:#}");
    insta::assert_json_snapshot!(detail, {
        ".job_id" => "[job_id]",
    });
}

#[test]
fn the_summary_is_the_detail_without_input_output_or_steps() {
    let (job, _, mask) = run_job();
    let view = JobView {
        priority: 5,
        ..JobView::new(&mask)
    };
    let summary = serde_json::to_value(JobSummary::from_state(&job, &view)).expect("serialises");
    insta::assert_json_snapshot!(summary, {".job_id" => "[job_id]"});

    // Parsing the wire form back gives the same value: clients use these types too.
    let detail = JobDetail::from_state(&job, &view);
    let text = serde_json::to_string(&detail).expect("serialises");
    let parsed: JobDetail = serde_json::from_str(&text).expect("parses back");
    assert_eq!(parsed, detail);
    assert_eq!(
        serde_json::to_value(&parsed.summary).expect("serialises"),
        summary
    );
}

#[test]
fn without_a_plan_the_written_when_and_for_each_are_null() {
    let (job, _, mask) = run_job();
    let detail = JobDetail::from_state(&job, &JobView::new(&mask));
    let notify = detail
        .steps
        .iter()
        .find(|step| step.step_name == "notify")
        .expect("notify step");
    assert_eq!(notify.when, Value::Null);
    let deploy = detail
        .steps
        .iter()
        .find(|step| step.step_name == "deploy")
        .expect("deploy step");
    assert_eq!(
        deploy.for_each,
        json!(["web", "api"]),
        "evaluated items stay"
    );
}

#[test]
fn task_steps_show_their_child_job_and_no_worker() {
    let (job, _, mask) = run_job();
    let mut state = job.steps[0].clone();
    state.action_type = "task".to_owned();
    state.runner = "none".to_owned();
    state.child_job_id = Some(Uuid::from_u128(9));
    let step = crate::api::StepView::from_state(&state, &JobView::new(&mask));
    let wire = serde_json::to_value(&step).expect("serialises");
    assert_eq!(wire["child_job_id"], json!(Uuid::from_u128(9)));
    assert!(wire.get("worker_id").is_none(), "{wire:#}");

    let worker_step = serde_json::to_value(crate::api::StepView::from_state(
        &job.steps[0],
        &JobView::new(&mask),
    ))
    .expect("serialises");
    assert_eq!(worker_step["worker_id"], Value::Null);
    assert!(worker_step.get("child_job_id").is_none(), "{worker_step:#}");
}
