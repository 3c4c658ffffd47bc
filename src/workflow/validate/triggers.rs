//! Triggers (WF §15, §18.2 rules 33–34): cron expressions and time zones of schedules, and
//! webhook names unique within the workspace.

use std::collections::HashMap;

use croner::parser::{CronParser, Seconds, Year};

use super::Checker;
use crate::workflow::diagnostic::{Diagnostic, suggest};
use crate::workflow::model::TriggerKind;
use crate::workflow::source::join;

const MACROS: [&str; 5] = ["@yearly", "@monthly", "@weekly", "@daily", "@hourly"];
/// Cron fields with what each accepts besides `*`, lists, ranges and steps.
const FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L, W, ?"),
    ("month", "1-12, JAN-DEC"),
    ("day-of-week", "0-7, SUN-SAT, L, #, ?"),
];

pub(super) fn check(c: &mut Checker<'_>) {
    let mut webhooks: HashMap<&str, String> = HashMap::new();
    for (name, trigger) in &c.def.triggers {
        let path = join("triggers", name);
        match &trigger.kind {
            TriggerKind::Scheduler(schedule) => {
                if let Err(message) = check_cron(&schedule.cron) {
                    c.error("invalid-cron", message, &join(&path, "cron"));
                }
                if let Err(message) = check_timezone(&schedule.timezone) {
                    c.error("unknown-timezone", message, &join(&path, "timezone"));
                }
            }
            TriggerKind::Webhook(hook) => {
                // `name` defaults to the trigger key; point at whichever was written.
                let name_path = join(&path, "name");
                let at_path = if c.was_defined(&name_path) {
                    name_path
                } else {
                    path
                };
                match webhooks.get(hook.name.as_str()) {
                    Some(first) => {
                        let message = format!(
                            "webhook name '{}' is used twice in this workspace",
                            hook.name
                        );
                        let diagnostic = Diagnostic::error(
                            "duplicate-webhook",
                            message,
                            &c.at_key(&at_path),
                            &at_path,
                        )
                        .with_related("first used here", &c.at_key(first));
                        c.push(diagnostic);
                    }
                    None => {
                        webhooks.insert(hook.name.as_str(), at_path);
                    }
                }
            }
        }
    }
}

/// Checks a cron expression (WF §15.1), naming the field that fails.
pub(crate) fn check_cron(expression: &str) -> Result<(), String> {
    let trimmed = expression.trim();
    if trimmed.starts_with('@') {
        if MACROS.iter().any(|m| m.eq_ignore_ascii_case(trimmed)) {
            return Ok(());
        }
        return Err(format!(
            "unknown cron macro '{trimmed}'; use one of {}",
            MACROS.join(", ")
        ));
    }
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    let offset = match fields.len() {
        5 => 1,
        6 => 0,
        n => {
            return Err(format!(
                "cron '{trimmed}' has {n} fields; expected 5 (minute hour day-of-month month day-of-week) or 6 (with leading seconds)"
            ));
        }
    };
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build();
    // Parse each field alone among wildcards, so the message can say which one is wrong.
    for (i, field) in fields.iter().enumerate() {
        let mut probe = ["0", "*", "*", "*", "*", "*"];
        probe[i + offset] = field;
        if let Err(error) = parser.parse(&probe.join(" ")) {
            let (name, allowed) = FIELDS[i + offset];
            return Err(format!(
                "invalid {name} field '{field}' in cron '{trimmed}': {} (allowed: {allowed})",
                reason(&error)
            ));
        }
    }
    parser
        .parse(trimmed)
        .map(|_| ())
        .map_err(|error| format!("invalid cron '{trimmed}': {}", reason(&error)))
}

/// croner's reason, reworded for users: its messages name internal types and rewritten parts
/// (`CronPattern contains illegal character 'F' in part '1-FRY'`).
fn reason(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    match error {
        CronError::IllegalCharacters(text) => match text.split_once("character '") {
            Some((_, rest)) => {
                let character = rest.split('\'').next().unwrap_or(rest);
                format!("unexpected character '{character}'")
            }
            None => "unexpected character".to_owned(),
        },
        CronError::ComponentError(text) | CronError::InvalidPattern(text) => {
            text.trim_end_matches('.').to_lowercase()
        }
        other => other.to_string().trim_end_matches('.').to_lowercase(),
    }
}

/// A time zone must be an IANA name chrono-tz knows.
pub(crate) fn check_timezone(name: &str) -> Result<(), String> {
    if name.parse::<chrono_tz::Tz>().is_ok() {
        return Ok(());
    }
    let known = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    Err(match suggest(name, known) {
        Some(close) => format!("unknown timezone '{name}' — did you mean '{close}'?"),
        None => format!("unknown timezone '{name}'; use an IANA name such as 'Europe/Oslo'"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_cron_forms() {
        for ok in [
            "30 2 * * 1-5",
            "*/15 * * * *",
            "0 30 2 * * MON-FRI",
            "0 0 1,15 JAN,JUL ?",
            "0 0 L * *",
            "0 0 15W * *",
            "0 0 * * 5#2",
            "0 0 * * 5L",
            "@daily",
            "@Hourly",
        ] {
            assert_eq!(check_cron(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn names_the_failing_field() {
        let error = check_cron("61 * * * *").expect_err("minute 61");
        assert!(error.starts_with("invalid minute field '61'"), "{error}");
        let error = check_cron("0 0 * 13 *").expect_err("month 13");
        assert!(error.starts_with("invalid month field '13'"), "{error}");
        let error = check_cron("0 0 * * * * *").expect_err("seven fields");
        assert!(error.contains("has 7 fields"), "{error}");
        let error = check_cron("@every").expect_err("unknown macro");
        assert!(error.starts_with("unknown cron macro"), "{error}");
    }

    #[test]
    fn checks_timezones_with_a_suggestion() {
        assert_eq!(check_timezone("Europe/Oslo"), Ok(()));
        assert_eq!(check_timezone("UTC"), Ok(()));
        assert_eq!(
            check_timezone("Europe/Olso"),
            Err("unknown timezone 'Europe/Olso' — did you mean 'Europe/Oslo'?".to_owned())
        );
    }
}
