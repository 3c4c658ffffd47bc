//! What `GET /metrics` shows (API §3.6, issue #17 item 7): Strøm's metric families and the one
//! place each is recorded.
//!
//! Two kinds of series (docs/observability.md lists them all):
//! - **Counters and histograms of this process** (`…_total`, `…_seconds`), recorded where the
//!   thing happens: HTTP requests by route template (never the raw path, so the number of series
//!   is bounded by the route table), jobs created and finished and steps finished with their
//!   durations (recorded by the store after the transaction that made the change committed),
//!   claims with their ready→claimed latency, expired leases, log bytes, scheduler ticks and
//!   misses, webhook calls by outcome. They start at zero with the process; Prometheus' `rate`
//!   and `increase` handle restarts, and replicas are summed.
//! - **Gauges of the database** ([`Gauges`]), read at scrape time by a few cheap indexed
//!   queries: unfinished jobs and their ready and running steps by task, the queue depth and the
//!   age of its oldest ready step, live leases, workers by status. Every replica reports the
//!   same values: aggregate them with `max`, not `sum`.
//!
//! Nothing here touches the database or a clock by itself, so a server nobody scrapes does no
//! work for metrics beyond the in-memory counts.
//!
//! *Invariant*: series names follow Prometheus conventions — `stroem_` prefix, base units
//! (seconds, bytes), `_total` for counters — and every label takes values from a bounded set
//! (route templates, statuses, workspace and task names of the loaded workspaces).

pub mod registry;

use std::fmt;
use std::sync::Arc;

use registry::{CounterVec, DURATION_BUCKETS, GaugeFamily, HistogramVec, LATENCY_BUCKETS};

/// The content type of the text format this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Strøm's metrics of one server process; cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Families>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics(..)")
    }
}

/// Every family recorded in memory, public for tests that read one value.
#[derive(Debug)]
pub struct Families {
    pub http_requests: CounterVec,
    pub http_duration: HistogramVec,
    pub jobs_created: CounterVec,
    pub jobs_finished: CounterVec,
    pub job_duration: HistogramVec,
    pub steps_finished: CounterVec,
    pub step_duration: HistogramVec,
    pub claims: CounterVec,
    pub claim_latency: HistogramVec,
    pub leases_expired: CounterVec,
    pub log_bytes: CounterVec,
    pub log_lines: CounterVec,
    pub scheduler_ticks: CounterVec,
    pub scheduler_missed: CounterVec,
    pub webhook_calls: CounterVec,
    pub retention_deleted: CounterVec,
}

impl Default for Families {
    fn default() -> Self {
        Families {
            http_requests: CounterVec::new(
                "stroem_http_requests_total",
                "HTTP requests answered, by method, route template and status.",
                &["method", "route", "status"],
            ),
            http_duration: HistogramVec::new(
                "stroem_http_request_duration_seconds",
                "Time to answer an HTTP request (to the response head), by route template.",
                &["route"],
                LATENCY_BUCKETS,
            ),
            jobs_created: CounterVec::new(
                "stroem_jobs_created_total",
                "Jobs created, by workspace, task and source type.",
                &["workspace", "task", "source_type"],
            ),
            jobs_finished: CounterVec::new(
                "stroem_jobs_finished_total",
                "Jobs that reached a final status, by workspace, task and status.",
                &["workspace", "task", "status"],
            ),
            job_duration: HistogramVec::new(
                "stroem_job_duration_seconds",
                "Time from a job's creation to its end, by workspace and task.",
                &["workspace", "task"],
                DURATION_BUCKETS,
            ),
            steps_finished: CounterVec::new(
                "stroem_steps_finished_total",
                "Steps that reached a final status, by workspace, task and status.",
                &["workspace", "task", "status"],
            ),
            step_duration: HistogramVec::new(
                "stroem_step_duration_seconds",
                "Time from the start of a step's last attempt to the step's end, by workspace and task.",
                &["workspace", "task"],
                DURATION_BUCKETS,
            ),
            claims: CounterVec::new(
                "stroem_claims_total",
                "Steps claimed by workers (each attempt is a claim).",
                &[],
            ),
            claim_latency: HistogramVec::new(
                "stroem_claim_latency_seconds",
                "Time from a step becoming ready to a worker claiming it.",
                &[],
                LATENCY_BUCKETS,
            ),
            leases_expired: CounterVec::new(
                "stroem_leases_expired_total",
                "Leases taken back from workers that stopped heartbeating.",
                &[],
            ),
            log_bytes: CounterVec::new(
                "stroem_log_bytes_total",
                "Bytes of step log lines received from workers (line text, before masking).",
                &[],
            ),
            log_lines: CounterVec::new(
                "stroem_log_lines_total",
                "Step log lines received from workers.",
                &[],
            ),
            scheduler_ticks: CounterVec::new(
                "stroem_scheduler_ticks_total",
                "Scheduler trigger ticks handled, by outcome (fired, skipped, rejected, passed_over).",
                &["outcome"],
            ),
            scheduler_missed: CounterVec::new(
                "stroem_scheduler_missed_ticks_total",
                "Scheduler ticks found missed (no scheduler ran within the grace of their time).",
                &[],
            ),
            webhook_calls: CounterVec::new(
                "stroem_webhook_calls_total",
                "Webhook calls, by outcome (accepted, completed, or the error code of the refusal).",
                &["outcome"],
            ),
            retention_deleted: CounterVec::new(
                "stroem_retention_deleted_total",
                "Rows deleted by retention (retention.job_days, worker_hours), by kind (jobs, workers).",
                &["kind"],
            ),
        }
    }
}

/// A job or step change the store committed, as the metrics see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    JobCreated {
        workspace: String,
        task: String,
        source_type: String,
    },
    JobFinished {
        workspace: String,
        task: String,
        status: &'static str,
        seconds: f64,
    },
    StepFinished {
        workspace: String,
        task: String,
        status: &'static str,
        /// `None` for a step that never started (skipped, cancelled while waiting).
        seconds: Option<f64>,
    },
    Claimed {
        /// Ready → claimed; `None` when the step's ready time is unknown.
        seconds: Option<f64>,
    },
}

/// The gauges read from the database at scrape time (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    /// Unfinished jobs: `(workspace, task, status, count)`.
    pub jobs: Vec<(String, String, String, u64)>,
    /// Ready and running steps of unfinished jobs: `(workspace, task, status, count)`.
    pub steps: Vec<(String, String, String, u64)>,
    /// Worker steps waiting for a claim.
    pub queue_depth: u64,
    /// How long the oldest of them has waited, in seconds; 0 with an empty queue.
    pub oldest_ready_seconds: f64,
    /// Live leases by state (`active`, `cancelling`).
    pub leases: Vec<(String, u64)>,
    /// Registered workers by status (`active`, `inactive`).
    pub workers: Vec<(String, u64)>,
}

impl Metrics {
    pub fn families(&self) -> &Families {
        &self.inner
    }

    /// One HTTP request answered. `route` is the matched route template, never the raw path.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let families = &self.inner;
        let status = status.to_string();
        families.http_requests.inc(&[method, route, &status]);
        families.http_duration.observe(&[route], seconds);
    }

    /// Changes the store committed.
    pub fn record(&self, transitions: &[Transition]) {
        let families = &self.inner;
        for transition in transitions {
            match transition {
                Transition::JobCreated {
                    workspace,
                    task,
                    source_type,
                } => families.jobs_created.inc(&[workspace, task, source_type]),
                Transition::JobFinished {
                    workspace,
                    task,
                    status,
                    seconds,
                } => {
                    families.jobs_finished.inc(&[workspace, task, status]);
                    families.job_duration.observe(&[workspace, task], *seconds);
                }
                Transition::StepFinished {
                    workspace,
                    task,
                    status,
                    seconds,
                } => {
                    families.steps_finished.inc(&[workspace, task, status]);
                    if let Some(seconds) = seconds {
                        families.step_duration.observe(&[workspace, task], *seconds);
                    }
                }
                Transition::Claimed { seconds } => {
                    families.claims.inc(&[]);
                    if let Some(seconds) = seconds {
                        families.claim_latency.observe(&[], *seconds);
                    }
                }
            }
        }
    }

    pub fn leases_expired(&self, count: usize) {
        self.inner.leases_expired.add(&[], count as u64);
    }

    pub fn log_lines(&self, lines: usize, bytes: usize) {
        self.inner.log_lines.add(&[], lines as u64);
        self.inner.log_bytes.add(&[], bytes as u64);
    }

    /// A scheduler tick handled: `fired`, `skipped`, `rejected` or `passed_over`.
    pub fn scheduler_tick(&self, outcome: &str) {
        self.inner.scheduler_ticks.inc(&[outcome]);
    }

    pub fn scheduler_missed(&self) {
        self.inner.scheduler_missed.inc(&[]);
    }

    /// Retention deleted `count` rows of `kind`: `jobs` or `workers`.
    pub fn retention_deleted(&self, kind: &str, count: u64) {
        self.inner.retention_deleted.add(&[kind], count);
    }

    /// A webhook call ended: `accepted`, `completed` or the refusal's error code.
    pub fn webhook_call(&self, outcome: &str) {
        self.inner.webhook_calls.inc(&[outcome]);
    }

    /// The whole exposition: the database gauges, then every family of this process.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let step_total = |status: &str| -> f64 {
            gauges
                .steps
                .iter()
                .filter(|row| row.2 == status)
                .map(|row| row.3 as f64)
                .sum()
        };
        let active_workers = gauges
            .workers
            .iter()
            .filter(|(status, _)| status == "active")
            .map(|(_, count)| *count as f64)
            .sum();
        let families = [
            GaugeFamily {
                name: "stroem_jobs",
                help: "Unfinished jobs, by workspace, task and status (pending, running).",
                labels: &["workspace", "task", "status"],
                samples: by_task(&gauges.jobs),
            },
            GaugeFamily {
                name: "stroem_steps",
                help: "Ready and running steps of unfinished jobs, by workspace, task and status.",
                labels: &["workspace", "task", "status"],
                samples: by_task(&gauges.steps),
            },
            GaugeFamily {
                name: "stroem_steps_ready",
                help: "Steps ready to run (worker steps waiting for a claim and server steps about to start).",
                labels: &[],
                samples: vec![(Vec::new(), step_total("ready"))],
            },
            GaugeFamily {
                name: "stroem_steps_running",
                help: "Steps running.",
                labels: &[],
                samples: vec![(Vec::new(), step_total("running"))],
            },
            GaugeFamily {
                name: "stroem_queue_depth",
                help: "Worker steps waiting for a worker to claim them.",
                labels: &[],
                samples: vec![(Vec::new(), gauges.queue_depth as f64)],
            },
            GaugeFamily {
                name: "stroem_queue_oldest_age_seconds",
                help: "How long the oldest worker step waiting for a claim has waited.",
                labels: &[],
                samples: vec![(Vec::new(), gauges.oldest_ready_seconds)],
            },
            GaugeFamily {
                name: "stroem_leases",
                help: "Live leases, by state (active, cancelling).",
                labels: &["state"],
                samples: by_one(&gauges.leases),
            },
            GaugeFamily {
                name: "stroem_workers",
                help: "Registered workers, by status (active, inactive).",
                labels: &["status"],
                samples: by_one(&gauges.workers),
            },
            GaugeFamily {
                name: "stroem_workers_active",
                help: "Workers heartbeating.",
                labels: &[],
                samples: vec![(Vec::new(), active_workers)],
            },
        ];
        for family in &families {
            family.encode(&mut out);
        }
        let f = &self.inner;
        for counter in [
            &f.http_requests,
            &f.jobs_created,
            &f.jobs_finished,
            &f.steps_finished,
            &f.claims,
            &f.leases_expired,
            &f.log_bytes,
            &f.log_lines,
            &f.scheduler_ticks,
            &f.scheduler_missed,
            &f.webhook_calls,
            &f.retention_deleted,
        ] {
            counter.encode(&mut out);
        }
        for histogram in [
            &f.http_duration,
            &f.job_duration,
            &f.step_duration,
            &f.claim_latency,
        ] {
            histogram.encode(&mut out);
        }
        out
    }
}

fn by_task(rows: &[(String, String, String, u64)]) -> Vec<(Vec<&str>, f64)> {
    rows.iter()
        .map(|(workspace, task, status, count)| {
            (
                vec![workspace.as_str(), task.as_str(), status.as_str()],
                *count as f64,
            )
        })
        .collect()
}

fn by_one(rows: &[(String, u64)]) -> Vec<(Vec<&str>, f64)> {
    rows.iter()
        .map(|(label, count)| (vec![label.as_str()], *count as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_count_and_observe() {
        let metrics = Metrics::default();
        metrics.record(&[
            Transition::JobCreated {
                workspace: "w".into(),
                task: "t".into(),
                source_type: "api".into(),
            },
            Transition::StepFinished {
                workspace: "w".into(),
                task: "t".into(),
                status: "skipped",
                seconds: None,
            },
            Transition::JobFinished {
                workspace: "w".into(),
                task: "t".into(),
                status: "completed",
                seconds: 0.2,
            },
            Transition::Claimed {
                seconds: Some(0.01),
            },
        ]);
        let f = metrics.families();
        assert_eq!(f.jobs_created.get(&["w", "t", "api"]), 1);
        assert_eq!(f.steps_finished.get(&["w", "t", "skipped"]), 1);
        assert_eq!(f.step_duration.count(&["w", "t"]), 0);
        assert_eq!(f.job_duration.count(&["w", "t"]), 1);
        assert_eq!(f.claims.get(&[]), 1);
        let text = metrics.render(&Gauges::default());
        assert!(
            text.contains(
                "stroem_jobs_finished_total{workspace=\"w\",task=\"t\",status=\"completed\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("stroem_workers_active 0\n"), "{text}");
    }
}
