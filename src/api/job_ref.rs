//! `JobRef`: how a user names a job — the full id, the 8 hex digits the UI shows (the id's
//! end), or any longer start or end of the id (issue #15). The CLI checks the form before
//! sending anything; the server resolves it to one job (404 when none matches, 400
//! `ambiguous` with the candidates when several do).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The fewest hex digits a partial id may have: fewer would match nearly every job.
pub const MIN_DIGITS: usize = 4;
/// How many candidates an ambiguous id lists.
pub const MAX_CANDIDATES: usize = 10;

/// A full job id or a part of one, as written (lower-cased hex, dashes dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    /// As the user wrote it, for messages.
    written: String,
    /// The hex digits, lower case, without dashes.
    digits: String,
}

/// Why a text is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobRefError {
    #[error("'{0}' is not a job id: use hex digits (0-9, a-f), at least {MIN_DIGITS} of them")]
    NotHex(String),
    #[error("'{0}' is not a job id: use at least {MIN_DIGITS} of its hex digits")]
    TooShort(String),
    #[error("'{0}' is not a job id: a job id has 32 hex digits")]
    TooLong(String),
}

impl JobRef {
    /// The whole id, when all 32 digits were given.
    pub fn exact(&self) -> Option<Uuid> {
        if self.digits.len() == 32 {
            Uuid::parse_str(&self.digits).ok()
        } else {
            None
        }
    }

    /// The hex digits given, lower case, without dashes.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The smallest and largest ids that start with these digits.
    pub fn start_range(&self) -> (Uuid, Uuid) {
        let pad = |fill: char| {
            let mut text = self.digits.clone();
            while text.len() < 32 {
                text.push(fill);
            }
            Uuid::parse_str(&text).unwrap_or_default()
        };
        (pad('0'), pad('f'))
    }

    /// Whether `id` starts or ends with these digits.
    pub fn matches(&self, id: Uuid) -> bool {
        let hex = id.simple().to_string();
        hex.starts_with(&self.digits) || hex.ends_with(&self.digits)
    }
}

impl FromStr for JobRef {
    type Err = JobRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let written = text.trim().to_owned();
        let digits: String = written
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(JobRefError::NotHex(written));
        }
        if digits.len() < MIN_DIGITS {
            return Err(JobRefError::TooShort(written));
        }
        if digits.len() > 32 {
            return Err(JobRefError::TooLong(written));
        }
        Ok(JobRef { written, digits })
    }
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl From<Uuid> for JobRef {
    fn from(id: Uuid) -> Self {
        JobRef {
            written: id.to_string(),
            digits: id.simple().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_ids_parse_and_match() {
        let id: Uuid = "0195a3b2-7c11-7d2e-9f00-e914cdcf1234"
            .parse()
            .expect("uuid");
        let short: JobRef = "cdcf1234".parse().expect("short id");
        assert!(short.matches(id) && short.exact().is_none());
        let start: JobRef = "0195A3B2-7c".parse().expect("dashed start");
        assert_eq!(start.digits(), "0195a3b27c");
        assert!(start.matches(id));
        let (low, high) = start.start_range();
        assert!(low <= id && id <= high);
        assert_eq!(low.to_string(), "0195a3b2-7c00-0000-0000-000000000000");
        let full: JobRef = id.to_string().parse().expect("full id");
        assert_eq!(full.exact(), Some(id));
        assert!(!"9999".parse::<JobRef>().expect("part").matches(id));
    }

    #[test]
    fn texts_that_are_no_id_are_refused_with_the_reason() {
        let refuse = |text: &str| text.parse::<JobRef>().expect_err(text).to_string();
        assert!(refuse("abc").contains("at least 4"));
        assert!(refuse("xyz12345").contains("hex digits"));
        assert!(refuse(&"a".repeat(33)).contains("32 hex digits"));
    }
}
