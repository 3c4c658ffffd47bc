//! Small builders for workspace model values, so engine tests read like the YAML they stand for
//! without depending on the decoder.

use serde_json::Value;

use crate::workflow::model::{
    Action, ActionKind, ActionRef, ApprovalAction, Backoff, Duration, ForEach, Hooks, InputField,
    Language, Map, Retry, Runner, ScriptAction, ScriptCode, Step, Task, TaskAction, TaskMode, When,
    WorkspaceDef,
};

/// `type: script` with inline code.
pub fn script(code: &str) -> Action {
    Action {
        name: None,
        description: None,
        kind: ActionKind::Script(ScriptAction {
            legacy_shell: false,
            code: ScriptCode::Inline(code.to_owned()),
            language: Language::Shell,
            interpreter: None,
            args: Vec::new(),
            runner: Runner::Local,
            image: None,
            manifest: None,
        }),
        input: None,
        output: None,
        env: Map::new(),
        tags: Vec::new(),
        timeout: None,
        retry: None,
        resources: None,
        workdir: None,
    }
}

/// `type: approval` with `message` and the approver's form `fields`.
pub fn approval(message: &str, fields: Vec<(&str, InputField)>) -> Action {
    Action {
        kind: ActionKind::Approval(ApprovalAction {
            message: message.to_owned(),
        }),
        input: (!fields.is_empty()).then(|| {
            fields
                .into_iter()
                .map(|(name, field)| (name.to_owned(), field))
                .collect()
        }),
        ..script("")
    }
}

/// `type: task` running `task`.
pub fn task_action(task: &str) -> Action {
    Action {
        kind: ActionKind::Task(TaskAction {
            task: task.to_owned(),
        }),
        ..script("")
    }
}

/// A step referencing a named action.
pub fn uses(action: &str) -> Step {
    Step {
        action: ActionRef::Named(action.to_owned()),
        name: None,
        description: None,
        depends_on: Vec::new(),
        input: Map::new(),
        continue_on_failure: false,
        when: None,
        for_each: None,
        sequential: false,
        timeout: None,
        retry: None,
    }
}

/// A short-form inline step (`type: script` on the step).
pub fn inline(code: &str) -> Step {
    Step {
        action: ActionRef::Inline {
            action: Box::new(script(code)),
            short_form: true,
        },
        ..uses("")
    }
}

pub fn after(step: Step, dependencies: &[&str]) -> Step {
    Step {
        depends_on: dependencies.iter().map(|name| (*name).to_owned()).collect(),
        ..step
    }
}

pub fn when(step: Step, condition: When) -> Step {
    Step {
        when: Some(condition),
        ..step
    }
}

pub fn tolerant(step: Step) -> Step {
    Step {
        continue_on_failure: true,
        ..step
    }
}

pub fn for_each(step: Step, items: ForEach, sequential: bool) -> Step {
    Step {
        for_each: Some(items),
        sequential,
        ..step
    }
}

pub fn with_input(step: Step, input: Value) -> Step {
    let Value::Object(map) = input else {
        panic!("step input must be an object");
    };
    Step {
        input: map.into_iter().collect(),
        ..step
    }
}

pub fn retry(max_attempts: u32, delay: u64, backoff: Backoff, jitter: bool) -> Retry {
    Retry {
        max_attempts,
        delay: Duration(delay),
        backoff,
        jitter,
    }
}

pub fn field(field_type: &str) -> InputField {
    serde_json::from_value(serde_json::json!({
        "type": field_type, "name": null, "description": null, "required": false,
        "default": null, "options": null, "allow_custom": false, "multiple": false,
        "secret": false, "order": null,
    }))
    .expect("field definition deserialises")
}

pub fn task(flow: Vec<(&str, Step)>) -> Task {
    Task {
        name: None,
        description: None,
        folder: None,
        mode: TaskMode::Distributed,
        input: None,
        flow: flow
            .into_iter()
            .map(|(name, step)| (name.to_owned(), step))
            .collect(),
        timeout: None,
        retry: None,
        concurrency: None,
        priority: None,
        hooks: Hooks::default(),
        file: "test.yaml".to_owned(),
    }
}

pub fn workspace(actions: Vec<(&str, Action)>, tasks: Vec<(&str, Task)>) -> WorkspaceDef {
    WorkspaceDef {
        actions: actions
            .into_iter()
            .map(|(name, action)| (name.to_owned(), action))
            .collect(),
        tasks: tasks
            .into_iter()
            .map(|(name, task)| (name.to_owned(), task))
            .collect(),
        ..WorkspaceDef::default()
    }
}

/// A workspace with one task `main` of inline steps.
pub fn single(flow: Vec<(&str, Step)>) -> WorkspaceDef {
    workspace(Vec::new(), vec![("main", task(flow))])
}

/// A step with `retry: {max_attempts: n, delay: 30s}`.
pub fn retried(step: Step, max_attempts: u32) -> Step {
    Step {
        retry: Some(retry(max_attempts, 30, Backoff::Fixed, false)),
        ..step
    }
}

pub fn for_each_items(step: Step, items: Vec<Value>, sequential: bool) -> Step {
    for_each(step, ForEach::Items(items), sequential)
}
