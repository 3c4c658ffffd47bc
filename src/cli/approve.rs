//! `stroem approve <job-id> <step> [--input JSON] | --reject [--reason TEXT]`: decides a
//! suspended approval step (API §3.4, §9.2).

use super::Global;
use super::client::{ClientError, exit, segment};
use crate::api::JobRef;
use crate::api::execute::{ApproveRequest, DecisionReply};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's id: in full, the 8 characters the UI shows, or any longer start or end of it.
    #[arg(value_name = "JOB_ID")]
    pub job_id: JobRef,
    /// The approval step (loop instances as `name[i]`).
    #[arg(value_name = "STEP")]
    pub step: String,
    /// The approver's form: a JSON object, `@FILE`, or `-` for stdin.
    #[arg(long, value_name = "JSON|@FILE|-", conflicts_with = "reject")]
    pub input: Option<String>,
    /// Set one form field (parsed as JSON when it parses, else a string); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "reject")]
    pub sets: Vec<String>,
    /// Reject the step instead of approving it.
    #[arg(long)]
    pub reject: bool,
    /// Why it is rejected (with `--reject`).
    #[arg(long, value_name = "TEXT", requires = "reject")]
    pub reason: Option<String>,
}

pub fn run(args: Args, global: &Global) -> Result<u8, ClientError> {
    let request = if args.reject {
        ApproveRequest {
            approved: false,
            input: None,
            rejection_reason: args.reason,
        }
    } else {
        let input = super::job_input::build(args.input.as_deref(), &args.sets)
            .map_err(|error| ClientError::Usage(error.to_string()))?;
        ApproveRequest {
            approved: true,
            input: Some(input),
            rejection_reason: None,
        }
    };
    let path = format!(
        "/api/jobs/{}/steps/{}/approve",
        args.job_id,
        segment(&args.step)
    );
    let reply = global.client()?.post(&path, Some(&request))?;
    if global.json() {
        super::out::line(&reply.body);
        return Ok(exit::OK);
    }
    let answer: DecisionReply = reply.parse()?;
    super::out::line(format_args!(
        "step '{}' of job {} {}",
        args.step, args.job_id, answer.status
    ));
    Ok(exit::OK)
}
