//! Strøm's filters (WF §12.4): `tojson`/`json_encode`, `fromjson`, `shell_quote`, `b64encode`,
//! `b64decode`, plus `default`, `join` and `string` replaced by versions that also take the Tera-style
//! keyword spellings (`default(value=x)`, `join(sep=x)`) older workflows use.
//!
//! Every filter that turns a value into text uses the §12.1 text rules ([`convert::text`]), so
//! `{{ obj | join(',') }}` and `{{ obj }}` agree on how an object looks.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use minijinja::value::{ArgType, Kwargs, Value as JinjaValue};
use minijinja::{Environment, Error, ErrorKind, State};

use super::convert;

/// Registers Strøm's filters on `env`, replacing minijinja's `default`, `join`, `string` and
/// `tojson`.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("tojson", tojson);
    env.add_filter("json_encode", tojson);
    env.add_filter("fromjson", fromjson);
    env.add_filter("shell_quote", shell_quote);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("default", default);
    env.add_filter("d", default);
    env.add_filter("join", join);
    env.add_filter("string", string);
}

/// Fails the way minijinja's own filters do when handed an undefined value, so the error names
/// the undefined expression. Filters that take `&Value` skip minijinja's automatic check.
fn require_defined(state: &State, value: &JinjaValue) -> Result<(), Error> {
    if value.is_undefined() {
        <String as ArgType>::from_state_and_value(Some(state), Some(value))?;
    }
    Ok(())
}

/// Compact JSON text by default; `indent=N` (minijinja) or `pretty=true` (Tera) pretty-prints.
/// Unlike minijinja's built-in `tojson` this does not escape `<`, `>`, `&` and `'` for HTML:
/// Strøm renders shell code and JSON payloads, never HTML.
fn tojson(state: &State, value: &JinjaValue, kwargs: Kwargs) -> Result<String, Error> {
    require_defined(state, value)?;
    let indent: Option<usize> = kwargs.get("indent")?;
    let pretty: Option<bool> = kwargs.get("pretty")?;
    kwargs.assert_all_used()?;
    let json = convert::to_json(value);
    let pretty = pretty.unwrap_or(false) || indent.is_some();
    let text = if pretty {
        let indent = " ".repeat(indent.unwrap_or(2));
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serialize::serialize(&json, &mut serializer)
            .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
        String::from_utf8_lossy(&out).into_owned()
    } else {
        json.to_string()
    };
    Ok(text)
}

/// The §12.1 text of a value, so `{{ x | string }}` and `{{ x }}` write the same thing
/// (minijinja's own `string` writes maps Python-style and `null` as `none`).
fn string(state: &State, value: &JinjaValue) -> Result<String, Error> {
    require_defined(state, value)?;
    Ok(convert::text(value))
}

fn fromjson(text: String) -> Result<JinjaValue, Error> {
    serde_json::from_str::<serde_json::Value>(&text)
        .map(|json| convert::to_jinja(&json))
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("fromjson: invalid JSON: {e}"),
            )
        })
}

/// Quotes the text of a value as one POSIX shell word: words made only of characters no shell
/// treats specially are left alone, anything else is single-quoted with `'` written as `'\''`.
pub fn quote_shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn shell_quote(state: &State, value: &JinjaValue) -> Result<String, Error> {
    require_defined(state, value)?;
    Ok(quote_shell_word(&convert::text(value)))
}

fn b64encode(state: &State, value: &JinjaValue) -> Result<String, Error> {
    require_defined(state, value)?;
    let bytes = match value.as_bytes() {
        Some(bytes) => bytes.to_vec(),
        None => convert::text(value).into_bytes(),
    };
    Ok(BASE64.encode(bytes))
}

fn b64decode(text: String) -> Result<String, Error> {
    let bytes = BASE64.decode(text.trim()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("b64decode: invalid base64: {e}"),
        )
    })?;
    String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "b64decode: the decoded bytes are not UTF-8 text",
        )
    })
}

/// `default(x)`, `default(x, true)`, and the keyword forms `default(value=x)` (Tera),
/// `default(default_value=x, boolean=true)` (Jinja2). Like Jinja2, only undefined values are
/// replaced unless the second argument asks for falsy values (`null`, `""`, `0`, …) too.
fn default(
    value: &JinjaValue,
    other: Option<JinjaValue>,
    lax: Option<JinjaValue>,
    kwargs: Kwargs,
) -> Result<JinjaValue, Error> {
    let other = match other {
        Some(other) => Some(other),
        None => match kwargs.get::<Option<JinjaValue>>("value")? {
            Some(other) => Some(other),
            None => kwargs.get::<Option<JinjaValue>>("default_value")?,
        },
    };
    let lax = match lax {
        Some(lax) => Some(lax),
        None => kwargs.get::<Option<JinjaValue>>("boolean")?,
    };
    kwargs.assert_all_used()?;
    let lax = lax.is_some_and(|lax| lax.is_true());
    if value.is_undefined() || (lax && !value.is_true()) {
        Ok(other.unwrap_or_else(|| JinjaValue::from("")))
    } else {
        Ok(value.clone())
    }
}

/// `join(sep)`, `join(sep=x)` (Tera), `join(d=x)` (Jinja2) and `attribute=`; items are written
/// with the §12.1 text rules.
fn join(
    state: &State,
    value: &JinjaValue,
    separator: Option<String>,
    attribute: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let separator = match separator {
        Some(separator) => Some(separator),
        None => match kwargs.get::<Option<String>>("sep")? {
            Some(separator) => Some(separator),
            None => kwargs.get::<Option<String>>("d")?,
        },
    };
    let attribute = match attribute {
        Some(attribute) => Some(attribute),
        None => kwargs.get::<Option<String>>("attribute")?,
    };
    kwargs.assert_all_used()?;
    require_defined(state, value)?;
    let items = value.try_iter().map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot join a value of type {}", value.kind()),
        )
    })?;
    let mut parts = Vec::new();
    for item in items {
        let item = match &attribute {
            Some(path) => lookup_path(&item, path),
            None => item,
        };
        parts.push(convert::text(&item));
    }
    Ok(parts.join(separator.as_deref().unwrap_or_default()))
}

/// Follows a dotted attribute path (`user.name`, `items.0`) the way Jinja2's `attribute=` does.
fn lookup_path(value: &JinjaValue, path: &str) -> JinjaValue {
    path.split('.').fold(value.clone(), |current, part| {
        let by_name = current.get_attr(part).unwrap_or_default();
        match part.parse::<usize>() {
            Ok(index) if by_name.is_undefined() => {
                current.get_item_by_index(index).unwrap_or_default()
            }
            _ => by_name,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(quote_shell_word("v1.2.3"), "v1.2.3");
        assert_eq!(quote_shell_word("/usr/bin/a-b_c"), "/usr/bin/a-b_c");
        assert_eq!(quote_shell_word(""), "''");
        assert_eq!(quote_shell_word("a b"), "'a b'");
        assert_eq!(quote_shell_word("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(quote_shell_word("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn quoted_words_survive_a_real_shell() {
        for text in ["it's", "a b\tc\nd", "$HOME `x` \\ \"q\"", "", "*"] {
            let script = format!("printf %s {}", quote_shell_word(text));
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&output.stdout), text, "{script}");
        }
    }
}
