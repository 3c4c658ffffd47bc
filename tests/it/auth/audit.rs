//! The audit trail (issue #12 item 7): every state-changing request is recorded with actor,
//! source IP (believing `X-Forwarded-For` only from `trusted_proxies`), action, target and
//! outcome; `GET /api/audit` filters and pages; a refused request leaves only its entry; no
//! entry holds a secret.

use serde_json::{Value, json};

use super::{ADMIN, As, SEED_AUTH, code, login, try_login};
use crate::server_harness::{Home, serve_test};

const WORKSPACE: &str = r#"
tasks:
  greet:
    input:
      name: { type: string, required: true }
    flow:
      say:
        type: script
        input: { name: "{{ input.name }}" }
        script: echo "hello $INPUT_NAME"
  wait:
    flow:
      nap: { type: script, script: sleep 30 }
"#;

/// The entries of a page, oldest first, as `(action, actor, outcome, target)`.
fn rows(page: &Value) -> Vec<(String, String, String, String)> {
    let mut rows: Vec<_> = page
        .as_array()
        .expect("a list")
        .iter()
        .map(|entry| {
            let text = |key: &str| entry[key].as_str().unwrap_or("-").to_owned();
            (
                text("action"),
                text("actor"),
                text("outcome"),
                text("target"),
            )
        })
        .collect();
    rows.reverse();
    rows
}

serve_test! {
    async fn state_changes_are_recorded_with_actor_ip_target_and_outcome(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\ntrusted_proxies: [127.0.0.1]\n{SEED_AUTH}",
            workspace.display()
        ));
        let server = home.start().await;

        assert_eq!(try_login(&server, ADMIN.0, "wrong-password").await.status, 401);
        let tokens = login(&server, ADMIN.0, ADMIN.1).await;
        let admin = As::new(&server, tokens["access_token"].as_str().expect("access"));
        let forwarded = server
            .call(
                "POST",
                "/api/workspaces/default/tasks/greet/execute",
                &[
                    ("Authorization", &format!("Bearer {}", admin.token)),
                    ("X-Forwarded-For", "198.51.100.1, 203.0.113.7"),
                ],
                Some(r#"{"input": {"name": "audit"}}"#),
            )
            .await;
        assert_eq!(forwarded.status, 200, "{}", forwarded.body);
        let job = forwarded.json()["job_id"].as_str().expect("id").to_owned();
        // A refused trigger writes its audit entry and nothing else.
        let jobs_before = admin.get("/api/jobs").await.headers["x-total-count"].clone();
        let refused = admin.post("/api/workspaces/default/tasks/greet/execute", &json!({"input": {}})).await;
        assert_eq!(refused.status, 400);
        assert_eq!(admin.get("/api/jobs").await.headers["x-total-count"], jobs_before);
        let waiting = admin.post("/api/workspaces/default/tasks/wait/execute", &json!({})).await.json();
        let waiting = waiting["job_id"].as_str().expect("id").to_owned();
        assert_eq!(admin.post(&format!("/api/jobs/{waiting}/cancel"), &json!({})).await.status, 200);
        let user = admin.create_user("ada@example.test", "ada-password-1", &[]).await;
        assert_eq!(admin.put(&format!("/api/users/{user}/groups"), &json!({"groups": ["ops"]})).await.status, 200);
        assert_eq!(admin.put(&format!("/api/users/{user}/admin"), &json!({"is_admin": true})).await.status, 200);
        let key = admin.post("/api/auth/api-keys", &json!({"name": "ci"})).await.json();
        let prefix = key["prefix"].as_str().expect("prefix").to_owned();
        assert_eq!(admin.delete(&format!("/api/auth/api-keys/{prefix}")).await.status, 204);
        let r1 = tokens["refresh_token"].as_str().expect("refresh").to_owned();
        let r2 = server.post_json("/api/auth/refresh", &json!({"refresh_token": r1}).to_string()).await.json();
        let reused = server.post_json("/api/auth/refresh", &json!({"refresh_token": r1}).to_string()).await;
        assert_eq!(code(&reused), "refresh_token_reused");
        let anonymous = server.post_json("/api/jobs/00000000-0000-0000-0000-000000000000/cancel", "{}").await;
        assert_eq!(anonymous.status, 401);
        assert_eq!(admin.delete(&format!("/api/users/{user}")).await.status, 204);
        server.post_json("/api/auth/logout", &json!({"refresh_token": r2["refresh_token"]}).to_string()).await;

        let page = admin.get("/api/audit?limit=500").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let entries = page.json();
        let text = entries.to_string();
        for secret in ["ada-password-1", r1.as_str(), admin.token.as_str(), key["key"].as_str().expect("key")] {
            assert!(!text.contains(secret), "the audit trail holds a secret: {secret}");
        }
        let ada = "ada@example.test".to_owned();
        let admin_email = ADMIN.0.to_owned();
        let expected: Vec<(String, String, String, String)> = [
            ("auth.login", admin_email.as_str(), "invalid_credentials", "-"),
            ("auth.login", &admin_email, "success", "-"),
            ("job.trigger", &admin_email, "success", "default/greet"),
            ("job.trigger", &admin_email, "invalid_input", "default/greet"),
            ("job.trigger", &admin_email, "success", "default/wait"),
            ("job.cancel", &admin_email, "success", waiting.as_str()),
            ("user.create", &admin_email, "success", ada.as_str()),
            ("user.groups", &admin_email, "success", ada.as_str()),
            ("user.admin", &admin_email, "success", ada.as_str()),
            ("api_key.create", &admin_email, "success", prefix.as_str()),
            ("api_key.revoke", &admin_email, "success", prefix.as_str()),
            ("auth.refresh", &admin_email, "success", "-"),
            ("auth.refresh", "-", "refresh_token_reused", "-"),
            ("job.cancel", "-", "unauthorized", "00000000-0000-0000-0000-000000000000"),
            ("user.delete", &admin_email, "success", ada.as_str()),
            ("auth.logout", &admin_email, "success", "-"),
        ]
        .iter()
        .map(|(a, b, c, d)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned(), (*d).to_owned()))
        .collect();
        assert_eq!(rows(&entries), expected);
        let trigger = entries
            .as_array()
            .expect("list")
            .iter()
            .find(|entry| entry["target"] == "default/greet" && entry["outcome"] == "success")
            .expect("the trigger");
        assert_eq!(trigger["source_ip"], "203.0.113.7");
        assert_eq!(trigger["via"], "jwt");
        assert!(trigger["request_id"].is_string());
        let login_entry = &entries[entries.as_array().expect("list").len() - 1];
        assert_eq!(login_entry["source_ip"], "127.0.0.1");
        let job_detail = admin.get(&format!("/api/jobs/{job}")).await.json();
        assert_eq!(job_detail["source_id"], ADMIN.0);

        // Filters and pages.
        let logins = admin.get("/api/audit?action=auth.").await;
        assert_eq!(logins.headers["x-total-count"], "5");
        let by_actor = admin.get(&format!("/api/audit?actor={}&action=job.trigger&limit=1", ADMIN.0)).await;
        assert_eq!((by_actor.headers["x-total-count"].as_str(), by_actor.json().as_array().map(Vec::len)), ("3", Some(1)));
        let future = admin.get("/api/audit?since=2999-01-01T00:00:00Z").await;
        assert_eq!(future.headers["x-total-count"], "0");
        let bad = admin.get("/api/audit?since=yesterday").await;
        assert_eq!((bad.status, bad.json()["field"].as_str()), (400, Some("since")));
    }
}
