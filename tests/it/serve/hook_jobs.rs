//! Hook jobs seen from the job that fired them (issue #15 item 9): the job view lists them with
//! their event, task and status; the hook job names the job it reports on.

use std::time::Duration;

use serde_json::Value;

use crate::server_harness::{Home, eventually, serve_test};

const WORKSPACE: &str = r#"
actions:
  notify:
    type: script
    input:
      what: { type: string }
    script: echo "notified $INPUT_WHAT"
  run-report:
    type: task
    task: report
tasks:
  report:
    flow:
      say: { type: script, script: echo done }
  watched:
    flow:
      work: { type: script, script: echo working }
    on_success:
      - action: notify
        input: { what: "{{ hook.task_name }}" }
      - action: run-report
  half-hooked:
    flow:
      work: { type: script, script: "echo 'OUTPUT: {\"a\": 1}'" }
    on_success:
      - action: notify
        input: { what: "{{ hook.task_name }}" }
      - action: notify
        input: { what: "{{ hook.output.work.missing.deeper }}" }
"#;

serve_test! {
    async fn a_job_lists_the_hook_jobs_it_fired(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let server = home.start().await;
        let id = server.execute("default", "watched", "{}").await;
        server.wait_finished(id).await;
        let server_ref = &server;
        eventually("both hook jobs to finish", Duration::from_secs(20), move || async move {
            let job = server_ref.job(id).await;
            job["hook_jobs"].as_array().is_some_and(|hooks| {
                hooks.len() == 2 && hooks.iter().all(|hook| hook["status"] == "completed")
            })
        })
        .await;
        let job = server.job(id).await;
        let hooks = job["hook_jobs"].as_array().expect("hook_jobs");
        for hook in hooks {
            assert_eq!(hook["event"], "on_success", "{hook:#}");
            let hook_id = hook["job_id"].as_str().expect("hook job id");
            let detail: Value = server.get(&format!("/api/jobs/{hook_id}")).await.json();
            assert_eq!(detail["source_type"], "hook", "{detail:#}");
            assert_eq!(detail["hook_of_job_id"], id.to_string(), "{detail:#}");
        }
        // A task hook runs the task itself: its job names the task, which exists.
        let tasks: Vec<&str> = hooks.iter().filter_map(|h| h["task_name"].as_str()).collect();
        assert!(tasks.contains(&"report"), "{tasks:?}");
        // A job without hooks lists none.
        let plain = server.execute("default", "report", "{}").await;
        let done = server.wait_finished(plain).await;
        assert_eq!(done["hook_jobs"], serde_json::json!([]), "{done:#}");
        server.stop().await;
    }
}

serve_test! {
    async fn once_a_job_says_its_hooks_were_fired_every_hook_job_is_listed(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let server = home.start().await;
        let id = server.execute("default", "half-hooked", "{}").await;
        // The first read that says the hooks were fired already lists the hook job, and the
        // refused hook's reason is in the job's log (hooks fire before the log is archived).
        let job = server
            .wait_job(id, crate::auth::JOB_TIMEOUT, |job| job["hooks_fired"] == true)
            .await;
        assert_eq!(job["status"], "completed", "{job:#}");
        let hooks = job["hook_jobs"].as_array().expect("hook_jobs");
        assert_eq!(hooks.len(), 1, "{job:#}");
        assert_eq!(hooks[0]["task_name"], "_hook:notify", "{job:#}");
        let logs: Value = server.get(&format!("/api/jobs/{id}/logs")).await.json();
        let text = logs["logs"].as_str().unwrap_or_default();
        assert!(text.contains("was not created"), "{logs:#}");
        server.stop().await;
    }
}
