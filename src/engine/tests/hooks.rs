//! Hook selection and the `hook` variable (WF §14).

use serde_json::json;

use super::Harness;
use super::fixtures::{after, inline, single, task, tolerant, uses, workspace};
use crate::engine::{hook_event, hook_variable, hooks_to_fire};
use crate::workflow::model::{ActionRef, Hook, HookEvent, Map};

fn hook(action: &str) -> Hook {
    Hook {
        action: ActionRef::Named(action.to_owned()),
        input: Map::new(),
        timeout: None,
        retry: None,
    }
}

#[test]
fn hook_variable_lists_every_failed_step() {
    let def = single(vec![
        ("lint", tolerant(inline("lint"))),
        ("build", inline("build")),
        ("ship", after(inline("ship"), &["build"])),
        ("docs", inline("docs")),
    ]);
    let mut h = Harness::new(&def, "main", json!({"version": "1.0"}));
    h.run(1.0, "lint")
        .run(1.0, "build")
        .run(1.0, "docs")
        .fail(2.0, "lint", "exit code 1")
        .fail(3.0, "build", "exit code 2\nno space left")
        .succeed(4.0, "docs", json!({"pages": 3}));
    let event = hook_event(&h.job).expect("job finished");
    insta::assert_json_snapshot!(hook_variable(&h.job, &h.plan, event));
}

#[test]
fn task_hooks_win_and_workspace_hooks_only_fire_for_top_level_jobs() {
    let mut own = task(vec![("a", uses("noop"))]);
    own.hooks.on_error = vec![hook("task-alert")];
    let plain = task(vec![("a", uses("noop"))]);
    let mut def = workspace(
        vec![("noop", super::fixtures::script("true"))],
        vec![("own", own), ("plain", plain)],
    );
    def.hooks.on_error = vec![hook("workspace-alert")];
    def.hooks.on_success = vec![hook("workspace-done")];

    let mut out = Vec::new();
    for (task_name, parent, source_type, event) in [
        ("own", false, "user", HookEvent::Error),
        ("own", false, "user", HookEvent::Success),
        ("plain", false, "user", HookEvent::Error),
        ("plain", true, "task", HookEvent::Error),
        ("plain", false, "hook", HookEvent::Success),
    ] {
        let mut job = Harness::new(&def, task_name, json!({})).job;
        job.source_type = source_type.to_owned();
        job.parent_job_id = parent.then(super::job_id);
        let names: Vec<String> = hooks_to_fire(&def, &job, event)
            .iter()
            .map(|hook| match &hook.action {
                ActionRef::Named(name) => name.clone(),
                ActionRef::Inline { .. } => "inline".to_owned(),
            })
            .collect();
        out.push(format!(
            "{task_name} parent={parent} source={source_type} {}: {names:?}",
            event.key()
        ));
    }
    insta::assert_snapshot!(out.join("\n"));
}
