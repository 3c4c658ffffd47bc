//! The API's views of workspaces, tasks and triggers (API §2.1–§2.3) as plain serde structs,
//! so the server returns them as they are. Lists are sorted as API §3.1 says: workspaces by
//! name, tasks by workspace, folder and name, triggers by name.
//!
//! Secrets never leave through these views: a value written for a `secret: true` field — a
//! default, a step's, hook's or trigger's input — reads `••••••` whatever it is, and every
//! value of the revision's mask set is masked wherever else it appears (WF §16.3). Webhook
//! secrets only show as `has_secret`.

use chrono::{DateTime, SecondsFormat, Utc};
use indexmap::IndexMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{Revision, Source, State, Workspaces, lock, next_fire_times};
use crate::engine::{secret_field_names, show_input};
use crate::mask::{MASK, Masker};
use crate::workflow::diagnostic::Diagnostic;
use crate::workflow::model::{
    Action, ActionRef, CatchUp, ForEach, InputField, Retry, ScheduleConcurrency, Step, Task,
    TaskMode, Trigger, TriggerKind, WebhookMode, When,
};

/// How many fire times `next_runs` lists.
const NEXT_RUNS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceStatus {
    /// The newest source revision is active.
    Ok,
    /// The newest revision failed; the last good one keeps serving.
    Stale,
    /// No revision ever loaded; no tasks are served.
    Error,
}

/// API §2.1.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkspaceView {
    pub name: String,
    pub status: WorkspaceStatus,
    pub revision: Option<String>,
    #[serde(serialize_with = "api_time_opt")]
    pub loaded_at: Option<DateTime<Utc>>,
    pub source: SourceView,
    pub tasks_count: usize,
    pub actions_count: usize,
    pub triggers_count: usize,
    /// Connections are [P3]; always 0.
    pub connections_count: usize,
    pub failed_revision: Option<String>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// `source` of API §2.1: a folder's `path`; a git source's `url` (without userinfo), `ref`
/// and the checked-out `commit` (the active revision, null before one loaded).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub commit: Option<Option<String>>,
}

/// API §2.2, list items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TaskSummary {
    /// The task's key in YAML.
    pub name: String,
    /// Repeats `name` for clients that read `id`.
    pub id: String,
    /// The task's YAML `name`.
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub workspace: String,
    pub folder: Option<String>,
    pub mode: TaskMode,
    pub has_triggers: bool,
}

/// API §2.2, detail.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub summary: TaskSummary,
    /// Field definitions as written, secret defaults masked.
    pub input: IndexMap<String, Value>,
    /// Steps in YAML order, keyed by step name.
    pub flow: IndexMap<String, StepView>,
    pub triggers: Vec<TriggerView>,
    pub timeout_secs: Option<u64>,
    pub concurrency: Option<u32>,
    pub priority: Option<i64>,
}

/// One flow step as written.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = FlowStep)]
pub struct StepView {
    /// The action's name, or the inline action's definition.
    pub action: Value,
    /// `script`, `task`, … (legacy `shell` reports as `script`); null for an unknown name.
    pub action_type: Option<&'static str>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub depends_on: Vec<String>,
    pub input: Value,
    pub continue_on_failure: bool,
    pub when: Option<Value>,
    pub for_each: Option<Value>,
    pub sequential: bool,
    pub timeout_secs: Option<u64>,
    #[schema(value_type = Option<Object>)]
    pub retry: Option<Retry>,
}

/// API §2.3.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TriggerView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub task: String,
    pub enabled: bool,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<ScheduleConcurrency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookView>,
    /// Filled by the server from the scheduler's records; null here.
    #[serde(serialize_with = "api_time_opt")]
    pub last_run_at: Option<DateTime<Utc>>,
    /// The next five fire times of an enabled scheduler trigger, else empty.
    #[serde(serialize_with = "api_times")]
    pub next_runs: Vec<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub path: String,
    pub mode: WebhookMode,
    pub timeout_secs: u64,
    pub has_secret: bool,
}

/// RFC 3339, UTC, milliseconds (API §1.2).
pub fn api_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn api_time_opt<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&api_time(at)),
        None => s.serialize_none(),
    }
}

fn api_times<S: Serializer>(times: &[DateTime<Utc>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(times.iter().map(api_time))
}

impl Workspaces {
    /// Every workspace, by name (`GET /api/workspaces`).
    pub fn list(&self) -> Vec<WorkspaceView> {
        self.entries
            .keys()
            .filter_map(|name| self.view(name))
            .collect()
    }

    /// One workspace (`GET /api/workspaces/{ws}`).
    pub fn view(&self, ws: &str) -> Option<WorkspaceView> {
        let entry = self.entries.get(ws)?;
        Some(workspace_view(ws, &entry.source, &lock(&entry.state)))
    }

    /// The tasks of one workspace by folder and name; empty when it never loaded.
    pub fn tasks(&self, ws: &str) -> Option<Vec<TaskSummary>> {
        self.entries.get(ws)?;
        Some(
            self.get(ws)
                .map(|rev| task_summaries(&rev))
                .unwrap_or_default(),
        )
    }

    /// The tasks of every workspace, by workspace, folder and name (`GET /api/tasks`).
    pub fn all_tasks(&self) -> Vec<TaskSummary> {
        self.entries
            .keys()
            .filter_map(|ws| self.get(ws))
            .flat_map(|rev| task_summaries(&rev))
            .collect()
    }

    /// One task of the active revision.
    pub fn task(&self, ws: &str, task: &str, now: DateTime<Utc>) -> Option<TaskDetail> {
        task_detail(&*self.get(ws)?, task, now)
    }

    /// The triggers of one workspace by name; empty when it never loaded.
    pub fn triggers(&self, ws: &str, now: DateTime<Utc>) -> Option<Vec<TriggerView>> {
        self.entries.get(ws)?;
        Some(
            self.get(ws)
                .map(|rev| trigger_views(&rev, now))
                .unwrap_or_default(),
        )
    }
}

fn workspace_view(name: &str, source: &Source, state: &State) -> WorkspaceView {
    let active = state.active.as_deref();
    let status = match (active, &state.failure) {
        (None, _) => WorkspaceStatus::Error,
        (Some(_), Some(_)) => WorkspaceStatus::Stale,
        (Some(_), None) => WorkspaceStatus::Ok,
    };
    let none = SourceView {
        kind: "example",
        path: None,
        url: None,
        git_ref: None,
        commit: None,
    };
    let source = match source {
        Source::Folder { path, .. } => SourceView {
            kind: "folder",
            path: Some(path.display().to_string()),
            ..none
        },
        Source::Git { remote, .. } => SourceView {
            kind: "git",
            url: Some(remote.display_url()),
            git_ref: Some(remote.git_ref.clone()),
            commit: Some(active.map(|a| a.revision.clone())),
            ..none
        },
        Source::Example => none,
    };
    let count = |f: fn(&Revision) -> usize| active.map_or(0, f);
    WorkspaceView {
        name: name.to_owned(),
        status,
        revision: active.map(|a| a.revision.clone()),
        loaded_at: active.map(|a| a.loaded_at),
        source,
        tasks_count: count(|r| r.def.tasks.len()),
        actions_count: count(|r| r.def.actions.len()),
        triggers_count: count(|r| r.def.triggers.len()),
        connections_count: 0,
        failed_revision: state.failure.as_ref().and_then(|f| f.revision.clone()),
        errors: state
            .failure
            .as_ref()
            .map(|f| f.errors.clone())
            .unwrap_or_default(),
        warnings: state.warnings.clone(),
    }
}

/// The tasks of a revision by folder (none first), then name.
pub fn task_summaries(rev: &Revision) -> Vec<TaskSummary> {
    let mut tasks: Vec<TaskSummary> = rev
        .def
        .tasks
        .iter()
        .map(|(name, task)| summary(rev, name, task))
        .collect();
    tasks.sort_by(|a, b| (&a.folder, &a.name).cmp(&(&b.folder, &b.name)));
    tasks
}

fn summary(rev: &Revision, name: &str, task: &Task) -> TaskSummary {
    TaskSummary {
        name: name.to_owned(),
        id: name.to_owned(),
        display_name: task.name.clone(),
        description: task.description.clone(),
        workspace: rev.workspace.clone(),
        folder: task.folder.clone(),
        mode: task.mode,
        has_triggers: rev.def.triggers.values().any(|t| t.task == name),
    }
}

/// One task's detail, or `None` when the revision has no such task.
pub fn task_detail(rev: &Revision, name: &str, now: DateTime<Utc>) -> Option<TaskDetail> {
    let task = rev.def.tasks.get(name)?;
    let mask = &rev.mask;
    let input = task
        .input
        .iter()
        .flatten()
        .map(|(field, definition)| (field.clone(), field_view(definition, mask)))
        .collect();
    let flow = task
        .flow
        .iter()
        .map(|(step_name, step)| (step_name.clone(), step_view(rev, step, mask)))
        .collect();
    let triggers = trigger_views(rev, now)
        .into_iter()
        .filter(|t| t.task == name)
        .collect();
    Some(TaskDetail {
        summary: summary(rev, name, task),
        input,
        flow,
        triggers,
        timeout_secs: task.timeout.map(|t| t.secs()),
        concurrency: task.concurrency,
        priority: task.priority,
    })
}

/// A field definition as written, its default shown as `••••••` when the field is secret.
fn field_view(definition: &InputField, mask: &Masker) -> Value {
    let mut value = serde_json::to_value(definition).unwrap_or(Value::Null);
    if definition.secret
        && definition.default.is_some()
        && let Value::Object(object) = &mut value
    {
        object.insert("default".to_owned(), Value::String(MASK.to_owned()));
    }
    mask.mask_value(&value)
}

fn step_view(rev: &Revision, step: &Step, mask: &Masker) -> StepView {
    let (action, action_type) = match &step.action {
        ActionRef::Named(name) => (
            Value::String(name.clone()),
            rev.def.actions.get(name).map(Action::type_name),
        ),
        ActionRef::Inline { action, .. } => (inline_action(action, mask), Some(action.type_name())),
    };
    let input = serde_json::to_value(&step.input).unwrap_or(Value::Null);
    let secret_fields = super::action_of(&rev.def, &step.action)
        .map(|action| secret_field_names(action.input.as_ref()))
        .unwrap_or_default();
    StepView {
        action: mask.mask_value(&action),
        action_type,
        name: step.name.clone(),
        description: step.description.clone(),
        depends_on: step.depends_on.clone(),
        input: show_input(&input, &secret_fields, mask),
        continue_on_failure: step.continue_on_failure,
        when: step.when.as_ref().map(|when| match when {
            When::Constant(b) => Value::Bool(*b),
            When::Template(t) => Value::String(t.clone()),
        }),
        for_each: step.for_each.as_ref().map(|for_each| match for_each {
            ForEach::Items(items) => mask.mask_value(&Value::Array(items.clone())),
            ForEach::Template(t) => Value::String(t.clone()),
        }),
        sequential: step.sequential,
        timeout_secs: step.timeout.map(|t| t.secs()),
        retry: step.retry.clone(),
    }
}

/// An inline action as one object, close to how it is written: its kind's fields (`type`,
/// `script` or `source`, `language`, …) beside the common ones, without the fields left unset.
fn inline_action(action: &Action, mask: &Masker) -> Value {
    let Value::Object(mut object) = serde_json::to_value(action).unwrap_or(Value::Null) else {
        return Value::Null;
    };
    if let Some(schema) = &action.input {
        let fields = schema
            .iter()
            .map(|(name, definition)| (name.clone(), field_view(definition, mask)))
            .collect();
        object.insert("input".to_owned(), Value::Object(fields));
    }
    let mut flat = match object.shift_remove("kind") {
        Some(Value::Object(kind)) => kind,
        _ => serde_json::Map::new(),
    };
    // The decoded form of the code back to the key it was written with.
    if let Some(Value::Object(code)) = flat.shift_remove("code") {
        for (key, text) in code {
            let key = if key == "inline" { "script" } else { "source" };
            flat.insert(key.to_owned(), text);
        }
    }
    flat.shift_remove("legacy_shell");
    flat.insert(
        "type".to_owned(),
        Value::String(action.type_name().to_owned()),
    );
    if let Some(timeout) = object.shift_remove("timeout") {
        object.insert("timeout_secs".to_owned(), timeout);
    }
    flat.extend(object);
    flat.retain(|_, value| match value {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => true,
    });
    Value::Object(flat)
}

/// The triggers of a revision, by name.
pub fn trigger_views(rev: &Revision, now: DateTime<Utc>) -> Vec<TriggerView> {
    let mut views: Vec<TriggerView> = rev
        .def
        .triggers
        .iter()
        .map(|(name, trigger)| trigger_view(rev, name, trigger, now))
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

fn trigger_view(rev: &Revision, name: &str, trigger: &Trigger, now: DateTime<Utc>) -> TriggerView {
    let input = serde_json::to_value(&trigger.input).unwrap_or(Value::Null);
    let secret_fields = rev
        .def
        .tasks
        .get(&trigger.task)
        .map(|task| secret_field_names(task.input.as_ref()))
        .unwrap_or_default();
    let mut view = TriggerView {
        name: name.to_owned(),
        kind: "scheduler",
        task: trigger.task.clone(),
        enabled: trigger.enabled,
        input: show_input(&input, &secret_fields, &rev.mask),
        cron: None,
        timezone: None,
        concurrency: None,
        catch_up: None,
        webhook: None,
        last_run_at: None,
        next_runs: Vec::new(),
    };
    match &trigger.kind {
        TriggerKind::Scheduler(schedule) => {
            view.cron = Some(schedule.cron.clone());
            view.timezone = Some(schedule.timezone.clone());
            view.concurrency = Some(schedule.concurrency);
            view.catch_up = Some(schedule.catch_up);
            if trigger.enabled {
                view.next_runs = next_fire_times(schedule, now, NEXT_RUNS);
            }
        }
        TriggerKind::Webhook(hook) => {
            view.kind = "webhook";
            view.webhook = Some(WebhookView {
                path: format!("/hooks/{}", hook.name),
                mode: hook.mode,
                timeout_secs: hook.timeout_secs,
                has_secret: hook.secret.is_some(),
            });
        }
    }
    view
}
