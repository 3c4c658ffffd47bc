//! Query parameters of the public API, parsed and validated into types (API §1.5, §3.4, §4.2).
//!
//! Query strings arrive as name/value pairs; each query type reads the names it knows from
//! [`Params`] and reports the first unusable one as a [`ParamError`] naming the parameter, so
//! `?limit=0` and `?limit=abc` both become 400 `bad_request` with `field: "limit"`. Unknown names
//! are ignored (browsers and proxies add cache busters); the server's extractor builds `Params`
//! and calls [`FromParams::from_params`].

use std::str::FromStr;

use uuid::Uuid;

use super::error::ParamError;
use crate::engine::JobStatus;

/// Default and bounds of `limit` on paginated lists (API §1.5).
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;
/// Default and bound of `limit` on log reads (API §4.2).
pub const DEFAULT_LOG_LIMIT: u32 = 10_000;
pub const MAX_LOG_LIMIT: u32 = 100_000;
/// Largest `offset` or `after`: what a signed 64-bit column holds.
pub const MAX_COUNT: u64 = i64::MAX as u64;
/// Longest accepted `search` text (API §3.4).
pub const MAX_SEARCH_CHARS: usize = 200;

/// The decoded pairs of a query string; a repeated name keeps its last value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A present, non-empty value (`?workspace=` counts as absent).
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    }

    /// A number in `min..=max`, or `default` when absent.
    pub fn number<T>(&self, name: &str, default: T, min: T, max: T) -> Result<T, ParamError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        let range = || format!("must be a whole number from {min} to {max}");
        let value: T = text.parse().map_err(|_| ParamError::new(name, range()))?;
        if value < min || value > max {
            return Err(ParamError::new(name, range()));
        }
        Ok(value)
    }

    /// A whole number from 0 to [`MAX_COUNT`], or `default` when absent. Offsets and log
    /// positions are stored as signed 64-bit integers, so anything larger could only fail
    /// deeper down.
    pub fn count(&self, name: &str, default: u64) -> Result<u64, ParamError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .ok()
                .filter(|value| *value <= MAX_COUNT)
                .ok_or_else(|| {
                    ParamError::new(
                        name,
                        format!("must be a whole number from 0 to {MAX_COUNT}"),
                    )
                }),
        }
    }

    /// A UUID, when present.
    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, ParamError> {
        self.text(name)
            .map(|text| {
                Uuid::parse_str(&text)
                    .map_err(|_| ParamError::new(name, format!("'{text}' is not a valid UUID")))
            })
            .transpose()
    }
}

/// A query type built from [`Params`].
pub trait FromParams: Sized {
    fn from_params(params: &Params) -> Result<Self, ParamError>;
}

/// `limit` and `offset` of a paginated list (API §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1–500, default 50.
    pub limit: u32,
    /// Default 0.
    pub offset: u64,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl FromParams for Page {
    fn from_params(params: &Params) -> Result<Self, ParamError> {
        Ok(Page {
            limit: params.number("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?,
            offset: params.count("offset", 0)?,
        })
    }
}

/// Filters and page of `GET /api/jobs` (API §3.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobListQuery {
    pub workspace: Option<String>,
    /// Only with `workspace`.
    pub task_name: Option<String>,
    /// Any of these statuses; empty means all.
    pub status: Vec<JobStatus>,
    pub source_type: Option<String>,
    pub parent_job_id: Option<Uuid>,
    /// Substring of task name, workspace or source id, or a job-id prefix.
    pub search: Option<String>,
    pub page: Page,
}

impl FromParams for JobListQuery {
    fn from_params(params: &Params) -> Result<Self, ParamError> {
        let workspace = params.text("workspace");
        // `task` is accepted as well: the CLI's `--task` flag and older scripts use it.
        let task_name = params.text("task_name").or_else(|| params.text("task"));
        if task_name.is_some() && workspace.is_none() {
            return Err(ParamError::new(
                "task_name",
                "filtering by task requires `workspace`",
            ));
        }
        let search = params.text("search");
        if search
            .as_ref()
            .is_some_and(|text| text.chars().count() > MAX_SEARCH_CHARS)
        {
            return Err(ParamError::new(
                "search",
                format!("must be at most {MAX_SEARCH_CHARS} characters"),
            ));
        }
        Ok(JobListQuery {
            workspace,
            task_name,
            status: params
                .text("status")
                .map(|list| parse_statuses(&list))
                .transpose()?
                .unwrap_or_default(),
            source_type: params.text("source_type"),
            parent_job_id: params.uuid("parent_job_id")?,
            search,
            page: Page::from_params(params)?,
        })
    }
}

/// `running,failed` → the statuses, each known (blank entries are ignored).
pub fn parse_statuses(list: &str) -> Result<Vec<JobStatus>, ParamError> {
    let mut statuses = Vec::new();
    for word in list
        .split(',')
        .map(str::trim)
        .filter(|word| !word.is_empty())
    {
        let status = job_status(word).ok_or_else(|| {
            ParamError::new(
                "status",
                format!(
                    "unknown job status '{word}' (expected pending, running, completed, failed, \
                     cancelled or skipped)"
                ),
            )
        })?;
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    Ok(statuses)
}

fn job_status(word: &str) -> Option<JobStatus> {
    [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Skipped,
    ]
    .into_iter()
    .find(|status| status.as_str() == word)
}

/// `GET /api/jobs/{id}/logs?step=&after=&limit=` (API §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Lines with `seq` greater than this (default 0).
    pub after: u64,
    /// At most this many lines: 1–100 000, default 10 000.
    pub limit: u32,
    /// An exact step name, `_server`, or a loop step's name (all its instances).
    pub step: Option<String>,
}

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery {
            after: 0,
            limit: DEFAULT_LOG_LIMIT,
            step: None,
        }
    }
}

impl FromParams for LogQuery {
    fn from_params(params: &Params) -> Result<Self, ParamError> {
        Ok(LogQuery {
            after: params.count("after", 0)?,
            limit: params.number("limit", DEFAULT_LOG_LIMIT, 1, MAX_LOG_LIMIT)?,
            step: params.text("step"),
        })
    }
}
