//! The runners of a worker (`stroem work` and the embedded worker of `stroem serve`) and the
//! capabilities it registers with (API §7.2, §10.2): `script` when configured, `docker` only
//! when the Docker runner is configured, built in and its engine answers, `kubernetes` only when
//! the Kubernetes runner is configured, built in and its API server answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Capability, Config};
use crate::runner::{LocalRunner, Scratch};

/// The runner with its container runners attached, and the capabilities to register.
#[derive(Debug)]
pub struct Runners {
    pub runner: LocalRunner,
    pub capabilities: Vec<String>,
}

/// Attaches the configured container runners to `runner`. A runner configured but not built
/// in is an error naming the cargo feature; an engine that does not answer is a warning, and
/// the worker then does not advertise that capability.
pub async fn attach(
    config: &Config,
    environment: &BTreeMap<String, String>,
    runner: LocalRunner,
    scratch: &Arc<Scratch>,
    worker_name: &str,
) -> anyhow::Result<Runners> {
    let worker = &config.worker;
    let built = Built {
        docker: cfg!(feature = "docker"),
        kubernetes: cfg!(feature = "kubernetes"),
    };
    if let Some(message) = unbuilt(&worker.capabilities, built) {
        anyhow::bail!(message);
    }
    let mut capabilities = Vec::new();
    if worker.capabilities.contains(&Capability::Script) {
        capabilities.push(Capability::Script.as_str().to_owned());
    }
    let mut runner = runner;
    if worker.capabilities.contains(&Capability::Docker) {
        let (attached, docker) = docker(config, environment, runner, scratch, worker_name).await?;
        runner = attached;
        if docker {
            capabilities.push(Capability::Docker.as_str().to_owned());
        }
    }
    if worker.capabilities.contains(&Capability::Kubernetes) {
        let (attached, kubernetes) =
            kubernetes(config, environment, runner, scratch, worker_name).await?;
        runner = attached;
        if kubernetes {
            capabilities.push(Capability::Kubernetes.as_str().to_owned());
        }
    }
    if capabilities.is_empty() {
        anyhow::bail!(
            "this worker has no capability it can use (configured: [{}]); see the warnings above",
            worker
                .capabilities
                .iter()
                .map(|capability| capability.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Runners {
        runner,
        capabilities,
    })
}

#[cfg(feature = "docker")]
async fn docker(
    config: &Config,
    environment: &BTreeMap<String, String>,
    runner: LocalRunner,
    scratch: &Arc<Scratch>,
    worker_name: &str,
) -> anyhow::Result<(LocalRunner, bool)> {
    use crate::config::PullPolicy;
    use crate::runner::docker::{self, DockerRunner, DockerSettings};

    let worker = &config.worker;
    let section = worker.docker.as_ref();
    let host = docker::host(
        section.and_then(|docker| docker.host.as_deref()),
        environment,
    );
    let settings = DockerSettings {
        host: host.clone(),
        pull_policy: section
            .and_then(|docker| docker.pull_policy)
            .unwrap_or(PullPolicy::IfNotPresent),
        runner_image: worker.runner_image.clone(),
        worker: worker_name.to_owned(),
        kill_grace: std::time::Duration::from_secs(worker.kill_grace_secs),
        instance: Some((scratch.dir().to_owned(), scratch.root().to_owned())),
    };
    match DockerRunner::connect(settings).await {
        Ok(connected) => {
            match connected.remove_leftovers().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(
                    removed,
                    "removed containers that an earlier life of this worker left behind"
                ),
                Err(error) => tracing::warn!(%error, "cannot look for leftover containers"),
            }
            tracing::info!(host = %host, "Docker runner ready");
            Ok((runner.with_docker(Arc::new(connected)), true))
        }
        Err(error) => {
            tracing::warn!(
                "{error}; this worker does not advertise the 'docker' capability and fails \
                 docker steps it is given"
            );
            Ok((runner.without_docker(error), false))
        }
    }
}

/// Never called: [`unbuilt`] stops a worker configured for Docker in a build without it.
#[cfg(not(feature = "docker"))]
async fn docker(
    _config: &Config,
    _environment: &BTreeMap<String, String>,
    runner: LocalRunner,
    _scratch: &Arc<Scratch>,
    _worker_name: &str,
) -> anyhow::Result<(LocalRunner, bool)> {
    Ok((runner, false))
}

#[cfg(feature = "kubernetes")]
async fn kubernetes(
    config: &Config,
    environment: &BTreeMap<String, String>,
    runner: LocalRunner,
    scratch: &Arc<Scratch>,
    worker_name: &str,
) -> anyhow::Result<(LocalRunner, bool)> {
    use crate::runner::kubernetes::{
        DEFAULT_INIT_IMAGE, DEFAULT_UNSCHEDULABLE_TIMEOUT, KubernetesRunner, KubernetesSettings,
    };
    use std::time::Duration;

    let worker = &config.worker;
    let Some(section) = worker.kubernetes.as_ref() else {
        let reason = "this worker has the 'kubernetes' capability but no 'kubernetes' section \
                      (kubernetes.namespace is required)"
            .to_owned();
        tracing::warn!("{reason}; it does not advertise the 'kubernetes' capability");
        return Ok((runner.without_kubernetes(reason), false));
    };
    let settings = KubernetesSettings {
        namespace: section.namespace.clone(),
        init_image: section
            .init_image
            .clone()
            .unwrap_or_else(|| DEFAULT_INIT_IMAGE.to_owned()),
        server_url: section
            .server_url
            .clone()
            .unwrap_or_else(|| worker.server_url.clone()),
        runner_image: worker.runner_image.clone(),
        worker: worker_name.to_owned(),
        kill_grace: Duration::from_secs(worker.kill_grace_secs),
        unschedulable_timeout: section
            .unschedulable_timeout_secs
            .map_or(DEFAULT_UNSCHEDULABLE_TIMEOUT, Duration::from_secs),
        instance: Some((scratch.dir().to_owned(), scratch.root().to_owned())),
    };
    let kubeconfig = environment.get("KUBECONFIG").map(String::as_str);
    match KubernetesRunner::connect(settings, kubeconfig).await {
        Ok(connected) => {
            match connected.remove_leftovers().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(
                    removed,
                    "deleted pods that an earlier life of this worker left behind"
                ),
                Err(error) => tracing::warn!(%error, "cannot look for leftover pods"),
            }
            tracing::info!(namespace = %connected.namespace(), "Kubernetes runner ready");
            Ok((runner.with_kubernetes(Arc::new(connected)), true))
        }
        Err(error) => {
            tracing::warn!(
                "{error}; this worker does not advertise the 'kubernetes' capability and fails \
                 pod steps it is given"
            );
            Ok((runner.without_kubernetes(error), false))
        }
    }
}

/// Never called: [`unbuilt`] stops a worker configured for Kubernetes in a build without it.
#[cfg(not(feature = "kubernetes"))]
async fn kubernetes(
    _config: &Config,
    _environment: &BTreeMap<String, String>,
    runner: LocalRunner,
    _scratch: &Arc<Scratch>,
    _worker_name: &str,
) -> anyhow::Result<(LocalRunner, bool)> {
    Ok((runner, false))
}

/// Which container runners this build has.
#[derive(Debug, Clone, Copy)]
struct Built {
    docker: bool,
    kubernetes: bool,
}

/// The start-up error of a worker configured for a runner this build does not have.
fn unbuilt(configured: &[Capability], built: Built) -> Option<String> {
    if configured.contains(&Capability::Docker) && !built.docker {
        return Some(
            "this worker is configured for the Docker runner (a 'docker' section or the 'docker' \
             capability), but this build of stroem has no Docker runner: build it with the cargo \
             feature 'docker' (release builds and the container image have it)"
                .to_owned(),
        );
    }
    (configured.contains(&Capability::Kubernetes) && !built.kubernetes).then(|| {
        "this worker is configured for the Kubernetes runner (a 'kubernetes' section or the \
         'kubernetes' capability), but this build of stroem has no Kubernetes runner: build it \
         with the cargo feature 'kubernetes' (release builds and the container image have it)"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_configured_but_not_built_is_named_at_start_up() {
        let none = Built {
            docker: false,
            kubernetes: false,
        };
        let all = Built {
            docker: true,
            kubernetes: true,
        };
        let docker = [Capability::Script, Capability::Docker];
        let message = unbuilt(&docker, none).expect("an error");
        assert!(message.contains("cargo feature 'docker'"), "{message}");
        assert_eq!(unbuilt(&docker, all), None);
        let kubernetes = [Capability::Script, Capability::Kubernetes];
        let message = unbuilt(&kubernetes, none).expect("an error");
        assert!(message.contains("cargo feature 'kubernetes'"), "{message}");
        assert_eq!(unbuilt(&kubernetes, all), None);
        assert_eq!(unbuilt(&[Capability::Script], none), None);
    }
}
