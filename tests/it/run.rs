//! `stroem run` end to end: the real binary, real workspaces on disk, real processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn stroem() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stroem"));
    command.env("NO_COLOR", "1").env_remove("STROEM_URL");
    command
}

fn run(args: &[&str]) -> Output {
    stroem()
        .arg("run")
        .args(args)
        .output()
        .expect("stroem runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// A throwaway workspace holding one workflow file (plus extra files).
fn workspace(yaml: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join(".workflows")).expect("mkdir");
    std::fs::write(dir.path().join(".workflows/main.yaml"), yaml).expect("write workflow");
    for (path, text) in extra {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write file");
    }
    dir
}

fn path_arg(dir: &tempfile::TempDir) -> String {
    dir.path().display().to_string()
}

/// Durations vary from run to run; everything else in the summary is stable.
fn redact_durations(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let words: Vec<String> = line
            .split(' ')
            .map(|word| {
                let is_duration = (word.ends_with("ms") || word.ends_with('s'))
                    && word.chars().next().is_some_and(|c| c.is_ascii_digit())
                    && word
                        .trim_end_matches(['m', 's'])
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.');
                if is_duration {
                    "[dur]".to_owned()
                } else {
                    word.to_owned()
                }
            })
            .collect();
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

#[test]
fn hello_world_example_runs() {
    let path = examples().join("hello-world");
    let output = run(&[
        "hello-world",
        "--path",
        path.to_str().expect("utf-8 path"),
        "--set",
        "name=World",
    ]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    insta::assert_snapshot!(redact_durations(&stdout(&output)));

    // Issue #15 item 11: a name with quotes is data, not shell code.
    let output = run(&[
        "hello-world",
        "--path",
        path.to_str().expect("utf-8 path"),
        "--set",
        r#"name=O'Brien "the" $HOME"#,
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let job: Value = serde_json::from_str(&stdout(&output)).expect("job JSON");
    let greeting = job["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["step_name"] == "say-hello"))
        .map(|step| step["output"]["greeting"].clone());
    assert_eq!(
        greeting,
        Some(Value::from(r#"Hello O'Brien "the" $HOME"#)),
        "{job:#}"
    );
}

#[test]
fn json_output_is_the_final_job_detail() {
    let path = examples().join("hello-world");
    let output = run(&[
        "hello-world",
        "--path",
        path.to_str().expect("utf-8 path"),
        "--input",
        r#"{"name": "JSON"}"#,
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    // Logs go to stderr so stdout is exactly one JSON document.
    assert!(stderr(&output).contains("[shout-it] HELLO JSON"));
    let job: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(job["status"], "completed");
    assert_eq!(job["input"], serde_json::json!({"name": "JSON"}));
    assert_eq!(job["steps"][0]["output"]["greeting"], "Hello JSON");
    assert_eq!(job["steps"][1]["input"]["message"], "Hello JSON");
    insta::assert_json_snapshot!(job, {
        ".id" => "[id]", ".job_id" => "[id]", ".revision" => "[revision]",
        ".created_at" => "[ts]", ".started_at" => "[ts]", ".completed_at" => "[ts]",
        ".steps[].ready_at" => "[ts]", ".steps[].started_at" => "[ts]",
        ".steps[].completed_at" => "[ts]",
    });
}

#[test]
fn a_failed_job_exits_1_and_names_the_failed_step() {
    let path = examples().join("failing");
    let output = run(&["nightly-check", "--path", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("job nightly-check failed"), "{text}");
    assert!(
        text.contains("error: step 'check' failed: exit code 1"),
        "{text}"
    );
    assert!(text.contains("dependency 'check' failed"), "{text}");
    // The seed-era on_error hook fires locally too, with the original task and error.
    assert!(
        text.contains("[on_error/notify] ALERT: nightly-check failed: check: exit code 1"),
        "{text}"
    );
    assert!(
        text.contains("hook on_error → _hook:notify completed"),
        "{text}"
    );
}

#[test]
fn hooks_fire_after_the_job_and_a_broken_hook_is_reported_not_run() {
    let ws = workspace(
        r#"
actions:
  say:
    type: script
    script: echo "hook says $INPUT_TEXT ($INPUT_OK)"
    input:
      text: { type: string, required: true }
      ok: { type: string }
tasks:
  fine:
    flow:
      a:
        type: script
        script: |
          echo 'OUTPUT: {"n": 1}'
    on_success:
      - action: say
        input: { text: "{{ hook.task_name }} {{ hook.status }} n={{ hook.output.a.n }}", ok: "{{ hook.is_success }}" }
      - action: say
        input: { text: "{{ hook.output.missing.x }}" }
on_cancel:
  - action: say
    input: { text: never }
"#,
        &[],
    );
    let output = run(&["fine", "--path", &path_arg(&ws)]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    // A boolean into a string field becomes "true" (typed template values are coerced).
    assert!(
        text.contains("[on_success/say] hook says fine completed n=1 (true)"),
        "{text}"
    );
    assert!(
        text.contains("[_server] hook on_success[1] was not created: input:"),
        "{text}"
    );
    assert!(!text.contains("never"), "{text}");
}

#[test]
fn the_showcase_example_runs_to_completion() {
    let path = examples().join("showcase");
    let output = stroem()
        .args(["run", "pipeline", "--path", path.to_str().expect("utf-8")])
        .args(["--set", "version=1.2.3"])
        .env("SHOWCASE_API_TOKEN", "showcase-secret-token")
        .output()
        .expect("stroem runs");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}\n{}", stderr(&output));
    assert!(
        !text.contains("showcase-secret-token"),
        "secret leaked: {text}"
    );
    assert!(text.contains("••••••"), "{text}");
}

#[test]
fn every_example_validates_clean() {
    for entry in std::fs::read_dir(examples()).expect("examples dir") {
        let path = entry.expect("entry").path();
        if !path.is_dir() {
            continue;
        }
        let output = stroem()
            .args(["validate", "--strict"])
            .arg(&path)
            .env("SHOWCASE_API_TOKEN", "showcase-secret-token")
            .output()
            .expect("stroem runs");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}: {}{}",
            path.display(),
            stdout(&output),
            stderr(&output)
        );
    }
}

#[test]
fn usage_workspace_and_input_errors_exit_2_before_anything_runs() {
    let ws = workspace(
        r#"
tasks:
  deploy:
    input:
      version: { type: string, required: true }
      count: { type: integer }
    flow:
      go:
        type: script
        script: touch "$STROEM_WORKDIR/../ran"
"#,
        &[],
    );
    let path = path_arg(&ws);

    let missing = run(&["deploy", "--path", &path, "--set", "count=x"]);
    assert_eq!(missing.status.code(), Some(2));
    let text = stderr(&missing);
    assert!(
        text.contains("input.version: required field is missing"),
        "{text}"
    );
    assert!(text.contains("input.count"), "{text}");

    let unknown = run(&["deplyo", "--path", &path]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("did you mean 'deploy'?"),
        "{}",
        stderr(&unknown)
    );

    let bad_input = run(&["deploy", "--path", &path, "--input", "[1]"]);
    assert_eq!(bad_input.status.code(), Some(2));
    assert!(stderr(&bad_input).contains("--input"));

    let broken = workspace("tasks:\n  t:\n    flow:\n      a: { action: nope }\n", &[]);
    let invalid = run(&["t", "--path", &path_arg(&broken)]);
    assert_eq!(invalid.status.code(), Some(2));
    let text = stderr(&invalid);
    assert!(text.contains(".workflows/main.yaml:4:"), "{text}");
    assert!(text.contains("nothing was run"), "{text}");
}

#[test]
fn input_can_come_from_stdin() {
    let path = examples().join("hello-world");
    let mut child = stroem()
        .args(["run", "hello-world", "--input", "-", "--path"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(br#"{"name": "Stdin"}"#).expect("write");
    }
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("HELLO STDIN"));
}

#[test]
fn independent_steps_run_in_parallel_up_to_max_concurrent() {
    // Each step announces itself, then waits for the other: this only finishes when both run at
    // the same time.
    let rendezvous = tempfile::tempdir().expect("dir");
    let ws = workspace(
        r#"
actions:
  meet:
    type: script
    script: |
      touch "$INPUT_DIR/$INPUT_ME"
      for i in $(seq 1 200); do
        [ -e "$INPUT_DIR/$INPUT_OTHER" ] && echo "met $INPUT_OTHER" && exit 0
        sleep 0.05
      done
      echo "never met $INPUT_OTHER" >&2
      exit 1
    input:
      dir: { type: string, required: true }
      me: { type: string, required: true }
      other: { type: string, required: true }
tasks:
  pair:
    input:
      dir: { type: string, required: true }
    flow:
      left:
        action: meet
        input: { dir: "{{ input.dir }}", me: left, other: right }
      right:
        action: meet
        input: { dir: "{{ input.dir }}", me: right, other: left }
"#,
        &[],
    );
    let dir = rendezvous.path().display().to_string();
    let output = run(&[
        "pair",
        "--path",
        &path_arg(&ws),
        "--set",
        &format!("dir={dir}"),
        "--max-concurrent",
        "2",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("[left] met right"));
    assert!(stdout(&output).contains("[right] met left"));
}

#[test]
fn max_concurrent_1_runs_one_step_at_a_time() {
    let log = tempfile::tempdir().expect("dir");
    let ws = workspace(
        r#"
actions:
  record:
    type: script
    script: |
      if [ -e "$INPUT_DIR/busy" ]; then echo overlap >> "$INPUT_DIR/overlaps"; fi
      touch "$INPUT_DIR/busy"; sleep 0.2; rm "$INPUT_DIR/busy"
    input:
      dir: { type: string }
tasks:
  three:
    input:
      dir: { type: string }
    flow:
      a: { action: record, input: { dir: "{{ input.dir }}" } }
      b: { action: record, input: { dir: "{{ input.dir }}" } }
      c: { action: record, input: { dir: "{{ input.dir }}" } }
"#,
        &[],
    );
    let dir = log.path().display().to_string();
    let output = run(&[
        "three",
        "--path",
        &path_arg(&ws),
        "--set",
        &format!("dir={dir}"),
        "--max-concurrent",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(!log.path().join("overlaps").exists());
}

#[test]
fn loops_retries_timeouts_and_child_jobs_behave_as_specified() {
    let marker = tempfile::tempdir().expect("dir");
    let ws = workspace(include_str!("../fixtures/semantics/main.yaml"), &[]);
    let dir = marker.path().display().to_string();
    let started = Instant::now();
    let output = run(&[
        "main",
        "--path",
        &path_arg(&ws),
        "--set",
        &format!("dir={dir}"),
        "-o",
        "json",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the timeout did not stop sleep"
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let job: Value = serde_json::from_slice(&output.stdout).expect("json");
    let step = |name: &str| {
        job["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["step_name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no step {name}"))
    };
    assert_eq!(step("flaky")["attempt"], 2);
    assert_eq!(step("flaky")["retry_history"][0]["attempt"], 1);
    assert_eq!(step("slow")["status"], "failed");
    assert!(
        step("slow")["error_message"]
            .as_str()
            .is_some_and(|e| e.starts_with("timed out after 1s")),
        "{}",
        step("slow")
    );
    assert_eq!(
        step("squares[2]")["output"],
        serde_json::json!({"calc": {"square": 16}})
    );
    // Sinks with a non-null output make the job output (WF §10.4); `slow` failed.
    assert_eq!(job["output"], serde_json::json!({"total": 29}));
}

#[test]
fn ctrl_c_cancels_the_job_and_kills_the_whole_process_group() {
    let scratch = tempfile::tempdir().expect("dir");
    let ws = workspace(
        r#"
tasks:
  hang:
    input:
      dir: { type: string }
    flow:
      wait:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          sleep 300 &
          echo $! > "$INPUT_DIR/grandchild"
          wait
"#,
        &[],
    );
    let dir = scratch.path().display().to_string();
    let child = stroem()
        .args(["run", "hang", "--path", &path_arg(&ws), "--kill-grace", "2"])
        .args(["--set", &format!("dir={dir}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid_file = scratch.path().join("grandchild");
    let deadline = Instant::now() + Duration::from_secs(20);
    let grandchild = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = text.trim().parse::<i32>()
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(stdout(&output).contains("cancelled"), "{}", stdout(&output));
    let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(grandchild), None).is_err();
    assert!(gone, "grandchild {grandchild} survived the cancellation");
}

#[test]
fn a_job_timeout_stops_running_steps_and_fails_the_job() {
    let ws = workspace(
        r#"
tasks:
  slow:
    timeout: 1s
    flow:
      nap:
        type: script
        script: sleep 60
      after:
        depends_on: [nap]
        type: script
        script: echo never
"#,
        &[],
    );
    let started = Instant::now();
    let output = run(&["slow", "--path", &path_arg(&ws), "--kill-grace", "1"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("error: job timed out after 1s"), "{text}");
    assert!(!text.contains("[after] never"), "{text}");
}

#[test]
fn overlapping_secrets_and_secret_inputs_leave_no_fragment_in_run_output() {
    let dir = workspace(
        r#"
secrets:
  LEFT: "{{ env.RUN_TEST_LEFT }}"
  RIGHT: "{{ env.RUN_TEST_RIGHT }}"
tasks:
  join:
    input:
      pin: { type: integer, secret: true }
    flow:
      both:
        type: script
        env: { L: "{{ secret.LEFT }}", R: "{{ secret.RIGHT }}" }
        script: |
          joined="$L${R#BBBB}"
          echo "joined=$joined"
          echo "OUTPUT: {\"joined\": \"$joined\"}"
      fail:
        depends_on: [both]
        type: script
        script: |
          echo "$RUN_TEST_RIGHT" >&2
          exit 1
"#,
        &[],
    );
    for format in ["text", "json"] {
        let output = stroem()
            .args([
                "run",
                "join",
                "--path",
                &path_arg(&dir),
                "--set",
                "pin=4242",
            ])
            .args(["-o", format])
            .env("RUN_TEST_LEFT", "ovlp-AAAA-BBBB")
            .env("RUN_TEST_RIGHT", "BBBB-CCCC-ovlp")
            .output()
            .expect("stroem runs");
        assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
        let shown = format!("{}{}", stdout(&output), stderr(&output));
        for fragment in ["AAAA", "CCCC"] {
            assert!(
                !shown.contains(fragment),
                "{format}: {fragment} in:\n{shown}"
            );
        }
        assert!(shown.contains("joined=••••••"), "{format}:\n{shown}");
        if format == "json" {
            let job: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
            assert_eq!(job["input"]["pin"], "••••••", "{job:#}");
        }
    }
}

const GATED: &str = r#"
actions:
  notify:
    type: script
    input: { text: { type: string } }
    script: echo "notified $INPUT_TEXT"
  ask:
    type: approval
    message: "Ship {{ input.what }}?"
    input:
      what: { type: string }
      ticket: { type: string, required: true }
tasks:
  gated:
    flow:
      confirm:
        action: ask
        input: { what: box }
      ship:
        depends_on: [confirm]
        type: script
        input: { ticket: "{{ confirm.output.input.ticket }}" }
        script: echo "shipped with $INPUT_TICKET"
    on_suspended:
      - action: notify
        input: { text: "{{ hook.step_name }} asks: {{ hook.message }}" }
"#;

#[test]
fn an_approval_without_a_terminal_fails_clearly() {
    let dir = workspace(GATED, &[]);
    let output = run(&["gated", "--path", &path_arg(&dir)]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("approval steps need a terminal to ask on (stdin is not a terminal)"),
        "{text}"
    );
    // `on_suspended` hooks fire in `stroem run` too.
    assert!(text.contains("notified confirm asks: Ship box?"), "{text}");
}

/// Runs `stroem run` on a pseudo-terminal (`script`), typing `answers`.
fn run_on_terminal(dir: &tempfile::TempDir, answers: &str) -> Output {
    let binary = env!("CARGO_BIN_EXE_stroem");
    let command = format!("{binary} run gated --path {}", path_arg(dir));
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("USER", "tester")
        .env_remove("STROEM_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(answers.as_bytes())
            .expect("type the answers");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "stroem run did not end on the terminal"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn on_a_terminal_run_asks_and_records_the_approver() {
    let dir = workspace(GATED, &[]);
    // `what` is left empty, `ticket` answered.
    let output = run_on_terminal(&dir, "y\n\nCHG-9\n");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("Ship box?"), "{text}");
    assert!(text.contains("shipped with CHG-9"), "{text}");
    assert!(text.contains("approved by tester"), "{text}");

    let output = run_on_terminal(&dir, "n\nnot now\n");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("rejected by tester: not now"), "{text}");
}

#[cfg(feature = "docker")]
use crate::support::docker_host;

#[cfg(feature = "docker")]
const CONTAINER_WORKFLOW: &str = r#"
secrets:
  token: run-secret-value
tasks:
  boxed:
    flow:
      produce:
        type: docker
        image: localhost/stroem-test:latest
        env: { TOKEN: "{{ secret.token }}" }
        cmd: 'echo "token=$TOKEN"; echo "{\"n\": 41}" > "$STROEM_OUTPUT"'
      consume:
        depends_on: [produce]
        input: { n: "{{ produce.output.n }}" }
        action:
          type: script
          runner: docker
          image: localhost/stroem-test:latest
          input: { n: { type: integer } }
          script: |
            cat data.txt
            echo "OUTPUT: {\"m\": $((INPUT_N + 1))}"
"#;

#[cfg(feature = "docker")]
#[test]
fn docker_steps_run_on_the_local_engine_and_pass_outputs() {
    let dir = workspace(CONTAINER_WORKFLOW, &[("data.txt", "from the workspace\n")]);
    let output = stroem()
        .args(["run", "boxed", "--path", &path_arg(&dir)])
        .env("DOCKER_HOST", docker_host())
        .output()
        .expect("stroem runs");
    let text = stdout(&output);
    assert!(output.status.success(), "{text}\n{}", stderr(&output));
    assert!(text.contains("[produce] token=••••••"), "{text}");
    assert!(text.contains("[consume] from the workspace"), "{text}");
    assert!(text.contains(r#"output: {"consume":{"m":42}}"#), "{text}");
    assert!(!text.contains("run-secret-value"), "{text}");
}

#[cfg(feature = "docker")]
#[test]
fn docker_steps_without_an_engine_fail_naming_where_it_was_looked_for() {
    let dir = workspace(CONTAINER_WORKFLOW, &[("data.txt", "x\n")]);
    let output = stroem()
        .args(["run", "boxed", "--path", &path_arg(&dir)])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("stroem runs");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{text}"
    );
}

#[cfg(feature = "docker")]
#[test]
fn the_containers_example_runs_with_the_test_image() {
    let output = stroem()
        .args(["run", "containers", "--path"])
        .arg(examples().join("containers"))
        .args(["--set", "image=localhost/stroem-test:latest"])
        .env("DOCKER_HOST", docker_host())
        .output()
        .expect("stroem runs");
    let text = stdout(&output);
    assert!(output.status.success(), "{text}\n{}", stderr(&output));
    assert!(
        text.contains("[greet] Hello, World, from Linux in /tmp"),
        "{text}"
    );
    assert!(
        text.contains("[inventory] Hello, World (seen in /workspace)"),
        "{text}"
    );
    assert!(text.contains(r#"output: {"inventory":{"files":"#), "{text}");
}

/// Issue #15 item 8: an unset secret fails only the tasks that use it (WF §16.1).
#[test]
fn an_unset_secret_fails_only_the_tasks_that_use_it() {
    let dir = workspace(
        r#"
secrets:
  MISSING_TOKEN: "{{ env.LANG_TEST_NEVER_SET_SECRET }}"
tasks:
  plain:
    flow:
      say:
        type: script
        script: echo "no secret here"
  uses:
    flow:
      call:
        type: script
        input: { token: "{{ secret.MISSING_TOKEN }}" }
        script: echo "$INPUT_TOKEN"
"#,
        &[],
    );
    let output = run(&["plain", "--path", &path_arg(&dir)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("no secret here"),
        "{}",
        stdout(&output)
    );

    let output = run(&["uses", "--path", &path_arg(&dir)]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("secret 'MISSING_TOKEN'"), "{text}");
    assert!(text.contains("LANG_TEST_NEVER_SET_SECRET"), "{text}");
}

const JAVASCRIPT: &str = r#"
tasks:
  js:
    input:
      name: { type: string, default: World }
    flow:
      greet:
        type: script
        language: javascript
        input:
          name: "{{ input.name }}"
        script: |
          const fs = require("fs");
          const greeting = `Hello ${process.env.INPUT_NAME} from ${process.argv[2]}`;
          console.log(greeting);
          fs.appendFileSync(process.env.STROEM_OUTPUT, JSON.stringify({ greeting }));
        args: [node]
      shout:
        depends_on: [greet]
        type: script
        language: js
        input:
          text: "{{ greet.output.greeting }}"
        script: |
          console.log("OUTPUT: " + JSON.stringify({ loud: process.env.INPUT_TEXT.toUpperCase() }));
"#;

#[test]
fn javascript_steps_run_with_node_and_pass_outputs() {
    let dir = workspace(JAVASCRIPT, &[]);
    let output = run(&[
        "js",
        "--path",
        &path_arg(&dir),
        "--input",
        r#"{"name": "Oslo"}"#,
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let job: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(
        job["steps"][0]["output"]["greeting"],
        "Hello Oslo from node"
    );
    assert_eq!(job["steps"][1]["output"]["loud"], "HELLO OSLO FROM NODE");
}

#[test]
fn a_javascript_step_without_node_fails_with_an_error_naming_the_interpreter() {
    let dir = workspace(JAVASCRIPT, &[]);
    // A PATH with a shell but no node: the step, not the workspace, fails.
    let bin = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink("/bin/sh", bin.path().join("sh")).expect("symlink");
    let output = stroem()
        .args(["run", "js", "--path", &path_arg(&dir)])
        .env("PATH", bin.path())
        .output()
        .expect("stroem runs");
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("`node` is not installed on this worker or not on its PATH"),
        "{text}"
    );
}

/// `mode: local` under `stroem run` (WF §8): everything runs on this machine anyway, so the
/// job's steps share one working copy — a file one step writes is there for the next — while
/// a distributed job's steps each get a fresh copy. The shared copy goes when the job ends.
#[test]
fn a_local_job_s_steps_share_one_working_copy() {
    let marker = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        r#"
tasks:
  local:
    mode: local
    flow:
      write:
        type: script
        script: echo shared > note.txt; pwd > "{dir}/workdir"
      read:
        type: script
        depends_on: [write]
        script: cat note.txt
  apart:
    flow:
      write: {{ type: script, script: echo shared > note.txt }}
      read:
        type: script
        depends_on: [write]
        script: test -e note.txt && echo leaked || echo fresh
"#,
        dir = marker.path().display()
    );
    let dir = workspace(&yaml, &[]);
    let output = run(&["local", "--path", &path_arg(&dir)]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert!(
        stdout(&output).contains("[read] shared"),
        "{}",
        stdout(&output)
    );
    let workdir = std::fs::read_to_string(marker.path().join("workdir")).expect("workdir");
    assert!(
        !Path::new(workdir.trim()).exists(),
        "the shared copy is removed"
    );
    let output = run(&["apart", "--path", &path_arg(&dir)]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert!(
        stdout(&output).contains("[read] fresh"),
        "{}",
        stdout(&output)
    );
}

/// WF §13.1: a failed job is run again as a new job after the delay, until an attempt succeeds;
/// the command's outcome is the chain's last job.
#[test]
fn a_task_retry_runs_the_job_again_until_it_succeeds() {
    let dir = workspace(
        r#"
tasks:
  flaky:
    retry: { max_attempts: 3, delay: 0s }
    flow:
      call:
        type: script
        script: |
          n=$(cat "$COUNTER" 2>/dev/null || echo 0)
          n=$((n + 1))
          echo "$n" > "$COUNTER"
          echo "attempt $n"
          [ "$n" -ge 2 ]
"#,
        &[],
    );
    let counter = dir.path().join("count");
    let output = stroem()
        .env("COUNTER", &counter)
        .args(["run", "flaky", "--path", &path_arg(&dir), "-o", "json"])
        .output()
        .expect("stroem runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let job: Value = serde_json::from_str(&stdout(&output)).expect("json detail");
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["retry_attempt"], 2, "{job:#}");
    assert_eq!(job["source_type"], "retry", "{job:#}");
    assert!(job["retry_of_job_id"].is_string(), "{job:#}");
    assert!(
        stderr(&output).contains("retrying the job in 0s"),
        "{}",
        stderr(&output)
    );
}

/// WF §8: jobs of a task with `concurrency: 1` run one at a time in one process, too.
#[test]
fn a_concurrency_limit_holds_for_child_jobs_in_one_run() {
    let dir = workspace(
        r#"
actions:
  run-one:
    type: task
    task: one
tasks:
  one:
    concurrency: 1
    flow:
      work:
        type: script
        script: |
          if [ -f "$MARKS/busy" ]; then echo overlap >> "$MARKS/overlaps"; fi
          touch "$MARKS/busy"
          sleep 0.2
          rm "$MARKS/busy"
  many:
    flow:
      fan:
        action: run-one
        for_each: [1, 2, 3]
"#,
        &[],
    );
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).expect("mkdir");
    let output = stroem()
        .env("MARKS", &marks)
        .args(["run", "many", "--path", &path_arg(&dir)])
        .output()
        .expect("stroem runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !marks.join("overlaps").exists(),
        "the child jobs overlapped"
    );
}

/// API §9.2: pod steps are refused before anything runs, wherever the task reaches them.
#[test]
fn pod_steps_are_refused_before_anything_runs() {
    let dir = workspace(
        r#"
actions:
  in-cluster:
    type: pod
    image: alpine:3.20
    cmd: echo hi
tasks:
  direct:
    flow:
      first: { type: script, script: "echo first" }
      cluster: { action: in-cluster, depends_on: [first] }
  through-child:
    flow:
      child: { type: task, task: scripted }
  scripted:
    flow:
      inline:
        type: script
        runner: pod
        script: echo hi
  plain:
    flow:
      only: { type: script, script: "echo plain" }
"#,
        &[],
    );
    let output = run(&["direct", "--path", &path_arg(&dir)]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(!stdout(&output).contains("first"), "nothing ran");
    assert!(
        stderr(&output).contains(
            "task 'direct' runs steps in Kubernetes pods, which `stroem run` cannot run: \
             step 'cluster' of task 'direct'"
        ),
        "{}",
        stderr(&output)
    );
    let output = run(&["through-child", "--path", &path_arg(&dir)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("step 'inline' of task 'scripted'"),
        "{}",
        stderr(&output)
    );
    let output = run(&["plain", "--path", &path_arg(&dir)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
