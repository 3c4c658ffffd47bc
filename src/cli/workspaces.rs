//! `stroem workspaces`: the server's workspaces (API §3.2), one row each.

use serde_json::Value;

use super::Global;
use super::client::{ClientError, exit};
use super::render::{Style, Table};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, global: &Global) -> Result<u8, ClientError> {
    let reply = global.client()?.get("/api/workspaces", &[])?;
    if global.json() {
        super::out::line(&reply.body);
        return Ok(exit::OK);
    }
    let workspaces: Vec<Value> = reply.parse()?;
    super::out::print(render(&workspaces, Style::detect()));
    Ok(exit::OK)
}

/// The table of workspaces; the items are API §2.1 objects, read by field name.
pub fn render(workspaces: &[Value], style: Style) -> String {
    if workspaces.is_empty() {
        return "no workspaces\n".to_owned();
    }
    let mut table = Table::new(&[
        "NAME", "STATUS", "REVISION", "TASKS", "ACTIONS", "TRIGGERS", "SOURCE",
    ]);
    for workspace in workspaces {
        let text = |key: &str| field(workspace, key);
        let status = text("status");
        let revision: String = text("revision").chars().take(12).collect();
        let source = workspace.get("source").map_or_else(String::new, |source| {
            match (field(source, "type"), field(source, "path")) {
                (kind, path) if path == "-" => kind,
                (kind, path) => format!("{kind} {path}"),
            }
        });
        table.styled_row(vec![
            plain(text("name")),
            (status.clone(), style.status(&status)),
            plain(revision),
            plain(text("tasks_count")),
            plain(text("actions_count")),
            plain(text("triggers_count")),
            plain(source),
        ]);
    }
    let mut output = table.render(style);
    for workspace in workspaces {
        for error in workspace
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            output.push_str(&format!(
                "{}: {}:{}: {}\n",
                field(workspace, "name"),
                field(error, "file"),
                field(error, "line"),
                field(error, "message")
            ));
        }
        // A missing secret changes which tasks run (WF §16.1): say which, whatever else warns.
        for warning in workspace
            .get("warnings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|warning| field(warning, "code") == "secret-unresolved")
        {
            output.push_str(&format!(
                "{}: warning: {}\n",
                field(workspace, "name"),
                field(warning, "message")
            ));
        }
    }
    output
}

/// A field shown as text: strings as they are, numbers printed, null or absent as `-`.
pub fn field(object: &Value, key: &str) -> String {
    match object.get(key) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

pub fn plain(text: String) -> (String, String) {
    (text.clone(), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_secret_is_named_under_the_table() {
        let workspaces = [serde_json::json!({
            "name": "default", "status": "ok", "revision": "0123456789abcdef",
            "tasks_count": 2, "actions_count": 0, "triggers_count": 0,
            "source": {"type": "folder", "path": "/ws"}, "errors": [],
            "warnings": [
                {"code": "short-secret", "message": "secret 'PIN' is short"},
                {"code": "secret-unresolved",
                 "message": "secret 'TOKEN': environment variable 'TOKEN' is not set"},
            ],
        })];
        let text = render(&workspaces, Style::plain());
        assert!(
            text.ends_with(
                "default: warning: secret 'TOKEN': environment variable 'TOKEN' is not set\n"
            ),
            "{text}"
        );
        assert!(!text.contains("PIN"), "{text}");
    }
}
