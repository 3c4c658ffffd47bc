//! `stroem cancel <job-id>`: cancels a job (API §3.4, §8.4).

use super::Global;
use super::client::{ClientError, exit};
use super::render::Style;
use crate::api::{JobRef, JobStatusReply};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's id: in full, the 8 characters the UI shows, or any longer start or end of it.
    #[arg(value_name = "JOB_ID")]
    pub job_id: JobRef,
}

pub fn run(args: Args, global: &Global) -> Result<u8, ClientError> {
    let path = format!("/api/jobs/{}/cancel", args.job_id);
    let reply = global.client()?.post::<()>(&path, None)?;
    if global.json() {
        super::out::line(&reply.body);
        return Ok(exit::OK);
    }
    let answer: JobStatusReply = reply.parse()?;
    let style = Style::detect();
    super::out::line(format_args!(
        "job {} {}",
        answer.job_id,
        style.status(answer.status.as_str())
    ));
    Ok(exit::OK)
}
