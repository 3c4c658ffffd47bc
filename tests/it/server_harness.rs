//! A real `stroem serve` in-process for the serve tests: a home directory with a `stroem.yaml`,
//! a fresh database of either backend (a SQLite file, or a uniquely named PostgreSQL database
//! dropped afterwards), [`stroem::cli::serve::start`] on port 0, and a small blocking HTTP
//! client (ureq) run off the async threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use stroem::cli::serve::{Running, start};
use stroem::config::{Config, ConfigSource};
use stroem::orchestrator::Orchestrator;
use tempfile::TempDir;
use uuid::Uuid;

const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PG_BASE_URL: &str = "postgres://postgres@127.0.0.1:5432";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a server keeps its state: survives [`Server::stop`], so a second server started on
/// the same home sees the first one's jobs.
pub struct Home {
    dir: TempDir,
    db_url: String,
    pg_database: Option<String>,
}

impl Home {
    pub async fn new(backend: Backend) -> Home {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (db_url, pg_database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("data/stroem.db").display()),
                None,
            ),
            Backend::Postgres => {
                let name = format!("stroem_serve_{}", Uuid::new_v4().simple());
                pg_admin(&format!("CREATE DATABASE {name}")).await;
                (format!("{PG_BASE_URL}/{name}"), Some(name))
            }
        };
        Home {
            dir,
            db_url,
            pg_database,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The database URL the servers of this home use.
    pub fn db_url(&self) -> &str {
        &self.db_url
    }

    /// A scratch directory inside the home, for marker files steps write.
    pub fn scratch(&self) -> PathBuf {
        let path = self.path().join("scratch");
        std::fs::create_dir_all(&path).expect("scratch dir");
        path
    }

    /// Writes `<home>/workspace/.workflows/main.yaml`; returns the workspace folder.
    pub fn workspace(&self, yaml: &str) -> PathBuf {
        let root = self.path().join("workspace");
        std::fs::create_dir_all(root.join(".workflows")).expect("mkdir");
        std::fs::write(root.join(".workflows/main.yaml"), yaml).expect("write workflow");
        root
    }

    /// [`Home::configure`] serving the folder `workspace` as workspace `default`.
    pub fn configure_workspace(&self, workspace: &Path) {
        self.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}",
            workspace.display()
        ));
    }

    /// Writes `stroem.yaml`: the data dir, the database and fast test timings, plus `extra`
    /// (more top-level keys). Without `workspaces` in `extra`, the built-in example serves as
    /// workspace `default`, as on a zero-configuration start.
    /// `extra` may bring its own `recovery` section.
    pub fn configure(&self, extra: &str) {
        let recovery = if extra.contains("recovery:") {
            ""
        } else {
            "recovery:\n  heartbeat_timeout_secs: 10\n  sweep_interval_secs: 1\n"
        };
        let text = format!(
            "data_dir: {data}\ndb:\n  url: \"{url}\"\n  max_connections: 8\n\
             heartbeat_interval_secs: 1\nkill_grace_secs: 2\npoll_interval_secs: 1\n\
             shutdown_grace_secs: 1\n\
             {recovery}{extra}\n",
            data = self.path().join("data").display(),
            url = self.db_url,
        );
        std::fs::write(self.path().join("stroem.yaml"), text).expect("write stroem.yaml");
    }

    /// Loads `stroem.yaml` the way `stroem serve` does, with the home as working directory.
    pub fn config(&self) -> Config {
        Config::load(ConfigSource {
            config: None,
            env: BTreeMap::new(),
            cwd: self.path().to_owned(),
        })
        .expect("stroem.yaml loads")
    }

    /// Starts a real server on 127.0.0.1, port 0.
    pub async fn start(&self) -> Server {
        self.start_with_env(&[]).await
    }

    /// [`Home::start`] with more variables in the environment the server captures at start
    /// (the secrets' `env` context and the runner's environment).
    pub async fn start_with_env(&self, extra: &[(&str, &str)]) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        self.start_on(listener, extra).await
    }

    /// [`Home::start_with_env`] on a listener bound beforehand, for configurations that must
    /// name the server's own address (`auth.base_url`).
    pub async fn start_on(
        &self,
        listener: tokio::net::TcpListener,
        extra: &[(&str, &str)],
    ) -> Server {
        // The runner's environment (WF §11.1), as `stroem serve` captures it at start.
        let mut environment: BTreeMap<String, String> = std::env::vars().collect();
        environment.extend(
            extra
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        let running = start(self.config(), environment, listener)
            .await
            .expect("the server starts");
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build(),
        );
        Server {
            base: format!("http://{}", running.address),
            running: Some(running),
            agent,
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let Some(name) = self.pg_database.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on itself.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(pg_admin(&format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )));
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop a test database");
        }
    }
}

async fn pg_admin(statement: &str) {
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(PG_ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&admin)
        .await
        .expect("admin statement");
    admin.close().await;
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Reply {
    /// Status, headers and body of a ureq response, read to the end; a JSON body from `/api`
    /// must match the OpenAPI document (see [`crate::openapi_check`]).
    fn read(method: &str, path: &str, response: ureq::http::Response<ureq::Body>) -> Self {
        let reply = Reply::read_unchecked(response);
        crate::openapi_check::check(
            method,
            path,
            reply.status,
            reply.headers.get("content-type").map(String::as_str),
            &reply.body,
        );
        reply
    }

    fn read_unchecked(mut response: ureq::http::Response<ureq::Body>) -> Self {
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .read_to_string()
            .expect("a readable body");
        Self {
            status: response.status().as_u16(),
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

/// A running server and a client for it.
pub struct Server {
    running: Option<Running>,
    base: String,
    agent: ureq::Agent,
}

impl Server {
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.running.as_ref().expect("running").orchestrator
    }

    /// `127.0.0.1:<port>`, for tests that speak raw TCP or WebSocket.
    pub fn address(&self) -> std::net::SocketAddr {
        self.running.as_ref().expect("running").address
    }

    /// Stops the server as SIGTERM would, keeping its home.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None).await
    }

    pub async fn post_json(&self, path: &str, body: &str) -> Reply {
        self.request(
            "POST",
            path,
            Some(("application/json", body.as_bytes().to_vec())),
        )
        .await
    }

    pub async fn post_empty(&self, path: &str) -> Reply {
        self.request("POST", path, None).await
    }

    /// A request with any content type and body.
    pub async fn request(
        &self,
        method: &'static str,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        self.try_request(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("{method} {url}: {error}"))
    }

    /// [`Server::request`], with a transport failure as an error rather than a panic.
    pub async fn try_request(
        &self,
        method: &'static str,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Reply, ureq::Error> {
        let agent = self.agent.clone();
        let url = format!("{}{path}", self.base);
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let response = match (method, body) {
                ("GET", _) => agent.get(&url).call(),
                (_, Some((content_type, bytes))) => agent
                    .post(&url)
                    .header("Content-Type", content_type)
                    .send(&bytes[..]),
                (_, None) => agent.post(&url).send_empty(),
            };
            Ok(Reply::read(method, &path, response?))
        })
        .await
        .expect("the request thread")
    }

    /// A request with any method, headers and (JSON) body; never panics on an error status.
    pub async fn call(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        json: Option<&str>,
    ) -> Reply {
        let agent = self.agent.clone();
        let url = format!("{}{path}", self.base);
        let path = path.to_owned();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let body = json.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let request = ureq::http::Request::builder().method(method).uri(&url);
            let request = headers.iter().fold(request, |request, (name, value)| {
                request.header(name, value)
            });
            let response = match body {
                Some(body) => agent.run(
                    request
                        .header("Content-Type", "application/json")
                        .body(body)
                        .expect("request builds"),
                ),
                // A bodiless write still declares JSON, as the API asks of every write.
                None if method != "GET" => agent.run(
                    request
                        .header("Content-Type", "application/json")
                        .body(())
                        .expect("request builds"),
                ),
                None => agent.run(request.body(()).expect("request builds")),
            };
            Reply::read(
                method,
                &path,
                response.unwrap_or_else(|error| panic!("{method} {url}: {error}")),
            )
        })
        .await
        .expect("the request thread")
    }

    /// The server's base URL (`http://127.0.0.1:<port>`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request with any headers, for webhook senders: `GET` sends no body.
    pub async fn send(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let agent = self.agent.clone();
        let url = format!("{}{path}", self.base);
        let path = path.to_owned();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let response = if method == "GET" || method == "OPTIONS" {
                let mut request = if method == "GET" {
                    agent.get(&url)
                } else {
                    agent.options(&url)
                };
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                request.call()
            } else {
                let mut request = agent.post(&url);
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                request.send(&body[..])
            };
            Reply::read(
                method,
                &path,
                response.unwrap_or_else(|error| panic!("{method} {url}: {error}")),
            )
        })
        .await
        .expect("the request thread")
    }

    /// Creates a job and returns its id, asserting the documented 200 `{job_id, status}`.
    /// Tests whose first steps run on a worker check for `pending` themselves.
    pub async fn execute(&self, workspace: &str, task: &str, body: &str) -> Uuid {
        let reply = self
            .post_json(
                &format!("/api/workspaces/{workspace}/tasks/{task}/execute"),
                body,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let json = reply.json();
        // `running` at once when the first steps are server-dispatched (task steps, API §8.2).
        assert!(
            json["status"] == "pending" || json["status"] == "running",
            "{json}"
        );
        json["job_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no job_id in {json}"))
    }

    pub async fn job(&self, id: Uuid) -> Value {
        let reply = self.get(&format!("/api/jobs/{id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    /// Polls the job detail until `done` holds, failing after `timeout`.
    pub async fn wait_job(
        &self,
        id: Uuid,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            assert!(
                started.elapsed() < timeout,
                "job {id} did not reach the expected state within {timeout:?}: {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until the job is terminal.
    pub async fn wait_finished(&self, id: Uuid) -> Value {
        self.wait_job(id, Duration::from_secs(60), |job| {
            ["completed", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or(""))
        })
        .await
    }

    /// Polls until the job is terminal and its hooks were fired, so its detail no longer
    /// changes (`hooks_fired` turns true just after the status does, once the log is archived).
    pub async fn wait_settled(&self, id: Uuid) -> Value {
        self.wait_job(id, Duration::from_secs(60), |job| {
            job["hooks_fired"] == true
        })
        .await
    }
}

/// A step of a job detail by name.
pub fn step<'j>(job: &'j Value, name: &str) -> &'j Value {
    job["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["step_name"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {job:#}"))
}

/// The pid a step wrote to `pid_file` (a whole line, so never half-written), once it has.
pub async fn step_pid(pid_file: &Path) -> String {
    eventually("the step's process", Duration::from_secs(20), || async {
        std::fs::read_to_string(pid_file).is_ok_and(|pid| pid.ends_with('\n'))
    })
    .await;
    std::fs::read_to_string(pid_file)
        .expect("pid")
        .trim()
        .to_owned()
}

/// Waits for an async condition, polling every 50 ms.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Defines `mod $name { fn sqlite(); fn postgres(); }` running one body on each backend.
macro_rules! serve_test {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::server_harness::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::server_harness::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::server_harness::Backend::Postgres).await;
            }
        }
    };
}
pub(crate) use serve_test;
