//! Docker steps on remote workers (cargo feature `docker`), against podman's Docker-compatible
//! API as `.ci/start-podman.sh` serves it (`STROEM_TEST_DOCKER_HOST`, else `DOCKER_HOST`, else
//! its socket) with its local busybox image: routing to workers that advertise `docker`,
//! outputs passed between container steps, and no container outliving its step's
//! cancellation or its worker's `kill -9` and restart.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use serde_json::json;
use stroem::engine::{JobStatus, StepStatus};
use uuid::Uuid;

use super::{Backend, EXPIRY_WAIT, Harness, WAIT};

use crate::support::docker_host as test_host;

/// A worker with the Docker runner; `never` pulls, as no registry is reachable.
fn docker_worker(harness: &mut Harness, name: &str) -> usize {
    let url = harness.url();
    let host = test_host();
    harness.worker_with(
        &url,
        name,
        2,
        &[
            ("STROEM__DOCKER__HOST", host.as_str()),
            ("STROEM__DOCKER__PULL_POLICY", "never"),
            ("STROEM__KILL_GRACE_SECS", "1"),
        ],
    )
}

async fn engine() -> Docker {
    Docker::connect_with_host(&test_host())
        .expect("client")
        .negotiate_version()
        .await
        .unwrap_or_else(|error| panic!("{error}: start the engine with .ci/start-podman.sh"))
}

/// The containers (running or not) labelled with the job.
async fn containers_of(_docker: &Docker, job: Uuid) -> Vec<String> {
    stroem::runner::docker::list_labelled(&test_host(), &format!("io.stroem.job={job}"))
        .await
        .expect("containers listed")
        .into_iter()
        .map(|listed| listed.id)
        .collect()
}

/// Waits until the job has exactly `count` containers.
async fn wait_for_containers(
    harness: &Harness,
    docker: &Docker,
    job: Uuid,
    count: usize,
    within: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let found = containers_of(docker, job).await;
        if found.len() == count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {job} has containers {found:?}, expected {count}; workers said:\n{}",
            harness.worker_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_steps_run_on_docker_workers_and_pass_outputs() {
    let mut harness = Harness::start(Backend::Sqlite).await;
    // A worker without the runner never gets a docker step (API §7.5).
    harness.worker("plain", 2);
    docker_worker(&mut harness, "boxed");
    let id = harness.create("containers", json!({})).await;
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
    assert_eq!(job.output, json!({"consume": {"m": 42}}));
    let (workers, _) = harness
        .server()
        .orchestrator
        .store()
        .list_workers(10, 0)
        .await
        .expect("workers listed");
    let capabilities: HashMap<String, Vec<String>> = workers
        .into_iter()
        .map(|worker| (worker.name, worker.capabilities))
        .collect();
    assert_eq!(capabilities["plain"], ["script"]);
    assert_eq!(capabilities["boxed"], ["script", "docker"]);
    let boxed: Vec<Uuid> = harness
        .server()
        .orchestrator
        .store()
        .list_workers(10, 0)
        .await
        .expect("workers listed")
        .0
        .into_iter()
        .filter(|worker| worker.name == "boxed")
        .map(|worker| worker.worker_id)
        .collect();
    let holders = harness.lease_holders(id).await;
    assert!(
        holders.iter().all(|holder| boxed.contains(holder)),
        "{holders:?}"
    );
    let lines: Vec<String> = harness
        .server()
        .orchestrator
        .logs()
        .read(id, 0, 100, None)
        .expect("logs read")
        .into_iter()
        .map(|line| line.line)
        .collect();
    assert!(lines.contains(&"token=••••••".to_owned()), "{lines:?}");
    assert!(
        lines.contains(&"from the revision tarball".to_owned()),
        "the working copy is mounted: {lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|line| line.contains("container-secret-value"))
    );
    assert!(containers_of(&engine().await, id).await.is_empty());
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_docker_step_removes_its_container() {
    let mut harness = Harness::start(Backend::Sqlite).await;
    docker_worker(&mut harness, "boxed");
    let docker = engine().await;
    let id = harness.create("container_sleep", json!({})).await;
    wait_for_containers(&harness, &docker, id, 1, WAIT).await;
    harness
        .server()
        .orchestrator
        .cancel_job(id, None)
        .await
        .expect("cancels");
    let job = harness.finished(id, WAIT).await;
    assert_eq!(job.status, JobStatus::Cancelled);
    assert_eq!(
        job.step("sleeper").expect("step").status,
        StepStatus::Cancelled
    );
    wait_for_containers(&harness, &docker, id, 0, WAIT).await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_step_removes_its_container_when_it_restarts() {
    let mut harness = Harness::start(Backend::Sqlite).await;
    let first = docker_worker(&mut harness, "boxed");
    let docker = engine().await;
    let id = harness.create("container_sleep", json!({})).await;
    wait_for_containers(&harness, &docker, id, 1, WAIT).await;
    harness.workers[first]
        .child
        .kill()
        .expect("kill -9 the worker");
    let _ = harness.workers[first].child.wait();
    // Nothing removed it: the worker died without a word.
    assert_eq!(containers_of(&docker, id).await.len(), 1);
    // The same worker (same name, same data directory) starting again removes it.
    docker_worker(&mut harness, "boxed");
    wait_for_containers(&harness, &docker, id, 0, WAIT).await;
    // The step's lease expires and, with one attempt, the step fails.
    let job = harness.finished(id, EXPIRY_WAIT).await;
    assert_eq!(job.status, JobStatus::Failed);
    harness.stop().await;
}
