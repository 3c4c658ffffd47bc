//! `stroem status <job-id>`: one job and a table of its steps (API §3.4).

use chrono::{DateTime, Utc};

use super::Global;
use super::client::{Client, ClientError, exit};
use super::render::{self, Style, Table};
use crate::api::{JobDetail, JobRef};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's id: in full, the 8 characters the UI shows, or any longer start or end of it.
    #[arg(value_name = "JOB_ID")]
    pub job_id: JobRef,
}

pub fn run(args: Args, global: &Global) -> Result<u8, ClientError> {
    let reply = fetch(&global.client()?, &args.job_id)?;
    if global.json() {
        super::out::line(&reply.body);
        return Ok(exit::OK);
    }
    let job: JobDetail = reply.parse()?;
    super::out::print(render(&job, Style::detect(), Utc::now()));
    Ok(exit::OK)
}

/// `GET /api/jobs/{id}`.
pub fn fetch(
    client: &Client,
    job_id: impl std::fmt::Display,
) -> Result<super::client::Reply, ClientError> {
    client.get(&format!("/api/jobs/{job_id}"), &[])
}

/// The job's fields, then its steps.
pub fn render(job: &JobDetail, style: Style, now: DateTime<Utc>) -> String {
    let summary = &job.summary;
    let status = summary.status.as_str();
    let source = match &summary.source_id {
        Some(id) => format!("{} ({id})", summary.source_type),
        None => summary.source_type.clone(),
    };
    let mut rows = vec![
        ("job", summary.job_id.to_string()),
        (
            "task",
            format!("{}/{}", summary.workspace, summary.task_name),
        ),
        ("status", style.status(status)),
        ("source", source),
        ("created", render::time(Some(summary.created_at))),
        ("started", render::time(summary.started_at)),
        ("finished", render::time(summary.completed_at)),
        (
            "duration",
            render::duration(summary.started_at, summary.completed_at, now),
        ),
    ];
    if let Some(parent) = summary.parent_job_id {
        rows.push(("parent", parent.to_string()));
    }
    if let Some(error) = &summary.error {
        rows.push(("error", style.stderr_line(error)));
    }
    if !job.output.is_null() {
        rows.push(("output", job.output.to_string()));
    }
    let mut text = String::new();
    for (label, value) in rows {
        text.push_str(&format!("{:<9} {value}\n", style.bold(label)));
    }
    if job.steps.is_empty() {
        return text;
    }
    text.push('\n');
    let mut table = Table::new(&["STEP", "STATUS", "ATTEMPT", "DURATION", "ERROR"]);
    for step in &job.steps {
        let status = step.status.as_str();
        let error = step.error_message.clone().unwrap_or_default();
        table.styled_row(vec![
            plain(step.step_name.clone()),
            (status.to_owned(), style.status(status)),
            plain(format!("{}/{}", step.attempt, step.max_attempts)),
            plain(render::duration(step.started_at, step.completed_at, now)),
            (error.clone(), style.stderr_line(&error)),
        ]);
    }
    text.push_str(&table.render(style));
    text
}

fn plain(text: String) -> (String, String) {
    (text.clone(), text)
}
