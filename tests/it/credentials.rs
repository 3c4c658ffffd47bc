//! Steps never receive Strøm's own credentials in their environment (issue #16 item 5), with
//! real processes: a `stroem serve` with its embedded worker, a `stroem work` against it and a
//! `stroem run`, each running a step that writes its whole environment to a file. The rest of
//! the environment still reaches the step (WF §11.1).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Bound for every wait in this file.
const WAIT: Duration = Duration::from_secs(60);

const WORKER_TOKEN: &str = "worker-token-b71d-long-enough-for-no-warning";
const CLI_TOKEN: &str = "cli-token-0e6a-credential";

const WORKSPACE: &str = r#"
tasks:
  envs:
    input:
      dir: { type: string, required: true }
    flow:
      embedded:
        type: script
        tags: [embedded]
        input: { dir: "{{ input.dir }}" }
        script: env > "$INPUT_DIR/embedded.env"
      remote:
        type: script
        tags: [remote]
        input: { dir: "{{ input.dir }}" }
        script: env > "$INPUT_DIR/remote.env"
  local:
    input:
      dir: { type: string, required: true }
    flow:
      run:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: env > "$INPUT_DIR/run.env"
"#;

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    listener.local_addr().expect("address").port()
}

fn stroem(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stroem"));
    command
        .current_dir(home)
        .env_remove("STROEM_CONFIG")
        .env_remove("STROEM_URL")
        .env("PLAIN_VARIABLE", "still-inherited")
        .stdout(Stdio::null());
    command
}

fn http(method: &str, url: &str, body: Option<Value>) -> Option<(u16, Value)> {
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

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The environment a step wrote, as `NAME=value` lines.
fn read_env(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn assert_no_credentials(env: &str, credentials: &[&str], what: &str) {
    for line in env.lines() {
        assert!(!line.starts_with("STROEM__"), "{what}: {line}");
        for credential in credentials {
            assert!(
                !line.contains(credential),
                "{what} holds a credential: {line}"
            );
        }
    }
    assert!(
        env.lines()
            .any(|line| line == "PLAIN_VARIABLE=still-inherited"),
        "{what}: the rest of the environment is inherited:\n{env}"
    );
    assert!(env.contains("STROEM_JOB_ID="), "{what}:\n{env}");
}

#[test]
fn steps_of_serve_and_work_never_see_strooms_credentials() {
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    std::fs::create_dir_all(home.join("workspace/.workflows")).expect("mkdir");
    std::fs::write(home.join("workspace/.workflows/main.yaml"), WORKSPACE).expect("workflow");
    std::fs::write(home.join("worker-token"), format!("{WORKER_TOKEN}\n")).expect("token file");
    let db_url = format!("sqlite://{}", home.join("data/stroem.db").display());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let config = json!({
        "data_dir": home.join("data"),
        "listen": format!("127.0.0.1:{port}"),
        "db": {"url": db_url},
        "worker_token_file": home.join("worker-token"),
        "tags": ["embedded"],
        "workspaces": {"default": {"type": "folder", "path": home.join("workspace")}},
    });
    std::fs::write(home.join("stroem.yaml"), config.to_string()).expect("config");

    let _server = Process(
        stroem(home)
            .args(["serve", "-c", "stroem.yaml"])
            // The same credentials under other names, as deployments often have them.
            .env("DATABASE_URL", &db_url)
            .env("WORKER_TOKEN_COPY", WORKER_TOKEN)
            .env("STROEM__HEARTBEAT_INTERVAL_SECS", "1")
            .env("STROEM_TOKEN", CLI_TOKEN)
            .stderr(std::fs::File::create(home.join("serve.log")).expect("log"))
            .spawn()
            .expect("stroem serve starts"),
    );
    wait_until("the server", || {
        http("GET", &format!("{url}/api/config"), None).is_some_and(|(status, _)| status == 200)
    });
    let worker_home = home.join("worker");
    std::fs::create_dir_all(&worker_home).expect("worker home");
    let _worker = Process(
        stroem(&worker_home)
            .args(["work", "-s", &url, "--name", "remote"])
            .env("STROEM__WORKER_TOKEN", WORKER_TOKEN)
            .env("STROEM__DATA_DIR", &worker_home)
            .env("STROEM__TAGS", "[remote]")
            .env("STROEM__HEARTBEAT_INTERVAL_SECS", "1")
            .env("WORKER_TOKEN_COPY", WORKER_TOKEN)
            .env("STROEM_TOKEN", CLI_TOKEN)
            .stderr(std::fs::File::create(home.join("work.log")).expect("log"))
            .spawn()
            .expect("stroem work starts"),
    );

    let out = home.join("out");
    std::fs::create_dir_all(&out).expect("out");
    let (status, reply) = http(
        "POST",
        &format!("{url}/api/workspaces/default/tasks/envs/execute"),
        Some(json!({"input": {"dir": out}})),
    )
    .expect("execute");
    assert_eq!(status, 200, "{reply}");
    let id = reply["job_id"].as_str().expect("job id").to_owned();
    wait_until("the job", || {
        http("GET", &format!("{url}/api/jobs/{id}"), None)
            .is_some_and(|(_, job)| job["completed_at"].is_string())
    });
    let (_, job) = http("GET", &format!("{url}/api/jobs/{id}"), None).expect("job");
    assert_eq!(job["status"], "completed", "{job:#}");

    let credentials = [WORKER_TOKEN, db_url.as_str(), CLI_TOKEN];
    assert_no_credentials(&read_env(&out.join("embedded.env")), &credentials, "serve");
    assert_no_credentials(&read_env(&out.join("remote.env")), &credentials, "work");
    let remote = read_env(&out.join("remote.env"));
    assert!(!remote.contains("WORKER_TOKEN_COPY="), "{remote}");
}

#[test]
fn steps_of_run_never_see_the_cli_credential() {
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    std::fs::create_dir_all(home.join(".workflows")).expect("mkdir");
    std::fs::write(home.join(".workflows/main.yaml"), WORKSPACE).expect("workflow");
    let output = stroem(home)
        .args(["run", "local", "--path", "."])
        .args(["--set", &format!("dir={}", home.display())])
        .env("STROEM_TOKEN", CLI_TOKEN)
        .env("STROEM__WORKER_TOKEN", WORKER_TOKEN)
        .stderr(Stdio::piped())
        .output()
        .expect("stroem run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_no_credentials(
        &read_env(&home.join("run.env")),
        &[CLI_TOKEN, WORKER_TOKEN],
        "run",
    );
}
