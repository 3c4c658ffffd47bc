//! The client verbs end to end: a real server in-process (`stroem::cli::serve::start` on port
//! 0, SQLite in a temp data dir, a folder workspace written here) and the real `stroem` binary
//! for every verb and exit code; the WebSocket log stream with real subscribers.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stroem::cli::serve::{Running, start};
use stroem::config::{Config, ConfigSource};

mod stream;
mod usability;

const WORKFLOW: &str = r#"
actions:
  say:
    type: shell
    cmd: "echo hello {{ input.name }} && sleep 0.2 && echo careful >&2"
    input:
      name: { type: string, required: true }
  tick:
    type: shell
    cmd: "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.25; done"
  fail:
    type: shell
    cmd: "echo about to fail && exit 3"
  nap:
    type: shell
    cmd: "sleep 30"
  stubborn:
    type: shell
    cmd: |
      trap 'echo stopping; sleep 3; echo stopped; exit 143' TERM
      echo started
      while true; do sleep 0.1; done

tasks:
  hello:
    description: Greets someone
    input:
      name: { type: string, required: true }
    flow:
      greet:
        action: say
        input:
          name: "{{ input.name }}"
  slow:
    flow:
      count:
        action: tick
  broken:
    flow:
      try:
        action: fail
  long:
    flow:
      wait:
        action: nap
  trapped:
    flow:
      hold:
        action: stubborn
"#;

/// A running server with its own data dir and workspace.
struct Server {
    runtime: tokio::runtime::Runtime,
    running: Option<Running>,
    url: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Server::with(WORKFLOW)
    }

    /// A server of the workflow file `workflow`.
    fn with(workflow: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let workspace = dir.path().join("ws");
        std::fs::create_dir_all(workspace.join(".workflows")).expect("mkdir");
        std::fs::write(workspace.join(".workflows/main.yaml"), workflow).expect("write");
        // Steps need PATH (`sleep`); `STROEM_*` of the outer environment must not leak in.
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(name, _)| !name.starts_with("STROEM"))
            .collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = runtime.block_on(async {
            let mut config = Config::load(ConfigSource {
                config: None,
                env: env.clone(),
                cwd: dir.path().to_owned(),
            })
            .expect("config");
            config.apply_serve_flags(None, Some(dir.path().join("data")), Some(workspace), false);
            // Steps still running when a test stops the server are stopped at once.
            config.worker.shutdown_grace_secs = 0;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            start(config, env, listener).await.expect("server starts")
        });
        let url = format!("http://{}", running.address);
        Server {
            runtime,
            running: Some(running),
            url,
            dir,
        }
    }

    /// The real binary pointed at this server, without colours.
    fn stroem(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stroem"));
        command
            .env("NO_COLOR", "1")
            .env("STROEM_URL", &self.url)
            .env_remove("STROEM_TOKEN")
            .current_dir(self.dir.path());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.stroem().args(args).output().expect("stroem runs")
    }

    /// `GET` on the API, the body as text.
    fn get(&self, path: &str) -> String {
        let mut response = ureq::get(&format!("{}{path}", self.url))
            .call()
            .expect("GET answers");
        response.body_mut().read_to_string().expect("body")
    }

    fn job(&self, id: &str) -> Value {
        serde_json::from_str(&self.get(&format!("/api/jobs/{id}"))).expect("job JSON")
    }

    /// Waits until `check` holds for the job, or fails the test after 20 s.
    fn wait_for_job(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let job = self.job(id);
            if check(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {job}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Creates a job over the API and returns its id.
    fn trigger(&self, task: &str, input: Value) -> String {
        let url = format!("{}/api/workspaces/default/tasks/{task}/execute", self.url);
        let mut response = ureq::post(&url)
            .send_json(serde_json::json!({ "input": input }))
            .expect("execute answers");
        let body: Value = response.body_mut().read_json().expect("reply");
        body["job_id"].as_str().expect("job id").to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.stop());
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// Ids, times, durations, revisions and the temp dir vary from run to run.
fn redact(text: &str, dir: &Path) -> String {
    let rules = [
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[id]",
        ),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[ts]"),
        (r"\b\d+(\.\d+)?s\b|\b\d+m \d\ds\b", "[dur]"),
        (r"\b[0-9a-f]{12}\b", "[rev]"),
    ];
    let mut text = text.replace(&dir.display().to_string(), "[dir]");
    for (pattern, replacement) in rules {
        text = regex_replace(&text, pattern, replacement);
    }
    text
}

fn regex_replace(text: &str, pattern: &str, replacement: &str) -> String {
    let regex = regex::Regex::new(pattern).expect("valid pattern");
    regex.replace_all(text, replacement).into_owned()
}

#[test]
fn catalogue_verbs_print_tables_and_json_bodies() {
    let server = Server::start();
    let output = server.run(&["workspaces"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    insta::assert_snapshot!(
        "workspaces_text",
        redact(&stdout(&output), server.dir.path())
    );

    let output = server.run(&["tasks"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    insta::assert_snapshot!("tasks_text", stdout(&output));
    let output = server.run(&["tasks", "-w", "default", "-o", "json"]);
    assert_eq!(code(&output), 0);
    assert_eq!(
        stdout(&output).trim_end(),
        server.get("/api/workspaces/default/tasks")
    );

    // `-o json` is the API body exactly, and the global option works before the verb too.
    let output = server.run(&["-o", "json", "workspaces"]);
    assert_eq!(stdout(&output).trim_end(), server.get("/api/workspaces"));

    let output = server.run(&["tasks", "-w", "nope"]);
    assert_eq!(code(&output), 3);
    let text = stderr(&output);
    assert!(
        text.starts_with("error: workspace 'nope' not found"),
        "{text}"
    );
    assert!(text.ends_with("\n  code: not_found (HTTP 404)\n"), "{text}");
}

#[test]
fn trigger_wait_status_logs_and_jobs() {
    let server = Server::start();
    let output = server.run(&["trigger", "hello", "--set", "name=World", "--wait"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    let id = text.lines().next().expect("job id line").to_owned();
    insta::assert_snapshot!("trigger_wait_text", redact(&text, server.dir.path()));

    let output = server.run(&["status", &id]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    insta::assert_snapshot!("status_text", redact(&stdout(&output), server.dir.path()));
    let output = server.run(&["status", &id, "-o", "json"]);
    assert_eq!(
        stdout(&output).trim_end(),
        server.get(&format!("/api/jobs/{id}"))
    );

    let output = server.run(&["logs", &id]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    insta::assert_snapshot!("logs_text", redact(&stdout(&output), server.dir.path()));
    let output = server.run(&["logs", &id, "--after", "1", "-o", "json"]);
    let reply: Value = serde_json::from_str(&stdout(&output)).expect("logs reply");
    assert_eq!(reply["last_seq"], 2);
    assert!(
        reply["logs"]
            .as_str()
            .expect("jsonl")
            .contains("\"careful\"")
    );
    // A step the job does not have is an error (issue #15), not an empty log.
    let output = server.run(&["logs", &id, "--step", "nothing"]);
    assert_eq!((code(&output), stdout(&output).as_str()), (3, ""));

    let output = server.run(&["trigger", "broken", "--wait"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let text = redact(&stdout(&output), server.dir.path());
    insta::assert_snapshot!("trigger_failed_text", text);

    let output = server.run(&["jobs"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    insta::assert_snapshot!("jobs_text", redact(&stdout(&output), server.dir.path()));
    let output = server.run(&[
        "jobs",
        "--task",
        "hello",
        "--status",
        "completed",
        "-o",
        "json",
    ]);
    let jobs: Value = serde_json::from_str(&stdout(&output)).expect("jobs JSON");
    assert_eq!(jobs.as_array().map(Vec::len), Some(1));
    assert_eq!(jobs[0]["job_id"], id.as_str());
    let output = server.run(&["jobs", "--limit", "1"]);
    assert!(
        stdout(&output).contains("1–1 of 2 jobs"),
        "{}",
        stdout(&output)
    );
}

const APPROVALS: &str = r#"
actions:
  ask:
    type: approval
    message: "Ship it?"
    input:
      ticket: { type: string, required: true }
tasks:
  gated:
    flow:
      confirm:
        action: ask
      ship:
        depends_on: [confirm]
        type: script
        script: echo shipped
"#;

#[test]
fn approve_and_reject_decide_a_suspended_step() {
    let server = Server::with(APPROVALS);
    let suspended = |id: &str| {
        server.wait_for_job(id, "the approval to wait", |job| {
            job["steps"][0]["status"] == "suspended"
        });
    };
    let id = server.trigger("gated", serde_json::json!({}));
    suspended(&id);
    // The form is checked by the server: 3 with its message, and the step still waits.
    let output = server.run(&["approve", &id, "confirm"]);
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("input.ticket: required field is missing"),
        "{}",
        stderr(&output)
    );
    let output = server.run(&["approve", &id, "confirm", "--set", "ticket=CHG-7"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("step 'confirm' of job {id} approved\n")
    );
    let job = server.wait_for_job(&id, "the job to complete", |job| {
        job["status"] == "completed"
    });
    assert_eq!(job["steps"][0]["output"]["input"]["ticket"], "CHG-7");

    let id = server.trigger("gated", serde_json::json!({}));
    suspended(&id);
    let output = server.run(&[
        "-o",
        "json",
        "approve",
        &id,
        "confirm",
        "--reject",
        "--reason",
        "not today",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), r#"{"status":"rejected"}"#);
    let job = server.wait_for_job(&id, "the job to fail", |job| job["status"] == "failed");
    assert_eq!(
        job["steps"][0]["error_message"],
        "rejected by anonymous: not today"
    );
    // Deciding again: 409 `not_suspended`, exit 3; `--reason` needs `--reject` (usage, 2).
    let output = server.run(&["approve", &id, "confirm", "--reject"]);
    assert_eq!(code(&output), 3);
    assert!(
        stderr(&output).contains("not_suspended"),
        "{}",
        stderr(&output)
    );
    let output = server.run(&["approve", &id, "confirm", "--reason", "x"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
}

#[test]
fn rerun_starts_the_same_task_with_the_same_input() {
    let server = Server::start();
    let id = server.trigger("hello", serde_json::json!({"name": "Again"}));
    server.wait_for_job(&id, "the first job", |job| job["status"] == "completed");
    let output = server.run(&["rerun", &id]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let second = stdout(&output).trim().to_owned();
    let job = server.wait_for_job(&second, "the re-run", |job| job["status"] == "completed");
    assert_eq!(job["source_type"], "rerun");
    assert_eq!(job["source_job_id"], id.as_str());
    assert_eq!(job["input"]["name"], "Again");

    // `--from-failed` restarts instead; a completed job has nothing to restart (exit 3).
    let output = server.run(&["rerun", &id, "--from-failed"]);
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("nothing to restart"),
        "{}",
        stderr(&output)
    );
    let output = server.run(&["trigger", "broken", "--wait"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let failed = stdout(&output).lines().next().expect("job id").to_owned();
    let short = &failed[failed.len() - 8..];
    let output = server.run(&["rerun", short, "--from-failed"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let restarted = stdout(&output).trim().to_owned();
    let job = server.wait_for_job(&restarted, "the restart", |job| job["status"] == "failed");
    assert_eq!(job["source_type"], "restart");
    assert_eq!(job["source_job_id"], failed.as_str());
}

#[test]
fn timeout_cancel_and_error_exit_codes() {
    let server = Server::start();
    let output = server.run(&["trigger", "long", "--wait", "--timeout", "1s"]);
    assert_eq!(code(&output), 124, "{}", stderr(&output));
    let id = stdout(&output).lines().next().expect("job id").to_owned();
    assert!(
        stderr(&output).starts_with(&format!("error: timed out after 1s; job {id} is still")),
        "{}",
        stderr(&output)
    );

    let output = server.run(&["cancel", &id]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("job {id} cancelled\n"));
    server.wait_for_job(&id, "the cancellation", |job| job["status"] == "cancelled");
    let output = server.run(&["cancel", &id]);
    assert_eq!(code(&output), 3);
    assert!(
        stderr(&output).contains("code: already_terminal (HTTP 409)"),
        "{}",
        stderr(&output)
    );
    // A cancelled job ends `trigger --follow` with 1 as well.
    let mut child = server
        .stroem()
        .args(["trigger", "long", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let follow_id = lines.next().expect("id line").expect("read");
    server.wait_for_job(&follow_id, "the step to run", |job| {
        job["status"] == "running"
    });
    assert_eq!(code(&server.run(&["cancel", &follow_id])), 0);
    let status = child.wait().expect("trigger ends");
    assert_eq!(status.code(), Some(1));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|line| line.starts_with(&format!("job {follow_id} cancelled in "))),
        "{rest:?}"
    );

    // Invalid input: the server's message, code and field; exit 3.
    let output = server.run(&["trigger", "hello"]);
    assert_eq!(code(&output), 3);
    insta::assert_snapshot!("invalid_input_stderr", stderr(&output));
    let output = server.run(&["trigger", "missing"]);
    assert_eq!(code(&output), 3);
    assert!(
        stderr(&output).contains("code: not_found"),
        "{}",
        stderr(&output)
    );
    let output = server.run(&["status", "00000000-0000-0000-0000-000000000000"]);
    assert_eq!(code(&output), 3);

    // Usage errors: exit 2, nothing sent.
    for args in [
        &["trigger", "hello", "--input", "not json"][..],
        &["trigger", "hello", "--timeout", "1s"],
        &["trigger", "hello", "--timeout", "soon", "--wait"],
        &["status", "not-a-uuid"],
        &["jobs", "--limit", "0"],
        &["-s", "ftp://example.com", "workspaces"],
    ] {
        let output = server.run(args);
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
    }

    // Nothing listens: exit 3 with the address.
    let output = server.run(&["-s", "http://127.0.0.1:1", "workspaces"]);
    assert_eq!(code(&output), 3);
    assert!(
        stderr(&output)
            .starts_with("error: cannot reach the server at http://127.0.0.1:1/api/workspaces"),
        "{}",
        stderr(&output)
    );

    let output = server.run(&["completions", "bash"]);
    assert_eq!(code(&output), 0);
    let script = stdout(&output);
    assert!(script.contains("complete -F _stroem"), "{script}");
    for verb in ["workspaces", "trigger", "logs", "cancel"] {
        assert!(script.contains(verb), "bash completion names {verb}");
    }
    for shell in ["zsh", "fish"] {
        assert_eq!(code(&server.run(&["completions", shell])), 0);
    }
}

#[test]
fn trigger_follow_prints_lines_while_the_job_runs() {
    let server = Server::start();
    let mut child = server
        .stroem()
        .args(["trigger", "slow", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let id = lines.next().expect("id line").expect("read");
    let first = lines.next().expect("a log line").expect("read");
    assert!(first.ends_with(" count | line 1"), "{first}");
    // The step prints for about two seconds: the first line arrived long before the end.
    assert_eq!(server.job(&id)["status"], "running");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("trigger ends");
    assert_eq!(status.code(), Some(0));
    let mut all = vec![first];
    all.extend(rest);
    insta::assert_snapshot!(
        "trigger_follow_text",
        redact(&all.join("\n"), server.dir.path())
    );
}

/// `trigger --follow` and `--wait` list the hook jobs the job fired (issue #15): hooks fire
/// just after the job finishes, and the log stream ends at once after that, so the client waits
/// until the server says they were fired.
#[test]
fn trigger_follow_and_wait_list_the_hook_jobs() {
    let server = Server::with(
        r#"
actions:
  notify:
    type: script
    script: echo notified
tasks:
  hooked:
    flow:
      work: { type: script, script: echo working }
    on_success:
      - action: notify
"#,
    );
    for how in ["--follow", "--wait"] {
        let output = server.run(&["trigger", "hooked", how]);
        assert_eq!(code(&output), 0, "{how}: {}", stderr(&output));
        let text = stdout(&output);
        let hooks = text.lines().find(|line| line.starts_with("hooks "));
        assert!(
            hooks.is_some_and(|line| line.contains("on_success _hook:notify")),
            "{how}: {text}"
        );
    }
}

/// Runs `args` with stdout a pipe whose reader is already gone, as in `stroem jobs | head -1`
/// once `head` has exited.
fn with_closed_stdout(server: &Server, args: &[&str]) -> Output {
    let mut child = server
        .stroem()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stroem starts");
    // Closed before the child can have written anything: its first write meets EPIPE.
    drop(child.stdout.take());
    child.wait_with_output().expect("stroem ends")
}

#[test]
fn printing_verbs_end_quietly_when_stdout_is_closed() {
    let server = Server::start();
    let output = server.run(&["trigger", "hello", "--set", "name=World", "--wait"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let id = stdout(&output).lines().next().expect("job id").to_owned();

    for args in [
        &["completions", "bash"][..],
        &["jobs"],
        &["-o", "json", "jobs"],
        &["status", &id],
        &["logs", &id],
        &["workspaces"],
        &["tasks"],
        &["trigger", "hello", "--set", "name=Pipe", "--wait"],
    ] {
        let output = with_closed_stdout(&server, args);
        let errors = stderr(&output);
        assert_eq!(code(&output), 0, "{args:?}: {errors}");
        assert!(!errors.contains("panicked"), "{args:?}: {errors}");
        assert!(!errors.contains("Broken pipe"), "{args:?}: {errors}");
    }
}

/// The container image's HEALTHCHECK: `stroem healthcheck` finds the server from the same
/// configuration `serve` and `work` read, and fails with a reason when nothing healthy answers.
#[test]
fn healthcheck_asks_the_configured_server_and_fails_without_one() {
    let server = Server::start();
    let address = server.url.trim_start_matches("http://").to_owned();
    let port = address.rsplit(':').next().expect("port").to_owned();

    // role serve (the default): the local server at the port of `listen`, wildcard → loopback
    let output = server
        .stroem()
        .args(["healthcheck"])
        .env_remove("STROEM_ROLE")
        .env("STROEM__LISTEN", format!("0.0.0.0:{port}"))
        .output()
        .expect("stroem runs");
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    // role work: the worker's server_url
    let output = server
        .stroem()
        .args(["healthcheck"])
        .env("STROEM_ROLE", "work")
        .env("STROEM__SERVER_URL", &server.url)
        .output()
        .expect("stroem runs");
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    let output = server.run(&["healthcheck", "--url", &format!("{}/healthz", server.url)]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    // nothing listens there: exit 1 and the reason
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/healthz", closed.local_addr().expect("address"));
    drop(closed);
    let output = server.run(&["healthcheck", "--url", &url]);
    assert_eq!(code(&output), 1);
    assert!(
        stderr(&output).starts_with(&format!("unhealthy: {url}: ")),
        "{}",
        stderr(&output)
    );

    // an answer that is not /healthz's is not healthy either
    let output = server.run(&[
        "healthcheck",
        "--url",
        &format!("{}/api/workspaces", server.url),
    ]);
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("HTTP 200"), "{}", stderr(&output));

    // a configuration error is reported, as unhealthy
    let output = server
        .stroem()
        .args(["healthcheck"])
        .env("STROEM__LISTEN", "not an address")
        .output()
        .expect("stroem runs");
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("listen"), "{}", stderr(&output));
}
