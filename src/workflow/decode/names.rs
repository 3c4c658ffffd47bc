//! Name rules (WF §2.3): what actions, tasks, steps, triggers, secrets, input fields and
//! environment variables may be called.

/// Template root variables: a step named like one could never be referenced.
pub const TEMPLATE_ROOTS: [&str; 8] = [
    "input", "secret", "job", "step", "each", "hook", "env", "trigger",
];

/// Template keywords and literals a step reference may not equal.
pub const TEMPLATE_KEYWORDS: [&str; 14] = [
    "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else",
    "loop",
];

/// What kind of thing is being named, for the rule and the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    Action,
    Task,
    Step,
    Trigger,
    Secret,
    Field,
    Connection,
}

impl NameKind {
    pub fn noun(self) -> &'static str {
        match self {
            NameKind::Action => "action",
            NameKind::Task => "task",
            NameKind::Step => "step",
            NameKind::Trigger => "trigger",
            NameKind::Secret => "secret",
            NameKind::Field => "field",
            NameKind::Connection => "connection",
        }
    }
}

/// Checks `name` against the rule of its kind; `Err` carries the sentence to report.
pub fn check(kind: NameKind, name: &str) -> Result<(), String> {
    let noun = kind.noun();
    if name.starts_with('_') && !matches!(kind, NameKind::Secret | NameKind::Field) {
        return Err(format!(
            "{noun} name '{name}' starts with '_', which is reserved for Strøm"
        ));
    }
    let (first_ok, pattern): (fn(char) -> bool, &str) = match kind {
        NameKind::Secret => (
            |c| c.is_ascii_alphabetic() || c == '_',
            "[A-Za-z_][A-Za-z0-9_]*",
        ),
        NameKind::Field => (
            |c| c.is_ascii_alphabetic() || c == '_',
            "[A-Za-z_][A-Za-z0-9_-]*",
        ),
        _ => (|c| c.is_ascii_alphanumeric(), "[A-Za-z0-9][A-Za-z0-9_-]*"),
    };
    let rest_ok =
        |c: char| c.is_ascii_alphanumeric() || c == '_' || (c == '-' && kind != NameKind::Secret);
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(first_ok) && chars.all(rest_ok);
    if !valid {
        return Err(format!(
            "invalid {noun} name '{name}': names must match {pattern}"
        ));
    }
    if name.chars().count() > 100 {
        return Err(format!(
            "{noun} name '{name}' is longer than 100 characters"
        ));
    }
    if kind == NameKind::Step {
        check_step_reference(name)?;
    }
    Ok(())
}

/// The identifier templates use for a step: `say-hello` → `say_hello`.
pub fn step_identifier(name: &str) -> String {
    name.replace('-', "_")
}

fn check_step_reference(name: &str) -> Result<(), String> {
    let ident = step_identifier(name);
    if TEMPLATE_ROOTS.contains(&ident.as_str()) {
        return Err(format!(
            "step name '{name}' equals the template variable '{ident}', so templates could not reference it"
        ));
    }
    if ident.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "step name '{name}' starts with a digit, so templates could not reference it"
        ));
    }
    if TEMPLATE_KEYWORDS.contains(&ident.as_str()) {
        return Err(format!(
            "step name '{name}' is the template keyword '{ident}', so templates could not reference it"
        ));
    }
    Ok(())
}

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`, not `STROEM_…` or `INPUT_…`.
pub fn check_env(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "invalid environment variable name '{name}': names must match [A-Za-z_][A-Za-z0-9_]*"
        ));
    }
    for reserved in ["STROEM_", "INPUT_"] {
        if name.starts_with(reserved) {
            return Err(format!(
                "environment variable '{name}' starts with '{reserved}', which Strøm sets itself"
            ));
        }
    }
    Ok(())
}

/// The `INPUT_<NAME>` variable an input field is passed in (WF §11.1).
pub fn input_variable(field: &str) -> String {
    let upper: String = field
        .chars()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("INPUT_{upper}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_names() {
        assert!(check(NameKind::Action, "deploy-service_2").is_ok());
        assert!(check(NameKind::Action, "9lives").is_ok());
        assert!(check(NameKind::Action, "_server").is_err());
        assert!(check(NameKind::Action, "has space").is_err());
        assert!(check(NameKind::Task, &"a".repeat(101)).is_err());
        assert!(check(NameKind::Task, &"a".repeat(100)).is_ok());
    }

    #[test]
    fn secret_and_field_names() {
        assert!(check(NameKind::Secret, "_TOKEN").is_ok());
        assert!(check(NameKind::Secret, "my-token").is_err());
        assert!(check(NameKind::Field, "release-tag").is_ok());
        assert!(check(NameKind::Field, "1x").is_err());
    }

    #[test]
    fn step_names_must_be_referenceable() {
        assert!(check(NameKind::Step, "say-hello").is_ok());
        for bad in ["input", "each", "true", "not", "2nd", "loop"] {
            assert!(check(NameKind::Step, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names() {
        assert!(check_env("SLACK_URL").is_ok());
        assert!(check_env("STROEM_X").is_err());
        assert!(check_env("INPUT_X").is_err());
        assert!(check_env("A-B").is_err());
    }

    #[test]
    fn input_variables() {
        assert_eq!(input_variable("release-tag"), "INPUT_RELEASE_TAG");
        assert_eq!(input_variable("release_tag"), "INPUT_RELEASE_TAG");
    }
}
