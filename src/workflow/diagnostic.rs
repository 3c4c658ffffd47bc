//! Validation diagnostics (WF §18.1): what is wrong, where, and how to fix it.
//!
//! Diagnostics are data. The loader and the validator collect every problem of a workspace into
//! one list; `stroem validate` renders it like a compiler and the API returns it as JSON.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// A 1-based position in a workflow file (path relative to the workspace root).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

/// Another place that belongs to a diagnostic: the first definition of a duplicate, the rest of
/// a cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Related {
    pub message: String,
    pub file: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable identifier, e.g. `unknown-key`, `dag-cycle`.
    pub code: String,
    /// One sentence; ends with `did you mean '…'?` where a suggestion exists.
    pub message: String,
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// Field path, e.g. `tasks.deploy.flow.build.depends_on[0]`.
    pub path: String,
    pub related: Vec<Related>,
    /// Longer advice shown under the source line; not part of the one-sentence message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &str, message: impl Into<String>, at: &Location, path: &str) -> Self {
        Self::new(Severity::Error, code, message, at, path)
    }

    pub fn warning(code: &str, message: impl Into<String>, at: &Location, path: &str) -> Self {
        Self::new(Severity::Warning, code, message, at, path)
    }

    fn new(
        severity: Severity,
        code: &str,
        message: impl Into<String>,
        at: &Location,
        path: &str,
    ) -> Self {
        Diagnostic {
            severity,
            code: code.to_owned(),
            message: message.into(),
            file: at.file.clone(),
            line: at.line,
            column: at.column,
            path: path.to_owned(),
            related: Vec::new(),
            help: None,
        }
    }

    pub fn with_related(mut self, message: impl Into<String>, at: &Location) -> Self {
        self.related.push(Related {
            message: message.into(),
            file: at.file.clone(),
            line: at.line,
            column: at.column,
        });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn location(&self) -> Location {
        Location {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
        }
    }
}

/// Sorts diagnostics into the order users read them: by file, line, column, then message.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
    });
}

/// The closest candidate to `name` within edit distance ⌈len/3⌉ (WF §2.2), if any.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = name.chars().count().div_ceil(3);
    candidates
        .into_iter()
        .map(|candidate| (strsim::levenshtein(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_within_a_third_of_the_length() {
        let keys = ["depends_on", "input", "action"];
        assert_eq!(suggest("depend_on", keys), Some("depends_on"));
        assert_eq!(suggest("inptu", keys), Some("input"));
        assert_eq!(suggest("zzz", keys), None);
    }
}
