//! Time arithmetic of retries and timeouts (WF §13): retry delays with backoff and jitter, and
//! the deadlines an executor watches to send timeout events.

use chrono::{DateTime, TimeDelta, Utc};

use super::plan::JobPlan;
use super::state::{JobState, StepStatus};
use crate::workflow::model::{Backoff, Duration, Retry};

/// The longest delay between two attempts (WF §13.1).
const MAX_RETRY_DELAY_SECS: u64 = 3_600;

/// Share of a delay that jitter may add (WF §13.1: 0–25 %).
const JITTER_SHARE: f64 = 0.25;

/// A source of jitter: each call returns a number in `[0, 1)`.
pub type Jitter<'a> = &'a mut dyn FnMut() -> f64;

/// When the job runs past its timeout (WF §13.2): `started_at` + `timeout_secs`. The task's
/// `timeout` fills `timeout_secs` at creation; an executor with a server default sets it when
/// the task has none. Send [`Event::JobTimedOut`] at this time.
pub fn job_deadline(job: &JobState) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(job.timeout_secs?).ok()?;
    Some(job.started_at? + TimeDelta::seconds(secs))
}

/// When the running attempt of `step` times out: its `started_at` (task steps: child creation)
/// plus the step's effective timeout. Worker steps enforce this themselves; the executor sends
/// [`Event::StepTimedOut`] for task steps, and for worker steps as a backstop. A `suspended`
/// approval step times out its `timeout` after its `suspended_at` (API §8.5 item 4).
pub fn step_deadline(job: &JobState, plan: &JobPlan, step: &str) -> Option<DateTime<Utc>> {
    let state = job.step(step)?;
    let since = match state.status {
        StepStatus::Running => state.started_at?,
        StepStatus::Suspended => state.suspended_at?,
        _ => return None,
    };
    let timeout = plan.step(state.flow_name())?.timeout?;
    let secs = i64::try_from(timeout.secs()).ok()?;
    Some(since + TimeDelta::seconds(secs))
}

/// The delay before retry `k` (k = 1 before the second attempt), WF §13.1.
pub fn retry_delay(retry: &Retry, k: u32, jitter: Jitter<'_>) -> TimeDelta {
    let base = retry.delay.secs();
    let secs = match retry.backoff {
        Backoff::Fixed => base,
        Backoff::Exponential => {
            let factor = 1u64.checked_shl(k.saturating_sub(1)).unwrap_or(u64::MAX);
            base.saturating_mul(factor).min(MAX_RETRY_DELAY_SECS)
        }
    };
    let mut millis = i64::try_from(secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
    if retry.jitter {
        let share = jitter().clamp(0.0, 1.0) * JITTER_SHARE;
        // Whole milliseconds keep stored times stable; the fraction lost is irrelevant.
        let extra = (millis as f64 * share) as i64;
        millis = millis.saturating_add(extra);
    }
    TimeDelta::milliseconds(millis)
}

/// `30s`, `1m30s`, `2.5s` for a delay.
pub(crate) fn format_delay(delay: TimeDelta) -> String {
    let millis = delay.num_milliseconds();
    if millis % 1_000 == 0 {
        Duration(u64::try_from(millis / 1_000).unwrap_or(0)).to_string()
    } else {
        let text = format!("{:.3}", millis as f64 / 1_000.0);
        format!("{}s", text.trim_end_matches('0'))
    }
}
