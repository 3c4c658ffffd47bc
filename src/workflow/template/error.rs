//! Turns minijinja errors into [`TemplateError`]s users can read: `undefined variable 'foo'`,
//! `unknown filter 'tojsn'`, `syntax error: …`, with a 1-based line and column inside the
//! template text.

use minijinja::ErrorKind;

use super::TemplateError;

impl TemplateError {
    /// An error without a position (raised outside minijinja, e.g. by Strøm's own checks).
    pub fn new(message: impl Into<String>) -> Self {
        TemplateError {
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// The error converted from minijinja's, positioned inside `source`.
    pub(crate) fn from_jinja(err: &minijinja::Error, source: &str) -> Self {
        let (line, column) = position(err, source);
        TemplateError {
            message: message(err),
            line,
            column,
        }
    }
}

fn message(err: &minijinja::Error) -> String {
    let detail = err.detail().unwrap_or_default();
    match err.kind() {
        // Operations on an undefined value (`1 + foo`) fail with their own kind but are best
        // explained by naming the undefined expression.
        ErrorKind::UndefinedError => undefined_message(detail),
        _ if detail.contains("` is undefined") => undefined_message(detail),
        ErrorKind::UnknownFilter => {
            unknown("filter", detail.strip_prefix("filter ").unwrap_or(detail))
        }
        ErrorKind::UnknownTest => unknown("test", detail.strip_prefix("test ").unwrap_or(detail)),
        ErrorKind::UnknownFunction => unknown("function", detail),
        ErrorKind::SyntaxError => format!("syntax error: {detail}"),
        kind if detail.is_empty() => kind.to_string(),
        _ => detail.to_owned(),
    }
}

/// minijinja describes the undefined expression as ``… (`input.x` is undefined)``; the
/// expression is what the user needs to see.
fn undefined_message(detail: &str) -> String {
    let expr = detail
        .split('`')
        .nth(1)
        .filter(|_| detail.contains("` is undefined"));
    match expr {
        Some(name) if is_identifier(name) => format!("undefined variable '{name}'"),
        Some(expr) => format!("undefined value '{expr}'"),
        None if detail.is_empty() => "undefined value".to_owned(),
        None => format!("undefined value: {detail}"),
    }
}

fn unknown(what: &str, detail: &str) -> String {
    match detail.strip_suffix(" is unknown") {
        Some(name) => format!("unknown {what} '{name}'"),
        None if detail.is_empty() => format!("unknown {what}"),
        None => format!("unknown {what}: {detail}"),
    }
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Line from minijinja; column computed from the byte range of the failing span.
fn position(err: &minijinja::Error, source: &str) -> (Option<u32>, Option<u32>) {
    let line = err.line().and_then(|l| u32::try_from(l).ok());
    let Some(range) = err.range() else {
        return (line, None);
    };
    let start = range.start.min(source.len());
    let Some(before) = source.get(..start) else {
        return (line, None);
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_from_range = before.matches('\n').count() + 1;
    (
        Some(u32::try_from(line_from_range).unwrap_or(u32::MAX)),
        u32::try_from(column).ok(),
    )
}
