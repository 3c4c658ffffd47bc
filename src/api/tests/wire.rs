//! Request bodies and their rules: unknown fields rejected, worker registrations normalised,
//! claim waits bounded, and the protocol's bodies round-trip.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::api::{
    Capability, ClaimReply, ClaimRequest, CompleteRequest, ExecuteRequest, HeartbeatReply, JobMode,
    LogBatch, OkReply, RegisterRequest,
};
use crate::runner::spec::{AttemptResult, Outcome, Program, ScriptBody, StepSpec};

fn at(text: &str) -> DateTime<Utc> {
    crate::api::time::parse(text).expect("fixed time parses")
}

#[test]
fn execute_rejects_unknown_fields_and_defaults_the_input() {
    let error =
        serde_json::from_value::<ExecuteRequest>(json!({"inputs": {}})).expect_err("unknown field");
    assert!(
        error.to_string().starts_with("unknown field `inputs`"),
        "{error}"
    );
    let empty: ExecuteRequest = serde_json::from_value(json!({})).expect("parses");
    assert_eq!(empty.input_value(), json!({}));
    assert_eq!(
        serde_json::to_value(&empty).expect("serialises"),
        json!({"input": {}})
    );
}

fn registration(capabilities: &[&str], tags: &[&str]) -> RegisterRequest {
    RegisterRequest {
        name: "worker-1".to_owned(),
        version: "0.3.0".to_owned(),
        capabilities: capabilities.iter().map(|word| (*word).to_owned()).collect(),
        tags: tags.iter().map(|word| (*word).to_owned()).collect(),
        max_concurrent: 4,
    }
}

#[test]
fn registration_normalises_capabilities() {
    let normal = registration(&["shell", "docker"], &["deploy", "kubernetes", "deploy"])
        .normalize()
        .expect("valid registration");
    assert_eq!(
        normal.capabilities,
        [
            Capability::Script,
            Capability::Docker,
            Capability::Kubernetes
        ]
    );
    assert_eq!(normal.tags, ["deploy"]);

    let from_tags = registration(&[], &["script"]).normalize().expect("valid");
    assert_eq!(from_tags.capabilities, [Capability::Script]);

    let errors: Vec<String> = [
        registration(&["gpu"], &[]),
        registration(&[], &["deploy"]),
        RegisterRequest {
            max_concurrent: 0,
            ..registration(&["script"], &[])
        },
    ]
    .iter()
    .map(|request| request.normalize().expect_err("invalid").to_string())
    .collect();
    insta::assert_json_snapshot!(errors, @r#"
    [
      "capabilities: unknown capability 'gpu' (expected script, docker or kubernetes)",
      "capabilities: at least one of script, docker or kubernetes is required",
      "max_concurrent: must be at least 1"
    ]
    "#);
}

#[test]
fn claims_wait_at_most_thirty_seconds() {
    let worker_id = Uuid::from_u128(7);
    let claim = |wait_secs| ClaimRequest {
        worker_id,
        wait_secs,
    };
    assert!(claim(0).validate().is_ok());
    assert!(claim(30).validate().is_ok());
    let error = claim(31).validate().expect_err("too long");
    assert_eq!(error.field, "wait_secs");
}

#[test]
fn protocol_bodies_have_the_documented_shape() {
    let spec = StepSpec {
        job_id: Uuid::from_u128(1),
        workspace: "default".to_owned(),
        task: "release".to_owned(),
        step: "deploy[1]".to_owned(),
        attempt: 2,
        action_name: "deploy-service".to_owned(),
        program: Program::Script {
            code: ScriptBody::Source("scripts/deploy.sh".to_owned()),
            interpreter: None,
            default_interpreter: vec!["sh".to_owned(), "-e".to_owned()],
            args: Vec::new(),
        },
        env: vec![("REGION".to_owned(), "eu".to_owned())],
        input: json!({"service": "api"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        workdir: None,
        timeout_secs: Some(600),
        mask: vec!["s3cr3t".to_owned()],
        output_schema: None,
        runner: Default::default(),
        image: None,
        resources: None,
        manifest: None,
    };
    let claim = ClaimReply {
        lease_id: Uuid::from_u128(2),
        lease_timeout_secs: 60,
        lease_expires_at: at("2026-03-01T12:01:00.5Z"),
        revision: "3f2a9c".to_owned(),
        mode: JobMode::Distributed,
        action_type: "script".to_owned(),
        runner: "local".to_owned(),
        action_image: None,
        workspace_token: None,
        spec,
    };
    let result = AttemptResult {
        outcome: Outcome::Failed,
        output: serde_json::Value::Null,
        error_message: Some("exit code 1".to_owned()),
        started_at: at("2026-03-01T12:00:01Z"),
        finished_at: at("2026-03-01T12:00:02.345Z"),
    };
    let complete = CompleteRequest::new(Uuid::from_u128(3), Uuid::from_u128(2), result.clone());
    assert_eq!(complete.result(), result);
    let batch: LogBatch = serde_json::from_value(json!({
        "worker_id": Uuid::from_u128(3), "lease_id": Uuid::from_u128(2),
        "step_name": "deploy[1]", "offset": 120,
        "lines": [{"ts": "2026-03-01T12:00:01.250Z", "stream": "stdout", "line": "pushing image"}]
    }))
    .expect("log batch parses");
    let heartbeat = HeartbeatReply {
        status: crate::api::OkStatus::Ok,
        cancel: vec![Uuid::from_u128(2)],
        unknown: Vec::new(),
        release_jobs: Vec::new(),
    };
    insta::assert_json_snapshot!(json!({
        "claim": claim,
        "complete": complete,
        "log_batch": batch,
        "heartbeat": heartbeat,
        "ok": OkReply::OK,
        "duplicate": OkReply::DUPLICATE,
    }));

    // Every body parses back from its own wire form.
    let text = serde_json::to_string(&claim).expect("serialises");
    assert_eq!(
        serde_json::from_str::<ClaimReply>(&text).expect("parses"),
        claim
    );
    let text = serde_json::to_string(&complete).expect("serialises");
    assert_eq!(
        serde_json::from_str::<CompleteRequest>(&text).expect("parses"),
        complete
    );
}
