//! Whole-pass tests: YAML through the decoder and every check, asserting on what users see.

use crate::workflow::{WorkflowFile, WorkspaceFiles, load};

/// `code: message @ line:column` of every diagnostic of a one-file workspace.
fn check(yaml: &str) -> Vec<String> {
    check_files(&[("main.yaml", yaml)])
}

fn check_files(files: &[(&str, &str)]) -> Vec<String> {
    let files = WorkspaceFiles {
        workflow_files: files
            .iter()
            .map(|(path, text)| WorkflowFile {
                path: (*path).to_owned(),
                text: (*text).to_owned(),
            })
            .collect(),
        all_files: Default::default(),
    };
    load(&files)
        .diagnostics
        .iter()
        .map(|d| format!("{}: {} @ {}:{}", d.code, d.message, d.line, d.column))
        .collect()
}

#[test]
fn templates_may_read_transitive_dependencies() {
    let yaml = "
tasks:
  t:
    flow:
      a: { type: script, script: echo a }
      b: { type: script, script: echo b, depends_on: [a] }
      c:
        type: script
        script: echo c
        depends_on: [b]
        input: { x: '{{ a.output }}' }
";
    assert_eq!(check(yaml), Vec::<String>::new());
}

#[test]
fn a_problem_in_a_shared_action_is_reported_once() {
    let yaml = "
actions:
  greet:
    type: script
    script: echo {{ input.nmae | shell_quote }}
    input: { name: { type: string } }
tasks:
  t:
    flow:
      a: { action: greet }
      b: { action: greet }
";
    assert_eq!(
        check(yaml),
        ["unknown-input: action 'greet' declares no input 'nmae' — did you mean 'name'? @ 5:13"]
    );
}

#[test]
fn each_in_a_shared_action_is_checked_per_using_step() {
    let yaml = "
actions:
  per-item:
    type: script
    script: echo {{ each.item | shell_quote }}
tasks:
  t:
    flow:
      looped: { action: per-item, for_each: [1, 2] }
      single: { action: per-item }
";
    assert_eq!(
        check(yaml),
        ["misplaced-variable: 'each' is only available in the instances of a for_each step @ 5:13"]
    );
}

#[test]
fn webhook_tasks_accept_the_request_keys() {
    let yaml = "
tasks:
  t:
    input: { ref: { type: string } }
    flow:
      a:
        type: script
        script: echo
        input: { x: '{{ input.body.ref }} {{ input.query }}' }
triggers:
  push: { type: webhook, task: t, secret: a-long-secret }
";
    assert_eq!(check(yaml), Vec::<String>::new());
}

#[test]
fn names_from_a_file_that_failed_to_parse_are_not_reported_unknown() {
    let broken = "actions:\n  greet: [\n";
    let user = "tasks:\n  t:\n    flow:\n      a: { action: greet }\n";
    let found = check_files(&[("a.yaml", broken), ("b.yaml", user)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("yaml-syntax:"), "{found:?}");
}
