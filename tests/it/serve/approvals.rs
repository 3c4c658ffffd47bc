//! Approval steps on a server (WF §6.8, API §3.4, §8.5 item 4): the job waits `suspended`
//! with the rendered message and form, `on_suspended` hooks fire, approve goes on with the
//! approver's validated input, reject fails the step with the reason, a bad form or a second
//! decision changes nothing, and an approval past its timeout fails.

use std::time::Duration;

use serde_json::{Value, json};

use crate::server_harness::{Server, eventually, serve_test, step};

const WORKSPACE: &str = r#"
actions:
  confirm:
    type: approval
    message: "Deploy {{ input.version }} to production?"
    input:
      version: { type: string }
      ticket: { type: string, required: true }
  notify:
    type: script
    input: { text: { type: string } }
    script: echo "$INPUT_TEXT"
tasks:
  release:
    input:
      version: { type: string, required: true }
    flow:
      confirm:
        action: confirm
        input: { version: "{{ input.version }}" }
      deploy:
        depends_on: [confirm]
        type: script
        input: { ticket: "{{ confirm.output.input.ticket }}" }
        script: echo "deploying with $INPUT_TICKET"
    on_suspended:
      - action: notify
        input: { text: "{{ hook.step_name }}: {{ hook.message }}" }
  bounded:
    flow:
      wait:
        type: approval
        message: waiting
        timeout: 2s
"#;

async fn suspended(server: &Server) -> uuid::Uuid {
    let body = json!({"input": {"version": "1.4.0"}}).to_string();
    let id = server.execute("default", "release", &body).await;
    server
        .wait_job(id, Duration::from_secs(20), |job| {
            step(job, "confirm")["status"] == "suspended"
        })
        .await;
    id
}

fn approve_path(id: uuid::Uuid, step: &str) -> String {
    format!("/api/jobs/{id}/steps/{step}/approve")
}

serve_test! {
    async fn approving_a_suspended_step_runs_the_rest_with_the_form(backend) {
        let home = crate::server_harness::Home::new(backend).await;
        let dir = home.workspace(WORKSPACE);
        home.configure_workspace(&dir);
        let server = home.start().await;
        let id = suspended(&server).await;

        let job = server.job(id).await;
        assert_eq!(job["status"], "running", "{job:#}");
        let confirm = step(&job, "confirm");
        assert_eq!(confirm["action_type"], "approval");
        assert_eq!(confirm["approval_message"], "Deploy 1.4.0 to production?");
        assert_eq!(confirm["approval_fields"]["ticket"]["required"], true, "{confirm:#}");
        assert!(confirm["suspended_at"].is_string(), "{confirm:#}");
        assert_eq!(step(&job, "deploy")["status"], "pending");
        // `suspended_at` and the approval fields belong to approval steps only.
        assert!(step(&job, "deploy").get("suspended_at").is_none());

        // `on_suspended` fired with the step and its message, and its hook job ran.
        let server_ref = &server;
        eventually("the on_suspended hook job", Duration::from_secs(20), move || async move {
            let hooks = server_ref.get("/api/jobs?source_type=hook").await.json();
            hooks.as_array().is_some_and(|list| {
                list.iter().any(|hook| {
                    hook["source_id"] == format!("{id}/on_suspended") && hook["status"] == "completed"
                })
            })
        })
        .await;
        let hooks = server.get("/api/jobs?source_type=hook").await.json();
        let hook_id = hooks[0]["job_id"].as_str().expect("hook job id").to_owned();
        let hook_log = server.get(&format!("/api/jobs/{hook_id}/logs")).await.json();
        assert!(
            hook_log["logs"].as_str().is_some_and(|text| text.contains("confirm: Deploy 1.4.0 to production?")),
            "{hook_log:#}"
        );

        // A form without the required ticket is refused whole, and changes nothing.
        let bad = server.post_json(&approve_path(id, "confirm"), r#"{"approved": true, "input": {"ticket": ["CHG-1"]}}"#).await;
        assert_eq!((bad.status, bad.json()["code"].as_str()), (400, Some("invalid_input")), "{}", bad.body);
        assert_eq!(bad.json()["field"], "input.ticket");
        let missing = server.post_json(&approve_path(id, "confirm"), r#"{"approved": true}"#).await;
        assert_eq!(missing.status, 400, "{}", missing.body);
        assert_eq!(missing.json()["details"][0]["field"], "input.ticket");
        assert_eq!(step(&server.job(id).await, "confirm")["status"], "suspended");
        // Unknown body fields, steps and non-approval steps.
        let unknown = server.post_json(&approve_path(id, "confirm"), r#"{"approved": true, "inputs": {}}"#).await;
        assert_eq!(unknown.status, 400, "{}", unknown.body);
        let no_step = server.post_json(&approve_path(id, "nope"), r#"{"approved": true}"#).await;
        assert_eq!(no_step.status, 404, "{}", no_step.body);
        let not_approval = server.post_json(&approve_path(id, "deploy"), r#"{"approved": true}"#).await;
        assert_eq!((not_approval.status, not_approval.json()["code"].as_str()), (409, Some("not_suspended")));

        let ok = server
            .post_json(&approve_path(id, "confirm"), r#"{"approved": true, "input": {"ticket": "CHG-1042"}}"#)
            .await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert_eq!(ok.json(), json!({"status": "approved"}));
        // The second decision loses.
        let again = server
            .post_json(&approve_path(id, "confirm"), r#"{"approved": false, "rejection_reason": "late"}"#)
            .await;
        assert_eq!((again.status, again.json()["code"].as_str()), (409, Some("not_suspended")), "{}", again.body);

        let job = server
            .wait_job(id, Duration::from_secs(20), |job| job["status"] == "completed")
            .await;
        let output = &step(&job, "confirm")["output"];
        assert_eq!(output["approved"], true);
        assert_eq!(output["approved_by"], "anonymous");
        assert_eq!(output["message"], "Deploy 1.4.0 to production?");
        assert_eq!(output["input"], json!({"version": "1.4.0", "ticket": "CHG-1042"}));
        assert!(output["approved_at"].is_string(), "{output:#}");
        let logs = server.get(&format!("/api/jobs/{id}/steps/deploy/logs")).await.json();
        assert!(logs["logs"].as_str().is_some_and(|text| text.contains("deploying with CHG-1042")), "{logs:#}");
        server.stop().await;
    }
}

serve_test! {
    async fn rejecting_fails_the_step_and_the_job_with_the_reason(backend) {
        let home = crate::server_harness::Home::new(backend).await;
        let dir = home.workspace(WORKSPACE);
        home.configure_workspace(&dir);
        let server = home.start().await;

        let id = suspended(&server).await;
        let long = "x".repeat(4097);
        let too_long = server
            .post_json(&approve_path(id, "confirm"), &json!({"approved": false, "rejection_reason": long}).to_string())
            .await;
        assert_eq!((too_long.status, too_long.json()["field"].as_str()), (400, Some("rejection_reason")));
        let reply = server
            .post_json(&approve_path(id, "confirm"), r#"{"approved": false, "rejection_reason": "wrong version"}"#)
            .await;
        assert_eq!(reply.json(), json!({"status": "rejected"}), "{}", reply.body);
        let job = server.wait_job(id, Duration::from_secs(20), |job| job["completed_at"].is_string()).await;
        assert_eq!(job["status"], "failed");
        assert_eq!(step(&job, "confirm")["error_message"], "rejected by anonymous: wrong version");
        assert_eq!(step(&job, "deploy")["status"], "skipped");

        // The `/reject` route does the same.
        let second = suspended(&server).await;
        let reply = server.post_json(&format!("/api/jobs/{second}/steps/confirm/reject"), r#"{"reason": "no"}"#).await;
        assert_eq!(reply.json(), json!({"status": "rejected"}), "{}", reply.body);
        let job = server.wait_job(second, Duration::from_secs(20), |job| job["completed_at"].is_string()).await;
        assert_eq!(step(&job, "confirm")["error_message"], "rejected by anonymous: no");
        server.stop().await;
    }
}

serve_test! {
    async fn an_approval_past_its_timeout_fails(backend) {
        let home = crate::server_harness::Home::new(backend).await;
        let dir = home.workspace(WORKSPACE);
        home.configure_workspace(&dir);
        let server = home.start().await;
        let id = server.execute("default", "bounded", "{}").await;
        // Timeout 2 s, sweep every second.
        let job: Value = server.wait_job(id, Duration::from_secs(20), |job| job["completed_at"].is_string()).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(step(&job, "wait")["error_message"], "approval timed out after 2s");
        server.stop().await;
    }
}
