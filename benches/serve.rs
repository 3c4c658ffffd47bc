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
use stroem::engine::JobStatus;
use stroem::orchestrator::JobSource;

const LATENCY_RUNS: usize = 100;
const THROUGHPUT_JOBS: usize = 300;
const CHAIN_RUNS: usize = 5;
const CHAIN_STEPS: usize = 100;

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
    println!();
    println!(
        "| backend | 1-step p50 | 1-step p95 | 1-step jobs/s | 100-step chain | per step over spawn |"
    );
    println!("|---|---|---|---|---|---|");
    let admin = std::env::var("STROEM_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let mut backends = vec![("sqlite", None)];
    if runtime.block_on(pg_available(&admin)) {
        backends.push(("postgres", Some(admin)));
    }
    for (name, admin) in backends {
        let figures = runtime.block_on(measure(admin.as_deref()));
        let per_step =
            figures.chain.saturating_sub(spawn * CHAIN_STEPS as u32) / CHAIN_STEPS as u32;
        println!(
            "| {name} | {:.1} ms ({:.0}× spawn) | {:.1} ms | {:.0} | {:.0} ms | {:.2} ms |",
            ms(figures.p50),
            ms(figures.p50) / ms(spawn),
            ms(figures.p95),
            figures.throughput,
            ms(figures.chain),
            ms(per_step),
        );
    }
}

struct Figures {
    p50: Duration,
    p95: Duration,
    throughput: f64,
    chain: Duration,
}

async fn measure(pg_admin: Option<&str>) -> Figures {
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
    let running = server(dir.path(), &db_url).await;

    let mut latencies = Vec::with_capacity(LATENCY_RUNS);
    for _ in 0..LATENCY_RUNS {
        latencies.push(run_job(&running, "one").await);
    }
    latencies.sort();

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

    let mut chain = Duration::ZERO;
    for _ in 0..CHAIN_RUNS {
        chain += run_job(&running, "chain").await;
    }
    running.stop().await;
    if let Some((admin, name)) = cleanup {
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
    }
    Figures {
        p50: latencies[latencies.len() / 2],
        p95: latencies[latencies.len() * 95 / 100],
        throughput,
        chain: chain / CHAIN_RUNS as u32,
    }
}

async fn server(dir: &Path, db_url: &str) -> Running {
    let config_path = dir.join("stroem.yaml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir: {data}\ndb:\n  url: \"{db_url}\"\nworkspaces:\n  default: {{ type: folder, path: {ws} }}\nmax_concurrent: 4\n",
            data = dir.join("data").display(),
            ws = dir.join("workspace").display(),
        ),
    )
    .expect("config written");
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
    let mut chain = String::from("  chain:\n    flow:\n");
    for i in 0..CHAIN_STEPS {
        chain.push_str(&format!("      s{i}:\n        action: noop\n"));
        if i > 0 {
            chain.push_str(&format!("        depends_on: [s{}]\n", i - 1));
        }
    }
    let yaml = format!(
        "actions:\n  noop:\n    type: script\n    script: \"true\"\ntasks:\n  one:\n    flow:\n      only: {{ action: noop }}\n{chain}"
    );
    std::fs::write(workflows.join("bench.yaml"), yaml).expect("workflow written");
}

async fn run_job(running: &Running, task: &str) -> Duration {
    let started = Instant::now();
    let job = running
        .orchestrator
        .create_job("default", task, json!({}), JobSource::api())
        .await
        .expect("job created");
    wait_done(running, job.id).await;
    started.elapsed()
}

async fn wait_done(running: &Running, id: uuid::Uuid) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = running
            .orchestrator
            .store()
            .get_job(id)
            .await
            .expect("job read")
            .expect("job exists");
        if job.is_finished() {
            assert_eq!(
                job.status,
                JobStatus::Completed,
                "bench job failed: {:?}",
                job.error
            );
            return;
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
