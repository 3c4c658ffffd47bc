//! The plan and the template contexts (WF §12.2).

use std::fmt::Write as _;

use serde_json::json;

use super::Harness;
use super::fixtures::{
    after, field, for_each_items, inline, retry, script, single, task, uses, workspace,
};
use crate::engine::render::context_for;
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
            step.retry
                .as_ref()
                .map(|r| (r.delay.to_string(), r.backoff, r.jitter)),
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
        (
            "say-hello",
            after(
                for_each_items(
                    inline("x"),
                    vec![json!({"host": "a"}), json!({"host": "b"})],
                    false,
                ),
                &["build"],
            ),
        ),
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
        mask: &h.mask,
    };
    let instance = h.job.step("say-hello[1]").expect("instance exists");
    let value = context(&h.job, &ctx, &h.job.input, Some(instance));
    insta::assert_json_snapshot!(value);
}

/// The lean context holds only the steps a template names, yet every template renders to the
/// same value or the same error as with the full context (issue #3).
#[test]
fn a_context_for_some_templates_renders_like_the_full_context() {
    let def = single(vec![
        ("build", inline("build")),
        ("broken", inline("broken")),
        (
            "say-hello",
            after(
                for_each_items(inline("x"), vec![json!({"host": "a"})], false),
                &["build"],
            ),
        ),
    ]);
    let mut h = Harness::new(&def, "main", json!({"version": "1.0"}));
    h.run(1.0, "build")
        .succeed(2.0, "build", json!({"artifact": "app.tar"}))
        .run(2.0, "broken")
        .fail(3.0, "broken", "exit code 1")
        .run(4.0, "say-hello[0]");
    let ctx = EvalContext {
        templates: &h.templates,
        secrets: &h.secrets,
        mask: &h.mask,
    };
    let instance = h.job.step("say-hello[0]").expect("instance exists");
    let full = context(&h.job, &ctx, &h.job.input, Some(instance));
    let templates = [
        "{{ build.output.artifact }}",
        "{{ broken.error }} / {{ say_hello.status }}",
        "{{ input.version }}-{{ build.status }}",
        "{% for x in range(2) %}{{ x }}{% endfor %}",
        "{% set b = build %}{{ b.output }}",
        "{{ step.name }} {{ each.item.host }} {{ job.task }}",
        "{{ nope.output }}",
        "{{ build.output.missing }}",
        "{{ build.output[broken.status] | default('none') }}",
        "{{ build.status",
        "plain text",
    ];
    for template in templates {
        let lean = context_for(&h.job, &ctx, &h.job.input, Some(instance), [template]);
        let render = |scope| {
            h.templates
                .render(template, scope)
                .map_err(|error| error.to_string())
        };
        assert_eq!(render(&lean), render(&full), "{template}");
    }
    let lean = context_for(&h.job, &ctx, &h.job.input, None, ["{{ build.status }}"]);
    assert!(lean.get("build").is_some());
    assert!(lean.get("broken").is_none() && lean.get("say_hello").is_none());
}

/// A named action with a schema, env, args and workdir, as `prepare_attempt` sees it.
fn greet_workspace(
    step_input: serde_json::Value,
    source: Option<&str>,
    workdir: &str,
) -> crate::workflow::model::WorkspaceDef {
    use crate::workflow::model::{ActionKind, ScriptCode};

    let mut greet = script(
        "echo \"hello {{ input.name }} x{{ input.count }} from {{ step.name }}#{{ step.attempt }} {{ each.item }}\"",
    );
    if let (Some(path), ActionKind::Script(body)) = (source, &mut greet.kind) {
        body.code = ScriptCode::Source(path.to_owned());
    }
    if let ActionKind::Script(body) = &mut greet.kind {
        body.args = vec![
            "--job={{ job.id }}".to_owned(),
            "{{ input.password }}".to_owned(),
        ];
    }
    let mut password = field("string");
    password.secret = true;
    let mut name = field("string");
    name.required = true;
    let mut count = field("integer");
    count.default = Some(json!(1));
    greet.input = Some(
        [("name", name), ("password", password), ("count", count)]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    );
    greet.env = [("API_TOKEN".to_owned(), "{{ secret.TOKEN }}".to_owned())]
        .into_iter()
        .collect();
    greet.workdir = Some(workdir.to_owned());
    greet.timeout = Some(Duration(90));
    greet.output = Some(
        [("greeting".to_owned(), field("string"))]
            .into_iter()
            .collect(),
    );
    let mut main = task(vec![
        ("build", inline("build")),
        (
            "greet",
            after(
                for_each_items(
                    super::fixtures::with_input(uses("greet"), step_input),
                    vec![json!("eu"), json!("us")],
                    false,
                ),
                &["build"],
            ),
        ),
    ]);
    let mut who_secret = field("string");
    who_secret.secret = true;
    main.input = Some(
        [
            ("who".to_owned(), field("string")),
            ("pin".to_owned(), who_secret),
        ]
        .into_iter()
        .collect(),
    );
    workspace(vec![("greet", greet)], vec![("main", main)])
}

fn prepared(
    def: &crate::workflow::model::WorkspaceDef,
) -> Result<crate::runner::spec::StepSpec, String> {
    let mut h = Harness::new(def, "main", json!({"who": "World", "pin": "9876-5432"}));
    h.run(1.0, "build")
        .succeed(2.0, "build", json!({"artifact": "app.tar"}))
        .event(
            3.0,
            crate::engine::Event::StepClaimed {
                step: "greet[1]".into(),
            },
        );
    let ctx = EvalContext {
        templates: &h.templates,
        secrets: &h.secrets,
        mask: &h.mask,
    };
    crate::engine::prepare_attempt(&h.job, &h.plan, "greet[1]", &ctx)
}

#[test]
fn prepare_attempt_renders_validates_and_masks() {
    let def = greet_workspace(
        json!({"name": "{{ input.who }} {{ build.output.artifact }}", "password": "{{ input.pin }}", "count": "{{ each.index + 2 }}"}),
        None,
        "sub/{{ each.item }}",
    );
    let spec = prepared(&def).expect("attempt prepares");
    insta::assert_json_snapshot!(spec);
}

#[test]
fn prepare_attempt_failures_are_one_line_reasons() {
    let cases = [
        (
            "missing required input",
            greet_workspace(json!({}), None, "."),
        ),
        (
            "undefined variable",
            greet_workspace(json!({"name": "{{ input.nope.x }}"}), None, "."),
        ),
        (
            "wrong type",
            greet_workspace(json!({"name": "a", "count": "many"}), None, "."),
        ),
        (
            "escaping source",
            greet_workspace(
                json!({"name": "a"}),
                Some("scripts/../../etc/{{ each.item }}"),
                ".",
            ),
        ),
        (
            "absolute workdir",
            greet_workspace(json!({"name": "a"}), None, "/{{ each.item }}"),
        ),
    ];
    let mut out = String::new();
    for (label, def) in &cases {
        let result = prepared(def).map(|spec| spec.step);
        let _ = writeln!(out, "{label}: {result:?}");
    }
    insta::assert_snapshot!(out);
}

#[test]
fn recorded_step_input_is_masked_with_the_attempts_values_and_secret_fields() {
    let def = greet_workspace(
        json!({"name": "Bearer s3cr3t-token", "password": "{{ input.pin }}", "count": 4}),
        None,
        ".",
    );
    let mut h = Harness::new(&def, "main", json!({"who": "World", "pin": "98"}));
    h.run(1.0, "build")
        .succeed(2.0, "build", json!({"artifact": "app.tar"}))
        .event(
            3.0,
            crate::engine::Event::StepClaimed {
                step: "greet[1]".into(),
            },
        );
    let ctx = EvalContext {
        templates: &h.templates,
        secrets: &h.secrets,
        mask: &h.mask,
    };
    let spec = crate::engine::prepare_attempt(&h.job, &h.plan, "greet[1]", &ctx).expect("spec");
    // Only the values that occur in the attempt travel to the worker.
    assert_eq!(spec.mask, ["s3cr3t-token"]);
    crate::engine::record_attempt_input(&mut h.job, &h.plan, &spec);
    // A secret field reads `••••••` even when its value is too short to mask anywhere else.
    insta::assert_snapshot!(
        h.job.step("greet[1]").and_then(|state| state.input.clone()).unwrap_or_default().to_string(),
        @r#"{"name":"Bearer ••••••","password":"••••••","count":4}"#
    );
}
