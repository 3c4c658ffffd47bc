//! Secret definitions (WF §16.1, §18.2 rule 35): names templates can reference, and literal
//! values long enough to be masked. Templated values (`env`, `file()`) are resolved by the
//! workspace loader, not here; their syntax and variables are checked with the other templates.

use super::Checker;
use crate::workflow::model::{Map, SecretValue};
use crate::workflow::source::join;
use crate::workflow::template::is_template;

/// Mask values shorter than this are not masked (WF §16.3).
const MIN_MASKED_LEN: usize = 4;

pub(super) fn check(c: &mut Checker<'_>) {
    check_level(c, &c.def.secrets, "secrets");
}

fn check_level(c: &mut Checker<'_>, level: &Map<SecretValue>, prefix: &str) {
    for (name, value) in level {
        let path = join(prefix, name);
        let written = path.trim_start_matches("secrets.");
        if !valid_name(name) {
            let message = format!(
                "invalid secret name '{name}': use letters, digits and '_', not starting with a digit"
            );
            let at = c.at_key(&path);
            c.push(crate::workflow::diagnostic::Diagnostic::error(
                "invalid-secret-name",
                message,
                &at,
                &path,
            ));
        }
        match value {
            SecretValue::Map(inner) if inner.is_empty() => {
                c.error(
                    "empty-secret",
                    format!("secret '{written}' is empty"),
                    &path,
                );
            }
            SecretValue::Map(inner) => check_level(c, inner, &path),
            SecretValue::Template(text) if is_template(text) => {}
            SecretValue::Template(text) if text.is_empty() => {
                c.error(
                    "empty-secret",
                    format!("secret '{written}' is empty"),
                    &path,
                );
            }
            SecretValue::Template(text) if text.chars().count() < MIN_MASKED_LEN => {
                let message = format!(
                    "secret '{written}' is shorter than {MIN_MASKED_LEN} characters and will not be masked in logs"
                );
                c.warning("short-secret", message, &path);
            }
            SecretValue::Template(_) => {}
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_]{0,99}` (WF §2.3).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 100
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn secret_names_are_identifiers() {
        assert!(valid_name("SLACK_URL"));
        assert!(valid_name("_x1"));
        assert!(!valid_name("1X"));
        assert!(!valid_name("my-secret"));
        assert!(!valid_name(""));
        assert!(!valid_name(&"A".repeat(101)));
    }
}
