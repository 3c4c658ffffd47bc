//! `stroem jobs`: recent jobs, newest first (API §3.4).

use chrono::{DateTime, Utc};

use super::Global;
use super::client::{ClientError, exit};
use super::render::{self, Style, Table};
use crate::api::JobSummary;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only jobs of this workspace (`default` when `--task` is given without it).
    #[arg(short = 'w', long = "workspace", value_name = "WS")]
    pub workspace: Option<String>,
    /// Only jobs of this task.
    #[arg(long = "task", value_name = "NAME")]
    pub task: Option<String>,
    /// Only jobs with one of these statuses (comma-separated).
    #[arg(long = "status", value_name = "S[,S…]", value_parser = status_list)]
    pub status: Option<String>,
    /// At most this many jobs.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
    /// Skip this many of the newest jobs.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

/// `--status` is checked here, so a typo is a usage error (exit 2) naming the valid statuses.
fn status_list(text: &str) -> Result<String, String> {
    crate::api::query::parse_statuses(text)
        .map(|_| text.to_owned())
        .map_err(|error| error.message)
}

pub fn run(args: Args, global: &Global) -> Result<u8, ClientError> {
    let mut query = vec![
        ("limit", args.limit.to_string()),
        ("offset", args.offset.to_string()),
    ];
    let workspace = match (&args.workspace, &args.task) {
        (Some(workspace), _) => Some(workspace.clone()),
        // The API filters by task only within a workspace.
        (None, Some(_)) => Some("default".to_owned()),
        (None, None) => None,
    };
    if let Some(workspace) = workspace {
        query.push(("workspace", workspace));
    }
    if let Some(task) = args.task {
        query.push(("task_name", task));
    }
    if let Some(status) = args.status {
        query.push(("status", status));
    }
    let reply = global.client()?.get("/api/jobs", &query)?;
    if global.json() {
        super::out::line(&reply.body);
        return Ok(exit::OK);
    }
    let jobs: Vec<JobSummary> = reply.parse()?;
    let style = Style::detect();
    super::out::print(render(&jobs, style, Utc::now()));
    if let Some(total) = reply.total {
        let shown = jobs.len() as u64;
        if total > shown {
            let first = args.offset + u64::from(shown > 0);
            let last = args.offset + shown;
            super::out::line(format_args!(
                "{}",
                style.dim(&format!(
                    "{first}–{last} of {total} jobs (--offset {last} for more)"
                ))
            ));
        }
    }
    Ok(exit::OK)
}

/// The table of jobs.
pub fn render(jobs: &[JobSummary], style: Style, now: DateTime<Utc>) -> String {
    if jobs.is_empty() {
        return "no jobs\n".to_owned();
    }
    let mut table = Table::new(&[
        "JOB",
        "WORKSPACE",
        "TASK",
        "STATUS",
        "SOURCE",
        "CREATED",
        "DURATION",
    ]);
    for job in jobs {
        let status = job.status.as_str();
        // WF §8, §13.1 [P2]: a queued job's place, a retry's attempt.
        let mut note = String::new();
        if let Some(position) = job.queue_position {
            note.push_str(&format!(" (queued #{position})"));
        }
        if job.retry_attempt > 1 {
            note.push_str(&format!(" (retry #{})", job.retry_attempt));
        }
        table.styled_row(vec![
            plain(job.job_id.to_string()),
            plain(job.workspace.clone()),
            plain(job.task_name.clone()),
            (
                format!("{status}{note}"),
                format!("{}{note}", style.status(status)),
            ),
            plain(job.source_type.clone()),
            plain(render::time(Some(job.created_at))),
            plain(render::duration(job.started_at, job.completed_at, now)),
        ]);
    }
    table.render(style)
}

fn plain(text: String) -> (String, String) {
    (text.clone(), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_jobs_and_retries_are_marked() {
        let jobs: Vec<JobSummary> = serde_json::from_value(serde_json::json!([
            {"job_id": uuid::Uuid::from_u128(1), "workspace": "default", "task_name": "deploy",
             "mode": "distributed", "status": "pending", "source_type": "api", "source_id": null,
             "revision": "r", "priority": 0, "parent_job_id": null, "retry_of_job_id": null,
             "retry_attempt": 1, "queue_position": 2, "created_at": "2026-03-01T12:00:00.000Z",
             "started_at": null, "completed_at": null, "error": null},
            {"job_id": uuid::Uuid::from_u128(2), "workspace": "default", "task_name": "sync",
             "mode": "distributed", "status": "running", "source_type": "retry",
             "source_id": null, "revision": "r", "priority": 0, "parent_job_id": null,
             "retry_of_job_id": uuid::Uuid::from_u128(3), "retry_attempt": 3,
             "created_at": "2026-03-01T12:00:00.000Z", "started_at": null,
             "completed_at": null, "error": null},
        ]))
        .expect("job summaries");
        let text = render(&jobs, Style::plain(), Utc::now());
        assert!(text.contains("pending (queued #2)"), "{text}");
        assert!(text.contains("running (retry #3)"), "{text}");
    }
}
