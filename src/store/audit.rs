//! The audit trail (issue #12 item 7): one row per state-changing request, written in its own
//! transaction after the request's own, so a refused request leaves only this row behind.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use super::error::Result;
use super::tx::{from_millis, millis, on_tx, to_i64};

/// One recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub audit_id: Uuid,
    pub at: DateTime<Utc>,
    /// The e-mail of the signed-in user, or the e-mail a login attempt named; `None` when
    /// nobody is known.
    pub actor: Option<String>,
    /// How the actor proved who they are: `password`, `jwt`, `api-key:<prefix>`, `oidc:<id>`,
    /// `refresh`.
    pub via: Option<String>,
    pub source_ip: Option<String>,
    /// `auth.login`, `job.trigger`, `user.create`, …
    pub action: String,
    /// What the request acted on: `default/hello-world`, a job id, a user's e-mail.
    pub target: Option<String>,
    /// `success`, or the error code of the refusal (`invalid_credentials`, `forbidden`, …).
    pub outcome: String,
    pub status: u16,
    pub request_id: Option<String>,
}

/// Filters of `GET /api/audit`; empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
    pub offset: u64,
}

type AuditTuple = (
    Uuid,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    i64,
    Option<String>,
);

impl Store {
    pub async fn insert_audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut tx = self.begin_write().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query(
                "INSERT INTO audit (audit_id, at, actor, via, source_ip, action, target, \
                 outcome, status, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(entry.audit_id)
            .bind(millis(entry.at))
            .bind(entry.actor.as_deref())
            .bind(entry.via.as_deref())
            .bind(entry.source_ip.as_deref())
            .bind(entry.action.as_str())
            .bind(entry.target.as_deref())
            .bind(entry.outcome.as_str())
            .bind(i64::from(entry.status))
            .bind(entry.request_id.as_deref())
            .execute(&mut **conn)
            .await?;
        });
        tx.commit().await
    }

    /// Entries matching `filter`, newest first, and how many match in all. `actor` matches
    /// exactly (lower-cased by the caller); `action` matches exactly or, ending in `.`, as a
    /// prefix (`auth.` for every sign-in event).
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<(Vec<AuditEntry>, u64)> {
        let mut tx = self.begin_read().await?;
        let action_pattern = filter.action.as_ref().map(|action| {
            let escaped = action
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            if action.ends_with('.') {
                format!("{escaped}%")
            } else {
                escaped
            }
        });
        let conditions = "($1 IS NULL OR actor = $1) AND ($2 IS NULL OR action LIKE $2 ESCAPE '\\') \
                          AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4)";
        let count_sql = format!("SELECT COUNT(*) FROM audit WHERE {conditions}");
        let list_sql = format!(
            "SELECT audit_id, at, actor, via, source_ip, action, target, outcome, status, \
             request_id FROM audit WHERE {conditions} ORDER BY at DESC, audit_id DESC \
             LIMIT $5 OFFSET $6"
        );
        let since = filter.since.map(millis);
        let until = filter.until.map(millis);
        let (total, tuples): (i64, Vec<AuditTuple>) = on_tx!(&mut tx, conn => {
            let total = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))
                .bind(filter.actor.as_deref())
                .bind(action_pattern.as_deref())
                .bind(since)
                .bind(until)
                .fetch_one(&mut **conn)
                .await?;
            let tuples = sqlx::query_as(sqlx::AssertSqlSafe(list_sql))
                .bind(filter.actor.as_deref())
                .bind(action_pattern.as_deref())
                .bind(since)
                .bind(until)
                .bind(i64::from(filter.limit))
                .bind(to_i64(filter.offset)?)
                .fetch_all(&mut **conn)
                .await?;
            (total, tuples)
        });
        tx.commit().await?;
        let entries = tuples
            .into_iter()
            .map(|tuple| {
                let (audit_id, at, actor, via, source_ip, action, target, outcome, status, rid) =
                    tuple;
                Ok(AuditEntry {
                    audit_id,
                    at: from_millis(at)?,
                    actor,
                    via,
                    source_ip,
                    action,
                    target,
                    outcome,
                    status: u16::try_from(status).unwrap_or_default(),
                    request_id: rid,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((entries, u64::try_from(total).unwrap_or_default()))
    }
}
