//! The in-memory executor behind `stroem run`: it drives the engine's pure rules with real
//! processes, a wall clock and the terminal, for one top-level job and its child jobs.
//!
//! It is a single-threaded event loop: attempts run as tokio tasks and report back over a
//! channel, so job state is only ever touched here, in the same order the server will apply
//! events (claim → start → finish, child created → child finished).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::print::Printer;
use crate::engine::{
    self, Effect, EvalContext, Event, JobMeta, JobPlan, JobState, JobStatus, StepStatus, ViewMask,
};
use crate::mask::Masker;
use crate::runner::spec::{AttemptResult, LogLine, Stream};
use crate::runner::{LocalRunner, WorkingCopy};
use crate::workflow::input::{self, EnforceOptions};
use crate::workflow::model::{TaskMode, WorkspaceDef};
use crate::workflow::template::Templates;

/// The workspace name local jobs report (`job.workspace` in templates).
pub const LOCAL_WORKSPACE: &str = "local";

/// Everything a local run needs, resolved by the caller.
pub struct LocalWorkspace {
    pub root: PathBuf,
    pub def: WorkspaceDef,
    pub revision: String,
    /// The resolved `secret` variable (a JSON object).
    pub secrets: Value,
    /// The revision's mask set: the secrets and the literal values of `secret: true` fields.
    pub mask: Masker,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// How many worker steps may run at once.
    pub max_concurrent: usize,
    pub runner: LocalRunner,
    /// Who decides approval steps; `None` fails them (API §9.2: no terminal to ask on).
    pub approver: Option<super::approve::Approver>,
}

/// How the run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub job: JobState,
    /// Every child job, in creation order.
    pub children: Vec<JobState>,
    /// How the job is shown when it is printed.
    pub view: ViewMask,
    /// Ctrl-C or SIGTERM cancelled the job.
    pub interrupted: bool,
}

pub(super) struct LocalJob {
    pub(super) state: JobState,
    pub(super) plan: JobPlan,
    /// The job's full mask set: the revision's, its own and its ancestors' (WF §16.3).
    pub(super) mask: Arc<Masker>,
    /// Prefix for log lines of child and hook jobs: `parent-step/`, `on_error/`.
    pub(super) prefix: String,
    /// For hook jobs: the job whose end fired them.
    pub(super) hook_of: Option<Uuid>,
    /// A `local` job's one working copy, shared by all its worker steps and removed when the
    /// job finishes (WF §6.6, §8); made at its first worker step.
    pub(super) workdir: Option<Arc<WorkingCopy>>,
}

/// Where a new job comes from, as far as the executor cares.
pub(super) struct Origin {
    /// The mask values the job that led to this one hands on (parent or hooked job).
    pub(super) mask: Vec<String>,
    pub(super) prefix: String,
    pub(super) hook_of: Option<Uuid>,
}

/// Where an attempt runs: its own working copy, or its `local` job's shared one.
enum Workdir {
    Own(WorkingCopy),
    Shared(Arc<WorkingCopy>),
}

impl Workdir {
    fn path(&self) -> &std::path::Path {
        match self {
            Workdir::Own(copy) => copy.path(),
            Workdir::Shared(copy) => copy.path(),
        }
    }
}

/// One running attempt, keyed by job and step.
struct Attempt {
    cancel: CancellationToken,
}

struct Finished {
    job: Uuid,
    step: String,
    result: AttemptResult,
}

pub struct Executor {
    pub(super) workspace: Arc<LocalWorkspace>,
    pub(super) templates: Templates,
    options: Options,
    printer: Printer,
    pub(super) jobs: IndexMap<Uuid, LocalJob>,
    running: HashMap<(Uuid, String), Attempt>,
    finished_tx: mpsc::UnboundedSender<Finished>,
    finished_rx: mpsc::UnboundedReceiver<Finished>,
    top: Uuid,
    interrupted: bool,
}

/// Why the job could not even be created.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Plan(#[from] engine::PlanError),
    #[error("invalid input:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Input(Vec<input::FieldError>),
}

impl Executor {
    /// Validates `raw_input` against the task's schema (WF §3.2) and creates the job.
    pub fn new(
        workspace: LocalWorkspace,
        task: &str,
        raw_input: Value,
        options: Options,
        printer: Printer,
    ) -> Result<Executor, StartError> {
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        let mut executor = Executor {
            workspace: Arc::new(workspace),
            templates: Templates::new(),
            options,
            printer,
            jobs: IndexMap::new(),
            running: HashMap::new(),
            finished_tx,
            finished_rx,
            top: Uuid::nil(),
            interrupted: false,
        };
        let meta = JobMeta {
            source_job_id: None,
            id: Uuid::now_v7(),
            workspace: LOCAL_WORKSPACE.to_owned(),
            revision: executor.workspace.revision.clone(),
            source_type: "cli".to_owned(),
            source_id: None,
            parent_job_id: None,
            parent_step_name: None,
            depth: 0,
            raw_input: raw_input.clone(),
            inherited_mask: Vec::new(),
        };
        let mut queue = VecDeque::new();
        let plan = JobPlan::new(&executor.workspace.def, task)?;
        let origin = Origin {
            mask: Vec::new(),
            prefix: String::new(),
            hook_of: None,
        };
        executor.top = executor
            .create_job(plan, meta, &raw_input, origin, &mut queue)
            .map_err(StartError::Input)?;
        executor.carry_out(queue);
        Ok(executor)
    }

    /// Runs until the top-level job is finished and every attempt has reported.
    pub async fn run(mut self) -> RunOutcome {
        let mut interrupt = Interrupt::new();
        loop {
            self.claim_ready_steps();
            // Hook jobs of the top-level job run before the command returns.
            let all_finished = self.jobs.values().all(|job| job.state.is_finished());
            if all_finished && self.running.is_empty() {
                break;
            }
            let wake = self.next_wake();
            tokio::select! {
                Some(done) = self.finished_rx.recv() => {
                    self.running.remove(&(done.job, done.step.clone()));
                    self.apply(done.job, Event::StepFinished { step: done.step, result: done.result });
                }
                () = sleep_until(wake) => self.on_time(),
                () = interrupt.recv(), if !self.interrupted => {
                    self.interrupted = true;
                    eprintln!(
                        "{}",
                        self.printer.bold("interrupted: cancelling the job and stopping its steps…")
                    );
                    self.apply(self.top, Event::CancelRequested { by: Some("interrupt".to_owned()) });
                }
            }
        }
        let top = self.top;
        let mut jobs = self.jobs;
        let job = jobs.shift_remove(&top).expect("the top-level job exists");
        RunOutcome {
            view: ViewMask::Known {
                mask: job.mask,
                fields: engine::record_of(&job.state, &job.plan).fields,
            },
            job: job.state,
            children: jobs.into_values().map(|job| job.state).collect(),
            interrupted: self.interrupted,
        }
    }

    pub(super) fn approver(&self) -> Option<super::approve::Approver> {
        self.options.approver.clone()
    }

    pub(super) fn eval<'a>(&'a self, mask: &'a Masker) -> EvalContext<'a> {
        EvalContext {
            templates: &self.templates,
            secrets: &self.workspace.secrets,
            mask,
        }
    }

    /// Validates `raw_input` against the plan's task schema (WF §3.2) and creates the job.
    pub(super) fn create_job(
        &mut self,
        plan: JobPlan,
        meta: JobMeta,
        raw_input: &Value,
        origin: Origin,
        queue: &mut VecDeque<(Uuid, Effect)>,
    ) -> Result<Uuid, Vec<input::FieldError>> {
        let default_scope = serde_json::json!({
            "secret": self.workspace.secrets,
            "job": {"id": meta.id, "task": plan.task_name, "workspace": meta.workspace,
                    "source_type": meta.source_type, "source_id": meta.source_id,
                    "revision": meta.revision},
        });
        let render_default = |template: &str| {
            self.templates
                .render(template, &default_scope)
                .map_err(|error| error.to_string())
        };
        let validated = input::enforce(
            plan.task_input.as_ref(),
            raw_input,
            EnforceOptions::default(),
            &render_default,
        )
        .map_err(|errors| {
            // A message may quote a value: a rendered default, or a value handed on.
            let record = engine::mask_record(&plan, raw_input, &origin.mask);
            let mask = engine::job_masker(&self.workspace.mask, &record);
            errors
                .into_iter()
                .map(|error| input::FieldError {
                    message: mask.mask(&error.message).into_owned(),
                    ..error
                })
                .collect::<Vec<_>>()
        })?;
        let id = meta.id;
        let input = Value::Object(validated.into_iter().collect());
        let record = engine::mask_record(&plan, &input, &meta.inherited_mask);
        let mask = Arc::new(engine::job_masker(&self.workspace.mask, &record));
        let (state, effects) = engine::create(&plan, meta, input, Utc::now(), &self.eval(&mask));
        self.jobs.insert(
            id,
            LocalJob {
                state,
                plan,
                mask,
                prefix: origin.prefix,
                hook_of: origin.hook_of,
                workdir: None,
            },
        );
        queue.extend(effects.into_iter().map(|effect| (id, effect)));
        Ok(id)
    }

    /// Applies one event and carries out what follows from it.
    pub(super) fn apply(&mut self, job_id: Uuid, event: Event) {
        let mut queue = VecDeque::new();
        self.apply_into(job_id, event, &mut queue);
        self.carry_out(queue);
    }

    fn apply_into(&mut self, job_id: Uuid, event: Event, queue: &mut VecDeque<(Uuid, Effect)>) {
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return;
        };
        let ctx = EvalContext {
            templates: &self.templates,
            secrets: &self.workspace.secrets,
            mask: &job.mask,
        };
        let mut jitter = || rand::random::<f64>();
        match engine::apply(
            &mut job.state,
            &job.plan,
            event,
            Utc::now(),
            &ctx,
            &mut jitter,
        ) {
            Ok(effects) => queue.extend(effects.into_iter().map(|effect| (job_id, effect))),
            // Late reports for a job that already ended (a cancelled child's steps) change
            // nothing; the engine has refused them and that is all there is to do.
            Err(error) => tracing::debug!(%job_id, %error, "event refused"),
        }
    }

    fn carry_out(&mut self, mut queue: VecDeque<(Uuid, Effect)>) {
        while let Some((job_id, effect)) = queue.pop_front() {
            match effect {
                // Ready worker steps are picked up by `claim_ready_steps`.
                Effect::StepReady { .. } => {}
                Effect::StartChildJob {
                    step,
                    task,
                    input,
                    depth,
                } => self.start_child(job_id, step, &task, input, depth, &mut queue),
                Effect::CancelChildJob { child_job_id, .. } => self.apply_into(
                    child_job_id,
                    Event::CancelRequested {
                        by: Some(format!("parent job {job_id}")),
                    },
                    &mut queue,
                ),
                Effect::StopStep { step } => {
                    if let Some(attempt) = self.running.get(&(job_id, step)) {
                        attempt.cancel.cancel();
                    }
                }
                Effect::Log { line } => self.server_line(job_id, &line),
                Effect::StepSuspended { step, message } => {
                    self.fire_suspended_hooks(job_id, &step, &message, &mut queue);
                    self.decide(job_id, step, message);
                }
                Effect::JobFinished { status } => {
                    // Every step is terminal: the shared working copy is no longer needed.
                    if let Some(job) = self.jobs.get_mut(&job_id) {
                        job.workdir = None;
                    }
                    self.job_finished(job_id, status, &mut queue);
                }
            }
        }
    }

    fn start_child(
        &mut self,
        parent: Uuid,
        step: String,
        task: &str,
        input: Value,
        depth: u32,
        queue: &mut VecDeque<(Uuid, Effect)>,
    ) {
        let parent_job = &self.jobs[&parent];
        let inherited_mask = engine::record_of(&parent_job.state, &parent_job.plan).values;
        let meta = JobMeta {
            source_job_id: None,
            id: Uuid::now_v7(),
            workspace: LOCAL_WORKSPACE.to_owned(),
            revision: parent_job.state.revision.clone(),
            source_type: "task".to_owned(),
            source_id: Some(format!("{parent}/{step}")),
            parent_job_id: Some(parent),
            parent_step_name: Some(step.clone()),
            depth,
            raw_input: input.clone(),
            inherited_mask: inherited_mask.clone(),
        };
        let origin = Origin {
            mask: inherited_mask,
            prefix: format!("{}{step}/", parent_job.prefix),
            hook_of: None,
        };
        let created = JobPlan::new(&self.workspace.def, task)
            .map_err(|error| error.to_string())
            .and_then(|plan| {
                self.create_job(plan, meta, &input, origin, queue)
                    .map_err(|errors| join_errors(&errors))
            });
        let event = match created {
            Ok(child_job_id) => Event::ChildJobCreated { step, child_job_id },
            Err(error) => Event::ChildJobRejected { step, error },
        };
        self.apply_into(parent, event, queue);
    }

    fn job_finished(
        &mut self,
        job_id: Uuid,
        status: JobStatus,
        queue: &mut VecDeque<(Uuid, Effect)>,
    ) {
        self.fire_hooks(job_id, queue);
        let job = &self.jobs[&job_id];
        if let Some(original) = job.hook_of
            && status != JobStatus::Completed
        {
            let line = format!(
                "hook job {} ({}) ended {}: {}",
                job.state.id,
                job.state.task,
                status.as_str(),
                job.state.error.as_deref().unwrap_or("no error message")
            );
            self.server_line(original, &line);
        }
        let job = &self.jobs[&job_id].state;
        let (Some(parent), Some(step)) = (job.parent_job_id, job.parent_step_name.clone()) else {
            return;
        };
        let event = Event::ChildJobFinished {
            step,
            child_job_id: job_id,
            status,
            output: job.output.clone(),
            error: job.error.clone(),
        };
        self.apply_into(parent, event, queue);
    }

    pub(super) fn server_line(&self, job_id: Uuid, line: &str) {
        let job = &self.jobs[&job_id];
        self.printer.line(&LogLine {
            ts: Utc::now(),
            stream: Stream::Stderr,
            step: format!("{}_server", job.prefix),
            attempt: None,
            line: job.mask.mask(line).into_owned(),
        });
    }

    /// Claims ready worker steps, oldest first across all jobs, while slots are free.
    fn claim_ready_steps(&mut self) {
        let now = Utc::now();
        while self.running.len() < self.options.max_concurrent.max(1) {
            let Some((job_id, step)) = self.oldest_ready(now) else {
                return;
            };
            self.claim(job_id, step);
        }
    }

    fn oldest_ready(&self, now: DateTime<Utc>) -> Option<(Uuid, String)> {
        self.jobs
            .iter()
            .filter(|(_, job)| !job.state.is_finished())
            .flat_map(|(id, job)| {
                job.state
                    .steps
                    .iter()
                    .filter(|step| step.status == StepStatus::Ready)
                    .filter(|step| step.retry_at.is_none_or(|at| at <= now))
                    .filter(|step| {
                        job.plan
                            .step(step.flow_name())
                            .is_some_and(|p| p.action.runs_on_worker())
                    })
                    .map(move |step| (step.ready_at, *id, step.step_name.clone()))
            })
            .min_by_key(|(ready_at, _, _)| *ready_at)
            .map(|(_, id, step)| (id, step))
    }

    fn claim(&mut self, job_id: Uuid, step: String) {
        self.apply(job_id, Event::StepClaimed { step: step.clone() });
        let job = &self.jobs[&job_id];
        let prepared = engine::prepare_attempt(&job.state, &job.plan, &step, &self.eval(&job.mask));
        let mut spec = match prepared {
            Ok(spec) => spec,
            Err(error) => {
                self.apply(job_id, Event::StepRejected { step, error });
                return;
            }
        };
        // Here the step inherits the environment the secrets came from: its lines are masked
        // with the job's whole set, not only the values its spec holds.
        spec.mask.extend(job.mask.pieces().iter().cloned());
        spec.mask.sort();
        spec.mask.dedup();
        let prefix = job.prefix.clone();
        if let Some(job) = self.jobs.get_mut(&job_id) {
            engine::record_attempt_input(&mut job.state, &job.plan, &spec);
        }
        self.apply(job_id, Event::StepStarted { step: step.clone() });
        // A cancellation that arrived between claim and start leaves nothing to run.
        let still_running = self.jobs[&job_id]
            .state
            .step(&step)
            .is_some_and(|state| state.status == StepStatus::Running);
        if !still_running {
            return;
        }

        let cancel = CancellationToken::new();
        self.running.insert(
            (job_id, step.clone()),
            Attempt {
                cancel: cancel.clone(),
            },
        );
        // A `local` job's steps share one copy (made at its first worker step); every other
        // attempt gets its own.
        let shared = match self.jobs.get_mut(&job_id) {
            Some(job) if job.plan.mode == TaskMode::Local => match &job.workdir {
                Some(copy) => Some(Ok(Arc::clone(copy))),
                None => Some(WorkingCopy::create(&self.workspace.root).map(|copy| {
                    let copy = Arc::new(copy);
                    job.workdir = Some(Arc::clone(&copy));
                    copy
                })),
            },
            _ => None,
        };
        let workspace = Arc::clone(&self.workspace);
        let runner = self.options.runner.clone();
        let printer = self.printer;
        let finished = self.finished_tx.clone();
        tokio::spawn(async move {
            let copy = match shared {
                Some(shared) => shared.map(Workdir::Shared),
                None => WorkingCopy::create(&workspace.root).map(Workdir::Own),
            };
            let result = match copy {
                Ok(copy) => {
                    let mut sink = |mut line: LogLine| {
                        line.step = format!("{prefix}{}", line.step);
                        printer.line(&line);
                    };
                    let result = runner.run(&spec, copy.path(), &mut sink, cancel).await;
                    // A working copy that cannot be removed is left in the temp directory; the
                    // attempt's result stands.
                    if let Workdir::Own(copy) = copy {
                        let _ = copy.remove();
                    }
                    result
                }
                Err(error) => AttemptResult {
                    outcome: crate::runner::spec::Outcome::Failed,
                    output: Value::Null,
                    error_message: Some(format!("cannot create the working copy: {error}")),
                    started_at: Utc::now(),
                    finished_at: Utc::now(),
                },
            };
            // The receiver lives as long as the executor; if it is gone the run is over.
            let _ = finished.send(Finished {
                job: job_id,
                step,
                result,
            });
        });
    }

    /// The next moment something time-based is due: a retry delay ending, a job timeout, or
    /// the timeout of a task step (worker steps are timed by the runner itself).
    fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.jobs
            .values()
            .filter(|job| !job.state.is_finished())
            .flat_map(|job| {
                let steps = task_step_deadlines(job).map(|(_, at)| at);
                [job.state.next_retry_at(), engine::job_deadline(&job.state)]
                    .into_iter()
                    .flatten()
                    .chain(steps)
            })
            .min()
    }

    fn on_time(&mut self) {
        let now = Utc::now();
        let mut due: Vec<(Uuid, Event)> = Vec::new();
        for (id, job) in self.jobs.iter().filter(|(_, job)| !job.state.is_finished()) {
            if !job.state.is_halted()
                && engine::job_deadline(&job.state).is_some_and(|at| at <= now)
            {
                due.push((*id, Event::JobTimedOut));
                continue;
            }
            if job.state.next_retry_at().is_some_and(|at| at <= now) {
                due.push((*id, Event::Tick));
            }
            due.extend(
                task_step_deadlines(job)
                    .filter(|(_, at)| *at <= now)
                    .map(|(step, _)| (*id, Event::StepTimedOut { step })),
            );
        }
        for (id, event) in due {
            self.apply(id, event);
        }
    }
}

fn join_errors(errors: &[input::FieldError]) -> String {
    let joined: Vec<String> = errors.iter().map(ToString::to_string).collect();
    joined.join("; ")
}

/// Deadlines of running task steps (their child job is timed from its creation).
fn task_step_deadlines(job: &LocalJob) -> impl Iterator<Item = (String, DateTime<Utc>)> + '_ {
    job.state
        .steps
        .iter()
        .filter(|step| step.status == StepStatus::Running && step.child_job_id.is_some())
        .filter_map(|step| {
            let at = engine::step_deadline(&job.state, &job.plan, &step.step_name)?;
            Some((step.step_name.clone(), at))
        })
}

async fn sleep_until(at: Option<DateTime<Utc>>) {
    match at {
        None => std::future::pending().await,
        Some(at) => {
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
        }
    }
}

/// Ctrl-C and SIGTERM, both meaning "cancel the job".
struct Interrupt {
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Interrupt {
    fn new() -> Self {
        let terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        Interrupt { terminate }
    }

    async fn recv(&mut self) {
        let terminate = async {
            match &mut self.terminate {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
    }
}

/// The environment as captured once by the CLI, for secrets and the runner.
pub type Environment = BTreeMap<String, String>;
