//! The pod of one attempt of a pod step (WF §6.1 `runner: pod`, §6.4 `type: pod`, §6.5, §6.6,
//! §11), as a pure function of the rendered step: the Kubernetes runner creates what this
//! builds, and tests compare it whole.
//!
//! The pod has `emptyDir` volumes: `/stroem` for Strøm's I/O files and, for script steps,
//! `/workspace` for the working copy (a `type: pod` image gets none, like a docker one). The `workspace-init` init container writes the step's input (and inline
//! script) into `/stroem` and, for script steps, downloads the revision's tarball with the
//! claim's `workspace_token` and unpacks it into `/workspace`; the `step` container then runs
//! the step. `$STROEM_OUTPUT` is the step container's termination-message file, which
//! Kubernetes hands back in the pod's status when the container ends. The worker token never
//! appears in the pod.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::container::{self, IO_DIR, WORKSPACE_DIR, label};
use super::environment::{self, StepPaths};
use super::spec::{Outcome, Program, ScriptBody, StepSpec};
use crate::workflow::manifest::{self, INIT_CONTAINER, STEP_CONTAINER};

/// Where `workspace-init` downloads the tarball from, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarballAccess {
    pub revision: String,
    /// The claim's `workspace_token` (API §7.3).
    pub token: String,
}

/// What the pod is built from besides the step.
#[derive(Debug, Clone)]
pub struct PodContext<'a> {
    pub namespace: &'a str,
    pub init_image: &'a str,
    /// The server's URL as pods reach it.
    pub server_url: &'a str,
    /// The image of script steps that name none.
    pub runner_image: &'a str,
    pub worker: &'a str,
    /// SIGTERM → SIGKILL grace, the pod's `terminationGracePeriodSeconds`.
    pub kill_grace_secs: u64,
    /// This worker process's attempt directory and the root holding it.
    pub instance: Option<(&'a Path, &'a Path)>,
    /// For script steps: the tarball of the working copy.
    pub access: Option<&'a TarballAccess>,
}

/// A pod to create and the notes for the step's log.
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub name: String,
    pub pod: Value,
    pub notes: Vec<String>,
}

/// The `workspace-init` script. Files are world-readable and -writable (`umask 0`): the step's
/// image may run as another user than the init image, and the pod's volumes are its own.
const INIT_SCRIPT: &str = r#"set -eu
umask 0
printf '%s' "$STROEM_INPUT_JSON" > /stroem/input.json
: > /stroem/output.json
if [ -n "${STROEM_SCRIPT+x}" ]; then printf '%s' "$STROEM_SCRIPT" > /stroem/script; fi
if [ -n "${STROEM_TARBALL_URL:-}" ]; then
  curl -fsS --retry 5 --retry-connrefused --max-time 600 \
    -H "Authorization: Bearer $STROEM_WORKSPACE_TOKEN" \
    -o /stroem/.workspace.tar.gz "$STROEM_TARBALL_URL"
  tar -xzf /stroem/.workspace.tar.gz -C /workspace
  rm -f /stroem/.workspace.tar.gz
fi
if [ -n "${STROEM_MKDIR:-}" ]; then mkdir -p "$STROEM_MKDIR"; fi
"#;

/// The annotation keys holding what labels cannot (paths, names with any character).
pub mod annotation {
    pub const STEP: &str = "io.stroem.step";
    pub const TASK: &str = "io.stroem.task";
    pub const WORKSPACE: &str = "io.stroem.workspace";
    pub const REVISION: &str = "io.stroem.revision";
    pub const WORKER: &str = "io.stroem.worker";
    pub const INSTANCE: &str = "io.stroem.instance";
    pub const SCRATCH_ROOT: &str = "io.stroem.scratch-root";
}

/// Builds the pod of `spec`'s attempt; an error is the attempt's outcome and message.
pub fn build(spec: &StepSpec, cx: &PodContext<'_>) -> Result<PodPlan, (Outcome, String)> {
    let permanent = |message: String| (Outcome::FailedPermanently, message);
    if let Some(written) = &spec.manifest {
        let found = manifest::violations(written);
        if !found.is_empty() {
            let list: Vec<String> = found
                .iter()
                .map(|violation| format!("manifest.{}: {}", violation.dotted(), violation.message))
                .collect();
            return Err(permanent(list.join("; ")));
        }
    }
    let input = serde_json::to_string(&Value::Object(spec.input.clone()))
        .map_err(|error| permanent(format!("cannot encode the step's input: {error}")))?;
    let mut init_env = vec![env_var("STROEM_INPUT_JSON", &input)];
    let (command, args, workdir, image) = match &spec.program {
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
            let image = spec
                .image
                .clone()
                .ok_or_else(|| permanent("a pod action needs an image".to_owned()))?;
            (command.entrypoint, command.cmd, spec.workdir.clone(), image)
        }
        Program::Script {
            code,
            interpreter,
            default_interpreter,
            args,
        } => {
            let access = cx.access.ok_or_else(|| {
                (
                    Outcome::Failed,
                    "the claim carries no workspace_token for this pod step".to_owned(),
                )
            })?;
            let url = format!(
                "{}/worker/workspace/{}.tar.gz?revision={}",
                cx.server_url.trim_end_matches('/'),
                percent_encode(&spec.workspace),
                percent_encode(&access.revision),
            );
            init_env.push(env_var("STROEM_TARBALL_URL", &url));
            init_env.push(env_var("STROEM_WORKSPACE_TOKEN", &access.token));
            let argv = match code {
                ScriptBody::Inline(text) => {
                    init_env.push(env_var("STROEM_SCRIPT", text));
                    let interpreter = interpreter.as_ref().unwrap_or(default_interpreter);
                    if interpreter.is_empty() {
                        return Err(permanent("the action's interpreter is empty".to_owned()));
                    }
                    let mut argv = interpreter.clone();
                    argv.push(format!("{IO_DIR}/script"));
                    argv.extend(args.iter().cloned());
                    argv
                }
                ScriptBody::Source(rel) => {
                    let file = format!("{WORKSPACE_DIR}/{}", rel.trim_start_matches("./"));
                    match interpreter {
                        Some(interpreter) if interpreter.is_empty() => {
                            return Err(permanent("the action's interpreter is empty".to_owned()));
                        }
                        Some(interpreter) => {
                            let mut argv = interpreter.clone();
                            argv.push(file);
                            argv.extend(args.iter().cloned());
                            argv
                        }
                        // A `#!` file runs directly, anything else with the language's
                        // interpreter (WF §6.1): decided in the pod, where the file is.
                        None => {
                            let fallback = default_interpreter
                                .iter()
                                .map(|word| shell_quote(word))
                                .collect::<Vec<_>>()
                                .join(" ");
                            let script = format!(
                                "f=\"$1\"; shift; if [ \"$(head -c 2 \"$f\")\" = '#!' ]; then chmod +x \"$f\"; exec \"$f\" \"$@\"; fi; exec {fallback} \"$f\" \"$@\""
                            );
                            let mut argv = vec![
                                "sh".to_owned(),
                                "-c".to_owned(),
                                script,
                                "stroem-source".to_owned(),
                                file,
                            ];
                            argv.extend(args.iter().cloned());
                            argv
                        }
                    }
                }
            };
            let command = container::script_command(argv).map_err(permanent)?;
            let workdir = match &spec.workdir {
                Some(rel) => {
                    let dir = format!("{WORKSPACE_DIR}/{}", rel.trim_start_matches("./"));
                    init_env.push(env_var("STROEM_MKDIR", &dir));
                    dir
                }
                None => WORKSPACE_DIR.to_owned(),
            };
            let image = spec
                .image
                .clone()
                .unwrap_or_else(|| cx.runner_image.to_owned());
            (command.entrypoint, command.cmd, Some(workdir), image)
        }
    };
    let input_file = format!("{IO_DIR}/input.json");
    let output_file = format!("{IO_DIR}/output.json");
    let paths = StepPaths {
        root: Path::new(WORKSPACE_DIR),
        input_file: Path::new(&input_file),
        output_file: Path::new(&output_file),
    };
    // Pods get no variable of the worker's own environment (WF §11.1 item 1), and no
    // `$STROEM_OUTPUT_VARS`: only the termination message comes back from a pod.
    let mut step_env = environment::build(&BTreeMap::new(), spec, &paths);
    step_env.vars.remove("STROEM_OUTPUT_VARS");

    let name = pod_name(spec);
    let mut labels = container::labels(spec, cx.worker, None, None);
    for value in labels.values_mut() {
        *value = label_value(value);
    }
    let mut annotations = BTreeMap::from([
        (annotation::STEP.to_owned(), spec.step.clone()),
        (annotation::TASK.to_owned(), spec.task.clone()),
        (annotation::WORKSPACE.to_owned(), spec.workspace.clone()),
        (annotation::WORKER.to_owned(), cx.worker.to_owned()),
    ]);
    if let Some(access) = cx.access {
        annotations.insert(annotation::REVISION.to_owned(), access.revision.clone());
    }
    if let Some((instance, root)) = cx.instance {
        labels.insert(label::INSTANCE.to_owned(), instance_label(instance));
        labels.insert(label::SCRATCH_ROOT.to_owned(), root_label(root));
        annotations.insert(
            annotation::INSTANCE.to_owned(),
            instance.display().to_string(),
        );
        annotations.insert(
            annotation::SCRATCH_ROOT.to_owned(),
            root.display().to_string(),
        );
    }
    // A prepared image gets no working copy (WF §6.3, §6.4): only the I/O directory.
    let script = matches!(spec.program, Program::Script { .. });
    let mut mounts = vec![json!({"name": "stroem", "mountPath": IO_DIR})];
    let mut volumes = vec![json!({"name": "stroem", "emptyDir": {}})];
    if script {
        mounts.insert(0, json!({"name": "workspace", "mountPath": WORKSPACE_DIR}));
        volumes.insert(0, json!({"name": "workspace", "emptyDir": {}}));
    }
    let mut step = json!({
        "name": STEP_CONTAINER,
        "image": image,
        "env": step_env.vars.iter().map(|(name, value)| env_var(name, value)).collect::<Vec<_>>(),
        "volumeMounts": mounts,
        "terminationMessagePath": output_file,
        "terminationMessagePolicy": "File",
    });
    if let Some(command) = command {
        step["command"] = json!(command);
    }
    if let Some(args) = args {
        step["args"] = json!(args);
    }
    if let Some(workdir) = workdir {
        step["workingDir"] = json!(workdir);
    }
    if let Some(resources) = &spec.resources {
        // Validated quantities; checked again as Docker's runner does.
        container::limits(Some(resources)).map_err(permanent)?;
        let mut quantities = serde_json::Map::new();
        if let Some(cpu) = &resources.cpu {
            quantities.insert("cpu".to_owned(), json!(cpu));
        }
        if let Some(memory) = &resources.memory {
            quantities.insert("memory".to_owned(), json!(memory));
        }
        step["resources"] = json!({"requests": quantities, "limits": quantities});
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": cx.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": cx.kill_grace_secs,
            "volumes": volumes,
            "initContainers": [{
                "name": INIT_CONTAINER,
                "image": cx.init_image,
                "command": ["sh", "-c", INIT_SCRIPT],
                "env": init_env,
                "volumeMounts": mounts,
            }],
            "containers": [step],
        },
    });
    if let Some(written) = &spec.manifest {
        manifest::merge(&mut pod, written);
        // Strøm's labels and annotations find the pod again (leftovers); a manifest adds
        // its own, never replaces these.
        for (pointer, ours) in [
            ("/metadata/labels", &labels),
            ("/metadata/annotations", &annotations),
        ] {
            if let Some(merged) = pod.pointer_mut(pointer).and_then(Value::as_object_mut) {
                for (key, value) in ours {
                    merged.insert(key.clone(), json!(value));
                }
            }
        }
    }
    Ok(PodPlan {
        name,
        pod,
        notes: step_env.notes,
    })
}

fn env_var(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// `stroem-<step>-<hash>`: a DNS label (≤ 63 characters) that is the same for the same job,
/// step and attempt, so a retried create finds its own pod.
pub fn pod_name(spec: &StepSpec) -> String {
    let mut slug = String::new();
    for c in spec.step.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(40).collect();
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "step" } else { slug };
    let digest = Sha256::digest(format!("{}/{}/{}", spec.job_id, spec.step, spec.attempt));
    format!("stroem-{slug}-{}", &hex::encode(digest)[..10])
}

/// A label value: at most 63 characters of `[A-Za-z0-9._-]`, starting and ending with a letter
/// or digit; other characters become `_`. The exact value is in an annotation.
pub fn label_value(text: &str) -> String {
    let replaced: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    replaced
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// The label naming a worker process's attempt directory: its last component (a UUID).
pub fn instance_label(instance: &Path) -> String {
    label_value(
        &instance
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

/// The label naming an attempt root: a digest of its path (a path is no label value).
pub fn root_label(root: &Path) -> String {
    hex::encode(Sha256::digest(root.as_os_str().as_encoded_bytes()))[..16].to_owned()
}

/// Single-quotes `word` for `sh`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn source_step(interpreter: Option<Vec<String>>) -> StepSpec {
        StepSpec {
            job_id: uuid::Uuid::nil(),
            workspace: "ops team".to_owned(),
            task: "t".to_owned(),
            step: "s".to_owned(),
            attempt: 1,
            action_name: "a".to_owned(),
            program: Program::Script {
                code: ScriptBody::Source("./bin/run.py".to_owned()),
                interpreter,
                default_interpreter: vec!["python3".to_owned()],
                args: vec!["x y".to_owned()],
            },
            env: Vec::new(),
            input: serde_json::Map::new(),
            workdir: None,
            timeout_secs: None,
            mask: Vec::new(),
            output_schema: None,
            runner: super::super::spec::RunnerKind::Pod,
            image: None,
            resources: None,
            manifest: None,
        }
    }

    fn cx<'a>(access: Option<&'a TarballAccess>) -> PodContext<'a> {
        PodContext {
            namespace: "jobs",
            init_image: "curl",
            server_url: "http://stroem:8080/",
            runner_image: "runner:1",
            worker: "w",
            kill_grace_secs: 3,
            instance: None,
            access,
        }
    }

    #[test]
    fn a_source_file_runs_directly_when_it_starts_with_a_shebang_else_with_its_language() {
        let access = TarballAccess {
            revision: "abc".to_owned(),
            token: "t".to_owned(),
        };
        let plan = build(&source_step(None), &cx(Some(&access))).expect("a pod");
        let step = &plan.pod["spec"]["containers"][0];
        assert_eq!(step["command"], json!(["sh"]));
        let args = step["args"].as_array().expect("args");
        assert!(
            args[1]
                .as_str()
                .unwrap_or_default()
                .ends_with("exec 'python3' \"$f\" \"$@\"")
        );
        assert_eq!(
            args[2..],
            [
                json!("stroem-source"),
                json!("/workspace/bin/run.py"),
                json!("x y")
            ]
        );
        assert_eq!(step["image"], "runner:1");
        assert_eq!(step["workingDir"], "/workspace");
        let url = &plan.pod["spec"]["initContainers"][0]["env"][1]["value"];
        assert_eq!(
            url,
            "http://stroem:8080/worker/workspace/ops%20team.tar.gz?revision=abc"
        );

        let explicit = build(
            &source_step(Some(vec!["python3".into(), "-u".into()])),
            &cx(Some(&access)),
        )
        .expect("a pod");
        let step = &explicit.pod["spec"]["containers"][0];
        assert_eq!(step["command"], json!(["python3"]));
        assert_eq!(step["args"], json!(["-u", "/workspace/bin/run.py", "x y"]));
    }

    #[test]
    fn a_script_step_without_a_workspace_token_is_not_started() {
        let error = build(&source_step(None), &cx(None)).expect_err("no token");
        assert_eq!(error.0, Outcome::Failed);
        assert!(error.1.contains("workspace_token"), "{}", error.1);
    }

    #[test]
    fn labels_and_names_are_what_kubernetes_accepts() {
        assert_eq!(label_value("deploy[1]"), "deploy_1");
        assert_eq!(label_value("host (embedded)"), "host__embedded");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
        assert_eq!(
            instance_label(Path::new("/data/attempts/0193-abc")),
            "0193-abc"
        );
        assert_eq!(root_label(Path::new("/data/attempts")).len(), 16);
    }
}
