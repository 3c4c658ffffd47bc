//! Re-runs (API §3.3 [P2]): `source_job_id` on execute makes a new job of the same task that
//! records its source; a secret field sent as `••••••` takes the source job's value, which the
//! caller never sees.

use std::time::Duration;

use serde_json::json;

use crate::server_harness::{Home, serve_test, step};

const WORKSPACE: &str = r#"
tasks:
  login:
    input:
      name: { type: string, required: true }
      token: { type: string, secret: true, required: true }
    flow:
      check:
        type: script
        input: { name: "{{ input.name }}", token: "{{ input.token }}" }
        script: |
          test "$INPUT_TOKEN" = "tok-0123456789" && echo "same token for $INPUT_NAME"
  other:
    flow:
      noop: { type: script, script: "true" }
"#;

serve_test! {
    async fn a_rerun_reuses_the_masked_secret_of_its_source(backend) {
        let home = Home::new(backend).await;
        let dir = home.workspace(WORKSPACE);
        home.configure_workspace(&dir);
        let server = home.start().await;
        let body = json!({"input": {"name": "a", "token": "tok-0123456789"}}).to_string();
        let first = server.execute("default", "login", &body).await;
        let done = server.wait_job(first, Duration::from_secs(20), |job| job["completed_at"].is_string()).await;
        assert_eq!(done["status"], "completed", "{done:#}");
        assert_eq!(done["raw_input"]["token"], "••••••");

        let body = json!({"input": {"name": "b", "token": "••••••"}, "source_job_id": first}).to_string();
        let second = server.execute("default", "login", &body).await;
        let job = server.wait_job(second, Duration::from_secs(20), |job| job["completed_at"].is_string()).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(job["source_type"], "rerun");
        assert_eq!(job["source_job_id"], json!(first));
        assert_eq!(step(&job, "check")["status"], "completed");
        let logs = server.get(&format!("/api/jobs/{second}/logs")).await.json();
        assert!(logs["logs"].as_str().is_some_and(|text| text.contains("same token for b")), "{logs:#}");

        // The source must be a job of the same task; an unknown one is not found.
        let wrong = server
            .post_json("/api/workspaces/default/tasks/other/execute", &json!({"source_job_id": first}).to_string())
            .await;
        assert_eq!((wrong.status, wrong.json()["code"].as_str()), (400, Some("invalid_input")), "{}", wrong.body);
        assert_eq!(wrong.json()["details"][0]["field"], "source_job_id");
        let unknown = server
            .post_json(
                "/api/workspaces/default/tasks/login/execute",
                &json!({"source_job_id": uuid::Uuid::nil()}).to_string(),
            )
            .await;
        assert_eq!(unknown.status, 404, "{}", unknown.body);
        server.stop().await;
    }
}
