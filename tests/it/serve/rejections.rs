//! Bad requests never answer 500 (API §1.3): input problems are 400 `invalid_input` naming
//! every field, unknown things 404, malformed ids 400, oversized bodies 413, other content
//! types 415 — and nothing is written on rejection.

use serde_json::{Value, json};

use crate::server_harness::{Home, Reply, Server, serve_test};

const WORKSPACE: &str = r#"
tasks:
  typed:
    input:
      version: { type: string, required: true }
      count: { type: integer, required: true }
      environment: { type: string, options: [staging, production], default: staging }
      verbose: { type: boolean }
    flow:
      show:
        type: script
        script: echo "$INPUT_VERSION"
        input: { version: "{{ input.version }}" }
"#;

/// Status and body of a rejection, for the snapshot.
fn shown(label: &str, reply: &Reply) -> Value {
    json!({"request": label, "status": reply.status, "body": reply.json()})
}

/// Every job count, to prove a rejection wrote nothing.
async fn counts(server: &Server) -> (Value, Option<String>) {
    let stats = server.get("/api/stats").await.json();
    let jobs = server.get("/api/jobs").await;
    (stats, jobs.headers.get("x-total-count").cloned())
}

serve_test! {
    async fn bad_requests_are_rejected_with_their_kind_and_write_nothing(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        let broken = home.path().join("broken");
        std::fs::create_dir_all(broken.join(".workflows")).expect("mkdir");
        std::fs::write(broken.join(".workflows/main.yaml"), "tasks: [").expect("write");
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\n  \
             broken: {{ type: folder, path: \"{}\" }}\nembedded_worker: false",
            workspace.display(),
            broken.display()
        ));
        let server = home.start().await;
        let before = counts(&server).await;
        let execute = "/api/workspaces/default/tasks/typed/execute";
        let mut seen = Vec::new();

        let missing = server.post_json(execute, r#"{"input": {}}"#).await;
        assert_eq!(missing.status, 400, "{}", missing.body);
        assert_eq!(missing.json()["code"], "invalid_input");
        seen.push(shown("missing inputs", &missing));

        let mistyped = server
            .post_json(
                execute,
                r#"{"input": {"version": {"major": 1}, "count": "many", "environment": "moon", "verbose": "yes"}}"#,
            )
            .await;
        assert_eq!(mistyped.status, 400, "{}", mistyped.body);
        let body = mistyped.json();
        assert_eq!(body["code"], "invalid_input");
        let fields: Vec<&str> = body["details"]
            .as_array()
            .expect("details")
            .iter()
            .filter_map(|detail| detail["field"].as_str())
            .collect();
        for field in ["input.version", "input.count", "input.environment", "input.verbose"] {
            assert!(fields.contains(&field), "{field} not named in {body:#}");
        }
        seen.push(shown("mistyped and out-of-options inputs", &mistyped));

        let unknown_field = server.post_json(execute, r#"{"inputs": {}}"#).await;
        assert_eq!(unknown_field.status, 400, "{}", unknown_field.body);
        seen.push(shown("unknown body field", &unknown_field));

        let malformed = server.post_json(execute, r#"{"input": "#).await;
        assert_eq!(malformed.status, 400, "{}", malformed.body);
        seen.push(shown("malformed JSON", &malformed));

        let unknown_task = server
            .post_json("/api/workspaces/default/tasks/nope/execute", "{}")
            .await;
        assert_eq!(unknown_task.status, 404, "{}", unknown_task.body);
        seen.push(shown("unknown task", &unknown_task));

        let unknown_workspace = server
            .post_json("/api/workspaces/elsewhere/tasks/typed/execute", "{}")
            .await;
        assert_eq!(unknown_workspace.status, 404, "{}", unknown_workspace.body);
        seen.push(shown("unknown workspace", &unknown_workspace));

        // A workspace that failed validation exists, but serves no task.
        let broken = server
            .post_json("/api/workspaces/broken/tasks/typed/execute", "{}")
            .await;
        assert_eq!(broken.status, 404, "{}", broken.body);
        seen.push(shown("a task of a workspace that failed validation", &broken));

        for path in ["/api/workspaces/elsewhere", "/api/workspaces/default/tasks/nope"] {
            let reply = server.get(path).await;
            assert_eq!(reply.status, 404, "{path}: {}", reply.body);
            seen.push(shown(path, &reply));
        }

        for path in ["/api/jobs/not-a-uuid", "/api/jobs/not-a-uuid/logs"] {
            let reply = server.get(path).await;
            assert_eq!(reply.status, 400, "{path}: {}", reply.body);
            seen.push(shown(path, &reply));
        }
        let reply = server.post_json("/api/jobs/not-a-uuid/cancel", "").await;
        assert_eq!(reply.status, 400, "{}", reply.body);

        let absent = "/api/jobs/00000000-0000-7000-8000-000000000000";
        for path in [absent.to_owned(), format!("{absent}/logs")] {
            let reply = server.get(&path).await;
            assert_eq!(reply.status, 404, "{path}: {}", reply.body);
            seen.push(shown(&path, &reply));
        }
        let reply = server.post_json(&format!("{absent}/cancel"), "").await;
        assert_eq!(reply.status, 404, "{}", reply.body);
        seen.push(shown("cancel an unknown job", &reply));

        let big = format!(r#"{{"input": {{"version": "{}", "count": 1}}}}"#, "x".repeat(1 << 20));
        // The server answers 413 from the Content-Length without reading the body, so a client
        // still sending may see the connection close first; a few tries get the answer.
        let mut oversized = None;
        for _ in 0..5 {
            let body = Some(("application/json", big.clone().into_bytes()));
            if let Ok(reply) = server.try_request("POST", execute, body).await {
                oversized = Some(reply);
                break;
            }
        }
        let oversized = oversized.expect("an answer to the oversized body");
        assert_eq!(oversized.status, 413, "{}", oversized.body);
        seen.push(shown("body over 1 MiB", &oversized));

        let text = server
            .request(
                "POST",
                execute,
                Some(("text/plain", br#"{"input": {"version": "1", "count": 1}}"#.to_vec())),
            )
            .await;
        assert_eq!(text.status, 415, "{}", text.body);
        seen.push(shown("text/plain body", &text));

        assert_eq!(counts(&server).await, before, "a rejected request wrote a job");
        assert!(before.1.as_deref() == Some("0"), "{before:?}");

        // The same input, corrected, is accepted.
        server
            .execute("default", "typed", r#"{"input": {"version": "1.0", "count": 2}}"#)
            .await;
        insta::assert_json_snapshot!("rejections", seen);
        server.stop().await;
    }
}
