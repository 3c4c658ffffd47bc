//! `mode: local` across remote workers (WF §8, API §7.9): every worker step of a job runs on
//! the worker its first claim pinned it to, in one working directory the steps share, which the
//! worker deletes once a heartbeat releases the job; a lost pinned worker fails the job's
//! unfinished worker steps without retry.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use stroem::engine::{JobStatus, StepStatus};

use super::{Backend, EXPIRY_WAIT, Harness, WAIT, alive, pid_file};

/// The working directories the `write` steps recorded, once every job recorded its own.
async fn recorded_workdirs(path: &Path, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let dirs: Vec<String> = text.lines().map(str::to_owned).collect();
        if dirs.len() >= count {
            return dirs;
        }
        assert!(tokio::time::Instant::now() < deadline, "workdirs: {dirs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn local_jobs_stay_on_one_worker_and_share_a_directory(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    harness.worker("w1", 2);
    harness.worker("w2", 2);
    let dir = harness.dir.path().to_owned();
    let input = json!({"dir": dir.display().to_string()});
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(harness.create("pinned", input.clone()).await);
    }
    let mut holders = BTreeSet::new();
    for &id in &ids {
        let job = harness.finished(id, WAIT).await;
        assert_eq!(job.status, JobStatus::Completed, "{:?}", job.steps);
        let workers = harness.lease_holders(id).await;
        assert_eq!(workers.len(), 1, "every step of job {id} on one worker");
        holders.extend(workers);
        let lines = harness
            .server()
            .orchestrator
            .logs()
            .read(id, 0, 100, None)
            .expect("logs read");
        let seen = lines
            .iter()
            .filter(|line| line.line == "written by step one")
            .count();
        assert_eq!(seen, 3, "the later steps read step one's file: {lines:?}");
        assert!(
            lines
                .iter()
                .any(|line| line.line == "from the revision tarball"),
            "the shared directory is a copy of the revision"
        );
        let detail = harness.job(id).await;
        assert_eq!(detail.mode, stroem::workflow::model::TaskMode::Local);
    }
    // Each job had a directory of its own, deleted once its job was released.
    let workdirs = recorded_workdirs(&dir.join("workdirs.txt"), ids.len()).await;
    assert_eq!(workdirs.iter().collect::<BTreeSet<_>>().len(), ids.len());
    let deadline = tokio::time::Instant::now() + WAIT;
    while workdirs.iter().any(|path| Path::new(path).exists()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "working directories not released: {workdirs:?}\n{}",
            harness.worker_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!holders.is_empty());
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_jobs_stay_on_one_worker_and_share_a_directory_on_sqlite() {
    local_jobs_stay_on_one_worker_and_share_a_directory(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_jobs_stay_on_one_worker_and_share_a_directory_on_postgres() {
    local_jobs_stay_on_one_worker_and_share_a_directory(Backend::Postgres).await;
}

async fn a_lost_pinned_worker_fails_the_job_s_worker_steps(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let doomed = harness.worker("doomed", 2);
    let dir = harness.dir.path().to_owned();
    let id = harness
        .create("stranded", json!({"dir": dir.display().to_string()}))
        .await;
    let hold = pid_file(&harness, id, &dir.join("hold.pid")).await;
    // A healthy worker is there all along, but the job is the doomed one's.
    harness.worker("survivor", 2);
    harness.workers[doomed]
        .child
        .kill()
        .expect("kill -9 the pinned worker");
    let job = harness.finished(id, EXPIRY_WAIT).await;
    assert_eq!(job.status, JobStatus::Failed);
    for name in ["hold", "after"] {
        let step = job.step(name).expect("step");
        assert_eq!(step.status, StepStatus::Failed, "{name}");
        assert_eq!(
            step.error_message.as_deref(),
            Some("pinned worker lost"),
            "{name}"
        );
    }
    assert_eq!(job.step("hold").expect("hold").attempt, 1, "no retry");
    assert_eq!(
        harness.lease_holders(id).await.len(),
        1,
        "never ran elsewhere"
    );
    assert!(!alive(hold), "the step's process died with its worker");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_pinned_worker_fails_the_job_s_worker_steps_on_sqlite() {
    a_lost_pinned_worker_fails_the_job_s_worker_steps(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_pinned_worker_fails_the_job_s_worker_steps_on_postgres() {
    a_lost_pinned_worker_fails_the_job_s_worker_steps(Backend::Postgres).await;
}
