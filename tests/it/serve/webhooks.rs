//! Webhooks over real HTTP (API §6, WF §15.2; issue 7's acceptance): the right secret as a
//! Bearer token or either signature header, and every refusal — wrong secret, a signature
//! over another body, no credentials, a query secret, an oversized body, an unknown or
//! disabled hook, invalid JSON — with its status and no job created.

use std::time::Duration;

use serde_json::{Value, json};
use stroem::webhook::sign;

use crate::server_harness::{Home, Reply, Server, serve_test};

const WORKSPACE: &str = r#"
secrets:
  HOOK: "{{ env.TEST_HOOK_SECRET }}"
tasks:
  on-push:
    flow:
      show:
        type: script
        script: echo "ref=$INPUT_REF method=$INPUT_METHOD team=$INPUT_TEAM"
        input:
          ref: "{{ input.body.ref | default('none') }}"
          method: "{{ input.method }}"
          team: "{{ input.team }}"
  quick:
    flow:
      answer:
        type: script
        script: "echo 'OUTPUT: {\"answer\": 42}'"
  slow:
    flow:
      wait:
        type: script
        script: sleep 5
triggers:
  sync-quick: { type: webhook, task: quick, mode: sync }
  sync-slow: { type: webhook, task: slow, mode: sync, timeout_secs: 1 }
  push:
    type: webhook
    task: on-push
    secret: "{{ secret.HOOK }}"
    input: { team: ops, method: "not this one" }
  open:
    type: webhook
    name: open-door
    task: on-push
    input: { team: anyone }
  off:
    type: webhook
    task: on-push
    secret: "{{ secret.HOOK }}"
    enabled: false
"#;

const SECRET: &str = "hook-s3cr3t-value";

async fn webhook_jobs(server: &Server) -> usize {
    let reply = server.get("/api/jobs?source_type=webhook").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .headers
        .get("x-total-count")
        .and_then(|total| total.parse().ok())
        .expect("X-Total-Count")
}

fn assert_refused(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.json()["code"], code, "{}", reply.body);
}

serve_test! {
    async fn webhooks_authenticate_and_refuse_without_creating_jobs(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let server = home.start_with_env(&[("TEST_HOOK_SECRET", SECRET)]).await;
        let body = br#"{"ref": "refs/heads/main", "commits": 2}"#.to_vec();
        let json_type = ("Content-Type", "application/json");
        let bearer = format!("Bearer {SECRET}");
        let signature = format!("sha256={}", sign(SECRET.as_bytes(), &body));

        // Refusals first: each leaves no job behind.
        let wrong = server
            .send("POST", "/hooks/push", &[json_type, ("Authorization", "Bearer nope")], body.clone())
            .await;
        assert_refused(&wrong, 401, "unauthorized");
        let mut tampered = body.clone();
        tampered[10] = b'X';
        let modified = server
            .send("POST", "/hooks/push", &[json_type, ("X-Hub-Signature-256", &signature)], tampered)
            .await;
        assert_refused(&modified, 401, "unauthorized");
        let missing = server.send("POST", "/hooks/push", &[json_type], body.clone()).await;
        assert_refused(&missing, 401, "unauthorized");
        assert!(missing.headers.contains_key("www-authenticate"), "{:?}", missing.headers);
        let query = server
            .send("POST", &format!("/hooks/push?secret={SECRET}"), &[json_type], body.clone())
            .await;
        assert_refused(&query, 401, "unauthorized");
        assert!(
            query.json()["error"].as_str().unwrap_or_default().contains("query secrets are not accepted"),
            "{}",
            query.body
        );
        let oversized = server
            .send("POST", "/hooks/push", &[("Content-Type", "text/plain"), ("Authorization", &bearer)], vec![b'x'; 1024 * 1024 + 1])
            .await;
        assert_refused(&oversized, 413, "payload_too_large");
        let unknown = server
            .send("POST", "/hooks/nobody", &[json_type, ("Authorization", &bearer)], body.clone())
            .await;
        assert_refused(&unknown, 404, "not_found");
        let disabled = server
            .send("POST", "/hooks/off", &[json_type, ("Authorization", &bearer)], body.clone())
            .await;
        assert_refused(&disabled, 404, "not_found");
        let broken = server
            .send("POST", "/hooks/push", &[json_type, ("Authorization", &bearer)], b"{not json".to_vec())
            .await;
        assert_refused(&broken, 400, "bad_request");
        assert_eq!(broken.json()["field"], "body", "{}", broken.body);
        assert_eq!(webhook_jobs(&server).await, 0);
        let seen = json!({
            "wrong secret": wrong.json(),
            "modified body": modified.json(),
            "missing": missing.json(),
            "query secret": query.json(),
            "oversized": oversized.json(),
            "unknown": unknown.json(),
            "disabled": disabled.json(),
            "invalid json": broken.json(),
        });
        insta::assert_json_snapshot!("webhook_refusals", seen);

        // The right secret, three ways.
        let by_bearer = server
            .send("POST", "/hooks/push", &[json_type, ("Authorization", &bearer), ("X-Delivery", "d-1")], body.clone())
            .await;
        assert_eq!(by_bearer.status, 202, "{}", by_bearer.body);
        let reply = by_bearer.json();
        assert_eq!(
            json!({"trigger": reply["trigger"], "task": reply["task"], "workspace": reply["workspace"]}),
            json!({"trigger": "push", "task": "on-push", "workspace": "default"})
        );
        for header in ["X-Hub-Signature-256", "X-Stroem-Signature"] {
            let signed = server
                .send("POST", "/hooks/push", &[json_type, (header, &signature)], body.clone())
                .await;
            assert_eq!(signed.status, 202, "{header}: {}", signed.body);
        }
        assert_eq!(webhook_jobs(&server).await, 3);

        // The job: input {body, headers, method, query} plus the trigger's input, credentials
        // left out of the headers, run to completion.
        let push_id = reply["job_id"].as_str().expect("job_id").parse().expect("uuid");
        let job = server.wait_finished(push_id).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(job["source_type"], "webhook");
        assert_eq!(job["source_id"], "default/push");
        let input = &job["input"];
        assert_eq!(input["body"], json!({"ref": "refs/heads/main", "commits": 2}));
        assert_eq!(input["method"], "POST");
        assert_eq!(input["query"], json!({}));
        assert_eq!(input["team"], "ops");
        assert_eq!(input["headers"]["x-delivery"], "d-1");
        assert_eq!(input["headers"]["content-type"], "application/json");
        assert_eq!(input["headers"].get("authorization"), None, "{input:#}");
        let logs = server.get(&format!("/api/jobs/{push_id}/logs")).await.json();
        let logs = logs["logs"].as_str().expect("logs");
        assert!(logs.contains("ref=refs/heads/main method=POST team=ops"), "{logs}");

        // An open hook takes GET with a query and no body.
        let open = server.send("GET", "/hooks/open-door?ref=v1&ref=v2&x=1", &[], Vec::new()).await;
        assert_eq!(open.status, 202, "{}", open.body);
        let id = open.json()["job_id"].as_str().expect("job_id").parse().expect("uuid");
        let job = server
            .wait_job(id, Duration::from_secs(60), |job| job["status"] == "completed")
            .await;
        assert_eq!(job["input"]["body"], Value::Null);
        assert_eq!(job["input"]["method"], "GET");
        assert_eq!(job["input"]["query"], json!({"ref": "v2", "x": "1"}));
        assert_eq!(job["input"]["team"], "anyone");

        // `mode: sync` waits for the job: 200 with its output when it ends in time, else 202
        // with its status.
        let quick = server.send("POST", "/hooks/sync-quick", &[], Vec::new()).await;
        assert_eq!(quick.status, 200, "{}", quick.body);
        let quick = quick.json();
        assert_eq!(quick["status"], "completed", "{quick:#}");
        assert_eq!(quick["output"], json!({"answer": {"answer": 42}}), "{quick:#}");
        let slow = server.send("POST", "/hooks/sync-slow", &[], Vec::new()).await;
        assert_eq!(slow.status, 202, "{}", slow.body);
        let slow = slow.json();
        assert!(slow["status"] == "pending" || slow["status"] == "running", "{slow:#}");
        assert_eq!(slow.get("output"), None, "{slow:#}");

        // A webhook's jobs can be looked up under it, with its own authentication.
        let path = format!("/hooks/push/jobs/{push_id}");
        let looked_up = server.send("GET", &path, &[("Authorization", &bearer)], Vec::new()).await;
        assert_eq!(looked_up.status, 200, "{}", looked_up.body);
        assert_eq!(looked_up.json()["status"], "completed");
        assert_eq!(looked_up.json()["trigger"], "push");
        assert_refused(&server.send("GET", &path, &[], Vec::new()).await, 401, "unauthorized");
        let open_id = open.json()["job_id"].as_str().expect("job_id").to_owned();
        let foreign = server
            .send("GET", &format!("/hooks/push/jobs/{open_id}"), &[("Authorization", &bearer)], Vec::new())
            .await;
        assert_refused(&foreign, 404, "not_found");
        let slow_id = slow["job_id"].as_str().expect("job_id");
        let waited = server
            .send("GET", &format!("/hooks/sync-slow/jobs/{slow_id}?wait=true&timeout=1"), &[], Vec::new())
            .await;
        assert_eq!(waited.status, 202, "{}", waited.body);

        // The trigger list shows webhooks with their path, never their secret.
        let triggers = server.get("/api/workspaces/default/triggers").await.json();
        let push = triggers
            .as_array()
            .and_then(|list| list.iter().find(|t| t["name"] == "push"))
            .expect("push");
        assert_eq!(
            push["webhook"],
            json!({"path": "/hooks/push", "mode": "async", "timeout_secs": 30, "has_secret": true})
        );
        assert!(!triggers.to_string().contains(SECRET));
        server.stop().await;
    }
}

serve_test! {
    async fn signatures_cover_what_the_job_gets_and_never_reach_it(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let server = home.start_with_env(&[("TEST_HOOK_SECRET", SECRET)]).await;
        let json_type = ("Content-Type", "application/json");
        let body = br#"{"ref": "refs/heads/main"}"#.to_vec();
        let signature = format!("sha256={}", sign(SECRET.as_bytes(), &body));
        let empty_signature = format!("sha256={}", sign(SECRET.as_bytes(), b""));

        // A signature over an empty body is the same for every call: it must not fire a GET
        // with whatever query, nor an empty POST, and a signed POST's query is not signed.
        for (method, path, headers, sent) in [
            ("GET", "/hooks/push?ref=evil", vec![("X-Hub-Signature-256", empty_signature.as_str())], Vec::new()),
            ("GET", "/hooks/push", vec![("X-Stroem-Signature", empty_signature.as_str())], Vec::new()),
            ("POST", "/hooks/push?ref=evil", vec![json_type, ("X-Stroem-Signature", empty_signature.as_str())], Vec::new()),
            ("POST", "/hooks/push?ref=evil", vec![json_type, ("X-Hub-Signature-256", signature.as_str())], body.clone()),
        ] {
            let reply = server.send(method, path, &headers, sent).await;
            assert_refused(&reply, 401, "unauthorized");
            let message = reply.json()["error"].as_str().unwrap_or_default().to_owned();
            assert!(message.contains("Bearer"), "{method} {path}: {message}");
        }
        assert_eq!(webhook_jobs(&server).await, 0);

        // A signed body fires; the signature headers are credentials and stay out of the input.
        let signed = server
            .send("POST", "/hooks/push", &[json_type, ("X-Hub-Signature-256", &signature), ("X-Stroem-Signature", &signature)], body.clone())
            .await;
        assert_eq!(signed.status, 202, "{}", signed.body);
        let id = signed.json()["job_id"].as_str().expect("job_id").parse().expect("uuid");
        let job = server.wait_finished(id).await;
        let headers = &job["input"]["headers"];
        for name in ["x-hub-signature-256", "x-stroem-signature", "authorization"] {
            assert_eq!(headers.get(name), None, "{name}: {headers:#}");
        }
        assert_eq!(headers["content-type"], "application/json", "{headers:#}");
        assert!(!job.to_string().contains(&signature), "{job:#}");

        // A Bearer token is the key itself: GET with a query is fine with it.
        let bearer = format!("Bearer {SECRET}");
        let by_bearer = server
            .send("GET", "/hooks/push?ref=v1", &[("Authorization", &bearer)], Vec::new())
            .await;
        assert_eq!(by_bearer.status, 202, "{}", by_bearer.body);
        let id = by_bearer.json()["job_id"].as_str().expect("job_id").parse().expect("uuid");
        let job = server.wait_finished(id).await;
        assert_eq!(job["input"]["query"], json!({"ref": "v1"}), "{job:#}");

        // The job lookup has no body either: a signature cannot authorise it.
        let lookup = format!("/hooks/push/jobs/{id}");
        let refused = server
            .send("GET", &lookup, &[("X-Stroem-Signature", &empty_signature)], Vec::new())
            .await;
        assert_refused(&refused, 401, "unauthorized");
        let allowed = server.send("GET", &lookup, &[("Authorization", &bearer)], Vec::new()).await;
        assert_eq!(allowed.status, 200, "{}", allowed.body);
        server.stop().await;
    }
}

const TEMPLATED_INPUT: &str = r#"
secrets:
  REGION: eu-north-1
tasks:
  note:
    flow:
      show: { type: script, script: echo "$INPUT_WHO" }
triggers:
  templated:
    type: webhook
    task: note
    input:
      who: "{{ trigger.type }}:{{ trigger.name }}"
      scheduled: "{{ trigger.scheduled_at }}"
      region: "{{ secret.REGION }}"
  broken:
    type: webhook
    task: note
    input:
      count: "{{ secret.REGION | int }}"
"#;

serve_test! {
    async fn a_webhook_renders_its_templated_input_per_call_and_names_a_field_that_fails(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(TEMPLATED_INPUT);
        home.configure_workspace(&workspace);
        let server = home.start().await;
        let json_type = ("Content-Type", "application/json");
        let reply = server.send("POST", "/hooks/templated", &[json_type], b"{}".to_vec()).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let id = reply.json()["job_id"].as_str().expect("job_id").parse().expect("uuid");
        let job = server.wait_finished(id).await;
        assert_eq!(job["input"]["who"], "webhook:templated", "{job:#}");
        assert_eq!(job["input"]["scheduled"], Value::Null, "{job:#}");
        // The secret reached the job, and every view masks it.
        assert_eq!(job["input"]["region"], "••••••", "{job:#}");

        let broken = server.send("POST", "/hooks/broken", &[json_type], b"{}".to_vec()).await;
        assert_refused(&broken, 400, "invalid_input");
        assert_eq!(broken.json()["field"], "triggers.broken.input.count", "{}", broken.body);
        assert_eq!(webhook_jobs(&server).await, 1);
    }
}
