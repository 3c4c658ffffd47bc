//! DAG rules R1–R6 and the job outcome (WF §10.1, §10.2, §10.4) on plain worker steps.

use serde_json::json;

use super::Harness;
use super::fixtures::{after, inline, single, tolerant, when};
use crate::engine::Event;
use crate::runner::spec::Outcome;
use crate::workflow::model::When;

#[test]
fn linear_chain_runs_in_order_and_outputs_its_sink() {
    let def = single(vec![
        ("build", inline("make")),
        ("test", after(inline("make test"), &["build"])),
        ("deploy", after(inline("make deploy"), &["test"])),
    ]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "build")
        .succeed(5.0, "build", json!({"artifact": "app.tar"}))
        .run(6.0, "test")
        .succeed(9.0, "test", json!(null))
        .run(10.0, "deploy")
        .succeed(12.0, "deploy", json!({"url": "https://example.com"}));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn diamond_converges_after_a_skipped_branch() {
    let def = single(vec![
        ("plan", inline("plan")),
        (
            "fast",
            after(when(inline("fast"), When::Constant(false)), &["plan"]),
        ),
        ("slow", after(inline("slow"), &["plan"])),
        ("only-fast", after(inline("after fast"), &["fast"])),
        ("join", after(inline("join"), &["fast", "slow"])),
    ]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "plan")
        .succeed(2.0, "plan", json!({"n": 1}))
        .run(3.0, "slow")
        .succeed(4.0, "slow", json!("slow done"))
        .run(5.0, "join")
        .succeed(6.0, "join", json!("joined"));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn when_conditions_true_false_and_error() {
    let def = single(vec![
        ("probe", inline("probe")),
        (
            "yes",
            after(
                when(
                    inline("yes"),
                    When::Template("{{ probe.output.go }}".into()),
                ),
                &["probe"],
            ),
        ),
        (
            "no",
            after(
                when(
                    inline("no"),
                    When::Template("{{ input.env == 'prod' }}".into()),
                ),
                &["probe"],
            ),
        ),
        (
            "text-no",
            after(
                when(
                    inline("t"),
                    When::Template("{% if false %}x{% endif %} No ".into()),
                ),
                &["probe"],
            ),
        ),
        (
            "broken",
            after(
                when(
                    inline("broken"),
                    When::Template("{{ probe.output.missing.deep }}".into()),
                ),
                &["probe"],
            ),
        ),
    ]);
    let mut h = Harness::new(&def, "main", json!({"env": "staging"}));
    h.run(1.0, "probe")
        .succeed(2.0, "probe", json!({"go": true}))
        .run(3.0, "yes")
        .succeed(4.0, "yes", json!(null));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn failure_propagates_unless_tolerated() {
    let def = single(vec![
        ("build", inline("make")),
        ("test", after(inline("test"), &["build"])),
        ("report", after(tolerant(inline("report")), &["build"])),
        ("publish", after(inline("publish"), &["test"])),
    ]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "build")
        .fail(2.0, "build", "exit code 2\nmake: *** [all] Error 2")
        .run(3.0, "report")
        .succeed(4.0, "report", json!({"sent": true}));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn a_tolerated_failure_does_not_fail_the_job() {
    let def = single(vec![
        ("lint", tolerant(inline("lint"))),
        ("after-lint", after(inline("x"), &["lint"])),
        ("build", inline("build")),
    ]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "lint")
        .run(1.0, "build")
        .fail(2.0, "lint", "exit code 1")
        .succeed(3.0, "build", json!({"ok": true}));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn everything_skipped_at_creation_completes_immediately() {
    let def = single(vec![
        ("gate", when(inline("gate"), When::Constant(false))),
        ("next", after(inline("next"), &["gate"])),
        ("last", after(inline("last"), &["next"])),
    ]);
    let h = Harness::new(&def, "main", json!({}));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn permanent_failures_and_rejections_are_not_retried() {
    let def = single(vec![
        ("a", super::fixtures::retried(inline("a"), 3)),
        ("b", super::fixtures::retried(inline("b"), 3)),
    ]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "a")
        .finish(
            2.0,
            "a",
            Outcome::FailedPermanently,
            json!(null),
            Some("source escapes the workspace"),
        )
        .event(3.0, Event::StepClaimed { step: "b".into() })
        .event(
            3.0,
            Event::StepRejected {
                step: "b".into(),
                error: "input.version: required field is missing".into(),
            },
        )
        .event(4.0, Event::StepStarted { step: "b".into() });
    insta::assert_snapshot!(h.transcript());
}
