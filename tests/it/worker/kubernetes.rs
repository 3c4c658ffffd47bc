//! Pod steps on remote workers (cargo feature `kubernetes`), with `stroem work` processes
//! talking to the fake API server of [`crate::kubernetes::fake`] through a kubeconfig file:
//! routing to workers that advertise `kubernetes`, the pod fetching its revision with the
//! claim's workspace token (never the worker token), outputs passed between pod steps, and no
//! pod outliving its worker's `kill -9` and restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use stroem::engine::JobStatus;
use uuid::Uuid;

use super::{Backend, Harness, TOKEN, WAIT};
use crate::kubernetes::fake::{Behaviour, FakeCluster, init_env, step_env};

/// `fetch` downloads its revision and prints a line of it; `report` echoes its input through
/// its termination message; `sleeper` never ends.
fn behaviour(pod: &Value) -> Behaviour {
    match step_env(pod, "STROEM_STEP").as_deref() {
        Some("fetch") => Behaviour::Fetch(Box::new(Behaviour::Run {
            lines: vec![
                "from the revision tarball".to_owned(),
                "OUTPUT: {\"line\": \"from the revision tarball\"}".to_owned(),
            ],
            exit: Some(0),
            message: None,
            reason: None,
        })),
        Some("report") => Behaviour::Run {
            lines: vec![step_env(pod, "INPUT_LINE").unwrap_or_default()],
            exit: Some(0),
            message: Some(json!({"echoed": step_env(pod, "INPUT_LINE")}).to_string()),
            reason: None,
        },
        _ => Behaviour::runs_forever(&["up"]),
    }
}

/// A worker with the Kubernetes runner on the fake cluster, pods reaching the server directly.
fn kubernetes_worker(harness: &mut Harness, cluster: &FakeCluster, name: &str) -> usize {
    let url = harness.url();
    let home = harness.dir.path().join(name);
    std::fs::create_dir_all(&home).expect("worker home");
    let kubeconfig = cluster.kubeconfig(&home);
    let kubeconfig = kubeconfig.display().to_string();
    harness.worker_with(
        &url,
        name,
        2,
        &[
            ("KUBECONFIG", kubeconfig.as_str()),
            ("STROEM__KUBERNETES__NAMESPACE", "stroem-jobs"),
            ("STROEM__KUBERNETES__SERVER_URL", url.as_str()),
            ("STROEM__KILL_GRACE_SECS", "1"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_steps_run_on_kubernetes_workers_with_a_workspace_token() {
    let cluster = Arc::new(FakeCluster::start(behaviour).await);
    let mut harness = Harness::start(Backend::Sqlite).await;
    // A worker without the runner never gets a pod step (API §7.5).
    harness.worker("plain", 2);
    kubernetes_worker(&mut harness, &cluster, "kube");
    let id = harness.create("in-pods", json!({})).await;
    let job = harness.finished(id, WAIT).await;
    assert_eq!(
        job.status,
        JobStatus::Completed,
        "{:?} {:?}; workers said:\n{}",
        job.error,
        job.steps
            .iter()
            .map(|step| &step.error_message)
            .collect::<Vec<_>>(),
        harness.worker_logs()
    );
    assert_eq!(
        job.output,
        json!({"report": {"echoed": "from the revision tarball"}})
    );
    let (workers, _) = harness
        .server()
        .orchestrator
        .store()
        .list_workers(10, 0)
        .await
        .expect("workers listed");
    let capabilities: HashMap<String, (Uuid, Vec<String>)> = workers
        .into_iter()
        .map(|worker| (worker.name, (worker.worker_id, worker.capabilities)))
        .collect();
    assert_eq!(capabilities["plain"].1, ["script"]);
    assert_eq!(capabilities["kube"].1, ["script", "kubernetes"]);
    let holders = harness.lease_holders(id).await;
    assert_eq!(
        holders.into_iter().collect::<Vec<_>>(),
        [capabilities["kube"].0]
    );

    // The pod fetched its revision with the claim's workspace token, never the worker token.
    assert_eq!(cluster.fetches(), [200]);
    let created = cluster.created();
    assert_eq!(created.len(), 2);
    for pod in &created {
        assert!(
            !pod.to_string().contains(TOKEN),
            "the worker token is in {pod}"
        );
    }
    let token = init_env(&created[0], "STROEM_WORKSPACE_TOKEN").expect("a workspace token");
    assert!(token.starts_with("stroem-ws."));
    assert!(
        !step_env(&created[0], "TOKEN")
            .unwrap_or_default()
            .is_empty()
    );
    // Its lease has ended: the token opens nothing now.
    let url = init_env(&created[0], "STROEM_TARBALL_URL").expect("the tarball URL");
    let status = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .get(&url)
            .header("authorization", &format!("Bearer {token}"))
            .call()
            .map(|response| response.status().as_u16())
            .unwrap_or(0)
    })
    .await
    .expect("the request thread");
    assert_eq!(status, 401);
    // Masked in the pod's log like any step's.
    let lines: Vec<String> = harness
        .server()
        .orchestrator
        .logs()
        .read(id, 0, 100, None)
        .expect("logs read")
        .into_iter()
        .map(|line| line.line)
        .collect();
    assert!(
        lines.contains(&"from the revision tarball".to_owned()),
        "{lines:?}"
    );
    assert_eq!(
        cluster.pod_names(),
        Vec::<String>::new(),
        "no pod outlives its step"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_deletes_the_pods_of_its_killed_life() {
    let cluster = Arc::new(FakeCluster::start(behaviour).await);
    let mut harness = Harness::start(Backend::Sqlite).await;
    let worker = kubernetes_worker(&mut harness, &cluster, "kube");
    let id = harness.create("pod_sleep", json!({})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while cluster.pod_names().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pod for job {id}; worker said:\n{}",
            harness.worker_logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // kill -9: nothing of the worker runs to delete its pod.
    harness.workers[worker].child.kill().expect("SIGKILL");
    let _ = harness.workers[worker].child.wait();
    assert_eq!(cluster.pod_names().len(), 1, "the pod outlived its worker");
    kubernetes_worker(&mut harness, &cluster, "kube");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cluster.pod_names().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pod of the killed worker is still there; workers said:\n{}",
            harness.worker_logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    harness.stop().await;
}
