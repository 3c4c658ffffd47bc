//! `GET /metrics` (API §3.6, issue #17 item 7) on a real server after real jobs: who may scrape,
//! and the exposition parsed by the Prometheus project's own text-format parser (the Python
//! client's) with its values asserted —
//! jobs and steps by task and status, durations, claims, the queue, workers, log bytes, webhook
//! calls and HTTP requests by route template.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;

use crate::server_harness::{Home, Server, eventually, serve_test};

const WORKSPACE: &str = r#"
actions:
  on-gpu:
    type: script
    script: echo gpu
    tags: [gpu]
tasks:
  ok:
    flow:
      say:
        type: script
        script: echo hello-metrics
      after:
        type: script
        script: "true"
        depends_on: [say]
  broken:
    flow:
      fail:
        type: script
        script: exit 3
  waits:
    flow:
      train: { action: on-gpu }
triggers:
  poke: { type: webhook, task: ok }
"#;

const METRICS_TOKEN: &str = "metrics-token-for-the-scrape-test";
const WORKER_TOKEN: &str = "worker-token-0123456789abcdef0123456789";

/// How long a test waits for jobs and the queue to settle.
const SETTLE: Duration = Duration::from_secs(30);

async fn scrape(server: &Server, token: Option<&str>) -> crate::server_harness::Reply {
    let header = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = header
        .as_deref()
        .map(|value| vec![("Authorization", value)])
        .unwrap_or_default();
    server.call("GET", "/metrics", &headers, None).await
}

/// The Python that has the Prometheus project's `prometheus_client`: `$STROEM_TEST_PYTHON`
/// (`cargo xtask test` sets it to its tools venv), else that venv's default place.
fn python() -> PathBuf {
    std::env::var_os("STROEM_TEST_PYTHON")
        .filter(|path| !path.is_empty())
        .map_or_else(
            || PathBuf::from("/var/cache/stroem/tools-venv/bin/python"),
            PathBuf::from,
        )
}

/// The parsed exposition: every sample by name and sorted labels, with each family's type.
struct Parsed {
    samples: BTreeMap<(String, Vec<(String, String)>), f64>,
    types: BTreeMap<String, String>,
}

impl Parsed {
    /// Parses `text` with `prometheus_client.parser` (tests/fixtures/metrics/parse.py).
    fn of(text: &str) -> Parsed {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics/parse.py");
        let mut child = Command::new(python())
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run {} ({error}): run the tests with `cargo xtask test`, which \
                     installs prometheus-client in its tools venv, or set STROEM_TEST_PYTHON",
                    python().display()
                )
            });
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write the exposition");
        let output = child.wait_with_output().expect("the parser ends");
        assert!(
            output.status.success(),
            "the Prometheus parser refused the exposition: {}\n{text}",
            String::from_utf8_lossy(&output.stderr)
        );
        let families: Vec<Json> = serde_json::from_slice(&output.stdout).expect("JSON");
        let mut parsed = Parsed {
            samples: BTreeMap::new(),
            types: BTreeMap::new(),
        };
        for family in families {
            let name = family["name"].as_str().expect("name").to_owned();
            parsed
                .types
                .insert(name, family["type"].as_str().expect("type").to_owned());
            for sample in family["samples"].as_array().expect("samples") {
                let mut labels: Vec<(String, String)> = sample["labels"]
                    .as_object()
                    .expect("labels")
                    .iter()
                    .map(|(name, value)| (name.clone(), value.as_str().expect("label").to_owned()))
                    .collect();
                labels.sort();
                let key = (sample["name"].as_str().expect("name").to_owned(), labels);
                let value = sample["value"].as_f64().expect("a finite value");
                assert!(
                    parsed.samples.insert(key.clone(), value).is_none(),
                    "{key:?} twice"
                );
            }
        }
        parsed
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        labels.sort();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| {
            panic!(
                "no sample {name}{labels:?} among {:#?}",
                self.samples.keys()
            )
        })
    }

    /// A histogram's observation count (`_count`, equal to its `+Inf` bucket).
    fn observations(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        assert_eq!(
            self.types.get(name).map(String::as_str),
            Some("histogram"),
            "{name}"
        );
        let count = self.value(&format!("{name}_count"), labels);
        let mut inf = labels.to_vec();
        inf.push(("le", "+Inf"));
        assert_eq!(self.value(&format!("{name}_bucket"), &inf), count, "{name}");
        count
    }

    fn names(&self) -> impl Iterator<Item = &(String, Vec<(String, String)>)> {
        self.samples.keys()
    }
}

serve_test! {
    async fn metrics_are_scraped_with_a_token_and_count_what_ran(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\n\
             worker_token: {WORKER_TOKEN}\nmetrics:\n  token: {METRICS_TOKEN}\n",
            workspace.display()
        ));
        let server = home.start().await;

        // Who may scrape: a metrics or worker token; nobody else, with a JSON 401.
        let anonymous = scrape(&server, None).await;
        assert_eq!(anonymous.status, 401, "{}", anonymous.body);
        assert_eq!(anonymous.json()["code"], "unauthorized");
        let wrong = scrape(&server, Some("not-the-token")).await;
        assert_eq!(wrong.status, 401, "{}", wrong.body);
        assert_eq!(scrape(&server, Some(WORKER_TOKEN)).await.status, 200);

        let first = server.execute("default", "ok", "{}").await;
        let second = server.execute("default", "ok", "{}").await;
        let broken = server.execute("default", "broken", "{}").await;
        for id in [first, second, broken] {
            server.wait_finished(id).await;
        }
        let hook = server.post_json("/hooks/poke", "{}").await;
        assert_eq!(hook.status, 202, "{}", hook.body);
        let hooked = hook.json()["job_id"].as_str().expect("job id").parse().expect("uuid");
        server.wait_finished(hooked).await;
        assert_eq!(server.post_json("/hooks/nobody", "{}").await.status, 404);
        assert_eq!(server.get("/api/no/such/route").await.status, 404);
        // A job no worker can run (its action needs the tag `gpu`) waits in the queue.
        server.execute("default", "waits", "{}").await;
        eventually("the gpu step to be ready", SETTLE, || async {
            let reply = scrape(&server, Some(METRICS_TOKEN)).await;
            Parsed::of(&reply.body).value("stroem_queue_depth", &[]) == 1.0
        })
        .await;

        let reply = scrape(&server, Some(METRICS_TOKEN)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.headers.get("content-type").map(String::as_str),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let m = Parsed::of(&reply.body);
        let ok = [("workspace", "default"), ("task", "ok")];
        let with = |extra: (&'static str, &'static str)| {
            let mut labels = ok.to_vec();
            labels.push(extra);
            labels
        };
        // Jobs and steps by task and status.
        assert_eq!(m.value("stroem_jobs_created_total", &with(("source_type", "api"))), 2.0);
        assert_eq!(m.value("stroem_jobs_created_total", &with(("source_type", "webhook"))), 1.0);
        assert_eq!(m.value("stroem_jobs_finished_total", &with(("status", "completed"))), 3.0);
        assert_eq!(
            m.value(
                "stroem_jobs_finished_total",
                &[("workspace", "default"), ("task", "broken"), ("status", "failed")]
            ),
            1.0
        );
        assert_eq!(m.value("stroem_steps_finished_total", &with(("status", "completed"))), 6.0);
        assert_eq!(
            m.value(
                "stroem_steps_finished_total",
                &[("workspace", "default"), ("task", "broken"), ("status", "failed")]
            ),
            1.0
        );
        // Durations.
        assert_eq!(m.observations("stroem_job_duration_seconds", &ok), 3.0);
        assert_eq!(m.observations("stroem_step_duration_seconds", &ok), 6.0);
        // Claims: one per worker step run.
        assert_eq!(m.value("stroem_claims_total", &[]), 7.0);
        assert_eq!(m.observations("stroem_claim_latency_seconds", &[]), 7.0);
        // The queue and what is unfinished now.
        assert_eq!(m.value("stroem_queue_depth", &[]), 1.0);
        assert!(m.value("stroem_queue_oldest_age_seconds", &[]) >= 0.0);
        let waits = [("workspace", "default"), ("task", "waits")];
        let mut pending = waits.to_vec();
        pending.push(("status", "pending"));
        assert_eq!(m.value("stroem_jobs", &pending), 1.0);
        let mut ready = waits.to_vec();
        ready.push(("status", "ready"));
        assert_eq!(m.value("stroem_steps", &ready), 1.0);
        assert_eq!(m.value("stroem_steps_ready", &[]), 1.0);
        assert_eq!(m.value("stroem_steps_running", &[]), 0.0);
        // The embedded worker, and no lease left.
        assert_eq!(m.value("stroem_workers", &[("status", "active")]), 1.0);
        assert_eq!(m.value("stroem_workers_active", &[]), 1.0);
        assert!(m.names().all(|(name, _)| name != "stroem_leases"));
        assert_eq!(m.types.get("stroem_leases").map(String::as_str), Some("gauge"));
        assert_eq!(m.types.get("stroem_claims").map(String::as_str), Some("counter"));
        // Log bytes: at least the echoed words of the three `ok` jobs.
        assert!(m.value("stroem_log_bytes_total", &[]) >= 3.0 * "hello-metrics".len() as f64);
        assert!(m.value("stroem_log_lines_total", &[]) >= 3.0);
        // Webhook calls by outcome.
        assert_eq!(m.value("stroem_webhook_calls_total", &[("outcome", "accepted")]), 1.0);
        assert_eq!(m.value("stroem_webhook_calls_total", &[("outcome", "not_found")]), 1.0);
        // HTTP requests by route template, never by raw path.
        let execute = "/api/workspaces/{ws}/tasks/{name}/execute";
        assert_eq!(
            m.value(
                "stroem_http_requests_total",
                &[("method", "POST"), ("route", execute), ("status", "200")]
            ),
            4.0
        );
        assert!(m.value(
            "stroem_http_requests_total",
            &[("method", "GET"), ("route", "/api/jobs/{id}"), ("status", "200")]
        ) >= 4.0);
        assert_eq!(
            m.value(
                "stroem_http_requests_total",
                &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
            ),
            1.0
        );
        assert_eq!(
            m.value(
                "stroem_http_requests_total",
                &[("method", "GET"), ("route", "/metrics"), ("status", "401")]
            ),
            2.0
        );
        assert!(m.observations("stroem_http_request_duration_seconds", &[("route", execute)]) >= 4.0);
        for (name, labels) in m.names() {
            for (label, value) in labels {
                assert!(
                    !value.contains(&first.to_string()) && !value.contains("no/such"),
                    "{name}{{{label}=\"{value}\"}} carries a raw path"
                );
            }
        }
        server.stop().await;
    }
}

serve_test! {
    async fn metrics_are_refused_until_configured_and_public_when_asked(backend) {
        let home = Home::new(backend).await;
        // Neither token nor `public`: nobody may scrape (off by default).
        home.configure("");
        let server = home.start().await;
        let refused = scrape(&server, Some("anything")).await;
        assert_eq!(refused.status, 401, "{}", refused.body);
        assert!(refused.body.contains("metrics.token"), "{}", refused.body);
        server.stop().await;

        home.configure("metrics:\n  public: true\n");
        let server = home.start().await;
        let open = scrape(&server, None).await;
        assert_eq!(open.status, 200, "{}", open.body);
        let m = Parsed::of(&open.body);
        assert_eq!(m.value("stroem_queue_depth", &[]), 0.0);
        assert_eq!(m.value("stroem_claims_total", &[]), 0.0);
        server.stop().await;
    }
}
