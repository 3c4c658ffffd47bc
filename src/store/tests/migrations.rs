//! Migrations through sqlx's migrator (issue #17 item 12): a database at the first schema that
//! holds jobs, steps, leases and workers upgrades to the latest with its data intact and
//! usable — whether the first schema was recorded by the migrator Strøm used before
//! (`stroem_migrations`, adopted) or by sqlx's; an edited migration, or one this binary does
//! not know, is refused with an error naming it; a failing migration changes nothing.

use serde_json::json;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType};
use uuid::Uuid;

use super::backend_test;
use super::fixture::{Fixture, TestError, at, finished, ttl};
use crate::engine::{Event, JobState, JobStatus, StepStatus};
use crate::runner::spec::Outcome;
use crate::store::migrate::{self, Backend};
use crate::store::rows::{JobRow, StepRow};
use crate::store::tx::on_tx;
use crate::store::{JobFilter, JobRouting, LeaseKey, LeaseStatus, LeaseUse, Store, StoreError};

fn backend(store: &Store) -> Backend {
    match store.backend() {
        "postgres" => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

fn all_migrations(store: &Store) -> Vec<Migration> {
    migrate::migrations(backend(store)).expect("the embedded migrations parse")
}

/// What Strøm's migrator before sqlx's did (src/store/migrate.rs until issue #17): each
/// migration's text run as is, its version and name recorded in `stroem_migrations`.
async fn legacy_migrate(store: &Store, migrations: &[Migration]) {
    let mut tx = store.begin_write().await.expect("begin");
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS stroem_migrations \
             (version BIGINT PRIMARY KEY NOT NULL, name TEXT NOT NULL)",
        )
        .execute(&mut **conn)
        .await
        .expect("legacy table");
        for migration in migrations {
            sqlx::raw_sql(migration.sql.clone()).execute(&mut **conn).await.expect("legacy migration");
            sqlx::query("INSERT INTO stroem_migrations (version, name) VALUES ($1, $2)")
                .bind(migration.version)
                .bind(migration.description.replace(' ', "_"))
                .execute(&mut **conn)
                .await
                .expect("legacy record");
        }
    });
    tx.commit().await.expect("commit");
}

/// Inserts a job into the tables as migration 0001 made them: only the columns that schema has.
async fn insert_first_schema_job(store: &Store, job: &JobState, routing: &JobRouting) {
    let row = JobRow::from_state(job).expect("job row");
    let mut tx = store.begin_write().await.expect("begin");
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "INSERT INTO jobs (id, workspace, task, status, input, raw_input, output, error, \
             created_at, started_at, completed_at, source_type, source_id, parent_job_id, \
             parent_step_name, revision, depth, timeout_secs, priority) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(row.id)
        .bind(&row.workspace)
        .bind(&row.task)
        .bind(&row.status)
        .bind(&row.input)
        .bind(&row.raw_input)
        .bind(&row.output)
        .bind(&row.error)
        .bind(row.created_at)
        .bind(row.started_at)
        .bind(row.completed_at)
        .bind(&row.source_type)
        .bind(&row.source_id)
        .bind(row.parent_job_id)
        .bind(&row.parent_step_name)
        .bind(&row.revision)
        .bind(row.depth)
        .bind(row.timeout_secs)
        .bind(row.priority)
        .execute(&mut **conn)
        .await
        .expect("insert job");
        for (position, step) in job.steps.iter().enumerate() {
            let tags = routing.tags.get(step.flow_name()).cloned().unwrap_or_default();
            let step = StepRow::from_state(job.id, position, step, &json!(tags).to_string())
                .expect("step row");
            sqlx::query(
                "INSERT INTO steps (job_id, step_name, position, action_name, action_type, \
                 runner, status, depends_on, input, output, error_message, attempt, \
                 max_attempts, retry_at, retry_history, ready_at, started_at, completed_at, \
                 for_each, loop_source, loop_index, loop_total, child_job_id, capability, tags) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)",
            )
            .bind(step.job_id)
            .bind(&step.step_name)
            .bind(step.position)
            .bind(&step.action_name)
            .bind(&step.action_type)
            .bind(&step.runner)
            .bind(&step.status)
            .bind(&step.depends_on)
            .bind(&step.input)
            .bind(&step.output)
            .bind(&step.error_message)
            .bind(step.attempt)
            .bind(step.max_attempts)
            .bind(step.retry_at)
            .bind(&step.retry_history)
            .bind(step.ready_at)
            .bind(step.started_at)
            .bind(step.completed_at)
            .bind(&step.for_each)
            .bind(&step.loop_source)
            .bind(step.loop_index)
            .bind(step.loop_total)
            .bind(step.child_job_id)
            .bind(&step.capability)
            .bind(&step.tags)
            .execute(&mut **conn)
            .await
            .expect("insert step");
        }
    });
    tx.commit().await.expect("commit");
}

/// A worker and one live lease of it, as migration 0001's tables hold them.
async fn insert_first_schema_worker_and_lease(store: &Store, worker_id: Uuid, lease: &LeaseKey) {
    let mut tx = store.begin_write().await.expect("begin");
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "INSERT INTO workers (worker_id, name, version, status, capabilities, tags, \
             max_concurrent, last_heartbeat, registered_at) \
             VALUES ($1, 'legacy-worker', '0.1.0', 'active', '[\"script\"]', '[]', 4, $2, $3)",
        )
        .bind(worker_id)
        .bind(at(1).timestamp_millis())
        .bind(at(0).timestamp_millis())
        .execute(&mut **conn)
        .await
        .expect("insert worker");
        sqlx::query(
            "INSERT INTO leases (lease_id, job_id, step_name, attempt, worker_id, state, \
             claimed_at, started_at, expires_at, report_digest) \
             VALUES ($1, $2, $3, 1, $4, 'active', $5, NULL, $6, NULL)",
        )
        .bind(lease.lease_id)
        .bind(lease.job_id)
        .bind(&lease.step_name)
        .bind(worker_id)
        .bind(at(1).timestamp_millis())
        .bind((at(1) + ttl()).timestamp_millis())
        .execute(&mut **conn)
        .await
        .expect("insert lease");
    });
    tx.commit().await.expect("commit");
}

/// The versions recorded in sqlx's table, and whether the legacy table is still there.
async fn recorded(store: &Store) -> (Vec<i64>, bool) {
    let mut tx = store.begin_write().await.expect("begin");
    let versions: Vec<i64> = on_tx!(&mut tx, conn => {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut **conn)
            .await
            .expect("versions")
    });
    let legacy: Option<i64> = on_tx!(&mut tx, conn => {
        sqlx::query_scalar("SELECT version FROM stroem_migrations LIMIT 1")
            .fetch_optional(&mut **conn)
            .await
            .ok()
            .flatten()
    });
    drop(tx);
    (versions, legacy.is_some())
}

#[derive(Debug, Clone, Copy)]
enum FirstSchema {
    /// Recorded in `stroem_migrations` by the migrator before sqlx's.
    Legacy,
    /// Recorded by sqlx's migrator.
    Sqlx,
}

/// A database at schema 0001 holding a running job (a live lease of a registered worker), a
/// completed one and a pending loop, upgraded by [`Store::connect`] like a server start.
async fn upgrade_from_first_schema(db: &super::TestDb, first: FirstSchema) {
    let all = all_migrations(&db.store);
    assert!(all.len() > 1, "there is something to upgrade to");
    match first {
        FirstSchema::Legacy => legacy_migrate(&db.store, &all[..1]).await,
        FirstSchema::Sqlx => {
            let tx = db.store.begin_write().await.expect("begin");
            migrate::apply(tx, &all, Some(1))
                .await
                .expect("migrate to 0001");
            assert_eq!(recorded(&db.store).await, (vec![1], false));
        }
    }

    let fx = Fixture::new();
    let (mut running, running_routing) = fx.job("pipeline", at(0), 5);
    fx.apply(
        &mut running,
        Event::StepClaimed {
            step: "build".into(),
        },
        at(1),
    )
    .expect("claimed");
    let (mut done, done_routing) = fx.job("single", at(2), 0);
    fx.apply(
        &mut done,
        Event::StepClaimed {
            step: "only".into(),
        },
        at(3),
    )
    .expect("claimed");
    let result = finished(Outcome::Succeeded, at(4), json!({"answer": 42}));
    fx.apply(
        &mut done,
        Event::StepFinished {
            step: "only".into(),
            result,
        },
        at(4),
    )
    .expect("finished");
    assert_eq!(done.status, JobStatus::Completed);
    let (fanout, fanout_routing) = fx.job("fanout", at(5), 0);
    for (job, routing) in [
        (&running, &running_routing),
        (&done, &done_routing),
        (&fanout, &fanout_routing),
    ] {
        insert_first_schema_job(&db.store, job, routing).await;
    }
    let worker_id = Uuid::new_v4();
    let key = LeaseKey {
        lease_id: Uuid::new_v4(),
        worker_id,
        job_id: running.id,
        step_name: "build".into(),
    };
    insert_first_schema_worker_and_lease(&db.store, worker_id, &key).await;

    // The upgrade, as a server start does it.
    let store = db.reopen().await;
    let versions: Vec<i64> = all.iter().map(|m| m.version).collect();
    assert_eq!(recorded(&store).await, (versions, false));

    // Read back as written; the columns later migrations added hold their defaults.
    for job in [&running, &done, &fanout] {
        let stored = store
            .get_job(job.id)
            .await
            .expect("get")
            .expect("the job is there");
        assert_eq!(
            stored,
            JobState {
                mask: None,
                ..job.clone()
            }
        );
    }
    let filter = JobFilter {
        workspace: None,
        task_name: None,
        statuses: vec![],
        source_type: None,
        parent_job_id: None,
        top_level: true,
        hook_of: None,
        search: None,
        visibility: None,
        limit: 10,
        offset: 0,
    };
    let (jobs, total) = store.list_jobs(&filter).await.expect("list");
    assert_eq!(total, 3);
    assert_eq!(jobs.len(), 3);
    let (workers, _) = store.list_workers(10, 0).await.expect("workers");
    assert_eq!(
        workers.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["legacy-worker"]
    );
    let worker = store
        .get_worker(worker_id)
        .await
        .expect("get")
        .expect("the worker is there");
    assert_eq!(
        store.check_lease(&key).await.expect("live lease").state,
        LeaseStatus::Active
    );

    // And usable: the running step completes under its old lease, the legacy worker claims
    // the next step, and new jobs are stored beside the old ones.
    let (_, state, _) = store
        .with_lease(
            &key,
            LeaseUse::Complete {
                digest: Some("d".into()),
            },
            |job, lease| {
                let result = finished(Outcome::Succeeded, at(6), json!({}));
                fx.apply(
                    job,
                    Event::StepFinished {
                        step: lease.step_name.clone(),
                        result,
                    },
                    at(6),
                )
                .map_err(TestError::from)
            },
        )
        .await
        .expect("complete under the old lease");
    assert_eq!(
        state.step("build").map(|s| s.status),
        Some(StepStatus::Completed)
    );
    assert_eq!(
        state.step("test").map(|s| s.status),
        Some(StepStatus::Ready)
    );
    let claim = store
        .claim(&worker, at(7), ttl(), fx.claimer(at(7)))
        .await
        .expect("claim")
        .expect("a ready step");
    assert_eq!(claim.lease.worker_id, worker_id);
    let (fresh, routing) = fx.job("single", at(8), 0);
    store.create_job(&fresh, &routing).await.expect("create");
    assert_eq!(
        store.get_job(fresh.id).await.expect("get").map(|j| j.mask),
        Some(fresh.mask.clone())
    );
    store.close().await;
}

backend_test! {
    empty async fn a_legacy_first_schema_database_with_data_upgrades(db) {
        upgrade_from_first_schema(db, FirstSchema::Legacy).await;
    }
}

backend_test! {
    empty async fn a_first_schema_database_with_data_upgrades(db) {
        upgrade_from_first_schema(db, FirstSchema::Sqlx).await;
    }
}

backend_test! {
    empty async fn a_legacy_database_at_the_latest_schema_is_adopted(db) {
        let all = all_migrations(&db.store);
        legacy_migrate(&db.store, &all).await;
        let store = db.reopen().await;
        assert_eq!(recorded(&store).await, (all.iter().map(|m| m.version).collect(), false));
        // Adopted with the checksums of the embedded texts: the next start finds them equal.
        store.close().await;
        db.reopen().await.close().await;
    }
}

/// `migration` with `sql` as its text.
fn with_text(migration: &Migration, sql: String) -> Migration {
    Migration::new(
        migration.version,
        migration.description.clone(),
        MigrationType::Simple,
        sqlx::AssertSqlSafe(sql).into_sql_str(),
        false,
    )
}

backend_test! {
    async fn an_edited_migration_is_refused(db) {
        let all = all_migrations(&db.store);
        // A developer edits a released migration, if only by a comment.
        let mut edited = all.clone();
        edited[1] = with_text(&all[1], format!("{}\n-- edited\n", all[1].sql.as_str()));
        let tx = db.store.begin_write().await.expect("begin");
        let error = migrate::apply(tx, &edited, None).await.expect_err("refused");
        let name = migrate::file_name(&all[1]);
        assert!(
            matches!(&error, StoreError::MigrationEdited { version, name: named } if *version == all[1].version && *named == name),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&name) && message.contains("new migration"), "{message}");

        // A database whose record differs from the embedded text refuses to start.
        let mut tx = db.store.begin_write().await.expect("begin");
        on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2")
                .bind(vec![0_u8; 48])
                .bind(all[0].version)
                .execute(&mut **conn)
                .await
                .expect("tamper");
        });
        tx.commit().await.expect("commit");
        let refused = Store::connect(&db.url, 2).await.expect_err("refused");
        assert!(
            refused.to_string().contains(&migrate::file_name(&all[0])),
            "{refused}"
        );
    }
}

backend_test! {
    async fn a_migration_this_binary_does_not_know_is_refused(db) {
        let mut tx = db.store.begin_write().await.expect("begin");
        on_tx!(&mut tx, conn => {
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (9999, 'from the future', TRUE, $1, 1)",
            )
            .bind(vec![1_u8; 48])
            .execute(&mut **conn)
            .await
            .expect("record");
        });
        tx.commit().await.expect("commit");
        let refused = Store::connect(&db.url, 2).await.expect_err("refused");
        assert!(matches!(refused, StoreError::MigrationUnknown { version: 9999, .. }), "{refused:?}");
        assert!(refused.to_string().contains("9999_from_the_future.sql"), "{refused}");
    }
}

backend_test! {
    async fn new_migrations_apply_and_a_failing_one_changes_nothing(db) {
        let all = all_migrations(&db.store);
        let extra = |version: i64, name: &str, sql: &str| {
            Migration::new(
                version,
                name.to_owned().into(),
                MigrationType::Simple,
                sqlx::AssertSqlSafe(sql.to_owned()).into_sql_str(),
                false,
            )
        };
        let mut failing = all.clone();
        failing.push(extra(9000, "probe", "CREATE TABLE probe (x BIGINT)"));
        failing.push(extra(9001, "broken", "CREATE TABLE probe2 (x BIGINT); SELECT * FROM no_such_table"));
        let tx = db.store.begin_write().await.expect("begin");
        let error = migrate::apply(tx, &failing, None).await.expect_err("fails");
        assert!(matches!(&error, StoreError::Migration { version: 9001, name, .. } if name == "9001_broken.sql"), "{error:?}");
        // Nothing of either was kept: not 9000 that went well, not the half of 9001.
        let versions: Vec<i64> = all.iter().map(|m| m.version).collect();
        assert_eq!(recorded(&db.store).await, (versions.clone(), false));
        let mut tx = db.store.begin_write().await.expect("begin");
        let probe = on_tx!(&mut tx, conn => {
            sqlx::query("SELECT x FROM probe").fetch_optional(&mut **conn).await.map(|_| ())
        });
        assert!(probe.is_err(), "table probe was kept");
        drop(tx);

        let mut working = all.clone();
        working.push(extra(9000, "probe", "CREATE TABLE probe (x BIGINT)"));
        let tx = db.store.begin_write().await.expect("begin");
        migrate::apply(tx, &working, None).await.expect("applies");
        let mut expected = versions;
        expected.push(9000);
        assert_eq!(recorded(&db.store).await, (expected, false));
    }
}
