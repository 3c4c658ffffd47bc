//! Step retries (WF §13.1) and step timeouts (WF §13.2).

use serde_json::json;

use super::Harness;
use super::fixtures::{inline, retry, single};
use crate::engine::{Event, retry_delay};
use crate::workflow::model::{Backoff, Duration, Step};

fn with_retry(step: Step, max_attempts: u32, delay: u64, backoff: Backoff, jitter: bool) -> Step {
    Step {
        retry: Some(retry(max_attempts, delay, backoff, jitter)),
        ..step
    }
}

#[test]
fn fixed_backoff_retries_until_attempts_run_out() {
    let def = single(vec![
        (
            "flaky",
            with_retry(inline("curl"), 3, 30, Backoff::Fixed, false),
        ),
        ("next", super::fixtures::after(inline("next"), &["flaky"])),
    ]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "flaky")
        .fail(5.0, "flaky", "exit code 7\ncurl: connection refused")
        .run(20.0, "flaky")
        .run(35.0, "flaky")
        .fail(40.0, "flaky", "timed out after 5s")
        .run(70.0, "flaky")
        .fail(71.0, "flaky", "exit code 7");
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn exponential_backoff_with_jitter_then_success() {
    let def = single(vec![(
        "flaky",
        with_retry(inline("curl"), 4, 10, Backoff::Exponential, true),
    )]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.jitter = 0.5;
    h.run(0.0, "flaky")
        .fail(1.0, "flaky", "exit code 1")
        .run(12.25, "flaky")
        .fail(13.0, "flaky", "exit code 1")
        .run(35.5, "flaky")
        .fail(36.0, "flaky", "exit code 1")
        .run(81.0, "flaky")
        .succeed(82.0, "flaky", json!({"ok": true}));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn exponential_delay_is_capped_at_one_hour_before_jitter() {
    let policy = retry(10, 1_000, Backoff::Exponential, false);
    let mut never = || 0.0;
    let delays: Vec<i64> = (1..=4)
        .map(|k| retry_delay(&policy, k, &mut never).num_seconds())
        .collect();
    assert_eq!(delays, vec![1_000, 2_000, 3_600, 3_600]);

    let jittered = retry(3, 3_600, Backoff::Fixed, true);
    let mut most = || 0.999;
    assert_eq!(
        retry_delay(&jittered, 1, &mut most).num_milliseconds(),
        3_600_000 + 899_100
    );
}

#[test]
fn server_side_step_timeout_stops_and_retries_the_attempt() {
    let step = Step {
        timeout: Some(Duration(300)),
        ..with_retry(inline("sleep 1000"), 2, 0, Backoff::Fixed, false)
    };
    let def = single(vec![("slow", step)]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(0.0, "slow")
        .event(
            340.0,
            Event::StepTimedOut {
                step: "slow".into(),
            },
        )
        .fail(341.0, "slow", "killed by signal 15")
        .run(342.0, "slow")
        .event(
            700.0,
            Event::StepTimedOut {
                step: "slow".into(),
            },
        );
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn a_lost_pinned_worker_fails_every_unfinished_worker_step_without_retry() {
    // A `local` job (API §7.9): `build` ran, `test` runs with attempts left, `ship` waits, and
    // `extra` (parallel, not started) is ready. The pinned worker goes: all but `build` fail.
    let def = single(vec![
        ("build", inline("make")),
        (
            "test",
            with_retry(
                super::fixtures::after(inline("make test"), &["build"]),
                3,
                0,
                Backoff::Fixed,
                false,
            ),
        ),
        ("ship", super::fixtures::after(inline("ship"), &["test"])),
        ("extra", super::fixtures::after(inline("lint"), &["build"])),
    ]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(0.0, "build")
        .succeed(1.0, "build", json!(null))
        .run(2.0, "test")
        .event(5.0, Event::PinnedWorkerLost)
        // Nothing left to fail: a second report changes nothing.
        .event(6.0, Event::PinnedWorkerLost);
    insta::assert_snapshot!(h.transcript());
}
