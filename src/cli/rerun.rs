//! `stroem rerun <job-id>`: starts a new job of the same task with the same input (API §3.3
//! [P2] `source_job_id`): secret fields come back masked and are sent as `••••••`, which the
//! server replaces with the source job's values. Prints the new job's id.

use serde_json::Value;

use super::Global;
use super::client::{ClientError, exit, segment};
use crate::api::{ExecuteRequest, JobDetail, JobRef, JobStatusReply};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job to run again: in full, the 8 characters the UI shows, or any longer start or end.
    #[arg(value_name = "JOB_ID")]
    pub job_id: JobRef,
}

pub fn run(args: Args, global: &Global) -> Result<u8, ClientError> {
    let client = global.client()?;
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
    if global.json() {
        super::out::line(&reply.body);
        return Ok(exit::OK);
    }
    let answer: JobStatusReply = reply.parse()?;
    super::out::line(answer.job_id);
    Ok(exit::OK)
}
