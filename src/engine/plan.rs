//! A task resolved against its workspace: what every step runs, with which limits, in which
//! order. The plan is computed once per job (it depends only on the pinned revision) and is the
//! read-only half of every engine call; the mutable half is [`JobState`](super::state::JobState).

use std::collections::{BTreeSet, HashMap};

use crate::workflow::model::{
    Action, ActionKind, ActionRef, ApprovalAction, Duration, InputSchema, Retry, Runner, Step,
    TaskMode, WorkspaceDef,
};

/// Why a task could not be planned. Validation rejects all of these first, so they only appear
/// when a caller hands in an unvalidated workspace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("unknown task '{0}'")]
    UnknownTask(String),
    #[error("step '{step}' uses unknown action '{action}'")]
    UnknownAction { step: String, action: String },
    #[error("step '{step}' depends on unknown step '{dependency}'")]
    UnknownDependency { step: String, dependency: String },
    #[error("dependency cycle among steps {}", .0.join(", "))]
    Cycle(Vec<String>),
}

/// One flow step with everything resolved.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// The step name as written.
    pub name: String,
    /// The step as written (input templates, `when`, `for_each`, …).
    pub step: Step,
    /// The action the step runs, looked up or inline.
    pub action: Action,
    /// The action's name; inline actions are `_inline:<task>:<step>` (WF §7).
    pub action_name: String,
    /// Per-attempt limit: the step's, else the action's.
    pub timeout: Option<Duration>,
    /// Effective retry block: the step's replaces the action's as a whole.
    pub retry: Option<Retry>,
    /// Direct dependencies, in the order written.
    pub depends_on: Vec<String>,
    /// Every step this one transitively depends on.
    pub transitive_deps: BTreeSet<String>,
    /// No step of the flow depends on this one; its output is part of the job output.
    pub is_sink: bool,
}

impl PlannedStep {
    /// Total executions allowed, including the first (no retry block: 1).
    pub fn max_attempts(&self) -> u32 {
        self.retry
            .as_ref()
            .map_or(1, |retry| retry.max_attempts.max(1))
    }

    pub fn is_loop(&self) -> bool {
        self.step.for_each.is_some()
    }

    /// The target task of a `type: task` action.
    pub fn child_task(&self) -> Option<&str> {
        match &self.action.kind {
            ActionKind::Task(task) => Some(&task.task),
            _ => None,
        }
    }

    /// The action of a `type: approval` step (WF §6.8).
    pub fn approval(&self) -> Option<&ApprovalAction> {
        match &self.action.kind {
            ActionKind::Approval(approval) => Some(approval),
            _ => None,
        }
    }

    /// The `runner` the API reports: `local`/`docker`/`pod` for worker actions, `none` otherwise.
    pub fn runner_name(&self) -> &'static str {
        match &self.action.kind {
            ActionKind::Script(script) => match script.runner {
                Runner::Local => "local",
                Runner::Docker => "docker",
                Runner::Pod => "pod",
            },
            ActionKind::Docker(_) => "docker",
            ActionKind::Pod(_) => "pod",
            ActionKind::Task(_) | ActionKind::Approval(_) => "none",
        }
    }
}

/// A task resolved against a validated workspace.
#[derive(Debug, Clone)]
pub struct JobPlan {
    pub task_name: String,
    /// The task's input schema, for masking `secret: true` fields.
    pub task_input: Option<InputSchema>,
    /// The whole-job limit (task `timeout`), measured from the job's `started_at`.
    pub timeout: Option<Duration>,
    /// `local`: every worker step on the worker the first claim pins the job to (API §7.9).
    pub mode: TaskMode,
    /// Steps in topological order; among steps whose dependencies are placed, YAML order wins.
    pub steps: Vec<PlannedStep>,
    index: HashMap<String, usize>,
}

impl JobPlan {
    /// Resolves `task` of `def`. The workspace is expected to be validated already.
    pub fn new(def: &WorkspaceDef, task: &str) -> Result<JobPlan, PlanError> {
        let task_def = def
            .tasks
            .get(task)
            .ok_or_else(|| PlanError::UnknownTask(task.to_owned()))?;

        let mut resolved = Vec::with_capacity(task_def.flow.len());
        for (name, step) in &task_def.flow {
            let (action, action_name) = match &step.action {
                ActionRef::Named(action_name) => {
                    let action =
                        def.actions
                            .get(action_name)
                            .ok_or_else(|| PlanError::UnknownAction {
                                step: name.clone(),
                                action: action_name.clone(),
                            })?;
                    (action.clone(), action_name.clone())
                }
                ActionRef::Inline { action, .. } => {
                    ((**action).clone(), format!("_inline:{task}:{name}"))
                }
            };
            for dependency in &step.depends_on {
                if !task_def.flow.contains_key(dependency) || dependency == name {
                    return Err(PlanError::UnknownDependency {
                        step: name.clone(),
                        dependency: dependency.clone(),
                    });
                }
            }
            resolved.push(PlannedStep {
                name: name.clone(),
                timeout: step.timeout.or(action.timeout),
                retry: step.retry.clone().or_else(|| action.retry.clone()),
                depends_on: step.depends_on.clone(),
                transitive_deps: BTreeSet::new(),
                is_sink: !task_def
                    .flow
                    .values()
                    .any(|other| other.depends_on.contains(name)),
                step: step.clone(),
                action,
                action_name,
            });
        }

        let steps = topological(resolved)?;
        let index: HashMap<String, usize> = steps
            .iter()
            .enumerate()
            .map(|(position, step)| (step.name.clone(), position))
            .collect();
        let mut plan = JobPlan {
            task_name: task.to_owned(),
            task_input: task_def.input.clone(),
            timeout: task_def.timeout,
            mode: task_def.mode,
            steps,
            index,
        };
        plan.fill_transitive_deps();
        Ok(plan)
    }

    /// Gives every step without a step or action `timeout` the server's
    /// `default_step_timeout` (WF §13.2); `None` leaves the plan as it is.
    pub fn default_step_timeout(&mut self, default: Option<Duration>) {
        let Some(default) = default else { return };
        // An approval waits for a person, not a process: only its own `timeout` bounds it.
        for step in self
            .steps
            .iter_mut()
            .filter(|step| step.approval().is_none())
        {
            step.timeout.get_or_insert(default);
        }
    }

    /// The position of flow step `name` in [`JobPlan::steps`].
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn step(&self, name: &str) -> Option<&PlannedStep> {
        self.index.get(name).map(|&position| &self.steps[position])
    }

    /// Dependencies are placed before their dependents, so one forward sweep suffices.
    fn fill_transitive_deps(&mut self) {
        for position in 0..self.steps.len() {
            let mut all = BTreeSet::new();
            for dependency in &self.steps[position].depends_on {
                all.insert(dependency.clone());
                if let Some(&dep_position) = self.index.get(dependency) {
                    all.extend(self.steps[dep_position].transitive_deps.iter().cloned());
                }
            }
            self.steps[position].transitive_deps = all;
        }
    }
}

/// Kahn's algorithm that always takes the earliest step (in YAML order) whose dependencies are
/// all placed, so the order is stable and matches what authors wrote wherever the DAG allows.
fn topological(steps: Vec<PlannedStep>) -> Result<Vec<PlannedStep>, PlanError> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut remaining: Vec<Option<PlannedStep>> = steps.into_iter().map(Some).collect();
    let mut ordered = Vec::with_capacity(remaining.len());
    while ordered.len() < remaining.len() {
        let next = remaining.iter().position(|slot| {
            slot.as_ref().is_some_and(|step| {
                step.depends_on
                    .iter()
                    .all(|dependency| placed.contains(dependency))
            })
        });
        let Some(position) = next else {
            let cycle = remaining
                .iter()
                .flatten()
                .map(|step| step.name.clone())
                .collect();
            return Err(PlanError::Cycle(cycle));
        };
        let step = remaining[position]
            .take()
            .expect("position was found among the remaining steps");
        placed.insert(step.name.clone());
        ordered.push(step);
    }
    Ok(ordered)
}
