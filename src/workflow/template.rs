//! Templating (WF §12): minijinja with Strøm's filters, typed single-expression values, and
//! static analysis of what a template references.
//!
//! CONTRACT (signatures other modules build on; the implementation owner may add to them but
//! must not change these without telling the integrator).

use serde::Serialize;
use serde_json::Value;

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
}

/// Whether a string is a template at all (contains `{{` or `{%`).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The shared template environment. Cheap to clone; build once and reuse.
#[derive(Clone)]
pub struct Templates {
    _private: (),
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

impl Templates {
    pub fn new() -> Self {
        Templates { _private: () }
    }

    /// Renders `template` with `context` (a JSON object of root variables). A template that is
    /// exactly one `{{ expr }}` (surrounding whitespace allowed) keeps the JSON type of its result;
    /// anything else renders to a string (WF §12.1). Undefined variables are errors.
    pub fn render(&self, template: &str, context: &Value) -> Result<Value, TemplateError> {
        let _ = (template, context);
        Err(unbuilt())
    }

    /// Renders to text: strings verbatim, numbers/booleans as JSON text, `null` as "",
    /// objects and arrays as compact JSON.
    pub fn render_string(&self, template: &str, context: &Value) -> Result<String, TemplateError> {
        let _ = (template, context);
        Err(unbuilt())
    }

    /// Renders every string leaf of `value` (at any depth) with [`Templates::render`].
    pub fn render_tree(&self, value: &Value, context: &Value) -> Result<Value, TemplateError> {
        let _ = (value, context);
        Err(unbuilt())
    }

    /// Evaluates a `when` condition (WF §10.2): one expression → JSON truthiness; otherwise the
    /// rendered text, trimmed, is false when empty or `false|0|null|none|no` (any case).
    pub fn condition(&self, template: &str, context: &Value) -> Result<bool, TemplateError> {
        let _ = (template, context);
        Err(unbuilt())
    }

    /// Parses `template` without rendering it and reports what it references.
    pub fn analyze(&self, template: &str) -> Result<Analysis, TemplateError> {
        let _ = template;
        Err(unbuilt())
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
        let _ = (template, env, read_file);
        Err(unbuilt())
    }
}

fn unbuilt() -> TemplateError {
    TemplateError {
        message: "templating is not built yet".to_owned(),
        line: None,
        column: None,
    }
}
