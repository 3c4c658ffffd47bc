//! Tests of the decoder: the seed and specification examples decode clean, and every
//! diagnostic the decoder emits has a snapshot of a small broken input.

use std::collections::BTreeSet;

use super::super::model::{ActionKind, ActionRef, ScriptCode, TaskMode};
use super::super::{Loaded, WorkflowFile, WorkspaceFiles};
use super::decode;

mod cases;
mod fuzz;

pub fn files(list: &[(&str, &str)]) -> WorkspaceFiles {
    WorkspaceFiles {
        workflow_files: list
            .iter()
            .map(|(path, text)| WorkflowFile {
                path: (*path).to_owned(),
                text: (*text).to_owned(),
            })
            .collect(),
        all_files: BTreeSet::from(["scripts/deploy.sh".to_owned(), "run.sh".to_owned()]),
    }
}

/// Diagnostics as a compiler would list them, one per line, related places indented.
pub fn render(loaded: &Loaded) -> String {
    let mut diagnostics = loaded.diagnostics.clone();
    super::super::diagnostic::sort(&mut diagnostics);
    let mut out = String::new();
    for d in &diagnostics {
        let severity = if d.is_error() { "error" } else { "warning" };
        out.push_str(&format!(
            "{}:{}:{}: {severity}[{}] {}: {}\n",
            d.file, d.line, d.column, d.code, d.path, d.message
        ));
        for r in &d.related {
            out.push_str(&format!(
                "    related {}:{}:{}: {}\n",
                r.file, r.line, r.column, r.message
            ));
        }
    }
    out
}

const HELLO: &str = include_str!("testdata/hello.yaml");
const RELEASE: &str = include_str!("testdata/release.yaml");
const SITE: &str = include_str!("testdata/site.yaml");

#[test]
fn hello_world_decodes_clean() {
    let loaded = decode(&files(&[("hello.yaml", HELLO)]));
    assert_eq!(render(&loaded), "");
    let def = &loaded.def;
    let greet = &def.actions["greet"];
    let ActionKind::Script(script) = &greet.kind else {
        panic!("greet is a script action");
    };
    assert!(script.legacy_shell);
    assert!(matches!(&script.code, ScriptCode::Inline(code) if code.starts_with("echo Hello")));
    assert_eq!(greet.type_name(), "script");
    let task = &def.tasks["hello-world"];
    assert_eq!(task.mode, TaskMode::Distributed);
    assert_eq!(task.file, "hello.yaml");
    assert_eq!(task.folder, None);
    let shout = &task.flow["shout-it"];
    assert!(matches!(&shout.action, ActionRef::Named(name) if name == "shout"));
    assert_eq!(shout.depends_on, ["say-hello"]);
    assert_eq!(
        shout.input["message"],
        serde_json::json!("{{ say_hello.output.greeting }}")
    );
    assert_eq!(
        task.input.as_ref().expect("input")["name"].default,
        Some(serde_json::json!("World"))
    );
}

#[test]
fn records_key_and_value_locations() {
    let loaded = decode(&files(&[("hello.yaml", HELLO)]));
    let at = |path: &str| {
        let l = loaded.sources.value(path);
        (l.file, l.line, l.column)
    };
    let key = |path: &str| {
        let l = loaded.sources.key(path).expect("key recorded").clone();
        (l.line, l.column)
    };
    assert_eq!(
        at("tasks.hello-world.flow.shout-it.depends_on[0]"),
        ("hello.yaml".to_owned(), 24, 22)
    );
    assert_eq!(key("tasks.hello-world.flow.shout-it.depends_on"), (24, 9));
    assert_eq!(key("tasks.hello-world.flow.say-hello.input.name"), (21, 11));
    assert_eq!(at("tasks.hello-world.flow.say-hello.input.name").1, 21);
    assert_eq!(key("actions.greet.input.name.required"), (6, 29));
    assert_eq!(at("actions.shout.cmd").1, 9);
}

#[test]
fn example_workspace_reports_only_later_phases() {
    let loaded = decode(&files(&[
        (".workflows/ops/site.yaml", SITE),
        (".workflows/release.yaml", RELEASE),
    ]));
    insta::assert_snapshot!(render(&loaded));
    assert!(loaded.diagnostics.iter().all(|d| d.code == "unsupported"));
    let def = &loaded.def;
    assert_eq!(def.tasks["build-site"].folder.as_deref(), Some("ops"));
    assert_eq!(def.tasks["release"].folder, None);
    assert_eq!(def.tasks["release"].flow.len(), 5);
    assert_eq!(def.hooks.on_error.len(), 1);
    assert_eq!(def.triggers.len(), 2);
    assert_eq!(def.secrets.len(), 3);
    let inline = &def.tasks["build-site"].flow["fetch"].action;
    assert!(matches!(
        inline,
        ActionRef::Inline {
            short_form: true,
            ..
        }
    ));
}

#[test]
fn empty_files_contribute_nothing() {
    let loaded = decode(&files(&[("a.yaml", ""), ("b.yaml", "# nothing\n")]));
    assert!(loaded.diagnostics.is_empty());
    assert!(loaded.def.actions.is_empty());
}

#[test]
fn duplicates_keep_the_first_definition() {
    let loaded = decode(&files(&[
        (
            "a.yaml",
            "actions:\n  x: { type: script, script: echo a }\n",
        ),
        (
            "b.yaml",
            "actions:\n  x: { type: script, script: echo b }\n",
        ),
    ]));
    let ActionKind::Script(script) = &loaded.def.actions["x"].kind else {
        panic!("script action");
    };
    assert!(matches!(&script.code, ScriptCode::Inline(code) if code == "echo a"));
    assert_eq!(loaded.sources.value("actions.x").file, "a.yaml");
}

#[test]
fn workspace_hooks_are_numbered_in_merged_order() {
    let hook = "on_error:\n  - action: notify\n    input: { text: x }\n";
    let loaded = decode(&files(&[("a.yaml", hook), ("b.yaml", hook)]));
    assert_eq!(loaded.def.hooks.on_error.len(), 2);
    let second = loaded.sources.value("on_error[1].input.text");
    assert_eq!((second.file.as_str(), second.line), ("b.yaml", 3));
}
