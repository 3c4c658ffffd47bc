//! Transactions over either backend and the glue that lets one function body serve both.
//!
//! sqlx queries are typed by database, so a store function cannot hold "a connection" without
//! naming the backend. [`on_tx!`] expands the same body once per backend instead; the body's
//! SQL and binds are then checked for each. SQL is written once with `$n` placeholders, which
//! sqlx accepts on SQLite too; where the dialects differ (row locks, JSON set tests) the macro
//! takes one text per backend.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite, Transaction};

use super::error::{Result, StoreError};

/// An open transaction on either backend. A SQLite write transaction holds the store's writer
/// lock until it ends (see [`Store::begin_write`](super::Store)); the guard is declared after the
/// transaction so it is released only once the transaction is over.
pub(crate) enum Tx {
    Sqlite(
        Transaction<'static, Sqlite>,
        Option<tokio::sync::OwnedMutexGuard<()>>,
    ),
    Postgres(Transaction<'static, Postgres>),
    /// A PostgreSQL connection outside any transaction, for one read statement: `BEGIN` and
    /// `COMMIT` would add two round trips to the one (see [`Store::read_one`](super::Store)).
    PostgresStatement(sqlx::pool::PoolConnection<Postgres>),
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx, _writer) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
            Tx::PostgresStatement(_) => {}
        }
        Ok(())
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_) | Tx::PostgresStatement(_))
    }
}

/// Whether a SQLite connection going back to the pool can serve another transaction.
///
/// When a write fails for lack of disk space or an I/O error, SQLite may end the transaction by
/// itself (`SQLITE_FULL`, `SQLITE_IOERR`); the `ROLLBACK` sqlx then sends fails ("no transaction
/// is active") and sqlx keeps counting the transaction as open. Back in the pool, such a
/// connection refuses every later `BEGIN IMMEDIATE` ("begin_with at non-zero transaction
/// depth"), so one moment of a full disk would break writes until a restart (issue #16 item
/// 17). It is closed instead, and the pool opens a fresh one when needed. The ping first lets
/// the connection carry out the rollback queued when the transaction was dropped.
pub(crate) async fn still_usable(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<bool> {
    use sqlx::Connection;
    conn.ping().await?;
    let usable = !conn.is_in_transaction();
    if !usable {
        tracing::warn!("closing a database connection whose transaction could not be ended");
    }
    Ok(usable)
}

/// Runs `$body` with `$conn` bound to the transaction's connection (`&mut **$conn` is an
/// executor), once per backend. With `$sql = (sqlite, postgres)` the body also gets the text
/// for its backend.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::store::tx::Tx::Sqlite($conn, _) => $body,
            $crate::store::tx::Tx::Postgres($conn) => $body,
            $crate::store::tx::Tx::PostgresStatement($conn) => $body,
        }
    };
    ($tx:expr, $conn:ident, $sql:ident = ($lite:expr, $pg:expr) => $body:expr) => {
        match $tx {
            $crate::store::tx::Tx::Sqlite($conn, _) => {
                let $sql = $lite;
                $body
            }
            $crate::store::tx::Tx::Postgres($conn) => {
                let $sql = $pg;
                $body
            }
            $crate::store::tx::Tx::PostgresStatement($conn) => {
                let $sql = $pg;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// Times are stored as unix milliseconds on both backends (API §1.2 asks for millisecond
/// precision): finer parts are dropped on write.
pub(crate) fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub(crate) fn opt_millis(time: Option<DateTime<Utc>>) -> Option<i64> {
    time.map(millis)
}

pub(crate) fn from_millis(value: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(value)
        .ok_or_else(|| StoreError::invalid(format!("time {value} ms is out of range")))
}

pub(crate) fn opt_from_millis(value: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    value.map(from_millis).transpose()
}

/// Unsigned counters are stored as signed 64-bit integers (PostgreSQL has no unsigned types).
pub(crate) fn to_i64(value: impl TryInto<i64> + Copy + std::fmt::Display) -> Result<i64> {
    value
        .try_into()
        .map_err(|_| StoreError::invalid(format!("{value} does not fit a 64-bit column")))
}

pub(crate) fn to_u32(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| StoreError::invalid(format!("{value} is not a u32")))
}

pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(StoreError::invalid)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(StoreError::invalid)
}

/// Parses a status column through the type's serde names (the same words the API uses).
pub(crate) fn parse_status<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| StoreError::invalid(format!("unknown status '{text}'")))
}
