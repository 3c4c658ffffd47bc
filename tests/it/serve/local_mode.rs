//! `mode: local` with the embedded worker (WF §8, API §7.9): the job's worker steps share one
//! working directory, which goes once the job is released; the job says it is `local`.

use std::path::Path;
use std::time::Duration;

use crate::server_harness::{Home, eventually, serve_test, step};

const WORKSPACE: &str = r#"
actions:
  on-gpu:
    type: script
    tags: [gpu]
    script: echo "on a gpu"
tasks:
  split:
    mode: local
    flow:
      prepare: { type: script, script: echo prepared }
      train: { action: on-gpu, depends_on: [prepare] }
  build:
    mode: local
    input:
      dir: { type: string, required: true }
    flow:
      compile:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          echo "artifact 1.0" > out.bin
          pwd > "$INPUT_DIR"/workdir.txt
      package:
        type: script
        depends_on: [compile]
        script: |
          echo "packaged $(cat out.bin)"
          echo "OUTPUT: {\"size\": $(wc -c < out.bin)}"
  apart:
    flow:
      compile:
        type: script
        script: echo "artifact" > out.bin
      package:
        type: script
        depends_on: [compile]
        script: test -e out.bin && echo leaked || echo "fresh copy"
"#;

serve_test! {
    async fn the_steps_of_a_local_job_share_one_working_directory(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let server = home.start().await;
        let scratch = home.scratch();
        let body = serde_json::json!({"input": {"dir": scratch.display().to_string()}}).to_string();
        let id = server.execute("default", "build", &body).await;
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(job["mode"], "local", "{job:#}");
        assert_eq!(step(&job, "package")["output"]["size"], 13, "{job:#}");
        let workdir = std::fs::read_to_string(scratch.join("workdir.txt")).expect("workdir");
        let workdir = workdir.trim().to_owned();
        // The heartbeat after the job's end releases it, and the directory goes.
        eventually("the working directory to be released", Duration::from_secs(30), || {
            let gone = !Path::new(&workdir).exists();
            async move { gone }
        })
        .await;
        let jobs = server.get("/api/jobs?workspace=default&task_name=build").await.json();
        assert_eq!(jobs[0]["mode"], "local", "{jobs:#}");

        // A distributed job's steps each get a fresh copy.
        let id = server.execute("default", "apart", "{}").await;
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(job["mode"], "distributed", "{job:#}");
        let logs = server.get(&format!("/api/jobs/{id}/logs")).await.json();
        let text = logs["logs"].as_str().unwrap_or_default();
        assert!(text.contains("fresh copy") && !text.contains("leaked"), "{logs:#}");
        server.stop().await;
    }
}

serve_test! {
    async fn a_step_the_pinned_worker_cannot_run_fails_naming_the_pin(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\n\
             recovery:\n  heartbeat_timeout_secs: 60\n  sweep_interval_secs: 1\n  \
             unmatched_step_timeout_secs: 5\n",
            workspace.display()
        ));
        let server = home.start().await;
        // A worker with the `gpu` tag is active, but the job is pinned to the embedded worker
        // (API §7.5 rule 4), which lacks it: `train` can never be claimed.
        let gpu = stroem::store::WorkerRegistration {
            name: "gpu".to_owned(),
            version: "0".to_owned(),
            capabilities: vec!["script".to_owned()],
            tags: vec!["gpu".to_owned()],
            max_concurrent: 1,
        };
        server.orchestrator().register_worker(&gpu).await.expect("register");
        let id = server.execute("default", "split", "{}").await;
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(step(&job, "prepare")["status"], "completed", "{job:#}");
        let error = step(&job, "train")["error_message"].as_str().unwrap_or_default().to_owned();
        assert!(
            error.starts_with("the worker this local job is pinned to (")
                && error.ends_with("cannot run this step (needs capability 'script', tags [gpu])"),
            "{job:#}"
        );
        server.stop().await;
    }
}
