//! Sign-in with the seed README's configuration, token rotation and reuse detection, sign-out,
//! password changes, API keys and the admin routes (API §5.2–§5.5), on both backends.

use std::time::Instant;

use serde_json::json;

use super::{ADMIN, As, SEED_AUTH, code, login, try_login};
use crate::server_harness::{Home, serve_test};

const WORKSPACE: &str = r#"
tasks:
  hello:
    flow:
      say:
        type: script
        script: echo hello
triggers:
  ping: { type: webhook, task: hello }
"#;

const WORKER_TOKEN: &str = "a-worker-token-of-more-than-32-characters";

/// The seed snippet plus a workspace and a worker token.
fn configure(home: &Home) {
    let workspace = home.workspace(WORKSPACE);
    home.configure(&format!(
        "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\nworker_token: {WORKER_TOKEN}\n{SEED_AUTH}",
        workspace.display()
    ));
}

serve_test! {
    async fn the_seed_snippet_signs_in_refreshes_and_detects_reuse(backend) {
        let home = Home::new(backend).await;
        configure(&home);
        let server = home.start().await;

        let config = server.get("/api/config").await.json();
        assert_eq!(config["auth_required"], true);
        assert_eq!(config["has_internal_auth"], true);
        assert_eq!(config["oidc_providers"], json!([]));
        let anonymous = server.get("/api/jobs").await;
        assert_eq!((anonymous.status, code(&anonymous).as_str()), (401, "unauthorized"));
        assert_eq!(anonymous.headers.get("www-authenticate").map(String::as_str), Some("Bearer"));

        let reply = try_login(&server, ADMIN.0, ADMIN.1).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let cookie = reply.headers.get("set-cookie").expect("refresh cookie").clone();
        let first = reply.json();
        assert_eq!(first["token_type"], "Bearer");
        assert_eq!(first["expires_in"], 900);
        let r1 = first["refresh_token"].as_str().expect("refresh token").to_owned();
        assert_eq!(
            cookie,
            format!("stroem_refresh={r1}; HttpOnly; SameSite=Strict; Path=/api/auth; Max-Age=2592000; Secure")
        );
        let admin = As::new(&server, first["access_token"].as_str().expect("access"));
        let me = admin.get("/api/auth/me").await.json();
        assert_eq!(me["email"], ADMIN.0);
        assert_eq!(me["is_admin"], true);
        assert_eq!(me["auth_methods"], json!(["password"]));

        // Rotation by body, then by cookie; each answer sets the rotated cookie.
        let rotated = server
            .post_json("/api/auth/refresh", &json!({"refresh_token": r1}).to_string())
            .await;
        assert_eq!(rotated.status, 200, "{}", rotated.body);
        let r2 = rotated.json()["refresh_token"].as_str().expect("r2").to_owned();
        assert_ne!(r1, r2);
        assert!(rotated.headers["set-cookie"].starts_with(&format!("stroem_refresh={r2};")));
        let by_cookie = server
            .call("POST", "/api/auth/refresh", &[("Cookie", &format!("other=1; stroem_refresh={r2}"))], None)
            .await;
        assert_eq!(by_cookie.status, 200, "{}", by_cookie.body);
        let r3 = by_cookie.json()["refresh_token"].as_str().expect("r3").to_owned();
        let fresh = As::new(&server, by_cookie.json()["access_token"].as_str().expect("access"));
        assert_eq!(fresh.get("/api/jobs").await.status, 200);

        // The first token again: reuse, and the whole family is revoked.
        let reused = server
            .post_json("/api/auth/refresh", &json!({"refresh_token": r1}).to_string())
            .await;
        assert_eq!((reused.status, code(&reused).as_str()), (401, "refresh_token_reused"));
        let revoked = server
            .post_json("/api/auth/refresh", &json!({"refresh_token": r3}).to_string())
            .await;
        assert_eq!((revoked.status, code(&revoked).as_str()), (401, "unauthorized"));

        // Logout revokes the family (and answers ok for unknown tokens too).
        let r4 = login(&server, ADMIN.0, ADMIN.1).await["refresh_token"].as_str().expect("r4").to_owned();
        let out = server.post_json("/api/auth/logout", &json!({"refresh_token": r4}).to_string()).await;
        assert_eq!((out.status, out.json()), (200, json!({"status": "ok"})));
        assert!(out.headers["set-cookie"].contains("Max-Age=0"));
        let after = server.post_json("/api/auth/refresh", &json!({"refresh_token": r4}).to_string()).await;
        assert_eq!(after.status, 401);
        let unknown = server.post_json("/api/auth/logout", &json!({"refresh_token": "nope"}).to_string()).await;
        assert_eq!(unknown.status, 200);
    }
}

serve_test! {
    async fn wrong_passwords_and_unknown_emails_get_the_same_answer_and_are_rate_limited(backend) {
        let home = Home::new(backend).await;
        configure(&home);
        let server = home.start().await;
        let wrong = try_login(&server, ADMIN.0, "not-the-password").await;
        let unknown = try_login(&server, "nobody@example.test", "not-the-password").await;
        assert_eq!(wrong.status, 401);
        assert_eq!((wrong.status, wrong.json()), (unknown.status, unknown.json()));
        assert_eq!(code(&wrong), "invalid_credentials");
        // Burst 10 per client address, then one per 3 s (API §1.6); two were used above. Each
        // attempt hashes a password, which takes seconds on a loaded machine, so the bucket may
        // refill a little meanwhile: the bound counts what the elapsed time allows.
        let started = Instant::now();
        let mut answered = 2;
        let limited = loop {
            let attempt = try_login(&server, ADMIN.0, "nope").await;
            if attempt.status != 401 {
                break attempt;
            }
            answered += 1;
            let allowed = 10 + started.elapsed().as_secs() / 3 + 1;
            assert!(answered <= allowed, "{answered} logins answered, {allowed} allowed");
        };
        assert_eq!((limited.status, code(&limited).as_str()), (429, "rate_limited"));
        let retry: u64 = limited.headers["retry-after"].parse().expect("seconds");
        assert!((1..=3).contains(&retry), "{retry}");
        assert_eq!(limited.json()["retry_after_secs"], retry);
    }
}

serve_test! {
    async fn a_password_change_signs_out_every_session(backend) {
        let home = Home::new(backend).await;
        configure(&home);
        let server = home.start().await;
        let admin = As::login(&server, ADMIN.0, ADMIN.1).await;
        admin.create_user("ada@example.test", "ada-password-1", &[]).await;
        let one = login(&server, "ada@example.test", "ada-password-1").await;
        let two = login(&server, "ada@example.test", "ada-password-1").await;
        let ada = As::new(&server, one["access_token"].as_str().expect("access"));

        let short = ada.post("/api/auth/password", &json!({"current_password": "ada-password-1", "new_password": "short"})).await;
        assert_eq!((short.status, short.json()["field"].as_str()), (400, Some("new_password")));
        let wrong = ada.post("/api/auth/password", &json!({"current_password": "guess", "new_password": "ada-password-2"})).await;
        assert_eq!((wrong.status, code(&wrong).as_str()), (401, "invalid_credentials"));
        // Refusals changed nothing: both sessions still refresh.
        let changed = ada.post("/api/auth/password", &json!({"current_password": "ada-password-1", "new_password": "ada-password-2"})).await;
        assert_eq!(changed.status, 200, "{}", changed.body);
        for session in [&one, &two] {
            let refresh = server
                .post_json("/api/auth/refresh", &json!({"refresh_token": session["refresh_token"]}).to_string())
                .await;
            assert_eq!(refresh.status, 401, "{}", refresh.body);
        }
        assert_eq!(try_login(&server, "ada@example.test", "ada-password-1").await.status, 401);
        login(&server, "ADA@example.test", "ada-password-2").await;

        // An admin's reset does the same.
        let three = login(&server, "ada@example.test", "ada-password-2").await;
        let id = ada.get("/api/auth/me").await.json()["user_id"].as_str().expect("id").to_owned();
        let reset = admin.put(&format!("/api/users/{id}/password"), &json!({"password": "ada-password-3"})).await;
        assert_eq!(reset.status, 200, "{}", reset.body);
        let refresh = server
            .post_json("/api/auth/refresh", &json!({"refresh_token": three["refresh_token"]}).to_string())
            .await;
        assert_eq!(refresh.status, 401);
    }
}

serve_test! {
    async fn api_keys_act_as_their_owner_until_revoked_or_expired(backend) {
        let home = Home::new(backend).await;
        configure(&home);
        let server = home.start().await;
        let admin = As::login(&server, ADMIN.0, ADMIN.1).await;
        let ada_id = admin.create_user("ada@example.test", "ada-password-1", &["ops"]).await;
        let ada = As::login(&server, "ada@example.test", "ada-password-1").await;

        assert_eq!(ada.post("/api/auth/api-keys", &json!({"name": " "})).await.status, 400);
        let created = ada.post("/api/auth/api-keys", &json!({"name": "ci", "expires_in_days": 30})).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let created = created.json();
        let key = created["key"].as_str().expect("key").to_owned();
        assert!(key.starts_with("strm_") && key.len() == 37, "{key}");
        assert_eq!(created["prefix"].as_str(), Some(&key[..12]));
        let clash = ada.post("/api/auth/api-keys", &json!({"name": "ci"})).await;
        assert_eq!((clash.status, clash.json()["field"].as_str()), (409, Some("name")));

        let listed = ada.get("/api/auth/api-keys").await.json();
        assert_eq!(listed[0]["name"], "ci");
        assert_eq!(listed[0]["last_used_at"], serde_json::Value::Null);
        assert!(listed[0].get("key").is_none(), "{listed}");

        let by_key = As::new(&server, key.clone());
        let me = by_key.get("/api/auth/me").await.json();
        assert_eq!(me["email"], "ada@example.test");
        assert!(ada.get("/api/auth/api-keys").await.json()[0]["last_used_at"].is_string());
        // Keys are made only with a signed-in session.
        assert_eq!(by_key.post("/api/auth/api-keys", &json!({"name": "other"})).await.status, 403);

        // Jobs record who started them.
        let job = by_key.post("/api/workspaces/default/tasks/hello/execute", &json!({})).await;
        assert_eq!(job.status, 200, "{}", job.body);
        let job_id = job.json()["job_id"].as_str().expect("id").to_owned();
        let detail = by_key.get(&format!("/api/jobs/{job_id}")).await.json();
        assert_eq!(detail["source_type"], "user");
        assert_eq!(detail["source_id"], format!("api-key:{}", &key[..12]));
        let job = ada.post("/api/workspaces/default/tasks/hello/execute", &json!({})).await.json();
        let detail = ada.get(&format!("/api/jobs/{}", job["job_id"].as_str().expect("id"))).await.json();
        assert_eq!(detail["source_id"], "ada@example.test");

        // The owner's current admin flag.
        assert_eq!(by_key.get("/api/users").await.status, 403);
        assert_eq!(admin.put(&format!("/api/users/{ada_id}/admin"), &json!({"is_admin": true})).await.status, 200);
        assert_eq!(by_key.get("/api/users").await.status, 200);

        // Only the owner revokes; then the key is dead.
        assert_eq!(admin.delete(&format!("/api/auth/api-keys/{}", &key[..12])).await.status, 404);
        assert_eq!(ada.delete(&format!("/api/auth/api-keys/{}", &key[..12])).await.status, 204);
        assert_eq!(by_key.get("/api/auth/me").await.status, 401);
        assert_eq!(ada.delete(&format!("/api/auth/api-keys/{}", &key[..12])).await.status, 404);

        // An expired key is refused.
        let store = server.orchestrator().store();
        let expired = stroem::auth::token::new_api_key();
        store
            .create_api_key(
                &stroem::store::ApiKeyRecord {
                    prefix: expired[..12].to_owned(),
                    user_id: ada_id.parse().expect("uuid"),
                    name: "old".to_owned(),
                    created_at: chrono::Utc::now() - chrono::TimeDelta::days(2),
                    expires_at: Some(chrono::Utc::now() - chrono::TimeDelta::days(1)),
                    last_used_at: None,
                },
                &stroem::auth::token::api_key_hash(&expired),
            )
            .await
            .expect("stored");
        assert_eq!(As::new(&server, expired).get("/api/auth/me").await.status, 401);
    }
}

serve_test! {
    async fn users_and_groups_are_for_admins(backend) {
        let home = Home::new(backend).await;
        configure(&home);
        let server = home.start().await;
        let admin = As::login(&server, ADMIN.0, ADMIN.1).await;
        let admin_id = admin.get("/api/auth/me").await.json()["user_id"].as_str().expect("id").to_owned();
        let ada_id = admin.create_user("Ada@Example.test", "ada-password-1", &["ops", "dev"]).await;
        let ada = As::login(&server, "ada@example.test", "ada-password-1").await;
        for path in ["/api/users", "/api/groups", "/api/audit", &format!("/api/users/{admin_id}")] {
            let reply = ada.get(path).await;
            assert_eq!((reply.status, code(&reply).as_str()), (403, "forbidden"), "{path}");
        }
        let refused = ada.post("/api/users", &json!({"email": "eve@example.test"})).await;
        assert_eq!(refused.status, 403);

        let list = admin.get("/api/users?limit=1").await;
        assert_eq!(list.headers["x-total-count"], "2");
        assert_eq!(list.json()[0]["email"], "ada@example.test");
        let duplicate = admin.post("/api/users", &json!({"email": "ADA@example.test"})).await;
        assert_eq!((duplicate.status, duplicate.json()["field"].as_str()), (409, Some("email")));
        let bad = admin.post("/api/users", &json!({"email": "x@example.test", "groups": ["no spaces"]})).await;
        assert_eq!((bad.status, bad.json()["field"].as_str()), (400, Some("groups[0]")));
        let oidc_only = admin.post("/api/users", &json!({"email": "sso@example.test"})).await;
        assert_eq!(oidc_only.status, 201);
        assert_eq!(oidc_only.json()["auth_methods"], json!([]));

        assert_eq!(admin.get("/api/groups").await.json(), json!(["dev", "ops"]));
        let groups = admin.put(&format!("/api/users/{ada_id}/groups"), &json!({"groups": ["qa"]})).await;
        assert_eq!(groups.json(), json!({"groups": ["qa"]}));
        assert_eq!(admin.get(&format!("/api/users/{ada_id}/groups")).await.json(), json!({"groups": ["qa"]}));

        let own = admin.put(&format!("/api/users/{admin_id}/admin"), &json!({"is_admin": false})).await;
        assert_eq!(own.status, 409);
        assert_eq!(admin.delete(&format!("/api/users/{admin_id}")).await.status, 409);

        let job = ada.post("/api/workspaces/default/tasks/hello/execute", &json!({})).await.json();
        assert_eq!(admin.delete(&format!("/api/users/{ada_id}")).await.status, 204);
        assert_eq!(ada.get("/api/auth/me").await.status, 401);
        let detail = admin.get(&format!("/api/jobs/{}", job["job_id"].as_str().expect("id"))).await.json();
        assert_eq!(detail["source_id"], "ada@example.test");
        assert_eq!(admin.get(&format!("/api/users/{ada_id}")).await.status, 404);
    }
}

serve_test! {
    async fn workers_and_webhooks_keep_their_own_credentials(backend) {
        let home = Home::new(backend).await;
        configure(&home);
        let server = home.start().await;
        let registration = json!({"name": "remote", "version": "0", "capabilities": ["script"], "max_concurrent": 1});
        let register = server
            .call("POST", "/worker/register", &[("Authorization", &format!("Bearer {WORKER_TOKEN}"))], Some(&registration.to_string()))
            .await;
        assert_eq!(register.status, 200, "{}", register.body);
        let hook = server.call("POST", "/hooks/ping", &[], Some("{}")).await;
        assert_eq!(hook.status, 202, "{}", hook.body);
        let admin = As::login(&server, ADMIN.0, ADMIN.1).await;
        let job = admin.get(&format!("/api/jobs/{}", hook.json()["job_id"].as_str().expect("id"))).await.json();
        assert_eq!(job["source_type"], "webhook");
    }
}

serve_test! {
    async fn without_auth_the_auth_routes_are_disabled_and_jobs_are_anonymous(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let server = home.start().await;
        for (method, path) in [("POST", "/api/auth/login"), ("GET", "/api/auth/me"), ("GET", "/api/users"), ("GET", "/api/audit")] {
            let body = (method == "POST").then_some(r#"{"email": "a", "password": "b"}"#);
            let reply = server.call(method, path, &[], body).await;
            assert_eq!((reply.status, code(&reply).as_str()), (404, "auth_disabled"), "{path}");
        }
        let config = server.get("/api/config").await.json();
        assert_eq!((config["auth_required"].clone(), config["has_internal_auth"].clone()), (json!(false), json!(false)));
        let id = server.execute("default", "hello", "{}").await;
        let job = server.job(id).await;
        assert_eq!((job["source_type"].clone(), job["source_id"].clone()), (json!("api"), serde_json::Value::Null));
    }
}

serve_test! {
    /// API §1.6: `auth.base_url`'s origin may call the API from a browser, with credentials:
    /// preflights are answered before sign-in, and every answer to it (a 401 included, so a
    /// page can see it must refresh) names it. Other origins get no CORS headers at all.
    async fn the_base_url_origin_may_call_the_api_across_origins(backend) {
        let home = Home::new(backend).await;
        configure(&home);
        let server = home.start().await;
        let base = "https://stroem.company.com";

        let preflight = server
            .send(
                "OPTIONS",
                "/api/workspaces/default/tasks/hello/execute",
                &[
                    ("Origin", base),
                    ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "authorization, content-type"),
                ],
                Vec::new(),
            )
            .await;
        assert_eq!(preflight.status, 204, "{}", preflight.body);
        let header = |reply: &crate::server_harness::Reply, name: &str| {
            reply.headers.get(name).cloned().unwrap_or_default()
        };
        assert_eq!(header(&preflight, "access-control-allow-origin"), base);
        assert_eq!(header(&preflight, "access-control-allow-credentials"), "true");
        assert!(header(&preflight, "access-control-allow-methods").contains("POST"));
        let allowed_headers = header(&preflight, "access-control-allow-headers").to_lowercase();
        assert!(allowed_headers.contains("authorization"), "{allowed_headers}");
        assert!(allowed_headers.contains("content-type"), "{allowed_headers}");

        let anonymous = server.send("GET", "/api/jobs", &[("Origin", base)], Vec::new()).await;
        assert_eq!(anonymous.status, 401, "{}", anonymous.body);
        assert_eq!(header(&anonymous, "access-control-allow-origin"), base);
        assert!(header(&anonymous, "vary").to_lowercase().contains("origin"));

        let token = login(&server, ADMIN.0, ADMIN.1).await["access_token"]
            .as_str()
            .expect("access token")
            .to_owned();
        let bearer = format!("Bearer {token}");
        let signed_in = server
            .send("GET", "/api/jobs", &[("Origin", base), ("Authorization", &bearer)], Vec::new())
            .await;
        assert_eq!(signed_in.status, 200, "{}", signed_in.body);
        assert_eq!(header(&signed_in, "access-control-allow-origin"), base);
        assert_eq!(header(&signed_in, "access-control-allow-credentials"), "true");

        for origin in ["https://evil.example", "null", "https://stroem.company.com.evil.example"] {
            let preflight = server
                .send(
                    "OPTIONS",
                    "/api/jobs",
                    &[("Origin", origin), ("Access-Control-Request-Method", "GET")],
                    Vec::new(),
                )
                .await;
            assert_ne!(preflight.status, 204, "{origin}: {}", preflight.body);
            assert!(!preflight.headers.contains_key("access-control-allow-origin"), "{origin}");
            let read = server
                .send("GET", "/api/jobs", &[("Origin", origin), ("Authorization", &bearer)], Vec::new())
                .await;
            assert!(!read.headers.contains_key("access-control-allow-origin"), "{origin}");
        }
        server.stop().await;
    }
}
