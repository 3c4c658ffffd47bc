//! What a runner is asked to run and what it reports back. These types travel between the
//! orchestrator and workers (in-process now, over HTTP later), so they are plain serde data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One attempt of one worker step, rendered and validated by the orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    pub job_id: uuid::Uuid,
    pub workspace: String,
    /// Task name (`_hook:<action>` for single-step hook jobs).
    pub task: String,
    /// Step name; loop instances `name[i]`.
    pub step: String,
    /// 1-based.
    pub attempt: u32,
    pub action_name: String,
    pub program: Program,
    /// The action's rendered `env` (keys validated: not `STROEM_*`/`INPUT_*`).
    pub env: Vec<(String, String)>,
    /// The step's validated input (becomes `INPUT_*` and `$STROEM_INPUT`).
    pub input: serde_json::Map<String, Value>,
    /// Rendered `workdir`, relative to the working copy root; `None` = the root.
    pub workdir: Option<String>,
    /// Per-attempt limit in seconds.
    pub timeout_secs: Option<u64>,
    /// Values to replace with `••••••` in every line (WF §16.3).
    pub mask: Vec<String>,
    /// Declared output schema, checked after a successful exit (WF §4).
    pub output_schema: Option<crate::workflow::model::OutputSchema>,
    /// Where the step runs (WF §6.1 `runner`; `docker` for `type: docker`, `pod` for
    /// `type: pod`).
    #[serde(default)]
    pub runner: RunnerKind,
    /// The rendered container image; `None` for a container script step means the worker's
    /// `runner_image`. Always `None` for the local runner.
    #[serde(default)]
    pub image: Option<String>,
    /// Container limits (WF §6.5), in the notation the action was written in.
    #[serde(default)]
    pub resources: Option<Limits>,
    /// Pod overrides deep-merged into the generated pod (WF §6.4), as written (not rendered);
    /// only for `runner: pod` and `type: pod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Value>,
}

/// Where a worker step runs; the capability a worker needs for it (API §7.5 rule 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerKind {
    /// A process on the worker host.
    #[default]
    Local,
    /// A container through the Docker Engine API.
    Docker,
    /// A Kubernetes pod.
    Pod,
}

impl RunnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerKind::Local => "local",
            RunnerKind::Docker => "docker",
            RunnerKind::Pod => "pod",
        }
    }
}

/// `resources: {cpu, memory}` (WF §2.5, §6.5): Kubernetes notation, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

/// What to execute (WF §6.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Program {
    Script {
        /// Inline code (rendered) or a `source` path relative to the working copy.
        code: ScriptBody,
        /// Program and leading arguments; `None` = execute a `#!` source file directly or use
        /// the language default (already resolved into `default_interpreter`).
        interpreter: Option<Vec<String>>,
        default_interpreter: Vec<String>,
        args: Vec<String>,
    },
    /// A prepared image (`type: docker` / `type: pod`, WF §6.3): the image's own program, or
    /// the one these fields name.
    Container {
        /// Replaces the image's ENTRYPOINT.
        entrypoint: Option<Vec<String>>,
        /// Replaces the image's CMD.
        command: Option<Vec<String>>,
        /// `/bin/sh -c <cmd>`, or split into arguments for `entrypoint`.
        cmd: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptBody {
    Inline(String),
    Source(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One captured line, already masked and cut to 64 KiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub ts: DateTime<Utc>,
    pub stream: Stream,
    /// Step name; `_server` for server events.
    pub step: String,
    /// `None` for `_server` lines.
    pub attempt: Option<u32>,
    pub line: String,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptResult {
    pub outcome: Outcome,
    /// The output (validated against the schema) when `outcome` is `Succeeded`.
    pub output: Value,
    /// `exit code N` / `killed by signal S` / `timed out after 5m` / runtime error, followed by
    /// the last 20 stderr lines (≤ 4 KiB), WF §11.4. `None` on success.
    pub error_message: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl AttemptResult {
    /// The report with the 1 MiB output limit of WF §11.3 applied, as the server applies it to
    /// every worker's report: the local runner enforces it while reading the output, but a
    /// remote worker is not trusted to. An output over the limit is dropped, and a success
    /// carrying one becomes a (retryable) failure saying why.
    #[must_use]
    pub fn within_output_limit(mut self) -> Self {
        let size = serde_json::to_vec(&self.output).map_or(usize::MAX, |bytes| bytes.len());
        if size <= super::capture::OUTPUT_LIMIT {
            return self;
        }
        self.output = Value::Null;
        if self.outcome == Outcome::Succeeded {
            self.outcome = Outcome::Failed;
            self.error_message = Some(super::output::OutputError::TooLarge(size).to_string());
        }
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// Failed and may be retried (exit code, signal, timeout, bad output, runtime error).
    Failed,
    /// Failed in a way a retry cannot fix (escaping `source`/`workdir`, input rejected).
    FailedPermanently,
    /// Stopped because the job was cancelled; never retried.
    Cancelled,
}
