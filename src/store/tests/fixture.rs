//! A small workspace and helpers that drive its jobs through the real engine, so the store is
//! tested with the states the server will actually write.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::engine::{self, Effect, EvalContext, Event, EventError, JobMeta, JobPlan, JobState};
use crate::runner::spec::{AttemptResult, Outcome};
use crate::store::{JobRouting, StoreError, Worker, WorkerRegistration};
use crate::workflow::model::WorkspaceDef;
use crate::workflow::template::Templates;
use crate::workflow::{self, WorkflowFile, WorkspaceFiles};

const WORKSPACE: &str = r#"
actions:
  build:
    type: script
    script: echo build
  deploy:
    type: script
    script: echo deploy
    tags: [deploy]
  call-single:
    type: task
    task: single
  flaky:
    type: script
    script: exit 1
    retry: { max_attempts: 2, delay: 30s }

tasks:
  pipeline:
    flow:
      build: { action: build }
      test: { action: build, depends_on: [build] }
      ship: { action: deploy, depends_on: [test] }
  single:
    flow:
      only: { action: build }
  tagged:
    flow:
      release: { action: deploy }
  boxed:
    flow:
      run: { action: build }
  retrying:
    flow:
      try: { action: flaky }
  parent:
    flow:
      call: { action: call-single }
  local:
    mode: local
    flow:
      first: { action: build }
      second: { action: build }
      last: { action: build, depends_on: [first, second] }
  fanout:
    input:
      items: { type: array, default: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }
    flow:
      item:
        action: build
        for_each: "{{ input.items }}"
"#;

/// Errors of test callbacks: the store's, or the engine refusing an event.
#[derive(Debug)]
pub enum TestError {
    Store(StoreError),
    #[allow(dead_code)]
    Engine(EventError),
    /// A callback that fails on purpose.
    Refused,
}

impl From<StoreError> for TestError {
    fn from(error: StoreError) -> Self {
        TestError::Store(error)
    }
}

impl From<EventError> for TestError {
    fn from(error: EventError) -> Self {
        TestError::Engine(error)
    }
}

pub struct Fixture {
    def: WorkspaceDef,
    templates: Templates,
    secrets: Value,
    mask: crate::mask::Masker,
}

/// A fixed instant plus `secs`, at whole milliseconds as the store keeps them.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + secs, 0).expect("valid time")
}

pub fn ttl() -> TimeDelta {
    TimeDelta::seconds(60)
}

impl Fixture {
    pub fn new() -> Fixture {
        let files = WorkspaceFiles {
            workflow_files: vec![WorkflowFile {
                path: ".workflows/store.yaml".to_owned(),
                text: WORKSPACE.to_owned(),
            }],
            all_files: Default::default(),
        };
        let loaded = workflow::load(&files);
        assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
        Fixture {
            def: loaded.def,
            templates: Templates::new(),
            secrets: json!({}),
            mask: crate::mask::Masker::default(),
        }
    }

    pub fn plan(&self, task: &str) -> JobPlan {
        JobPlan::new(&self.def, task).expect("task plans")
    }

    fn ctx(&self) -> EvalContext<'_> {
        EvalContext {
            templates: &self.templates,
            secrets: &self.secrets,
            mask: &self.mask,
        }
    }

    /// A new job of `task` created at `now`, with its routing.
    pub fn job(&self, task: &str, now: DateTime<Utc>, priority: i64) -> (JobState, JobRouting) {
        let plan = self.plan(task);
        let input = match task {
            "fanout" => json!({"items": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}),
            _ => json!({}),
        };
        let meta = JobMeta {
            source_job_id: None,
            id: Uuid::new_v4(),
            workspace: "default".to_owned(),
            revision: "rev1".to_owned(),
            source_type: "api".to_owned(),
            source_id: None,
            parent_job_id: None,
            parent_step_name: None,
            depth: 0,
            raw_input: input.clone(),
            inherited_mask: Vec::new(),
        };
        let (mut state, _) = engine::create(&plan, meta, input, now, &self.ctx());
        // This version refuses `runner: docker` in workflows, but the store must already route
        // such steps to docker workers: `boxed` stands for one.
        if task == "boxed" {
            for step in state.steps.iter_mut() {
                step.runner = "docker".to_owned();
            }
        }
        (state, JobRouting::from_plan(&plan, priority))
    }

    pub fn apply(
        &self,
        job: &mut JobState,
        event: Event,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EventError> {
        let plan = self.plan(&job.task);
        let mut jitter = || 0.0;
        engine::apply(job, &plan, event, now, &self.ctx(), &mut jitter)
    }

    /// The claim callback of a server whose rendering always succeeds: `StepClaimed`, and the
    /// claimed step's name as the value.
    pub fn claimer(
        &self,
        now: DateTime<Utc>,
    ) -> impl FnMut(&mut JobState, &str) -> Result<Option<String>, TestError> + '_ {
        move |job, step| {
            self.apply(
                job,
                Event::StepClaimed {
                    step: step.to_owned(),
                },
                now,
            )?;
            Ok(Some(step.to_owned()))
        }
    }
}

pub fn finished(outcome: Outcome, now: DateTime<Utc>, output: Value) -> AttemptResult {
    AttemptResult {
        outcome,
        output,
        error_message: match outcome {
            Outcome::Succeeded => None,
            _ => Some("exit code 1".to_owned()),
        },
        started_at: now,
        finished_at: now,
    }
}

pub fn registration(
    name: &str,
    capabilities: &[&str],
    tags: &[&str],
    max: u32,
) -> WorkerRegistration {
    WorkerRegistration {
        name: name.to_owned(),
        version: "0.3.0".to_owned(),
        capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        max_concurrent: max,
    }
}

/// A worker with `script` and no tags, registered at `now`.
pub async fn script_worker(store: &crate::store::Store, now: DateTime<Utc>, max: u32) -> Worker {
    store
        .register_worker(&registration("w", &["script"], &[], max), now)
        .await
        .expect("register")
}
