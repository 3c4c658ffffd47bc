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
