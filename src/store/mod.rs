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
mod gauges;
mod job;
mod lease;
mod migrate;
mod notify;
mod query;
mod retention;
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
pub use error::{Result, StoreError, is_unavailable};
pub use job::JobRouting;
pub use lease::{HeartbeatReply, Lease, LeaseKey, LeaseStatus, LeaseUse};
pub use query::{JobCounts, JobFilter, JobSummary, Visibility, VisibilityRule};
pub use sessions::{ApiKeyRecord, NewRefresh, Rotation};
pub use triggers::TriggerTick;
pub use users::{NewUser, UserRecord};
pub use worker::{Worker, WorkerRegistration, WorkerStatus, WorkerStep};

use tx::Tx;

/// How long a SQLite writer waits for the write lock before giving up, unless configured
/// (`db.busy_timeout_secs`). Write transactions are short (one job's change), so a long wait
/// means another process holds the lock: the request then fails with 503 and `Retry-After`
/// instead of hanging (see [`is_unavailable`]).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the health probe waits for SQLite's write lock: well inside the health check's own
/// bound, so the probe answers instead of being cancelled.
const PROBE_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

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
    /// The process's metrics: committed job and step changes are recorded here.
    metrics: crate::metrics::Metrics,
}

#[derive(Debug, Clone)]
enum Db {
    Sqlite(Box<Sqlite>),
    Postgres(PgPool),
}

#[derive(Debug, Clone)]
struct Sqlite {
    pool: SqlitePool,
    /// The lock every write transaction of this process takes first.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// How the pool's connections are made, for the health probe's own connection.
    options: SqliteConnectOptions,
    /// The longest wait for the writer lock.
    busy_timeout: Duration,
}

/// Makes the SQLite database at `file` private (`0600`) before SQLite opens it: a new one is
/// created empty with that mode, an existing one and its `-wal` and `-shm` files lose group and
/// other permissions. SQLite gives the `-wal` and `-shm` files it creates the mode of the
/// database file, so they follow. The database holds job inputs with secret values (WF §16.2).
fn private_database(file: &std::path::Path) -> std::io::Result<()> {
    if file.as_os_str().is_empty() || file.to_str().is_some_and(|name| name.contains(":memory:")) {
        return Ok(());
    }
    match crate::private::options()
        .write(true)
        .create_new(true)
        .open(file)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            crate::private::tighten(file)?;
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut name = file.as_os_str().to_owned();
                name.push(suffix);
                crate::private::tighten_if_present(std::path::Path::new(&name))?;
            }
            Ok(())
        }
        Err(error) => Err(error),
    }
}

impl Store {
    /// Connects to `sqlite://…` or `postgres://…` and applies pending migrations. A SQLite file
    /// is created if missing (its directory must exist), readable by this user only, like its
    /// `-wal` and `-shm` files (see [`private_database`]).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        Store::connect_with(url, max_connections, DEFAULT_BUSY_TIMEOUT).await
    }

    /// [`Store::connect`] with the bound on waiting for SQLite's write lock or for a pooled
    /// connection (`db.busy_timeout_secs`).
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        busy_timeout: Duration,
    ) -> Result<Store> {
        let scheme = url.split(':').next().unwrap_or_default();
        let db = match scheme {
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // WAL with NORMAL stays consistent after a crash; only the last commits
                    // before a power loss may be lost.
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(busy_timeout)
                    .foreign_keys(true);
                private_database(options.get_filename()).map_err(sqlx::Error::Io)?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(busy_timeout)
                    .after_release(|conn, _| Box::pin(tx::still_usable(conn)))
                    .connect_with(options.clone())
                    .await?;
                Db::Sqlite(Box::new(Sqlite {
                    pool,
                    writer: std::sync::Arc::default(),
                    options,
                    busy_timeout,
                }))
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
            metrics: crate::metrics::Metrics::default(),
        };
        migrate::run(store.begin_write().await?).await?;
        Ok(store)
    }

    /// The metrics this store records committed changes in; the server's other parts record
    /// theirs in the same set.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// After the commit of a write that produced `saved`: its changes count in the metrics,
    /// and it becomes the cached version.
    pub(crate) fn committed(&self, saved: std::sync::Arc<job::LoadedJob>) {
        if !saved.transitions.is_empty() {
            self.metrics.record(&saved.transitions);
        }
        self.cache.put(saved);
    }

    /// Closes every connection; pending work finishes first.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(sqlite) => sqlite.pool.close().await,
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

    /// The check behind `/healthz`: can the database be written? On PostgreSQL a round trip.
    /// On SQLite reads go on while another process holds the write lock, so the probe takes
    /// the lock itself — on a connection of its own with a short busy timeout, after this
    /// process's writers — and gives it back at once.
    pub async fn ping(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(sqlite) => {
                use sqlx::{ConnectOptions, Connection};
                let _turn = tokio::time::timeout(PROBE_BUSY_TIMEOUT, sqlite.writer.lock())
                    .await
                    .map_err(|_| StoreError::WriterBusy(PROBE_BUSY_TIMEOUT))?;
                let mut probe = sqlite
                    .options
                    .clone()
                    .busy_timeout(PROBE_BUSY_TIMEOUT)
                    .connect()
                    .await?;
                let written = async {
                    sqlx::query("BEGIN IMMEDIATE").execute(&mut probe).await?;
                    sqlx::query("ROLLBACK").execute(&mut probe).await
                }
                .await;
                // Closing ends a transaction the probe may have left open.
                let _ = probe.close().await;
                written?;
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
            Db::Sqlite(sqlite) => {
                let writer = std::sync::Arc::clone(&sqlite.writer);
                let guard = tokio::time::timeout(sqlite.busy_timeout, writer.lock_owned())
                    .await
                    .map_err(|_| StoreError::WriterBusy(sqlite.busy_timeout))?;
                Tx::Sqlite(
                    sqlite.pool.begin_with("BEGIN IMMEDIATE").await?,
                    Some(guard),
                )
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
            Db::Sqlite(sqlite) => Tx::Sqlite(sqlite.pool.begin().await?, None),
            Db::Postgres(pool) => Tx::PostgresStatement(pool.acquire().await?),
        })
    }

    /// A read-only transaction that sees one snapshot (a job and its steps agree).
    async fn begin_read(&self) -> Result<Tx> {
        Ok(match &self.db {
            Db::Sqlite(sqlite) => Tx::Sqlite(sqlite.pool.begin().await?, None),
            Db::Postgres(pool) => Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }
}

#[cfg(test)]
mod tests;
