//! `stroem validate` on the fixture corpus under `tests/fixtures/validate/`: every workspace is
//! validated by the real binary, and its text and JSON output are snapshots. Valid workspaces
//! must give no error; each broken one shows what users see for that class of mistake.

use crate::support::{Output, Stroem, fixtures};

fn workspace(name: &str) -> std::path::PathBuf {
    fixtures().join("validate").join(name)
}

/// Validates a fixture workspace from inside it, as users run it, and snapshots both outputs.
fn snapshot(name: &str) -> (Output, Output) {
    let text = Stroem::new()
        .arg("validate")
        .current_dir(workspace(name))
        .run();
    let json = Stroem::new()
        .args(["validate", "-o", "json"])
        .current_dir(workspace(name))
        .run();
    insta::assert_snapshot!(
        format!("{name}_text"),
        format!("exit code: {}\n{}{}", text.code, text.stdout, text.stderr)
    );
    let document: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("one JSON document");
    insta::assert_json_snapshot!(format!("{name}_json"), document);
    assert_eq!(text.code, json.code, "both formats exit alike");
    (text, json)
}

fn assert_valid(name: &str) {
    let (text, json) = snapshot(name);
    assert_eq!(text.code, 0, "{}", text.stdout);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(document["summary"]["errors"], 0);
    assert_eq!(document["ok"], true);
}

fn assert_invalid(name: &str) {
    let (text, json) = snapshot(name);
    assert_eq!(text.code, 1, "{}", text.stdout);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(document["ok"], false);
}

#[test]
fn hello_world_of_the_seed_is_valid() {
    assert_valid("hello-world");
}

#[test]
fn workspace_using_every_p1_feature_is_valid() {
    assert_valid("full");
}

#[test]
fn typos_in_keys() {
    assert_invalid("typo-keys");
}

#[test]
fn unknown_actions_tasks_and_dependencies() {
    assert_invalid("unknown-refs");
}

#[test]
fn dependency_and_task_cycles_and_deep_nesting() {
    assert_invalid("cycles");
}

#[test]
fn duplicates_across_files() {
    assert_invalid("duplicates");
}

#[test]
fn yaml_syntax_errors() {
    assert_invalid("yaml-syntax");
}

#[test]
fn cron_expressions_and_timezones() {
    assert_invalid("schedules");
}

#[test]
fn template_syntax_errors() {
    assert_invalid("template-syntax");
}

#[test]
fn template_references_per_render_site() {
    assert_invalid("template-refs");
}

#[test]
fn inputs_against_schemas() {
    assert_invalid("inputs");
}

#[test]
fn source_files() {
    assert_invalid("sources");
}

#[test]
fn secret_definitions() {
    assert_invalid("secrets");
}

#[test]
fn invalid_field_combinations() {
    assert_invalid("combinations");
}

#[test]
fn several_errors_at_once() {
    assert_invalid("many-errors");
}

#[test]
fn warnings_pass_unless_strict() {
    let (text, _) = snapshot("warnings-only");
    assert_eq!(text.code, 0);
    let strict = Stroem::new()
        .args(["validate", "--strict"])
        .current_dir(workspace("warnings-only"))
        .run();
    assert_eq!(strict.code, 1);
    assert!(
        strict.stdout.ends_with("0 errors, 2 warnings\n"),
        "{}",
        strict.stdout
    );
}

#[test]
fn any_path_inside_a_workspace_validates_the_whole_workspace() {
    let root = workspace("hello-world");
    let from_root = Stroem::new().arg("validate").arg(&root).run();
    let from_dir = Stroem::new()
        .arg("validate")
        .arg(root.join(".workflows"))
        .run();
    let from_file = Stroem::new()
        .arg("validate")
        .arg(root.join(".workflows/hello.yaml"))
        .run();
    for output in [&from_root, &from_dir, &from_file] {
        assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
        // The seed README's original hello world writes input into shell code: two warnings.
        assert!(
            output
                .stdout
                .ends_with("ok: 2 actions, 1 task, 0 triggers; 2 warnings\n"),
            "{}",
            output.stdout
        );
    }
}

#[test]
fn diagnostics_name_files_as_typed_from_elsewhere() {
    let output = Stroem::new()
        .args(["validate", "tests/fixtures/validate/duplicates"])
        .run();
    assert_eq!(output.code, 1);
    assert!(
        output
            .stdout
            .contains(" --> tests/fixtures/validate/duplicates/.workflows/b.yaml:"),
        "{}",
        output.stdout
    );
}

#[test]
fn a_lone_file_outside_any_workspace_is_validated_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("single.yaml"),
        "tasks:\n  t:\n    flow:\n      a: { action: missing }\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("other.yaml"), "tasks: [not valid]\n").expect("write");
    let output = Stroem::new()
        .args(["validate", "single.yaml"])
        .current_dir(dir.path())
        .run();
    insta::assert_snapshot!(format!("exit code: {}\n{}", output.code, output.stdout));
}

#[test]
fn a_missing_path_is_a_usage_error() {
    let output = Stroem::new().args(["validate", "no/such/place"]).run();
    assert_eq!(output.code, 2);
    assert!(output.stdout.is_empty());
    assert!(
        output
            .stderr
            .starts_with("error: cannot read 'no/such/place'"),
        "{}",
        output.stderr
    );
}

#[test]
fn an_unreadable_workflow_file_is_a_workspace_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let workflows = dir.path().join(".workflows");
    std::fs::create_dir(&workflows).expect("mkdir");
    std::fs::write(workflows.join("ok.yaml"), "tasks: {}\n").expect("write");
    std::fs::write(workflows.join("latin1.yaml"), b"name: caf\xe9\n").expect("write");
    let output = Stroem::new().arg("validate").current_dir(dir.path()).run();
    insta::assert_snapshot!(format!("exit code: {}\n{}", output.code, output.stdout));
}

/// Issue #15 item 8: `validate` warns about a secret whose variable is not set here, naming
/// both, and still passes (WF §18.2 rule 35: a warning in `stroem validate`).
#[test]
fn an_unset_secret_variable_is_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join(".workflows")).expect("mkdir");
    std::fs::write(
        dir.path().join(".workflows/main.yaml"),
        "secrets:\n  MISSING_TOKEN: \"{{ env.LANG_TEST_NEVER_SET_SECRET }}\"\n\
         tasks:\n  plain:\n    flow:\n      say: { type: script, script: echo hi }\n",
    )
    .expect("write");
    let output = Stroem::new().arg("validate").current_dir(dir.path()).run();
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert!(
        output.stdout.contains("warning[secret-unresolved]"),
        "{}",
        output.stdout
    );
    assert!(output.stdout.contains("MISSING_TOKEN"), "{}", output.stdout);
    assert!(
        output.stdout.contains("LANG_TEST_NEVER_SET_SECRET"),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .contains("ok: 0 actions, 1 task, 0 triggers; 1 warning"),
        "{}",
        output.stdout
    );
}

/// Issue #15 item 12: `default()` guards only the last lookup of a chain, so
/// `input.body.pusher.name | default('x')` fails when `pusher` is missing. `validate` says so,
/// with the way to write it in the help line.
#[test]
fn default_after_a_chained_lookup_gets_a_warning_with_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join(".workflows")).expect("mkdir");
    std::fs::write(
        dir.path().join(".workflows/main.yaml"),
        r#"
tasks:
  on-push:
    flow:
      show:
        type: script
        input:
          who: "{{ input.body.pusher.name | default('someone') }}"
          ref: "{{ input.body.ref | default('none') }}"
        script: echo "$INPUT_WHO $INPUT_REF"
triggers:
  push: { type: webhook, task: on-push }
"#,
    )
    .expect("write");
    let output = Stroem::new().arg("validate").current_dir(dir.path()).run();
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    let text = &output.stdout;
    assert!(text.contains("warning[default-chain]"), "{text}");
    assert!(text.contains("'input.body.pusher'"), "{text}");
    assert!(
        text.contains("(input.body.pusher | default({})).name | default(…)"),
        "{text}"
    );
    // One lookup below a value that is always there is guarded fine: no warning for `ref`.
    assert_eq!(text.matches("warning[default-chain]").count(), 1, "{text}");
}

/// Issue #15 item 11: a template that writes a value into a shell script's code is a warning,
/// with the fix in the help line; quoted values, typed numbers and other languages are not.
#[test]
fn a_value_written_into_shell_code_is_a_script_injection_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join(".workflows")).expect("mkdir");
    std::fs::write(
        dir.path().join(".workflows/main.yaml"),
        r#"
actions:
  greet:
    type: script
    input:
      name: { type: string }
      count: { type: integer }
    script: |
      echo Hello {{ input.name }}
      echo {{ input.name | shell_quote }} {{ input.count }}
      echo "$INPUT_NAME"
  py:
    type: script
    language: python
    input:
      name: { type: string }
    script: print("{{ input.name }}")
tasks:
  hello:
    input:
      name: { type: string }
    flow:
      say:
        action: greet
        input: { name: "{{ input.name }}", count: 2 }
      py:
        action: py
        input: { name: "{{ input.name }}" }
"#,
    )
    .expect("write");
    let output = Stroem::new().arg("validate").current_dir(dir.path()).run();
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    let text = &output.stdout;
    assert_eq!(
        text.matches("warning[script-injection]").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("'{{ input.name }}' puts a value into the shell script"),
        "{text}"
    );
    assert!(
        text.contains("write {{ input.name | shell_quote }}, or use \"$INPUT_NAME\""),
        "{text}"
    );
}
