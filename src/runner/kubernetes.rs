//! The Kubernetes runner (cargo feature `kubernetes`): one attempt of a `type: pod` step, or of
//! a script step with `runner: pod`, as one pod in the configured namespace (WF §6.1, §6.4,
//! §6.5, §6.6, §11; API §7.3, §8.4).
//!
//! An attempt: the pod that [`super::pod::build`] describes is created, watched (with its
//! `resourceVersion`, re-watching where a watch ends) until the `step` container runs, its log
//! followed line by line through the same masking and `OUTPUT:` handling as a process, and its
//! exit code and termination message (`$STROEM_OUTPUT`) read from the container's status. An
//! image that cannot be pulled, a container that cannot be created, a failing
//! `workspace-init` and a pod left unschedulable for `unschedulable_timeout` end the attempt
//! with that error at once, not with a timeout. Timeout and cancellation delete the pod with
//! `kill_grace` as its grace period; every pod is deleted when its attempt ends. Pods carry the
//! labels of [`super::container::labels`] plus this worker process's attempt directory, so a
//! worker starting up deletes the pods of its earlier lives ([`KubernetesRunner::remove_leftovers`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::AsyncBufReadExt;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::capture::LineSplitter;
use super::container::label;
use super::pod::{self, PodContext, TarballAccess, annotation};
use super::process::Ended;
use super::sink::Sink;
use super::spec::{Outcome, StepSpec, Stream};
use crate::workflow::manifest::{INIT_CONTAINER, STEP_CONTAINER};
use crate::workflow::model::Duration as StepDuration;

/// The `workspace-init` image when `kubernetes.init_image` is unset: it needs `sh`, `curl` and
/// `tar`.
pub const DEFAULT_INIT_IMAGE: &str = "curlimages/curl:8.8.0";
/// How long a pod may stay unschedulable when `kubernetes.unschedulable_timeout_secs` is unset.
pub const DEFAULT_UNSCHEDULABLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long reaching the API server may take at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the log may go on after the container ended.
const DRAIN: Duration = Duration::from_secs(2);
/// The server-side timeout of one watch request; the runner watches again after it.
const WATCH_SECS: u32 = 290;
/// Waiting reasons that no wait will cure.
const FATAL_WAITING: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// How a Kubernetes runner is set up (API §10.2 `kubernetes`, `runner_image`,
/// `kill_grace_secs`).
#[derive(Debug, Clone)]
pub struct KubernetesSettings {
    pub namespace: String,
    pub init_image: String,
    /// The server's URL as pods reach it.
    pub server_url: String,
    pub runner_image: String,
    /// The worker's name, for the labels.
    pub worker: String,
    pub kill_grace: Duration,
    pub unschedulable_timeout: Duration,
    /// This worker process's attempt directory and the root holding it (see
    /// [`super::Scratch`]); without them pods are not matched to worker lives.
    pub instance: Option<(PathBuf, PathBuf)>,
}

/// Runs pod steps in one namespace of one cluster.
#[derive(Clone)]
pub struct KubernetesRunner {
    pods: Api<Pod>,
    settings: KubernetesSettings,
}

impl std::fmt::Debug for KubernetesRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesRunner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl KubernetesRunner {
    /// Finds the cluster as `kubectl` does — `kubeconfig` (the `KUBECONFIG` of the worker's
    /// environment as captured at start-up), else `~/.kube/config`, else the in-cluster service
    /// account — and checks it answers.
    pub async fn connect(
        settings: KubernetesSettings,
        kubeconfig: Option<&str>,
    ) -> Result<KubernetesRunner, String> {
        let config = match kubeconfig.filter(|path| !path.is_empty() && !path.contains(':')) {
            Some(path) => {
                let file = Kubeconfig::read_from(path)
                    .map_err(|error| format!("cannot read the kubeconfig {path}: {error}"))?;
                Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                    .await
                    .map_err(|error| format!("cannot use the kubeconfig {path}: {error}"))?
            }
            // A list of files, or none: as kube-rs (and kubectl) infer it.
            None => Config::infer().await.map_err(|error| {
                format!("cannot find a Kubernetes cluster (kubeconfig or in-cluster): {error}")
            })?,
        };
        Self::connect_with(config, settings).await
    }

    /// Connects with `config` and checks that the API server answers and lets this worker list
    /// pods in the namespace.
    pub async fn connect_with(
        config: Config,
        settings: KubernetesSettings,
    ) -> Result<KubernetesRunner, String> {
        let url = config.cluster_url.to_string();
        let unreachable = |error: &dyn std::fmt::Display| {
            format!(
                "cannot reach the Kubernetes API server at {url} (namespace '{}'): {error}",
                settings.namespace
            )
        };
        let client = Client::try_from(config).map_err(|error| unreachable(&error))?;
        let pods: Api<Pod> = Api::namespaced(client, &settings.namespace);
        tokio::time::timeout(CONNECT_TIMEOUT, pods.list(&ListParams::default().limit(1)))
            .await
            .map_err(|_| unreachable(&"no answer within 10 s"))?
            .map_err(|error| unreachable(&error))?;
        Ok(KubernetesRunner { pods, settings })
    }

    pub fn namespace(&self) -> &str {
        &self.settings.namespace
    }

    /// Deletes the pods that earlier processes of this worker (or of another worker on the same
    /// attempt root) left behind: those whose worker's attempt directory no longer exists. Call
    /// after [`super::Scratch::open`]. Returns how many were deleted.
    pub async fn remove_leftovers(&self) -> Result<usize, String> {
        let Some((_, root)) = &self.settings.instance else {
            return Ok(0);
        };
        let selector = format!(
            "{}=true,{}={}",
            label::MANAGED,
            label::SCRATCH_ROOT,
            pod::root_label(root)
        );
        let listed = self
            .pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|error| format!("cannot list pods: {error}"))?;
        let mut removed = 0;
        for pod in listed {
            let Some(name) = pod.metadata.name.clone() else {
                continue;
            };
            let annotations = pod.metadata.annotations.unwrap_or_default();
            // The exact directory is in the annotation; the label holds its last component.
            let alive = annotations
                .get(annotation::INSTANCE)
                .is_some_and(|instance| Path::new(instance).exists());
            let same_root = annotations
                .get(annotation::SCRATCH_ROOT)
                .is_none_or(|pod_root| Path::new(pod_root) == root);
            if !alive && same_root {
                self.delete(&name, 0).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Runs one attempt. `io` is a private local directory for reading the output back.
    pub(super) async fn run(
        &self,
        spec: &StepSpec,
        access: Option<&TarballAccess>,
        io: &Path,
        sink: &mut Sink<'_>,
        cancel: &CancellationToken,
    ) -> Ended {
        let settings = &self.settings;
        let cx = PodContext {
            namespace: &settings.namespace,
            init_image: &settings.init_image,
            server_url: &settings.server_url,
            runner_image: &settings.runner_image,
            worker: &settings.worker,
            kill_grace_secs: settings.kill_grace.as_secs(),
            instance: settings
                .instance
                .as_ref()
                .map(|(instance, root)| (instance.as_path(), root.as_path())),
            access,
        };
        let plan = match pod::build(spec, &cx) {
            Ok(plan) => plan,
            Err((outcome, message)) => return Ended::failed(outcome, message),
        };
        for note in &plan.notes {
            sink.note(note);
        }
        let pod: Pod = match serde_json::from_value(plan.pod) {
            Ok(pod) => pod,
            Err(error) => {
                return Ended::failed(
                    Outcome::FailedPermanently,
                    format!("the pod with its manifest merged is not a valid pod: {error}"),
                );
            }
        };
        let deadline = spec
            .timeout_secs
            .map(|secs| Instant::now() + Duration::from_secs(secs));
        let params = PostParams::default();
        let created = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return Ended::failed(Outcome::Cancelled, "cancelled".to_owned());
            }
            created = self.pods.create(&params, &pod) => created,
        };
        let created = match created {
            Ok(created) => created,
            Err(error) => {
                return Ended::failed(
                    Outcome::Failed,
                    format!(
                        "cannot create pod '{}' in namespace '{}': {error}",
                        plan.name, settings.namespace
                    ),
                );
            }
        };
        sink.note(&format!(
            "stroem: pod {} created in namespace {}",
            plan.name, settings.namespace
        ));
        let mut guard = Deletion {
            pods: self.pods.clone(),
            name: Some(plan.name.clone()),
        };
        let version = created
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let (ended, deleted) = self
            .supervise(spec, &plan.name, version, deadline, io, sink, cancel)
            .await;
        if !deleted {
            self.delete(&plan.name, 0).await;
        }
        guard.name = None;
        ended
    }

    /// Follows the pod until its step container ends, or stops it on timeout, cancellation or
    /// a failure no wait cures. Returns how the attempt ended and whether the pod was deleted.
    #[allow(clippy::too_many_arguments)]
    async fn supervise(
        &self,
        spec: &StepSpec,
        name: &str,
        version: String,
        deadline: Option<Instant>,
        io: &Path,
        sink: &mut Sink<'_>,
        cancel: &CancellationToken,
    ) -> (Ended, bool) {
        let never = Instant::now() + Duration::from_secs(365 * 86_400);
        let mut watch = PodWatch::new(self.pods.clone(), name, version);
        let mut logs: Option<LogReader> = None;
        let mut logs_open = false;
        let mut splitter = LineSplitter::new(Stream::Stdout);
        let mut lines = Vec::new();
        let mut unschedulable_since: Option<(Instant, String)> = None;
        let mut ended: Option<Terminated> = None;
        let mut drain_until: Option<Instant> = None;
        let mut last_reason: Option<String> = None;
        loop {
            if ended.is_some() {
                if !logs_open {
                    break;
                }
                drain_until.get_or_insert_with(|| Instant::now() + DRAIN);
            }
            let unschedulable_deadline = unschedulable_since
                .as_ref()
                .map(|(since, _)| *since + self.settings.unschedulable_timeout);
            tokio::select! {
                biased;
                () = cancel.cancelled(), if ended.is_none() => {
                    self.delete(name, self.grace()).await;
                    return (Ended::failed(Outcome::Cancelled, "cancelled".to_owned()), true);
                }
                () = sleep_until(deadline.unwrap_or(never)), if deadline.is_some() && ended.is_none() => {
                    self.delete(name, self.grace()).await;
                    let secs = spec.timeout_secs.unwrap_or_default();
                    let mut head = format!("timed out after {}", StepDuration(secs));
                    if let Some(reason) = &last_reason {
                        head.push_str(&format!(" ({reason})"));
                    }
                    return (Ended::failed(Outcome::Failed, tail(sink, &head)), true);
                }
                () = sleep_until(unschedulable_deadline.unwrap_or(never)),
                    if unschedulable_deadline.is_some() && ended.is_none() =>
                {
                    let message = unschedulable_since.map(|(_, message)| message).unwrap_or_default();
                    self.delete(name, 0).await;
                    return (
                        Ended::failed(Outcome::Failed, format!("the pod cannot be scheduled: {message}")),
                        true,
                    );
                }
                chunk = read_chunk(&mut logs), if logs_open => match chunk {
                    Some(bytes) => {
                        splitter.feed(&bytes, &mut lines);
                        for line in lines.drain(..) {
                            deliver(sink, line);
                        }
                    }
                    None => logs_open = false,
                },
                event = watch.next(), if ended.is_none() => {
                    let status = match event {
                        Ok(Some(status)) => status,
                        Ok(None) => {
                            return (
                                Ended::failed(Outcome::Failed, format!("pod '{name}' was deleted while the step ran")),
                                true,
                            );
                        }
                        Err(error) => {
                            self.delete(name, self.grace()).await;
                            return (
                                Ended::failed(Outcome::Failed, format!("lost track of pod '{name}': {error}")),
                                true,
                            );
                        }
                    };
                    match assess(&status) {
                        Observed::Pending(reason) => {
                            if let Some(reason) = &reason
                                && last_reason.as_ref() != Some(reason)
                            {
                                sink.note(&format!("stroem: pod pending: {reason}"));
                            }
                            last_reason = reason;
                        }
                        Observed::Unschedulable(message) => {
                            if unschedulable_since.is_none() {
                                sink.note(&format!("stroem: the pod cannot be scheduled yet: {message}"));
                            }
                            let since = unschedulable_since.map_or_else(Instant::now, |(since, _)| since);
                            last_reason = Some(format!("not scheduled: {message}"));
                            unschedulable_since = Some((since, message));
                        }
                        Observed::Fatal(message) => {
                            self.delete(name, 0).await;
                            return (Ended::failed(Outcome::Failed, message), true);
                        }
                        Observed::InitFailed(head) => {
                            let init_log = self.init_log(name).await;
                            self.delete(name, 0).await;
                            let message = if init_log.is_empty() {
                                head
                            } else {
                                format!("{head}\n{}", sink.mask(&init_log))
                            };
                            return (Ended::failed(Outcome::Failed, message), true);
                        }
                        Observed::Running => {
                            unschedulable_since = None;
                            last_reason = None;
                            if logs.is_none() {
                                logs = self.open_log(name).await;
                                logs_open = logs.is_some();
                            }
                        }
                        Observed::Terminated(terminated) => {
                            if logs.is_none() {
                                logs = self.open_log(name).await;
                                logs_open = logs.is_some();
                            }
                            ended = Some(terminated);
                        }
                    }
                }
                () = sleep_until(drain_until.unwrap_or(never)), if drain_until.is_some() => break,
            }
        }
        if let Some(rest) = splitter.finish() {
            deliver(sink, rest);
        }
        let Some(terminated) = ended else {
            return (
                Ended::failed(Outcome::Failed, "the pod ended without a status".to_owned()),
                false,
            );
        };
        (finish(spec, terminated, io, sink), false)
    }

    fn grace(&self) -> u32 {
        u32::try_from(self.settings.kill_grace.as_secs()).unwrap_or(u32::MAX)
    }

    /// The step container's log, followed; `None` when it cannot be opened (the lines are
    /// then missing, the result is still read from the status).
    async fn open_log(&self, name: &str) -> Option<LogReader> {
        let params = LogParams {
            container: Some(STEP_CONTAINER.to_owned()),
            follow: true,
            ..Default::default()
        };
        match self.pods.log_stream(name, &params).await {
            Ok(stream) => Some(Box::pin(stream)),
            Err(error) => {
                tracing::warn!(%error, pod = name, "cannot follow the pod's log");
                None
            }
        }
    }

    /// The last lines of the `workspace-init` container's log, for its error message.
    async fn init_log(&self, name: &str) -> String {
        let params = LogParams {
            container: Some(INIT_CONTAINER.to_owned()),
            tail_lines: Some(20),
            limit_bytes: Some(4096),
            ..Default::default()
        };
        self.pods
            .logs(name, &params)
            .await
            .unwrap_or_default()
            .trim_end()
            .to_owned()
    }

    /// Deletes a pod with `grace` seconds for its containers to stop; failures are logged (the
    /// next start of the worker deletes what is left).
    async fn delete(&self, name: &str, grace: u32) {
        let params = DeleteParams {
            grace_period_seconds: Some(grace),
            ..Default::default()
        };
        match self.pods.delete(name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => tracing::warn!(%error, pod = name, "cannot delete the pod"),
        }
    }
}

/// The followed log of the step container.
type LogReader = std::pin::Pin<Box<dyn futures_util::AsyncBufRead + Send>>;

/// Deletes the pod if the attempt is abandoned (its future dropped) before it could.
struct Deletion {
    pods: Api<Pod>,
    name: Option<String>,
}

impl Drop for Deletion {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pods = self.pods.clone();
        runtime.spawn(async move {
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            };
            let _ = pods.delete(&name, &params).await;
        });
    }
}

/// One line of the pod's log: pods cannot separate the streams (WF §11.2), so every line is
/// `stdout`, and the last ones also end a failure's message.
fn deliver(sink: &mut Sink<'_>, line: super::capture::RawLine) {
    let text = sink.mask(&line.log_text());
    sink.line(line);
    sink.tail.push(text);
}

fn tail(sink: &Sink<'_>, head: &str) -> String {
    sink.tail.message(head)
}

/// Reads the next chunk of the log; `None` at its end or on an error.
async fn read_chunk(logs: &mut Option<LogReader>) -> Option<Vec<u8>> {
    let reader = logs.as_mut()?;
    let chunk = match reader.fill_buf().await {
        Ok([]) | Err(_) => return None,
        Ok(bytes) => bytes.to_vec(),
    };
    reader.as_mut().consume(chunk.len());
    Some(chunk)
}

/// How the step container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: Option<String>,
    /// The termination message: what the step wrote to `$STROEM_OUTPUT`.
    pub message: Option<String>,
}

/// What a pod's status says about the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Not running yet; the reason when there is one worth showing.
    Pending(Option<String>),
    /// The scheduler found no node: its message.
    Unschedulable(String),
    /// The step container runs.
    Running,
    Terminated(Terminated),
    /// `workspace-init` failed: the error's head.
    InitFailed(String),
    /// An error no wait cures (image pull, container creation, eviction).
    Fatal(String),
}

/// Reads a pod's status.
pub fn assess(status: &PodStatus) -> Observed {
    let statuses = |list: &Option<Vec<ContainerStatus>>| list.clone().unwrap_or_default();
    let init = statuses(&status.init_container_statuses);
    let main = statuses(&status.container_statuses);
    for container in init.iter().chain(&main) {
        let waiting = container
            .state
            .as_ref()
            .and_then(|state| state.waiting.as_ref());
        if let Some(waiting) = waiting
            && let Some(reason) = waiting.reason.as_deref()
            && FATAL_WAITING.contains(&reason)
        {
            let detail = waiting.message.as_deref().unwrap_or("");
            let head = if reason.contains("Image") {
                format!(
                    "cannot pull image '{}' for container '{}': {reason}",
                    container.image, container.name
                )
            } else {
                format!("cannot create container '{}': {reason}", container.name)
            };
            return Observed::Fatal(if detail.is_empty() {
                head
            } else {
                format!("{head}: {detail}")
            });
        }
    }
    for container in &init {
        let terminated = container
            .state
            .as_ref()
            .and_then(|state| state.terminated.as_ref());
        if let Some(terminated) = terminated
            && terminated.exit_code != 0
        {
            return Observed::InitFailed(format!(
                "cannot prepare the pod: init container '{}' exited with code {}",
                container.name, terminated.exit_code
            ));
        }
    }
    if let Some(step) = main.iter().find(|c| c.name == STEP_CONTAINER)
        && let Some(state) = &step.state
    {
        if let Some(terminated) = &state.terminated {
            return Observed::Terminated(Terminated {
                exit_code: terminated.exit_code,
                reason: terminated.reason.clone(),
                message: terminated.message.clone(),
            });
        }
        if state.running.is_some() {
            return Observed::Running;
        }
    }
    if status.phase.as_deref() == Some("Failed") {
        let reason = status.reason.as_deref().unwrap_or("Failed");
        let message = status.message.as_deref().unwrap_or("no message");
        return Observed::Fatal(format!("the pod failed: {reason}: {message}"));
    }
    let unschedulable = status.conditions.iter().flatten().find(|condition| {
        condition.type_ == "PodScheduled"
            && condition.status == "False"
            && condition.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(condition) = unschedulable {
        return Observed::Unschedulable(
            condition
                .message
                .clone()
                .unwrap_or_else(|| "no node fits the pod".to_owned()),
        );
    }
    let waiting = init
        .iter()
        .chain(&main)
        .filter_map(|container| {
            let waiting = container.state.as_ref()?.waiting.as_ref()?;
            Some(format!(
                "{}: {}",
                container.name,
                waiting.reason.as_deref()?
            ))
        })
        .next();
    Observed::Pending(waiting)
}

/// The attempt's result from the step container's end.
fn finish(spec: &StepSpec, terminated: Terminated, io: &Path, sink: &mut Sink<'_>) -> Ended {
    let memory = spec
        .resources
        .as_ref()
        .and_then(|limits| limits.memory.as_deref())
        .map(|memory| format!(" (memory limit {memory})"))
        .unwrap_or_default();
    match terminated.exit_code {
        0 => {
            let output_file = io.join("output.json");
            let message = terminated.message.unwrap_or_default();
            if let Err(error) = crate::private::write(&output_file, message.as_bytes()) {
                return Ended::failed(
                    Outcome::Failed,
                    format!("cannot keep the pod's output: {error}"),
                );
            }
            match std::mem::take(&mut sink.output).finish(&output_file) {
                Ok(output) => Ended {
                    outcome: Outcome::Succeeded,
                    output,
                    message: None,
                },
                // Kubernetes keeps at most 4 KiB of a termination message.
                Err(error) if message.len() >= 4096 => Ended::failed(
                    Outcome::Failed,
                    format!(
                        "{error} (a pod's $STROEM_OUTPUT is cut at 4 KiB by Kubernetes; print \
                         larger outputs as an OUTPUT: line)"
                    ),
                ),
                Err(error) => Ended::failed(Outcome::Failed, error.to_string()),
            }
        }
        code if terminated.reason.as_deref() == Some("OOMKilled") => Ended::failed(
            Outcome::Failed,
            tail(
                sink,
                &format!("exit code {code}: killed for running out of memory{memory}"),
            ),
        ),
        code => Ended::failed(Outcome::Failed, tail(sink, &format!("exit code {code}"))),
    }
}

/// The pod's status as a watch reports it, watching again from the last `resourceVersion`
/// where a watch ends, and reading the pod afresh when that version is too old (410).
struct PodWatch {
    pods: Api<Pod>,
    name: String,
    version: String,
    stream: Option<futures_util::stream::BoxStream<'static, kube::Result<WatchEvent<Pod>>>>,
    /// A status read with `get`, to hand out before watching.
    pending: Option<PodStatus>,
}

impl PodWatch {
    fn new(pods: Api<Pod>, name: &str, version: String) -> Self {
        PodWatch {
            pods,
            name: name.to_owned(),
            version,
            stream: None,
            pending: None,
        }
    }

    /// The next status; `Ok(None)` when the pod is gone.
    async fn next(&mut self) -> Result<Option<PodStatus>, String> {
        let mut failures = 0u32;
        loop {
            if let Some(status) = self.pending.take() {
                return Ok(Some(status));
            }
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => {
                    let params = WatchParams::default()
                        .fields(&format!("metadata.name={}", self.name))
                        .timeout(WATCH_SECS);
                    match self.pods.watch(&params, &self.version).await {
                        Ok(stream) => self.stream.insert(stream.boxed()),
                        Err(error) => {
                            failures += 1;
                            if failures > 5 {
                                return Err(error.to_string());
                            }
                            tokio::time::sleep(Duration::from_millis(200 * u64::from(failures)))
                                .await;
                            continue;
                        }
                    }
                }
            };
            match stream.try_next().await {
                Ok(Some(WatchEvent::Added(pod) | WatchEvent::Modified(pod))) => {
                    if let Some(version) = &pod.metadata.resource_version {
                        self.version.clone_from(version);
                    }
                    if let Some(status) = pod.status {
                        return Ok(Some(status));
                    }
                }
                Ok(Some(WatchEvent::Deleted(_))) => return Ok(None),
                Ok(Some(WatchEvent::Bookmark(bookmark))) => {
                    self.version = bookmark.metadata.resource_version;
                }
                Ok(Some(WatchEvent::Error(status))) if status.code == 410 => {
                    self.stream = None;
                    if !self.refresh().await? {
                        return Ok(None);
                    }
                }
                Ok(Some(WatchEvent::Error(status))) => {
                    self.stream = None;
                    failures += 1;
                    if failures > 5 {
                        return Err(status.message.clone());
                    }
                }
                Ok(None) => self.stream = None,
                Err(error) => {
                    self.stream = None;
                    failures += 1;
                    if failures > 5 {
                        return Err(error.to_string());
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
                }
            }
        }
    }

    /// Reads the pod again after its version expired; `false` when it is gone.
    async fn refresh(&mut self) -> Result<bool, String> {
        match self.pods.get_opt(&self.name).await {
            Ok(Some(pod)) => {
                self.version = pod.metadata.resource_version.unwrap_or_default();
                self.pending = pod.status;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(error) => Err(error.to_string()),
        }
    }
}
