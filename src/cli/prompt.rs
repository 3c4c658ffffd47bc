//! The terminal prompt of `stroem run` for approval steps (API §9.2): the message, approve or
//! reject, then the approver's form field by field, on stderr, answers read from stdin.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::local::approve::{ApprovalAnswer, ApprovalRequest, Approver};

/// An approver asking on this terminal, or `None` when stdin or stderr is no terminal (the
/// step then fails, as API §9.2 says). `name` is recorded as the approver.
pub fn terminal_approver(name: String) -> Option<Approver> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return None;
    }
    Some(Approver {
        name,
        ask: Arc::new(|request| {
            ask(
                request,
                &mut std::io::stdin().lock(),
                &mut std::io::stderr(),
            )
        }),
    })
}

/// One question and its answer; end of input reads as an empty answer.
fn question(input: &mut dyn BufRead, out: &mut dyn Write, text: &str) -> String {
    let _ = write!(out, "{text}");
    let _ = out.flush();
    let mut line = String::new();
    let _ = input.read_line(&mut line);
    line.trim_end_matches(['\r', '\n']).to_owned()
}

/// Asks one approval on `out`, reading answers from `input`.
pub(crate) fn ask(
    request: &ApprovalRequest,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> ApprovalAnswer {
    let _ = writeln!(out, "\nstep '{}' waits for approval:", request.step);
    for line in request.message.lines() {
        let _ = writeln!(out, "  {line}");
    }
    for problem in &request.problems {
        let _ = writeln!(out, "  refused: {problem}");
    }
    let answer = question(input, out, "approve? [y/N] ");
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        let reason = question(input, out, "reason (optional): ");
        let reason = reason.trim();
        return ApprovalAnswer::Reject((!reason.is_empty()).then(|| reason.to_owned()));
    }
    let mut values = Map::new();
    for (name, field) in request.fields.iter().flatten() {
        let prefilled = request.prefill.get(name).filter(|value| !value.is_null());
        let hint = match prefilled {
            Some(value) => format!(" [{}]", compact(value)),
            None if field.required => " (required)".to_owned(),
            None => String::new(),
        };
        let label = field.name.as_deref().unwrap_or(name);
        let text = question(input, out, &format!("  {label}{hint}: "));
        if text.trim().is_empty() {
            continue;
        }
        // A value that parses as JSON is taken as JSON (`3`, `true`), like `--set`.
        let value = serde_json::from_str(text.trim()).unwrap_or(Value::String(text));
        values.insert(name.clone(), value);
    }
    ApprovalAnswer::Approve(Value::Object(values))
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> ApprovalRequest {
        let fields = serde_json::from_value(json!({
            "ticket": {"type": "string", "name": null, "description": null, "required": true,
                       "default": null, "options": null, "allow_custom": false,
                       "multiple": false, "secret": false, "order": null},
        }))
        .expect("schema");
        ApprovalRequest {
            step: "confirm".to_owned(),
            message: "Deploy 1.4?".to_owned(),
            fields: Some(fields),
            prefill: json!({}),
            problems: Vec::new(),
        }
    }

    #[test]
    fn yes_then_the_form_approves_with_its_values() {
        let mut out = Vec::new();
        let answer = ask(&request(), &mut &b"y\nCHG-1\n"[..], &mut out);
        assert_eq!(answer, ApprovalAnswer::Approve(json!({"ticket": "CHG-1"})));
        let shown = String::from_utf8(out).expect("utf-8");
        assert!(shown.contains("Deploy 1.4?"), "{shown}");
        assert!(shown.contains("ticket (required): "), "{shown}");
    }

    #[test]
    fn anything_but_yes_rejects_with_the_reason() {
        let answer = ask(&request(), &mut &b"n\nwrong version\n"[..], &mut Vec::new());
        assert_eq!(
            answer,
            ApprovalAnswer::Reject(Some("wrong version".to_owned()))
        );
        let answer = ask(&request(), &mut &b""[..], &mut Vec::new());
        assert_eq!(answer, ApprovalAnswer::Reject(None));
    }
}
