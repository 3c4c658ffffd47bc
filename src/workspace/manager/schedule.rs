//! Fire times of scheduler triggers (WF §15.1): a trigger's `next_runs` (API §2.3) and the
//! ticks the scheduler owes at a given moment ([`due_ticks`]).
//!
//! The cron expression is matched against **local wall-clock** times of the trigger's time
//! zone, and each match is then placed on the time line: a local time skipped by a DST change
//! does not exist and does not fire; a local time repeated by a DST change fires once, at its
//! first occurrence. croner alone would move a skipped time past the gap instead, which WF
//! §15.1 rules out, so it only enumerates the wall-clock matches here.

use chrono::{DateTime, LocalResult, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::workflow::model::Schedule;

/// How many wall-clock matches to look at before giving up; bounds the work for expressions
/// that match only in gaps (`30 2 * * *` on a zone that never has 02:30 on some dates).
const SEARCH_LIMIT: usize = 10_000;

/// The next `count` fire times strictly after `after`, in UTC. Empty for an expression or time
/// zone that does not parse (validation reports those; this is only for display).
pub fn next_fire_times(
    schedule: &Schedule,
    after: DateTime<Utc>,
    count: usize,
) -> Vec<DateTime<Utc>> {
    let Ok(zone) = schedule.timezone.parse::<Tz>() else {
        return Vec::new();
    };
    let Some(cron) = parse(&schedule.cron) else {
        return Vec::new();
    };
    let start = after.with_timezone(&zone).naive_local();
    let mut times = Vec::with_capacity(count);
    for local in cron.iter_after(start).take(SEARCH_LIMIT) {
        let instant = match zone.from_local_datetime(&local) {
            LocalResult::Single(at) => at,
            LocalResult::Ambiguous(first, _) => first,
            LocalResult::None => continue,
        };
        let instant = instant.with_timezone(&Utc);
        // Walking wall-clock time from `after`'s local time can meet a repeated local time
        // whose first occurrence is already past.
        if instant <= after || times.last().is_some_and(|last| *last >= instant) {
            continue;
        }
        times.push(instant);
        if times.len() == count {
            break;
        }
    }
    times
}

/// How far past a local time a backward search starts, so that a tick inside a repeated hour
/// (whose wall-clock time reads later than the instant it names) is not passed by.
const FOLD_SLACK: TimeDelta = TimeDelta::hours(2);

/// At most this many on-time ticks are fired at once: a six-field expression fires at most once
/// a second, so 61 covers the whole grace window.
const MAX_ON_TIME: usize = 61;

/// The ticks of a schedule that fall after a trigger's checkpoint and at or before `now`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueTicks {
    /// Ticks no older than the grace period: fired, oldest first.
    pub on_time: Vec<DateTime<Utc>>,
    /// The newest tick older than the grace period: missed (WF §15.1: "a tick counts as
    /// missed when it could not be fired within 60 s of its time").
    pub latest_missed: Option<DateTime<Utc>>,
}

/// The ticks strictly after `last` and at or before `now`, split at `now - grace`.
pub fn due_ticks(
    schedule: &Schedule,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: TimeDelta,
) -> DueTicks {
    if now <= last {
        return DueTicks::default();
    }
    // Times are whole milliseconds; a tick exactly `grace` old is still on time.
    let missed_before = now - grace - TimeDelta::milliseconds(1);
    let on_time = next_fire_times(schedule, last.max(missed_before), MAX_ON_TIME)
        .into_iter()
        .take_while(|tick| *tick <= now)
        .collect();
    // The common case — the first tick after the checkpoint is not yet missed — costs one
    // forward step; only a real gap searches backwards.
    let first = next_fire_times(schedule, last, 1);
    let latest_missed = match first.first() {
        Some(first) if *first <= missed_before => {
            previous_fire_time(schedule, missed_before).filter(|tick| *tick > last)
        }
        _ => None,
    };
    DueTicks {
        on_time,
        latest_missed,
    }
}

/// The newest fire time at or before `at`, under the same DST rules as [`next_fire_times`].
pub fn previous_fire_time(schedule: &Schedule, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let zone = schedule.timezone.parse::<Tz>().ok()?;
    let cron = parse(&schedule.cron)?;
    let start = (at + FOLD_SLACK).with_timezone(&zone).naive_local();
    let window_end = (at - FOLD_SLACK).with_timezone(&zone).naive_local();
    let mut best: Option<DateTime<Utc>> = None;
    for local in cron.iter_before(start).take(SEARCH_LIMIT) {
        if local < window_end && best.is_some() {
            break;
        }
        let instant = match zone.from_local_datetime(&local) {
            LocalResult::Single(at) => at,
            LocalResult::Ambiguous(first, _) => first,
            LocalResult::None => continue,
        }
        .with_timezone(&Utc);
        if instant <= at && best.is_none_or(|best| instant > best) {
            best = Some(instant);
        }
    }
    best
}

fn parse(expression: &str) -> Option<Cron> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expression.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::model::{CatchUp, ScheduleConcurrency};

    fn schedule(cron: &str, timezone: &str) -> Schedule {
        Schedule {
            cron: cron.to_owned(),
            timezone: timezone.to_owned(),
            concurrency: ScheduleConcurrency::Allow,
            catch_up: CatchUp::None,
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn rendered(times: &[DateTime<Utc>]) -> Vec<String> {
        times.iter().map(|t| t.to_rfc3339()).collect()
    }

    #[test]
    fn six_field_cron_in_oslo_skips_the_spring_gap() {
        // 2026-03-29: Oslo jumps from 02:00 to 03:00 (CET → CEST); 02:30:15 does not exist.
        let times = next_fire_times(
            &schedule("15 30 2 * * *", "Europe/Oslo"),
            at("2026-03-27T12:00:00Z"),
            5,
        );
        assert_eq!(
            rendered(&times),
            [
                "2026-03-28T01:30:15+00:00", // 02:30:15 CET
                "2026-03-30T00:30:15+00:00", // 02:30:15 CEST; the 29th has none
                "2026-03-31T00:30:15+00:00",
                "2026-04-01T00:30:15+00:00",
                "2026-04-02T00:30:15+00:00",
            ]
        );
    }

    #[test]
    fn six_field_cron_in_oslo_fires_a_repeated_time_once() {
        // 2026-10-25: Oslo goes back from 03:00 CEST to 02:00 CET; 02:xx happens twice.
        let times = next_fire_times(
            &schedule("0 30 2 * * *", "Europe/Oslo"),
            at("2026-10-24T12:00:00Z"),
            3,
        );
        assert_eq!(
            rendered(&times),
            [
                "2026-10-25T00:30:00+00:00", // first 02:30 (CEST); not again at 01:30Z
                "2026-10-26T01:30:00+00:00",
                "2026-10-27T01:30:00+00:00",
            ]
        );
    }

    #[test]
    fn due_ticks_split_on_time_from_missed() {
        let hourly = schedule("0 * * * *", "UTC");
        let grace = TimeDelta::seconds(60);
        // Nothing due: the next tick is in the future.
        assert_eq!(
            due_ticks(
                &hourly,
                at("2026-01-01T10:00:00Z"),
                at("2026-01-01T10:59:59Z"),
                grace
            ),
            DueTicks::default()
        );
        // One tick, 60 s late: still on time.
        let due = due_ticks(
            &hourly,
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T11:01:00Z"),
            grace,
        );
        assert_eq!(rendered(&due.on_time), ["2026-01-01T11:00:00+00:00"]);
        assert_eq!(due.latest_missed, None);
        // Down for three hours: 11:00 and 12:00 missed, 13:00 on time.
        let due = due_ticks(
            &hourly,
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T13:00:30Z"),
            grace,
        );
        assert_eq!(rendered(&due.on_time), ["2026-01-01T13:00:00+00:00"]);
        assert_eq!(due.latest_missed, Some(at("2026-01-01T12:00:00Z")));
        // A tick at the checkpoint itself was handled already.
        let due = due_ticks(
            &hourly,
            at("2026-01-01T11:00:00Z"),
            at("2026-01-01T11:00:10Z"),
            grace,
        );
        assert_eq!(due, DueTicks::default());
    }

    #[test]
    fn previous_fire_time_respects_dst() {
        let daily = schedule("0 30 2 * * *", "Europe/Oslo");
        // Spring forward: the 29th has no 02:30, so the latest before the 30th is the 28th's.
        assert_eq!(
            previous_fire_time(&daily, at("2026-03-29T23:00:00Z")),
            Some(at("2026-03-28T01:30:00Z"))
        );
        // Fall back: inside the repeated hour, the first 02:30 (CEST) is the latest.
        assert_eq!(
            previous_fire_time(&daily, at("2026-10-25T01:10:00Z")),
            Some(at("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            previous_fire_time(
                &schedule("* * * * * *", "UTC"),
                at("2026-01-01T10:00:00.500Z")
            ),
            Some(at("2026-01-01T10:00:00Z"))
        );
    }

    #[test]
    fn starts_after_the_given_instant_and_handles_macros_and_bad_input() {
        let times = next_fire_times(&schedule("@hourly", "UTC"), at("2026-01-01T10:00:00Z"), 2);
        assert_eq!(
            rendered(&times),
            ["2026-01-01T11:00:00+00:00", "2026-01-01T12:00:00+00:00"]
        );
        assert!(
            next_fire_times(&schedule("* * *", "UTC"), at("2026-01-01T10:00:00Z"), 5).is_empty()
        );
        assert!(
            next_fire_times(
                &schedule("@daily", "Mars/Base"),
                at("2026-01-01T10:00:00Z"),
                5
            )
            .is_empty()
        );
    }
}
