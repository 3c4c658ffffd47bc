//! `cargo bench --bench log_flood`: a step that prints 100 MB must not grow the server's memory
//! beyond a few tens of MB (issue "client CLI and live log streaming").
//!
//! Runs the real `stroem serve` binary with the embedded worker, triggers a job whose one step
//! writes 100 MiB of log lines, and samples the server's resident memory (`/proc/<pid>/status`)
//! until the job ends.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, status_field};

const FLOOD_BYTES: u64 = 100 * 1024 * 1024;

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let workflows = dir.path().join("ws/.workflows");
    std::fs::create_dir_all(&workflows).expect("workspace");
    std::fs::write(
        workflows.join("flood.yaml"),
        format!(
            "tasks:\n  flood:\n    flow:\n      print:\n        type: script\n        script: \"yes 'a line of log output, about sixty bytes long, repeated' | head -c {FLOOD_BYTES}\"\n"
        ),
    )
    .expect("workflow");
    let port = free_port();
    let mut server = ServerProcess(
        Command::new(env!("CARGO_BIN_EXE_stroem"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--workspace")
            .arg(dir.path().join("ws"))
            .env("STROEM__LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("stroem serve starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{base}/healthz")).call().is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = server.0.id();
    let idle = rss_kib(pid);
    let reply: serde_json::Value = ureq::post(&format!(
        "{base}/api/workspaces/default/tasks/flood/execute"
    ))
    .header("Content-Type", "application/json")
    .send("{}")
    .expect("execute")
    .into_body()
    .read_json()
    .expect("json");
    let job_id = reply["job_id"].as_str().expect("job id").to_owned();
    let started = Instant::now();
    let mut peak = idle;
    let status = loop {
        peak = peak.max(rss_kib(pid));
        let job: serde_json::Value = ureq::get(&format!("{base}/api/jobs/{job_id}"))
            .call()
            .expect("job")
            .into_body()
            .read_json()
            .expect("json");
        if job["completed_at"].is_string() {
            break job["status"].as_str().unwrap_or_default().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "flood job did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let elapsed = started.elapsed();
    let hwm = peak_kib(pid).max(peak);
    println!(
        "100 MiB of step output: job {status} in {:.1} s; server RSS idle {:.1} MiB, peak {:.1} MiB (+{:.1} MiB)",
        elapsed.as_secs_f64(),
        idle as f64 / 1024.0,
        hwm as f64 / 1024.0,
        (hwm.saturating_sub(idle)) as f64 / 1024.0,
    );
    server.0.kill().ok();
}

/// Kills the server when the benchmark ends, however it ends.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

fn peak_kib(pid: u32) -> u64 {
    status_field(pid, "VmHWM:")
}
