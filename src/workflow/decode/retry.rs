//! Retry blocks (WF §13.1, rule 27): `max_attempts` 1–10, `delay` 0–1h, `backoff`, `jitter`.

use super::super::diagnostic::suggest;
use super::super::model::{Backoff, Retry};
use super::super::yaml::Node;
use super::duration::{self, HOUR};
use super::fields::{Ctx, Fields};

const KEYS: [&str; 4] = ["max_attempts", "delay", "backoff", "jitter"];

/// Decodes the retry block at `path`, defaults applied (WF §13.1).
pub fn decode(cx: &mut Ctx, node: &Node, path: &str) -> Option<Retry> {
    let mut f = Fields::open(cx, node, path)?;
    let mut retry = Retry::default();
    if let Some(attempts) = f.int(cx, "max_attempts") {
        match u32::try_from(attempts) {
            Ok(n @ 1..=10) => retry.max_attempts = n,
            _ => {
                let mark = f.value_mark("max_attempts");
                let message = format!("'max_attempts' must be between 1 and 10, found {attempts}");
                cx.error("out-of-range", message, mark, &f.path_of("max_attempts"));
            }
        }
    }
    if let Some(delay) = duration::field(cx, &mut f, "delay", HOUR, true) {
        retry.delay = delay;
    }
    if let Some(backoff) = f.text(cx, "backoff") {
        match backoff.as_str() {
            "fixed" => retry.backoff = Backoff::Fixed,
            "exponential" => retry.backoff = Backoff::Exponential,
            other => {
                let mark = f.value_mark("backoff");
                let message = match suggest(other, ["fixed", "exponential"]) {
                    Some(close) => format!("unknown backoff '{other}' — did you mean '{close}'?"),
                    None => format!("unknown backoff '{other}'; use fixed or exponential"),
                };
                cx.error("unknown-value", message, mark, &f.path_of("backoff"));
            }
        }
    }
    if let Some(jitter) = f.bool(cx, "jitter") {
        retry.jitter = jitter;
    }
    f.finish(cx, &KEYS, &|_| None);
    Some(retry)
}
