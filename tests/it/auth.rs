//! Authentication end to end (issue #12): a real `stroem serve` with an `auth` section, driven
//! over HTTP — sign-in, tokens and their rotation, API keys, admin routes, access rules, the
//! audit trail, OIDC through a real identity provider, and `stroem login`.

mod acl;
mod audit;
mod cli;
mod oidc;
mod sessions;

use serde_json::{Value, json};

use crate::server_harness::{Reply, Server};

/// The configuration snippet of the seed README, exactly as written there.
pub const SEED_AUTH: &str = r#"auth:
  jwt_secret: "your-jwt-secret"
  refresh_secret: "your-refresh-secret"
  base_url: "https://stroem.company.com"  # Required for OIDC
  providers:
    internal:
      provider_type: internal
  initial_user:
    email: admin@stroem.local
    password: admin
"#;

pub const ADMIN: (&str, &str) = ("admin@stroem.local", "admin");

/// How long a test job may take to finish.
pub const JOB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Signs in; panics unless it works. Returns the token reply.
pub async fn login(server: &Server, email: &str, password: &str) -> Value {
    let reply = try_login(server, email, password).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

pub async fn try_login(server: &Server, email: &str, password: &str) -> Reply {
    let body = json!({"email": email, "password": password}).to_string();
    server.post_json("/api/auth/login", &body).await
}

/// A bearer credential's requests.
pub struct As<'s> {
    pub server: &'s Server,
    pub token: String,
}

impl<'s> As<'s> {
    pub fn new(server: &'s Server, token: impl Into<String>) -> Self {
        As {
            server,
            token: token.into(),
        }
    }

    /// Signs `email` in and acts with the access token.
    pub async fn login(server: &'s Server, email: &str, password: &str) -> Self {
        let tokens = login(server, email, password).await;
        As::new(
            server,
            tokens["access_token"].as_str().expect("access token"),
        )
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.server
            .call("GET", path, &[("Authorization", &self.bearer())], None)
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.server
            .call(
                "POST",
                path,
                &[("Authorization", &self.bearer())],
                Some(&body.to_string()),
            )
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.server
            .call(
                "PUT",
                path,
                &[("Authorization", &self.bearer())],
                Some(&body.to_string()),
            )
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.server
            .call("DELETE", path, &[("Authorization", &self.bearer())], None)
            .await
    }

    /// Polls the job until it is terminal.
    pub async fn wait_finished(&self, id: &str) -> Value {
        let started = std::time::Instant::now();
        loop {
            let job = self.get(&format!("/api/jobs/{id}")).await.json();
            if ["completed", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or(""))
            {
                return job;
            }
            assert!(
                started.elapsed() < crate::auth::JOB_TIMEOUT,
                "job {id} did not finish: {job}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Creates a user through the admin API; returns its id.
    pub async fn create_user(&self, email: &str, password: &str, groups: &[&str]) -> String {
        let reply = self
            .post(
                "/api/users",
                &json!({"email": email, "password": password, "groups": groups}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.json()["user_id"]
            .as_str()
            .expect("user_id")
            .to_owned()
    }
}

/// The `error`/`code` of an error reply, for assertions.
pub fn code(reply: &Reply) -> String {
    reply.json()["code"].as_str().unwrap_or_default().to_owned()
}
