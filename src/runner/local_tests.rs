//! The local runner driving real processes (`sh`, `python3`): environment, input and output,
//! program selection, confinement, masking and line limits. Stopping (timeouts, cancellation,
//! signals) is tested in `stop_tests.rs`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::LocalRunner;
use super::spec::{AttemptResult, LogLine, Outcome, Program, ScriptBody, StepSpec, Stream};

/// A working copy and a runner whose worker environment holds `STROEM*` names to hide.
pub(super) struct Harness {
    pub runner: LocalRunner,
    pub copy: tempfile::TempDir,
}

impl Harness {
    pub fn new(kill_grace: Duration) -> Self {
        let mut base: BTreeMap<String, String> = std::env::vars().collect();
        base.insert("STROEM_WORKER_TOKEN".to_owned(), "worker-secret".to_owned());
        base.insert("STROEMISH".to_owned(), "hidden too".to_owned());
        base.insert("WORKER_VISIBLE".to_owned(), "yes".to_owned());
        Harness {
            runner: LocalRunner::new(kill_grace, base),
            copy: tempfile::tempdir().expect("working copy"),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.copy.path().canonicalize().expect("canonical copy")
    }

    pub async fn run(&self, spec: &StepSpec) -> (AttemptResult, Vec<LogLine>) {
        self.run_until(spec, |_| false, CancellationToken::new())
            .await
    }

    /// Runs `spec`, cancelling `cancel` as soon as a line satisfies `cancel_when`.
    pub async fn run_until(
        &self,
        spec: &StepSpec,
        cancel_when: impl Fn(&LogLine) -> bool + Send + Sync,
        cancel: CancellationToken,
    ) -> (AttemptResult, Vec<LogLine>) {
        let mut lines = Vec::new();
        let trigger = cancel.clone();
        let mut sink = |line: LogLine| {
            if cancel_when(&line) {
                trigger.cancel();
            }
            lines.push(line);
        };
        let result = self
            .runner
            .run(spec, self.copy.path(), &mut sink, cancel)
            .await;
        (result, lines)
    }
}

/// An inline `sh` step.
pub(super) fn shell(script: &str) -> StepSpec {
    StepSpec {
        job_id: uuid::Uuid::nil(),
        workspace: "ops".to_owned(),
        task: "release".to_owned(),
        step: "build[1]".to_owned(),
        attempt: 2,
        action_name: "build".to_owned(),
        program: Program::Script {
            code: ScriptBody::Inline(script.to_owned()),
            interpreter: None,
            default_interpreter: vec!["sh".to_owned()],
            args: vec![],
        },
        env: vec![("ACTION_VAR".to_owned(), "from action".to_owned())],
        input: serde_json::Map::new(),
        workdir: None,
        timeout_secs: None,
        mask: vec![],
        output_schema: None,
        runner: Default::default(),
        image: None,
        resources: None,
        manifest: None,
    }
}

fn with_input(mut spec: StepSpec, input: Value) -> StepSpec {
    spec.input = input.as_object().cloned().expect("input object");
    spec
}

fn source(rel: &str, default: &str, args: &[&str]) -> StepSpec {
    let mut spec = shell("");
    spec.program = Program::Script {
        code: ScriptBody::Source(rel.to_owned()),
        interpreter: None,
        default_interpreter: vec![default.to_owned()],
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    };
    spec
}

/// The lines of one stream.
pub(super) fn stream(lines: &[LogLine], which: Stream) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line.stream == which)
        .map(|line| line.line.clone())
        .collect()
}

/// `stdout` lines, then `stderr` lines: the order between the two streams is not defined.
fn transcript(lines: &[LogLine]) -> String {
    let out = stream(lines, Stream::Stdout)
        .into_iter()
        .map(|l| format!("out| {l}"));
    let err = stream(lines, Stream::Stderr)
        .into_iter()
        .map(|l| format!("err| {l}"));
    out.chain(err).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn environment_layers_and_stroem_variables() {
    let harness = Harness::new(Duration::from_secs(5));
    let spec = with_input(
        shell(
            r#"for name in WORKER_VISIBLE STROEM_WORKER_TOKEN STROEMISH ACTION_VAR INPUT_RELEASE_TAG \
               INPUT_COUNT INPUT_FLAGS INPUT_NOTHING STROEM_JOB_ID STROEM_TASK STROEM_TASK_NAME \
               STROEM_STEP STROEM_STEP_NAME STROEM_WORKSPACE STROEM_ATTEMPT; do
                 eval "printf '%s=%s\n' $name \"\${$name-<unset>}\""
               done
               test "$STROEM_WORKDIR" = "$(pwd)" && echo "workdir is the copy"
               test -s "$STROEM_OUTPUT" || echo "output file is empty""#,
        ),
        json!({"release-tag": "v1.2.3", "count": 3, "flags": {"dry": true}, "nothing": null}),
    );
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    insta::assert_snapshot!(transcript(&lines), @r#"
    out| WORKER_VISIBLE=yes
    out| STROEM_WORKER_TOKEN=<unset>
    out| STROEMISH=<unset>
    out| ACTION_VAR=from action
    out| INPUT_RELEASE_TAG=v1.2.3
    out| INPUT_COUNT=3
    out| INPUT_FLAGS={"dry":true}
    out| INPUT_NOTHING=<unset>
    out| STROEM_JOB_ID=00000000-0000-0000-0000-000000000000
    out| STROEM_TASK=release
    out| STROEM_TASK_NAME=release
    out| STROEM_STEP=build[1]
    out| STROEM_STEP_NAME=build[1]
    out| STROEM_WORKSPACE=ops
    out| STROEM_ATTEMPT=2
    out| workdir is the copy
    out| output file is empty
    "#);
    assert!(
        lines
            .iter()
            .all(|l| l.step == "build[1]" && l.attempt == Some(2))
    );
    assert_eq!(result.output, Value::Null);
    assert_eq!(result.error_message, None);
}

#[tokio::test]
async fn input_file_holds_the_whole_input_and_large_values_skip_the_variable() {
    let harness = Harness::new(Duration::from_secs(5));
    let big = "b".repeat(40_000);
    let spec = with_input(
        shell(
            r#"cat "$STROEM_INPUT"; echo
               echo "INPUT_BIG is ${INPUT_BIG-unset}"
               dirname "$STROEM_INPUT""#,
        ),
        json!({"big": big, "name": "x y"}),
    );
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    let out = stream(&lines, Stream::Stdout);
    let input: Value = serde_json::from_str(&out[0]).expect("input JSON");
    assert_eq!(input, json!({"big": big, "name": "x y"}));
    assert_eq!(out[1], "INPUT_BIG is unset");
    assert_eq!(
        stream(&lines, Stream::Stderr),
        [
            "stroem: INPUT_BIG is not set: its value is 40000 bytes, over the 32 KiB limit; \
          read it from $STROEM_INPUT"
        ]
    );
    let io_dir = Path::new(&out[2]);
    assert!(
        !io_dir.starts_with(harness.root()),
        "I/O dir outside the copy"
    );
    assert!(!io_dir.exists(), "I/O dir removed after the attempt");
}

#[tokio::test]
async fn output_file_wins_over_output_lines() {
    let harness = Harness::new(Duration::from_secs(5));
    let spec = shell(
        r#"echo 'OUTPUT: {"from": "line"}'
           printf '{"from": "file", "n": [1, 2]}' > "$STROEM_OUTPUT""#,
    );
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    assert_eq!(result.output, json!({"from": "file", "n": [1, 2]}));
    assert_eq!(
        stream(&lines, Stream::Stdout),
        [r#"OUTPUT: {"from": "line"}"#]
    );
}

/// Issue #15 item 11: shell steps set outputs with `key=value` lines (and `key<<END` … `END`
/// for several lines) appended to `$STROEM_OUTPUT_VARS`, no hand-written JSON needed.
#[tokio::test]
async fn key_value_lines_in_the_vars_file_become_output_fields() {
    let harness = Harness::new(Duration::from_secs(5));
    let spec = shell(
        r#"name="O'Brien \"the\" \$HOME"
           echo "greeting=Hello $name" >> "$STROEM_OUTPUT_VARS"
           printf 'notes<<END\nfirst\nsecond=2\nEND\n' >> "$STROEM_OUTPUT_VARS"
           echo "count=3" >> "$STROEM_OUTPUT_VARS""#,
    );
    let (result, _) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    assert_eq!(
        result.output,
        json!({"greeting": "Hello O'Brien \"the\" $HOME", "notes": "first\nsecond=2", "count": "3"})
    );

    // Beside an `OUTPUT:` object the fields are added; a line without `=` fails the attempt.
    let spec = shell(
        r#"echo 'OUTPUT: {"n": 1}'
           echo "extra=yes" >> "$STROEM_OUTPUT_VARS""#,
    );
    let (result, _) = harness.run(&spec).await;
    assert_eq!(result.output, json!({"n": 1, "extra": "yes"}));
    let spec = shell(r#"echo "no equals sign" >> "$STROEM_OUTPUT_VARS""#);
    let (result, _) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Failed, "{result:?}");
    let message = result.error_message.unwrap_or_default();
    assert!(message.contains("$STROEM_OUTPUT_VARS line 1"), "{message}");
}

#[tokio::test]
async fn last_valid_output_line_wins_and_invalid_lines_get_a_note() {
    let harness = Harness::new(Duration::from_secs(5));
    let spec = shell(
        r#"echo 'OUTPUT: {"n": 1}'
           echo 'OUTPUT:{"n": 2}'
           echo 'OUTPUT: {"n": oops}'
           echo done"#,
    );
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    assert_eq!(result.output, json!({"n": 2}));
    insta::assert_snapshot!(transcript(&lines), @r#"
    out| OUTPUT: {"n": 1}
    out| OUTPUT:{"n": 2}
    out| OUTPUT: {"n": oops}
    out| done
    err| stroem: ignored an OUTPUT: line with invalid JSON (expected value at line 1 column 7)
    "#);
}

#[tokio::test]
async fn invalid_json_in_the_output_file_fails_the_attempt() {
    let harness = Harness::new(Duration::from_secs(5));
    let spec = shell(r#"echo 'OUTPUT: 1'; echo '{not json' > "$STROEM_OUTPUT""#);
    let (result, _) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(result.output, Value::Null);
    assert_eq!(
        result.error_message.as_deref(),
        Some("invalid JSON in $STROEM_OUTPUT: key must be a string at line 1 column 2")
    );
}

#[tokio::test]
async fn exit_code_fails_with_the_stderr_tail() {
    let harness = Harness::new(Duration::from_secs(5));
    let spec = shell(
        r#"i=0; while [ $i -lt 25 ]; do i=$((i+1)); echo "problem $i" >&2; done
           echo 'OUTPUT: {"ignored": true}'
           exit 3"#,
    );
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(result.output, Value::Null);
    let expected: Vec<String> = (6..=25).map(|i| format!("problem {i}")).collect();
    assert_eq!(
        result.error_message,
        Some(format!("exit code 3\n{}", expected.join("\n")))
    );
    assert_eq!(stream(&lines, Stream::Stderr).len(), 25);
    assert!(result.finished_at >= result.started_at);
}

#[tokio::test]
async fn masking_covers_lines_and_the_error_message() {
    let harness = Harness::new(Duration::from_secs(5));
    let mut spec = with_input(
        shell(
            r#"echo "password is $INPUT_PASSWORD"
               echo "multi: line-one and line-two"
               echo "failed with hunter2hunter2!" >&2
               exit 1"#,
        ),
        json!({"password": "hunter2hunter2"}),
    );
    spec.mask = vec!["hunter2hunter2".to_owned(), "line-one\nline-two".to_owned()];
    let (result, lines) = harness.run(&spec).await;
    insta::assert_snapshot!(transcript(&lines), @r"
    out| password is ••••••
    out| multi: •••••• and ••••••
    err| failed with ••••••!
    ");
    assert_eq!(
        result.error_message.as_deref(),
        Some("exit code 1\nfailed with ••••••!")
    );
}

#[tokio::test]
async fn long_lines_are_cut_at_64_kib() {
    let harness = Harness::new(Duration::from_secs(5));
    let spec = shell("head -c 70000 /dev/zero | tr '\\0' x; echo; echo after");
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    let out = stream(&lines, Stream::Stdout);
    assert_eq!(
        out[0],
        format!(
            "{}…[truncated {} bytes]",
            "x".repeat(65_536),
            70_000 - 65_536
        )
    );
    assert_eq!(out[1], "after");
}

#[tokio::test]
async fn python_inline_script_gets_its_args() {
    let harness = Harness::new(Duration::from_secs(5));
    let mut spec = shell("");
    spec.program = Program::Script {
        code: ScriptBody::Inline(
            "import sys, json\nprint('OUTPUT:', json.dumps(sys.argv[1:]))".into(),
        ),
        interpreter: None,
        default_interpreter: vec!["python3".to_owned()],
        args: vec!["a".to_owned(), "b c".to_owned()],
    };
    let (result, _) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    assert_eq!(result.output, json!(["a", "b c"]));
}

#[tokio::test]
async fn shebang_source_runs_directly_and_others_use_the_default_interpreter() {
    let harness = Harness::new(Duration::from_secs(5));
    let root = harness.root();
    fs::create_dir(root.join("bin")).expect("mkdir");
    let tool = root.join("bin/tool.py");
    fs::write(
        &tool,
        "#!/usr/bin/env python3\nimport sys\nprint('python', sys.argv[1:])\n",
    )
    .expect("write");
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(
        root.join("bin/plain.sh"),
        "echo \"plain $1 in $(basename \"$0\")\"\n",
    )
    .expect("write");

    let (result, lines) = harness.run(&source("bin/tool.py", "sh", &["x"])).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    assert_eq!(stream(&lines, Stream::Stdout), ["python ['x']"]);
    let mode = fs::metadata(&tool).expect("metadata").permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "made executable in the copy");

    let (result, lines) = harness.run(&source("bin/plain.sh", "sh", &["y"])).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    assert_eq!(stream(&lines, Stream::Stdout), ["plain y in plain.sh"]);
}

#[tokio::test]
async fn workdir_is_created_and_the_process_starts_there() {
    let harness = Harness::new(Duration::from_secs(5));
    let mut spec = shell("pwd; echo \"root $STROEM_WORKDIR\"");
    spec.workdir = Some("build/out".to_owned());
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    let root = harness.root();
    assert_eq!(
        stream(&lines, Stream::Stdout),
        [
            root.join("build/out").display().to_string(),
            format!("root {}", root.display())
        ]
    );
}

#[tokio::test]
async fn escaping_source_and_workdir_fail_permanently_without_running() {
    let harness = Harness::new(Duration::from_secs(5));
    let outside = tempfile::tempdir().expect("outside");
    fs::write(outside.path().join("evil.sh"), "echo escaped").expect("write");
    symlink(outside.path(), harness.root().join("link")).expect("symlink");
    let mut cases = vec![
        (
            source("link/evil.sh", "sh", &[]),
            "source escapes the workspace",
        ),
        (
            source("../evil.sh", "sh", &[]),
            "source escapes the workspace",
        ),
        (
            source("/etc/hostname", "sh", &[]),
            "source escapes the workspace",
        ),
        (source("", "sh", &[]), "source escapes the workspace"),
    ];
    for workdir in ["link", "link/sub", "..", "/tmp", ""] {
        let mut spec = shell("echo escaped");
        spec.workdir = Some(workdir.to_owned());
        cases.push((spec, "workdir escapes the workspace"));
    }
    for (spec, message) in cases {
        let (result, lines) = harness.run(&spec).await;
        assert_eq!(result.outcome, Outcome::FailedPermanently, "{spec:?}");
        assert_eq!(result.error_message.as_deref(), Some(message), "{spec:?}");
        assert!(lines.is_empty(), "nothing ran: {lines:?}");
    }
    assert!(!outside.path().join("sub").exists());
}

#[tokio::test]
async fn an_interpreter_that_cannot_start_fails_the_attempt() {
    let harness = Harness::new(Duration::from_secs(5));
    let mut spec = shell("echo hi");
    spec.program = Program::Script {
        code: ScriptBody::Inline("echo hi".to_owned()),
        interpreter: Some(vec!["/nonexistent/stroem-interpreter".to_owned()]),
        default_interpreter: vec!["sh".to_owned()],
        args: vec![],
    };
    let (result, _) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(
        result.error_message.as_deref(),
        Some(
            "cannot start `/nonexistent/stroem-interpreter`: No such file or directory (os error 2)"
        )
    );
}

/// Callers spawn attempts on the runtime, so the attempt future must be `Send`; this fails to
/// compile otherwise.
#[test]
fn the_attempt_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let harness = Harness::new(Duration::from_secs(1));
    let spec = shell("true");
    let mut sink = |_: LogLine| {};
    let attempt = harness.runner.run(
        &spec,
        harness.copy.path(),
        &mut sink,
        CancellationToken::new(),
    );
    assert_send(&attempt);
}

#[test]
fn bare_program_names_resolve_on_the_step_path_like_execvp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let tool = bin.join("tool");
    std::fs::write(&tool, "#!/bin/sh\n").expect("write");
    let not_executable = bin.join("data");
    std::fs::write(&not_executable, "").expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!("/nonexistent:{}", bin.display());
    let found = super::local::search_path(std::ffi::OsStr::new("tool"), Some(&path));
    assert_eq!(found, Some(tool));
    assert_eq!(
        super::local::search_path(std::ffi::OsStr::new("data"), Some(&path)),
        None
    );
    assert_eq!(
        super::local::search_path(std::ffi::OsStr::new("missing"), Some(&path)),
        None
    );
    assert_eq!(
        super::local::search_path(std::ffi::OsStr::new("./tool"), Some(&path)),
        None
    );
    assert_eq!(
        super::local::search_path(std::ffi::OsStr::new("tool"), None),
        None
    );
}
