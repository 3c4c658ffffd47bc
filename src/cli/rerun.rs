//! `stroem rerun <job-id>`: starts a new job of the same task with the same input (API §3.3
//! [P2] `source_job_id`): secret fields come back masked and are sent as `••••••`, which the
//! server replaces with the source job's values. With `--from-failed` it restarts the job
//! instead (`POST /api/jobs/{id}/restart`, docs/restart.md): the new job reuses the outputs of
//! the steps that completed and runs the others. Prints the new job's id.

use serde_json::Value;

use super::Global;
use super::client::{ClientError, exit, segment};
use crate::api::{ExecuteRequest, JobDetail, JobRef, JobStatusReply};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job to run again: in full, the 8 characters the UI shows, or any longer start or end.
    #[arg(value_name = "JOB_ID")]
    pub job_id: JobRef,
    /// Restart from the failed step: reuse the outputs of the steps that completed, pinned to
    /// the job's revision, and run only the others.
    #[arg(long)]
    pub from_failed: bool,
}

pub fn run(args: Args, global: &Global) -> Result<u8, ClientError> {
    let client = global.client()?;
    if args.from_failed {
        let path = format!("/api/jobs/{}/restart", args.job_id);
        let reply = client.post::<()>(&path, None)?;
        return print_reply(&reply, global);
    }
    let source: JobDetail = client
        .get(&format!("/api/jobs/{}", args.job_id), &[])?
        .parse()?;
    let input = match source.raw_input {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let request = ExecuteRequest {
        input,
        source_job_id: Some(source.summary.job_id),
    };
    let path = format!(
        "/api/workspaces/{}/tasks/{}/execute",
        segment(&source.summary.workspace),
        segment(&source.summary.task_name)
    );
    let reply = client.post(&path, Some(&request))?;
    print_reply(&reply, global)
}

/// The new job's id, or the server's answer as it is with `--json`.
fn print_reply(reply: &super::client::Reply, global: &Global) -> Result<u8, ClientError> {
    if global.json() {
        super::out::line(&reply.body);
        return Ok(exit::OK);
    }
    let answer: JobStatusReply = reply.parse()?;
    super::out::line(answer.job_id);
    Ok(exit::OK)
}
