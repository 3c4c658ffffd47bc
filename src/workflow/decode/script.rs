//! The fields of script (and legacy shell) actions and of container actions (WF §6.1–§6.4;
//! rules 7–11 of §18.2).

use super::super::diagnostic::suggest;
use super::super::model::{ContainerAction, Language, Runner, ScriptAction, ScriptCode};
use super::super::template::is_template;
use super::fields::{Ctx, Fields};

/// `runner`, read first because it decides which other keys a script action allows.
pub fn runner(cx: &mut Ctx, f: &mut Fields) -> Runner {
    let Some(text) = f.text(cx, "runner") else {
        return Runner::Local;
    };
    let mark = f.value_mark("runner");
    let path = f.path_of("runner");
    match text.as_str() {
        "local" => Runner::Local,
        "docker" => Runner::Docker,
        "pod" => Runner::Pod,
        other => {
            let message = match suggest(other, ["local", "docker", "pod"]) {
                Some(close) => format!("unknown runner '{other}' — did you mean '{close}'?"),
                None => format!("unknown runner '{other}'; use local, docker or pod"),
            };
            cx.error("unknown-value", message, mark, &path);
            Runner::Local
        }
    }
}

/// The code, language, interpreter, args, image and manifest of a script action.
pub fn script(cx: &mut Ctx, f: &mut Fields, legacy: bool, runner: Runner) -> ScriptAction {
    let (inline_key, file_key) = if legacy {
        ("cmd", "script")
    } else {
        ("script", "source")
    };
    let inline = f.text(cx, inline_key);
    let file = f.text(cx, file_key);
    let label = if legacy { "a shell" } else { "a script" };
    let code = match (inline, file) {
        (Some(code), None) => ScriptCode::Inline(code),
        (None, Some(path)) => ScriptCode::Source(path),
        (Some(code), Some(_)) => {
            let mark = f.key_mark(file_key).unwrap_or(f.mark);
            let message = format!(
                "{label} action takes either '{inline_key}' (inline code) or '{file_key}' (a file), not both"
            );
            cx.error("conflicting-fields", message, mark, &f.path_of(file_key));
            ScriptCode::Inline(code)
        }
        (None, None) => {
            let message = format!(
                "{label} action needs '{inline_key}' (inline code) or '{file_key}' (a file path)"
            );
            cx.error("missing-field", message, f.mark, &f.path.clone());
            ScriptCode::Inline(String::new())
        }
    };
    match &code {
        ScriptCode::Inline(text) if text.trim().is_empty() && f.has(inline_key) => {
            let mark = f.value_mark(inline_key);
            cx.error(
                "empty-field",
                format!("'{inline_key}' is empty"),
                mark,
                &f.path_of(inline_key),
            );
        }
        ScriptCode::Source(path) => check_source(cx, f, file_key, path),
        ScriptCode::Inline(_) => {}
    }
    let interpreter = interpreter(cx, f);
    let args = f.text_list(cx, "args").unwrap_or_default();
    if let Some(items) = f.get("args").and_then(|n| n.as_seq()) {
        for (i, item) in items.iter().enumerate() {
            if item.scalar_text().is_some_and(str::is_empty) {
                let path = format!("{}[{i}]", f.path_of("args"));
                cx.error("empty-field", "an 'args' entry is empty", item.mark, &path);
            }
        }
    }
    let image = (runner != Runner::Local)
        .then(|| f.text(cx, "image"))
        .flatten();
    let manifest = if runner == Runner::Pod {
        manifest(cx, f)
    } else {
        None
    };
    ScriptAction {
        legacy_shell: legacy,
        code,
        language: language(cx, f),
        interpreter,
        args,
        runner,
        image,
        manifest,
    }
}

/// Rule 10: literal `source` paths stay inside the workspace and name an existing file.
fn check_source(cx: &mut Ctx, f: &mut Fields, key: &str, path: &str) {
    let mark = f.value_mark(key);
    let field = f.path_of(key);
    if path.trim().is_empty() {
        cx.error("empty-field", format!("'{key}' is empty"), mark, &field);
        return;
    }
    if is_template(path) {
        return;
    }
    if let Err(why) = relative_path(path) {
        cx.error("invalid-path", format!("'{key}' {why}"), mark, &field);
        return;
    }
    let normal: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let normal = normal.join("/");
    if !cx.all_files.contains(&normal) {
        let message = format!("'{key}' file '{path}' does not exist in the workspace");
        cx.error("missing-file", message, mark, &field);
    }
}

/// A path that must stay inside the working copy: relative and without `..` segments.
pub fn relative_path(path: &str) -> Result<(), &'static str> {
    if path.starts_with('/') {
        return Err("must be relative to the workspace root, not absolute");
    }
    if path.split('/').any(|segment| segment == "..") {
        return Err("must not contain '..': it would escape the workspace");
    }
    Ok(())
}

fn language(cx: &mut Ctx, f: &mut Fields) -> Language {
    let Some(text) = f.text(cx, "language") else {
        return Language::Shell;
    };
    let mark = f.value_mark("language");
    let path = f.path_of("language");
    let (language, phase) = match text.as_str() {
        "shell" => (Language::Shell, None),
        "python" => (Language::Python, None),
        "javascript" | "js" | "node" => (Language::Javascript, None),
        "typescript" | "ts" => (Language::Typescript, Some("language: typescript")),
        "go" => (Language::Go, Some("language: go")),
        other => {
            let known = [
                "shell",
                "python",
                "javascript",
                "js",
                "node",
                "typescript",
                "ts",
                "go",
            ];
            let message = match suggest(other, known) {
                Some(close) => format!("unknown language '{other}' — did you mean '{close}'?"),
                None => format!("unknown language '{other}'; use shell, python or javascript"),
            };
            cx.error("unknown-value", message, mark, &path);
            return Language::Shell;
        }
    };
    if let Some(what) = phase {
        cx.unsupported(what, mark, &path);
    }
    language
}

/// `interpreter`: a program, or a list of program and leading arguments.
fn interpreter(cx: &mut Ctx, f: &mut Fields) -> Option<Vec<String>> {
    let node = f.get("interpreter")?;
    let path = f.path_of("interpreter");
    let words = match node.scalar_text() {
        Some(program) => vec![program.to_owned()],
        None => super::fields::text_list(cx, node, &path)?,
    };
    let program_ok = words.first().is_some_and(|program| {
        !program.is_empty()
            && program
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._/+-".contains(c))
    });
    if !program_ok {
        let message =
            "'interpreter' must name a program made of the characters A-Z a-z 0-9 . _ / + -";
        cx.error("invalid-interpreter", message, node.mark, &path);
    }
    Some(words)
}

/// `manifest` (WF §6.4), with the fields it must not set reported where they are written.
fn manifest(cx: &mut Ctx, f: &mut Fields) -> Option<serde_json::Value> {
    let node = f.map(cx, "manifest")?;
    let path = f.path_of("manifest");
    cx.record_tree(&path, node);
    let value = node.to_json();
    for violation in crate::workflow::manifest::violations(&value) {
        let mark = locate(node, &violation.path).map_or(node.mark, |found| found.mark);
        let at = format!("{path}.{}", violation.dotted());
        cx.error("forbidden-manifest-field", violation.message, mark, &at);
    }
    Some(value)
}

/// The node at `path` below `node`, when the YAML has it.
fn locate<'a>(
    node: &'a super::super::yaml::Node,
    path: &[crate::workflow::manifest::Segment],
) -> Option<&'a super::super::yaml::Node> {
    use crate::workflow::manifest::Segment;
    let mut current = node;
    for segment in path {
        current = match segment {
            Segment::Key(key) => current
                .as_map()?
                .iter()
                .find(|(k, _)| super::super::yaml::key_text(k) == *key)
                .map(|(_, value)| value)?,
            Segment::Index(index) => current.as_seq()?.get(*index)?,
        };
    }
    Some(current)
}

/// The fields of `type: docker` and `type: pod` actions.
pub fn container(cx: &mut Ctx, f: &mut Fields, pod: bool) -> ContainerAction {
    let path = f.path.clone();
    let label = if pod { "a pod" } else { "a docker" };
    let image = super::action::required_text(
        cx,
        f,
        "image",
        &path,
        &format!("{label} action needs an 'image'"),
    );
    let entrypoint = f.text_list(cx, "entrypoint");
    let command = f.text_list(cx, "command");
    let cmd = f.text(cx, "cmd");
    if cmd.is_some() && command.is_some() {
        let mark = f.key_mark("cmd").unwrap_or(f.mark);
        cx.error(
            "conflicting-fields",
            "'cmd' cannot be combined with 'command'; use one of them",
            mark,
            &f.path_of("cmd"),
        );
    }
    let manifest = if pod { manifest(cx, f) } else { None };
    ContainerAction {
        image,
        entrypoint,
        command,
        cmd,
        manifest,
    }
}
