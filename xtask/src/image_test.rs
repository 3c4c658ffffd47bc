//! `cargo xtask test-image`: the container image and the Compose file, run for real.
//!
//! 1. Builds the image (`cargo xtask image`, with the quick `image-test` profile by default).
//! 2. Runs one container as `serve` on a fresh database of the PostgreSQL at
//!    `127.0.0.1:5432` and one as `work`, both on the host network, and drives the README's
//!    quick start against them with curl: list workspaces, list tasks, execute hello-world,
//!    poll the job until it ends, read its logs. Also checks the image's HEALTHCHECK, its user
//!    and `stroem --version`.
//! 3. Validates `docker-compose.yml` with `docker-compose config` and runs its `server` and
//!    `worker` services with podman-compose (from the tools venv), with `.ci/compose.ci.yml` pointing them at that
//!    PostgreSQL (no PostgreSQL image can be pulled here), and runs the quick start again.
//!
//! Every container, compose project and database it creates is removed at the end, also on
//! failure (a guard's `Drop`).

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::dist::Profile;
use crate::image::{self, Engine};
use crate::process::{probe, repo_root, run};

/// How long any awaited condition (a server answering, a job ending) may take.
const WAIT_TIMEOUT: Duration = Duration::from_secs(90);
/// Pause between two checks of an awaited condition.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// The PostgreSQL CI provides.
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
/// The shared worker token of the test deployment (32+ characters, so no warning).
const WORKER_TOKEN: &str = "image-test-worker-token-0123456789abcdef";

pub fn test_image(profile: Profile) -> Result<()> {
    let built = image::image(image::Options {
        profile,
        rootfs_only: false,
    })?
    .context("the image was not built")?;
    let engine = Engine::detect()?;
    let root = repo_root();
    let mut cleanup = Cleanup::new(engine);

    println!(
        "== container quick start: {} ({})",
        built.reference,
        crate::dist::megabytes(built.size)
    );
    let database = cleanup.database("stroem_image_test")?;
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let workspace = root.join("examples/hello-world");
    let server = cleanup.container("server");
    run(engine
        .command()
        .args(["run", "--detach", "--name", &server, "--network", "host"])
        .args(env(&[
            ("STROEM__DB__URL", &format!("{POSTGRES}/{database}")),
            ("STROEM__LISTEN", &format!("127.0.0.1:{port}")),
            ("STROEM__WORKER_TOKEN", WORKER_TOKEN),
            ("STROEM__EMBEDDED_WORKER", "false"),
            ("STROEM__WORKSPACES__DEFAULT__TYPE", "folder"),
            ("STROEM__WORKSPACES__DEFAULT__PATH", "/workspace"),
        ]))
        .arg("--volume")
        .arg(format!("{}:/workspace:ro", workspace.display()))
        .arg(&built.reference))?;
    let worker = cleanup.container("worker");
    run(engine
        .command()
        .args(["run", "--detach", "--name", &worker, "--network", "host"])
        .args(env(&[
            ("STROEM_ROLE", "work"),
            ("STROEM__SERVER_URL", &url),
            ("STROEM__WORKER_TOKEN", WORKER_TOKEN),
            ("STROEM__WORKER_NAME", "image-test-worker"),
        ]))
        .arg(&built.reference))?;
    cleanup.on_failure_show_logs(&[&server, &worker]);

    quick_start(&url)?;
    for container in [&server, &worker] {
        health_check(engine, container)
            .with_context(|| format!("the HEALTHCHECK of {container}"))?;
    }
    let uid = capture(engine.command().args(["exec", &server, "id", "-u"]))?;
    if uid.trim() != "10001" {
        bail!("the server runs as uid {}, not 10001", uid.trim());
    }
    let owner =
        capture(
            engine
                .command()
                .args(["exec", &server, "stat", "-c", "%u", "/var/lib/stroem"]),
        )?;
    if owner.trim() != "10001" {
        bail!("the data volume belongs to uid {}, not 10001", owner.trim());
    }
    let version = capture(engine.command().args([
        "run",
        "--rm",
        "--network",
        "none",
        &built.reference,
        "--version",
    ]))?;
    if !version.contains("(commit ") {
        bail!("`stroem --version` in the image names no commit: {version}");
    }
    println!("container quick start: ok ({})", version.trim());
    cleanup.finish_containers();

    compose(&mut cleanup, &built.reference)?;
    cleanup.finish_containers();
    println!("test-image: the container and Compose quick starts passed");
    Ok(())
}

/// Validates docker-compose.yml, then runs its server and worker against the CI PostgreSQL.
fn compose(cleanup: &mut Cleanup, reference: &str) -> Result<()> {
    let root = repo_root();
    println!("== docker-compose.yml");
    if probe(Command::new("docker-compose").arg("version")).is_none() {
        bail!("docker-compose is not installed (Debian's `docker-compose` validates the file)");
    }
    run(Command::new("docker-compose").current_dir(&root).args([
        "--file",
        "docker-compose.yml",
        "config",
        "--quiet",
    ]))?;
    let podman_compose = crate::venv::tools(crate::venv::TEST_TOOLS)?.join("podman-compose");
    let database = cleanup.database("stroem_compose_test")?;
    let port = free_port()?;
    let project = cleanup.compose_project();
    let compose = |args: &[&str]| {
        let mut command = Command::new(&podman_compose);
        command
            .current_dir(&root)
            .args(["--project-name", &project])
            .args([
                "--file",
                "docker-compose.yml",
                "--file",
                ".ci/compose.ci.yml",
            ])
            .args(args)
            .env("STROEM_IMAGE", reference)
            .env("STROEM_CI_DB_URL", format!("{POSTGRES}/{database}"))
            .env("STROEM_CI_PORT", port.to_string());
        command
    };
    // Registered before `up`, so a half-started project is taken down too.
    cleanup.compose_down = Some(compose(&["down", "--volumes"]));
    cleanup.on_failure_show_logs(&[
        &format!("{project}_server_1"),
        &format!("{project}_worker_1"),
    ]);
    run(&mut compose(&[
        "up",
        "--detach",
        "--no-deps",
        "server",
        "worker",
    ]))?;
    quick_start(&format!("http://127.0.0.1:{port}"))?;
    println!("compose quick start: ok");
    Ok(())
}

/// The README's quick start, with curl: workspaces, tasks, execute hello-world, job status
/// until it ends, logs.
fn quick_start(url: &str) -> Result<()> {
    // until curl -sf http://…/api/workspaces/default/tasks >/dev/null; do sleep 2; done
    wait_for("the server to answer", || {
        Ok(probe(
            Command::new("curl").args(["-sf", &format!("{url}/api/workspaces/default/tasks")]),
        )
        .is_some())
    })?;
    let workspaces = curl_json(&[&format!("{url}/api/workspaces")])?;
    if !names(&workspaces).contains(&"default") {
        bail!("GET /api/workspaces has no `default`: {workspaces}");
    }
    let tasks = curl_json(&[&format!("{url}/api/workspaces/default/tasks")])?;
    if !names(&tasks).contains(&"hello-world") {
        bail!("GET /api/workspaces/default/tasks has no `hello-world`: {tasks}");
    }
    let started = curl_json(&[
        "-X",
        "POST",
        &format!("{url}/api/workspaces/default/tasks/hello-world/execute"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"input": {"name": "World"}}"#,
    ])?;
    let job_id = started["job_id"]
        .as_str()
        .with_context(|| format!("execute answered no job_id: {started}"))?
        .to_owned();
    let mut status = String::new();
    wait_for("the hello-world job to end", || {
        let job = curl_json(&[&format!("{url}/api/jobs/{job_id}")])?;
        status = job["status"].as_str().unwrap_or_default().to_owned();
        Ok(matches!(
            status.as_str(),
            "completed" | "failed" | "cancelled" | "skipped"
        ))
    })?;
    if status != "completed" {
        bail!("the hello-world job ended `{status}`");
    }
    let logs = curl_json(&[&format!("{url}/api/jobs/{job_id}/logs")])?;
    let text = logs["logs"].as_str().unwrap_or_default();
    if !text.contains("HELLO WORLD") {
        bail!("the job's logs lack `HELLO WORLD`: {logs}");
    }
    Ok(())
}

/// Runs the image's HEALTHCHECK in `container` once and fails unless it passes. Podman runs it
/// on request; Docker has no such command, so there the configured check command is read
/// from the container and run with `docker exec`.
fn health_check(engine: Engine, container: &str) -> Result<()> {
    match engine {
        Engine::Podman => run(engine.command().args(["healthcheck", "run", container])),
        Engine::Docker => {
            let test = capture(engine.command().args([
                "inspect",
                "--format",
                "{{json .Config.Healthcheck.Test}}",
                container,
            ]))?;
            let test: Vec<String> = serde_json::from_str(test.trim())
                .with_context(|| format!("no HEALTHCHECK in {container}: {test}"))?;
            match test.split_first() {
                Some((kind, command)) if kind == "CMD" && !command.is_empty() => {
                    run(engine.command().args(["exec", container]).args(command))
                }
                _ => bail!("unexpected HEALTHCHECK in {container}: {test:?}"),
            }
        }
    }
}

/// `curl -s ARGS`, its body parsed as JSON.
fn curl_json(args: &[&str]) -> Result<Value> {
    let body = capture(
        Command::new("curl")
            .args(["-sS", "--fail-with-body"])
            .args(args),
    )?;
    serde_json::from_str(&body).with_context(|| format!("curl {args:?} answered no JSON: {body}"))
}

/// The `name` fields of a JSON array of objects.
fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["name"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `done` says so, failing after [`WAIT_TIMEOUT`].
fn wait_for(what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        if done()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {WAIT_TIMEOUT:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// `--env NAME=VALUE` arguments.
fn env(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(name, value)| ["--env".to_owned(), format!("{name}={value}")])
        .collect()
}

/// A port nobody listens on right now (the kernel's pick for port 0).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Runs `command` and returns its stdout; a failure includes its stderr.
fn capture(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("could not start {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Everything the test started, removed when it is dropped.
struct Cleanup {
    engine: Engine,
    prefix: String,
    containers: Vec<String>,
    databases: Vec<String>,
    compose_down: Option<Command>,
    show_logs: Vec<String>,
    projects: usize,
}

impl Cleanup {
    fn new(engine: Engine) -> Cleanup {
        Cleanup {
            engine,
            prefix: format!("stroem-image-test-{}", std::process::id()),
            containers: Vec::new(),
            databases: Vec::new(),
            compose_down: None,
            show_logs: Vec::new(),
            projects: 0,
        }
    }

    /// A container name to remove at the end.
    fn container(&mut self, role: &str) -> String {
        let name = format!("{}-{role}", self.prefix);
        self.containers.push(name.clone());
        name
    }

    fn compose_project(&mut self) -> String {
        self.projects += 1;
        format!("{}-compose{}", self.prefix, self.projects).replace('-', "_")
    }

    /// Creates a fresh database on the CI PostgreSQL, dropped at the end.
    fn database(&mut self, stem: &str) -> Result<String> {
        let name = format!("{stem}_{}", std::process::id());
        let _ = psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        psql(&format!("CREATE DATABASE {name}"))
            .context("creating a database on the PostgreSQL at 127.0.0.1:5432")?;
        self.databases.push(name.clone());
        Ok(name)
    }

    fn on_failure_show_logs(&mut self, containers: &[&str]) {
        self.show_logs = containers.iter().map(|name| (*name).to_owned()).collect();
    }

    /// The containers passed their checks: remove them without printing their logs.
    fn finish_containers(&mut self) {
        self.show_logs.clear();
        self.remove_containers();
    }

    fn remove_containers(&mut self) {
        if let Some(mut down) = self.compose_down.take() {
            let _ = down.output();
        }
        for container in self.containers.drain(..) {
            let _ = self
                .engine
                .command()
                .args(["rm", "--force", "--volumes", &container])
                .output();
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for container in &self.show_logs {
            if let Ok(output) = self.engine.command().args(["logs", container]).output() {
                eprintln!(
                    "--- logs of {container}:\n{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        self.remove_containers();
        for database in &self.databases {
            let _ = psql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
        }
    }
}

/// Runs one SQL command on the CI PostgreSQL's `postgres` database.
fn psql(sql: &str) -> Result<()> {
    capture(Command::new("psql").args([
        "--no-psqlrc",
        "--quiet",
        "--host",
        "127.0.0.1",
        "--username",
        "postgres",
        "--dbname",
        "postgres",
        "--command",
        sql,
    ]))
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reads_the_name_of_each_listed_object() {
        let list = serde_json::json!([{"name": "default"}, {"other": 1}, {"name": "ops"}]);
        assert_eq!(names(&list), ["default", "ops"]);
        assert!(names(&serde_json::json!({"name": "x"})).is_empty());
    }

    #[test]
    fn env_pairs_become_engine_arguments() {
        assert_eq!(
            env(&[("A", "1"), ("B", "x=y")]),
            ["--env", "A=1", "--env", "B=x=y"]
        );
    }

    #[test]
    fn the_compose_override_exists_for_the_services_the_test_starts() {
        let path = repo_root().join(".ci/compose.ci.yml");
        let text = std::fs::read_to_string(path).expect(".ci/compose.ci.yml");
        for service in ["server:", "worker:", "STROEM_CI_DB_URL", "STROEM_CI_PORT"] {
            assert!(text.contains(service), "{service}");
        }
    }
}
