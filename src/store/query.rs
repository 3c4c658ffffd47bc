//! Read-only views over many jobs: the job list with its filters (API §3.4), counts by status
//! (API §3.5) and the unfinished jobs a restarted server resumes timers for.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::Store;
use super::error::Result;
use super::tx::{from_millis, on_tx, opt_from_millis, parse_status, to_i64};
use crate::engine::JobStatus;
use crate::workflow::model::TaskMode;

/// Filters of `GET /api/jobs` (API §3.4); empty fields do not filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    pub workspace: Option<String>,
    pub task_name: Option<String>,
    /// Any of these statuses; empty means all.
    pub statuses: Vec<JobStatus>,
    pub source_type: Option<String>,
    pub parent_job_id: Option<Uuid>,
    /// Only jobs without a parent that are not hook jobs.
    pub top_level: bool,
    /// Only the hook jobs this job fired (`source_id` `<id>/<event>`).
    pub hook_of: Option<Uuid>,
    /// Substring of task name, workspace or source id (any case), or a job-id prefix.
    pub search: Option<String>,
    /// The jobs the caller may see (access rules); `None` sees all.
    pub visibility: Option<Visibility>,
    pub limit: u32,
    pub offset: u64,
}

/// Which jobs a caller may see, by workspace and task name: rules tried in order, the first
/// whose workspace glob and any task glob match decides; `default` when none does. Globs know
/// `*` and `?` only, so they translate exactly into SQLite's `GLOB` and PostgreSQL's `LIKE`,
/// and lists, counts and statistics filter in the database — `X-Total-Count` counts only
/// what the caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    pub rules: Vec<VisibilityRule>,
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibilityRule {
    pub workspace: String,
    pub tasks: Vec<String>,
    pub visible: bool,
}

impl Default for JobFilter {
    fn default() -> Self {
        JobFilter {
            workspace: None,
            task_name: None,
            statuses: Vec::new(),
            source_type: None,
            parent_job_id: None,
            top_level: false,
            hook_of: None,
            search: None,
            visibility: None,
            limit: 50,
            offset: 0,
        }
    }
}

/// A job list item (API §2.4 summary, less the fields of later phases).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSummary {
    pub job_id: Uuid,
    pub workspace: String,
    pub task_name: String,
    pub status: JobStatus,
    pub source_type: String,
    pub source_id: Option<String>,
    pub revision: String,
    pub priority: i64,
    pub parent_job_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// Whether the job keeps its mask record, so `error` was masked when it was stored; false
    /// only for jobs stored before records were kept (migration 0006).
    pub masked: bool,
    /// The task's `mode` when the job was created (WF §8).
    pub mode: TaskMode,
}

/// Jobs by status (API §3.5 `GET /api/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub pending: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub skipped: u64,
}

/// A bind of a dynamically built condition.
pub(super) enum Param {
    Text(String),
    Id(Uuid),
}

/// Binds `params` in order onto a query of either backend.
macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Text(text) => query.bind(text.as_str()),
                Param::Id(id) => query.bind(*id),
            };
        }
        query
    }};
}
pub(super) use bind_all;

type SummaryTuple = (
    Uuid,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<Uuid>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    bool,
    String,
);

impl Store {
    /// Jobs matching `filter`, newest `created_at` first, and how many match in all.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<(Vec<JobSummary>, u64)> {
        let mut tx = self.begin_read().await?;
        let mut conditions: Vec<String> = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let mut add = |condition: &str, param: Param, params: &mut Vec<Param>| {
            params.push(param);
            conditions.push(condition.replace('?', &format!("${}", params.len())));
        };
        if let Some(workspace) = &filter.workspace {
            add("workspace = ?", Param::Text(workspace.clone()), &mut params);
        }
        if let Some(task) = &filter.task_name {
            add("task = ?", Param::Text(task.clone()), &mut params);
        }
        if let Some(source_type) = &filter.source_type {
            add(
                "source_type = ?",
                Param::Text(source_type.clone()),
                &mut params,
            );
        }
        if let Some(parent) = filter.parent_job_id {
            add("parent_job_id = ?", Param::Id(parent), &mut params);
        }
        if !filter.statuses.is_empty() {
            let mut placeholders = Vec::new();
            for status in &filter.statuses {
                params.push(Param::Text(status.as_str().to_owned()));
                placeholders.push(format!("${}", params.len()));
            }
            conditions.push(format!("status IN ({})", placeholders.join(", ")));
        }
        if let Some(search) = filter.search.as_deref().filter(|text| !text.is_empty()) {
            let id_text = if tx.is_postgres() {
                "replace(id::text, '-', '')"
            } else {
                "lower(hex(id))"
            };
            params.push(Param::Text(format!(
                "%{}%",
                escape_like(&search.to_lowercase())
            )));
            let substring = params.len();
            params.push(Param::Text(format!(
                "{}%",
                escape_like(&search.to_lowercase().replace('-', ""))
            )));
            let prefix = params.len();
            conditions.push(format!(
                "(lower(task) LIKE ${substring} ESCAPE '\\' \
                 OR lower(workspace) LIKE ${substring} ESCAPE '\\' \
                 OR lower(coalesce(source_id, '')) LIKE ${substring} ESCAPE '\\' \
                 OR {id_text} LIKE ${prefix} ESCAPE '\\')"
            ));
        }
        if let Some(hooked) = filter.hook_of {
            // A uuid holds no LIKE wildcard.
            params.push(Param::Text(format!("{hooked}/%")));
            conditions.push(format!(
                "source_type = 'hook' AND source_id LIKE ${}",
                params.len()
            ));
        }
        if filter.top_level {
            conditions.push("parent_job_id IS NULL AND source_type <> 'hook'".to_owned());
        }
        if let Some(visibility) = &filter.visibility
            && let Some(condition) = visibility_condition(visibility, tx.is_postgres(), &mut params)
        {
            conditions.push(condition);
        }
        let where_sql = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) FROM jobs{where_sql}");
        let list_sql = format!(
            "SELECT id, workspace, task, status, source_type, source_id, revision, priority, \
             parent_job_id, created_at, started_at, completed_at, error, mask IS NOT NULL, \
             mode FROM jobs{where_sql} \
             ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            params.len() + 1,
            params.len() + 2
        );
        let limit = i64::from(filter.limit);
        let offset = to_i64(filter.offset)?;
        let (total, tuples): (i64, Vec<SummaryTuple>) = on_tx!(&mut tx, conn => {
            let total = bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql)), &params)
                .fetch_one(&mut **conn)
                .await?;
            let tuples = bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(list_sql)), &params)
                .bind(limit)
                .bind(offset)
                .fetch_all(&mut **conn)
                .await?;
            (total, tuples)
        });
        tx.commit().await?;
        let jobs = tuples
            .into_iter()
            .map(summary)
            .collect::<Result<Vec<_>>>()?;
        Ok((jobs, u64::try_from(total).unwrap_or_default()))
    }

    /// Job counts by status, of one workspace or all, of the jobs `visibility` lets through.
    pub async fn job_counts(
        &self,
        workspace: Option<&str>,
        visibility: Option<&Visibility>,
    ) -> Result<JobCounts> {
        let mut tx = self.begin_read().await?;
        let mut params = vec![Param::Text(workspace.unwrap_or_default().to_owned())];
        let mut sql =
            "SELECT status, COUNT(*) FROM jobs WHERE ($1 = '' OR workspace = $1)".to_owned();
        if let Some(visibility) = visibility
            && let Some(condition) = visibility_condition(visibility, tx.is_postgres(), &mut params)
        {
            sql.push_str(" AND ");
            sql.push_str(&condition);
        }
        sql.push_str(" GROUP BY status");
        let rows: Vec<(String, i64)> = on_tx!(&mut tx, conn => {
            bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &params)
                .fetch_all(&mut **conn)
                .await?
        });
        tx.commit().await?;
        let mut counts = JobCounts::default();
        for (status, count) in rows {
            let count = u64::try_from(count).unwrap_or_default();
            match parse_status::<JobStatus>(&status)? {
                JobStatus::Pending => counts.pending = count,
                JobStatus::Running => counts.running = count,
                JobStatus::Completed => counts.completed = count,
                JobStatus::Failed => counts.failed = count,
                JobStatus::Cancelled => counts.cancelled = count,
                JobStatus::Skipped => counts.skipped = count,
            }
        }
        Ok(counts)
    }

    /// The ids of the jobs whose id lies in `start` (the ids that start with some digits) or
    /// whose hex digits end with `end` (issue #15: the UI shows the last 8), of the jobs
    /// `visibility` lets through (and only those of `source`, `(source_type, source_id)`, when
    /// given), newest first, at most `limit`. The start is a range over the primary key; the
    /// end needs a scan, which is fine for a person typing an id. `end` must be lower-case hex
    /// digits.
    pub async fn find_job_ids(
        &self,
        start: (Uuid, Uuid),
        end: &str,
        visibility: Option<&Visibility>,
        source: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Uuid>> {
        let mut tx = self.read_one().await?;
        let (low, high) = start;
        let id_text = if tx.is_postgres() {
            "replace(id::text, '-', '')"
        } else {
            "lower(hex(id))"
        };
        // Only hex digits, so nothing in the pattern is special to LIKE.
        let end: String = end.chars().filter(char::is_ascii_hexdigit).collect();
        let mut params = vec![
            Param::Id(low),
            Param::Id(high),
            Param::Text(format!("%{end}")),
        ];
        let mut sql =
            format!("SELECT id FROM jobs WHERE (id BETWEEN $1 AND $2 OR {id_text} LIKE $3)");
        if let Some((source_type, source_id)) = source {
            params.push(Param::Text(source_type.to_owned()));
            params.push(Param::Text(source_id.to_owned()));
            sql.push_str(&format!(
                " AND source_type = ${} AND source_id = ${}",
                params.len() - 1,
                params.len()
            ));
        }
        if let Some(visibility) = visibility
            && let Some(condition) = visibility_condition(visibility, tx.is_postgres(), &mut params)
        {
            sql.push_str(" AND ");
            sql.push_str(&condition);
        }
        sql.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT ${}",
            params.len() + 1
        ));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let ids: Vec<Uuid> = on_tx!(&mut tx, conn => {
            bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), &params)
                .bind(limit)
                .fetch_all(&mut **conn)
                .await?
        });
        tx.commit().await?;
        Ok(ids)
    }

    /// Jobs that have not finished (no `completed_at`), oldest first: after a restart the
    /// server re-arms their timers (job timeouts, task-step retries) from these.
    pub async fn unfinished_jobs(&self) -> Result<Vec<Uuid>> {
        let mut tx = self.begin_read().await?;
        let ids = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(
                "SELECT id FROM jobs WHERE completed_at IS NULL \
                 AND status <> 'skipped' ORDER BY created_at, id",
            )
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        Ok(ids)
    }
}

fn summary(tuple: SummaryTuple) -> Result<JobSummary> {
    let (
        job_id,
        workspace,
        task_name,
        status,
        source_type,
        source_id,
        revision,
        priority,
        parent_job_id,
        created_at,
        started_at,
        completed_at,
        error,
        masked,
        mode,
    ) = tuple;
    Ok(JobSummary {
        job_id,
        workspace,
        task_name,
        status: parse_status(&status)?,
        source_type,
        source_id,
        revision,
        priority,
        parent_job_id,
        created_at: from_millis(created_at)?,
        started_at: opt_from_millis(started_at)?,
        completed_at: opt_from_millis(completed_at)?,
        error,
        masked,
        mode: TaskMode::parse(&mode)
            .ok_or_else(|| super::StoreError::invalid(format!("unknown job mode '{mode}'")))?,
    })
}

/// The SQL condition that keeps the jobs `visibility` lets through, binding its patterns as
/// `params`; `None` when it lets everything through. It names the columns `workspace` and
/// `task` bare, so a query joining other tables must not have columns of those names.
pub(super) fn visibility_condition(
    visibility: &Visibility,
    postgres: bool,
    params: &mut Vec<Param>,
) -> Option<String> {
    if visibility.default && visibility.rules.iter().all(|rule| rule.visible) {
        return None;
    }
    if !visibility.default && visibility.rules.iter().all(|rule| !rule.visible) {
        return Some("1 = 0".to_owned());
    }
    let matches = |column: &str, glob: &str, params: &mut Vec<Param>| {
        let pattern = if postgres {
            glob_to_like(glob)
        } else {
            glob.replace('[', "[[]")
        };
        params.push(Param::Text(pattern));
        if postgres {
            format!("{column} LIKE ${} ESCAPE '\\'", params.len())
        } else {
            format!("{column} GLOB ${}", params.len())
        }
    };
    let mut sql = String::from("(CASE");
    for rule in &visibility.rules {
        let workspace = matches("workspace", &rule.workspace, params);
        let tasks: Vec<String> = rule
            .tasks
            .iter()
            .map(|task| matches("task", task, params))
            .collect();
        let tasks = if tasks.is_empty() {
            "1 = 0".to_owned()
        } else {
            tasks.join(" OR ")
        };
        sql.push_str(&format!(
            " WHEN {workspace} AND ({tasks}) THEN {}",
            i32::from(rule.visible)
        ));
    }
    sql.push_str(&format!(" ELSE {} END) = 1", i32::from(visibility.default)));
    Some(sql)
}

/// A `*`/`?` glob as a LIKE pattern with `\` as escape character.
fn glob_to_like(glob: &str) -> String {
    let mut pattern = String::with_capacity(glob.len());
    for character in glob.chars() {
        match character {
            '*' => pattern.push('%'),
            '?' => pattern.push('_'),
            '%' | '_' | '\\' => {
                pattern.push('\\');
                pattern.push(character);
            }
            other => pattern.push(other),
        }
    }
    pattern
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a LIKE pattern.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}
