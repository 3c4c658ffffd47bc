//! The wire format of times (API §1.2): RFC 3339 in UTC with exactly three fractional digits,
//! `2026-03-01T12:00:00.123Z`. chrono's default serde format prints as many digits as the value
//! holds (nanoseconds from the clock), so every time field of a wire type goes through these
//! helpers instead.
//!
//! Use `#[serde(with = "crate::api::time")]` on `DateTime<Utc>` fields and
//! `#[serde(with = "crate::api::time::option")]` on `Option<DateTime<Utc>>` fields. Parsing
//! accepts any RFC 3339 time (any offset, any precision) and converts it to UTC.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// `2026-03-01T12:00:00.123Z`.
pub fn format(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 time with any offset into UTC.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc))
}

pub fn serialize<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(time))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(|error| {
        serde::de::Error::custom(format!("invalid RFC 3339 time '{text}': {error}"))
    })
}

/// The same format for optional times; `None` is `null`.
pub mod option {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        time: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => super::serialize(time, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => super::parse(&text).map(Some).map_err(|error| {
                serde::de::Error::custom(format!("invalid RFC 3339 time '{text}': {error}"))
            }),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Times {
        #[serde(with = "crate::api::time")]
        at: DateTime<Utc>,
        #[serde(with = "crate::api::time::option")]
        maybe: Option<DateTime<Utc>>,
    }

    #[test]
    fn writes_milliseconds_in_utc_whatever_the_precision() {
        let base = parse("2026-03-01T12:00:00Z").expect("fixed time parses");
        let times = Times {
            at: base + TimeDelta::nanoseconds(123_456_789),
            maybe: None,
        };
        let json = serde_json::to_string(&times).expect("serialises");
        assert_eq!(json, r#"{"at":"2026-03-01T12:00:00.123Z","maybe":null}"#);
        let whole = Times {
            at: base,
            maybe: Some(base),
        };
        assert_eq!(
            serde_json::to_string(&whole).expect("serialises"),
            r#"{"at":"2026-03-01T12:00:00.000Z","maybe":"2026-03-01T12:00:00.000Z"}"#
        );
    }

    #[test]
    fn reads_any_offset_into_utc() {
        let times: Times = serde_json::from_str(
            r#"{"at":"2026-03-01T13:00:00.5+01:00","maybe":"2026-03-01T12:00:00Z"}"#,
        )
        .expect("parses");
        assert_eq!(format(&times.at), "2026-03-01T12:00:00.500Z");
        let error = serde_json::from_str::<Times>(r#"{"at":"yesterday","maybe":null}"#)
            .expect_err("not a time");
        assert!(
            error
                .to_string()
                .contains("invalid RFC 3339 time 'yesterday'")
        );
    }
}
