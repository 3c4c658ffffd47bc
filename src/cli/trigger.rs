//! `stroem trigger <task>`: creates a job (API §3.3) and prints its id; `--wait` waits for the
//! job to end, `--follow` streams its log meanwhile (API §4.3); both then print the job's
//! status and exit 0 for `completed`, 1 otherwise, 124 when `--timeout` elapsed first.

use std::thread;
use std::time::{Duration, Instant};

use chrono::Utc;
use uuid::Uuid;

use super::client::{self, Client, ClientError, Reply, exit, segment};
use super::logs::{self, To};
use super::render::{self, Style};
use super::{Global, follow, job_input, status};
use crate::api::{ExecuteRequest, JobDetail, JobStatusReply};
use crate::engine::JobStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task to run.
    #[arg(value_name = "TASK")]
    pub task: String,
    /// The task's workspace.
    #[arg(
        short = 'w',
        long = "workspace",
        value_name = "WS",
        default_value = "default"
    )]
    pub workspace: String,
    /// Job input: a JSON object, `@file` or `-` for stdin.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub input: Option<String>,
    /// Sets one input key (the value is JSON when it parses, else a string). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Wait until the job ends; print its status and error.
    #[arg(long, conflicts_with = "follow")]
    pub wait: bool,
    /// Stream the job's log until it ends, then print its status.
    #[arg(long)]
    pub follow: bool,
    /// Give up waiting after this long (`30s`, `5m`, `1h`); exit 124.
    #[arg(long, value_name = "DUR", value_parser = client::parse_duration)]
    pub timeout: Option<Duration>,
}

/// A task that is not found gets the nearest task name of its workspace, as `stroem run` does.
fn suggest_task(client: &Client, args: &Args, mut error: ClientError) -> ClientError {
    let ClientError::Api { status: 404, body } = &mut error else {
        return error;
    };
    if !body.error.starts_with("task '") {
        return error;
    }
    let path = format!("/api/workspaces/{}/tasks", segment(&args.workspace));
    let Ok(tasks) = client
        .get(&path, &[])
        .and_then(|reply| reply.parse::<Vec<serde_json::Value>>())
    else {
        return error;
    };
    let names: Vec<&str> = tasks
        .iter()
        .filter_map(|task| task.get("name").and_then(serde_json::Value::as_str))
        .collect();
    match crate::workflow::diagnostic::suggest(&args.task, names.iter().copied()) {
        Some(name) => body.error.push_str(&format!(" — did you mean '{name}'?")),
        None if !names.is_empty() => {
            body.error
                .push_str(&format!(" (tasks: {})", names.join(", ")));
        }
        None => {}
    }
    error
}

/// First and longest pause between status polls of `--wait`.
const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(1);
/// The longest `--wait`/`--follow` waits after the job finished for its hooks to be fired.
const HOOKS_WAIT: Duration = Duration::from_secs(10);

pub fn run(args: Args, global: &Global) -> Result<u8, ClientError> {
    if args.timeout.is_some() && !args.wait && !args.follow {
        return Err(ClientError::Usage(
            "--timeout needs --wait or --follow".to_owned(),
        ));
    }
    let input = job_input::build(args.input.as_deref(), &args.set)
        .map_err(|error| ClientError::Usage(error.to_string()))?;
    let client = global.client()?;
    let path = format!(
        "/api/workspaces/{}/tasks/{}/execute",
        segment(&args.workspace),
        segment(&args.task)
    );
    let request = ExecuteRequest {
        input,
        source_job_id: None,
    };
    let reply = client
        .post(&path, Some(&request))
        .map_err(|error| suggest_task(&client, &args, error))?;
    let created: JobStatusReply = reply.parse()?;
    let style = Style::detect();
    if !args.wait && !args.follow {
        if global.json() {
            super::out::line(&reply.body);
        } else {
            super::out::line(created.job_id);
        }
        return Ok(exit::OK);
    }
    if !global.json() {
        super::out::line(created.job_id);
    }
    let deadline = args.timeout.map(|limit| (Instant::now() + limit, limit));
    let waited = if args.follow {
        let events = follow::spawn(&client, created.job_id, 0, None);
        let to = if global.json() {
            To::Stderr
        } else {
            To::Stdout
        };
        logs::stream(&events, deadline, to, style).map(|_| ())
    } else {
        wait(&client, created.job_id, deadline)
    };
    if let Err(ClientError::Timeout(limit)) = waited {
        let still = status::fetch(&client, created.job_id)
            .and_then(|reply| reply.parse::<JobDetail>())
            .map_or_else(
                |_| "unfinished".to_owned(),
                |job| job.summary.status.as_str().to_owned(),
            );
        return Err(ClientError::Timeout(format!(
            "{limit}; job {} is still {still}",
            created.job_id
        )));
    }
    waited?;
    let (reply, job) = final_state(&client, created.job_id)?;
    if global.json() {
        super::out::line(&reply.body);
    } else {
        super::out::print(outcome(&job, style));
    }
    Ok(if job.summary.status == JobStatus::Completed {
        exit::OK
    } else {
        exit::JOB_FAILED
    })
}

/// Polls the job until it has finished.
fn wait(
    client: &Client,
    job_id: Uuid,
    deadline: Option<(Instant, Duration)>,
) -> Result<(), ClientError> {
    let mut pause = FIRST_POLL;
    loop {
        let job: JobDetail = status::fetch(client, job_id)?.parse()?;
        if has_finished(&job) {
            return Ok(());
        }
        let mut sleep = pause;
        if let Some((at, limit)) = deadline {
            let left = at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout(format!("{limit:?}")));
            }
            sleep = sleep.min(left);
        }
        thread::sleep(sleep);
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// The job once finished, with the hook jobs it fired. Hooks fire just after the job finishes,
/// so the state is read until the server says they were (`hooks_fired`, issue #15) — for at
/// most [`HOOKS_WAIT`], which only a server that could not archive the job's log needs.
fn final_state(client: &Client, job_id: Uuid) -> Result<(Reply, JobDetail), ClientError> {
    let started = Instant::now();
    loop {
        let reply = status::fetch(client, job_id)?;
        let job: JobDetail = reply.parse()?;
        if (has_finished(&job) && job.hooks_fired) || started.elapsed() >= HOOKS_WAIT {
            return Ok((reply, job));
        }
        thread::sleep(FIRST_POLL);
    }
}

/// Whether the job has finished: terminal *and* every step ended (`completed_at` set). A
/// cancelled job is `cancelled` at once while its steps are still stopping (API §8.4).
fn has_finished(job: &JobDetail) -> bool {
    is_terminal(job.summary.status) && job.summary.completed_at.is_some()
}

/// `job <id> completed in 1.2s`, or `failed`/`cancelled` with the job's error.
fn outcome(job: &JobDetail, style: Style) -> String {
    let summary = &job.summary;
    let took = render::duration(summary.started_at, summary.completed_at, Utc::now());
    let mut text = format!(
        "job {} {} in {took}\n",
        summary.job_id,
        style.status(summary.status.as_str())
    );
    if let Some(error) = &summary.error {
        text.push_str(&format!("error: {}\n", style.stderr_line(error)));
    }
    text.push_str(&status::hook_lines(job, style));
    text
}

/// Pending and running jobs still change; every other status is final (API §8.1).
fn is_terminal(status: JobStatus) -> bool {
    !matches!(status, JobStatus::Pending | JobStatus::Running)
}
