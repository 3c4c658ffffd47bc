//! Short job ids (issue #15 item 13): every `/api` route that takes a job id accepts the
//! 8-character id the UI shows (the id's last 8 hex digits) and any longer unique start or end
//! of the id; 404 when nothing matches, 400 `ambiguous` naming the candidates when several do.

use serde_json::Value;
use uuid::Uuid;

use crate::server_harness::{Home, serve_test};

const WORKSPACE: &str = r#"
tasks:
  quick:
    flow:
      say:
        type: script
        script: echo short ids
triggers:
  kick: { type: webhook, task: quick }
"#;

fn hex(id: Uuid) -> String {
    id.simple().to_string()
}

/// The longest common start of two ids' hex digits.
fn common_start(a: Uuid, b: Uuid) -> String {
    hex(a)
        .chars()
        .zip(hex(b).chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

serve_test! {
    async fn routes_resolve_short_and_partial_job_ids(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let server = home.start().await;
        let first = server.execute("default", "quick", "{}").await;
        server.wait_finished(first).await;
        let digits = hex(first);
        let short = &digits[24..];

        // The UI's short id, the id's start, and a dashed start all name the job.
        for part in [short, &digits[..8], &first.to_string()[..13], &digits[..]] {
            let reply = server.get(&format!("/api/jobs/{part}")).await;
            assert_eq!(reply.status, 200, "{part}: {}", reply.body);
            assert_eq!(reply.json()["job_id"], first.to_string(), "{part}");
        }
        let reply = server.get(&format!("/api/jobs/{short}/logs")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.json()["logs"].as_str().unwrap_or("").contains("short ids"));
        let reply = server.get(&format!("/api/jobs/{short}/steps/say/logs")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.json()["logs"].as_str().unwrap_or("").contains("short ids"));
        // Cancel resolves the id too: the job has ended, so the answer is 409 naming it.
        let reply = server.post_json(&format!("/api/jobs/{short}/cancel"), "").await;
        assert_eq!(reply.status, 409, "{}", reply.body);
        assert!(reply.body.contains(&first.to_string()), "{}", reply.body);

        // A second job created moments later shares the start of the id (UUIDv7 begins with
        // the time): the shared start matches both.
        let second = server.execute("default", "quick", "{}").await;
        server.wait_finished(second).await;
        let shared = common_start(first, second);
        assert!(shared.len() >= 4, "{first} {second}");
        let reply = server.get(&format!("/api/jobs/{shared}")).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        let body: Value = reply.json();
        assert_eq!(body["code"], "ambiguous", "{body}");
        assert_eq!(body["field"], "id", "{body}");
        let error = body["error"].as_str().unwrap_or("");
        for id in [first, second] {
            assert!(error.contains(&id.to_string()), "{error}");
        }
        let mut candidates: Vec<String> = serde_json::from_value(body["candidates"].clone())
            .unwrap_or_else(|_| panic!("candidates: {body}"));
        candidates.sort();
        let mut want = vec![first.to_string(), second.to_string()];
        want.sort();
        assert_eq!(candidates, want);
        // One digit past the shared start tells them apart.
        let longer = &digits[..shared.len() + 1];
        let reply = server.get(&format!("/api/jobs/{longer}")).await;
        assert_eq!(reply.status, 200, "{longer}: {}", reply.body);
        assert_eq!(reply.json()["job_id"], first.to_string());

        // Nothing matches: 404 naming what was asked for.
        let none = ["00000000", "ffffffff"]
            .into_iter()
            .find(|part| {
                ![first, second].iter().any(|id| {
                    let digits = hex(*id);
                    digits.starts_with(part) || digits.ends_with(part)
                })
            })
            .expect("a part that matches neither job");
        let reply = server.get(&format!("/api/jobs/{none}")).await;
        assert_eq!(reply.status, 404, "{}", reply.body);
        assert_eq!(reply.json()["code"], "not_found");
        assert!(reply.body.contains(none), "{}", reply.body);

        // The webhook's job route takes the short id as well.
        let reply = server.post_json("/hooks/kick", "{}").await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let hooked: Uuid = reply.json()["job_id"].as_str().and_then(|id| id.parse().ok()).expect("job id");
        let reply = server.get(&format!("/hooks/kick/jobs/{}", &hex(hooked)[24..])).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["job_id"], hooked.to_string());

        // Too short or not hex: 400 naming the parameter.
        for bad in ["abc", "not-an-id", "0123456789abcdef0123456789abcdef0"] {
            let reply = server.get(&format!("/api/jobs/{bad}")).await;
            assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
            assert_eq!(reply.json()["field"], "id", "{bad}: {}", reply.body);
        }
        server.stop().await;
    }
}
