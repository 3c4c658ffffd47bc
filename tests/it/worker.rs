//! Remote workers end to end (API §7): a real server in-process on port 0 without its embedded
//! worker, and real `stroem work` processes talking to it over HTTP.

#[cfg(feature = "docker")]
mod docker;
#[cfg(feature = "kubernetes")]
mod kubernetes;
mod local_mode;
mod replicas;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use stroem::cli::serve::{Running, start};
use stroem::config::{Config, ConfigSource};
use stroem::engine::{JobState, JobStatus, StepStatus};
use stroem::orchestrator::JobSource;
use uuid::Uuid;

const TOKEN: &str = "a-worker-token-long-enough-for-no-warning";
/// Bound for waits that need no lease expiry.
const WAIT: Duration = Duration::from_secs(30);
/// Bound for waits across a lease expiry (`heartbeat_timeout_secs` 10, sweep every 1 s).
const EXPIRY_WAIT: Duration = Duration::from_secs(60);

const WORKFLOWS: &str = r#"
secrets:
  token: container-secret-value
tasks:
  spread:
    flow:
      s1: { type: script, script: "cat data.txt; sleep 0.5" }
      s2: { type: script, script: "cat data.txt; sleep 0.5" }
      s3: { type: script, script: "cat data.txt; sleep 0.5" }
      s4: { type: script, script: "cat data.txt; sleep 0.5" }
  lose:
    input:
      dir: { type: string, required: true }
    flow:
      retried:
        type: script
        input: { dir: "{{ input.dir }}" }
        retry: { max_attempts: 2, delay: 0 }
        script: |
          if [ "$STROEM_ATTEMPT" = 1 ]; then echo $$ > "$INPUT_DIR"/retried.pid; exec sleep 120; fi
          echo second attempt
      lost:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          echo $$ > "$INPUT_DIR"/lost.pid; exec sleep 120
  hang:
    input:
      dir: { type: string, required: true }
    flow:
      long:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          sleep 300 &
          echo $! > "$INPUT_DIR"/grandchild.pid
          wait
  quick:
    flow:
      only: { type: script, script: "echo hi" }
  pinned:
    mode: local
    input:
      dir: { type: string, required: true }
    flow:
      write:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          echo "written by step one" > shared.txt
          pwd >> "$INPUT_DIR"/workdirs.txt
      read:
        type: script
        depends_on: [write]
        script: cat shared.txt; sleep 0.3
      again:
        type: script
        depends_on: [write]
        script: cat shared.txt; sleep 0.3
      last:
        type: script
        depends_on: [read, again]
        script: cat shared.txt; cat data.txt
  stranded:
    mode: local
    input:
      dir: { type: string, required: true }
    flow:
      hold:
        type: script
        input: { dir: "{{ input.dir }}" }
        retry: { max_attempts: 3, delay: 0 }
        script: |
          echo $$ > "$INPUT_DIR"/hold.pid; exec sleep 120
      after:
        type: script
        depends_on: [hold]
        script: echo never
  containers:
    flow:
      produce:
        type: docker
        image: localhost/stroem-test:latest
        env: { TOKEN: "{{ secret.token }}" }
        cmd: 'echo "token=$TOKEN"; echo "{\"n\": 41}" > "$STROEM_OUTPUT"'
      consume:
        depends_on: [produce]
        input: { n: "{{ produce.output.n }}" }
        action:
          type: script
          runner: docker
          image: localhost/stroem-test:latest
          input: { n: { type: integer } }
          script: |
            cat data.txt
            echo "OUTPUT: {\"m\": $((INPUT_N + 1))}"
  in-pods:
    flow:
      fetch:
        type: script
        runner: pod
        image: alpine:3.20
        env: { TOKEN: "{{ secret.token }}" }
        script: cat data.txt
      report:
        depends_on: [fetch]
        input: { line: "{{ fetch.output.line }}" }
        action:
          type: pod
          image: busybox:1.36
          input: { line: { type: string } }
          cmd: 'echo "$INPUT_LINE"'
  pod_sleep:
    flow:
      sleeper:
        type: pod
        image: busybox:1.36
        cmd: "exec sleep 300"
  container_sleep:
    flow:
      sleeper:
        type: docker
        image: localhost/stroem-test:latest
        cmd: "echo up; exec sleep 300"
  requeue:
    flow:
      again:
        type: script
        retry: { max_attempts: 2, delay: 0 }
        script: "echo attempt $STROEM_ATTEMPT"
  restart:
    input:
      dir: { type: string, required: true }
    flow:
      slow:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          echo run >> "$INPUT_DIR"/runs.txt
          echo $$ > "$INPUT_DIR"/slow.pid
          sleep 2
          echo finished
          touch "$INPUT_DIR"/done
"#;

/// Which database the server uses.
enum Backend {
    Sqlite,
    Postgres,
}

/// A server on a fresh database and workspace, and the workers started against it.
struct Harness {
    dir: tempfile::TempDir,
    db_url: String,
    server: Option<Running>,
    workers: Vec<Worker>,
    pg_database: Option<String>,
}

/// One `stroem work` process; killed when dropped.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432";

impl Harness {
    async fn start(backend: Backend) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = dir.path().join("workspace");
        std::fs::create_dir_all(workspace.join(".workflows")).expect("mkdir");
        std::fs::write(workspace.join(".workflows/w.yaml"), WORKFLOWS).expect("write");
        std::fs::write(workspace.join("data.txt"), "from the revision tarball\n").expect("write");
        let (db_url, pg_database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("server/stroem.db").display()),
                None,
            ),
            Backend::Postgres => {
                let name = format!("stroem_worker_{}", Uuid::new_v4().simple());
                admin(&format!("CREATE DATABASE {name}")).await;
                (format!("{PG_URL}/{name}"), Some(name))
            }
        };
        let mut harness = Harness {
            dir,
            db_url,
            server: None,
            workers: Vec::new(),
            pg_database,
        };
        harness.server = Some(harness.boot("server", "127.0.0.1:0").await);
        harness
    }

    /// Starts a server on the harness's database and workspace, with its own data directory
    /// `data` (logs, revision snapshots), listening on `address`.
    async fn boot(&self, data: &str, address: &str) -> Running {
        let config_file = self.dir.path().join(format!("{data}.yaml"));
        let config_text = json!({
            "data_dir": self.dir.path().join(data),
            "db": {"url": self.db_url},
            "workspaces": {"default": {"type": "folder", "path": self.dir.path().join("workspace")}},
            "embedded_worker": false,
            "worker_token": TOKEN,
            "recovery": {"heartbeat_timeout_secs": 10, "sweep_interval_secs": 1},
        });
        std::fs::write(&config_file, config_text.to_string()).expect("write config");
        let config = Config::load(ConfigSource {
            config: Some(config_file),
            env: BTreeMap::new(),
            cwd: self.dir.path().to_owned(),
        })
        .expect("config loads");
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .expect("binds the server address");
        start(config, BTreeMap::new(), listener)
            .await
            .expect("server starts")
    }

    fn server(&self) -> &Running {
        self.server.as_ref().expect("server running")
    }

    fn url(&self) -> String {
        format!("http://{}", self.server().address)
    }

    /// Starts `stroem work` with its own data directory (and so its own revision cache).
    fn worker(&mut self, name: &str, slots: u32) -> usize {
        let url = self.url();
        self.worker_of(&url, name, slots)
    }

    /// Starts `stroem work` against the server at `url`.
    fn worker_of(&mut self, url: &str, name: &str, slots: u32) -> usize {
        self.worker_with(url, name, slots, &[])
    }

    /// Starts `stroem work` with extra environment variables (configuration keys). A worker
    /// started again under the same name reuses its data directory.
    fn worker_with(&mut self, url: &str, name: &str, slots: u32, env: &[(&str, &str)]) -> usize {
        let home = self.dir.path().join(name);
        std::fs::create_dir_all(&home).expect("mkdir");
        let log = home.join("worker.log");
        let child = Command::new(env!("CARGO_BIN_EXE_stroem"))
            .args(["work", "-s", url, "--name", name])
            .args(["--max-concurrent", &slots.to_string()])
            .current_dir(&home)
            .env("STROEM__WORKER_TOKEN", TOKEN)
            .env("STROEM__DATA_DIR", &home)
            .env("STROEM__HEARTBEAT_INTERVAL_SECS", "1")
            .env("STROEM__POLL_INTERVAL_SECS", "1")
            .env("STROEM__SHUTDOWN_GRACE_SECS", "1")
            .envs(env.iter().copied())
            .env_remove("STROEM_CONFIG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("stroem work starts");
        self.workers.push(Worker { child, log });
        self.workers.len() - 1
    }

    fn worker_logs(&self) -> String {
        self.workers
            .iter()
            .map(|worker| std::fs::read_to_string(&worker.log).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    async fn create(&self, task: &str, input: Value) -> Uuid {
        self.server()
            .orchestrator
            .create_job("default", task, input, JobSource::api())
            .await
            .expect("job created")
            .id
    }

    async fn job(&self, id: Uuid) -> JobState {
        self.server()
            .orchestrator
            .store()
            .get_job(id)
            .await
            .expect("store reads")
            .expect("job exists")
    }

    /// Waits until the job is terminal.
    async fn finished(&self, id: Uuid, within: Duration) -> JobState {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let job = self.job(id).await;
            if job.is_finished() {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} still {:?}; workers said:\n{}",
                job.status,
                self.worker_logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The workers that held leases of the job.
    async fn lease_holders(&self, id: Uuid) -> BTreeSet<Uuid> {
        self.server()
            .orchestrator
            .store()
            .job_leases(id)
            .await
            .expect("leases read")
            .into_iter()
            .map(|lease| lease.worker_id)
            .collect()
    }

    async fn stop(mut self) {
        self.workers.clear();
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        if let Some(name) = self.pg_database.take() {
            admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

async fn admin(sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&format!("{PG_URL}/test"))
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("admin statement");
}

/// Waits for a file a step of job `id` writes (a pid), and returns its content.
async fn pid_file(harness: &Harness, id: Uuid, path: &Path) -> i32 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        if tokio::time::Instant::now() >= deadline {
            let job = harness.job(id).await;
            let steps: Vec<_> = job
                .steps
                .iter()
                .map(|step| (&step.step_name, step.status, &step.error_message))
                .collect();
            panic!(
                "{} never written; steps {steps:?}; workers said:\n{}",
                path.display(),
                harness.worker_logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

async fn jobs_spread_over_two_workers(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    harness.worker("w1", 1);
    harness.worker("w2", 1);
    let id = harness.create("spread", json!({})).await;
    let job = harness.finished(id, WAIT).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(
        harness.lease_holders(id).await.len(),
        2,
        "both workers ran steps"
    );
    let lines = harness
        .server()
        .orchestrator
        .logs()
        .read(id, 0, 100, None)
        .expect("logs read");
    let from_tarball = lines
        .iter()
        .filter(|line| line.line == "from the revision tarball")
        .count();
    assert_eq!(from_tarball, 4, "every step read the workspace file");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_spread_over_two_workers_on_sqlite() {
    jobs_spread_over_two_workers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_spread_over_two_workers_on_postgres() {
    jobs_spread_over_two_workers(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_steps_are_retried_elsewhere_or_failed() {
    let mut harness = Harness::start(Backend::Sqlite).await;
    let first = harness.worker("doomed", 2);
    let dir = harness.dir.path().to_owned();
    let id = harness
        .create("lose", json!({"dir": dir.display().to_string()}))
        .await;
    let retried = pid_file(&harness, id, &dir.join("retried.pid")).await;
    let lost = pid_file(&harness, id, &dir.join("lost.pid")).await;
    // The survivor starts only now, so the doomed worker holds both steps.
    harness.worker("survivor", 2);
    harness.workers[first]
        .child
        .kill()
        .expect("kill -9 the worker");
    // Its steps' processes die with it (issue #16 item 18).
    let deadline = tokio::time::Instant::now() + WAIT;
    while alive(retried) || alive(lost) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the steps outlived their worker"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let job = harness.finished(id, EXPIRY_WAIT).await;
    assert_eq!(job.status, JobStatus::Failed);
    let step = |name| job.step(name).expect("step exists");
    assert_eq!(step("retried").status, StepStatus::Completed);
    assert_eq!(step("retried").attempt, 2);
    assert_eq!(step("lost").status, StepStatus::Failed);
    let error = step("lost").error_message.clone().unwrap_or_default();
    assert!(error.contains("worker lost"), "{error}");
    assert_eq!(harness.lease_holders(id).await.len(), 2);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_remote_step_leaves_no_process_behind() {
    let mut harness = Harness::start(Backend::Sqlite).await;
    harness.worker("w1", 1);
    let dir = harness.dir.path().to_owned();
    let id = harness
        .create("hang", json!({"dir": dir.display().to_string()}))
        .await;
    let grandchild = pid_file(&harness, id, &dir.join("grandchild.pid")).await;
    assert!(alive(grandchild));
    harness
        .server()
        .orchestrator
        .cancel_job(id, None)
        .await
        .expect("cancels");
    let job = harness.finished(id, WAIT).await;
    assert_eq!(job.status, JobStatus::Cancelled);
    let deadline = tokio::time::Instant::now() + WAIT;
    while alive(grandchild) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "grandchild {grandchild} still runs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        job.step("long").expect("step").status,
        StepStatus::Cancelled
    );
    harness.stop().await;
}

fn with_headers<B>(
    mut request: ureq::RequestBuilder<B>,
    token: Option<&str>,
    if_none_match: Option<&str>,
) -> ureq::RequestBuilder<B> {
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if let Some(tag) = if_none_match {
        request = request.header("If-None-Match", tag);
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_by_sigterm_fails_its_step_as_retryable_and_exits() {
    use nix::sys::signal::{Signal, kill};
    let mut harness = Harness::start(Backend::Sqlite).await;
    let index = harness.worker("w1", 1);
    let dir = harness.dir.path().to_owned();
    let id = harness
        .create("hang", json!({"dir": dir.display().to_string()}))
        .await;
    let grandchild = pid_file(&harness, id, &dir.join("grandchild.pid")).await;
    let worker_pid = i32::try_from(harness.workers[index].child.id()).expect("pid fits");
    kill(nix::unistd::Pid::from_raw(worker_pid), Signal::SIGTERM).expect("SIGTERM");
    let job = harness.finished(id, WAIT).await;
    let step = job.step("long").expect("step");
    // One attempt only, so the retryable failure fails the step.
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(step.error_message.as_deref(), Some("worker shutting down"));
    assert!(!alive(grandchild), "the step's processes are gone");
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = harness.workers[index].child.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "worker still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    harness.stop().await;
}

/// The workers `GET /api/workers` lists, by name: their status.
async fn worker_statuses(harness: &Harness) -> BTreeMap<String, String> {
    let (status, _, body) = call(format!("{}/api/workers", harness.url()), None, None, None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .expect("a list of workers")
        .iter()
        .map(|worker| {
            (
                worker["name"].as_str().unwrap_or_default().to_owned(),
                worker["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// An idle `stroem work` (its claim long-polling) stopped by SIGTERM exits within a few seconds
/// — not when the 25 s long poll would have answered — and has deregistered: `inactive`.
async fn an_idle_worker_exits_promptly_on_sigterm_and_deregisters(backend: Backend) {
    use nix::sys::signal::{Signal, kill};
    let mut harness = Harness::start(backend).await;
    let index = harness.worker("idle", 2);
    let deadline = tokio::time::Instant::now() + WAIT;
    while worker_statuses(&harness)
        .await
        .get("idle")
        .map(String::as_str)
        != Some("active")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its claims are now waiting on the server.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let worker_pid = i32::try_from(harness.workers[index].child.id()).expect("pid fits");
    let signalled = std::time::Instant::now();
    kill(nix::unistd::Pid::from_raw(worker_pid), Signal::SIGTERM).expect("SIGTERM");
    let status = loop {
        if let Some(status) = harness.workers[index].child.try_wait().expect("wait") {
            break status;
        }
        // Generous: a behaviour check (no waiting out the long poll), not a benchmark.
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "worker still running {:?} after SIGTERM; it said:\n{}",
            signalled.elapsed(),
            harness.worker_logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert_eq!(
        worker_statuses(&harness)
            .await
            .get("idle")
            .map(String::as_str),
        Some("inactive"),
        "the worker deregistered; it said:\n{}",
        harness.worker_logs()
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_exits_promptly_on_sigterm_and_deregisters_on_sqlite() {
    an_idle_worker_exits_promptly_on_sigterm_and_deregisters(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_exits_promptly_on_sigterm_and_deregisters_on_postgres() {
    an_idle_worker_exits_promptly_on_sigterm_and_deregisters(Backend::Postgres).await;
}

/// `POST /worker/deregister` (API §7.2): a pending claim of the worker is never granted, a
/// lease it still holds is lost at once (re-queued while attempts remain, not after lease
/// expiry), and the worker is `inactive`.
async fn a_deregistered_worker_s_lease_is_requeued_at_once(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let url = harness.url();
    let register = |name: &str| {
        call(
            format!("{url}/worker/register"),
            Some(TOKEN),
            Some(
                json!({"name": name, "version": "0", "capabilities": ["script"],
                        "max_concurrent": 1}),
            ),
            None,
        )
    };
    let claim = |worker_id: String, wait_secs: u32| {
        call(
            format!("{url}/worker/jobs/claim"),
            Some(TOKEN),
            Some(json!({"worker_id": worker_id, "wait_secs": wait_secs})),
            None,
        )
    };
    let deregister = |worker_id: String| {
        call(
            format!("{url}/worker/deregister"),
            Some(TOKEN),
            Some(json!({"worker_id": worker_id})),
            None,
        )
    };

    // A claim pending when its worker deregisters does not get the step that becomes ready.
    let (status, _, body) = register("leaving").await;
    assert_eq!(status, 200, "{body}");
    let leaving = body["worker_id"].as_str().expect("worker id").to_owned();
    let pending = tokio::spawn(claim(leaving.clone(), 3));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, body) = deregister(leaving.clone()).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let id = harness.create("requeue", json!({})).await;
    let (status, _, body) = pending.await.expect("claim task");
    assert_eq!(status, 204, "{body}");
    assert_eq!(claim(leaving.clone(), 0).await.0, 204);
    let step = harness.job(id).await.step("again").expect("step").clone();
    assert_eq!((step.status, step.attempt), (StepStatus::Ready, 0));

    // A lease granted to a worker that then deregisters is lost at once.
    let (status, _, body) = register("granted").await;
    assert_eq!(status, 200, "{body}");
    let granted = body["worker_id"].as_str().expect("worker id").to_owned();
    let (status, _, body) = claim(granted.clone(), 5).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        harness.job(id).await.step("again").expect("step").status,
        StepStatus::Running
    );
    let (status, _, _) = deregister(granted.clone()).await;
    assert_eq!(status, 200);
    // No waiting: the 10 s lease timeout has not passed.
    let job = harness.job(id).await;
    let step = job.step("again").expect("step");
    assert_eq!(
        (step.status, step.attempt),
        (StepStatus::Ready, 1),
        "{step:?}"
    );
    let leases = harness
        .server()
        .orchestrator
        .store()
        .job_leases(id)
        .await
        .expect("leases read");
    assert_eq!(leases.len(), 1);
    assert!(!leases[0].state.is_live(), "{:?}", leases[0].state);
    let statuses = worker_statuses(&harness).await;
    assert_eq!(
        statuses.get("leaving").map(String::as_str),
        Some("inactive")
    );
    assert_eq!(
        statuses.get("granted").map(String::as_str),
        Some("inactive")
    );
    // Unknown workers: 404; a malformed body: 400.
    let (status, _, body) = deregister(Uuid::new_v4().to_string()).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, _, _) = call(
        format!("{url}/worker/deregister"),
        Some(TOKEN),
        Some(json!({"id": granted})),
        None,
    )
    .await;
    assert_eq!(status, 400);

    // A live worker runs the retry.
    harness.worker("w1", 1);
    let job = harness.finished(id, WAIT).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(job.step("again").expect("step").attempt, 2);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_worker_s_lease_is_requeued_at_once_on_sqlite() {
    a_deregistered_worker_s_lease_is_requeued_at_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_worker_s_lease_is_requeued_at_once_on_postgres() {
    a_deregistered_worker_s_lease_is_requeued_at_once(Backend::Postgres).await;
}

/// One HTTP exchange with the server, off the async runtime.
async fn call(
    url: String,
    token: Option<&'static str>,
    body: Option<Value>,
    if_none_match: Option<String>,
) -> (u16, Option<String>, Value) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let tag = if_none_match.as_deref();
        let mut response = match body {
            Some(body) => with_headers(agent.post(&url), token, tag)
                .content_type("application/json")
                .send(body.to_string())
                .expect("server answers"),
            None => with_headers(agent.get(&url), token, tag)
                .call()
                .expect("server answers"),
        };
        let etag = response
            .headers()
            .get("etag")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .expect("body reads");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (response.status().as_u16(), etag, body)
    })
    .await
    .expect("request task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_surface_needs_the_token_fences_leases_and_serves_revisions() {
    let harness = Harness::start(Backend::Sqlite).await;
    let url = harness.url();
    let registration = json!({"name": "probe", "version": "0", "capabilities": ["script"],
                              "max_concurrent": 1});
    let register = format!("{url}/worker/register");
    let (status, _, _) = call(register.clone(), None, Some(registration.clone()), None).await;
    assert_eq!(status, 401);
    let (status, _, body) = call(
        register.clone(),
        Some("wrong-token"),
        Some(registration.clone()),
        None,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, _, body) = call(register, Some(TOKEN), Some(registration), None).await;
    assert_eq!(status, 200, "{body}");
    let worker_id = body["worker_id"].as_str().expect("worker id").to_owned();

    let id = harness.create("quick", json!({})).await;
    let (status, _, claim) = call(
        format!("{url}/worker/jobs/claim"),
        Some(TOKEN),
        Some(json!({"worker_id": worker_id, "wait_secs": 5})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{claim}");
    let lease_id = claim["lease_id"].as_str().expect("lease id").to_owned();
    let revision = claim["revision"].as_str().expect("revision").to_owned();
    let start = format!("{url}/worker/jobs/{id}/steps/only/start");

    // Forged leases: an unknown lease id, and the right lease under another worker id.
    for forged in [
        json!({"worker_id": worker_id, "lease_id": Uuid::new_v4()}),
        json!({"worker_id": Uuid::new_v4(), "lease_id": lease_id}),
    ] {
        let before = harness.job(id).await;
        let (status, _, body) = call(start.clone(), Some(TOKEN), Some(forged), None).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("stale_lease")));
        let after = harness.job(id).await;
        assert_eq!(after.step("only"), before.step("only"), "nothing changed");
        assert_eq!(after.status, before.status);
    }

    let lease = json!({"worker_id": worker_id, "lease_id": lease_id});
    let (status, _, _) = call(start, Some(TOKEN), Some(lease), None).await;
    assert_eq!(status, 200);
    let complete = json!({"worker_id": worker_id, "lease_id": lease_id,
        "outcome": "succeeded", "output": null, "error_message": null,
        "started_at": "2026-01-01T00:00:00.000Z", "finished_at": "2026-01-01T00:00:01.000Z"});
    let complete_url = format!("{url}/worker/jobs/{id}/steps/only/complete");
    let (status, _, body) = call(
        complete_url.clone(),
        Some(TOKEN),
        Some(complete.clone()),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, _, body) = call(complete_url, Some(TOKEN), Some(complete), None).await;
    assert_eq!(
        (status, body),
        (200, json!({"status": "ok", "duplicate": true}))
    );
    assert_eq!(harness.job(id).await.status, JobStatus::Completed);

    let tarball = format!("{url}/worker/workspace/default.tar.gz?revision={revision}");
    let (status, etag, _) = call(tarball.clone(), Some(TOKEN), None, None).await;
    let quoted = format!("\"{revision}\"");
    assert_eq!((status, etag.as_deref()), (200, Some(quoted.as_str())));
    let (status, _, _) = call(tarball, Some(TOKEN), None, Some(quoted)).await;
    assert_eq!(status, 304);
    let gone = format!("{url}/worker/workspace/default.tar.zst?revision=deadbeef");
    let (status, _, body) = call(gone, Some(TOKEN), None, None).await;
    assert_eq!((status, body["code"].as_str()), (410, Some("gone")));
    let unknown = format!("{url}/worker/workspace/nope.tar.zst");
    assert_eq!(call(unknown, Some(TOKEN), None, None).await.0, 404);
    harness.stop().await;
}

#[test]
fn stroem_work_refuses_to_start_without_a_worker_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = crate::support::Stroem::new()
        .args(["work", "-s", "http://127.0.0.1:9"])
        .current_dir(dir.path())
        .run();
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(
        output.stderr.contains("'worker_token' is required"),
        "{}",
        output.stderr
    );
}
