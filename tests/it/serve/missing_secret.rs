//! One unset secret (issue #15 item 8, WF §16.1): the workspace still loads and says which
//! secret is missing; only jobs whose templates use it — directly, through a child task or a
//! hook — are refused at creation with an error naming it; every other task runs.

use serde_json::Value;

use crate::server_harness::{Home, serve_test};

pub const WORKSPACE: &str = r#"
secrets:
  PRESENT: "{{ env.LANG_TEST_PRESENT_SECRET }}"
  MISSING_TOKEN: "{{ env.LANG_TEST_NEVER_SET_SECRET }}"
actions:
  notify:
    type: script
    input:
      token: { type: string }
    script: echo notified
tasks:
  plain:
    flow:
      say:
        type: script
        script: echo "no secret here"
  present:
    flow:
      say:
        type: script
        input: { value: "{{ secret.PRESENT }}" }
        script: echo "uses a secret that is set"
  uses:
    flow:
      call:
        type: script
        input: { token: "{{ secret.MISSING_TOKEN }}" }
        script: echo "$INPUT_TOKEN"
  via-child:
    flow:
      child:
        type: task
        task: uses
  hooked:
    flow:
      say:
        type: script
        script: echo fine
    on_error:
      - action: notify
        input: { token: "{{ secret.MISSING_TOKEN }}" }
"#;

async fn job_count(server: &crate::server_harness::Server) -> String {
    let reply = server.get("/api/jobs").await;
    reply
        .headers
        .get("x-total-count")
        .cloned()
        .unwrap_or_default()
}

serve_test! {
    async fn an_unset_secret_refuses_only_the_jobs_that_use_it(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let server = home
            .start_with_env(&[("LANG_TEST_PRESENT_SECRET", "present-value-1234")])
            .await;

        // The workspace serves, and its warnings name the missing secret.
        let view = server.get("/api/workspaces/default").await.json();
        assert_eq!(view["status"], "ok", "{view:#}");
        assert_eq!(view["tasks_count"], 5, "{view:#}");
        let warnings = view["warnings"].to_string();
        assert!(warnings.contains("MISSING_TOKEN"), "{view:#}");
        assert!(warnings.contains("LANG_TEST_NEVER_SET_SECRET"), "{view:#}");

        // Tasks that do not use it run.
        for task in ["plain", "present"] {
            let id = server.execute("default", task, "{}").await;
            let job = server.wait_finished(id).await;
            assert_eq!(job["status"], "completed", "{task}: {job:#}");
        }
        let before = job_count(&server).await;

        // Tasks that use it, however indirectly, are refused, naming the secret; no job is made.
        for task in ["uses", "via-child", "hooked"] {
            let reply = server
                .post_json(&format!("/api/workspaces/default/tasks/{task}/execute"), "{}")
                .await;
            assert_eq!(reply.status, 400, "{task}: {}", reply.body);
            let body: Value = reply.json();
            assert_eq!(body["code"], "invalid_input", "{task}: {body}");
            let error = body["error"].as_str().unwrap_or("");
            assert!(error.contains("secret.MISSING_TOKEN"), "{task}: {error}");
            assert!(error.contains("LANG_TEST_NEVER_SET_SECRET"), "{task}: {error}");
        }
        assert_eq!(job_count(&server).await, before);
        server.stop().await;
    }
}
