//! Decoding the worker keys (API §10.2, role W), which `stroem work` and the embedded worker
//! of `stroem serve` read.

use super::read::{Cx, Section};
use super::types::{Capability, DockerConfig, KubernetesConfig, PullPolicy, WorkerConfig};

pub const DEFAULT_SERVER_URL: &str = "http://localhost:8080";
/// The runner image released with this version of Strøm.
pub const DEFAULT_RUNNER_IMAGE: &str = concat!(
    "ghcr.io/fremvaerk/stroem-runner:",
    env!("CARGO_PKG_VERSION")
);

const CAPABILITY_WORDS: [(&str, Capability); 4] = [
    ("script", Capability::Script),
    ("shell", Capability::Script),
    ("docker", Capability::Docker),
    ("kubernetes", Capability::Kubernetes),
];

/// The worker part; `workspace_cache_dir` is left empty when unset, for the `data_dir` default.
pub fn worker(cx: &mut Cx, root: &Section, host_name: &dyn Fn() -> String) -> WorkerConfig {
    let server_url = match cx.string(root, "server_url") {
        Some(url) => {
            check_url(cx, root, "server_url", &url);
            url
        }
        None => DEFAULT_SERVER_URL.to_owned(),
    };
    let workspace_cache_dir = cx
        .one_of(root, &["workspace_cache_dir", "workspace_dir"])
        .and_then(|(key, _)| cx.path(root, key))
        .unwrap_or_default();
    let docker = cx
        .section(root, "docker")
        .map(|section| docker(cx, &section));
    let kubernetes = cx
        .section(root, "kubernetes")
        .and_then(|section| kubernetes(cx, &section));
    let mut capabilities = capabilities(cx, root, docker.is_some(), kubernetes.is_some());
    let tags = tags(cx, root, &mut capabilities);
    WorkerConfig {
        server_url,
        worker_name: cx.string(root, "worker_name").unwrap_or_else(host_name),
        max_concurrent: cx
            .uint(root, "max_concurrent", 1)
            .map_or(4, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        poll_interval_secs: cx.uint(root, "poll_interval_secs", 1).unwrap_or(2),
        heartbeat_interval_secs: cx.uint(root, "heartbeat_interval_secs", 1).unwrap_or(5),
        kill_grace_secs: cx.uint(root, "kill_grace_secs", 0).unwrap_or(10),
        shutdown_grace_secs: cx.uint(root, "shutdown_grace_secs", 0).unwrap_or(60),
        workspace_cache_dir,
        workspace_cache_max_bytes: cx
            .uint(root, "workspace_cache_max_bytes", 1024)
            .unwrap_or(DEFAULT_CACHE_MAX_BYTES),
        workspace_cache_max_file_bytes: cx
            .uint(root, "workspace_cache_max_file_bytes", 1024)
            .unwrap_or(DEFAULT_CACHE_MAX_FILE_BYTES),
        capabilities,
        tags,
        runner_image: cx
            .string(root, "runner_image")
            .unwrap_or_else(|| DEFAULT_RUNNER_IMAGE.to_owned()),
        docker,
        kubernetes,
    }
}

/// A revision's extracted tree may take up to 1 GiB, and one of its files up to 256 MiB.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 1024 * 1024 * 1024;
pub const DEFAULT_CACHE_MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// `server_url` must be an http(s) URL; the worker builds request URLs from it.
pub fn check_url(cx: &mut Cx, section: &Section, key: &str, url: &str) {
    if url.starts_with("http://") || url.starts_with("https://") {
        return;
    }
    let origin = section
        .get(key)
        .map_or_else(|| section.origin.clone(), |item| item.origin.clone());
    let path = section.path_of(key);
    let message = format!("'{path}' must start with http:// or https://, found '{url}'");
    cx.error(&origin, path, message);
}

/// The declared capabilities (`shell` read as `script`, duplicates dropped), else `[script]`
/// plus `docker` / `kubernetes` when those sections exist.
fn capabilities(cx: &mut Cx, root: &Section, docker: bool, kubernetes: bool) -> Vec<Capability> {
    let Some(words) = cx.strings(root, "capabilities") else {
        let mut defaults = vec![Capability::Script];
        defaults.extend(docker.then_some(Capability::Docker));
        defaults.extend(kubernetes.then_some(Capability::Kubernetes));
        return defaults;
    };
    let origin = root
        .get("capabilities")
        .map_or_else(|| root.origin.clone(), |item| item.origin.clone());
    if words.is_empty() {
        let message = "'capabilities' must name at least one of script, docker, kubernetes";
        cx.error(&origin, "capabilities".to_owned(), message.to_owned());
    }
    let mut capabilities = Vec::new();
    for (index, word) in words.iter().enumerate() {
        let path = format!("capabilities[{index}]");
        if let Some(capability) = cx.word(&origin, path, word, &CAPABILITY_WORDS)
            && !capabilities.contains(&capability)
        {
            capabilities.push(capability);
        }
    }
    capabilities
}

/// The routing tags. A capability word among them counts as a capability (API §10.2), so it
/// moves to `capabilities` here: the worker then registers it as what it is, and the start-up
/// warning below covers it, instead of the server reading it as a capability the worker's
/// runners cannot honour. (Whether `docker` and `kubernetes` are registered is decided at
/// start-up, when the engine or the API server is reached.)
fn tags(cx: &mut Cx, root: &Section, capabilities: &mut Vec<Capability>) -> Vec<String> {
    let words = cx.strings(root, "tags").unwrap_or_default();
    let mut tags = Vec::new();
    for word in words {
        match CAPABILITY_WORDS.iter().find(|(name, _)| *name == word) {
            Some((_, capability)) if !capabilities.contains(capability) => {
                capabilities.push(*capability);
            }
            Some(_) => {}
            None if !tags.contains(&word) => tags.push(word),
            None => {}
        }
    }
    tags
}

fn docker(cx: &mut Cx, section: &Section) -> DockerConfig {
    let policies = [
        ("if_not_present", PullPolicy::IfNotPresent),
        ("always", PullPolicy::Always),
        ("never", PullPolicy::Never),
    ];
    DockerConfig {
        host: cx.string(section, "host"),
        pull_policy: cx.choice(section, "pull_policy", &policies),
    }
}

fn kubernetes(cx: &mut Cx, section: &Section) -> Option<KubernetesConfig> {
    let init_image = cx.string(section, "init_image");
    let server_url = cx.string(section, "server_url");
    if let Some(url) = &server_url {
        check_url(cx, section, "server_url", url);
    }
    let unschedulable_timeout_secs = cx.uint(section, "unschedulable_timeout_secs", 0);
    let Some(namespace) = cx.string(section, "namespace") else {
        cx.missing(section, "namespace", "for the Kubernetes runner");
        return None;
    };
    Some(KubernetesConfig {
        namespace,
        init_image,
        server_url,
        unschedulable_timeout_secs,
    })
}
