//! An in-process fake of the Kubernetes API server, for the Kubernetes runner's tests: no API
//! server can be installed on the test machines. It serves what the runner uses of the core
//! v1 pods API — create, get, list (label and field selectors), watch (newline-delimited
//! events from a `resourceVersion`, as a real server sends them), delete (recording the grace
//! period) and the container log (followed) — and plays the kubelet: each created pod goes
//! through the phases the test's [`Behaviour`] describes.
//!
//! What it does not model: admission and validation of the pod (a real server refuses invalid
//! specs), scheduling, images, the termination-message file (the test names the message),
//! authentication, and graceful termination (a deleted pod is gone at once).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;

/// What the fake kubelet does with a created pod.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// `workspace-init` succeeds, `step` runs and prints `lines`, then ends with `exit` (or runs
    /// until the pod is deleted when `None`) and `message` as its termination message.
    Run {
        lines: Vec<String>,
        exit: Option<i32>,
        message: Option<String>,
        reason: Option<String>,
    },
    /// The step image cannot be pulled: `ErrImagePull`, then `ImagePullBackOff`.
    PullError,
    /// No node fits: the `PodScheduled` condition stays `False`/`Unschedulable`.
    Unschedulable,
    /// `workspace-init` exits with `code` after printing `log`.
    InitFails { code: i32, log: String },
    /// `workspace-init` downloads the tarball its environment names, with its token, as the
    /// real one does with curl: a refusal fails it like curl's `-f`; otherwise `then` follows.
    Fetch(Box<Behaviour>),
}

impl Behaviour {
    pub fn exits(code: i32, lines: &[&str]) -> Self {
        Behaviour::Run {
            lines: lines.iter().map(|line| (*line).to_owned()).collect(),
            exit: Some(code),
            message: None,
            reason: None,
        }
    }

    pub fn runs_forever(lines: &[&str]) -> Self {
        Behaviour::Run {
            lines: lines.iter().map(|line| (*line).to_owned()).collect(),
            exit: None,
            message: None,
            reason: None,
        }
    }
}

type Decide = dyn Fn(&Value) -> Behaviour + Send + Sync;

/// A pod deletion as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub name: String,
    pub grace_period_seconds: Option<i64>,
}

#[derive(Default)]
struct Logs {
    lines: Vec<String>,
    closed: bool,
}

struct Inner {
    version: u64,
    /// By (namespace, name).
    pods: BTreeMap<(String, String), Value>,
    /// Every change: (resourceVersion, type, object).
    events: Vec<(u64, &'static str, Value)>,
    logs: HashMap<String, Logs>,
    init_logs: HashMap<String, String>,
    created: Vec<Value>,
    deletions: Vec<Deletion>,
    /// The status of each download a [`Behaviour::Fetch`] made.
    fetches: Vec<u16>,
    decide: Arc<Decide>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Bumped on every change, waking watches and followed logs.
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Applies `change` to the pod's status and records a MODIFIED event; `false` once the pod
    /// is gone.
    fn update(&self, ns: &str, name: &str, change: impl FnOnce(&mut Value)) -> bool {
        {
            let mut inner = self.lock();
            inner.version += 1;
            let version = inner.version;
            let Some(pod) = inner.pods.get_mut(&(ns.to_owned(), name.to_owned())) else {
                return false;
            };
            change(pod);
            pod["metadata"]["resourceVersion"] = json!(version.to_string());
            let pod = pod.clone();
            inner.events.push((version, "MODIFIED", pod));
        }
        self.notify();
        true
    }
}

/// A running fake API server.
pub struct FakeCluster {
    shared: Arc<Shared>,
    pub url: String,
}

impl FakeCluster {
    /// Starts the server on a free loopback port; `decide` picks each created pod's behaviour.
    pub async fn start(decide: impl Fn(&Value) -> Behaviour + Send + Sync + 'static) -> Self {
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                version: 100,
                pods: BTreeMap::new(),
                events: Vec::new(),
                logs: HashMap::new(),
                init_logs: HashMap::new(),
                created: Vec::new(),
                deletions: Vec::new(),
                fetches: Vec::new(),
                decide: Arc::new(decide),
            }),
            changed,
        });
        let app = Router::new()
            .route(
                "/api/v1/namespaces/{ns}/pods",
                get(list_or_watch).post(create),
            )
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}",
                get(read).delete(delete),
            )
            .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(log))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeCluster { shared, url }
    }

    /// A kube client configuration for this server.
    pub fn config(&self) -> kube::Config {
        kube::Config::new(self.url.parse().expect("url"))
    }

    /// Writes a kubeconfig file naming this server, for a `stroem work` process.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\n\
             contexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            self.url
        );
        std::fs::write(&path, text).expect("kubeconfig written");
        path
    }

    /// The pods as their create requests carried them, in order.
    pub fn created(&self) -> Vec<Value> {
        self.shared.lock().created.clone()
    }

    pub fn deletions(&self) -> Vec<Deletion> {
        self.shared.lock().deletions.clone()
    }

    /// The status of every tarball download of a [`Behaviour::Fetch`], in order.
    pub fn fetches(&self) -> Vec<u16> {
        self.shared.lock().fetches.clone()
    }

    /// The names of the pods that exist now.
    pub fn pod_names(&self) -> Vec<String> {
        self.shared
            .lock()
            .pods
            .keys()
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Creates a pod directly, as another process would have (no behaviour runs).
    pub fn insert(&self, ns: &str, mut pod: Value) {
        let mut inner = self.shared.lock();
        inner.version += 1;
        let name = pod["metadata"]["name"].as_str().expect("name").to_owned();
        pod["metadata"]["namespace"] = json!(ns);
        pod["metadata"]["resourceVersion"] = json!(inner.version.to_string());
        inner.pods.insert((ns.to_owned(), name), pod);
    }
}

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    watch: Option<String>,
    #[serde(rename = "labelSelector")]
    label_selector: Option<String>,
    #[serde(rename = "fieldSelector")]
    field_selector: Option<String>,
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

/// Whether `pod` matches `k=v,k=v` label equality and `metadata.name=x` field selectors.
fn matches(pod: &Value, query: &ListQuery) -> bool {
    let labels_ok = query.label_selector.as_deref().is_none_or(|selector| {
        selector.split(',').filter(|s| !s.is_empty()).all(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            pod["metadata"]["labels"][key].as_str() == Some(value)
        })
    });
    let fields_ok = query.field_selector.as_deref().is_none_or(|selector| {
        selector.split(',').filter(|s| !s.is_empty()).all(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            key != "metadata.name" || pod["metadata"]["name"].as_str() == Some(value)
        })
    });
    labels_ok && fields_ok
}

async fn list_or_watch(
    State(shared): State<Arc<Shared>>,
    Path(ns): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    if matches!(query.watch.as_deref(), Some("true" | "1")) {
        return watch_pods(shared, ns, query);
    }
    let inner = shared.lock();
    let items: Vec<Value> = inner
        .pods
        .iter()
        .filter(|((pod_ns, _), pod)| *pod_ns == ns && matches(pod, &query))
        .map(|(_, pod)| pod.clone())
        .collect();
    axum::Json(json!({
        "apiVersion": "v1", "kind": "PodList",
        "metadata": {"resourceVersion": inner.version.to_string()},
        "items": items,
    }))
    .into_response()
}

/// Newline-delimited watch events after the given version (the current state as ADDED events
/// without one), then every later change, until the client goes away.
fn watch_pods(shared: Arc<Shared>, ns: String, query: ListQuery) -> Response {
    let from: Option<u64> = query
        .resource_version
        .as_deref()
        .filter(|v| !v.is_empty() && *v != "0")
        .and_then(|v| v.parse().ok());
    let mut changed = shared.changed.subscribe();
    let stream = async_stream(move |sender| async move {
        let mut seen = match from {
            Some(version) => version,
            None => {
                let (initial, version) = {
                    let inner = shared.lock();
                    let initial: Vec<Value> = inner
                        .pods
                        .iter()
                        .filter(|((pod_ns, _), pod)| *pod_ns == ns && matches(pod, &query))
                        .map(|(_, pod)| json!({"type": "ADDED", "object": pod}))
                        .collect();
                    (initial, inner.version)
                };
                for event in initial {
                    if sender.send(line(&event)).await.is_err() {
                        return;
                    }
                }
                version
            }
        };
        loop {
            let fresh: Vec<(u64, Value)> = {
                let inner = shared.lock();
                inner
                    .events
                    .iter()
                    .filter(|(version, _, pod)| {
                        *version > seen
                            && pod["metadata"]["namespace"].as_str() == Some(ns.as_str())
                            && matches(pod, &query)
                    })
                    .map(|(version, kind, pod)| (*version, json!({"type": kind, "object": pod})))
                    .collect()
            };
            for (version, event) in fresh {
                seen = version;
                if sender.send(line(&event)).await.is_err() {
                    return;
                }
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(stream)
        .expect("response")
}

fn line(event: &Value) -> Bytes {
    let mut text = event.to_string();
    text.push('\n');
    Bytes::from(text)
}

/// A streamed body fed by `producer` through a channel.
fn async_stream<F, Fut>(producer: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(producer(sender));
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
        .map(Ok::<_, std::convert::Infallible>);
    Body::from_stream(stream)
}

use futures_util::StreamExt;

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(ns): Path<String>,
    axum::Json(mut pod): axum::Json<Value>,
) -> Response {
    let Some(name) = pod["metadata"]["name"].as_str().map(str::to_owned) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name: Required value",
        );
    };
    let decide = {
        let mut inner = shared.lock();
        inner.created.push(pod.clone());
        if inner.pods.contains_key(&(ns.clone(), name.clone())) {
            return status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                &format!("pods \"{name}\" already exists"),
            );
        }
        inner.version += 1;
        let version = inner.version;
        pod["metadata"]["namespace"] = json!(ns);
        pod["metadata"]["uid"] = json!(format!("uid-{version}"));
        pod["metadata"]["resourceVersion"] = json!(version.to_string());
        pod["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        pod["status"] = json!({"phase": "Pending"});
        inner.pods.insert((ns.clone(), name.clone()), pod.clone());
        inner.events.push((version, "ADDED", pod.clone()));
        inner.logs.insert(name.clone(), Logs::default());
        Arc::clone(&inner.decide)
    };
    shared.notify();
    let behaviour = decide(&pod);
    tokio::spawn(kubelet(
        Arc::clone(&shared),
        ns,
        name,
        pod.clone(),
        behaviour,
    ));
    (StatusCode::CREATED, axum::Json(pod)).into_response()
}

fn container(name: &str, image: &str, state: Value) -> Value {
    json!({
        "name": name, "image": image, "imageID": "", "ready": false, "restartCount": 0,
        "state": state,
    })
}

/// The value of variable `name` of the pod's `workspace-init` container.
pub fn init_env(pod: &Value, name: &str) -> Option<String> {
    pod["spec"]["initContainers"][0]["env"]
        .as_array()?
        .iter()
        .find(|var| var["name"] == name)
        .and_then(|var| var["value"].as_str())
        .map(str::to_owned)
}

/// The value of variable `name` of the pod's `step` container.
pub fn step_env(pod: &Value, name: &str) -> Option<String> {
    pod["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|var| var["name"] == name)
        .and_then(|var| var["value"].as_str())
        .map(str::to_owned)
}

/// Downloads what `workspace-init` would: the status, and the body on success.
async fn fetch(pod: &Value) -> (u16, Vec<u8>) {
    let (Some(url), Some(token)) = (
        init_env(pod, "STROEM_TARBALL_URL"),
        init_env(pod, "STROEM_WORKSPACE_TOKEN"),
    ) else {
        return (0, Vec::new());
    };
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        match agent
            .get(&url)
            .header("authorization", &format!("Bearer {token}"))
            .call()
        {
            Ok(mut response) => {
                let status = response.status().as_u16();
                (
                    status,
                    response.body_mut().read_to_vec().unwrap_or_default(),
                )
            }
            Err(_) => (0, Vec::new()),
        }
    })
    .await
    .unwrap_or((0, Vec::new()))
}

/// Plays the kubelet for one pod.
async fn kubelet(shared: Arc<Shared>, ns: String, name: String, pod: Value, behaviour: Behaviour) {
    let image = pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pause = || tokio::time::sleep(Duration::from_millis(20));
    pause().await;
    let behaviour = match behaviour {
        Behaviour::Fetch(then) => {
            let (status, body) = fetch(&pod).await;
            shared.lock().fetches.push(status);
            if status == 200 && body.starts_with(&[0x1f, 0x8b]) {
                *then
            } else {
                Behaviour::InitFails {
                    code: 22,
                    log: format!("curl: (22) The requested URL returned error: {status}"),
                }
            }
        }
        other => other,
    };
    let scheduled = json!([{"type": "PodScheduled", "status": "True"}]);
    let init_done = json!([container(
        "workspace-init",
        "init",
        json!({"terminated": {"exitCode": 0, "reason": "Completed"}})
    )]);
    match behaviour {
        Behaviour::Unschedulable => {
            shared.update(&ns, &name, |pod| {
                pod["status"] = json!({"phase": "Pending", "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient memory."
                }]});
            });
        }
        Behaviour::PullError => {
            for reason in ["ErrImagePull", "ImagePullBackOff"] {
                let alive = shared.update(&ns, &name, |pod| {
                    pod["status"] = json!({
                        "phase": "Pending", "conditions": scheduled,
                        "initContainerStatuses": init_done,
                        "containerStatuses": [container("step", &image, json!({"waiting": {
                            "reason": reason,
                            "message": format!("failed to pull image \"{image}\": not found")
                        }}))],
                    });
                });
                if !alive {
                    return;
                }
                pause().await;
            }
        }
        Behaviour::Fetch(_) => unreachable!("replaced above"),
        Behaviour::InitFails { code, log } => {
            shared.lock().init_logs.insert(name.clone(), log);
            shared.update(&ns, &name, |pod| {
                pod["status"] = json!({
                    "phase": "Failed", "conditions": scheduled,
                    "initContainerStatuses": [container("workspace-init", "init", json!({"terminated": {"exitCode": code, "reason": "Error"}}))],
                    "containerStatuses": [container("step", &image, json!({"waiting": {"reason": "PodInitializing"}}))],
                });
            });
        }
        Behaviour::Run {
            lines,
            exit,
            message,
            reason,
        } => {
            let alive = shared.update(&ns, &name, |pod| {
                pod["status"] = json!({
                    "phase": "Pending", "conditions": scheduled,
                    "initContainerStatuses": [container("workspace-init", "init", json!({"running": {}}))],
                    "containerStatuses": [container("step", &image, json!({"waiting": {"reason": "PodInitializing"}}))],
                });
            });
            if !alive {
                return;
            }
            pause().await;
            let alive = shared.update(&ns, &name, |pod| {
                pod["status"] = json!({
                    "phase": "Running", "conditions": scheduled,
                    "initContainerStatuses": init_done,
                    "containerStatuses": [container("step", &image, json!({"running": {"startedAt": "2026-01-01T00:00:01Z"}}))],
                });
            });
            if !alive {
                return;
            }
            for text in lines {
                {
                    let mut inner = shared.lock();
                    let Some(logs) = inner.logs.get_mut(&name) else {
                        return;
                    };
                    logs.lines.push(text);
                }
                shared.notify();
                pause().await;
            }
            let Some(code) = exit else { return };
            {
                let mut inner = shared.lock();
                if let Some(logs) = inner.logs.get_mut(&name) {
                    logs.closed = true;
                }
            }
            let mut terminated = json!({"exitCode": code, "reason": reason.unwrap_or_else(|| if code == 0 { "Completed".to_owned() } else { "Error".to_owned() })});
            if let Some(message) = message {
                terminated["message"] = json!(message);
            }
            shared.update(&ns, &name, |pod| {
                pod["status"] = json!({
                    "phase": if code == 0 { "Succeeded" } else { "Failed" },
                    "conditions": scheduled,
                    "initContainerStatuses": init_done,
                    "containerStatuses": [container("step", &image, json!({"terminated": terminated}))],
                });
            });
        }
    }
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    match shared.lock().pods.get(&(ns, name.clone())) {
        Some(pod) => axum::Json(pod.clone()).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{name}\" not found"),
        ),
    }
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let removed = {
        let mut inner = shared.lock();
        inner.deletions.push(Deletion {
            name: name.clone(),
            grace_period_seconds: options["gracePeriodSeconds"].as_i64(),
        });
        let removed = inner.pods.remove(&(ns, name.clone()));
        if let Some(pod) = &removed {
            inner.version += 1;
            let version = inner.version;
            let mut pod = pod.clone();
            pod["metadata"]["resourceVersion"] = json!(version.to_string());
            inner.events.push((version, "DELETED", pod));
        }
        if let Some(logs) = inner.logs.get_mut(&name) {
            logs.closed = true;
        }
        removed
    };
    shared.notify();
    match removed {
        Some(pod) => axum::Json(pod).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{name}\" not found"),
        ),
    }
}

#[derive(Debug, serde::Deserialize)]
struct LogQuery {
    container: Option<String>,
    follow: Option<String>,
}

async fn log(
    State(shared): State<Arc<Shared>>,
    Path((_ns, name)): Path<(String, String)>,
    Query(query): Query<LogQuery>,
) -> Response {
    if query.container.as_deref() == Some("workspace-init") {
        let text = shared
            .lock()
            .init_logs
            .get(&name)
            .cloned()
            .unwrap_or_default();
        return text.into_response();
    }
    if !shared.lock().logs.contains_key(&name) {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{name}\" not found"),
        );
    }
    let follow = matches!(query.follow.as_deref(), Some("true" | "1"));
    let mut changed = shared.changed.subscribe();
    let body = async_stream(move |sender| async move {
        let mut next = 0;
        loop {
            let (fresh, closed) = {
                let inner = shared.lock();
                match inner.logs.get(&name) {
                    Some(logs) => (logs.lines[next..].to_vec(), logs.closed),
                    None => (Vec::new(), true),
                }
            };
            next += fresh.len();
            for text in fresh {
                if sender.send(Bytes::from(format!("{text}\n"))).await.is_err() {
                    return;
                }
            }
            if closed || !follow {
                return;
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .header("content-type", "text/plain")
        .body(body)
        .expect("response")
}
