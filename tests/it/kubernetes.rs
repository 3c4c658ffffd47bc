//! The Kubernetes runner (cargo feature `kubernetes`) against [`fake::FakeCluster`], an
//! in-process fake of the API server (no real one can run on the test machines): the exact pod
//! each kind of step becomes, logs and outputs, exit codes, image-pull, scheduling and
//! `workspace-init` failures as clear errors, cancellation and timeout deleting the pod with
//! the grace period, and leftovers of dead worker processes deleted at start-up.

pub mod fake;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stroem::runner::LocalRunner;
use stroem::runner::kubernetes::{KubernetesRunner, KubernetesSettings};
use stroem::runner::pod::TarballAccess;
use stroem::runner::spec::{
    AttemptResult, Limits, LogLine, Outcome, Program, RunnerKind, ScriptBody, StepSpec,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use fake::{Behaviour, Deletion, FakeCluster};

const NAMESPACE: &str = "stroem-jobs";
const GRACE_SECS: u64 = 7;
const TOKEN: &str = "stroem-ws.payload.signature";

fn settings(instance: Option<(PathBuf, PathBuf)>) -> KubernetesSettings {
    KubernetesSettings {
        namespace: NAMESPACE.to_owned(),
        init_image: "curlimages/curl:8.8.0".to_owned(),
        server_url: "http://stroem.stroem.svc:8080".to_owned(),
        runner_image: "ghcr.io/fremvaerk/stroem-runner:test".to_owned(),
        worker: "worker (embedded)".to_owned(),
        kill_grace: Duration::from_secs(GRACE_SECS),
        unschedulable_timeout: Duration::ZERO,
        instance,
    }
}

async fn runner(cluster: &FakeCluster, instance: Option<(PathBuf, PathBuf)>) -> KubernetesRunner {
    stroem::install_crypto_provider();
    KubernetesRunner::connect_with(cluster.config(), settings(instance))
        .await
        .expect("the fake API server answers")
}

fn local(kubernetes: KubernetesRunner) -> LocalRunner {
    LocalRunner::new(Duration::from_secs(GRACE_SECS), Default::default())
        .with_kubernetes(Arc::new(kubernetes))
}

/// A `runner: pod` script step with env, a secret input, resources and a manifest.
fn script_step() -> StepSpec {
    StepSpec {
        job_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001),
        workspace: "default".to_owned(),
        task: "release".to_owned(),
        step: "deploy[1]".to_owned(),
        attempt: 2,
        action_name: "deploy".to_owned(),
        program: Program::Script {
            code: ScriptBody::Inline("echo deploying \"$INPUT_SERVICE\"\n".to_owned()),
            interpreter: None,
            default_interpreter: vec!["sh".to_owned()],
            args: vec!["--fast".to_owned()],
        },
        env: vec![("API_KEY".to_owned(), "super-secret-key".to_owned())],
        input: json!({"service": "web"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        workdir: Some("deploy".to_owned()),
        timeout_secs: None,
        mask: vec!["super-secret-key".to_owned()],
        output_schema: None,
        runner: RunnerKind::Pod,
        image: Some("alpine:3.20".to_owned()),
        resources: Some(Limits {
            cpu: Some("500m".to_owned()),
            memory: Some("256Mi".to_owned()),
        }),
        manifest: Some(json!({
            "metadata": {"labels": {"team": "ops", "io.stroem.job": "forged"}},
            "spec": {
                "nodeSelector": {"pool": "batch"},
                "serviceAccountName": "deployer",
                "containers": [{
                    "name": "step",
                    "resources": {"limits": {"memory": "512Mi"}},
                    "env": [{"name": "EXTRA", "value": "1"}]
                }]
            }
        })),
    }
}

/// A `type: pod` step running `cmd` in its image.
fn pod_step(cmd: &str) -> StepSpec {
    StepSpec {
        program: Program::Container {
            entrypoint: None,
            command: None,
            cmd: Some(cmd.to_owned()),
        },
        env: Vec::new(),
        workdir: Some("/app".to_owned()),
        mask: Vec::new(),
        image: Some("busybox:1.36".to_owned()),
        resources: None,
        manifest: None,
        step: "report".to_owned(),
        attempt: 1,
        ..script_step()
    }
}

fn access() -> TarballAccess {
    TarballAccess {
        revision: "3f2a9c".to_owned(),
        token: TOKEN.to_owned(),
    }
}

/// Runs `spec`, cancelling `cancel` once a line contains `cancel_on`.
async fn run(
    runner: &LocalRunner,
    spec: &StepSpec,
    cancel_on: Option<&str>,
) -> (AttemptResult, Vec<LogLine>) {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut lines = Vec::new();
    let mut sink = |line: LogLine| {
        if cancel_on.is_some_and(|text| line.line.contains(text)) {
            trigger.cancel();
        }
        lines.push(line);
    };
    let access = access();
    let result = runner.run_pod(spec, Some(&access), &mut sink, cancel).await;
    (result, lines)
}

fn texts(lines: &[LogLine]) -> Vec<String> {
    lines.iter().map(|line| line.line.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_pod_step_runs_in_the_pod_it_describes() {
    let cluster = FakeCluster::start(|_| Behaviour::Run {
        lines: vec![
            "deploying web".to_owned(),
            "key super-secret-key".to_owned(),
            "OUTPUT: {\"from\": \"line\"}".to_owned(),
        ],
        exit: Some(0),
        message: Some("{\"url\": \"https://web\"}".to_owned()),
        reason: None,
    })
    .await;
    let runner = local(runner(&cluster, None).await);
    let (result, lines) = run(&runner, &script_step(), None).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?} {lines:?}");
    // `$STROEM_OUTPUT` (the termination message) wins over the OUTPUT: line (WF §11.3).
    assert_eq!(result.output, json!({"url": "https://web"}));
    let texts = texts(&lines);
    assert!(texts.contains(&"key ••••••".to_owned()), "{texts:?}");
    assert!(!texts.iter().any(|line| line.contains("super-secret-key")));

    let created = cluster.created();
    assert_eq!(created.len(), 1);
    let pod = &created[0];
    insta::assert_json_snapshot!("script_pod", pod);
    // The workspace token is in `workspace-init` only; the step never sees it.
    assert!(pod["spec"]["initContainers"].to_string().contains(TOKEN));
    assert!(!pod["spec"]["containers"].to_string().contains(TOKEN));
    // The pod is gone when its attempt is.
    assert_eq!(cluster.pod_names(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_step_runs_its_image_and_fails_with_its_exit_code() {
    let cluster =
        FakeCluster::start(|_| Behaviour::exits(3, &["checking", "report failed: no data"])).await;
    let runner = local(runner(&cluster, None).await);
    let (result, lines) = run(&runner, &pod_step("./report --all"), None).await;
    assert_eq!(result.outcome, Outcome::Failed);
    // Pods have one stream: the last lines end the message (WF §11.2, §11.4).
    assert_eq!(
        result.error_message.as_deref(),
        Some("exit code 3\nchecking\nreport failed: no data"),
        "{lines:?}"
    );
    insta::assert_json_snapshot!("container_pod", cluster.created()[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_is_the_steps_error() {
    let cluster = FakeCluster::start(|_| Behaviour::PullError).await;
    let runner = local(runner(&cluster, None).await);
    let (result, _) = run(&runner, &pod_step("true"), None).await;
    assert_eq!(result.outcome, Outcome::Failed);
    let message = result.error_message.unwrap_or_default();
    assert!(
        message.starts_with(
            "cannot pull image 'busybox:1.36' for container 'step': ErrImagePull: failed to pull"
        ),
        "{message}"
    );
    assert_eq!(cluster.pod_names(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_no_node_can_take_fails_as_unschedulable() {
    let cluster = FakeCluster::start(|_| Behaviour::Unschedulable).await;
    let runner = local(runner(&cluster, None).await);
    let (result, lines) = run(&runner, &pod_step("true"), None).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(
        result.error_message.as_deref(),
        Some("the pod cannot be scheduled: 0/3 nodes are available: 3 Insufficient memory."),
        "{lines:?}"
    );
    assert_eq!(cluster.pod_names(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_workspace_init_is_reported_with_its_log() {
    let cluster = FakeCluster::start(|_| Behaviour::InitFails {
        code: 22,
        log: "curl: (22) The requested URL returned error: 401".to_owned(),
    })
    .await;
    let runner = local(runner(&cluster, None).await);
    let (result, _) = run(&runner, &script_step(), None).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(
        result.error_message.as_deref(),
        Some(
            "cannot prepare the pod: init container 'workspace-init' exited with code 22\n\
             curl: (22) The requested URL returned error: 401"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_memory_kill_says_so() {
    let cluster = FakeCluster::start(|_| Behaviour::Run {
        lines: vec!["allocating".to_owned()],
        exit: Some(137),
        message: None,
        reason: Some("OOMKilled".to_owned()),
    })
    .await;
    let runner = local(runner(&cluster, None).await);
    let (result, _) = run(&runner, &script_step(), None).await;
    assert_eq!(
        result.error_message.as_deref(),
        Some("exit code 137: killed for running out of memory (memory limit 256Mi)\nallocating")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_deletes_the_pod_with_the_grace_period() {
    let cluster = FakeCluster::start(|_| Behaviour::runs_forever(&["started"])).await;
    let runner = local(runner(&cluster, None).await);
    let (result, lines) = run(&runner, &pod_step("sleep 600"), Some("started")).await;
    assert_eq!(result.outcome, Outcome::Cancelled, "{lines:?}");
    let name = cluster.created()[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    assert_eq!(
        cluster.deletions(),
        vec![Deletion {
            name,
            grace_period_seconds: Some(GRACE_SECS as i64)
        }]
    );
    assert_eq!(cluster.pod_names(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_deletes_the_pod_with_the_grace_period() {
    let cluster = FakeCluster::start(|_| Behaviour::runs_forever(&["started"])).await;
    let runner = local(runner(&cluster, None).await);
    let spec = StepSpec {
        timeout_secs: Some(1),
        ..pod_step("sleep 600")
    };
    let (result, _) = run(&runner, &spec, None).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(
        result.error_message.as_deref(),
        Some("timed out after 1s\nstarted")
    );
    let deletions = cluster.deletions();
    assert_eq!(deletions.len(), 1, "{deletions:?}");
    assert_eq!(deletions[0].grace_period_seconds, Some(GRACE_SECS as i64));
    assert_eq!(cluster.pod_names(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_manifest_is_refused_by_the_worker_too() {
    let cluster = FakeCluster::start(|_| Behaviour::exits(0, &[])).await;
    let runner = local(runner(&cluster, None).await);
    let spec = StepSpec {
        manifest: Some(
            json!({"spec": {"hostNetwork": true, "containers": [{"name": "step", "image": "evil"}]}}),
        ),
        ..script_step()
    };
    let (result, _) = run(&runner, &spec, None).await;
    assert_eq!(result.outcome, Outcome::FailedPermanently);
    assert_eq!(
        result.error_message.as_deref(),
        Some(
            "manifest.spec.hostNetwork: a pod manifest must not set spec.hostNetwork to true; \
             manifest.spec.containers[0].image: a pod manifest must not change the image of the \
             'step' container; set the action's image, entrypoint, command or cmd instead"
        )
    );
    assert!(cluster.created().is_empty(), "no pod is created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_dead_worker_processes_are_deleted_at_start_up() {
    let cluster = FakeCluster::start(|_| Behaviour::runs_forever(&[])).await;
    let home = tempfile::tempdir().expect("home");
    let root = home.path().join("attempts");
    let alive = root.join("0193aaaa-live");
    std::fs::create_dir_all(&alive).expect("live instance");
    let dead = root.join("0193bbbb-dead");
    let other_root = home.path().join("elsewhere");
    let pod = |name: &str, instance: &std::path::Path, root: &std::path::Path| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": {
                    "io.stroem.managed": "true",
                    "io.stroem.instance": stroem::runner::pod::instance_label(instance),
                    "io.stroem.scratch-root": stroem::runner::pod::root_label(root),
                },
                "annotations": {
                    "io.stroem.instance": instance.display().to_string(),
                    "io.stroem.scratch-root": root.display().to_string(),
                }
            },
            "spec": {"containers": [{"name": "step", "image": "x"}]}
        })
    };
    cluster.insert(NAMESPACE, pod("live", &alive, &root));
    cluster.insert(NAMESPACE, pod("dead", &dead, &root));
    cluster.insert(
        NAMESPACE,
        pod("other-worker", &other_root.join("x"), &other_root),
    );
    cluster.insert("elsewhere", pod("other-namespace", &dead, &root));
    let kubernetes = runner(&cluster, Some((alive.clone(), root.clone()))).await;
    assert_eq!(kubernetes.remove_leftovers().await, Ok(1));
    let mut names = cluster.pod_names();
    names.sort();
    assert_eq!(names, ["live", "other-namespace", "other-worker"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_is_a_clear_error() {
    stroem::install_crypto_provider();
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
    let error = KubernetesRunner::connect_with(config, settings(None))
        .await
        .expect_err("nothing listens on port 9");
    assert!(
        error.starts_with(
            "cannot reach the Kubernetes API server at http://127.0.0.1:9/ (namespace 'stroem-jobs')"
        ),
        "{error}"
    );
}

/// The embedded worker of a server without `worker_token`: its pods fetch their revision with
/// the workspace token, which the tarball route honours although remote workers are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_workers_pods_fetch_without_a_worker_token() {
    use crate::server_harness::{Backend, Home};

    let cluster = FakeCluster::start(|_| {
        Behaviour::Fetch(Box::new(Behaviour::exits(
            0,
            &["OUTPUT: {\"fetched\": true}"],
        )))
    })
    .await;
    let home = Home::new(Backend::Sqlite).await;
    let workspace = home.workspace(
        "tasks:\n  fetch:\n    flow:\n      get: { type: script, runner: pod, script: ls }\n",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    home.configure(&format!(
        "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\n\
         kubernetes: {{ namespace: {NAMESPACE}, server_url: \"{url}\" }}",
        workspace.display()
    ));
    let kubeconfig = cluster.kubeconfig(home.path());
    let kubeconfig = kubeconfig.display().to_string();
    let server = home
        .start_on(listener, &[("KUBECONFIG", kubeconfig.as_str())])
        .await;
    // Remote workers are refused: no worker_token.
    let refused = server
        .call("POST", "/worker/heartbeat", &[], Some("{}"))
        .await;
    assert_eq!(refused.status, 401);
    let id = server.execute("default", "fetch", "{}").await;
    let job = server.wait_finished(id).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["output"], json!({"get": {"fetched": true}}));
    assert_eq!(cluster.fetches(), [200]);
    server.stop().await;
}
