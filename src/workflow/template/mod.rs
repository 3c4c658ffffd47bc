//! Templating (WF §12): minijinja with Strøm's filters, typed single-expression values, and
//! static analysis of what a template references.
//!
//! One [`Templates`] value holds the configured minijinja environment: strict undefined values
//! (an undefined variable is an error naming it; `default` and `is defined` still accept
//! undefined), no autoescaping, trailing newlines kept, and a formatter that writes values with
//! the §12.1 text rules instead of minijinja's Python-like representation. Context values are
//! converted from JSON as data, so text substituted into a template is never rendered again.
//!
//! CONTRACT (signatures other modules build on; the implementation owner may add to them but
//! must not change these without telling the integrator).

mod analyze;
mod convert;
mod error;
mod filters;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use minijinja::machinery::parse;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value as JinjaValue;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value;

pub use filters::quote_shell_word;

/// A template failed to parse or render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// One sentence, naming the undefined variable, unknown filter, syntax problem, …
    pub message: String,
    /// 1-based line inside the template text, when known.
    pub line: Option<u32>,
    /// 1-based column inside the template text, when known.
    pub column: Option<u32>,
}

/// A variable reference found by static analysis: `say_hello.output.greeting` has root
/// `say_hello` and path `["output", "greeting"]`; `input['release-tag']` has root `input` and
/// path `["release-tag"]`. The path stops at the first non-constant subscript.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Reference {
    pub root: String,
    pub path: Vec<String>,
}

/// What a template uses, found without rendering it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// Free variables (loop variables and `{% set %}` names excluded), deduplicated, sorted.
    pub references: Vec<Reference>,
    /// Filters and tests applied that neither minijinja nor Strøm defines.
    pub unknown_filters: Vec<String>,
    /// Functions called that are not defined in the analysed context.
    pub unknown_functions: Vec<String>,
    /// Lookup chains that `default`/`d` is applied to and that go two or more steps below a
    /// value that may be missing (`input.body.pusher.name | default('x')`), each as
    /// `(parent, last)` (`input.body.pusher`, `name`): `default` guards only the last lookup,
    /// so the template fails when the parent is missing (issue #15).
    pub unguarded_defaults: Vec<(String, String)>,
    /// Values written out with `{{ … }}` without `shell_quote` (or another filter whose result
    /// is safe in a shell: `int`, `float`, `length`, `b64encode`), each named by the lookup it
    /// writes (`input.name`): in a shell script such a value is code (issue #15).
    pub unquoted: Vec<Reference>,
}

/// Whether a string is a template at all (contains `{{` or `{%`).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The shared template environment. Cheap to clone; build once and reuse.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
    syntax: SyntaxConfig,
    /// Functions minijinja defines globally (`range`, `dict`, `namespace`, …).
    functions: Arc<HashSet<String>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// How many distinct `file()` paths one secret template may read.
const MAX_SECRET_FILES: usize = 32;

impl Templates {
    pub fn new() -> Self {
        let syntax = SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are a valid syntax");
        let mut env = Environment::new();
        env.set_syntax(syntax.clone());
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        // Debug mode makes minijinja remember where an undefined value came from, which is what
        // lets errors say `undefined variable 'foo'` instead of just `undefined value`.
        env.set_debug(true);
        env.set_formatter(|out, _state, value| {
            out.write_str(&convert::text(value))
                .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write template output"))
        });
        filters::register(&mut env);
        let functions = env.globals().map(|(name, _)| name.to_owned()).collect();
        Templates {
            env: Arc::new(env),
            syntax,
            functions: Arc::new(functions),
        }
    }

    /// Renders `template` with `context` (a JSON object of root variables). A template that is
    /// exactly one `{{ expr }}` (surrounding whitespace allowed) keeps the JSON type of its result;
    /// anything else renders to a string (WF §12.1). Undefined variables are errors.
    pub fn render(&self, template: &str, context: &Value) -> Result<Value, TemplateError> {
        self.render_in(&self.env, template, &convert::to_jinja(context))
    }

    /// Renders to text: strings verbatim, numbers/booleans as JSON text, `null` as "",
    /// objects and arrays as compact JSON.
    pub fn render_string(&self, template: &str, context: &Value) -> Result<String, TemplateError> {
        text_in(&self.env, template, &convert::to_jinja(context))
    }

    /// Renders every string leaf of `value` (at any depth) with [`Templates::render`].
    pub fn render_tree(&self, value: &Value, context: &Value) -> Result<Value, TemplateError> {
        let context = convert::to_jinja(context);
        self.render_leaves(value, &context)
    }

    fn render_leaves(&self, value: &Value, context: &JinjaValue) -> Result<Value, TemplateError> {
        Ok(match value {
            Value::String(template) => self.render_in(&self.env, template, context)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.render_leaves(item, context))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, item)| Ok((key.clone(), self.render_leaves(item, context)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Evaluates a `when` condition (WF §10.2): one expression → JSON truthiness; otherwise the
    /// rendered text, trimmed, is false when empty or `false|0|null|none|no` (any case).
    pub fn condition(&self, template: &str, context: &Value) -> Result<bool, TemplateError> {
        let context = convert::to_jinja(context);
        if single_expression(template).is_some() {
            let value = self.render_in(&self.env, template, &context)?;
            return Ok(convert::json_truthy(&value));
        }
        let text = text_in(&self.env, template, &context)?;
        let text = text.trim().to_ascii_lowercase();
        Ok(!matches!(
            text.as_str(),
            "" | "false" | "0" | "null" | "none" | "no"
        ))
    }

    /// Whether `name` is a function minijinja defines globally (`range`, `dict`, …): a context
    /// variable of that name shadows it.
    pub fn is_global(&self, name: &str) -> bool {
        self.functions.contains(name)
    }

    /// Parses `template` without rendering it and reports what it references.
    pub fn analyze(&self, template: &str) -> Result<Analysis, TemplateError> {
        self.analyze_with(template, &[])
    }

    /// [`Templates::analyze`] for a `secrets:` value, where `file(path)` is a known function.
    pub fn analyze_secret(&self, template: &str) -> Result<Analysis, TemplateError> {
        self.analyze_with(template, &["file"])
    }

    fn analyze_with(&self, template: &str, extra: &[&str]) -> Result<Analysis, TemplateError> {
        let ast = parse(template, "<template>", self.syntax.clone())
            .map_err(|err| TemplateError::from_jinja(&err, template))?;
        let probe = self
            .env
            .template_from_str("")
            .map_err(|err| TemplateError::from_jinja(&err, ""))?;
        let mut known = KnownNames {
            state: probe.new_state(),
            functions: &self.functions,
            extra,
        };
        Ok(analyze::analyze(&ast, &mut known))
    }

    /// Renders a `secrets:` value (WF §16.1): `env` is the server environment (names starting
    /// with `STROEM` already removed by the caller), `file(path)` calls `read_file`, which
    /// returns the content or an error message.
    pub fn render_secret(
        &self,
        template: &str,
        env: &std::collections::BTreeMap<String, String>,
        read_file: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<String, TemplateError> {
        if !is_template(template) {
            return Ok(template.to_owned());
        }
        // minijinja functions must be 'static, so `file()` cannot call `read_file` directly.
        // It answers from `files` and records a path it has not seen; the render is then
        // repeated after `read_file` has supplied that path. Rendering is pure, so each pass
        // takes the same course up to the first new path.
        let files = Arc::new(Mutex::new(SecretFiles::default()));
        let mut secret_env = (*self.env).clone();
        let shared = Arc::clone(&files);
        secret_env.add_function("file", move |path: String| -> Result<String, Error> {
            let mut files = shared.lock().unwrap_or_else(PoisonError::into_inner);
            match files.read.get(&path) {
                Some(Ok(content)) => Ok(content.clone()),
                Some(Err(message)) => Err(Error::new(ErrorKind::InvalidOperation, message.clone())),
                None => {
                    files.pending = Some(path.clone());
                    Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("file('{path}') has not been read"),
                    ))
                }
            }
        });
        let context = JinjaValue::from_pairs([(
            "env",
            JinjaValue::from_pairs(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        )]);
        loop {
            let result = text_in(&secret_env, template, &context);
            let mut files = files.lock().unwrap_or_else(PoisonError::into_inner);
            match (result, files.pending.take()) {
                (Err(_), Some(path)) if files.read.len() < MAX_SECRET_FILES => {
                    let content = read_file(&path);
                    files.read.insert(path, content);
                }
                (result, _) => return result,
            }
        }
    }

    /// Renders with the typed-value rule in `env` (the shared one, or the secrets one).
    fn render_in(
        &self,
        env: &Environment<'static>,
        template: &str,
        context: &JinjaValue,
    ) -> Result<Value, TemplateError> {
        if !is_template(template) {
            return Ok(Value::String(template.to_owned()));
        }
        let Some(expr) = single_expression(template) else {
            return text_in(env, template, context).map(Value::String);
        };
        let evaluated = env
            .compile_expression_owned(expr.to_owned())
            .and_then(|compiled| compiled.eval(context.clone()));
        match evaluated {
            Ok(value) if !value.is_undefined() => Ok(convert::to_json(&value)),
            // Expression evaluation does not reject an undefined result and positions errors
            // inside the bare expression. Rendering the template as text reports either with
            // the template's own line and column; an undefined result that renders fine was a
            // deliberate "nothing" (`{{ x if false }}`) and is null.
            other => match text_in(env, template, context) {
                Err(err) => Err(err),
                Ok(_) => match other {
                    Err(err) => Err(TemplateError::from_jinja(&err, expr)),
                    Ok(_) => Ok(Value::Null),
                },
            },
        }
    }
}

/// Renders `template` to text in `env`.
fn text_in(
    env: &Environment<'static>,
    template: &str,
    context: &JinjaValue,
) -> Result<String, TemplateError> {
    if !is_template(template) {
        return Ok(template.to_owned());
    }
    env.render_str(template, context.clone())
        .map_err(|err| TemplateError::from_jinja(&err, template))
}

/// The expression of a template that is exactly one `{{ expr }}` with only whitespace around it,
/// whitespace-control markers (`{{-`, `-}}`) removed.
fn single_expression(template: &str) -> Option<&str> {
    let inner = template.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    let nested = ["{{", "}}", "{%", "%}", "{#", "#}"];
    if nested.iter().any(|marker| inner.contains(marker)) || inner.trim().is_empty() {
        return None;
    }
    Some(inner)
}

#[derive(Default)]
struct SecretFiles {
    read: BTreeMap<String, Result<String, String>>,
    pending: Option<String>,
}

/// Answers "is this defined?" for the analysis by asking minijinja itself: applying a filter or
/// test that does not exist fails with `UnknownFilter`/`UnknownTest`, whatever the arguments.
struct KnownNames<'a, 'env> {
    state: minijinja::State<'a, 'env>,
    functions: &'a HashSet<String>,
    extra: &'a [&'a str],
}

impl analyze::Known for KnownNames<'_, '_> {
    fn is_filter(&mut self, name: &str) -> bool {
        !matches!(self.state.apply_filter(name, &[]), Err(err) if err.kind() == ErrorKind::UnknownFilter)
    }

    fn is_test(&mut self, name: &str) -> bool {
        !matches!(self.state.perform_test(name, &[]), Err(err) if err.kind() == ErrorKind::UnknownTest)
    }

    fn is_function(&mut self, name: &str) -> bool {
        self.functions.contains(name) || self.extra.contains(&name)
    }
}
