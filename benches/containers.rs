//! `cargo bench --bench containers --features docker`: what a container adds to a one-step job.
//! The same `echo` step runs N times with the local runner (a process) and with the Docker
//! runner (a container from a present image, created, started, followed, inspected and removed),
//! and the bench prints p50/p95 per attempt for each. The engine is `STROEM_TEST_DOCKER_HOST`,
//! else `DOCKER_HOST`, else `.ci/start-podman.sh`'s socket; the image `STROEM_BENCH_IMAGE`, else
//! that script's busybox image.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stroem::config::PullPolicy;
use stroem::runner::LocalRunner;
use stroem::runner::docker::{DockerRunner, DockerSettings};
use stroem::runner::spec::{LogLine, Outcome, Program, RunnerKind, ScriptBody, StepSpec};
use tokio_util::sync::CancellationToken;

const ATTEMPTS: usize = 20;

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(bench());
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

async fn bench() {
    let host = env("STROEM_TEST_DOCKER_HOST")
        .or_else(|| env("DOCKER_HOST"))
        .unwrap_or_else(|| "unix:///tmp/stroem-podman.sock".to_owned());
    let image =
        env("STROEM_BENCH_IMAGE").unwrap_or_else(|| "localhost/stroem-test:latest".to_owned());
    let settings = DockerSettings {
        host: host.clone(),
        pull_policy: PullPolicy::IfNotPresent,
        runner_image: image.clone(),
        worker: "bench".to_owned(),
        kill_grace: Duration::from_secs(2),
        instance: None,
    };
    let docker = DockerRunner::connect(settings)
        .await
        .expect("engine answers");
    let runner = LocalRunner::new(
        Duration::from_secs(2),
        std::env::vars().collect::<BTreeMap<_, _>>(),
    )
    .with_docker(Arc::new(docker));
    let copy = tempfile::tempdir().expect("working copy");
    println!("engine {host}, image {image}, {ATTEMPTS} attempts each");
    println!("| runner | p50 ms | p95 ms |");
    println!("|---|---|---|");
    for kind in [RunnerKind::Local, RunnerKind::Docker] {
        let spec = step(kind, &image);
        let mut times = Vec::new();
        for _ in 0..ATTEMPTS {
            let mut sink = |_: LogLine| {};
            let started = Instant::now();
            let result = runner
                .run(&spec, copy.path(), &mut sink, CancellationToken::new())
                .await;
            times.push(started.elapsed());
            assert_eq!(
                result.outcome,
                Outcome::Succeeded,
                "{:?}",
                result.error_message
            );
        }
        times.sort();
        let at =
            |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
        println!("| {} | {:.1} | {:.1} |", kind.as_str(), at(0.5), at(0.95));
    }
}

fn step(runner: RunnerKind, image: &str) -> StepSpec {
    StepSpec {
        job_id: uuid::Uuid::new_v4(),
        workspace: "bench".to_owned(),
        task: "bench".to_owned(),
        step: "one".to_owned(),
        attempt: 1,
        action_name: "one".to_owned(),
        program: Program::Script {
            code: ScriptBody::Inline("echo 'OUTPUT: {\"ok\": true}'".to_owned()),
            interpreter: None,
            default_interpreter: vec!["sh".to_owned()],
            args: Vec::new(),
        },
        env: Vec::new(),
        input: serde_json::Map::new(),
        workdir: None,
        timeout_secs: None,
        mask: Vec::new(),
        output_schema: None,
        runner,
        image: (runner == RunnerKind::Docker).then(|| image.to_owned()),
        resources: None,
        manifest: None,
    }
}
