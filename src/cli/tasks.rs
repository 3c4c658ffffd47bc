//! `stroem tasks [-w WS]`: the tasks of one workspace, or of all of them (API §3.3).

use serde_json::Value;

use super::Global;
use super::client::{ClientError, exit, segment};
use super::render::{Style, Table};
use super::workspaces::field;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this workspace's tasks (default: all workspaces).
    #[arg(short = 'w', long = "workspace", value_name = "WS")]
    pub workspace: Option<String>,
}

pub fn run(args: Args, global: &Global) -> Result<u8, ClientError> {
    let client = global.client()?;
    let reply = match &args.workspace {
        Some(workspace) => client.get(
            &format!("/api/workspaces/{}/tasks", segment(workspace)),
            &[],
        )?,
        None => client.get("/api/tasks", &[])?,
    };
    if global.json() {
        super::out::line(&reply.body);
        return Ok(exit::OK);
    }
    let tasks: Vec<Value> = reply.parse()?;
    super::out::print(render(&tasks, Style::detect()));
    Ok(exit::OK)
}

/// The table of tasks (API §2.2 summaries, read by field name).
pub fn render(tasks: &[Value], style: Style) -> String {
    if tasks.is_empty() {
        return "no tasks\n".to_owned();
    }
    let mut table = Table::new(&[
        "WORKSPACE",
        "TASK",
        "FOLDER",
        "MODE",
        "TRIGGERS",
        "DESCRIPTION",
    ]);
    for task in tasks {
        let triggers = task.get("has_triggers").and_then(Value::as_bool) == Some(true);
        let description = field(task, "description");
        // Only the first line of a long description fits a row.
        let description = description.lines().next().unwrap_or_default().to_owned();
        table.row(vec![
            field(task, "workspace"),
            field(task, "name"),
            field(task, "folder"),
            field(task, "mode"),
            if triggers { "yes" } else { "no" }.to_owned(),
            description,
        ]);
    }
    table.render(style)
}
