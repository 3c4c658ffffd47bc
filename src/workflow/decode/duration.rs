//! Durations (WF §2.4) and resource quantities (WF §2.5).

use super::super::model::Duration;
use super::super::yaml::{Node, Resolved};
use super::fields::{Ctx, Fields};

pub const HOUR: u64 = 3_600;
pub const DAY: u64 = 86_400;

/// Parses `90`, `"90"`, `30s`, `1h30m`, `2d`: groups of `<integer><unit>` with units in
/// descending order `d h m s`, no spaces.
pub fn parse(text: &str) -> Result<u64, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map_err(|_| "the number is too large".to_owned());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut last_rank: Option<usize> = None;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let Some((rank, size)) = ["d", "h", "m", "s"]
            .iter()
            .zip([DAY, HOUR, 60, 1])
            .enumerate()
            .find(|(_, (unit, _))| unit.starts_with(c))
            .map(|(rank, (_, size))| (rank, size))
        else {
            return Err(format!("'{c}' is not a unit (use d, h, m or s)"));
        };
        if digits.is_empty() {
            return Err(format!("unit '{c}' has no number before it"));
        }
        if last_rank.is_some_and(|last| rank <= last) {
            return Err("units must appear once each, in the order d, h, m, s".to_owned());
        }
        last_rank = Some(rank);
        let amount: u64 = digits
            .parse()
            .map_err(|_| "the number is too large".to_owned())?;
        digits.clear();
        total = amount
            .checked_mul(size)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| "the duration is too large".to_owned())?;
    }
    if !digits.is_empty() {
        return Err("a number at the end has no unit (use d, h, m or s)".to_owned());
    }
    if last_rank.is_none() {
        return Err("it is empty".to_owned());
    }
    Ok(total)
}

/// Reads the duration at `key`, enforcing `1 ≤ d ≤ max` (or `0 ≤ d` with `allow_zero`).
pub fn field(
    cx: &mut Ctx,
    fields: &mut Fields,
    key: &str,
    max: u64,
    allow_zero: bool,
) -> Option<Duration> {
    let node = fields.get(key)?;
    let path = fields.path_of(key);
    let text = match node.as_scalar().map(|s| s.value) {
        Some(Resolved::Int(i)) if i >= 0 => i.to_string(),
        Some(Resolved::String) => node.scalar_text().unwrap_or_default().to_owned(),
        _ => {
            cx.wrong_type(node, &path, "a duration such as 30s, 5m or 1h30m");
            return None;
        }
    };
    let secs = match parse(&text) {
        Ok(secs) => secs,
        Err(why) => {
            let message = format!(
                "invalid duration '{text}' for '{key}': {why}; write e.g. 90, 30s, 5m or 1h30m"
            );
            cx.error("invalid-duration", message, node.mark, &path);
            return None;
        }
    };
    if secs == 0 && !allow_zero {
        cx.error(
            "invalid-duration",
            format!("'{key}' must be longer than zero"),
            node.mark,
            &path,
        );
        return None;
    }
    if secs > max {
        let message = format!(
            "'{key}' of {} is longer than the maximum of {}",
            Duration(secs),
            Duration(max)
        );
        cx.error("invalid-duration", message, node.mark, &path);
        return None;
    }
    Some(Duration(secs))
}

/// Kubernetes CPU notation: `2`, `0.5`, `500m`.
pub fn is_cpu(text: &str) -> bool {
    let number = text.strip_suffix('m').unwrap_or(text);
    is_decimal(number) && number.parse::<f64>().is_ok_and(|n| n > 0.0)
}

/// Kubernetes memory notation: a number with an optional binary (`Ki`…`Ei`) or decimal
/// (`k`, `M`, `G`, `T`, `P`, `E`) suffix.
pub fn is_memory(text: &str) -> bool {
    const SUFFIXES: [&str; 12] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
    ];
    let number = SUFFIXES
        .iter()
        .find_map(|suffix| text.strip_suffix(suffix))
        .unwrap_or(text);
    is_decimal(number) && number.parse::<f64>().is_ok_and(|n| n > 0.0)
}

fn is_decimal(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// A quantity as text: YAML numbers (`cpu: 2`) are taken as written.
pub fn quantity_text(node: &Node) -> Option<&str> {
    match node.as_scalar().map(|s| s.value) {
        Some(Resolved::Int(_) | Resolved::Float(_) | Resolved::String) => node.scalar_text(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("90"), Ok(90));
        assert_eq!(parse("30s"), Ok(30));
        assert_eq!(parse("5m"), Ok(300));
        assert_eq!(parse("1h30m"), Ok(5_400));
        assert_eq!(parse("2d"), Ok(172_800));
        assert_eq!(parse("1d2h3m4s"), Ok(93_784));
    }

    #[test]
    fn rejects_other_forms() {
        for bad in [
            "", "m", "1x", "30 s", "1m1h", "1h1h", "1.5h", "10", "-5s", "5", "1h 30m",
        ]
        .iter()
        .filter(|t| t.parse::<u64>().is_err())
        {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        for good in ["2", "0.5", "500m", "1.5"] {
            assert!(is_cpu(good), "{good}");
        }
        for bad in ["", "m", "2 cores", "-1", "0", "1e3", "500M"] {
            assert!(!is_cpu(bad), "{bad}");
        }
        for good in ["512Mi", "2Gi", "1G", "1000", "128k", "1.5Gi"] {
            assert!(is_memory(good), "{good}");
        }
        for bad in ["", "512MB", "2gb", "Mi", "-1Gi", "1 Gi"] {
            assert!(!is_memory(bad), "{bad}");
        }
    }
}
