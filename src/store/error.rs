//! The store's typed errors. The server maps them to statuses by kind (API §1.3): `StaleLease`
//! to 409 `stale_lease`, `JobNotFound`/`WorkerNotFound` to 404, `Database` to 500 or 503.

use uuid::Uuid;

use super::lease::LeaseStatus;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Only the scheme is named: the rest of a database URL may hold a password.
    #[error("unsupported database URL scheme '{0}' (expected sqlite:// or postgres://)")]
    UnsupportedUrl(String),
    #[error("migration {name} failed: {source}")]
    Migration {
        version: i64,
        /// The migration's file name, `0003_job_version.sql`.
        name: String,
        source: sqlx::Error,
    },
    /// The text of a migration this database has applied differs from the one it was applied
    /// with (sqlx's recorded checksum): released migrations are never edited.
    #[error(
        "migration {name} was changed after this database applied it (its checksum differs \
         from the one recorded in _sqlx_migrations): a released migration must never be \
         edited — restore its text and put the change in a new migration"
    )]
    MigrationEdited { version: i64, name: String },
    /// The database has applied a migration this binary does not have.
    #[error(
        "the database has applied migration {name}, which this version of Strøm does not \
         have: a newer release migrated it, and downgrades are not supported (restore the \
         backup taken before the upgrade)"
    )]
    MigrationUnknown { version: i64, name: String },
    /// The embedded migrations could not be read (a misnamed file).
    #[error("invalid migrations: {0}")]
    MigrationSource(String),
    #[error("job {0} not found")]
    JobNotFound(Uuid),
    #[error("job {0} already exists")]
    DuplicateJob(Uuid),
    #[error("worker {0} not found")]
    WorkerNotFound(Uuid),
    /// A start, log or complete report under a lease that is not the step's current one, or
    /// that belongs to another worker (API §7.4). Nothing was changed. `state` and
    /// `report_digest` describe the lease if it exists, so the server can recognise a retried
    /// `complete` that was already applied.
    #[error("lease {lease_id} is not current")]
    StaleLease {
        lease_id: Uuid,
        state: Option<LeaseStatus>,
        report_digest: Option<String>,
    },
    /// A claim callback returned without moving the step out of `ready`: claiming it again would
    /// loop forever, so the transaction is rolled back instead.
    #[error("step '{step}' of job {job_id} was neither claimed nor rejected by the claim callback")]
    ClaimUndecided { job_id: Uuid, step: String },
    /// A state change removed a step; steps are rows that are never deleted.
    #[error("step '{step}' of job {job_id} disappeared from the job state")]
    StepRemoved { job_id: Uuid, step: String },
    /// A unique key clash: `field` names the value that is already taken.
    #[error("{field} is already in use")]
    Conflict { field: &'static str },
    /// A value that does not fit its column (a number out of range, an unknown status).
    #[error("invalid stored value: {0}")]
    Invalid(String),
    /// This process's earlier writers held SQLite's write lock for longer than the bound.
    #[error("the database stayed busy for {0:?}")]
    WriterBusy(std::time::Duration),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// A unique-key violation as [`StoreError::Conflict`] on `field`, any other error as is.
    pub(crate) fn unique(error: sqlx::Error, field: &'static str) -> Self {
        match &error {
            sqlx::Error::Database(database) if database.is_unique_violation() => {
                StoreError::Conflict { field }
            }
            _ => StoreError::Database(error),
        }
    }

    pub(crate) fn invalid(what: impl std::fmt::Display) -> Self {
        StoreError::Invalid(what.to_string())
    }

    /// Whether the database is out of reach for now rather than the request being wrong: the
    /// write lock stayed taken (SQLite `BUSY`/`LOCKED`: another process holds it), no pooled
    /// connection came free in time, or the pool is closing. Worth a retry later (503).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::WriterBusy(_) => true,
            StoreError::Database(error) | StoreError::Migration { source: error, .. } => {
                sqlx_unavailable(error)
            }
            _ => false,
        }
    }
}

fn sqlx_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(database) => {
            database
                .code()
                .and_then(|code| code.parse::<i64>().ok())
                // SQLite's primary result code is the low byte of the extended one.
                .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
                && database
                    .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                    .is_some()
        }
        _ => false,
    }
}

const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// Whether `error`, or any error it was caused by, is a [`StoreError::is_unavailable`] one (or
/// the database error inside one): the server answers such failures with 503 and
/// `Retry-After`, whichever layer wrapped them.
pub fn is_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(cause) = current {
        if cause
            .downcast_ref::<StoreError>()
            .is_some_and(StoreError::is_unavailable)
            || cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(sqlx_unavailable)
        {
            return true;
        }
        current = cause.source();
    }
    false
}
