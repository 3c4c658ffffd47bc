//! The example workspaces written in the grammar of Strøm's first releases, served unchanged
//! (issue 7's acceptance): `failing` — a failing Python step whose `on_error` hook (legacy
//! `type: shell`) runs as a hook job whose log names the task, the step and the error; and
//! `showcase` — its 6-field Oslo cron trigger listed with its next runs and fired, and its
//! webhook called with the secret.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{Datelike, Timelike, Utc};
use chrono_tz::Europe::Oslo;
use serde_json::Value;
use stroem::orchestrator::Fired;

use crate::server_harness::{Home, serve_test};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn serve_example(home: &Home, name: &str) {
    home.configure_workspace(&example(name));
}

serve_test! {
    async fn the_failing_example_fires_its_on_error_hook(backend) {
        let home = Home::new(backend).await;
        serve_example(&home, "failing");
        let server = home.start().await;
        let id = server.execute("default", "nightly-check", "{}").await;
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert_eq!(job["error"], "step 'check' failed: exit code 1", "{job:#}");

        // Hook jobs are created right after the job's last change commits.
        let started = std::time::Instant::now();
        let hooks = loop {
            let hooks = server.get("/api/jobs?source_type=hook").await.json();
            let hooks = hooks.as_array().cloned().unwrap_or_default();
            if !hooks.is_empty() {
                break hooks;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no hook job");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(hooks.len(), 1, "{hooks:#?}");
        assert_eq!(hooks[0]["source_id"], format!("{id}/on_error"));
        let hook_id = hooks[0]["job_id"].as_str().expect("job_id").parse().expect("uuid");
        let hook = server.wait_finished(hook_id).await;
        assert_eq!(hook["status"], "completed", "{hook:#}");
        assert_eq!(hook["task_name"], "_hook:notify");
        let logs = server.get(&format!("/api/jobs/{hook_id}/logs")).await.json();
        let logs = logs["logs"].as_str().expect("logs");
        // The original task, the failed step with its error, and the stderr tail.
        assert!(logs.contains("ALERT: nightly-check failed: check: exit code 1"), "{logs}");
        assert!(logs.contains("record 2 of 3 is invalid"), "{logs}");
        server.stop().await;
    }
}

serve_test! {
    async fn the_showcase_triggers_are_listed_and_fire(backend) {
        let home = Home::new(backend).await;
        serve_example(&home, "showcase");
        let server = home
            .start_with_env(&[("SHOWCASE_API_TOKEN", "s3cr3t-token")])
            .await;
        let workspace = server.get("/api/workspaces/default").await.json();
        assert_eq!(workspace["status"], "ok", "{workspace:#}");

        let triggers = server.get("/api/workspaces/default/triggers").await.json();
        let nightly = triggers
            .as_array()
            .and_then(|list| list.iter().find(|t| t["name"] == "nightly"))
            .expect("the nightly trigger");
        assert_eq!(nightly["cron"], "0 30 2 * * 1-5");
        assert_eq!(nightly["timezone"], "Europe/Oslo");
        assert_eq!(nightly["concurrency"], "skip");
        assert_eq!(nightly["last_run_at"], Value::Null);
        let runs = nightly["next_runs"].as_array().expect("next_runs");
        assert_eq!(runs.len(), 5);
        for run in runs {
            let at = chrono::DateTime::parse_from_rfc3339(run.as_str().expect("a time"))
                .expect("RFC 3339")
                .with_timezone(&Oslo);
            assert_eq!((at.hour(), at.minute(), at.second()), (2, 30, 0), "{run}");
            assert!(at.weekday().number_from_monday() <= 5, "{run}");
        }

        // Fire a tick of the 6-field trigger now: the whole pipeline runs on the server.
        let tick = Utc::now();
        let fired = server
            .orchestrator()
            .fire_schedule("default", "nightly", tick, tick)
            .await
            .expect("the tick fires");
        let Fired::Created { job_id, .. } = fired else {
            panic!("expected a job, got {fired:?}");
        };
        let job = server
            .wait_job(job_id, Duration::from_secs(120), |job| job["completed_at"].is_string())
            .await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(job["source_type"], "trigger");
        assert_eq!(job["source_id"], "default/nightly");
        assert_eq!(job["input"]["environment"], "staging");
        let triggers = server.get("/api/workspaces/default/triggers").await.json();
        let nightly = triggers
            .as_array()
            .and_then(|list| list.iter().find(|t| t["name"] == "nightly"))
            .expect("the nightly trigger");
        assert!(nightly["last_run_at"].is_string(), "{nightly:#}");

        // The webhook, with the secret as a Bearer token.
        let reply = server
            .send(
                "POST",
                "/hooks/showcase-push",
                &[
                    ("Content-Type", "application/json"),
                    ("Authorization", "Bearer s3cr3t-token"),
                ],
                br#"{"ref": "refs/heads/release"}"#.to_vec(),
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let id = reply.json()["job_id"].as_str().expect("job_id").parse().expect("uuid");
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        let logs = server.get(&format!("/api/jobs/{id}/logs")).await.json();
        let logs = logs["logs"].as_str().expect("logs");
        assert!(logs.contains("push to refs/heads/release"), "{logs}");
        server.stop().await;
    }
}
