//! `kill -9` of a worker or of a server with its embedded worker, mid-step (issue #16 item
//! 18): the step's processes die with it, and after a restart and the lease's expiry the retry
//! runs alone. And when the step's supervisor was killed too, the restarted worker kills what
//! its earlier life left before it claims anything.

use std::path::Path;
use std::time::{Duration, Instant};

use super::cluster::{Cluster, HEARTBEAT_TIMEOUT_SECS, WAIT, alive, pid, wait_until};
use crate::server_harness::Backend;

/// The first attempt's processes: the supervisor, the step's shell and its background child.
fn first_attempt(dir: &Path) -> [i32; 3] {
    let step = pid(dir, "step.pid");
    let pids = [pid(dir, "supervisor.pid"), step, pid(dir, "child.pid")];
    for pid in pids {
        assert!(alive(pid), "{pid} runs");
    }
    pids
}

fn assert_gone(pids: &[i32], within: Duration, cluster: &Cluster) {
    let started = Instant::now();
    while pids.iter().any(|pid| alive(*pid)) {
        assert!(
            started.elapsed() < within,
            "the step's processes {pids:?} outlived their worker; logs:\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The job ended `completed` on a later attempt, and no attempt saw an earlier one running.
fn assert_retried_alone(cluster: &Cluster, id: &str, dir: &Path) {
    let job = cluster.ended_job(id);
    assert_eq!(job["status"], "completed", "{job:#}\n{}", cluster.logs());
    let step = &job["steps"][0];
    assert!(step["attempt"].as_u64() >= Some(2), "{step:#}");
    let overlap = std::fs::read_to_string(dir.join("overlap")).unwrap_or_default();
    assert!(overlap.is_empty(), "attempts overlapped: {overlap}");
    cluster.assert_consistent(id);
}

fn a_killed_server_takes_its_embedded_worker_s_step_with_it(backend: Backend) {
    let mut cluster = Cluster::new(backend, true);
    cluster.start_server();
    let dir = cluster.root().join("files");
    std::fs::create_dir_all(&dir).expect("files");
    let id = cluster.execute_hang(&dir);
    let pids = first_attempt(&dir);

    Cluster::kill9(&mut cluster.server);
    // The supervisor stops the group as a timeout would: SIGTERM, then SIGKILL after 2 s.
    assert_gone(&pids, WAIT, &cluster);

    cluster.start_server();
    assert_retried_alone(&cluster, &id, &dir);
}

#[test]
fn a_killed_server_takes_its_embedded_worker_s_step_with_it_on_sqlite() {
    a_killed_server_takes_its_embedded_worker_s_step_with_it(Backend::Sqlite);
}

#[test]
fn a_killed_server_takes_its_embedded_worker_s_step_with_it_on_postgres() {
    a_killed_server_takes_its_embedded_worker_s_step_with_it(Backend::Postgres);
}

#[test]
fn a_killed_worker_takes_its_step_with_it_and_the_retry_runs_alone() {
    let mut cluster = Cluster::new(Backend::Sqlite, false);
    cluster.start_server();
    cluster.start_worker();
    let dir = cluster.root().join("files");
    std::fs::create_dir_all(&dir).expect("files");
    let id = cluster.execute_hang(&dir);
    let pids = first_attempt(&dir);

    Cluster::kill9(&mut cluster.worker);
    assert_gone(&pids, WAIT, &cluster);

    cluster.start_worker();
    assert_retried_alone(&cluster, &id, &dir);
}

#[test]
fn a_restarted_worker_kills_what_its_earlier_life_left_before_claiming() {
    let mut cluster = Cluster::new(Backend::Sqlite, false);
    cluster.start_server();
    cluster.start_worker();
    let dir = cluster.root().join("files");
    std::fs::create_dir_all(&dir).expect("files");
    let id = cluster.execute_hang(&dir);
    let [supervisor, step, child] = first_attempt(&dir);

    // The supervisor and the worker die together (an OOM kill of both, a `kill -9` of the
    // tree): nothing is left to stop the step.
    let signal = |pid: u32, signal| {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal sent");
    };
    // The worker is frozen first, so it cannot stop the group when its supervisor goes.
    let worker = cluster.worker.as_ref().expect("worker").id();
    signal(worker, nix::sys::signal::Signal::SIGSTOP);
    signal(supervisor.unsigned_abs(), nix::sys::signal::Signal::SIGKILL);
    Cluster::kill9(&mut cluster.worker);
    wait_until("the supervisor to go", WAIT, || !alive(supervisor));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        alive(step) && alive(child),
        "the step outlives a worker whose supervisor is gone"
    );

    let restarted = Instant::now();
    cluster.start_worker();
    // The new worker stopped them before it registered, so well before the lease expired.
    assert_gone(&[step, child], Duration::from_secs(5), &cluster);
    assert!(
        restarted.elapsed() < Duration::from_secs(HEARTBEAT_TIMEOUT_SECS + 5),
        "stopped at start, not by expiry"
    );
    assert_retried_alone(&cluster, &id, &dir);
}
