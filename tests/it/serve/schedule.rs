//! The cron scheduler stepped through time (WF §15.1, issue 7's acceptance): minute and hour
//! boundaries, both Oslo DST changes, restarts, `concurrency`, `enabled`, `catch_up`, and two
//! schedulers on one database — asserting exactly which ticks fire, on SQLite and PostgreSQL.
//!
//! The schedulers here are built on a real store and workspace registry but without the serve
//! loop, so only the test's clock moves them; the jobs they create wait in the database (no
//! worker), which is what `concurrency` looks at.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use stroem::engine::JobStatus;
use stroem::logs::LogStore;
use stroem::orchestrator::{self, Fired, Orchestrator};
use stroem::scheduler::{Scheduler, TickAction, TickReport};
use stroem::store::{JobFilter, Store};
use stroem::workspace::manager::{self, Source, Workspaces};

use crate::server_harness::{Home, serve_test};

/// A scheduler and its orchestrator over the home's database; `name` keeps the data
/// directories of several apart.
struct Engine {
    orchestrator: Orchestrator,
    scheduler: Scheduler,
}

async fn engine(home: &Home, name: &str, loaded_at: DateTime<Utc>) -> Engine {
    let config = home.config();
    std::fs::create_dir_all(&config.data_dir).expect("data dir");
    let store = Store::connect(config.db.url.expose(), 4)
        .await
        .expect("the database opens");
    let data = home.path().join(name);
    std::fs::create_dir_all(&data).expect("data dir");
    let logs = LogStore::open(data.join("logs")).expect("log dir");
    let workspaces = Workspaces::new(
        manager::Settings {
            data_dir: data,
            env: BTreeMap::new(),
            secret_file_dirs: Vec::new(),
            refused_files: Vec::new(),
        },
        [(
            "default".to_owned(),
            Source::Folder {
                path: home.path().join("workspace"),
                poll_interval: Duration::from_secs(3600),
            },
        )],
        loaded_at,
    )
    .expect("the workspace registry");
    let view = workspaces.view("default").expect("workspace");
    assert!(view.errors.is_empty(), "{:#?}", view.errors);
    let orchestrator = Orchestrator::new(
        store,
        logs,
        Arc::new(workspaces),
        orchestrator::Settings::default(),
    );
    Engine {
        scheduler: Scheduler::new(orchestrator.clone()),
        orchestrator,
    }
}

impl Engine {
    /// One round at `now`, as `trigger@HH:MM:SS action` lines.
    async fn tick(&self, now: &str) -> Vec<String> {
        let report = self.scheduler.tick(at(now)).await.expect("a round");
        assert!(report.leader, "a lone scheduler leads");
        lines(&report)
    }

    /// A graceful stop: the lease is given up, as `serve` does on SIGTERM.
    async fn stop(self) {
        self.scheduler.release().await.expect("release the lease");
        self.orchestrator.store().close().await;
    }

    /// A crash: the lease stays until it expires.
    async fn crash(self) {
        self.orchestrator.store().close().await;
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn lines(report: &TickReport) -> Vec<String> {
    let mut lines: Vec<String> = report
        .ticks
        .iter()
        .map(|tick| {
            let action = match &tick.action {
                TickAction::PassedOver => "passed over",
                TickAction::Fired(Fired::Created { .. }) => "created",
                TickAction::Fired(Fired::Skipped { .. }) => "skipped",
                TickAction::Fired(Fired::Rejected { .. }) => "rejected",
                TickAction::Fired(Fired::AlreadyFired) => "already fired",
            };
            format!(
                "{}@{} {action}",
                tick.trigger,
                tick.tick.format("%Y-%m-%dT%H:%M:%SZ")
            )
        })
        .collect();
    lines.sort();
    lines
}

/// The trigger jobs in the database: `(source_id, status)`, oldest first.
async fn trigger_jobs(orchestrator: &Orchestrator) -> Vec<(String, JobStatus)> {
    let (mut rows, _) = orchestrator
        .store()
        .list_jobs(&JobFilter {
            source_type: Some("trigger".to_owned()),
            limit: 500,
            ..JobFilter::default()
        })
        .await
        .expect("jobs");
    rows.sort_by_key(|row| (row.created_at, row.job_id));
    rows.into_iter()
        .map(|row| (row.source_id.unwrap_or_default(), row.status))
        .collect()
}

const TASK: &str = "tasks:\n  work:\n    flow:\n      run: { type: script, script: echo tick }\n";

const BOUNDARIES: &str = r#"
triggers:
  every-minute: { type: scheduler, cron: "* * * * *", task: work }
  hourly: { type: scheduler, cron: "@hourly", task: work }
  second-30: { type: scheduler, cron: "30 * * * * *", task: work }
"#;

serve_test! {
    async fn minute_hour_and_restart_boundaries_fire_each_tick_once(backend) {
        let home = Home::new(backend).await;
        home.workspace(&format!("{TASK}{BOUNDARIES}"));
        home.configure("");
        let first = engine(&home, "a", at("2030-01-01T09:58:10Z")).await;
        assert_eq!(first.tick("2030-01-01T09:58:10Z").await, Vec::<String>::new());
        assert_eq!(first.tick("2030-01-01T09:58:40Z").await, ["second-30@2030-01-01T09:58:30Z created"]);
        assert_eq!(first.tick("2030-01-01T09:59:00Z").await, ["every-minute@2030-01-01T09:59:00Z created"]);
        // The same moment again: nothing new is due.
        assert_eq!(first.tick("2030-01-01T09:59:00Z").await, Vec::<String>::new());
        // Across the hour, 30 s late: every tick since the last round, each once (09:59:30 is
        // exactly 60 s old, still on time).
        assert_eq!(
            first.tick("2030-01-01T10:00:30Z").await,
            [
                "every-minute@2030-01-01T10:00:00Z created",
                "hourly@2030-01-01T10:00:00Z created",
                "second-30@2030-01-01T09:59:30Z created",
                "second-30@2030-01-01T10:00:30Z created",
            ]
        );
        assert_eq!(trigger_jobs(&first.orchestrator).await.len(), 6);
        // Firing an old tick directly changes nothing.
        let again = first
            .orchestrator
            .fire_schedule("default", "hourly", at("2030-01-01T10:00:00Z"), at("2030-01-01T10:00:40Z"))
            .await
            .expect("fire");
        assert_eq!(again, Fired::AlreadyFired);
        first.stop().await;

        // A restart: the checkpoints are in the database, so no tick fires twice.
        let second = engine(&home, "b", at("2030-01-01T10:00:35Z")).await;
        assert_eq!(second.tick("2030-01-01T10:00:35Z").await, Vec::<String>::new());
        assert_eq!(second.tick("2030-01-01T10:01:00Z").await, ["every-minute@2030-01-01T10:01:00Z created"]);
        second.crash().await;

        // A crash keeps the lease until it expires (30 s after its last renewal, 10:01:00).
        let third = engine(&home, "c", at("2030-01-01T10:01:10Z")).await;
        let report = third.scheduler.tick(at("2030-01-01T10:01:20Z")).await.expect("round");
        assert!(!report.leader && report.ticks.is_empty(), "{report:?}");
        let second = third;
        // Down from 10:01 to 10:05:10: the ticks older than 60 s are missed (`catch_up: none`),
        // the on-time ones fire.
        assert_eq!(
            second.tick("2030-01-01T10:05:10Z").await,
            [
                "every-minute@2030-01-01T10:05:00Z created",
                "second-30@2030-01-01T10:04:30Z created",
            ]
        );
        let jobs = trigger_jobs(&second.orchestrator).await;
        assert_eq!(jobs.len(), 9, "{jobs:?}");
        assert!(jobs.iter().all(|(_, status)| *status == JobStatus::Pending), "{jobs:?}");
        let minute_jobs = jobs.iter().filter(|(source, _)| source == "default/every-minute").count();
        assert_eq!(minute_jobs, 4);
        second.stop().await;
    }
}

const OSLO: &str = r#"
triggers:
  oslo-0230: { type: scheduler, cron: "0 30 2 * * *", timezone: Europe/Oslo, task: work }
  oslo-hourly: { type: scheduler, cron: "0 * * * *", timezone: Europe/Oslo, task: work }
"#;

/// Steps every 30 minutes (5 s past) from `from` to `to`, collecting what fired.
async fn step_half_hours(engine: &Engine, from: &str, to: &str) -> Vec<String> {
    let mut now = at(from);
    let mut fired = Vec::new();
    while now <= at(to) {
        let report = engine.scheduler.tick(now).await.expect("a round");
        fired.extend(lines(&report));
        now += TimeDelta::minutes(30);
    }
    fired
}

serve_test! {
    async fn oslo_dst_changes_skip_the_gap_and_fire_a_repeated_time_once(backend) {
        let home = Home::new(backend).await;
        home.workspace(&format!("{TASK}{OSLO}"));
        home.configure("");
        let engine = engine(&home, "a", at("2026-03-28T00:00:05Z")).await;

        // Spring forward, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let fired = step_half_hours(&engine, "2026-03-28T00:00:05Z", "2026-03-30T02:00:05Z").await;
        let daily: Vec<&String> = fired.iter().filter(|l| l.starts_with("oslo-0230")).collect();
        assert_eq!(
            daily,
            [
                "oslo-0230@2026-03-28T01:30:00Z created",
                "oslo-0230@2026-03-30T00:30:00Z created",
            ]
        );
        // Every UTC hour from 01:00Z on the 28th to 02:00Z on the 30th is a distinct local hour
        // (spring repeats none): 23 + 24 + 3.
        let hourly = fired.iter().filter(|l| l.starts_with("oslo-hourly")).count();
        assert_eq!(hourly, 50, "{fired:#?}");

        // Fall back, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:xx happens twice.
        let fired = step_half_hours(&engine, "2026-10-24T12:00:05Z", "2026-10-26T02:00:05Z").await;
        let daily: Vec<&String> = fired.iter().filter(|l| l.starts_with("oslo-0230")).collect();
        assert_eq!(
            daily,
            [
                // Down from March to October: the newest missed tick is passed over.
                "oslo-0230@2026-10-24T00:30:00Z passed over",
                "oslo-0230@2026-10-25T00:30:00Z created",
                "oslo-0230@2026-10-26T01:30:00Z created",
            ]
        );
        let hourly: Vec<&String> = fired
            .iter()
            .filter(|l| l.starts_with("oslo-hourly@2026-10-25T0"))
            .collect();
        // Local 02:00 is 00:00Z (CEST) and again 01:00Z (CET): it fires once.
        assert_eq!(
            hourly,
            [
                "oslo-hourly@2026-10-25T00:00:00Z created",
                "oslo-hourly@2026-10-25T02:00:00Z created",
                "oslo-hourly@2026-10-25T03:00:00Z created",
                "oslo-hourly@2026-10-25T04:00:00Z created",
                "oslo-hourly@2026-10-25T05:00:00Z created",
                "oslo-hourly@2026-10-25T06:00:00Z created",
                "oslo-hourly@2026-10-25T07:00:00Z created",
                "oslo-hourly@2026-10-25T08:00:00Z created",
                "oslo-hourly@2026-10-25T09:00:00Z created",
            ]
        );
        engine.stop().await;
    }
}

const POLICIES: &str = r#"
triggers:
  skipper: { type: scheduler, cron: "* * * * *", task: work, concurrency: skip }
  canceller: { type: scheduler, cron: "* * * * *", task: work, concurrency: cancel_previous }
  off: { type: scheduler, cron: "* * * * *", task: work, enabled: false }
  latest: { type: scheduler, cron: "0 * * * *", task: work, catch_up: latest }
  none: { type: scheduler, cron: "0 * * * *", task: work }
"#;

serve_test! {
    async fn concurrency_enabled_and_catch_up_decide_what_a_tick_creates(backend) {
        let home = Home::new(backend).await;
        home.workspace(&format!("{TASK}{POLICIES}"));
        home.configure("");
        let engine = engine(&home, "a", at("2030-05-01T08:00:10Z")).await;
        assert_eq!(engine.tick("2030-05-01T08:00:10Z").await, Vec::<String>::new());
        assert_eq!(
            engine.tick("2030-05-01T08:01:00Z").await,
            [
                "canceller@2030-05-01T08:01:00Z created",
                "off@2030-05-01T08:01:00Z passed over",
                "skipper@2030-05-01T08:01:00Z created",
            ]
        );
        // The first jobs are still pending (no worker): `skip` records a skipped job,
        // `cancel_previous` cancels the first after creating the second.
        let report = engine.scheduler.tick(at("2030-05-01T08:02:00Z")).await.expect("round");
        assert_eq!(
            lines(&report),
            [
                "canceller@2030-05-01T08:02:00Z created",
                "off@2030-05-01T08:02:00Z passed over",
                "skipper@2030-05-01T08:02:00Z skipped",
            ]
        );
        let cancelled = report.ticks.iter().find_map(|tick| match &tick.action {
            TickAction::Fired(Fired::Created { cancelled, .. }) if tick.trigger == "canceller" => {
                Some(cancelled.clone())
            }
            _ => None,
        });
        assert_eq!(cancelled.map(|ids| ids.len()), Some(1));
        // The same outcomes in the metrics (issue #17 item 7).
        let metrics = engine.orchestrator.store().metrics().families();
        assert_eq!(metrics.scheduler_ticks.get(&["fired"]), 3);
        assert_eq!(metrics.scheduler_ticks.get(&["skipped"]), 1);
        assert_eq!(metrics.scheduler_ticks.get(&["passed_over"]), 2);
        assert_eq!(metrics.scheduler_missed.get(&[]), 0);
        let jobs = trigger_jobs(&engine.orchestrator).await;
        let of = |source: &str| -> Vec<JobStatus> {
            jobs.iter().filter(|(s, _)| s == source).map(|(_, status)| *status).collect()
        };
        assert_eq!(of("default/skipper"), [JobStatus::Pending, JobStatus::Skipped]);
        assert_eq!(of("default/canceller"), [JobStatus::Cancelled, JobStatus::Pending]);
        assert!(of("default/off").is_empty());

        // Three hours without a scheduler: `latest` fires the newest missed tick, `none`
        // passes over it; the next hour fires both on time.
        let fired = engine.tick("2030-05-01T11:05:00Z").await;
        let hourly: Vec<&String> =
            fired.iter().filter(|l| l.starts_with("latest") || l.starts_with("none")).collect();
        assert_eq!(
            hourly,
            ["latest@2030-05-01T11:00:00Z created", "none@2030-05-01T11:00:00Z passed over"]
        );
        assert!(engine.orchestrator.store().metrics().families().scheduler_missed.get(&[]) >= 2);
        let fired = engine.tick("2030-05-01T12:00:30Z").await;
        let hourly: Vec<&String> =
            fired.iter().filter(|l| l.starts_with("latest") || l.starts_with("none")).collect();
        assert_eq!(
            hourly,
            ["latest@2030-05-01T12:00:00Z created", "none@2030-05-01T12:00:00Z created"]
        );

        // The triggers' views show the last run.
        let views = engine.orchestrator.store().trigger_ticks(Some("default")).await.expect("ticks");
        let none = views.iter().find(|tick| tick.trigger == "none").expect("none");
        assert_eq!(none.last_run_at, Some(at("2030-05-01T12:00:30Z")));
        let off = views.iter().find(|tick| tick.trigger == "off").expect("off");
        assert_eq!(off.last_run_at, None);
        engine.stop().await;
    }
}

serve_test! {
    async fn two_schedulers_on_one_database_fire_each_tick_once(backend) {
        let home = Home::new(backend).await;
        home.workspace(&format!("{TASK}{BOUNDARIES}"));
        home.configure("");
        let start = at("2030-02-01T06:00:05Z");
        let a = engine(&home, "a", start).await;
        let b = engine(&home, "b", start).await;
        let mut created = Vec::new();
        let mut now = start;
        for _ in 0..20 {
            now += TimeDelta::seconds(47);
            let (ra, rb) = tokio::join!(a.scheduler.tick(now), b.scheduler.tick(now));
            let (ra, rb) = (ra.expect("round a"), rb.expect("round b"));
            assert!(ra.leader != rb.leader, "exactly one leader at {now}: {ra:?} {rb:?}");
            created.extend(lines(&ra));
            created.extend(lines(&rb));
        }
        let mut unique = created.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), created.len(), "a tick fired twice: {created:#?}");
        assert!(created.iter().all(|line| line.ends_with(" created")), "{created:#?}");
        // 06:00:05 + 20 × 47 s = 06:15:45: 15 minutes, 16 second-30 ticks, no full hour.
        assert_eq!(created.len(), 15 + 16, "{created:#?}");
        assert_eq!(trigger_jobs(&a.orchestrator).await.len(), created.len());

        // Without the lease's help: both fire the same ticks at once, directly.
        for minute in 20..30 {
            let tick = at(&format!("2030-02-01T06:{minute}:00Z"));
            let (fa, fb) = tokio::join!(
                a.orchestrator.fire_schedule("default", "every-minute", tick, tick),
                b.orchestrator.fire_schedule("default", "every-minute", tick, tick),
            );
            let outcomes = [fa.expect("fire a"), fb.expect("fire b")];
            let made = outcomes.iter().filter(|f| matches!(f, Fired::Created { .. })).count();
            assert_eq!(made, 1, "{outcomes:?}");
            assert!(outcomes.contains(&Fired::AlreadyFired), "{outcomes:?}");
        }
        assert_eq!(trigger_jobs(&a.orchestrator).await.len(), created.len() + 10);
        a.stop().await;
        b.stop().await;
    }
}

serve_test! {
    async fn the_serve_loop_fires_a_schedule_and_lists_its_last_run(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(&format!(
            "{TASK}triggers:\n  every-second: {{ type: scheduler, cron: \"* * * * * *\", task: work, concurrency: skip }}\n"
        ));
        home.configure_workspace(&workspace);
        let server = home.start().await;
        let started = std::time::Instant::now();
        let job = loop {
            let jobs = server.get("/api/jobs?source_type=trigger&status=completed").await.json();
            if let Some(job) = jobs.as_array().and_then(|jobs| jobs.first().cloned()) {
                break job;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no trigger job completed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(job["source_id"], "default/every-second");
        let triggers = server.get("/api/workspaces/default/triggers").await.json();
        let trigger = &triggers[0];
        assert_eq!(trigger["name"], "every-second");
        assert!(trigger["last_run_at"].is_string(), "{trigger:#}");
        assert_eq!(trigger["next_runs"].as_array().map(Vec::len), Some(5), "{trigger:#}");
        server.stop().await;
    }
}

/// A default template that only fails when rendered: the secret is not JSON.
const REJECTED: &str = r#"
secrets:
  SETTINGS: "plain text, not JSON"
actions:
  note: { type: script, script: echo "$INPUT_TEXT", input: { text: { type: string } } }
tasks:
  strict:
    input:
      settings: { type: object, default: "{{ secret.SETTINGS | fromjson }}" }
    flow:
      run: { type: script, script: echo never }
    on_error:
      - action: note
        input: { text: "{{ hook.task_name }} {{ hook.status }}" }
triggers:
  strict-nightly: { type: scheduler, cron: "0 3 * * *", task: strict }
"#;

serve_test! {
    async fn a_tick_whose_input_is_rejected_records_a_failed_job_and_fires_on_error(backend) {
        let home = Home::new(backend).await;
        home.workspace(REJECTED);
        home.configure("");
        let engine = engine(&home, "a", at("2030-03-01T02:59:00Z")).await;
        assert_eq!(engine.tick("2030-03-01T02:59:00Z").await, Vec::<String>::new());
        let report = engine.scheduler.tick(at("2030-03-01T03:00:01Z")).await.expect("round");
        assert_eq!(lines(&report), ["strict-nightly@2030-03-01T03:00:00Z rejected"]);
        let Some(TickAction::Fired(Fired::Rejected { job_id, error })) =
            report.ticks.first().map(|tick| &tick.action)
        else {
            panic!("{report:?}");
        };
        assert!(error.starts_with("input.settings:"), "{error}");
        let job = engine
            .orchestrator
            .store()
            .get_job(*job_id)
            .await
            .expect("read")
            .expect("the failed record");
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error.as_deref(), Some(error.as_str()));
        assert!(job.steps.is_empty() && job.completed_at.is_some(), "{job:?}");
        let (hooks, _) = engine
            .orchestrator
            .store()
            .list_jobs(&JobFilter {
                source_type: Some("hook".to_owned()),
                ..JobFilter::default()
            })
            .await
            .expect("jobs");
        assert_eq!(hooks.len(), 1, "{hooks:?}");
        assert_eq!(hooks[0].source_id, Some(format!("{job_id}/on_error")));
        engine.stop().await;
    }
}

const TEMPLATED: &str = r#"
secrets:
  REGION: eu-north-1
tasks:
  report:
    input:
      day: { type: string }
      who: { type: string }
      region: { type: string }
      retries: { type: integer }
    flow:
      run: { type: script, script: echo "$INPUT_DAY" }
  broken:
    input:
      retries: { type: integer }
    flow:
      run: { type: script, script: echo never }
triggers:
  daily-report:
    type: scheduler
    cron: "0 6 * * *"
    task: report
    input:
      day: "{{ trigger.scheduled_at[:10] }}"
      who: "{{ trigger.type }}:{{ trigger.name }}"
      region: "{{ secret.REGION }}"
      retries: "{{ 1 + 2 }}"
  broken-report:
    type: scheduler
    cron: "0 7 * * *"
    task: broken
    input:
      retries: "{{ secret.REGION | int }}"
"#;

serve_test! {
    async fn templated_trigger_input_renders_at_each_tick_and_a_failure_names_the_field(backend) {
        let home = Home::new(backend).await;
        home.workspace(TEMPLATED);
        home.configure("");
        let engine = engine(&home, "a", at("2030-03-01T05:59:00Z")).await;
        assert_eq!(engine.tick("2030-03-01T05:59:00Z").await, Vec::<String>::new());
        assert_eq!(
            engine.tick("2030-03-01T06:00:01Z").await,
            ["daily-report@2030-03-01T06:00:00Z created"]
        );
        let report = engine.scheduler.tick(at("2030-03-01T07:00:01Z")).await.expect("round");
        let Some(TickAction::Fired(Fired::Rejected { job_id, error })) =
            report.ticks.first().map(|tick| &tick.action)
        else {
            panic!("{report:?}");
        };
        assert_eq!(
            engine.tick("2030-03-02T06:00:01Z").await,
            ["daily-report@2030-03-02T06:00:00Z created"]
        );
        let (rows, _) = engine
            .orchestrator
            .store()
            .list_jobs(&JobFilter { source_type: Some("trigger".to_owned()), ..JobFilter::default() })
            .await
            .expect("jobs");
        let mut inputs = Vec::new();
        for row in rows.iter().filter(|row| row.task_name == "report") {
            let job = engine.orchestrator.store().get_job(row.job_id).await.expect("read").expect("job");
            inputs.push(job.input);
        }
        inputs.sort_by_key(|input| input["day"].as_str().unwrap_or_default().to_owned());
        // Each firing renders anew, with the tick's own time; a single expression keeps its type.
        assert_eq!(
            inputs,
            [
                serde_json::json!({"day": "2030-03-01", "who": "scheduler:daily-report", "region": "eu-north-1", "retries": 3}),
                serde_json::json!({"day": "2030-03-02", "who": "scheduler:daily-report", "region": "eu-north-1", "retries": 3}),
            ]
        );

        assert!(error.starts_with("triggers.broken-report.input.retries:"), "{error}");
        let job = engine.orchestrator.store().get_job(*job_id).await.expect("read").expect("record");
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error.as_deref(), Some(error.as_str()));
        engine.stop().await;
    }
}
