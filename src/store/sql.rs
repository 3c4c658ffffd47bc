//! SQL texts built once from the column lists in [`rows`](super::rows), so inserts, updates and
//! selects of a table can never disagree about column order. Each is a `&'static str`, which is
//! what sqlx accepts as trusted SQL.

use std::sync::LazyLock;

use super::rows::{JOB_COLUMNS, STEP_COLUMNS};

fn columns(list: &str) -> Vec<&str> {
    list.split(',').map(str::trim).collect()
}

/// `INSERT INTO table (a, b, …) VALUES ($1, $2, …)`.
fn insert(table: &str, list: &str) -> String {
    let names = columns(list);
    let values: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        values.join(", ")
    )
}

/// `UPDATE table SET c = $n, … WHERE k1 = $1 AND …` for the first `keys` columns as the key,
/// so the same binds serve the insert and the update.
fn update(table: &str, list: &str, keys: usize) -> String {
    let names = columns(list);
    let set: Vec<String> = names
        .iter()
        .enumerate()
        .skip(keys)
        .map(|(index, name)| format!("{name} = ${}", index + 1))
        .collect();
    let key: Vec<String> = names
        .iter()
        .take(keys)
        .enumerate()
        .map(|(index, name)| format!("{name} = ${}", index + 1))
        .collect();
    format!(
        "UPDATE {table} SET {} WHERE {}",
        set.join(", "),
        key.join(" AND ")
    )
}

pub(crate) static INSERT_JOB: LazyLock<String> = LazyLock::new(|| insert("jobs", JOB_COLUMNS));
pub(crate) static UPDATE_JOB: LazyLock<String> = LazyLock::new(|| update("jobs", JOB_COLUMNS, 1));
pub(crate) static INSERT_STEP: LazyLock<String> = LazyLock::new(|| insert("steps", STEP_COLUMNS));
pub(crate) static UPDATE_STEP: LazyLock<String> =
    LazyLock::new(|| update("steps", STEP_COLUMNS, 2));

/// A job row with its `version` (see `store::cache`).
pub(crate) static SELECT_JOB: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {JOB_COLUMNS}, version FROM jobs WHERE id = $1"));
pub(crate) static SELECT_STEPS: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {STEP_COLUMNS} FROM steps WHERE job_id = $1 ORDER BY position")
});

#[cfg(test)]
mod tests {
    #[test]
    fn updates_bind_like_inserts() {
        assert_eq!(
            super::update("t", "a, b, c", 2),
            "UPDATE t SET c = $3 WHERE a = $1 AND b = $2"
        );
        assert_eq!(
            super::insert("t", "a, b, c"),
            "INSERT INTO t (a, b, c) VALUES ($1, $2, $3)"
        );
    }
}
