//! Wake-ups across servers (API §7.3): on PostgreSQL, a transaction that makes a step ready
//! also sends `NOTIFY stroem_ready`, delivered when it commits, and every server LISTENs so a
//! worker long-polling on another replica claims the step at once instead of when its poll
//! times out. SQLite serves one server, whose in-process wake-up is enough.
//!
//! The payload is the sending store's id, so a server skips its own notifications: it already
//! woke its claimers in-process.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::tx::Tx;
use super::{Db, Store};
use crate::store::error::Result;

/// The channel of "a step became ready" notifications.
const READY_CHANNEL: &str = "stroem_ready";
/// Pause before listening again after the listener failed (the database is restarting).
const RELISTEN_PAUSE: Duration = Duration::from_secs(1);

/// Queues the ready notification in `tx` (PostgreSQL only); it is sent if `tx` commits.
pub(crate) async fn step_ready(tx: &mut Tx, sender: &str) -> Result<()> {
    if let Tx::Postgres(conn) = tx {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(READY_CHANNEL)
            .bind(sender)
            .execute(&mut **conn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Calls `wake` whenever another server made a step ready, until `shutdown`; returns at
    /// once on SQLite. A lost connection is re-established, and `wake` is called then too,
    /// since notifications sent meanwhile are lost.
    pub async fn watch_ready(&self, wake: impl Fn() + Send, shutdown: CancellationToken) {
        let Db::Postgres(pool) = &self.db else {
            return;
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                Err(error) = listen(pool, &self.id, &wake) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(%error, "listening for ready steps failed; listening again");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RELISTEN_PAUSE) => {}
            }
        }
    }
}

/// Listens until the connection fails for good; only ever returns an error.
async fn listen(
    pool: &sqlx::PgPool,
    own_id: &str,
    wake: &impl Fn(),
) -> Result<std::convert::Infallible, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(READY_CHANNEL).await?;
    // Steps made ready before the listener was up were missed.
    wake();
    loop {
        match listener.try_recv().await? {
            Some(notification) if notification.payload() == own_id => {}
            // `None`: the connection was lost and is back; what was sent meanwhile is lost.
            Some(_) | None => wake(),
        }
    }
}
