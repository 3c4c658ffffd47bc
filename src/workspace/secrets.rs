//! Secret resolution (WF §16.1): renders the workspace's `secrets:` templates with the server
//! environment and the `file()` function, and lists the values log masking must hide (§16.3).
//!
//! `file(path)` is the one place a workflow file makes the server read an arbitrary path, so it
//! is fenced: the path must be absolute and, after `..` and symbolic links are resolved, lie
//! inside one of the configured secret file directories and not be a file the server's own
//! configuration reads (tokens, JWT secrets, passwords).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind as IoErrorKind;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::workflow::model::{Map, SecretValue, WorkspaceDef};
use crate::workflow::template::{Templates, is_template};

/// Why a secret could not be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretErrorKind {
    /// An environment variable is not set or a file does not exist or cannot be read. An
    /// error on the server, a warning in `stroem validate`, which may run elsewhere.
    Missing,
    /// `file()` named a path it may not read.
    Refused,
    /// The value resolved to the empty string.
    Empty,
    /// The template itself is wrong (syntax, unknown filter, …).
    Template,
}

/// One secret that could not be resolved; `name` is its dotted path (`aws.key_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("secret '{name}': {message}")]
pub struct SecretError {
    pub name: String,
    pub kind: SecretErrorKind,
    pub message: String,
}

/// Resolves every secret into a nested JSON object of strings, or reports every secret that
/// failed. `env` is the server's whole environment: names starting with `STROEM` are hidden
/// here. `refused_files` are the files the server configuration reads through `*_file` keys.
pub fn resolve(
    secrets: &Map<SecretValue>,
    env: &BTreeMap<String, String>,
    secret_file_dirs: &[PathBuf],
    refused_files: &[PathBuf],
) -> Result<Value, Vec<SecretError>> {
    let (resolved, errors) = resolve_all(secrets, env, secret_file_dirs, refused_files);
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(errors)
    }
}

/// Secrets resolved as far as they can be (WF §16.1): a missing variable or file does not fail
/// the workspace, only the jobs that use that secret.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The secrets that resolved, as [`resolve`] returns them.
    pub value: Value,
    /// The secrets whose variable or file is missing ([`SecretErrorKind::Missing`]).
    pub missing: Vec<SecretError>,
}

/// [`resolve`], except that missing variables and files are set aside in
/// [`Resolved::missing`]; every other failure (a refused file, an empty value, a broken
/// template) is still an error of the workspace.
pub fn resolve_available(
    secrets: &Map<SecretValue>,
    env: &BTreeMap<String, String>,
    secret_file_dirs: &[PathBuf],
    refused_files: &[PathBuf],
) -> Result<Resolved, Vec<SecretError>> {
    let (value, errors) = resolve_all(secrets, env, secret_file_dirs, refused_files);
    let (missing, errors): (Vec<_>, Vec<_>) = errors
        .into_iter()
        .partition(|error| error.kind == SecretErrorKind::Missing);
    if errors.is_empty() {
        Ok(Resolved { value, missing })
    } else {
        Err(errors)
    }
}

/// The missing secrets that jobs of `task` would read, directly or through a child task or a
/// hook ([`crate::workflow::reach`]): such a job is refused at creation.
pub fn missing_for_task<'m>(
    def: &WorkspaceDef,
    task: &str,
    missing: &'m [SecretError],
    templates: &Templates,
) -> Vec<&'m SecretError> {
    if missing.is_empty() {
        return Vec::new();
    }
    let used = crate::workflow::reach::secrets_used(def, task, templates);
    missing
        .iter()
        .filter(|error| used.uses(&error.name))
        .collect()
}

/// The message of a job refused for missing secrets, naming each with its cause.
pub fn refusal(missing: &[&SecretError]) -> String {
    let named: Vec<String> = missing.iter().map(ToString::to_string).collect();
    format!(
        "the task uses {} that cannot be resolved: {}",
        if missing.len() == 1 {
            "a secret"
        } else {
            "secrets"
        },
        named.join("; ")
    )
}

/// Every secret that resolved, and every one that did not.
fn resolve_all(
    secrets: &Map<SecretValue>,
    env: &BTreeMap<String, String>,
    secret_file_dirs: &[PathBuf],
    refused_files: &[PathBuf],
) -> (Value, Vec<SecretError>) {
    let visible: BTreeMap<String, String> = env
        .iter()
        .filter(|(name, _)| !name.starts_with("STROEM"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let files = FileGate {
        // Directories that do not exist cannot contain anything; dropping them here keeps the
        // containment check a plain prefix test on canonical paths.
        dirs: secret_file_dirs
            .iter()
            .filter_map(|dir| dir.canonicalize().ok())
            .collect(),
        refused: refused_files
            .iter()
            .filter_map(|file| file.canonicalize().ok())
            .collect(),
        configured: secret_file_dirs.to_vec(),
        last_failure: RefCell::new(None),
    };
    let mut resolver = Resolver {
        templates: Templates::new(),
        env: visible,
        files,
        errors: Vec::new(),
    };
    let resolved = resolver.map(secrets, "");
    (resolved, resolver.errors)
}

struct Resolver {
    templates: Templates,
    env: BTreeMap<String, String>,
    files: FileGate,
    errors: Vec<SecretError>,
}

impl Resolver {
    fn map(&mut self, secrets: &Map<SecretValue>, prefix: &str) -> Value {
        let mut object = serde_json::Map::new();
        for (key, secret) in secrets {
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            let value = match secret {
                SecretValue::Map(nested) => self.map(nested, &name),
                SecretValue::Template(template) => match self.one(template) {
                    Ok(value) => Value::String(value),
                    Err((kind, message)) => {
                        self.errors.push(SecretError {
                            name,
                            kind,
                            message,
                        });
                        continue;
                    }
                },
            };
            object.insert(key.clone(), value);
        }
        Value::Object(object)
    }

    fn one(&self, template: &str) -> Result<String, (SecretErrorKind, String)> {
        let value = if is_template(template) {
            self.files.last_failure.replace(None);
            let read = |path: &str| self.files.read(path);
            self.templates
                .render_secret(template, &self.env, &read)
                .map_err(|err| self.classify(err.message))?
        } else {
            template.to_owned()
        };
        if value.is_empty() {
            return Err((
                SecretErrorKind::Empty,
                "resolved to an empty value".to_owned(),
            ));
        }
        Ok(value)
    }

    /// Sorts a render error into missing input (env variable, file) or a refused file, both of
    /// which Strøm itself worded, and everything else.
    fn classify(&self, message: String) -> (SecretErrorKind, String) {
        if let Some((kind, failure)) = self.files.last_failure.borrow().as_ref()
            && *failure == message
        {
            return (*kind, message);
        }
        let unset = message
            .strip_prefix("undefined value 'env.")
            .and_then(|rest| rest.strip_suffix('\''));
        match unset {
            Some(name) => (
                SecretErrorKind::Missing,
                format!("environment variable '{name}' is not set"),
            ),
            None => (SecretErrorKind::Template, message),
        }
    }
}

/// The checks `file(path)` goes through.
struct FileGate {
    /// Canonical secret file directories.
    dirs: Vec<PathBuf>,
    /// Canonical paths of files the server configuration reads.
    refused: BTreeSet<PathBuf>,
    /// The directories as configured, for messages.
    configured: Vec<PathBuf>,
    /// The last failure and its kind, so the resulting render error can be classified.
    last_failure: RefCell<Option<(SecretErrorKind, String)>>,
}

impl FileGate {
    fn read(&self, path: &str) -> Result<String, String> {
        self.check_and_read(path).map_err(|(kind, message)| {
            self.last_failure.replace(Some((kind, message.clone())));
            message
        })
    }

    fn check_and_read(&self, path: &str) -> Result<String, (SecretErrorKind, String)> {
        let refused = |message: String| (SecretErrorKind::Refused, message);
        let missing = |message: String| (SecretErrorKind::Missing, message);
        if !Path::new(path).is_absolute() {
            return Err(refused(format!(
                "file('{path}'): the path must be absolute"
            )));
        }
        let canonical = Path::new(path).canonicalize().map_err(|e| match e.kind() {
            IoErrorKind::NotFound => missing(format!("file '{path}' does not exist")),
            _ => missing(format!("file '{path}' cannot be read: {e}")),
        })?;
        if !self.dirs.iter().any(|dir| canonical.starts_with(dir)) {
            let dirs = self
                .configured
                .iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(refused(format!(
                "file '{path}' is outside the secret file directories ({dirs})"
            )));
        }
        if self.refused.contains(&canonical) {
            return Err(refused(format!(
                "file '{path}' is refused: the server's own configuration reads it"
            )));
        }
        let content = std::fs::read_to_string(&canonical)
            .map_err(|e| missing(format!("file '{path}' cannot be read: {e}")))?;
        let content = content
            .strip_suffix("\r\n")
            .or_else(|| content.strip_suffix('\n'))
            .unwrap_or(&content);
        Ok(content.to_owned())
    }
}

/// Dotted names of secrets too short to be masked, for the load-time warning (WF §16.3).
pub fn unmaskable(resolved: &Value) -> Vec<String> {
    let mut names = Vec::new();
    collect_short(resolved, "", &mut names);
    names
}

fn collect_short(value: &Value, name: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let path = if name.is_empty() {
                    key.clone()
                } else {
                    format!("{name}.{key}")
                };
                collect_short(item, &path, out);
            }
        }
        Value::String(s) if !crate::mask::is_maskable(s) => out.push(name.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
