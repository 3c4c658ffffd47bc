//! `stroem cancel <job-id>`: cancels a job (API §3.4, §8.4).

use uuid::Uuid;

use super::Global;
use super::client::{ClientError, exit};
use super::render::Style;
use crate::api::JobStatusReply;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's id.
    #[arg(value_name = "JOB_ID")]
    pub job_id: Uuid,
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
