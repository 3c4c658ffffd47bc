//! Schema migrations, one tree per backend (`migrations/sqlite`, `migrations/postgres`),
//! embedded in the binary and applied at start-up in one transaction. Applied versions are
//! recorded in `stroem_migrations`; on PostgreSQL an advisory lock makes replicas that start
//! together apply each migration once.

use super::error::{Result, StoreError};
use super::tx::{Tx, on_tx};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every migration in order. A migration is never edited once released; changes add one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sqlite: include_str!("../../migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "triggers",
        sqlite: include_str!("../../migrations/sqlite/0002_triggers.sql"),
        postgres: include_str!("../../migrations/postgres/0002_triggers.sql"),
    },
    Migration {
        version: 3,
        name: "job_version",
        sqlite: include_str!("../../migrations/sqlite/0003_job_version.sql"),
        postgres: include_str!("../../migrations/postgres/0003_job_version.sql"),
    },
    Migration {
        version: 4,
        name: "live_lease_worker",
        sqlite: include_str!("../../migrations/sqlite/0004_live_lease_worker.sql"),
        postgres: include_str!("../../migrations/postgres/0004_live_lease_worker.sql"),
    },
    Migration {
        version: 5,
        name: "auth",
        sqlite: include_str!("../../migrations/sqlite/0005_auth.sql"),
        postgres: include_str!("../../migrations/postgres/0005_auth.sql"),
    },
    Migration {
        version: 6,
        name: "job_mask",
        sqlite: include_str!("../../migrations/sqlite/0006_job_mask.sql"),
        postgres: include_str!("../../migrations/postgres/0006_job_mask.sql"),
    },
    Migration {
        version: 7,
        name: "approvals",
        sqlite: include_str!("../../migrations/sqlite/0007_approvals.sql"),
        postgres: include_str!("../../migrations/postgres/0007_approvals.sql"),
    },
    Migration {
        version: 8,
        name: "local_mode",
        sqlite: include_str!("../../migrations/sqlite/0008_local_mode.sql"),
        postgres: include_str!("../../migrations/postgres/0008_local_mode.sql"),
    },
];

/// An arbitrary constant naming Strøm's migration lock among PostgreSQL advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x5374_726f_6d00_0001;

pub(crate) async fn run(mut tx: Tx) -> Result<()> {
    if let Tx::Postgres(conn) = &mut tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut **conn)
            .await?;
    }
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS stroem_migrations \
             (version BIGINT PRIMARY KEY NOT NULL, name TEXT NOT NULL)",
        )
        .execute(&mut **conn)
        .await?;
    });
    let applied: Vec<i64> = on_tx!(&mut tx, conn => {
        sqlx::query_scalar("SELECT version FROM stroem_migrations")
            .fetch_all(&mut **conn)
            .await?
    });
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        let failed = |source| StoreError::Migration {
            version: migration.version,
            name: migration.name,
            source,
        };
        on_tx!(&mut tx, conn, sql = (migration.sqlite, migration.postgres) => {
            sqlx::raw_sql(sql).execute(&mut **conn).await.map_err(failed)?;
            sqlx::query("INSERT INTO stroem_migrations (version, name) VALUES ($1, $2)")
                .bind(migration.version)
                .bind(migration.name)
                .execute(&mut **conn)
                .await
                .map_err(failed)?;
        });
    }
    tx.commit().await
}
