//! Secret definitions (WF §16.1, §18.2 rule 35): literal values long enough to be masked, and
//! groups that hold something. Names and empty strings are the decoder's (it drops empty
//! values); templated values (`env`, `file()`) are resolved by the workspace loader, and their
//! syntax and variables are checked with the other templates.

use super::Checker;
use crate::mask::{MIN_LEN, is_maskable};
use crate::workflow::model::{Map, SecretValue};
use crate::workflow::source::join;
use crate::workflow::template::is_template;

pub(super) fn check(c: &mut Checker<'_>) {
    check_level(c, &c.def.secrets, "secrets");
}

fn check_level(c: &mut Checker<'_>, level: &Map<SecretValue>, prefix: &str) {
    for (name, value) in level {
        let path = join(prefix, name);
        let written = path.trim_start_matches("secrets.");
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
            SecretValue::Template(text) if !is_maskable(text) => {
                let message = format!(
                    "secret '{written}' is shorter than {MIN_LEN} characters and will not be masked in logs"
                );
                c.warning("short-secret", message, &path);
            }
            SecretValue::Template(_) => {}
        }
    }
}
