//! Pod `manifest` overrides (WF §6.4): the deep merge into the generated pod, and the fields a
//! manifest must not set. Pure functions over JSON values, shared by `validate` (on the
//! written manifest) and the Kubernetes runner (again, on the manifest a claim carries).

use serde_json::Value;

/// The name of the main container of a pod step.
pub const STEP_CONTAINER: &str = "step";
/// The name of the init container that fills `/workspace` from the revision's tarball.
pub const INIT_CONTAINER: &str = "workspace-init";

/// One step of a path into a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A forbidden field: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: Vec<Segment>,
    pub message: String,
}

impl Violation {
    /// The path in dotted notation (`spec.containers[0].securityContext.privileged`).
    pub fn dotted(&self) -> String {
        dotted(&self.path)
    }
}

/// `a.b[0].c`.
pub fn dotted(path: &[Segment]) -> String {
    let mut text = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Segment::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// Deep-merges `overlay` into `base` (WF §6.4): objects merge recursively; lists whose
/// elements are all objects carrying a string `name` are matched by name and merged
/// element-wise, unmatched elements appended; every other value is replaced.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(overlay))
            if named_list(base) && named_list(overlay) && !overlay.is_empty() =>
        {
            for item in overlay {
                let name = item.get("name");
                match base
                    .iter_mut()
                    .find(|existing| existing.get("name") == name)
                {
                    Some(existing) => merge(existing, item),
                    None => base.push(item.clone()),
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

fn named_list(items: &[Value]) -> bool {
    items
        .iter()
        .all(|item| item.get("name").is_some_and(Value::is_string))
}

/// The fields of `manifest` that WF §6.4 forbids, in document order.
pub fn violations(manifest: &Value) -> Vec<Violation> {
    let mut found = Vec::new();
    let key = |k: &str| Segment::Key(k.to_owned());
    if let Some(metadata) = manifest.get("metadata") {
        for field in ["name", "namespace"] {
            if metadata.get(field).is_some() {
                found.push(Violation {
                    path: vec![key("metadata"), key(field)],
                    message: format!("a pod manifest must not set metadata.{field}; Strøm names the pod and runs it in the worker's namespace"),
                });
            }
        }
    }
    let Some(spec) = manifest.get("spec") else {
        return found;
    };
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec.get(field) == Some(&Value::Bool(true)) {
            found.push(Violation {
                path: vec![key("spec"), key(field)],
                message: format!("a pod manifest must not set spec.{field} to true"),
            });
        }
    }
    if let Some(policy) = spec.get("restartPolicy")
        && policy != "Never"
    {
        found.push(Violation {
            path: vec![key("spec"), key("restartPolicy")],
            message: "a pod manifest must not change spec.restartPolicy (a step's pod is never restarted)".to_owned(),
        });
    }
    if let Some(volumes) = spec.get("volumes").and_then(Value::as_array) {
        for (index, volume) in volumes.iter().enumerate() {
            if volume.get("hostPath").is_some() {
                found.push(Violation {
                    path: vec![
                        key("spec"),
                        key("volumes"),
                        Segment::Index(index),
                        key("hostPath"),
                    ],
                    message: "a pod manifest must not declare a hostPath volume".to_owned(),
                });
            }
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (index, container) in containers.iter().enumerate() {
            let at = |rest: &[&str]| {
                let mut path = vec![key("spec"), key(list), Segment::Index(index)];
                path.extend(rest.iter().map(|k| key(k)));
                path
            };
            let name = container.get("name").and_then(Value::as_str);
            if list == "initContainers" && name == Some(INIT_CONTAINER) {
                found.push(Violation {
                    path: at(&[]),
                    message: format!(
                        "a pod manifest must not modify the '{INIT_CONTAINER}' init container"
                    ),
                });
                continue;
            }
            if list == "containers" && name == Some(STEP_CONTAINER) {
                for field in ["image", "command", "args"] {
                    if container.get(field).is_some() {
                        found.push(Violation {
                            path: at(&[field]),
                            message: format!(
                                "a pod manifest must not change the {field} of the '{STEP_CONTAINER}' container; set the action's image, entrypoint, command or cmd instead"
                            ),
                        });
                    }
                }
            }
            if let Some(security) = container.get("securityContext") {
                for field in ["privileged", "allowPrivilegeEscalation"] {
                    if security.get(field) == Some(&Value::Bool(true)) {
                        found.push(Violation {
                            path: at(&["securityContext", field]),
                            message: format!("a pod manifest must not set {field}: true"),
                        });
                    }
                }
            }
            if let Some(mounts) = container.get("volumeMounts").and_then(Value::as_array) {
                for (mount_index, mount) in mounts.iter().enumerate() {
                    let target = mount.get("mountPath").and_then(Value::as_str);
                    if target.is_some_and(is_docker_socket) {
                        let mut path = at(&["volumeMounts"]);
                        path.push(Segment::Index(mount_index));
                        path.push(key("mountPath"));
                        found.push(Violation {
                            path,
                            message: "a pod manifest must not mount /var/run/docker.sock"
                                .to_owned(),
                        });
                    }
                }
            }
        }
    }
    found
}

/// `/var/run/docker.sock`, also spelled with doubled or trailing slashes or `/run/…`.
fn is_docker_socket(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    matches!(
        parts.as_slice(),
        ["var", "run", "docker.sock"] | ["run", "docker.sock"]
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_follows_the_rules_of_wf_6_4() {
        let mut pod = json!({
            "metadata": {"labels": {"a": "1"}},
            "spec": {
                "containers": [{"name": "step", "image": "x", "env": [{"name": "A", "value": "1"}]}],
                "tolerations": [{"key": "k"}],
                "restartPolicy": "Never"
            }
        });
        let overlay = json!({
            "metadata": {"labels": {"b": "2"}},
            "spec": {
                "containers": [
                    {"name": "step", "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]},
                    {"name": "sidecar", "image": "y"}
                ],
                "tolerations": [{"key": "other"}],
                "nodeSelector": {"pool": "gpu"}
            }
        });
        merge(&mut pod, &overlay);
        assert_eq!(
            pod,
            json!({
                "metadata": {"labels": {"a": "1", "b": "2"}},
                "spec": {
                    "containers": [
                        {"name": "step", "image": "x", "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]},
                        {"name": "sidecar", "image": "y"}
                    ],
                    "tolerations": [{"key": "other"}],
                    "restartPolicy": "Never",
                    "nodeSelector": {"pool": "gpu"}
                }
            })
        );
    }

    #[test]
    fn every_forbidden_field_is_reported() {
        let manifest = json!({
            "metadata": {"name": "x", "namespace": "y", "labels": {"ok": "1"}},
            "spec": {
                "hostNetwork": true, "hostPID": true, "hostIPC": false,
                "restartPolicy": "Always",
                "volumes": [{"name": "v", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}}],
                "initContainers": [{"name": "workspace-init", "env": []}, {"name": "other", "securityContext": {"privileged": true}}],
                "containers": [{
                    "name": "step", "image": "evil", "command": ["sh"], "args": [],
                    "securityContext": {"allowPrivilegeEscalation": true},
                    "volumeMounts": [{"name": "s", "mountPath": "/var/run//docker.sock/"}]
                }]
            }
        });
        let paths: Vec<String> = violations(&manifest)
            .iter()
            .map(Violation::dotted)
            .collect();
        assert_eq!(
            paths,
            [
                "metadata.name",
                "metadata.namespace",
                "spec.hostNetwork",
                "spec.hostPID",
                "spec.restartPolicy",
                "spec.volumes[0].hostPath",
                "spec.initContainers[0]",
                "spec.initContainers[1].securityContext.privileged",
                "spec.containers[0].image",
                "spec.containers[0].command",
                "spec.containers[0].args",
                "spec.containers[0].securityContext.allowPrivilegeEscalation",
                "spec.containers[0].volumeMounts[0].mountPath",
            ]
        );
        let allowed = json!({"spec": {"restartPolicy": "Never", "nodeSelector": {"a": "b"},
            "containers": [{"name": "step", "resources": {"limits": {"cpu": "2"}}}]}});
        assert!(violations(&allowed).is_empty());
    }
}
