//! The server runs jobs with the semantics of `stroem run`: a failing step retried, a
//! `for_each` of `type: task` steps (one child job per item), a worker-enforced timeout, and
//! the job output from its sinks — compared step by step with the binary's own result; and
//! hooks firing as jobs of their own (WF §14).

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::server_harness::{Home, eventually, serve_test, step};

/// Shared with `run::loops_retries_timeouts_and_child_jobs_behave_as_specified`, so the server
/// and `stroem run` are held to one workspace.
const WORKSPACE: &str = include_str!("../../fixtures/semantics/main.yaml");

/// What must agree between `stroem run` and the server: per step its status, attempt, output,
/// the first line of its error and the errors of its earlier attempts.
fn outcome(job: &Value) -> Value {
    let steps: Vec<Value> = job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| {
            let first_line = |value: &Value| {
                value
                    .as_str()
                    .map(|text| text.lines().next().unwrap_or_default().to_owned())
            };
            json!({
                "step": step["step_name"],
                "status": step["status"],
                "attempt": step["attempt"],
                "output": step["output"],
                "error": first_line(&step["error_message"]),
                "earlier": step["retry_history"].as_array().map(|history| history
                    .iter()
                    .map(|record| first_line(&record["error_message"]))
                    .collect::<Vec<_>>()),
            })
        })
        .collect();
    json!({"status": job["status"], "output": job["output"], "steps": steps})
}

/// The final job of `stroem run main` on the same workspace.
fn local_run(workspace: &std::path::Path, dir: &std::path::Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_stroem"))
        .env("NO_COLOR", "1")
        .args(["run", "main", "--path"])
        .arg(workspace)
        .arg("--set")
        .arg(format!("dir={}", dir.display()))
        .args(["-o", "json"])
        .output()
        .expect("stroem runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json")
}

serve_test! {
    async fn retries_loops_timeouts_and_child_jobs_match_stroem_run(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let local_dir = tempfile::tempdir().expect("dir");
        let local = tokio::task::spawn_blocking({
            let workspace = workspace.clone();
            let dir = local_dir.path().to_owned();
            move || local_run(&workspace, &dir)
        });

        let scratch = home.scratch();
        let server = home.start().await;
        let body = json!({"input": {"dir": scratch}}).to_string();
        let id = server.execute("default", "main", &body).await;
        let job = server.wait_finished(id).await;
        let local = local.await.expect("stroem run");

        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(job["output"], json!({"total": 29}));
        assert_eq!(step(&job, "flaky")["attempt"], 2);
        assert_eq!(step(&job, "flaky")["retry_history"][0]["attempt"], 1);
        // Each attempt names the worker that ran it, from its lease.
        assert!(step(&job, "flaky")["retry_history"][0]["worker_id"].is_string());
        assert!(step(&job, "flaky")["worker_id"].is_string());
        assert_eq!(step(&job, "slow")["status"], "failed");
        assert_eq!(step(&job, "squares[2]")["output"], json!({"calc": {"square": 16}}));
        assert_eq!(outcome(&job), outcome(&local), "server:\n{job:#}\nlocal:\n{local:#}");

        // Each loop instance ran one child job, linked both ways.
        for (index, n) in [2, 3, 4].into_iter().enumerate() {
            let instance = step(&job, &format!("squares[{index}]"));
            let child_id = instance["child_job_id"].as_str().expect("child job id");
            let child = server.job(child_id.parse().expect("uuid")).await;
            assert_eq!(child["status"], "completed", "{child:#}");
            assert_eq!(child["task_name"], "square");
            assert_eq!(child["source_type"], "task");
            assert_eq!(child["source_id"], format!("{id}/squares[{index}]"));
            assert_eq!(child["parent_job_id"], id.to_string());
            assert_eq!(child["parent_step_name"], format!("squares[{index}]"));
            assert_eq!(child["input"], json!({"n": n}));
        }
        let children = server.get(&format!("/api/jobs?parent_job_id={id}")).await;
        assert_eq!(children.headers.get("x-total-count").map(String::as_str), Some("3"));

        // The retry left a `_server` line explaining itself.
        let logs = server.get(&format!("/api/jobs/{id}/logs?step=_server")).await.json();
        let logs = logs["logs"].as_str().expect("logs");
        assert!(logs.contains("attempt 1 of 2 failed"), "{logs}");
        server.stop().await;
    }
}

const HOOKS: &str = r#"
actions:
  note:
    type: script
    script: echo "hook saw $INPUT_TEXT"
    input:
      text: { type: string, required: true }
  child:
    type: task
    task: breaks
tasks:
  breaks:
    flow:
      boom:
        type: script
        script: echo "it broke" >&2; exit 3
  parent:
    flow:
      call: { action: child }
    on_error:
      - action: note
        input:
          text: "{{ hook.task_name }} {{ hook.status }}: {{ hook.error_message }}"
on_error:
  - action: note
    input:
      text: "workspace hook for {{ hook.task_name }}"
"#;

serve_test! {
    async fn hooks_fire_as_jobs_of_their_own(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(HOOKS);
        home.configure_workspace(&workspace);
        let server = home.start().await;
        let id = server.execute("default", "parent", "{}").await;
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "failed", "{job:#}");

        // The task's own hook fires for the parent; the failed child (not top-level) fires no
        // workspace hook; so exactly one hook job exists.
        let source = format!("{id}/on_error");
        // Hook jobs are created by the job's end, right after it commits: wait for the one.
        eventually("the hook job", Duration::from_secs(10), || async {
            server.get("/api/jobs?source_type=hook").await.json()[0]["job_id"].is_string()
        })
        .await;
        let hooks = server.get("/api/jobs?source_type=hook").await;
        let hooks_total = hooks.headers.get("x-total-count").cloned();
        let hooks = hooks.json();
        let hook_id = hooks[0]["job_id"].as_str().expect("a hook job").parse().expect("uuid");
        let hook = server.wait_finished(hook_id).await;
        assert_eq!(hooks_total.as_deref(), Some("1"), "{hooks:#}");
        assert_eq!(hook["source_id"], source);
        assert_eq!(hook["status"], "completed", "{hook:#}");
        assert_eq!(hook["task_name"], "_hook:note");
        assert_eq!(hook["revision"], job["revision"]);
        let logs = server.get(&format!("/api/jobs/{hook_id}/logs")).await.json();
        let logs = logs["logs"].as_str().expect("logs");
        assert!(logs.contains("hook saw parent failed: call:"), "{logs}");
        server.stop().await;
    }
}

const SECRETS: &str = r#"
secrets:
  TOKEN: "{{ env.SERVE_TEST_TOKEN }}"
actions:
  use-token:
    type: script
    env:
      TOKEN: "{{ secret.TOKEN }}"
    script: |
      echo "token is $TOKEN"
      echo "OUTPUT: {\"seen\": \"$TOKEN\"}"
tasks:
  leak:
    flow:
      show: { action: use-token }
"#;

serve_test! {
    async fn secrets_are_masked_in_job_details_and_logs(backend) {
        const VALUE: &str = "s3cr3t-serve-value";
        let home = Home::new(backend).await;
        let workspace = home.workspace(SECRETS);
        home.configure_workspace(&workspace);
        let server = home.start_with_env(&[("SERVE_TEST_TOKEN", VALUE)]).await;
        let id = server.execute("default", "leak", "{}").await;
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(step(&job, "show")["output"], json!({"seen": "••••••"}));
        assert!(!job.to_string().contains(VALUE), "{job:#}");
        let logs = server.get(&format!("/api/jobs/{id}/logs")).await.body;
        assert!(!logs.contains(VALUE), "{logs}");
        assert!(logs.contains("token is ••••••"), "{logs}");
        server.stop().await;
    }
}

/// A task step whose child fails once, retried after a second.
const TASK_RETRY: &str = r#"
tasks:
  flaky:
    input:
      marker: { type: string, required: true }
    flow:
      once:
        type: script
        input: { marker: "{{ input.marker }}" }
        script: 'test -f "{{ input.marker }}" || { touch "{{ input.marker }}"; exit 1; }'
  parent:
    input:
      marker: { type: string, required: true }
    flow:
      call:
        type: task
        task: flaky
        input: { marker: "{{ input.marker }}" }
        retry: { max_attempts: 2, delay: 1s }
"#;

serve_test! {
    async fn a_task_step_is_retried_when_its_delay_ends_not_at_the_next_recovery_sweep(backend) {
        // The sweep that also dispatches due task-step retries runs hourly here: the retry
        // must not wait for it.
        let home = Home::new(backend).await;
        let workspace = home.workspace(TASK_RETRY);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\n\
             recovery:\n  heartbeat_timeout_secs: 10\n  sweep_interval_secs: 3600\n",
            workspace.display()
        ));
        let marker = home.scratch().join("marker");
        let server = home.start().await;
        let body = json!({"input": {"marker": marker}}).to_string();
        let id = server.execute("default", "parent", &body).await;
        let job = server
            .wait_job(id, Duration::from_secs(30), |job| job["completed_at"].is_string())
            .await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(step(&job, "call")["attempt"], 2, "{job:#}");
        server.stop().await;
    }
}
