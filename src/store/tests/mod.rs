//! Store tests. Every test runs on both backends: [`backend_test!`] expands one body into a
//! `sqlite` test (a fresh file in a temporary directory) and a `postgres` test (a fresh,
//! uniquely named database on 127.0.0.1:5432, dropped afterwards).

mod auth;
mod claims;
mod fixture;
mod jobs;
mod leases;
mod pinning;
mod retention;
mod workers;

use std::path::PathBuf;

use sqlx::postgres::PgPoolOptions;
use tempfile::TempDir;
use uuid::Uuid;

use super::Store;

const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PG_BASE_URL: &str = "postgres://postgres@127.0.0.1:5432";

/// A fresh database of one backend and a store connected to it.
pub(super) struct TestDb {
    pub store: Store,
    url: String,
    pg_database: Option<String>,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path: PathBuf = dir.path().join("stroem.db");
        let url = format!("sqlite://{}", path.display());
        let store = Store::connect(&url, 4).await.expect("connect to SQLite");
        TestDb {
            store,
            url,
            pg_database: None,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        let name = format!("stroem_test_{}", Uuid::new_v4().simple());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(PG_ADMIN_URL)
            .await
            .expect("PostgreSQL at 127.0.0.1:5432");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let url = format!("{PG_BASE_URL}/{name}");
        let store = Store::connect(&url, 8)
            .await
            .expect("connect to PostgreSQL");
        TestDb {
            store,
            url,
            pg_database: Some(name),
            _dir: None,
        }
    }

    /// A second store on the same database, as after a server restart.
    pub async fn reopen(&self) -> Store {
        Store::connect(&self.url, 4).await.expect("reconnect")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_database.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on itself: drop the database
        // from a helper thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(PG_ADMIN_URL)
                    .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await?;
                admin.close().await;
                Ok::<(), sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database: {error}");
        }
    }
}

/// Defines `mod $name { fn sqlite(); fn postgres(); }` running the same body on each backend.
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($db:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($db: &$crate::store::tests::TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::store::tests::TestDb::sqlite().await;
                run(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::store::tests::TestDb::postgres().await;
                run(&db).await;
            }
        }
    };
}
pub(super) use backend_test;
