//! Stopping real process groups: timeouts, cancellation, signals, the kill grace, and processes
//! left behind or escaped. Waits are conditions with deadlines, never bare sleeps.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::local_tests::{Harness, shell, stream};
use super::spec::{LogLine, Outcome, Stream};

/// The pid a script printed as `bg <pid>`.
fn printed_pid(lines: &[LogLine]) -> i32 {
    stream(lines, Stream::Stdout)
        .iter()
        .find_map(|line| line.strip_prefix("bg ")?.trim().parse().ok())
        .expect("the script printed `bg <pid>`")
}

/// Running (not a zombie waiting for its new parent to reap it).
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    !matches!(state, Some(Some('Z' | 'X')))
}

async fn wait_until_gone(pid: i32, within: Duration) {
    let deadline = Instant::now() + within;
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} still alive after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn is_ready(line: &LogLine) -> bool {
    line.line == "ready"
}

#[tokio::test]
async fn timeout_stops_the_whole_group_including_grandchildren() {
    let harness = Harness::new(Duration::from_secs(5));
    let mut spec = shell("sleep 100 & echo \"bg $!\"; echo starting >&2; sleep 100");
    spec.timeout_secs = Some(1);
    let started = Instant::now();
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(
        result.error_message.as_deref(),
        Some("timed out after 1s\nstarting")
    );
    // Both sleeps die on SIGTERM, so the grace period is never used up.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    wait_until_gone(printed_pid(&lines), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn cancellation_ends_the_attempt_as_cancelled() {
    let harness = Harness::new(Duration::from_secs(5));
    let spec = shell("echo \"bg $$\"; echo ready; sleep 100");
    let started = Instant::now();
    let (result, lines) = harness
        .run_until(&spec, is_ready, CancellationToken::new())
        .await;
    assert_eq!(result.outcome, Outcome::Cancelled);
    assert_eq!(result.error_message.as_deref(), Some("cancelled"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    wait_until_gone(printed_pid(&lines), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn stopping_sends_sigterm_first() {
    let harness = Harness::new(Duration::from_secs(10));
    let spec =
        shell("trap 'echo \"got TERM\"; exit 0' TERM; echo ready; while :; do sleep 0.1; done");
    let (result, lines) = harness
        .run_until(&spec, is_ready, CancellationToken::new())
        .await;
    assert_eq!(result.outcome, Outcome::Cancelled);
    assert_eq!(stream(&lines, Stream::Stdout), ["ready", "got TERM"]);
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let grace = Duration::from_millis(600);
    let harness = Harness::new(grace);
    let spec = shell("trap '' TERM; echo \"bg $$\"; echo ready; while :; do sleep 0.2; done");
    let started = Instant::now();
    let (result, lines) = harness
        .run_until(&spec, is_ready, CancellationToken::new())
        .await;
    assert_eq!(result.outcome, Outcome::Cancelled);
    assert!(started.elapsed() >= grace, "{:?}", started.elapsed());
    wait_until_gone(printed_pid(&lines), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_timed_out_process_ignoring_sigterm_is_killed_too() {
    let harness = Harness::new(Duration::from_millis(300));
    let mut spec = shell("trap '' TERM; echo \"bg $$\"; while :; do sleep 0.2; done");
    spec.timeout_secs = Some(1);
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(result.error_message.as_deref(), Some("timed out after 1s"));
    wait_until_gone(printed_pid(&lines), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn death_by_signal_is_reported_with_the_stderr_tail() {
    let harness = Harness::new(Duration::from_secs(5));
    let (result, _) = harness.run(&shell("echo dying >&2; kill -9 $$")).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(
        result.error_message.as_deref(),
        Some("killed by signal 9 (SIGKILL)\ndying")
    );
}

#[tokio::test]
async fn processes_left_behind_in_the_group_are_stopped_when_the_step_ends() {
    let harness = Harness::new(Duration::from_secs(5));
    // The background job announces its trap through a file, so the main process cannot end
    // before the job is ready to report the SIGTERM it gets.
    let spec = shell(
        r#"(trap 'echo "left-behind got TERM"; exit 0' TERM; touch trap-set
            while :; do sleep 0.1; done) &
           echo "bg $!"
           until [ -e trap-set ]; do sleep 0.01; done
           echo 'OUTPUT: "done"'"#,
    );
    let started = Instant::now();
    let (result, lines) = harness.run(&spec).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    assert_eq!(result.output, serde_json::json!("done"));
    assert!(
        stream(&lines, Stream::Stdout).contains(&"left-behind got TERM".to_owned()),
        "{lines:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    wait_until_gone(printed_pid(&lines), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_escaped_process_holding_the_pipes_does_not_hang_the_attempt() {
    let harness = Harness::new(Duration::from_secs(5));
    let spec = shell("setsid sleep 60 & echo \"bg $!\"; echo main done");
    let started = Instant::now();
    let (result, lines) = harness.run(&spec).await;
    let escaped = printed_pid(&lines);
    // The escaped sleep is outside the step's group; clean it up whatever the result.
    let _ = kill(Pid::from_raw(escaped), Signal::SIGKILL);
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    assert_eq!(
        stream(&lines, Stream::Stdout),
        [format!("bg {escaped}"), "main done".into()]
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_already_cancelled_attempt_runs_nothing() {
    let harness = Harness::new(Duration::from_secs(5));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (result, lines) = harness
        .run_until(&shell("echo should not run"), |_| false, cancel)
        .await;
    assert_eq!(result.outcome, Outcome::Cancelled);
    assert!(lines.is_empty(), "{lines:?}");
}
