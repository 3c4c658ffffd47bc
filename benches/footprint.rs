//! `cargo bench --bench footprint`: what the real binary costs when it does nothing or little
//! (DESIGN §9): `stroem serve` start-up until `/healthz` answers, its resident memory and CPU
//! while idle, the database transactions it commits while idle (PostgreSQL, from
//! `pg_stat_database`), and the wall time of `stroem run` on a one-step task.
//!
//! `STROEM_BENCH_PG` names the PostgreSQL server (default: the machine's local one); a
//! throwaway database is created and dropped.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, status_field};

const STARTS: usize = 5;
const RUNS: usize = 20;
const IDLE: Duration = Duration::from_secs(30);

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let workspace = dir.path().join("ws");
    let workflows = workspace.join(".workflows");
    std::fs::create_dir_all(&workflows).expect("workspace");
    std::fs::write(
        workflows.join("one.yaml"),
        "tasks:\n  one:\n    flow:\n      only:\n        type: script\n        script: \"true\"\n",
    )
    .expect("workflow");

    let mut runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let status = Command::new(env!("CARGO_BIN_EXE_stroem"))
                .args(["run", "one", "--path"])
                .arg(&workspace)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("stroem run starts");
            assert!(status.success(), "stroem run failed");
            started.elapsed()
        })
        .collect();
    runs.sort();
    println!(
        "stroem run, one `true` step: p50 {:.1} ms, p95 {:.1} ms (target ≤ 30 ms)",
        ms(runs[RUNS / 2]),
        ms(runs[RUNS * 95 / 100])
    );

    let mut starts: Vec<Duration> = (0..STARTS)
        .map(|index| {
            let data = dir.path().join(format!("data-{index}"));
            let (server, started) = Server::start(&workspace, &data, None);
            drop(server);
            started
        })
        .collect();
    starts.sort();
    println!(
        "stroem serve, SQLite, fresh data directory: /healthz answers after p50 {:.0} ms, \
         slowest {:.0} ms (target ≤ 200 ms)",
        ms(starts[STARTS / 2]),
        ms(starts[STARTS - 1])
    );

    let (server, _) = Server::start(&workspace, &dir.path().join("data-idle"), None);
    let idle = server.idle(None);
    println!(
        "stroem serve idle, SQLite: RSS {:.1} MiB, CPU {:.2} % of one core over {} s \
         (targets ≤ 30 MiB, ~0 %)",
        idle.rss_kib as f64 / 1024.0,
        idle.cpu_percent,
        IDLE.as_secs()
    );
    drop(server);

    let admin = std::env::var("STROEM_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("stroem_footprint_{}", std::process::id());
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let url = format!("{admin}/{name}");
    let (server, _) = Server::start(&workspace, &dir.path().join("data-pg"), Some(&url));
    let idle = server.idle(Some((&admin, &name)));
    println!(
        "stroem serve idle, PostgreSQL: RSS {:.1} MiB, CPU {:.2} % of one core, {} transactions \
         committed in {} s (target: none)",
        idle.rss_kib as f64 / 1024.0,
        idle.cpu_percent,
        idle.transactions.unwrap_or_default(),
        IDLE.as_secs()
    );
    drop(server);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

struct Idle {
    rss_kib: u64,
    cpu_percent: f64,
    transactions: Option<i64>,
}

/// A `stroem serve` process with its embedded worker; killed when dropped.
struct Server {
    child: Child,
}

impl Server {
    /// Starts the server and waits for `/healthz`; returns it with the time that took.
    fn start(workspace: &Path, data: &Path, db_url: Option<&str>) -> (Server, Duration) {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_stroem"));
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .arg("--workspace")
            .arg(workspace)
            .env("STROEM__LOG_LEVEL", "warn")
            .stdout(Stdio::null());
        if let Some(url) = db_url {
            command.env("STROEM__DB__URL", url);
        }
        let started = Instant::now();
        let server = Server {
            child: command.spawn().expect("stroem serve starts"),
        };
        let health = format!("http://127.0.0.1:{port}/healthz");
        while ureq::get(&health).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        (server, started.elapsed())
    }

    /// Lets the server settle, then watches it do nothing for [`IDLE`].
    fn idle(&self, pg: Option<(&str, &str)>) -> Idle {
        std::thread::sleep(Duration::from_secs(3));
        let pid = self.child.id();
        let transactions = |pg: Option<(&str, &str)>| {
            pg.map(|(admin, name)| {
                // Statistics reach pg_stat_database within a second of a transaction's end.
                std::thread::sleep(Duration::from_millis(1_500));
                psql(
                    admin,
                    &format!(
                        "SELECT xact_commit + xact_rollback FROM pg_stat_database \
                         WHERE datname = '{name}'"
                    ),
                )
                .trim()
                .parse::<i64>()
                .expect("transaction count")
            })
        };
        let before = transactions(pg);
        let cpu_before = cpu_ticks(pid);
        std::thread::sleep(IDLE);
        let cpu = cpu_ticks(pid) - cpu_before;
        let after = transactions(pg);
        let ticks_per_second = 100.0;
        Idle {
            rss_kib: status_field(pid, "VmRSS:"),
            cpu_percent: cpu as f64 / ticks_per_second / IDLE.as_secs_f64() * 100.0,
            // The count itself is a transaction of the admin connection to another database.
            transactions: before.zip(after).map(|(before, after)| after - before),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// User plus system CPU time of the process, in clock ticks (`/proc/<pid>/stat` fields 14, 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    field(11).unwrap_or(0) + field(12).unwrap_or(0)
}

fn psql(admin: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([admin, "-qAtc", sql])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
