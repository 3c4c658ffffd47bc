//! Triggers (WF §15; rules 32–34 of §18.2 as far as they concern one trigger). Cron
//! expressions, time zones and the target task are checked by validation, not here.

use super::super::diagnostic::suggest;
use super::super::model::{
    CatchUp, Map, Schedule, ScheduleConcurrency, Trigger, TriggerKind, Webhook, WebhookMode,
};
use super::super::yaml::Node;
use super::action::required_text;
use super::fields::{Ctx, Fields};

const COMMON: [&str; 4] = ["type", "task", "input", "enabled"];
const SCHEDULER: [&str; 4] = ["cron", "timezone", "concurrency", "catch_up"];
const WEBHOOK: [&str; 4] = ["name", "secret", "mode", "timeout_secs"];

pub fn decode(cx: &mut Ctx, node: &Node, path: &str, key: &str) -> Option<Trigger> {
    let mut f = Fields::open(cx, node, path)?;
    let Some(type_name) = f.text(cx, "type") else {
        if !f.has("type") {
            cx.error(
                "missing-field",
                "the trigger has no 'type'; set type: scheduler or webhook",
                f.mark,
                path,
            );
        }
        return None;
    };
    let type_mark = f.value_mark("type");
    let type_path = f.path_of("type");
    let scheduler = match type_name.as_str() {
        "scheduler" => true,
        "webhook" => false,
        "event_source" => {
            cx.unsupported("trigger type 'event_source'", type_mark, &type_path);
            return None;
        }
        other => {
            let message = match suggest(other, ["scheduler", "webhook"]) {
                Some(close) => format!("unknown trigger type '{other}' — did you mean '{close}'?"),
                None => format!("unknown trigger type '{other}'; use scheduler or webhook"),
            };
            cx.error("unknown-value", message, type_mark, &type_path);
            return None;
        }
    };
    let task = required_text(cx, &mut f, "task", path, "the trigger has no 'task' to run");
    let input = match f.map(cx, "input") {
        Some(node) => cx.value_map(node, &f.path_of("input")),
        None => Map::new(),
    };
    let enabled = f.bool(cx, "enabled").unwrap_or(true);
    let kind = if scheduler {
        TriggerKind::Scheduler(schedule(cx, &mut f, path))
    } else {
        TriggerKind::Webhook(webhook(cx, &mut f, key))
    };
    let (valid, other, other_label): (Vec<&str>, &[&str], &str) = if scheduler {
        ([COMMON, SCHEDULER].concat(), &WEBHOOK, "webhook")
    } else {
        ([COMMON, WEBHOOK].concat(), &SCHEDULER, "scheduler")
    };
    let own_label = if scheduler { "scheduler" } else { "webhook" };
    f.finish(cx, &valid, &|key| {
        other.contains(&key).then(|| {
            format!("'{key}' is not allowed on a {own_label} trigger; it belongs to {other_label} triggers")
        })
    });
    Some(Trigger {
        task,
        input,
        enabled,
        kind,
    })
}

fn schedule(cx: &mut Ctx, f: &mut Fields, path: &str) -> Schedule {
    let cron = required_text(
        cx,
        f,
        "cron",
        path,
        "a scheduler trigger needs a 'cron' expression",
    );
    let timezone = f.text(cx, "timezone").unwrap_or_else(|| "UTC".to_owned());
    let concurrency = match choice(cx, f, "concurrency", &["allow", "skip", "cancel_previous"]) {
        Some("skip") => ScheduleConcurrency::Skip,
        Some("cancel_previous") => ScheduleConcurrency::CancelPrevious,
        _ => ScheduleConcurrency::Allow,
    };
    let catch_up = match choice(cx, f, "catch_up", &["none", "latest"]) {
        Some("latest") => CatchUp::Latest,
        _ => CatchUp::None,
    };
    Schedule {
        cron,
        timezone,
        concurrency,
        catch_up,
    }
}

fn webhook(cx: &mut Ctx, f: &mut Fields, key: &str) -> Webhook {
    let name = f.text(cx, "name").unwrap_or_else(|| key.to_owned());
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        let mark = f.value_mark("name");
        let message = format!("invalid webhook name '{name}': it must match [A-Za-z0-9_-]+");
        cx.error("invalid-name", message, mark, &f.path_of("name"));
    }
    let secret = f.text(cx, "secret");
    match &secret {
        Some(text) if text.is_empty() => {
            let mark = f.value_mark("secret");
            cx.error(
                "empty-field",
                "'secret' is empty",
                mark,
                &f.path_of("secret"),
            );
        }
        Some(_) => {}
        None => cx.warning(
            "open-webhook",
            "the webhook has no 'secret', so anyone who knows its URL can start jobs",
            f.mark,
            &f.path,
        ),
    }
    let mode = match choice(cx, f, "mode", &["async", "sync"]) {
        Some("sync") => WebhookMode::Sync,
        _ => WebhookMode::Async,
    };
    let mut timeout_secs = 30;
    if let Some(secs) = f.int(cx, "timeout_secs") {
        match u64::try_from(secs) {
            Ok(n @ 1..=300) => timeout_secs = n,
            _ => {
                let mark = f.value_mark("timeout_secs");
                let message = format!("'timeout_secs' must be between 1 and 300, found {secs}");
                cx.error("out-of-range", message, mark, &f.path_of("timeout_secs"));
            }
        }
    }
    Webhook {
        name,
        secret,
        mode,
        timeout_secs,
    }
}

/// One of `values` at `key`; anything else is reported (with a suggestion) and gives `None`.
fn choice<'v>(cx: &mut Ctx, f: &mut Fields, key: &str, values: &[&'v str]) -> Option<&'v str> {
    let text = f.text(cx, key)?;
    if let Some(value) = values.iter().find(|v| **v == text) {
        return Some(value);
    }
    let mark = f.value_mark(key);
    let message = match suggest(&text, values.iter().copied()) {
        Some(close) => format!("unknown {key} '{text}' — did you mean '{close}'?"),
        None => format!("unknown {key} '{text}'; use {}", values.join(", ")),
    };
    cx.error("unknown-value", message, mark, &f.path_of(key));
    None
}
