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
    // WF §8 [P2]: waiting for a slot under the task's `concurrency`.
    if let Some(position) = summary.queue_position {
        rows.push(("queued", format!("#{position} in the task's queue")));
    }
    if summary.priority != 0 {
        rows.push(("priority", summary.priority.to_string()));
    }
    // WF §13.1 [P2]: the task-level retry chain.
    if !job.retry_chain.is_empty() {
        let total = job.retry_chain.len();
        rows.push((
            "attempt",
            format!("{} (chain of {total})", summary.retry_attempt),
        ));
    }
    if let Some(due) = job.retry_due_at {
        rows.push(("retry", format!("due {}", render::time(Some(due)))));
    }
    // A re-run or a restart (docs/restart.md): the job it was made from.
    if let Some(origin) = job.source_job_id {
        let label = if summary.source_type == "restart" {
            "restarts"
        } else {
            "re-runs"
        };
        rows.push((label, origin.to_string()));
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
    if let Some(hooked) = job.hook_of_job_id {
        text.push_str(&format!(
            "{:<9} {hooked} (`stroem status {hooked}`)\n",
            style.bold("hook of")
        ));
    }
    text.push_str(&hook_lines(job, style));
    text.push_str(&chain_lines(job, style));
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
            // A reused step did not run in this job: its output comes from the source job.
            plain(match step.reused_from {
                Some(_) => "reused".to_owned(),
                None => render::duration(step.started_at, step.completed_at, now),
            }),
            (error.clone(), style.stderr_line(&error)),
        ]);
    }
    text.push_str(&table.render(style));
    text
}

/// `hooks` and one line per hook job the job fired: event, task, status, id (issue #15).
pub fn hook_lines(job: &JobDetail, style: Style) -> String {
    let mut text = String::new();
    for (index, hook) in job.hook_jobs.iter().enumerate() {
        let label = if index == 0 { "hooks" } else { "" };
        text.push_str(&format!(
            "{:<9} {} {} {} {}\n",
            style.bold(label),
            hook.event,
            hook.task_name,
            style.status(hook.status.as_str()),
            hook.job_id
        ));
    }
    text
}

/// `retries` and one line per job of the task-level retry chain: attempt, status, id, with
/// this job marked (WF §13.1 [P2]).
pub fn chain_lines(job: &JobDetail, style: Style) -> String {
    let mut text = String::new();
    for (index, link) in job.retry_chain.iter().enumerate() {
        let label = if index == 0 { "retries" } else { "" };
        let this = if link.job_id == job.summary.job_id {
            " (this job)"
        } else {
            ""
        };
        text.push_str(&format!(
            "{:<9} #{} {} {}{this}\n",
            style.bold(label),
            link.retry_attempt,
            style.status(link.status.as_str()),
            link.job_id
        ));
    }
    text
}

fn plain(text: String) -> (String, String) {
    (text.clone(), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_jobs_are_listed_with_their_event_task_status_and_id() {
        let id = uuid::Uuid::nil();
        let job: JobDetail = serde_json::from_value(serde_json::json!({
            "job_id": id, "workspace": "default", "task_name": "deploy", "mode": "distributed",
            "status": "failed", "source_type": "api", "source_id": null, "revision": "r",
            "priority": 0, "parent_job_id": null, "retry_of_job_id": null, "retry_attempt": 1,
            "created_at": "2026-03-01T12:00:00.000Z", "started_at": null, "completed_at": null,
            "error": null, "input": {}, "raw_input": {}, "output": null,
            "parent_step_name": null, "timeout_secs": null, "steps": [],
            "hook_jobs": [{"job_id": "00000000-0000-0000-0000-000000000001",
                           "event": "on_error", "task_name": "_hook:notify",
                           "status": "completed", "completed_at": null}],
        }))
        .expect("job detail");
        let text = render(&job, Style::plain(), Utc::now());
        assert!(
            text.contains(
                "hooks     on_error _hook:notify completed 00000000-0000-0000-0000-000000000001\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_retry_chain_and_a_queue_place_are_shown() {
        let id = uuid::Uuid::from_u128(2);
        let job: JobDetail = serde_json::from_value(serde_json::json!({
            "job_id": id, "workspace": "default", "task_name": "sync", "mode": "distributed",
            "status": "pending", "source_type": "retry",
            "source_id": "00000000-0000-0000-0000-000000000001", "revision": "r",
            "priority": 3, "parent_job_id": null,
            "retry_of_job_id": "00000000-0000-0000-0000-000000000001", "retry_attempt": 2,
            "queue_position": 4,
            "created_at": "2026-03-01T12:00:00.000Z", "started_at": null, "completed_at": null,
            "error": null, "input": {}, "raw_input": {}, "output": null,
            "parent_step_name": null, "timeout_secs": null, "steps": [],
            "retry_chain": [
                {"job_id": "00000000-0000-0000-0000-000000000001", "retry_attempt": 1,
                 "status": "failed", "created_at": "2026-03-01T11:00:00.000Z",
                 "completed_at": "2026-03-01T11:01:00.000Z"},
                {"job_id": id, "retry_attempt": 2, "status": "pending",
                 "created_at": "2026-03-01T12:00:00.000Z", "completed_at": null},
            ],
        }))
        .expect("job detail");
        let text = render(&job, Style::plain(), Utc::now());
        assert!(
            text.contains("queued    #4 in the task's queue\n"),
            "{text}"
        );
        assert!(text.contains("priority  3\n"), "{text}");
        assert!(text.contains("attempt   2 (chain of 2)\n"), "{text}");
        assert!(
            text.contains("retries   #1 failed 00000000-0000-0000-0000-000000000001\n"),
            "{text}"
        );
        assert!(
            text.contains("          #2 pending 00000000-0000-0000-0000-000000000002 (this job)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_restart_names_its_source_job_and_its_reused_steps() {
        let source = "00000000-0000-0000-0000-0000000000aa";
        let step = |name: &str, reused: bool| {
            let mut step = serde_json::json!({
                "step_name": name, "action_name": "a", "action_type": "script",
                "runner": "local", "status": "completed", "depends_on": [], "input": null,
                "output": null, "error_message": null, "attempt": 1, "max_attempts": 1,
                "retry_at": null, "retry_history": [], "ready_at": null,
                "started_at": "2026-03-01T12:00:00.000Z",
                "completed_at": "2026-03-01T12:00:02.000Z", "when": null, "for_each": null,
            });
            if reused {
                step["reused_from"] = serde_json::json!(source);
                step["started_at"] = serde_json::Value::Null;
                step["completed_at"] = serde_json::Value::Null;
            }
            step
        };
        let job: JobDetail = serde_json::from_value(serde_json::json!({
            "job_id": uuid::Uuid::nil(), "workspace": "default", "task_name": "deploy",
            "mode": "distributed", "status": "completed", "source_type": "restart",
            "source_id": null, "revision": "r", "priority": 0, "parent_job_id": null,
            "retry_of_job_id": null, "retry_attempt": 1,
            "created_at": "2026-03-01T12:00:00.000Z", "started_at": null, "completed_at": null,
            "error": null, "input": {}, "raw_input": {}, "output": null,
            "parent_step_name": null, "timeout_secs": null, "source_job_id": source,
            "steps": [step("build", true), step("ship", false)],
        }))
        .expect("job detail");
        let text = render(&job, Style::plain(), Utc::now());
        assert!(text.contains(&format!("restarts  {source}\n")), "{text}");
        let build = text
            .lines()
            .find(|line| line.starts_with("build"))
            .unwrap_or_default();
        assert!(build.contains("reused"), "{text}");
        let ship = text
            .lines()
            .find(|line| line.starts_with("ship"))
            .unwrap_or_default();
        assert!(!ship.contains("reused"), "{text}");
    }
}
