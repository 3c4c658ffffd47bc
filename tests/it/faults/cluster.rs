//! Real `stroem serve` and `stroem work` processes on one home directory, which can be killed
//! with SIGKILL and started again on the same data, database and port; and the checks every
//! fault scenario ends with.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stroem::store::{LeaseStatus, Store};
use uuid::Uuid;

use crate::server_harness::Backend;

pub const TOKEN: &str = "fault-suite-worker-token-long-enough";
/// Lease expiry as the fault servers configure it: short, so retries come soon.
pub const HEARTBEAT_TIMEOUT_SECS: u64 = 10;
/// Bound for a job to end across a crash, a restart and a lease expiry.
pub const END_WAIT: Duration = Duration::from_secs(90);
/// Bound for processes to start, answer or go.
pub const WAIT: Duration = Duration::from_secs(30);

/// A step that records its processes, and on its first attempt hangs; every attempt first
/// looks whether a process of an earlier attempt still runs (`overlap`).
pub const WORKSPACE: &str = r#"
tasks:
  hang:
    input:
      dir: { type: string, required: true }
    flow:
      s:
        type: script
        input: { dir: "{{ input.dir }}" }
        retry: { max_attempts: 3, delay: 0 }
        script: |
          alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
          for f in "$INPUT_DIR"/*.pid; do
            [ -e "$f" ] && alive "$(cat "$f")" && echo "$STROEM_ATTEMPT $f" >> "$INPUT_DIR"/overlap
          done
          if [ "$STROEM_ATTEMPT" = 1 ]; then
            sleep 300 > /dev/null &
            echo $! > "$INPUT_DIR"/child.pid
            echo $PPID > "$INPUT_DIR"/supervisor.pid
            echo $$ > "$INPUT_DIR"/step.pid.tmp && mv "$INPUT_DIR"/step.pid.tmp "$INPUT_DIR"/step.pid
            wait
          fi
          echo "attempt $STROEM_ATTEMPT done"
"#;

/// One home: a workspace, a database, a server and maybe a remote worker.
pub struct Cluster {
    pub home: tempfile::TempDir,
    pub db_url: String,
    pg_database: Option<String>,
    pub port: u16,
    pub server: Option<Child>,
    pub worker: Option<Child>,
    embedded: bool,
}

impl Cluster {
    /// A home whose server runs the embedded worker when `embedded`, else none (start a remote
    /// one with [`Cluster::start_worker`]).
    pub fn new(backend: Backend, embedded: bool) -> Cluster {
        let home = tempfile::tempdir().expect("home");
        let root = home.path();
        std::fs::create_dir_all(root.join("workspace/.workflows")).expect("mkdir");
        std::fs::write(root.join("workspace/.workflows/main.yaml"), WORKSPACE).expect("write");
        let (db_url, pg_database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", root.join("data/stroem.db").display()),
                None,
            ),
            Backend::Postgres => {
                let name = format!("stroem_faults_{}", Uuid::new_v4().simple());
                pg_admin(&format!("CREATE DATABASE {name}"));
                (format!("{PG_BASE}/{name}"), Some(name))
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let config = json!({
            "data_dir": root.join("data"),
            "listen": format!("127.0.0.1:{port}"),
            "db": {"url": db_url},
            "worker_token": TOKEN,
            "embedded_worker": embedded,
            "heartbeat_interval_secs": 1,
            "kill_grace_secs": 2,
            "poll_interval_secs": 1,
            "recovery": {"heartbeat_timeout_secs": HEARTBEAT_TIMEOUT_SECS, "sweep_interval_secs": 1},
            "workspaces": {"default": {"type": "folder", "path": root.join("workspace")}},
        });
        std::fs::write(root.join("stroem.yaml"), config.to_string()).expect("config");
        Cluster {
            home,
            db_url,
            pg_database,
            port,
            server: None,
            worker: None,
            embedded,
        }
    }

    pub fn root(&self) -> &Path {
        self.home.path()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stroem(&self, dir: &Path, log: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stroem"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root().join(log))
            .expect("log file");
        command
            .current_dir(dir)
            .env_remove("STROEM_CONFIG")
            .env_remove("STROEM_URL")
            .env_remove("STROEM_ROLE")
            .stdout(Stdio::null())
            .stderr(log);
        command
    }

    /// Starts `stroem serve` and waits until it answers.
    pub fn start_server(&mut self) {
        let since = chrono::Utc::now().timestamp_millis();
        let child = self
            .stroem(self.root(), "serve.log")
            .args(["serve", "-c", "stroem.yaml"])
            .spawn()
            .expect("stroem serve starts");
        self.server = Some(child);
        let url = format!("{}/api/config", self.url());
        let started = Instant::now();
        while http("GET", &url, None).is_none_or(|(status, _)| status != 200) {
            assert!(
                started.elapsed() < WAIT,
                "the server did not answer; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.embedded {
            self.wait_for_worker_since(since);
        }
    }

    /// Starts `stroem work` (data directory `<home>/worker`) and waits until it registered.
    pub fn start_worker(&mut self) {
        let url = self.url();
        self.start_worker_via(&url);
    }

    /// [`Cluster::start_worker`] reaching the server at `url` (a proxy).
    pub fn start_worker_via(&mut self, url: &str) {
        let dir = self.root().join("worker");
        std::fs::create_dir_all(&dir).expect("worker dir");
        let since = chrono::Utc::now().timestamp_millis();
        let child = self
            .stroem(&dir, "work.log")
            .args(["work", "-s", url, "--name", "faulty"])
            .env("STROEM__WORKER_TOKEN", TOKEN)
            .env("STROEM__DATA_DIR", &dir)
            .env("STROEM__HEARTBEAT_INTERVAL_SECS", "1")
            .env("STROEM__POLL_INTERVAL_SECS", "1")
            .env("STROEM__KILL_GRACE_SECS", "2")
            .spawn()
            .expect("stroem work starts");
        self.worker = Some(child);
        self.wait_for_worker_since(since);
    }

    /// Waits until a worker registered at `since` or later is active.
    fn wait_for_worker_since(&self, since: i64) {
        let url = format!("{}/api/workers", self.url());
        wait_until("a worker to register", WAIT, || {
            http("GET", &url, None).is_some_and(|(_, reply)| {
                reply.as_array().is_some_and(|workers| {
                    workers.iter().any(|worker| {
                        worker["status"] == "active"
                            && worker["registered_at"]
                                .as_str()
                                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                                .is_some_and(|at| at.timestamp_millis() >= since)
                    })
                })
            })
        });
    }

    /// SIGKILL to the server or the worker, reaped.
    pub fn kill9(process: &mut Option<Child>) {
        let mut child = process.take().expect("a running process");
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
    }

    /// Starts task `hang` with `dir` for its files; returns the job id.
    pub fn execute_hang(&self, dir: &Path) -> String {
        let (status, reply) = http(
            "POST",
            &format!("{}/api/workspaces/default/tasks/hang/execute", self.url()),
            Some(json!({"input": {"dir": dir}})),
        )
        .expect("execute answers");
        assert_eq!(status, 200, "{reply}");
        reply["job_id"].as_str().expect("job id").to_owned()
    }

    /// The job detail, once it has ended (within [`END_WAIT`]).
    pub fn ended_job(&self, id: &str) -> Value {
        let url = format!("{}/api/jobs/{id}", self.url());
        let mut last = Value::Null;
        let started = Instant::now();
        while started.elapsed() < END_WAIT {
            if let Some((200, job)) = http("GET", &url, None) {
                if job["completed_at"].is_string() {
                    return job;
                }
                last = job;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "job {id} did not end within {END_WAIT:?}: {last:#}\nlogs:\n{}",
            self.logs()
        );
    }

    pub fn logs(&self) -> String {
        ["serve.log", "work.log"]
            .iter()
            .map(|name| std::fs::read_to_string(self.root().join(name)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// The database agrees with the job's end: the job and each step finished, no lease still
    /// active, each attempt under one lease.
    pub fn assert_consistent(&self, id: &str) {
        let id: Uuid = id.parse().expect("uuid");
        let db_url = self.db_url.clone();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let store = Store::connect(&db_url, 2)
                .await
                .expect("the database opens");
            let job = store.get_job(id).await.expect("reads").expect("the job");
            assert!(job.is_finished(), "{:?}", job.status);
            for step in job.steps.iter() {
                assert!(
                    step.status.is_terminal(),
                    "{} {:?}",
                    step.step_name,
                    step.status
                );
            }
            let leases = store.job_leases(id).await.expect("leases read");
            for lease in &leases {
                assert!(
                    !matches!(lease.state, LeaseStatus::Active | LeaseStatus::Cancelling),
                    "a lease outlived its job: {lease:?}"
                );
            }
            let mut attempts: Vec<_> = leases
                .iter()
                .map(|lease| (&lease.step_name, lease.attempt))
                .collect();
            let all = attempts.len();
            attempts.sort();
            attempts.dedup();
            assert_eq!(attempts.len(), all, "one lease per attempt: {leases:?}");
            store.close().await;
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in [self.worker.as_mut(), self.server.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(name) = self.pg_database.take() {
            pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432";

/// One statement on the PostgreSQL server's `test` database.
pub fn pg_admin(statement: &str) {
    use sqlx::Connection;
    let statement = statement.to_owned();
    let run = async move {
        let mut conn = sqlx::PgConnection::connect(&format!("{PG_BASE}/test"))
            .await
            .expect("PostgreSQL at 127.0.0.1:5432");
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .expect("admin statement");
    };
    // Callable from inside a test's runtime too.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(run);
    })
    .join()
    .expect("admin thread");
}

/// A blocking JSON request; `None` when the server cannot be reached.
pub fn http(method: &str, url: &str, body: Option<Value>) -> Option<(u16, Value)> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    let response = match body {
        Some(body) => agent.post(url).send_json(body),
        None if method == "GET" => agent.get(url).call(),
        None => agent.post(url).send_empty(),
    };
    let mut response = response.ok()?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().ok()?;
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

pub fn wait_until(what: &str, bound: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < bound, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The pid a step wrote to `dir/name`, once it has.
pub fn pid(dir: &Path, name: &str) -> i32 {
    let path: PathBuf = dir.join(name);
    wait_until(&format!("{}", path.display()), WAIT, || path.exists());
    std::fs::read_to_string(&path)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid")
}
