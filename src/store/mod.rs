//! Storage: jobs, steps, leases and workers on SQLite (the default, a WAL file under the data
//! directory) or PostgreSQL, behind one [`Store`] (DESIGN §2). *Invariant*: this is the only
//! module with SQL.
//!
//! Every state change is one transaction (STYLE 6). A job's changes are serialised: on
//! PostgreSQL by a `FOR UPDATE` lock on its row, on SQLite because every write transaction
//! starts with `BEGIN IMMEDIATE` and SQLite admits one writer at a time. The engine decides, the
//! store persists: callers apply engine events inside [`Store::with_job`] and the claim,
//! lease and expiry paths, so no transition is implemented twice.
//!
//! Representation, identical on both backends: times are unix milliseconds in 64-bit integer
//! columns (API §1.2's millisecond precision; finer parts are dropped on write), and JSON
//! documents are TEXT. Not JSONB on PostgreSQL: JSONB reorders object keys, and inputs,
//! outputs and `for_each` items must come back in the order they were written, as they do on
//! SQLite. The only JSON the store queries into (a step's tags) is cast to `jsonb` in the
//! claim query.

mod audit;
mod cache;
mod claim;
mod error;
mod job;
mod lease;
mod migrate;
mod notify;
mod query;
mod rows;
mod sessions;
mod sql;
mod triggers;
mod tx;
mod users;
mod worker;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use audit::{AuditEntry, AuditFilter};
pub use claim::{Claim, WaitingStep};
pub use error::{Result, StoreError};
pub use job::JobRouting;
pub use lease::{HeartbeatReply, Lease, LeaseKey, LeaseStatus, LeaseUse};
pub use query::{JobCounts, JobFilter, JobSummary, Visibility, VisibilityRule};
pub use sessions::{ApiKeyRecord, NewRefresh, Rotation};
pub use triggers::TriggerTick;
pub use users::{NewUser, UserRecord};
pub use worker::{Worker, WorkerRegistration, WorkerStatus, WorkerStep};

use tx::Tx;

/// How long a SQLite writer waits for the write lock before giving up. Write transactions are
/// short (one job's change), so a long wait means something is stuck.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The database: a cheap-to-clone handle over a connection pool of either backend.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// Unfinished jobs by version (see [`cache`]); shared by clones of this store.
    cache: std::sync::Arc<cache::JobCache>,
    /// Names this store (this server) in the notifications it sends (see [`notify`]).
    id: std::sync::Arc<str>,
    /// Claims of this process take turns (see [`Store::claim`]).
    claims: std::sync::Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Clone)]
enum Db {
    /// The pool and the writer lock every write transaction takes first.
    Sqlite(SqlitePool, std::sync::Arc<tokio::sync::Mutex<()>>),
    Postgres(PgPool),
}

impl Store {
    /// Connects to `sqlite://…` or `postgres://…` and applies pending migrations. A SQLite file
    /// is created if missing (its directory must exist).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        let scheme = url.split(':').next().unwrap_or_default();
        let db = match scheme {
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // WAL with NORMAL stays consistent after a crash; only the last commits
                    // before a power loss may be lost.
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .connect_with(options)
                    .await?;
                Db::Sqlite(pool, std::sync::Arc::default())
            }
            "postgres" | "postgresql" => {
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .connect(url)
                    .await?;
                Db::Postgres(pool)
            }
            other => return Err(StoreError::UnsupportedUrl(other.to_owned())),
        };
        let store = Store {
            db,
            cache: std::sync::Arc::default(),
            id: uuid::Uuid::new_v4().to_string().into(),
            claims: std::sync::Arc::default(),
        };
        migrate::run(store.begin_write().await?).await?;
        Ok(store)
    }

    /// Closes every connection; pending work finishes first.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(pool, _) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// Which backend this is, for logs and the health check.
    pub fn backend(&self) -> &'static str {
        match &self.db {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A cheap round trip for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(pool, _) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Db::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// A transaction that will write. SQLite takes the write lock at `BEGIN` so that a job's
    /// read-modify-write cannot interleave with another writer (a deferred transaction would
    /// fail with `SQLITE_BUSY` when upgrading from read to write instead).
    ///
    /// SQLite admits one writer at a time, and a writer that finds the lock taken polls for it
    /// with sleeps that grow to tens of milliseconds (its busy handler). This process's writers
    /// therefore queue on an async lock first and meet SQLite's lock free: under load, a change
    /// waits for the ones before it, not for a sleep (issue #3).
    async fn begin_write(&self) -> Result<Tx> {
        Ok(match &self.db {
            Db::Sqlite(pool, writer) => {
                let guard = std::sync::Arc::clone(writer).lock_owned().await;
                Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?, Some(guard))
            }
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// For a read of one statement, which sees one snapshot by itself: on PostgreSQL a pooled
    /// connection without a transaction, one round trip instead of three (a claim reads its
    /// worker and looks for a candidate this way, issue #3); on SQLite a read transaction,
    /// which costs no round trip.
    async fn read_one(&self) -> Result<Tx> {
        Ok(match &self.db {
            Db::Sqlite(pool, _) => Tx::Sqlite(pool.begin().await?, None),
            Db::Postgres(pool) => Tx::PostgresStatement(pool.acquire().await?),
        })
    }

    /// A read-only transaction that sees one snapshot (a job and its steps agree).
    async fn begin_read(&self) -> Result<Tx> {
        Ok(match &self.db {
            Db::Sqlite(pool, _) => Tx::Sqlite(pool.begin().await?, None),
            Db::Postgres(pool) => Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }
}

#[cfg(test)]
mod tests;
