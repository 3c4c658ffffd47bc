//! The Docker runner against a real container engine: podman's Docker-compatible API as
//! `.ci/start-podman.sh` starts it, with its local busybox image (no registry is reachable, so
//! nothing here pulls). The engine is found at `STROEM_TEST_DOCKER_HOST`, else `DOCKER_HOST`,
//! else the socket that script serves; these tests fail, never skip, without one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::LocalRunner;
use super::Scratch;
use super::container::label;
use super::docker::{DockerRunner, DockerSettings};
use super::local_tests::{shell, stream};
use super::spec::{AttemptResult, Limits, LogLine, Outcome, Program, RunnerKind, StepSpec, Stream};
use crate::config::PullPolicy;

/// The image `.ci/start-podman.sh` imports: busybox with `/bin/sh`.
pub const TEST_IMAGE: &str = "localhost/stroem-test:latest";
/// How long any one container test may take.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// The engine the tests use.
pub fn test_host() -> String {
    ["STROEM_TEST_DOCKER_HOST", "DOCKER_HOST"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|host| !host.is_empty()))
        .unwrap_or_else(|| "unix:///tmp/stroem-podman.sock".to_owned())
}

struct Harness {
    runner: LocalRunner,
    docker: Docker,
    copy: tempfile::TempDir,
    _scratch_root: tempfile::TempDir,
}

impl Harness {
    async fn new(pull_policy: PullPolicy) -> Harness {
        let scratch_root = tempfile::tempdir().expect("scratch root");
        let (scratch, _) = Scratch::open(scratch_root.path()).expect("scratch");
        let scratch = Arc::new(scratch);
        let settings = DockerSettings {
            host: test_host(),
            pull_policy,
            runner_image: TEST_IMAGE.to_owned(),
            worker: "docker-tests".to_owned(),
            kill_grace: Duration::from_secs(2),
            instance: Some((scratch.dir().to_owned(), scratch.root().to_owned())),
        };
        let docker = DockerRunner::connect(settings)
            .await
            .unwrap_or_else(|error| panic!("{error}: start the engine with .ci/start-podman.sh"));
        let runner = LocalRunner::new(Duration::from_secs(2), BTreeMap::new())
            .in_scratch(scratch)
            .with_docker(Arc::new(docker));
        let client = Docker::connect_with_host(&test_host())
            .expect("client")
            .negotiate_version()
            .await
            .expect("engine answers");
        Harness {
            runner,
            docker: client,
            copy: tempfile::tempdir().expect("working copy"),
            _scratch_root: scratch_root,
        }
    }

    async fn run(&self, spec: &StepSpec) -> (AttemptResult, Vec<LogLine>) {
        self.run_until(spec, |_| false, CancellationToken::new())
            .await
    }

    async fn run_until(
        &self,
        spec: &StepSpec,
        cancel_when: impl Fn(&LogLine) -> bool + Send + Sync,
        cancel: CancellationToken,
    ) -> (AttemptResult, Vec<LogLine>) {
        let mut lines = Vec::new();
        let trigger = cancel.clone();
        let mut sink = |line: LogLine| {
            if cancel_when(&line) {
                trigger.cancel();
            }
            lines.push(line);
        };
        let run = self.runner.run(spec, self.copy.path(), &mut sink, cancel);
        let result = tokio::time::timeout(TEST_LIMIT, run)
            .await
            .expect("the attempt ends within the test limit");
        (result, lines)
    }

    /// The containers (running or not) of a job.
    async fn containers_of(&self, job: uuid::Uuid) -> Vec<String> {
        let filter = format!("{}={job}", label::JOB);
        super::docker::list_labelled(&test_host(), &filter)
            .await
            .expect("containers listed")
            .into_iter()
            .map(|listed| listed.id)
            .collect()
    }
}

/// A `runner: docker` script step of its own job.
fn script(code: &str) -> StepSpec {
    let mut spec = shell(code);
    spec.job_id = uuid::Uuid::new_v4();
    spec.runner = RunnerKind::Docker;
    spec.image = Some(TEST_IMAGE.to_owned());
    spec
}

/// A `type: docker` step of its own job.
fn prepared(cmd: &str) -> StepSpec {
    let mut spec = script("");
    spec.program = Program::Container {
        entrypoint: None,
        command: None,
        cmd: Some(cmd.to_owned()),
    };
    spec
}

fn message(result: &AttemptResult) -> String {
    result.error_message.clone().unwrap_or_default()
}

#[tokio::test]
async fn script_steps_see_the_working_copy_the_io_files_and_only_their_environment() {
    let harness = Harness::new(PullPolicy::IfNotPresent).await;
    std::fs::write(harness.copy.path().join("data.txt"), "from the copy\n").expect("write");
    let mut spec = script(
        r#"cat data.txt
           echo "workdir=$(pwd) STROEM_WORKDIR=$STROEM_WORKDIR"
           echo "input=$(cat "$STROEM_INPUT") name=$INPUT_NAME action=$ACTION_VAR"
           echo "home-of-worker=${WORKER_ONLY-<unset>}"
           echo "token=$TOKEN"
           echo "token=$TOKEN" >&2
           echo made > made-here.txt
           printf '{"sum": %d}' $((INPUT_COUNT + 1)) > "$STROEM_OUTPUT""#,
    );
    spec.input = json!({"name": "web", "count": 41})
        .as_object()
        .cloned()
        .expect("object");
    spec.env
        .push(("TOKEN".to_owned(), "hunter2-secret".to_owned()));
    spec.mask = vec!["hunter2-secret".to_owned()];
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{}", message(&result));
    assert_eq!(result.output, json!({"sum": 42}));
    assert_eq!(
        stream(&lines, Stream::Stdout),
        [
            "from the copy",
            "workdir=/workspace STROEM_WORKDIR=/workspace",
            r#"input={"name":"web","count":41} name=web action=from action"#,
            "home-of-worker=<unset>",
            "token=••••••",
        ]
    );
    assert_eq!(stream(&lines, Stream::Stderr), ["token=••••••"]);
    // The working copy is mounted read-write.
    assert!(harness.copy.path().join("made-here.txt").exists());
    assert!(harness.containers_of(spec.job_id).await.is_empty());
}

#[tokio::test]
async fn prepared_images_report_output_lines_and_take_workdir_and_entrypoint() {
    let harness = Harness::new(PullPolicy::IfNotPresent).await;
    let mut spec = prepared(r#"echo "in $(pwd)"; echo 'OUTPUT: {"ok": true}'"#);
    spec.workdir = Some("/tmp".to_owned());
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{}", message(&result));
    assert_eq!(result.output, json!({"ok": true}));
    assert_eq!(stream(&lines, Stream::Stdout)[0], "in /tmp");

    // `cmd` with an entrypoint: split into its arguments, no shell.
    let mut spec = prepared(r#"'a  b' $HOME"#);
    spec.program = Program::Container {
        entrypoint: Some(vec!["/bin/echo".to_owned()]),
        command: None,
        cmd: Some(r#"'a  b' $HOME"#.to_owned()),
    };
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{}", message(&result));
    assert_eq!(stream(&lines, Stream::Stdout), ["a  b $HOME"]);
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_the_code_and_the_stderr_tail() {
    let harness = Harness::new(PullPolicy::IfNotPresent).await;
    let spec = script("echo broken >&2; exit 3");
    let (result, _) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(message(&result), "exit code 3\nbroken");
    assert!(harness.containers_of(spec.job_id).await.is_empty());
}

#[tokio::test]
async fn resources_become_limits_and_running_out_of_memory_says_so() {
    let harness = Harness::new(PullPolicy::IfNotPresent).await;
    let limits = Limits {
        cpu: Some("500m".to_owned()),
        memory: Some("64Mi".to_owned()),
    };
    let mut spec = script(
        r#"cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max
           cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max"#,
    );
    spec.resources = Some(limits.clone());
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{}", message(&result));
    let stdout = stream(&lines, Stream::Stdout);
    assert_eq!(stdout[0], (64 * 1024 * 1024).to_string());
    // Half a CPU: a quota of half the (default 100 ms) period.
    assert_eq!(stdout[1], "50000");

    let mut hungry = script("exec dd if=/dev/zero of=/dev/null bs=256M count=1");
    hungry.resources = Some(limits);
    let (result, lines) = harness.run(&hungry).await;
    assert_eq!(result.outcome, Outcome::Failed, "{lines:?}");
    let error = message(&result);
    // Docker reports the OOM kill itself; podman with runc on cgroup v1 only the SIGKILL.
    assert!(
        error.starts_with("exit code 137: killed") && error.contains("(memory limit 64Mi)"),
        "{error}"
    );
}

#[tokio::test]
async fn a_timeout_stops_and_removes_the_container() {
    let harness = Harness::new(PullPolicy::IfNotPresent).await;
    // The shell ignores SIGTERM, so only the kill after the grace period stops it.
    let mut spec = script("trap '' TERM; echo started; while true; do sleep 1; done");
    spec.timeout_secs = Some(1);
    let started = std::time::Instant::now();
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert!(
        message(&result).starts_with("timed out after 1s"),
        "{}",
        message(&result)
    );
    assert_eq!(stream(&lines, Stream::Stdout), ["started"]);
    // One second of run time and the two seconds of grace, not the sleep loop's forever.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(harness.containers_of(spec.job_id).await.is_empty());
}

#[tokio::test]
async fn cancelling_stops_and_removes_the_container() {
    let harness = Harness::new(PullPolicy::IfNotPresent).await;
    let spec = script("echo ready; exec sleep 300");
    let (result, lines) = harness
        .run_until(&spec, |line| line.line == "ready", CancellationToken::new())
        .await;
    assert_eq!(result.outcome, Outcome::Cancelled, "{lines:?}");
    assert!(harness.containers_of(spec.job_id).await.is_empty());
}

#[tokio::test]
async fn a_missing_image_under_pull_policy_never_is_a_clear_error() {
    let harness = Harness::new(PullPolicy::Never).await;
    let mut spec = prepared("true");
    spec.image = Some("localhost/stroem-absent:1".to_owned());
    let (result, _) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(
        message(&result),
        "image 'localhost/stroem-absent:1' is not present on this worker and \
         docker.pull_policy is 'never'"
    );
    // A present image runs without pulling.
    let (result, lines) = harness.run(&prepared("echo present")).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
}

#[tokio::test]
async fn an_unreachable_engine_is_named() {
    let settings = DockerSettings {
        host: "unix:///nonexistent/docker.sock".to_owned(),
        pull_policy: PullPolicy::IfNotPresent,
        runner_image: TEST_IMAGE.to_owned(),
        worker: "docker-tests".to_owned(),
        kill_grace: Duration::from_secs(1),
        instance: None,
    };
    let error = DockerRunner::connect(settings)
        .await
        .expect_err("nothing listens there");
    assert!(
        error.starts_with("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{error}"
    );
}

#[tokio::test]
async fn leftovers_of_dead_worker_processes_are_removed_and_live_ones_kept() {
    let harness = Harness::new(PullPolicy::IfNotPresent).await;
    let root = tempfile::tempdir().expect("scratch root");
    let (dead, _) = Scratch::open(root.path()).expect("dead instance");
    let (live, _) = Scratch::open(root.path()).expect("live instance");
    let job = uuid::Uuid::new_v4();
    let start = |instance: &Path| {
        let labels: HashMap<String, String> = HashMap::from([
            (label::MANAGED.to_owned(), "true".to_owned()),
            (label::JOB.to_owned(), job.to_string()),
            (label::INSTANCE.to_owned(), instance.display().to_string()),
            (
                label::SCRATCH_ROOT.to_owned(),
                root.path().display().to_string(),
            ),
        ]);
        let docker = harness.docker.clone();
        async move {
            let body = bollard::models::ContainerCreateBody {
                image: Some(TEST_IMAGE.to_owned()),
                cmd: Some(vec!["sleep".to_owned(), "300".to_owned()]),
                labels: Some(labels),
                ..Default::default()
            };
            let id = docker
                .create_container(
                    None::<bollard::query_parameters::CreateContainerOptions>,
                    body,
                )
                .await
                .expect("created")
                .id;
            docker.start_container(&id, None).await.expect("started");
            id
        }
    };
    let dead_dir: PathBuf = dead.dir().to_owned();
    let orphan = start(&dead_dir).await;
    let kept = start(live.dir()).await;
    drop(dead);
    let settings = DockerSettings {
        host: test_host(),
        pull_policy: PullPolicy::IfNotPresent,
        runner_image: TEST_IMAGE.to_owned(),
        worker: "docker-tests".to_owned(),
        kill_grace: Duration::from_secs(1),
        instance: Some((live.dir().to_owned(), root.path().to_owned())),
    };
    let runner = DockerRunner::connect(settings).await.expect("connects");
    assert_eq!(runner.remove_leftovers().await, Ok(1));
    let left = harness.containers_of(job).await;
    assert_eq!(
        left,
        std::slice::from_ref(&kept),
        "orphan {orphan} removed, {kept} kept"
    );
    let _ = harness
        .docker
        .remove_container(
            &kept,
            Some(bollard::query_parameters::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
}

#[tokio::test]
async fn a_worker_without_the_docker_runner_fails_docker_steps_saying_why() {
    let copy = tempfile::tempdir().expect("copy");
    let runner = LocalRunner::new(Duration::from_secs(1), BTreeMap::new())
        .without_docker("cannot reach the Docker engine at unix:///x.sock: gone".to_owned());
    let mut lines = Vec::new();
    let mut sink = |line: LogLine| lines.push(line);
    let result = runner
        .run(
            &script("true"),
            copy.path(),
            &mut sink,
            CancellationToken::new(),
        )
        .await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(
        message(&result),
        "cannot reach the Docker engine at unix:///x.sock: gone"
    );
    let _: Value = result.output;
}
