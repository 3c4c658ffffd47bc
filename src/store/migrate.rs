//! Schema migrations, one tree per backend (`migrations/sqlite`, `migrations/postgres`),
//! embedded in the binary and applied at start-up through sqlx's [`Migrator`].
//!
//! A migration is a file `<version>_<name>.sql`; every file of the tree is one (the trees are
//! read as they are, so a new migration needs no code). sqlx records each applied migration in
//! `_sqlx_migrations` with the SHA-384 checksum of its text, and a database whose recorded
//! checksum differs from the embedded text is refused with an error naming the migration: a
//! released migration is never edited, a change adds one. So is a database holding a
//! migration this binary does not have (it was migrated by a newer release; downgrades are not
//! supported, docs/deploying.md).
//!
//! All pending migrations apply in one transaction — on SQLite a `BEGIN IMMEDIATE` one, on
//! PostgreSQL one holding an advisory lock, so replicas that start together apply each
//! migration once — and a failure leaves the database as it was. sqlx's migrator runs inside
//! it (each migration in a savepoint), with its own locking off.
//!
//! Databases made before sqlx's migrator was used recorded their versions in
//! `stroem_migrations` (version, name; no checksum). Those versions are adopted: recorded in
//! `_sqlx_migrations` with the checksum of the embedded text, as sqlx records a skipped
//! migration, in the same transaction that drops the old table and applies what is pending.

use std::borrow::Cow;

use include_dir::{Dir, include_dir};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationType, Migrator};

use super::error::{Result, StoreError};
use super::tx::{Tx, on_tx};

static SQLITE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/migrations/sqlite");
static POSTGRES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/migrations/postgres");

/// sqlx's table of applied migrations (its default name, so `sqlx migrate info` reads it too).
const TABLE: &str = "_sqlx_migrations";

/// The table of applied versions written before sqlx's migrator (see the module comment).
const LEGACY_TABLE: &str = "stroem_migrations";

/// An arbitrary constant naming Strøm's migration lock among PostgreSQL advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x5374_726f_6d00_0001;

/// Which tree of migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(tx: &Tx) -> Backend {
        if tx.is_postgres() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Every migration of `backend`'s tree, in version order. A file whose name is not
/// `<version>_<name>.sql`, or two files of one version, are an error naming the file.
pub(crate) fn migrations(backend: Backend) -> Result<Vec<Migration>> {
    let dir = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    let invalid = |file: &str, why: &str| {
        StoreError::MigrationSource(format!(
            "migrations/{}/{file}: {why} (expected <version>_<name>.sql)",
            backend.name()
        ))
    };
    let mut migrations: Vec<Migration> = Vec::new();
    for entry in dir.entries() {
        let path = entry.path().display().to_string();
        let Some(file) = entry.as_file() else {
            return Err(invalid(&path, "not a file"));
        };
        let Some(stem) = path.strip_suffix(".sql") else {
            return Err(invalid(&path, "not a .sql file"));
        };
        let Some((version, name)) = stem.split_once('_') else {
            return Err(invalid(&path, "no '_' between version and name"));
        };
        let version: i64 = match version.parse() {
            Ok(number) if number > 0 && version.bytes().all(|b| b.is_ascii_digit()) => number,
            _ => return Err(invalid(&path, "the version is not a positive number")),
        };
        if name.is_empty() || name.contains(' ') {
            return Err(invalid(&path, "the name is empty or has spaces"));
        }
        let Some(sql) = file.contents_utf8() else {
            return Err(invalid(&path, "not UTF-8"));
        };
        if let Some(other) = migrations.iter().find(|m| m.version == version) {
            return Err(invalid(
                &path,
                &format!("version {version} is also {}", file_name(other)),
            ));
        }
        migrations.push(Migration::new(
            version,
            Cow::Owned(name.replace('_', " ")),
            MigrationType::Simple,
            sql.into_sql_str(),
            false,
        ));
    }
    migrations.sort_by_key(|migration| migration.version);
    Ok(migrations)
}

/// The file a migration was read from, for messages: sqlx keeps the name with spaces for `_`.
pub(crate) fn file_name(migration: &Migration) -> String {
    described(migration.version, &migration.description)
}

fn described(version: i64, description: &str) -> String {
    format!("{version:04}_{}.sql", description.replace(' ', "_"))
}

/// Applies every pending migration of the transaction's backend and commits.
pub(crate) async fn run(tx: Tx) -> Result<()> {
    let migrations = migrations(Backend::of(&tx))?;
    apply(tx, &migrations, None).await
}

/// Applies `migrations` up to and including version `target` (all with `None`) in `tx`, after
/// adopting a legacy record and checking what the database already holds, and commits. Nothing
/// is changed when any step fails.
pub(crate) async fn apply(mut tx: Tx, migrations: &[Migration], target: Option<i64>) -> Result<()> {
    if let Tx::Postgres(conn) = &mut tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut **conn)
            .await?;
    }
    let mut migrator = Migrator::with_migrations(migrations.to_vec());
    // The transaction is the lock: sqlx's own would be a second, session-wide one.
    migrator.set_locking(false);
    on_tx!(&mut tx, conn => {
        Migrate::ensure_migrations_table(&mut **conn, TABLE)
            .await
            .map_err(|error| migrate_error(error, migrations))?;
    });
    adopt_legacy(&mut tx, migrations).await?;
    check_applied(&mut tx, migrations).await?;
    on_tx!(&mut tx, conn => {
        let ran = match target {
            Some(target) => migrator.run_to(target, &mut **conn).await,
            None => migrator.run(&mut **conn).await,
        };
        ran.map_err(|error| migrate_error(error, migrations))?;
    });
    tx.commit().await
}

/// Records the versions of a legacy `stroem_migrations` table in sqlx's, with the checksums of
/// the embedded texts, and drops it.
async fn adopt_legacy(tx: &mut Tx, migrations: &[Migration]) -> Result<()> {
    let exists: Option<String> = on_tx!(tx, conn, sql = (
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1",
        "SELECT tablename::TEXT FROM pg_tables \
         WHERE schemaname = current_schema() AND tablename = $1"
    ) => {
        sqlx::query_scalar(sql).bind(LEGACY_TABLE).fetch_optional(&mut **conn).await?
    });
    if exists.is_none() {
        return Ok(());
    }
    let legacy: Vec<(i64, String)> = on_tx!(tx, conn => {
        sqlx::query_as("SELECT version, name FROM stroem_migrations ORDER BY version")
            .fetch_all(&mut **conn)
            .await?
    });
    let adopted: Vec<i64> = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&mut **conn)
            .await?
    });
    for (version, name) in legacy {
        if adopted.contains(&version) {
            continue;
        }
        let Some(migration) = migrations.iter().find(|m| m.version == version) else {
            return Err(StoreError::MigrationUnknown {
                version,
                name: described(version, &name),
            });
        };
        on_tx!(tx, conn => {
            Migrate::skip(&mut **conn, TABLE, migration)
                .await
                .map_err(|error| migrate_error(error, migrations))?;
        });
    }
    on_tx!(tx, conn => {
        sqlx::query("DROP TABLE stroem_migrations").execute(&mut **conn).await?;
    });
    Ok(())
}

/// Refuses a database that records a migration this binary does not have, or one whose text
/// changed since it was applied — naming it. sqlx's migrator checks the same, by version only.
async fn check_applied(tx: &mut Tx, migrations: &[Migration]) -> Result<()> {
    let applied: Vec<(i64, String, Vec<u8>)> = on_tx!(tx, conn => {
        sqlx::query_as("SELECT version, description, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut **conn)
            .await?
    });
    for (version, description, checksum) in applied {
        match migrations.iter().find(|m| m.version == version) {
            None => {
                return Err(StoreError::MigrationUnknown {
                    version,
                    name: described(version, &description),
                });
            }
            Some(migration) if *migration.checksum != *checksum => {
                return Err(StoreError::MigrationEdited {
                    version,
                    name: file_name(migration),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn migrate_error(error: MigrateError, migrations: &[Migration]) -> StoreError {
    let name = |version: i64| {
        migrations
            .iter()
            .find(|m| m.version == version)
            .map_or_else(|| format!("{version:04}"), file_name)
    };
    match error {
        MigrateError::ExecuteMigration(source, version) => StoreError::Migration {
            version,
            name: name(version),
            source,
        },
        MigrateError::Execute(source) => StoreError::Database(source),
        MigrateError::VersionMismatch(version) => StoreError::MigrationEdited {
            version,
            name: name(version),
        },
        MigrateError::VersionMissing(version) => StoreError::MigrationUnknown {
            version,
            name: format!("{version:04}"),
        },
        other => StoreError::MigrationSource(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two trees hold the same migrations, version for version and name for name, and
    /// every file parses.
    #[test]
    fn both_trees_hold_the_same_migrations() {
        let names = |backend| {
            migrations(backend)
                .expect("the tree parses")
                .iter()
                .map(file_name)
                .collect::<Vec<_>>()
        };
        let sqlite = names(Backend::Sqlite);
        assert_eq!(sqlite, names(Backend::Postgres));
        assert_eq!(sqlite.first().map(String::as_str), Some("0001_initial.sql"));
    }
}
