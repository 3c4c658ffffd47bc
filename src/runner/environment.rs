//! The environment of a local step (WF §11.1), built in precedence order: the worker's own
//! environment without `STROEM*`, the action's `env`, `INPUT_*` from the input, then Strøm's
//! variables. Later layers win.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::spec::StepSpec;

/// `INPUT_*` values larger than this are not set; the step reads `$STROEM_INPUT` instead.
pub const INPUT_VAR_LIMIT: usize = 32 * 1024;

/// Where a step's files are, as the process sees them.
#[derive(Debug)]
pub struct StepPaths<'a> {
    /// Absolute path of the working copy root.
    pub root: &'a Path,
    pub input_file: &'a Path,
    pub output_file: &'a Path,
}

/// The variables, and notes for the step's stderr about inputs that were left out.
#[derive(Debug, Default)]
pub struct StepEnv {
    pub vars: BTreeMap<String, String>,
    pub notes: Vec<String>,
}

/// Whether a worker variable is hidden from steps (WF §11.1, §16.1).
pub fn is_hidden(name: &str) -> bool {
    name.starts_with("STROEM")
}

pub fn build(base: &BTreeMap<String, String>, spec: &StepSpec, paths: &StepPaths<'_>) -> StepEnv {
    let mut env = StepEnv::default();
    env.vars.extend(
        base.iter()
            .filter(|(name, _)| !is_hidden(name))
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    env.vars.extend(spec.env.iter().cloned());
    for (key, value) in &spec.input {
        let name = input_var_name(key);
        // A worker variable of the same name must not stand in for an input that is not set.
        env.vars.remove(&name);
        let Some(text) = input_var_value(value) else {
            continue;
        };
        if text.len() > INPUT_VAR_LIMIT {
            env.notes.push(format!(
                "stroem: {name} is not set: its value is {} bytes, over the 32 KiB limit; \
                 read it from $STROEM_INPUT",
                text.len()
            ));
            continue;
        }
        env.vars.insert(name, text);
    }
    let stroem = [
        ("STROEM_JOB_ID", spec.job_id.to_string()),
        ("STROEM_TASK", spec.task.clone()),
        ("STROEM_TASK_NAME", spec.task.clone()),
        ("STROEM_STEP", spec.step.clone()),
        ("STROEM_STEP_NAME", spec.step.clone()),
        ("STROEM_WORKSPACE", spec.workspace.clone()),
        ("STROEM_ATTEMPT", spec.attempt.to_string()),
        ("STROEM_WORKDIR", paths.root.display().to_string()),
        ("STROEM_INPUT", paths.input_file.display().to_string()),
        ("STROEM_OUTPUT", paths.output_file.display().to_string()),
        (
            "STROEM_OUTPUT_VARS",
            paths
                .output_file
                .with_file_name(super::output::VARS_FILE)
                .display()
                .to_string(),
        ),
    ];
    env.vars.extend(
        stroem
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
    env
}

/// `release-tag` → `INPUT_RELEASE_TAG`: upper-cased, everything outside `[A-Z0-9]` → `_`.
pub fn input_var_name(key: &str) -> String {
    let mapped: String = key
        .chars()
        .map(|c| {
            let upper = c.to_ascii_uppercase();
            if upper.is_ascii_alphanumeric() {
                upper
            } else {
                '_'
            }
        })
        .collect();
    format!("INPUT_{mapped}")
}

/// Strings verbatim, null unset, everything else compact JSON.
pub fn input_var_value(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::runner::spec::{Program, ScriptBody};

    fn spec(input: Value) -> StepSpec {
        StepSpec {
            job_id: uuid::Uuid::nil(),
            workspace: "ops".to_owned(),
            task: "deploy".to_owned(),
            step: "push[2]".to_owned(),
            attempt: 3,
            action_name: "push".to_owned(),
            program: Program::Script {
                code: ScriptBody::Inline("true".to_owned()),
                interpreter: None,
                default_interpreter: vec!["sh".to_owned()],
                args: vec![],
            },
            env: vec![
                ("HOME".to_owned(), "/action-home".to_owned()),
                ("REGION".to_owned(), "eu".to_owned()),
            ],
            input: input.as_object().cloned().unwrap_or_default(),
            workdir: None,
            timeout_secs: None,
            mask: vec![],
            output_schema: None,
            runner: Default::default(),
            image: None,
            resources: None,
            manifest: None,
        }
    }

    #[test]
    fn layers_win_in_order_and_stroem_names_are_hidden() {
        let base: BTreeMap<String, String> = [
            ("HOME", "/root"),
            ("PATH", "/bin"),
            ("STROEM_TOKEN", "secret"),
            ("STROEMX", "hidden too"),
            ("INPUT_GONE", "stale worker value"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let input = json!({
            "release-tag": "v1.2",
            "count": 3,
            "flags": {"a": [1, true]},
            "gone": null,
            "big": "x".repeat(INPUT_VAR_LIMIT + 1),
            "edge": "y".repeat(INPUT_VAR_LIMIT),
            "Ümlaut.key": "ok",
        });
        let paths = StepPaths {
            root: Path::new("/wc"),
            input_file: Path::new("/io/input.json"),
            output_file: Path::new("/io/output.json"),
        };
        let env = build(&base, &spec(input), &paths);
        let mut vars = env.vars.clone();
        assert_eq!(
            vars.remove("INPUT_EDGE").map(|v| v.len()),
            Some(INPUT_VAR_LIMIT)
        );
        insta::assert_debug_snapshot!((vars, env.notes), @r#"
        (
            {
                "HOME": "/action-home",
                "INPUT_COUNT": "3",
                "INPUT_FLAGS": "{\"a\":[1,true]}",
                "INPUT_RELEASE_TAG": "v1.2",
                "INPUT__MLAUT_KEY": "ok",
                "PATH": "/bin",
                "REGION": "eu",
                "STROEM_ATTEMPT": "3",
                "STROEM_INPUT": "/io/input.json",
                "STROEM_JOB_ID": "00000000-0000-0000-0000-000000000000",
                "STROEM_OUTPUT": "/io/output.json",
                "STROEM_OUTPUT_VARS": "/io/output.vars",
                "STROEM_STEP": "push[2]",
                "STROEM_STEP_NAME": "push[2]",
                "STROEM_TASK": "deploy",
                "STROEM_TASK_NAME": "deploy",
                "STROEM_WORKDIR": "/wc",
                "STROEM_WORKSPACE": "ops",
            },
            [
                "stroem: INPUT_BIG is not set: its value is 32769 bytes, over the 32 KiB limit; read it from $STROEM_INPUT",
            ],
        )
        "#);
    }
}
