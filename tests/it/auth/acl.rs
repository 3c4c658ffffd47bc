//! Access rules (issue #12 item 6) over real HTTP on both backends: `none` hides a task and its
//! jobs everywhere — detail, lists, counts, statistics, logs and the live log stream — as if
//! they did not exist; `view` shows them but refuses to trigger or cancel; `run` allows both.
//! Admins bypass the rules.

use serde_json::{Value, json};

use super::{ADMIN, As, SEED_AUTH, code};
use crate::server_harness::{Home, Server, serve_test};

const WORKSPACE: &str = r#"
tasks:
  public-hello:
    flow:
      say: { type: script, script: echo public }
  view-report:
    flow:
      say: { type: script, script: echo report }
  secret-deploy:
    flow:
      say: { type: script, script: echo deploying secrets }
triggers:
  nightly: { type: scheduler, task: secret-deploy, cron: "0 3 * * *" }
  reports: { type: scheduler, task: view-report, cron: "0 4 * * *" }
"#;

const ACL: &str = r#"  acl:
    default: none
    rules:
      - { tasks: [public-*], allow: run }
      - { workspace: "def*", tasks: [view-*], allow: view }
      - { tasks: [secret-*], groups: [ops], allow: run }
      - { tasks: [secret-*], users: [Auditor@example.test], allow: view }
"#;

async fn start(home: &Home) -> Server {
    let workspace = home.workspace(WORKSPACE);
    home.configure(&format!(
        "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\n{SEED_AUTH}{ACL}",
        workspace.display()
    ));
    home.start().await
}

fn job_id(reply: &Value) -> String {
    reply["job_id"].as_str().expect("job_id").to_owned()
}

/// The `(task_name)`s of a job list, sorted.
fn tasks_of(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| {
            item["task_name"]
                .as_str()
                .or(item["name"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

/// Opens the log stream of `id` with `?token=`; the HTTP status of a refused upgrade, or 101
/// and the lines up to the end frame.
fn stream(server_base: &str, id: &str, token: &str) -> (u16, String) {
    let url = format!(
        "{}/api/jobs/{id}/logs/stream?token={token}",
        server_base.replacen("http", "ws", 1)
    );
    match tungstenite::connect(url) {
        Ok((mut socket, response)) => {
            let mut text = String::new();
            loop {
                match socket.read() {
                    Ok(tungstenite::Message::Text(frame)) => text.push_str(frame.as_str()),
                    Ok(tungstenite::Message::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            (response.status().as_u16(), text)
        }
        Err(tungstenite::Error::Http(response)) => (response.status().as_u16(), String::new()),
        Err(error) => panic!("stream: {error}"),
    }
}

serve_test! {
    async fn none_view_and_run_over_tasks_jobs_logs_lists_and_counts(backend) {
        let home = Home::new(backend).await;
        let server = start(&home).await;
        let admin = As::login(&server, ADMIN.0, ADMIN.1).await;
        admin.create_user("ada@example.test", "ada-password-1", &[]).await;
        admin.create_user("olaf@example.test", "olaf-password-1", &["ops"]).await;
        admin.create_user("auditor@example.test", "auditor-password", &[]).await;

        // The admin bypasses the rules: one job of each task.
        let mut jobs = std::collections::BTreeMap::new();
        for task in ["public-hello", "view-report", "secret-deploy"] {
            let reply = admin.post(&format!("/api/workspaces/default/tasks/{task}/execute"), &json!({})).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let id = job_id(&reply.json());
            admin.wait_finished(&id).await;
            jobs.insert(task, id);
        }
        let admin_stats = admin.get("/api/stats").await.json();
        assert_eq!(admin_stats["completed"], 3);

        let ada = As::login(&server, "ada@example.test", "ada-password-1").await;
        // Tasks: the hidden one is in no list and has no detail.
        assert_eq!(tasks_of(&ada.get("/api/tasks").await.json()), ["public-hello", "view-report"]);
        assert_eq!(tasks_of(&ada.get("/api/workspaces/default/tasks").await.json()), ["public-hello", "view-report"]);
        assert_eq!(ada.get("/api/workspaces/default/tasks/view-report").await.status, 200);
        let hidden = ada.get("/api/workspaces/default/tasks/secret-deploy").await;
        assert_eq!((hidden.status, code(&hidden).as_str()), (404, "not_found"));
        let unknown = ada.get("/api/workspaces/default/tasks/no-such-task").await;
        assert_eq!(hidden.json()["error"].as_str().map(|m| m.replace("secret-deploy", "X")),
                   unknown.json()["error"].as_str().map(|m| m.replace("no-such-task", "X")));
        let workspace = ada.get("/api/workspaces/default").await.json();
        assert_eq!((workspace["tasks_count"].clone(), workspace["triggers_count"].clone()), (json!(2), json!(1)));
        assert_eq!(ada.get("/api/workspaces").await.json()[0]["tasks_count"], 2);
        let triggers = ada.get("/api/workspaces/default/triggers").await.json();
        assert_eq!(triggers.as_array().map(Vec::len), Some(1));
        assert_eq!(triggers[0]["name"], "reports");

        // Jobs: lists, counts and statistics leave the hidden job out.
        let list = ada.get("/api/jobs").await;
        assert_eq!(list.headers["x-total-count"], "2");
        assert_eq!(tasks_of(&list.json()), ["public-hello", "view-report"]);
        let filtered = ada.get("/api/jobs?workspace=default&task_name=secret-deploy").await;
        assert_eq!((filtered.headers["x-total-count"].as_str(), filtered.json()), ("0", json!([])));
        let searched = ada.get("/api/jobs?search=secret").await;
        assert_eq!(searched.headers["x-total-count"], "0");
        let stats = ada.get("/api/stats").await.json();
        assert_eq!(stats["completed"], 2);
        let workers = ada.get("/api/workers").await.json();
        let worker_id = workers[0]["worker_id"].as_str().expect("worker").to_owned();
        let worker = ada.get(&format!("/api/workers/{worker_id}")).await.json();
        assert_eq!(tasks_of(&worker["steps"]), ["public-hello", "view-report"]);

        // Detail, logs and stream of the hidden job: 404, like a job that never existed.
        let secret = &jobs["secret-deploy"];
        for path in [
            format!("/api/jobs/{secret}"),
            format!("/api/jobs/{secret}/logs"),
            format!("/api/jobs/{secret}/steps/say/logs"),
        ] {
            let reply = ada.get(&path).await;
            assert_eq!((reply.status, code(&reply).as_str()), (404, "not_found"), "{path}");
            assert!(!reply.body.contains("deploying"), "{}", reply.body);
        }
        let cancel = ada.post(&format!("/api/jobs/{secret}/cancel"), &json!({})).await;
        assert_eq!(cancel.status, 404);
        let restart = ada.post(&format!("/api/jobs/{secret}/restart"), &json!({})).await;
        assert_eq!(restart.status, 404, "{}", restart.body);
        let base = server.base().to_owned();
        let token = ada.token.clone();
        let secret_id = secret.clone();
        let (status, _) = tokio::task::spawn_blocking(move || stream(&base, &secret_id, &token)).await.expect("thread");
        assert_eq!(status, 404);

        // `view`: sees the job and its log, live too, but may not run or cancel.
        let report = &jobs["view-report"];
        assert_eq!(ada.get(&format!("/api/jobs/{report}")).await.status, 200);
        assert!(ada.get(&format!("/api/jobs/{report}/logs")).await.body.contains("report"));
        let base = server.base().to_owned();
        let token = ada.token.clone();
        let report_id = report.clone();
        let (status, text) = tokio::task::spawn_blocking(move || stream(&base, &report_id, &token)).await.expect("thread");
        assert_eq!(status, 101);
        assert!(text.contains("report") && text.contains("\"event\":\"end\""), "{text}");
        let refused = ada.post("/api/workspaces/default/tasks/view-report/execute", &json!({})).await;
        assert_eq!((refused.status, code(&refused).as_str()), (403, "forbidden"));
        let refused = ada.post(&format!("/api/jobs/{report}/cancel"), &json!({})).await;
        assert_eq!((refused.status, code(&refused).as_str()), (403, "forbidden"));
        // Restarting is executing the task again (docs/restart.md).
        let refused = ada.post(&format!("/api/jobs/{report}/restart"), &json!({})).await;
        assert_eq!((refused.status, code(&refused).as_str()), (403, "forbidden"), "{}", refused.body);
        let hidden = ada.post("/api/workspaces/default/tasks/secret-deploy/execute", &json!({})).await;
        assert_eq!(hidden.status, 404);
        // Nothing was created by the refusals.
        assert_eq!(admin.get("/api/jobs").await.headers["x-total-count"], "3");

        // `run`.
        let run = ada.post("/api/workspaces/default/tasks/public-hello/execute", &json!({})).await;
        assert_eq!(run.status, 200, "{}", run.body);
        // Cancelling is allowed: the finished job answers `already_terminal`, not `forbidden`.
        let run_id = job_id(&run.json());
        ada.wait_finished(&run_id).await;
        let cancel = ada.post(&format!("/api/jobs/{run_id}/cancel"), &json!({})).await;
        assert_eq!((cancel.status, code(&cancel).as_str()), (409, "already_terminal"), "{}", cancel.body);
        // And restarting: the completed job answers that it has nothing to restart.
        let restart = ada.post(&format!("/api/jobs/{run_id}/restart"), &json!({})).await;
        assert_eq!((restart.status, code(&restart).as_str()), (409, "conflict"), "{}", restart.body);

        // A group grants `run`, a user rule `view` (e-mails compared without case).
        let olaf = As::login(&server, "olaf@example.test", "olaf-password-1").await;
        assert_eq!(olaf.get(&format!("/api/jobs/{secret}")).await.status, 200);
        assert_eq!(olaf.post("/api/workspaces/default/tasks/secret-deploy/execute", &json!({})).await.status, 200);
        let auditor = As::login(&server, "auditor@example.test", "auditor-password").await;
        assert_eq!(auditor.get(&format!("/api/jobs/{secret}")).await.status, 200);
        assert_eq!(auditor.post("/api/workspaces/default/tasks/secret-deploy/execute", &json!({})).await.status, 403);
    }
}

const GATED: &str = r#"
actions:
  ask:
    type: approval
    message: "Ship it?"
tasks:
  view-gated:
    flow:
      confirm: { action: ask }
"#;

serve_test! {
    async fn deciding_an_approval_needs_run_and_records_the_approver(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(GATED);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\n{SEED_AUTH}  acl:\n    default: none\n    rules:\n      - {{ tasks: [view-*], groups: [ops], allow: run }}\n      - {{ tasks: [view-*], allow: view }}\n",
            workspace.display()
        ));
        let server = home.start().await;
        let admin = As::login(&server, ADMIN.0, ADMIN.1).await;
        admin.create_user("ada@example.test", "ada-password-1", &[]).await;
        admin.create_user("olaf@example.test", "olaf-password-1", &["ops"]).await;
        let reply = admin.post("/api/workspaces/default/tasks/view-gated/execute", &json!({})).await;
        let id = job_id(&reply.json());
        let path = format!("/api/jobs/{id}/steps/confirm/approve");

        let ada = As::login(&server, "ada@example.test", "ada-password-1").await;
        let refused = ada.post(&path, &json!({"approved": true})).await;
        assert_eq!((refused.status, code(&refused).as_str()), (403, "forbidden"), "{}", refused.body);
        let olaf = As::login(&server, "olaf@example.test", "olaf-password-1").await;
        let approved = olaf.post(&path, &json!({"approved": true})).await;
        assert_eq!(approved.status, 200, "{}", approved.body);
        let job = olaf.wait_finished(&id).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["steps"][0]["output"]["approved_by"], "olaf@example.test");

        // The audit trail has the decision and the refusal.
        let audit = admin.get("/api/audit?action=job.approve").await.json();
        let entries: Vec<(String, String)> = audit
            .as_array()
            .expect("a list")
            .iter()
            .map(|entry| {
                (
                    entry["actor"].as_str().unwrap_or_default().to_owned(),
                    entry["outcome"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        assert!(entries.contains(&("olaf@example.test".to_owned(), "success".to_owned())), "{audit}");
        assert!(entries.contains(&("ada@example.test".to_owned(), "forbidden".to_owned())), "{audit}");
        assert_eq!(audit[0]["target"], format!("{id}/confirm"), "{audit}");
    }
}

serve_test! {
    async fn refreshing_a_workspace_needs_run_on_one_of_its_tasks_or_an_admin(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\n{SEED_AUTH}  acl:\n    default: none\n    rules:\n      \
             - {{ tasks: [\"*\"], users: [viewer@example.test], allow: view }}\n      \
             - {{ tasks: [public-hello], users: [runner@example.test], allow: run }}\n",
            workspace.display()
        ));
        let server = home.start().await;
        let path = "/api/workspaces/default/refresh";
        let anonymous = server.call("POST", path, &[], None).await;
        assert_eq!(anonymous.status, 401, "{}", anonymous.body);
        let admin = As::login(&server, ADMIN.0, ADMIN.1).await;
        admin.create_user("viewer@example.test", "viewer-password-1", &[]).await;
        admin.create_user("runner@example.test", "runner-password-1", &[]).await;
        let reply = admin.post(path, &json!({})).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["status"], "ok");

        let viewer = As::login(&server, "viewer@example.test", "viewer-password-1").await;
        let refused = viewer.post(path, &json!({})).await;
        assert_eq!((refused.status, code(&refused).as_str()), (403, "forbidden"), "{}", refused.body);
        // The runner may; within 5 s of the admin's refresh that is a 429, not a 403.
        let runner = As::login(&server, "runner@example.test", "runner-password-1").await;
        let limited = runner.post(path, &json!({})).await;
        assert_eq!(limited.status, 429, "{}", limited.body);
        server.stop().await;
    }
}
