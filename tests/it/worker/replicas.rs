//! Servers that come and go under running workers: two `serve` replicas on one PostgreSQL
//! database sharing the work (issue #4 item 5), and a server restarted while a remote worker
//! runs a step (API §7.4, §8.5).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use stroem::cli::serve::Running;
use stroem::engine::{JobStatus, StepStatus};
use uuid::Uuid;

use super::{Backend, Harness, WAIT, pid_file};

/// A job made ready on one replica must reach a worker long-polling on another well before
/// that worker's poll (25 s) would end on its own.
const PROMPT: Duration = Duration::from_secs(5);

/// Waits until `count` workers are registered.
async fn registered(server: &Running, count: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (workers, _) = server
            .orchestrator
            .store()
            .list_workers(100, 0)
            .await
            .expect("workers listed");
        if workers.len() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} workers never registered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every job ran each of its steps under exactly one lease, as attempt 1.
async fn ran_once(harness: &Harness, ids: &[Uuid]) {
    for &id in ids {
        let job = harness.job(id).await;
        assert_eq!(job.status, JobStatus::Completed, "{id}: {:?}", job.error);
        let leases = harness
            .server()
            .orchestrator
            .store()
            .job_leases(id)
            .await
            .expect("leases read");
        assert_eq!(leases.len(), job.steps.len(), "{id}: one lease per step");
        assert!(
            job.steps.iter().all(|step| step.attempt == 1),
            "{id}: every step ran once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_triggered_on_one_replica_runs_at_once_on_a_worker_of_the_other() {
    let mut harness = Harness::start(Backend::Postgres).await;
    let replica = harness.boot("replica", "127.0.0.1:0").await;
    let replica_url = format!("http://{}", replica.address);
    harness.worker_of(&replica_url, "on-replica", 2);
    registered(&replica, 1).await;

    // One job at a time: the worker's claims wait on the replica while the job is created on
    // the first server, so only the cross-server wake-up can hand it over promptly.
    for round in 0..5 {
        let started = Instant::now();
        let id = harness.create("quick", json!({})).await;
        let job = harness.finished(id, WAIT).await;
        assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
        assert!(
            started.elapsed() < PROMPT,
            "round {round}: the job took {:?}; workers said:\n{}",
            started.elapsed(),
            harness.worker_logs()
        );
    }

    // Many jobs on both servers with a worker on each: every step runs exactly once.
    let url = harness.url();
    harness.worker_of(&url, "on-first", 2);
    registered(&replica, 2).await;
    let mut ids = Vec::new();
    for index in 0..12 {
        let server = if index % 2 == 0 {
            harness.server()
        } else {
            &replica
        };
        let job = server
            .orchestrator
            .create_job(
                "default",
                "spread",
                json!({}),
                stroem::orchestrator::JobSource::api(),
            )
            .await
            .expect("job created");
        ids.push(job.id);
    }
    for &id in &ids {
        harness.finished(id, WAIT).await;
    }
    ran_once(&harness, &ids).await;
    replica.stop().await;
    harness.stop().await;
}

async fn a_restarted_server_takes_the_report_of_a_step_that_ran_while_it_was_down(
    backend: Backend,
) {
    let mut harness = Harness::start(backend).await;
    harness.worker("w", 1);
    let marks = harness.dir.path().join("marks");
    std::fs::create_dir_all(&marks).expect("mkdir");
    let id = harness
        .create("restart", json!({"dir": marks.display().to_string()}))
        .await;
    pid_file(&harness, id, &marks.join("slow.pid")).await;
    assert_eq!(
        harness.job(id).await.steps[0].status,
        StepStatus::Running,
        "the step runs before the server stops"
    );

    let address = harness.server().address.to_string();
    harness.server.take().expect("server running").stop().await;
    // The step ends while no server listens: its report must wait for the restart.
    wait_for_file(&marks.join("done")).await;
    harness.server = Some(harness.boot("server", &address).await);

    let job = harness.finished(id, WAIT).await;
    assert_eq!(
        job.status,
        JobStatus::Completed,
        "{:?}; workers said:\n{}",
        job.error,
        harness.worker_logs()
    );
    let runs = std::fs::read_to_string(marks.join("runs.txt")).expect("runs written");
    assert_eq!(runs.lines().count(), 1, "the step ran exactly once");
    ran_once(&harness, &[id]).await;
    let lines = harness
        .server()
        .orchestrator
        .logs()
        .read(id, 0, 100, None)
        .expect("logs read");
    assert!(
        lines.iter().any(|line| line.line == "finished"),
        "the line printed while the server was down was delivered after the restart"
    );
    harness.stop().await;
}

async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + WAIT;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_takes_the_report_of_a_step_that_ran_while_it_was_down_on_sqlite() {
    a_restarted_server_takes_the_report_of_a_step_that_ran_while_it_was_down(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_takes_the_report_of_a_step_that_ran_while_it_was_down_on_postgres() {
    a_restarted_server_takes_the_report_of_a_step_that_ran_while_it_was_down(Backend::Postgres)
        .await;
}
