//! The plan and the template contexts (WF §12.2).

use std::fmt::Write as _;

use serde_json::json;

use super::Harness;
use super::fixtures::{after, for_each_items, inline, retry, script, single, task, uses, workspace};
use crate::engine::{EvalContext, JobPlan, context};
use crate::workflow::model::{Backoff, Duration, Step};

#[test]
fn plan_resolves_actions_limits_and_order() {
    let mut shared = script("deploy");
    shared.timeout = Some(Duration(600));
    shared.retry = Some(retry(5, 60, Backoff::Exponential, true));
    let deploy = Step {
        retry: Some(retry(2, 10, Backoff::Fixed, false)),
        ..after(uses("deploy"), &["build", "test"])
    };
    let check = Step {
        timeout: Some(Duration(30)),
        ..after(uses("deploy"), &["build"])
    };
    let def = workspace(
        vec![("deploy", shared)],
        vec![(
            "release",
            task(vec![
                ("deploy", deploy),
                ("test", after(inline("test"), &["build"])),
                ("build", inline("build")),
                ("check", check),
                ("notify", after(inline("notify"), &["deploy"])),
            ]),
        )],
    );
    let plan = JobPlan::new(&def, "release").expect("plans");
    let mut out = String::new();
    for step in &plan.steps {
        let _ = writeln!(
            out,
            "{:<7} action={:<22} type={} runner={} timeout={:?} attempts={} retry={:?} deps={:?} transitive={:?} sink={}",
            step.name,
            step.action_name,
            step.action.type_name(),
            step.runner_name(),
            step.timeout.map(|d| d.to_string()),
            step.max_attempts(),
            step.retry.as_ref().map(|r| (r.delay.to_string(), r.backoff, r.jitter)),
            step.depends_on,
            step.transitive_deps,
            step.is_sink,
        );
    }
    insta::assert_snapshot!(out);
}

#[test]
fn plan_rejects_unknown_actions_and_cycles() {
    let unknown = single(vec![("a", uses("nope"))]);
    let cycle = single(vec![
        ("a", after(inline("a"), &["c"])),
        ("b", after(inline("b"), &["a"])),
        ("c", after(inline("c"), &["b"])),
        ("d", inline("d")),
    ]);
    let errors = [
        JobPlan::new(&unknown, "main").map(|_| ()),
        JobPlan::new(&cycle, "main").map(|_| ()),
        JobPlan::new(&cycle, "other").map(|_| ()),
    ];
    let text: Vec<String> = errors
        .iter()
        .map(|result| match result {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.to_string(),
        })
        .collect();
    insta::assert_snapshot!(text.join("\n"), @r"
    step 'a' uses unknown action 'nope'
    dependency cycle among steps a, b, c
    unknown task 'other'
    ");
}

#[test]
fn instance_context_has_job_steps_step_and_each() {
    let def = single(vec![
        ("build", inline("build")),
        ("broken", inline("broken")),
        ("say-hello", after(for_each_items(inline("x"), vec![json!({"host": "a"}), json!({"host": "b"})], false), &["build"])),
    ]);
    let mut h = Harness::new(&def, "main", json!({"version": "1.0"}));
    h.run(1.0, "build")
        .succeed(2.0, "build", json!({"artifact": "app.tar"}))
        .run(2.0, "broken")
        .fail(3.0, "broken", "exit code 1")
        .run(4.0, "say-hello[1]");
    let ctx = EvalContext {
        templates: &h.templates,
        secrets: &h.secrets,
    };
    let instance = h.job.step("say-hello[1]").expect("instance exists");
    let value = context(&h.job, &h.plan, &ctx, &h.job.input, Some(instance));
    insta::assert_json_snapshot!(value);
}
