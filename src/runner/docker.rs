//! The Docker runner (cargo feature `docker`): one attempt of a `type: docker` step, or of a
//! script step with `runner: docker`, as a container through the Docker Engine API (Docker, or
//! podman's compatible service) — WF §6.1, §6.3, §6.5, §6.6, §11.
//!
//! An attempt: the image is made present as `pull_policy` says (pull progress goes to the
//! step's log), a container is created with the attempt's I/O directory mounted at `/stroem`
//! (and, for script steps, the working copy at `/workspace`), started, and its output followed
//! line by line through the same capture, masking and `OUTPUT:` handling as a local process.
//! Timeout and cancellation stop it with `kill_grace` (SIGTERM, then SIGKILL) and every
//! container is removed when its attempt ends. Containers carry labels naming their job, step,
//! attempt and worker, and the attempt directory of the worker process that started them: a
//! worker starting up removes the containers of processes whose directory is gone
//! ([`DockerRunner::remove_leftovers`]), so a worker killed mid-step leaves nothing running.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use futures_util::StreamExt;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::capture::{LineSplitter, RawLine};
use super::confine;
use super::container::{self, IO_DIR, WORKSPACE_DIR, label};
use super::environment::{self, StepPaths};
use super::process::Ended;
use super::sink::Sink;
use super::spec::{Outcome, Program, StepSpec, Stream};
use crate::config::PullPolicy;
use crate::workflow::model::Duration as StepDuration;

/// Where the Docker CLI looks when `DOCKER_HOST` is unset.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// How long connecting to the engine (version negotiation and a ping) may take at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The timeout of ordinary engine requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Requests that last as long as the step (waiting, following the log).
const STREAM_TIMEOUT: Duration = Duration::from_secs(400 * 86_400);
/// How long the log may go on after the container has exited.
const DRAIN: Duration = Duration::from_secs(2);

/// How a Docker runner is set up (API §10.2 `docker`, `runner_image`, `kill_grace_secs`).
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// `unix:///…`, `tcp://…` or `http://…`.
    pub host: String,
    pub pull_policy: PullPolicy,
    /// The image of script steps that name none.
    pub runner_image: String,
    /// The worker's name, for the labels.
    pub worker: String,
    pub kill_grace: Duration,
    /// This worker process's attempt directory and the root holding it (see
    /// [`super::Scratch`]); without them containers are not matched to worker lives.
    pub instance: Option<(PathBuf, PathBuf)>,
}

/// Runs container steps through one Docker Engine API endpoint.
#[derive(Debug, Clone)]
pub struct DockerRunner {
    docker: Docker,
    settings: DockerSettings,
}

/// The host to use: the configured one, else `DOCKER_HOST` from the environment captured at
/// start-up, else the default socket — as the Docker CLI finds its daemon.
pub fn host(configured: Option<&str>, environment: &BTreeMap<String, String>) -> String {
    configured
        .map(str::to_owned)
        .or_else(|| {
            environment
                .get("DOCKER_HOST")
                .filter(|host| !host.is_empty())
                .cloned()
        })
        .unwrap_or_else(|| DEFAULT_HOST.to_owned())
}

impl DockerRunner {
    /// Connects to the engine at `settings.host` and checks it answers.
    pub async fn connect(settings: DockerSettings) -> Result<DockerRunner, String> {
        let host = settings.host.clone();
        let unreachable = |error: &dyn std::fmt::Display| {
            format!("cannot reach the Docker engine at {host}: {error}")
        };
        let docker = Docker::connect_with_host(&host)
            .map_err(|error| unreachable(&error))?
            .with_timeout(CONNECT_TIMEOUT);
        let checked = async {
            let docker = docker.negotiate_version().await?;
            docker.ping().await?;
            Ok::<_, DockerError>(docker)
        };
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, checked)
            .await
            .map_err(|_| unreachable(&"no answer within 10 s"))?
            .map_err(|error| unreachable(&error))?
            .with_timeout(REQUEST_TIMEOUT);
        Ok(DockerRunner { docker, settings })
    }

    pub fn host(&self) -> &str {
        &self.settings.host
    }

    /// Removes the containers that earlier processes of this worker (or of another worker on
    /// the same attempt root) left behind: those whose worker's attempt directory no longer
    /// exists. Call after [`super::Scratch::open`], which removes the directories of dead
    /// processes. Returns how many were removed.
    pub async fn remove_leftovers(&self) -> Result<usize, String> {
        let Some((_, root)) = &self.settings.instance else {
            return Ok(0);
        };
        let filter = format!("{}={}", label::SCRATCH_ROOT, root.display());
        let containers = list_labelled(&self.settings.host, &filter).await?;
        let mut removed = 0;
        for Listed { id, labels } in containers {
            let alive = labels
                .get(label::INSTANCE)
                .is_some_and(|instance| Path::new(instance).exists());
            if !alive {
                self.remove(&id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Runs one attempt: `root` is the canonical working copy, `io` the attempt's I/O
    /// directory holding `input.json` and an empty `output.json`.
    pub(super) async fn run(
        &self,
        spec: &StepSpec,
        root: &Path,
        io: &Path,
        sink: &mut Sink<'_>,
        cancel: &CancellationToken,
    ) -> Ended {
        let planned = match self.plan(spec, root, io) {
            Ok(planned) => planned,
            Err((outcome, message)) => return Ended::failed(outcome, message),
        };
        for note in &planned.notes {
            sink.note(note);
        }
        let image = planned.body.image.clone().unwrap_or_default();
        // The step's timeout counts from the attempt's start, pulling included (WF §13.2).
        let deadline = spec
            .timeout_secs
            .map(|secs| Instant::now() + Duration::from_secs(secs));
        let never = Instant::now() + Duration::from_secs(365 * 86_400);
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return Ended::failed(Outcome::Cancelled, "cancelled".to_owned());
            }
            () = sleep_until(deadline.unwrap_or(never)), if deadline.is_some() => {
                let secs = spec.timeout_secs.unwrap_or_default();
                let message = format!("timed out after {} (pulling image '{image}')", StepDuration(secs));
                return Ended::failed(Outcome::Failed, message);
            }
            present = self.ensure_image(&image, sink) => {
                if let Err(message) = present {
                    return Ended::failed(Outcome::Failed, message);
                }
            }
        }
        let created = self
            .docker
            .create_container(None::<CreateContainerOptions>, planned.body)
            .await;
        let id = match created {
            Ok(created) => created.id,
            Err(error) => {
                return Ended::failed(
                    Outcome::Failed,
                    format!("cannot create the container from image '{image}': {error}"),
                );
            }
        };
        let mut guard = Removal {
            docker: self.docker.clone(),
            id: Some(id.clone()),
        };
        let ended = self.supervise(spec, deadline, &id, io, sink, cancel).await;
        self.remove(&id).await;
        guard.id = None;
        ended
    }

    /// The container's configuration.
    fn plan(&self, spec: &StepSpec, root: &Path, io: &Path) -> Result<Plan, (Outcome, String)> {
        let permanent = |message: String| (Outcome::FailedPermanently, message);
        let (command, workdir, mount_workspace) = match &spec.program {
            Program::Container {
                entrypoint,
                command,
                cmd,
            } => {
                let command = container::prepared_image(
                    entrypoint.as_deref(),
                    command.as_deref(),
                    cmd.as_deref(),
                )
                .map_err(permanent)?;
                (command, spec.workdir.clone(), false)
            }
            Program::Script { .. } => {
                let argv = super::local::program(&spec.program, root, io).map_err(|error| {
                    let outcome = error.outcome();
                    (outcome, error.to_string())
                })?;
                let argv = argv
                    .iter()
                    .map(|arg| in_container(Path::new(arg), root, io))
                    .collect();
                let command = container::script_command(argv).map_err(permanent)?;
                let workdir = match &spec.workdir {
                    Some(rel) => {
                        let host = confine::workdir(root, rel).map_err(|error| {
                            let outcome = match error {
                                confine::ConfineError::Io { .. } => Outcome::Failed,
                                _ => Outcome::FailedPermanently,
                            };
                            (outcome, error.to_string())
                        })?;
                        in_container(host.as_os_str().as_ref(), root, io)
                    }
                    None => WORKSPACE_DIR.to_owned(),
                };
                (command, Some(workdir), true)
            }
        };
        let (nano_cpus, memory) = container::limits(spec.resources.as_ref()).map_err(permanent)?;
        let input_file = format!("{IO_DIR}/input.json");
        let output_file = format!("{IO_DIR}/output.json");
        let paths = StepPaths {
            root: Path::new(WORKSPACE_DIR),
            input_file: Path::new(&input_file),
            output_file: Path::new(&output_file),
        };
        // Containers get no variable of the worker's own environment (WF §11.1 item 1).
        let env = environment::build(&BTreeMap::new(), spec, &paths);
        let mut binds = vec![format!("{}:{IO_DIR}:rw", io.display())];
        if mount_workspace {
            binds.push(format!("{}:{WORKSPACE_DIR}:rw", root.display()));
        }
        let image = spec
            .image
            .clone()
            .unwrap_or_else(|| self.settings.runner_image.clone());
        let (instance, scratch_root) = match &self.settings.instance {
            Some((instance, root)) => (Some(instance.as_path()), Some(root.as_path())),
            None => (None, None),
        };
        let labels = container::labels(spec, &self.settings.worker, instance, scratch_root);
        let body = ContainerCreateBody {
            image: Some(image),
            entrypoint: command.entrypoint,
            cmd: command.cmd,
            env: Some(
                env.vars
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect(),
            ),
            working_dir: workdir,
            labels: Some(labels.into_iter().collect()),
            attach_stdin: Some(false),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(false),
            tty: Some(false),
            host_config: Some(HostConfig {
                binds: Some(binds),
                memory,
                // No swap beyond the limit: the limit is what the step may use.
                memory_swap: memory,
                nano_cpus,
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(Plan {
            body,
            notes: env.notes,
        })
    }

    /// Makes `image` present as the pull policy says, with pull progress in the step's log.
    async fn ensure_image(&self, image: &str, sink: &mut Sink<'_>) -> Result<(), String> {
        let policy = self.settings.pull_policy;
        if policy != PullPolicy::Always {
            match self.docker.inspect_image(image).await {
                Ok(_) => return Ok(()),
                Err(error) if is_not_found(&error) => {
                    if policy == PullPolicy::Never {
                        return Err(format!(
                            "image '{image}' is not present on this worker and docker.pull_policy \
                             is 'never'"
                        ));
                    }
                }
                Err(error) => return Err(format!("cannot inspect image '{image}': {error}")),
            }
        }
        sink.note(&format!("stroem: pulling image {image}"));
        let (repository, tag) = container::pull_reference(image);
        let options = CreateImageOptions {
            from_image: Some(repository),
            tag,
            ..Default::default()
        };
        let mut progress = self
            .docker
            .clone()
            .with_timeout(STREAM_TIMEOUT)
            .create_image(Some(options), None, None);
        let mut shown: HashMap<String, String> = HashMap::new();
        while let Some(event) = progress.next().await {
            let info = event.map_err(|error| format!("cannot pull image '{image}': {error}"))?;
            if let Some(detail) = info.error_detail.and_then(|detail| detail.message) {
                return Err(format!("cannot pull image '{image}': {detail}"));
            }
            let Some(status) = info.status else { continue };
            // One line per layer and status, not one per progress tick.
            let layer = info.id.unwrap_or_default();
            if shown.get(&layer) != Some(&status) {
                let line = if layer.is_empty() {
                    format!("stroem: {status}")
                } else {
                    format!("stroem: {layer}: {status}")
                };
                sink.note(&line);
                shown.insert(layer, status);
            }
        }
        Ok(())
    }

    /// Starts the container, follows its log until it ends (or stops it on timeout or
    /// cancellation) and reads how it ended.
    async fn supervise(
        &self,
        spec: &StepSpec,
        deadline: Option<Instant>,
        id: &str,
        io: &Path,
        sink: &mut Sink<'_>,
        cancel: &CancellationToken,
    ) -> Ended {
        if let Err(error) = self.docker.start_container(id, None).await {
            return Ended::failed(
                Outcome::Failed,
                format!("cannot start the container: {error}"),
            );
        }
        let streaming = self.docker.clone().with_timeout(STREAM_TIMEOUT);
        let mut logs = streaming.logs(
            id,
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        let mut wait = Box::pin(streaming.wait_container(id, None).into_future());
        let mut stdout = LineSplitter::new(Stream::Stdout);
        let mut stderr = LineSplitter::new(Stream::Stderr);
        let never = Instant::now() + Duration::from_secs(365 * 86_400);
        let mut reason: Option<StopReason> = None;
        let mut exited = false;
        let mut logs_open = true;
        let mut drain_until: Option<Instant> = None;
        let mut wait_error: Option<String> = None;
        let mut lines = Vec::new();
        loop {
            if exited {
                if !logs_open {
                    break;
                }
                drain_until.get_or_insert_with(|| Instant::now() + DRAIN);
            }
            tokio::select! {
                chunk = logs.next(), if logs_open => match chunk {
                    Some(Ok(output)) => {
                        let splitter = match output {
                            bollard::container::LogOutput::StdErr { .. } => &mut stderr,
                            _ => &mut stdout,
                        };
                        splitter.feed(output.as_ref(), &mut lines);
                        for line in lines.drain(..) {
                            sink.line(line);
                        }
                    }
                    Some(Err(_)) | None => logs_open = false,
                },
                (result, _) = &mut wait, if !exited => {
                    exited = true;
                    if let Some(Err(error)) = result
                        && !matches!(error, DockerError::DockerContainerWaitError { .. })
                    {
                        wait_error = Some(error.to_string());
                    }
                }
                () = sleep_until(deadline.unwrap_or(never)),
                    if deadline.is_some() && !exited && reason.is_none() =>
                {
                    reason = spec.timeout_secs.map(StopReason::Timeout);
                    self.stop(id).await;
                }
                () = cancel.cancelled(), if !exited && reason.is_none() => {
                    reason = Some(StopReason::Cancelled);
                    self.stop(id).await;
                }
                () = sleep_until(drain_until.unwrap_or(never)), if drain_until.is_some() => break,
            }
        }
        for splitter in [stdout, stderr] {
            sink_rest(splitter, sink);
        }
        let state = match self.docker.inspect_container(id, None).await {
            Ok(inspected) => inspected.state,
            Err(error) => {
                wait_error.get_or_insert_with(|| error.to_string());
                None
            }
        };
        let exit_code = state.as_ref().and_then(|state| state.exit_code);
        let oom = state
            .as_ref()
            .and_then(|state| state.oom_killed)
            .unwrap_or(false);
        let failed = |sink: &Sink<'_>, head: String| {
            Ended::failed(Outcome::Failed, sink.tail.message(&head))
        };
        match (reason, exit_code) {
            (Some(StopReason::Cancelled), _) => {
                Ended::failed(Outcome::Cancelled, "cancelled".to_owned())
            }
            (Some(StopReason::Timeout(secs)), _) => {
                failed(sink, format!("timed out after {}", StepDuration(secs)))
            }
            (None, Some(code)) if oom => failed(
                sink,
                format!(
                    "exit code {code}: killed for running out of memory{}",
                    memory_limit(spec)
                ),
            ),
            // Some engines (podman with runc on cgroup v1) do not report the OOM kill itself:
            // a SIGKILL under a memory limit is most likely one.
            (None, Some(137)) if spec.resources.as_ref().is_some_and(|r| r.memory.is_some()) => {
                failed(
                    sink,
                    format!(
                        "exit code 137: killed (SIGKILL), most likely for running out of \
                         memory{}",
                        memory_limit(spec)
                    ),
                )
            }
            (None, Some(0)) => {
                let output_file = io.join("output.json");
                match std::mem::take(&mut sink.output).finish(&output_file) {
                    Ok(output) => Ended {
                        outcome: Outcome::Succeeded,
                        output,
                        message: None,
                    },
                    Err(error) => Ended::failed(Outcome::Failed, error.to_string()),
                }
            }
            (None, Some(code)) => failed(sink, format!("exit code {code}")),
            (None, None) => failed(
                sink,
                format!(
                    "cannot tell how the container ended: {}",
                    wait_error.unwrap_or_else(|| "no exit code".to_owned())
                ),
            ),
        }
    }

    /// SIGTERM, up to the grace period, then SIGKILL (API §8.4).
    async fn stop(&self, id: &str) {
        let grace = i32::try_from(self.settings.kill_grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptions {
            t: Some(grace),
            signal: None,
        };
        let stopping = self
            .docker
            .clone()
            .with_timeout(self.settings.kill_grace + REQUEST_TIMEOUT);
        if let Err(error) = stopping.stop_container(id, Some(options)).await {
            tracing::warn!(%error, container = id, "cannot stop the container; removing it");
            self.remove(id).await;
        }
    }

    /// Removes a container, stopping it first if it still runs; failures are logged (the next
    /// start of the worker removes what is left).
    async fn remove(&self, id: &str) {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => tracing::warn!(%error, container = id, "cannot remove the container"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum StopReason {
    Timeout(u64),
    Cancelled,
}

/// A container as [`list_labelled`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub labels: HashMap<String, String>,
}

/// Every container (running or not) carrying `label` (`key=value`), read as plain JSON.
///
/// Not through bollard's typed listing: podman reports a container it is stopping in state
/// `stopped`, which bollard's state enum rejects, failing the whole list — and a worker looks
/// for leftovers exactly while other workers' containers may be stopping. One HTTP/1.0
/// request (no chunked encoding; the engine closes the connection) over the engine's socket.
pub async fn list_labelled(host: &str, label: &str) -> Result<Vec<Listed>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let failed = |error: &dyn std::fmt::Display| format!("cannot list containers: {error}");
    let filters = serde_json::json!({ "label": [label] }).to_string();
    let request = format!(
        "GET /containers/json?all=1&filters={} HTTP/1.0\r\nHost: docker\r\n\r\n",
        percent_encode(&filters)
    );
    let mut response = Vec::new();
    let exchange = async {
        if let Some(path) = host.strip_prefix("unix://") {
            let mut stream = tokio::net::UnixStream::connect(path).await?;
            stream.write_all(request.as_bytes()).await?;
            stream.read_to_end(&mut response).await?;
        } else {
            let address = host
                .strip_prefix("tcp://")
                .or_else(|| host.strip_prefix("http://"))
                .ok_or_else(|| std::io::Error::other(format!("unsupported host '{host}'")))?;
            let mut stream = tokio::net::TcpStream::connect(address.trim_end_matches('/')).await?;
            stream.write_all(request.as_bytes()).await?;
            stream.read_to_end(&mut response).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| failed(&"no answer"))?
        .map_err(|error| failed(&error))?;
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| failed(&"malformed answer"))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head.split(' ').nth(1).unwrap_or_default();
    let body = &response[split + 4..];
    if status != "200" {
        return Err(failed(&format!(
            "status {status}: {}",
            String::from_utf8_lossy(body).trim()
        )));
    }
    let listed: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|error| failed(&error))?;
    Ok(listed
        .into_iter()
        .filter_map(|container| {
            let id = container.get("Id")?.as_str()?.to_owned();
            let labels = container
                .get("Labels")
                .and_then(serde_json::Value::as_object)
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            Some(Listed { id, labels })
        })
        .collect())
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A container's configuration and the notes for the step's log.
struct Plan {
    body: ContainerCreateBody,
    notes: Vec<String>,
}

/// Removes the container if the attempt is abandoned (its future dropped) before it could.
struct Removal {
    docker: Docker,
    id: Option<String>,
}

impl Drop for Removal {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let docker = self.docker.clone();
        runtime.spawn(async move {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            let _ = docker.remove_container(&id, Some(options)).await;
        });
    }
}

/// ` (memory limit 64Mi)`, or nothing without a limit.
fn memory_limit(spec: &StepSpec) -> String {
    spec.resources
        .as_ref()
        .and_then(|limits| limits.memory.as_deref())
        .map(|memory| format!(" (memory limit {memory})"))
        .unwrap_or_default()
}

fn sink_rest(splitter: LineSplitter, sink: &mut Sink<'_>) {
    let rest: Option<RawLine> = splitter.finish();
    if let Some(line) = rest {
        sink.line(line);
    }
}

fn is_not_found(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A host path under the working copy or the I/O directory, as the container sees it; any
/// other argument unchanged.
fn in_container(arg: &Path, root: &Path, io: &Path) -> String {
    if let Ok(rel) = arg.strip_prefix(io) {
        return join(IO_DIR, rel);
    }
    if let Ok(rel) = arg.strip_prefix(root) {
        return join(WORKSPACE_DIR, rel);
    }
    arg.to_string_lossy().into_owned()
}

fn join(base: &str, rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        base.to_owned()
    } else {
        format!("{base}/{}", rel.display())
    }
}
