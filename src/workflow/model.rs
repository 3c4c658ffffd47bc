//! The typed workspace definition: what the YAML means once it has been decoded.
//!
//! These types are plain data. They carry no source positions; the decoder records where every
//! field came from in a [`SourceMap`](super::source::SourceMap) keyed by field path
//! (`tasks.deploy.flow.build.depends_on[0]`), so later checks can point at the YAML without the
//! model having to drag spans around. Phase-gated constructs (docker, pod, approval, `mode:
//! local`, …) are still modelled so the decoder can check their fields; validation rejects them
//! with `not supported in this version` until they are built.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Ordered map keyed by name, in the order the YAML wrote them.
pub type Map<V> = IndexMap<String, V>;

/// The merged definition of one workspace: every workflow file decoded and merged (WF §1.3).
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkspaceDef {
    pub actions: Map<Action>,
    pub tasks: Map<Task>,
    pub triggers: Map<Trigger>,
    pub secrets: Map<SecretValue>,
    /// Workspace-level hooks, concatenated in file order.
    pub hooks: Hooks,
}

/// A secret as written: a template string or a nested map of them (WF §16.1).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SecretValue {
    Template(String),
    Map(Map<SecretValue>),
}

/// Hook lists of one task or of the workspace (WF §14).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hooks {
    pub on_success: Vec<Hook>,
    pub on_error: Vec<Hook>,
    pub on_cancel: Vec<Hook>,
    /// [P2]; decoded so validation can reject it by name.
    pub on_suspended: Vec<Hook>,
}

impl Hooks {
    pub fn for_event(&self, event: HookEvent) -> &[Hook] {
        match event {
            HookEvent::Success => &self.on_success,
            HookEvent::Error => &self.on_error,
            HookEvent::Cancel => &self.on_cancel,
            HookEvent::Suspended => &self.on_suspended,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.on_success.is_empty()
            && self.on_error.is_empty()
            && self.on_cancel.is_empty()
            && self.on_suspended.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    Success,
    Error,
    Cancel,
    Suspended,
}

impl HookEvent {
    /// The YAML key and `source_id` suffix (`on_error`).
    pub fn key(self) -> &'static str {
        match self {
            HookEvent::Success => "on_success",
            HookEvent::Error => "on_error",
            HookEvent::Cancel => "on_cancel",
            HookEvent::Suspended => "on_suspended",
        }
    }

    /// The value of `hook.event` (`error`).
    pub fn name(self) -> &'static str {
        match self {
            HookEvent::Success => "success",
            HookEvent::Error => "error",
            HookEvent::Cancel => "cancel",
            HookEvent::Suspended => "suspended",
        }
    }
}

/// One hook entry: an action (referenced or inline) and its input templates (WF §14.1).
#[derive(Debug, Clone, Serialize)]
pub struct Hook {
    pub action: ActionRef,
    /// Input values; string leaves at any depth are templates.
    pub input: Map<Value>,
    pub timeout: Option<Duration>,
    pub retry: Option<Retry>,
}

/// How a step or hook names its action (WF §7).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ActionRef {
    /// `action: greet`.
    Named(String),
    /// `action: { type: …, … }` (full form) or action fields on the step itself (short form).
    Inline {
        action: Box<Action>,
        short_form: bool,
    },
}

/// A reusable unit of execution (WF §5, §6).
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub name: Option<String>,
    pub description: Option<String>,
    pub kind: ActionKind,
    pub input: Option<InputSchema>,
    pub output: Option<OutputSchema>,
    /// Extra environment variables; values are templates (scalars converted to strings).
    pub env: Map<String>,
    pub tags: Vec<String>,
    pub timeout: Option<Duration>,
    pub retry: Option<Retry>,
    pub resources: Option<Resources>,
    /// Template; relative to the working copy for scripts, absolute for containers.
    pub workdir: Option<String>,
}

impl Action {
    /// The `action_type` reported by the API: legacy `shell` reports as `script`.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            ActionKind::Script(_) => "script",
            ActionKind::Docker(_) => "docker",
            ActionKind::Pod(_) => "pod",
            ActionKind::Task(_) => "task",
            ActionKind::Approval(_) => "approval",
        }
    }

    /// Whether a worker runs this action (as opposed to the server dispatching it).
    pub fn runs_on_worker(&self) -> bool {
        matches!(
            self.kind,
            ActionKind::Script(_) | ActionKind::Docker(_) | ActionKind::Pod(_)
        )
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActionKind {
    /// `type: script`, and legacy `type: shell` (`legacy_shell` set).
    Script(ScriptAction),
    /// [P2]
    Docker(ContainerAction),
    /// [P3]
    Pod(ContainerAction),
    Task(TaskAction),
    /// [P2]
    Approval(ApprovalAction),
}

#[derive(Debug, Clone, Serialize)]
pub struct ScriptAction {
    /// True when written as `type: shell` (`cmd` / `script: <path>`).
    pub legacy_shell: bool,
    pub code: ScriptCode,
    pub language: Language,
    /// Program and leading arguments; `None` means the language's default.
    pub interpreter: Option<Vec<String>>,
    /// Templates passed as positional arguments.
    pub args: Vec<String>,
    pub runner: Runner,
    pub image: Option<String>,
    /// Pod overrides, only with `runner: pod` [P3].
    pub manifest: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptCode {
    /// Inline code (template).
    Inline(String),
    /// Path of a file relative to the workspace root (template).
    Source(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Shell,
    Python,
    /// [P2]
    Javascript,
    /// [P3]
    Typescript,
    /// [P3]
    Go,
}

impl Language {
    /// The program that runs code of this language when no `interpreter` is set (WF §6.1).
    pub fn default_interpreter(self) -> &'static [&'static str] {
        match self {
            Language::Shell => &["sh"],
            Language::Python => &["python3"],
            Language::Javascript => &["node"],
            Language::Typescript => &["bun"],
            Language::Go => &["go", "run"],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    Local,
    /// [P2]
    Docker,
    /// [P3]
    Pod,
}

/// Fields of `type: docker` and `type: pod` actions (WF §6.3, §6.4).
#[derive(Debug, Clone, Serialize)]
pub struct ContainerAction {
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub cmd: Option<String>,
    pub manifest: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskAction {
    /// Name of the target task in the same workspace.
    pub task: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalAction {
    pub message: String,
}

/// `resources: {cpu, memory}` as written (validated notation).
#[derive(Debug, Clone, Serialize)]
pub struct Resources {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

/// An input schema: field name → definition, in YAML order (WF §3).
pub type InputSchema = Map<InputField>;

/// An output schema (WF §4): the same definitions, restricted keys.
pub type OutputSchema = Map<InputField>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputField {
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub name: Option<String>,
    pub description: Option<String>,
    pub required: bool,
    pub default: Option<Value>,
    pub options: Option<Vec<Value>>,
    pub allow_custom: bool,
    pub multiple: bool,
    pub secret: bool,
    pub order: Option<i64>,
}

impl InputField {
    /// A field of `field_type` with every other key at its default (WF §3).
    pub fn of_type(field_type: FieldType) -> Self {
        InputField {
            field_type,
            name: None,
            description: None,
            required: false,
            default: None,
            options: None,
            allow_custom: false,
            multiple: false,
            secret: false,
            order: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Text,
    Integer,
    Number,
    Boolean,
    Date,
    Datetime,
    Array,
    Object,
    /// A connection type name [P3].
    #[serde(untagged)]
    Connection(String),
}

impl FieldType {
    pub fn as_str(&self) -> &str {
        match self {
            FieldType::String => "string",
            FieldType::Text => "text",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Array => "array",
            FieldType::Object => "object",
            FieldType::Connection(name) => name,
        }
    }
}

/// A duration in whole seconds (WF §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Duration(pub u64);

impl Duration {
    pub fn secs(self) -> u64 {
        self.0
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
}

impl std::fmt::Display for Duration {
    /// Renders in the unit form users write: `90` → `1m30s`, `3600` → `1h`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

/// A retry block (WF §13.1), defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retry {
    /// Total executions including the first, 1–10.
    pub max_attempts: u32,
    pub delay: Duration,
    pub backoff: Backoff,
    pub jitter: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 3,
            delay: Duration(30),
            backoff: Backoff::Fixed,
            jitter: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Fixed,
    Exponential,
}

/// A named DAG of steps (WF §8).
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Explicit or inferred from the file's directory (WF §1.5).
    pub folder: Option<String>,
    pub mode: TaskMode,
    pub input: Option<InputSchema>,
    /// Steps in YAML order.
    pub flow: Map<Step>,
    pub timeout: Option<Duration>,
    /// [P2]
    pub retry: Option<Retry>,
    /// [P2]
    pub concurrency: Option<u32>,
    /// [P2]
    pub priority: Option<i64>,
    pub hooks: Hooks,
    /// Relative path of the file that defined the task.
    pub file: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskMode {
    #[default]
    Distributed,
    /// [P2] Every worker step on one worker, in one working directory (API §7.9).
    Local,
}

impl TaskMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskMode::Distributed => "distributed",
            TaskMode::Local => "local",
        }
    }

    /// The stored name back; `None` for anything else.
    pub fn parse(text: &str) -> Option<TaskMode> {
        match text {
            "distributed" => Some(TaskMode::Distributed),
            "local" => Some(TaskMode::Local),
            _ => None,
        }
    }
}

/// One node of a flow (WF §9).
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub action: ActionRef,
    pub name: Option<String>,
    pub description: Option<String>,
    pub depends_on: Vec<String>,
    /// Values; string leaves at any depth are templates.
    pub input: Map<Value>,
    pub continue_on_failure: bool,
    pub when: Option<When>,
    pub for_each: Option<ForEach>,
    pub sequential: bool,
    pub timeout: Option<Duration>,
    pub retry: Option<Retry>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum When {
    Constant(bool),
    Template(String),
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ForEach {
    Items(Vec<Value>),
    Template(String),
}

/// A rule that creates jobs (WF §15).
#[derive(Debug, Clone, Serialize)]
pub struct Trigger {
    pub task: String,
    /// Values; string leaves are templates with the `trigger` and `secret` context.
    pub input: Map<Value>,
    pub enabled: bool,
    pub kind: TriggerKind,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TriggerKind {
    Scheduler(Schedule),
    Webhook(Webhook),
}

#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub cron: String,
    /// IANA name; `UTC` when not written.
    pub timezone: String,
    pub concurrency: ScheduleConcurrency,
    pub catch_up: CatchUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleConcurrency {
    Allow,
    Skip,
    CancelPrevious,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    None,
    Latest,
}

#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    /// URL segment of `/hooks/<name>`; the trigger's key when not written.
    pub name: String,
    /// Template with the `secret` context; `None` means an open hook.
    pub secret: Option<String>,
    pub mode: WebhookMode,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookMode {
    Async,
    /// [P2]
    Sync,
}
