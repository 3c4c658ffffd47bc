//! `cargo bench --bench serve`: the job engine's latency and throughput with the embedded worker,
//! on SQLite and on PostgreSQL (DESIGN §9, issue "stroem serve").
//!
//! A real server runs in-process (store, orchestrator, embedded worker, real `sh` processes);
//! jobs are created through the orchestrator, as the API handler does, so the figures are the
//! engine's, without HTTP parsing. Every figure is also given as a ratio to the cost of spawning
//! `sh -c true`, measured in the same run, so results from different machines compare.
//!
//! PostgreSQL is used when `STROEM_BENCH_PG` (default `postgres://postgres@127.0.0.1:5432`)
//! answers; a throwaway database is created and dropped.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use stroem::cli::serve::{Running, start};
use stroem::config::{Config, ConfigSource};
use stroem::engine::{JobState, JobStatus};
use stroem::orchestrator::JobSource;

const LATENCY_RUNS: usize = 100;
const THROUGHPUT_JOBS: usize = 300;
const CHAIN_RUNS: usize = 5;
const CHAIN_STEPS: usize = 100;
/// The long chain shows whether the per-step cost stays flat as a job grows (DESIGN §9).
const LONG_CHAIN_RUNS: usize = 2;
const LONG_CHAIN_STEPS: usize = 1_000;
/// Slots of the embedded worker and of each remote worker.
const SLOTS: usize = 4;
const TOKEN: &str = "a-benchmark-worker-token-long-enough";

fn main() {
    // `cargo bench` passes `--bench`; test runners (`cargo test --all-targets`, nextest's
    // `--list`) run bench targets too and must not start a benchmark.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let spawn = spawn_cost();
    println!(
        "machine: {} cores; sh -c true: {:.2} ms",
        cores(),
        ms(spawn)
    );
    let admin = std::env::var("STROEM_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let mut backends = vec![("sqlite", None)];
    if runtime.block_on(pg_available(&admin)) {
        backends.push(("postgres", Some(admin)));
    }
    // Words after `--` narrow the run, e.g. `cargo bench --bench serve -- sqlite embedded`:
    // a backend name, `embedded` or `remote`.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |group: &[&str], name: &str| {
        !words.iter().any(|word| group.contains(&word.as_str())) || words.iter().any(|w| w == name)
    };
    backends.retain(|(name, _)| wanted(&["sqlite", "postgres"], name));
    let per_step =
        |chain: Duration, steps: usize| chain.saturating_sub(spawn * steps as u32) / steps as u32;

    if wanted(&["embedded", "remote"], "embedded") {
        println!();
        println!("Embedded worker ({SLOTS} slots):");
        println!();
        println!(
            "| backend | trigger → step running p50 | 1-step p50 | 1-step p95 | 1-step jobs/s | \
         100-step chain | per step over spawn | 1000-step chain | per step over spawn |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for (name, admin) in &backends {
            let figures = runtime.block_on(measure(admin.as_deref(), Workers::Embedded));
            let chain = figures.chain.unwrap_or_default();
            let long = figures.long_chain.unwrap_or_default();
            println!(
                "| {name} | {:.1} ms ({:.0}× spawn) | {:.1} ms ({:.0}× spawn) | {:.1} ms | {:.0} | \
             {:.0} ms | {:.2} ms | {:.0} ms | {:.2} ms |",
                ms(figures.hop_p50),
                ms(figures.hop_p50) / ms(spawn),
                ms(figures.p50),
                ms(figures.p50) / ms(spawn),
                ms(figures.p95),
                figures.throughput,
                ms(chain),
                ms(per_step(chain, CHAIN_STEPS)),
                ms(long),
                ms(per_step(long, LONG_CHAIN_STEPS)),
            );
        }
    }
    if !wanted(&["embedded", "remote"], "remote") {
        return;
    }
    println!();
    println!("Remote `stroem work` processes on loopback ({SLOTS} slots each):");
    println!();
    println!(
        "| backend | trigger → step running p50 | 1-step p50 | 1-step p95 | jobs/s, 1 worker | \
         jobs/s, 4 workers |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, admin) in &backends {
        let one = runtime.block_on(measure(admin.as_deref(), Workers::Remote(1)));
        let four = runtime.block_on(measure(admin.as_deref(), Workers::Remote(4)));
        println!(
            "| {name} | {:.1} ms ({:.0}× spawn) | {:.1} ms | {:.1} ms | {:.0} | {:.0} |",
            ms(one.hop_p50),
            ms(one.hop_p50) / ms(spawn),
            ms(one.p50),
            ms(one.p95),
            one.throughput,
            four.throughput,
        );
    }
}

/// Who runs the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workers {
    Embedded,
    /// This many `stroem work` processes.
    Remote(usize),
}

struct Figures {
    /// Trigger → the first step's `start` report applied (the step `running`).
    hop_p50: Duration,
    p50: Duration,
    p95: Duration,
    throughput: f64,
    chain: Option<Duration>,
    long_chain: Option<Duration>,
}

async fn measure(pg_admin: Option<&str>, workers: Workers) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    write_workspace(dir.path());
    let (db_url, cleanup) = match pg_admin {
        None => (format!("sqlite://{}/bench.db", dir.path().display()), None),
        Some(admin) => {
            let name = format!("stroem_bench_{}", std::process::id());
            psql(admin, &format!("DROP DATABASE IF EXISTS {name}")).await;
            psql(admin, &format!("CREATE DATABASE {name}")).await;
            (format!("{admin}/{name}"), Some((admin.to_owned(), name)))
        }
    };
    let running = server(dir.path(), &db_url, workers == Workers::Embedded).await;
    let mut remote = Vec::new();
    if let Workers::Remote(count) = workers {
        for index in 0..count {
            remote.push(RemoteWorker::start(dir.path(), &running, index));
        }
        wait_workers(&running, count).await;
    }

    let mut latencies = Vec::with_capacity(LATENCY_RUNS);
    let mut hops = Vec::with_capacity(LATENCY_RUNS);
    for _ in 0..LATENCY_RUNS {
        let (total, job) = run_job(&running, "one").await;
        latencies.push(total);
        hops.push(first_step_hop(&job));
    }
    latencies.sort();
    hops.sort();

    let started = Instant::now();
    let mut ids = Vec::with_capacity(THROUGHPUT_JOBS);
    for _ in 0..THROUGHPUT_JOBS {
        let job = running
            .orchestrator
            .create_job("default", "one", json!({}), JobSource::api())
            .await
            .expect("job created");
        ids.push(job.id);
    }
    for id in ids {
        wait_done(&running, id).await;
    }
    let throughput = THROUGHPUT_JOBS as f64 / started.elapsed().as_secs_f64();

    let (mut chain, mut long_chain) = (None, None);
    if workers == Workers::Embedded {
        let mut total = Duration::ZERO;
        for _ in 0..CHAIN_RUNS {
            total += run_job(&running, "chain").await.0;
        }
        chain = Some(total / CHAIN_RUNS as u32);
        let (_, job) = run_job(&running, "chain").await;
        breakdown(&running, "100-step chain", &job).await;
        let mut total = Duration::ZERO;
        for _ in 0..LONG_CHAIN_RUNS {
            total += run_job(&running, "long_chain").await.0;
        }
        long_chain = Some(total / LONG_CHAIN_RUNS as u32);
        let (_, job) = run_job(&running, "long_chain").await;
        breakdown(&running, "1000-step chain", &job).await;
    }
    drop(remote);
    running.stop().await;
    if let Some((admin, name)) = cleanup {
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
    }
    Figures {
        hop_p50: hops[hops.len() / 2],
        p50: latencies[latencies.len() / 2],
        p95: latencies[latencies.len() * 95 / 100],
        throughput,
        chain,
        long_chain,
    }
}

/// From the job's creation to its first step's `start`, by the server's clock (milliseconds).
fn first_step_hop(job: &JobState) -> Duration {
    let started = job
        .steps
        .first()
        .and_then(|step| step.started_at)
        .expect("the step started");
    (started - job.created_at).to_std().unwrap_or_default()
}

/// Where a chain's time goes, from the server's clock (milliseconds, averaged over its steps):
/// the previous step's end → the claim, the claim → the `start` report, and the start → the
/// end of the attempt (working copy, process, `complete` report).
async fn breakdown(running: &Running, label: &str, job: &JobState) {
    let leases = running
        .orchestrator
        .store()
        .job_leases(job.id)
        .await
        .expect("leases read");
    let (mut to_claim, mut to_start, mut to_end) = (0i64, 0i64, 0i64);
    let mut previous_end = job.created_at;
    for (step, lease) in job.steps.iter().zip(&leases) {
        let (Some(started), Some(ended)) = (step.started_at, step.completed_at) else {
            continue;
        };
        to_claim += (lease.claimed_at - previous_end)
            .num_microseconds()
            .unwrap_or(0);
        to_start += (started - lease.claimed_at).num_microseconds().unwrap_or(0);
        to_end += (ended - started).num_microseconds().unwrap_or(0);
        previous_end = ended;
    }
    let steps = job.steps.len().max(1) as f64 * 1_000.0;
    eprintln!(
        "{label} per step: ready → claimed {:.2} ms, claimed → started {:.2} ms, \
         started → ended {:.2} ms",
        to_claim as f64 / steps,
        to_start as f64 / steps,
        to_end as f64 / steps,
    );
}

/// One `stroem work` process; killed when dropped.
struct RemoteWorker(std::process::Child);

impl RemoteWorker {
    fn start(dir: &Path, running: &Running, index: usize) -> RemoteWorker {
        let home = dir.join(format!("worker-{index}"));
        std::fs::create_dir_all(&home).expect("worker dir");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_stroem"))
            .args(["work", "-s", &format!("http://{}", running.address)])
            .args(["--name", &format!("bench-{index}")])
            .args(["--max-concurrent", &SLOTS.to_string()])
            .current_dir(&home)
            .env("STROEM__WORKER_TOKEN", TOKEN)
            .env("STROEM__DATA_DIR", &home)
            .env_remove("STROEM_CONFIG")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("stroem work starts");
        RemoteWorker(child)
    }
}

impl Drop for RemoteWorker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `count` workers have registered.
async fn wait_workers(running: &Running, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (workers, _) = running
            .orchestrator
            .store()
            .list_workers(100, 0)
            .await
            .expect("workers listed");
        if workers.len() >= count {
            return;
        }
        assert!(Instant::now() < deadline, "workers did not register");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn server(dir: &Path, db_url: &str, embedded_worker: bool) -> Running {
    let config_path = dir.join("stroem.yaml");
    let config = json!({
        "data_dir": dir.join("data"),
        "db": {"url": db_url},
        "workspaces": {"default": {"type": "folder", "path": dir.join("workspace")}},
        "max_concurrent": SLOTS,
        "embedded_worker": embedded_worker,
        "worker_token": TOKEN,
    });
    std::fs::write(&config_path, config.to_string()).expect("config written");
    let env: BTreeMap<String, String> =
        BTreeMap::from([("PATH".to_owned(), std::env::var("PATH").unwrap_or_default())]);
    let config = Config::load(ConfigSource {
        config: Some(config_path),
        env: env.clone(),
        cwd: dir.to_path_buf(),
    })
    .expect("config loads");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    start(config, env, listener).await.expect("server starts")
}

fn write_workspace(dir: &Path) {
    let workflows = dir.join("workspace/.workflows");
    std::fs::create_dir_all(&workflows).expect("workspace dir");
    let chain = |name: &str, steps: usize| {
        let mut chain = format!("  {name}:\n    flow:\n");
        for i in 0..steps {
            chain.push_str(&format!("      s{i}:\n        action: noop\n"));
            if i > 0 {
                chain.push_str(&format!("        depends_on: [s{}]\n", i - 1));
            }
        }
        chain
    };
    let yaml = format!(
        "actions:\n  noop:\n    type: script\n    script: \"true\"\ntasks:\n  one:\n    flow:\n      only: {{ action: noop }}\n{}{}",
        chain("chain", CHAIN_STEPS),
        chain("long_chain", LONG_CHAIN_STEPS),
    );
    std::fs::write(workflows.join("bench.yaml"), yaml).expect("workflow written");
}

/// Runs one job to its end: the time it took and the job as stored.
async fn run_job(running: &Running, task: &str) -> (Duration, JobState) {
    let started = Instant::now();
    let job = running
        .orchestrator
        .create_job("default", task, json!({}), JobSource::api())
        .await
        .expect("job created");
    let job = wait_done(running, job.id).await;
    (started.elapsed(), job)
}

/// Polls the job's status (one row, not its steps) every millisecond until it ends.
async fn wait_done(running: &Running, id: uuid::Uuid) -> JobState {
    let deadline = Instant::now() + Duration::from_secs(300);
    let store = running.orchestrator.store();
    loop {
        let finished = store
            .job_finished(id)
            .await
            .expect("job read")
            .expect("job exists");
        if finished {
            let job = store
                .get_job(id)
                .await
                .expect("job read")
                .expect("job exists");
            assert_eq!(
                job.status,
                JobStatus::Completed,
                "bench job failed: {:?}",
                job.error
            );
            return job;
        }
        assert!(Instant::now() < deadline, "bench job {id} did not finish");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn spawn_cost() -> Duration {
    const RUNS: u32 = 200;
    let started = Instant::now();
    for _ in 0..RUNS {
        std::process::Command::new("sh")
            .args(["-c", "true"])
            .status()
            .expect("sh runs");
    }
    started.elapsed() / RUNS
}

async fn pg_available(admin: &str) -> bool {
    tokio::process::Command::new("psql")
        .args([admin, "-qAtc", "SELECT 1"])
        .output()
        .await
        .is_ok_and(|output| output.status.success())
}

async fn psql(admin: &str, sql: &str) {
    let output = tokio::process::Command::new("psql")
        .args([admin, "-qAtc", sql])
        .output()
        .await
        .expect("psql runs");
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
