//! The seed README's quickstart, request for request, against a server configured like a
//! zero-configuration start (the built-in example workspace), and the job history surviving a
//! restart.

use std::time::Duration;

use serde_json::{Value, json};

use crate::server_harness::{Home, Server, eventually, serve_test, step};

/// The quickstart's `curl` calls in order; returns the finished job's detail.
async fn quickstart(server: &Server) -> Value {
    // until curl -sf http://localhost:8080/api/workspaces/default/tasks; do sleep 2; done
    eventually(
        "the task list",
        Duration::from_secs(10),
        move || async move { server.get("/api/workspaces/default/tasks").await.status == 200 },
    )
    .await;

    // curl -s http://localhost:8080/api/workspaces | jq .
    let workspaces = server.get("/api/workspaces").await;
    assert_eq!(workspaces.status, 200, "{}", workspaces.body);
    let workspaces = workspaces.json();
    assert_eq!(workspaces[0]["name"], "default", "{workspaces:#}");
    assert_eq!(workspaces[0]["status"], "ok", "{workspaces:#}");
    assert_eq!(workspaces[0]["source"]["type"], "example", "{workspaces:#}");

    // curl -s http://localhost:8080/api/workspaces/default/tasks | jq .
    let tasks = server.get("/api/workspaces/default/tasks").await.json();
    let names: Vec<&str> = tasks
        .as_array()
        .expect("a bare array")
        .iter()
        .filter_map(|task| task["name"].as_str())
        .collect();
    assert!(names.contains(&"hello-world"), "{tasks:#}");

    // curl -s -X POST …/tasks/hello-world/execute -H "Content-Type: application/json"
    //   -d '{"input": {"name": "World"}}' | jq .
    let reply = server
        .post_json(
            "/api/workspaces/default/tasks/hello-world/execute",
            r#"{"input": {"name": "World"}}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = reply.json();
    let id: uuid::Uuid = reply["job_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a job id");
    assert_eq!(reply, json!({"job_id": id, "status": "pending"}));

    // curl -s http://localhost:8080/api/jobs/JOB_ID | jq .
    let job = server.wait_finished(id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(
        step(&job, "say-hello")["output"],
        json!({"greeting": "Hello World"})
    );
    assert_eq!(step(&job, "shout-it")["status"], "completed");
    job
}

/// `GET /api/jobs/{id}/logs`: JSONL with `seq` from 1, every line a documented object.
async fn check_logs(server: &Server, job: &Value) {
    let id = job["job_id"].as_str().expect("job id");
    let reply = server.get(&format!("/api/jobs/{id}/logs")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = reply.json();
    let text = reply["logs"].as_str().expect("logs text");
    assert!(text.ends_with('\n'), "every line is newline-terminated");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], index + 1, "{line}");
        for field in ["ts", "stream", "step", "attempt", "line"] {
            assert!(line.get(field).is_some(), "{field} missing in {line}");
        }
    }
    assert_eq!(reply["last_seq"], lines.len());
    assert_eq!(reply["has_more"], false);
    let said = |step: &str, text: &str| {
        lines
            .iter()
            .any(|line| line["step"] == step && line["stream"] == "stdout" && line["line"] == text)
    };
    assert!(said("say-hello", "Hello World"), "{text}");
    assert!(said("shout-it", "HELLO WORLD"), "{text}");

    // The per-step route and paging by `after`.
    let steps = server
        .get(&format!("/api/jobs/{id}/steps/shout-it/logs"))
        .await
        .json();
    let step_text = steps["logs"].as_str().expect("logs");
    assert!(step_text.lines().all(|line| line.contains("\"shout-it\"")));
    let rest = server
        .get(&format!("/api/jobs/{id}/logs?after=1&limit=1"))
        .await
        .json();
    let first: Value =
        serde_json::from_str(rest["logs"].as_str().expect("logs").trim_end()).expect("one line");
    assert_eq!(first["seq"], 2);
    assert_eq!(rest["last_seq"], 2);
    assert_eq!(rest["has_more"], lines.len() > 2);
}

/// `2026-03-01T12:00:00.123Z`: RFC 3339, UTC, milliseconds.
fn is_api_time(text: &str) -> bool {
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

serve_test! {
    async fn the_seed_quickstart_runs_verbatim(backend) {
        let home = Home::new(backend).await;
        home.configure("");
        let server = home.start().await;
        let job = quickstart(&server).await;
        check_logs(&server, &job).await;
        insta::assert_json_snapshot!("quickstart_job_detail", job, {
            // Hooks fire just after the job finishes: read at once, it may not say so yet.
            ".hooks_fired" => "[bool]",
            ".job_id" => "[id]",
            ".revision" => "[revision]",
            ".created_at" => "[ts]",
            ".started_at" => "[ts]",
            ".completed_at" => "[ts]",
            ".steps[].worker_id" => "[worker]",
            ".steps[].ready_at" => "[ts]",
            ".steps[].started_at" => "[ts]",
            ".steps[].completed_at" => "[ts]",
        });

        // The embedded worker is listed in the API's shape and time format (API §2.6, §1.2).
        let workers = server.get("/api/workers").await;
        assert_eq!(workers.headers.get("x-total-count").map(String::as_str), Some("1"));
        let worker = &workers.json()[0];
        assert_eq!(worker["status"], "active", "{worker:#}");
        assert_eq!(worker["capabilities"], json!(["script"]));
        assert_eq!(step(&job, "say-hello")["worker_id"], worker["worker_id"]);
        for time in ["last_heartbeat", "registered_at"] {
            let text = worker[time].as_str().expect("a time");
            assert!(is_api_time(text), "{time}: {text}");
        }
        let id = worker["worker_id"].as_str().expect("worker id");
        let detail = server.get(&format!("/api/workers/{id}")).await.json();
        assert_eq!(detail["steps"].as_array().map(Vec::len), Some(2), "{detail:#}");

        let stats = server.get("/api/stats").await.json();
        assert_eq!(stats["completed"], 1, "{stats}");
        let elsewhere = server.get("/api/stats?workspace=elsewhere").await.json();
        assert_eq!(elsewhere["completed"], 0, "{elsewhere}");
        let tasks = server.get("/api/tasks?workspace=default").await.json();
        assert_eq!(tasks[0]["workspace"], "default", "{tasks}");
        let none = server.get("/api/tasks?workspace=elsewhere").await.json();
        assert_eq!(none, json!([]));
        let jobs = server.get("/api/jobs").await;
        assert_eq!(jobs.headers.get("x-total-count").map(String::as_str), Some("1"));
        assert_eq!(jobs.json()[0]["job_id"], job["job_id"]);
        server.stop().await;
    }
}

serve_test! {
    async fn job_history_survives_a_restart(backend) {
        let home = Home::new(backend).await;
        home.configure("");
        let server = home.start().await;
        let job = quickstart(&server).await;
        let id = job["job_id"].as_str().expect("id").to_owned();
        let before = server.wait_settled(id.parse().expect("uuid")).await;
        let logs_before = server.get(&format!("/api/jobs/{id}/logs")).await.json();
        server.stop().await;

        let server = home.start().await;
        let after = server.job(id.parse().expect("uuid")).await;
        assert_eq!(after, before, "the job reads back identically after a restart");
        let logs_after = server.get(&format!("/api/jobs/{id}/logs")).await.json();
        assert_eq!(logs_after, logs_before);
        let jobs = server.get("/api/jobs").await;
        assert_eq!(jobs.headers.get("x-total-count").map(String::as_str), Some("1"));

        // The restarted server runs new jobs too.
        let second = server.execute("default", "hello-world", "{}").await;
        let second = server.wait_finished(second).await;
        assert_eq!(second["status"], "completed", "{second:#}");
        assert_eq!(step(&second, "say-hello")["output"], json!({"greeting": "Hello World"}));
        server.stop().await;
    }
}
