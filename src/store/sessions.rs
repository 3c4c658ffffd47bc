//! Refresh-token families and API keys (API §5.2): only their hashes are stored.
//!
//! A refresh is one conditional `UPDATE … WHERE used_at IS NULL`: of two requests presenting
//! the same token at once exactly one rotates it, and the other is a reuse that revokes the
//! family — the same rule however the requests interleave, on both backends.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use super::error::{Result, StoreError};
use super::tx::{Tx, from_millis, millis, on_tx, opt_from_millis, opt_millis};

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now used, and `new` belongs to the same family.
    Rotated { user_id: Uuid, family_id: Uuid },
    /// The token had been used before: its whole family is now revoked.
    Reused { user_id: Uuid, family_id: Uuid },
    /// Unknown, expired, or of a revoked family.
    Invalid,
}

/// A stored API key, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub prefix: String,
    pub user_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A refresh token to store: its hash and expiry.
#[derive(Debug, Clone, Copy)]
pub struct NewRefresh<'a> {
    pub hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

type KeyTuple = (String, Uuid, String, i64, Option<i64>, Option<i64>);
/// A key row with its hash.
type KeyHashTuple = (String, Uuid, String, i64, Option<i64>, Option<i64>, String);
/// A refresh token's family, user, expiry, use and the family's revocation.
type TokenTuple = (Uuid, Uuid, i64, Option<i64>, Option<i64>);

const KEY_COLUMNS: &str = "prefix, user_id, name, created_at, expires_at, last_used_at";

impl Store {
    /// Starts a token family for a sign-in and stores its first token; also records the
    /// sign-in time. Returns the family id.
    pub async fn start_family(
        &self,
        user_id: Uuid,
        token: NewRefresh<'_>,
        now: DateTime<Utc>,
    ) -> Result<Uuid> {
        let family_id = Uuid::new_v4();
        let mut tx = self.begin_write().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query(
                "INSERT INTO refresh_families (family_id, user_id, created_at) VALUES ($1, $2, $3)",
            )
            .bind(family_id)
            .bind(user_id)
            .bind(millis(now))
            .execute(&mut **conn)
            .await?;
            sqlx::query("UPDATE users SET last_login_at = $1 WHERE user_id = $2")
                .bind(millis(now))
                .bind(user_id)
                .execute(&mut **conn)
                .await?;
        });
        insert_token(&mut tx, family_id, token, now).await?;
        tx.commit().await?;
        Ok(family_id)
    }

    /// Presents the refresh token hashed `old`: rotates it to `new`, or detects its reuse and
    /// revokes its family (API §5.2).
    pub async fn rotate_refresh(
        &self,
        old: &str,
        new: NewRefresh<'_>,
        now: DateTime<Utc>,
    ) -> Result<Rotation> {
        let mut tx = self.begin_write().await?;
        let found: Option<TokenTuple> = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT t.family_id, f.user_id, t.expires_at, t.used_at, f.revoked_at \
                 FROM refresh_tokens t JOIN refresh_families f ON f.family_id = t.family_id \
                 WHERE t.token_hash = $1",
            )
            .bind(old)
            .fetch_optional(&mut **conn)
            .await?
        });
        let Some((family_id, user_id, expires_at, used_at, revoked_at)) = found else {
            return Ok(Rotation::Invalid);
        };
        if used_at.is_some() {
            revoke_family(&mut tx, family_id, now).await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { user_id, family_id });
        }
        if revoked_at.is_some() || expires_at <= millis(now) {
            return Ok(Rotation::Invalid);
        }
        let claimed = on_tx!(&mut tx, conn => {
            sqlx::query(
                "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
            )
            .bind(millis(now))
            .bind(old)
            .execute(&mut **conn)
            .await?
            .rows_affected()
        });
        if claimed == 0 {
            // Another request rotated it between our read and this write (PostgreSQL): a reuse.
            revoke_family(&mut tx, family_id, now).await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { user_id, family_id });
        }
        insert_token(&mut tx, family_id, new, now).await?;
        tx.commit().await?;
        Ok(Rotation::Rotated { user_id, family_id })
    }

    /// Revokes the family of the token hashed `hash` (logout); the user it belonged to, if any.
    pub async fn revoke_family_of(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<Uuid>> {
        let mut tx = self.begin_write().await?;
        let found: Option<(Uuid, Uuid)> = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT t.family_id, f.user_id FROM refresh_tokens t \
                 JOIN refresh_families f ON f.family_id = t.family_id WHERE t.token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(&mut **conn)
            .await?
        });
        let Some((family_id, user_id)) = found else {
            return Ok(None);
        };
        revoke_family(&mut tx, family_id, now).await?;
        tx.commit().await?;
        Ok(Some(user_id))
    }

    /// Whether the family is revoked (tests and diagnostics).
    pub async fn family_revoked(&self, family_id: Uuid) -> Result<Option<bool>> {
        let mut tx = self.begin_read().await?;
        let revoked: Option<Option<i64>> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar("SELECT revoked_at FROM refresh_families WHERE family_id = $1")
                .bind(family_id)
                .fetch_optional(&mut **conn)
                .await?
        });
        tx.commit().await?;
        Ok(revoked.map(|at| at.is_some()))
    }

    /// Stores an API key. `Conflict { field: "name" }` when the user already has a key of
    /// that name; `Conflict { field: "prefix" }` when the prefix is taken (make another key).
    pub async fn create_api_key(
        &self,
        record: &ApiKeyRecord,
        key_hash: &str,
    ) -> Result<ApiKeyRecord> {
        let mut tx = self.begin_write().await?;
        let clash: Option<String> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar("SELECT prefix FROM api_keys WHERE user_id = $1 AND name = $2")
                .bind(record.user_id)
                .bind(record.name.as_str())
                .fetch_optional(&mut **conn)
                .await?
        });
        if clash.is_some() {
            return Err(StoreError::Conflict { field: "name" });
        }
        let inserted = on_tx!(&mut tx, conn => {
            sqlx::query(
                "INSERT INTO api_keys (prefix, user_id, name, key_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(record.prefix.as_str())
            .bind(record.user_id)
            .bind(record.name.as_str())
            .bind(key_hash)
            .bind(millis(record.created_at))
            .bind(opt_millis(record.expires_at))
            .execute(&mut **conn)
            .await
            .map(|_| ())
        });
        inserted.map_err(|error| StoreError::unique(error, "prefix"))?;
        tx.commit().await?;
        Ok(ApiKeyRecord {
            last_used_at: None,
            ..record.clone()
        })
    }

    /// The user's keys, oldest first.
    pub async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKeyRecord>> {
        let mut tx = self.begin_read().await?;
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at, prefix"
        );
        let tuples: Vec<KeyTuple> = on_tx!(&mut tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(user_id)
                .fetch_all(&mut **conn)
                .await?
        });
        tx.commit().await?;
        tuples.into_iter().map(key_record).collect()
    }

    /// The key with this prefix and its hash.
    pub async fn api_key(&self, prefix: &str) -> Result<Option<(ApiKeyRecord, String)>> {
        let mut tx = self.begin_read().await?;
        let sql = format!("SELECT {KEY_COLUMNS}, key_hash FROM api_keys WHERE prefix = $1");
        let found: Option<KeyHashTuple> = on_tx!(&mut tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(prefix)
                .fetch_optional(&mut **conn)
                .await?
        });
        tx.commit().await?;
        found
            .map(|(prefix, user_id, name, created, expires, used, hash)| {
                Ok((
                    key_record((prefix, user_id, name, created, expires, used))?,
                    hash,
                ))
            })
            .transpose()
    }

    /// Records that the key was used.
    pub async fn touch_api_key(&self, prefix: &str, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE prefix = $2")
                .bind(millis(now))
                .bind(prefix)
                .execute(&mut **conn)
                .await?;
        });
        tx.commit().await
    }

    /// Deletes one of the user's keys; `false` when the user has no key with this prefix.
    pub async fn delete_api_key(&self, user_id: Uuid, prefix: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = on_tx!(&mut tx, conn => {
            sqlx::query("DELETE FROM api_keys WHERE user_id = $1 AND prefix = $2")
                .bind(user_id)
                .bind(prefix)
                .execute(&mut **conn)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        Ok(deleted > 0)
    }
}

fn key_record(tuple: KeyTuple) -> Result<ApiKeyRecord> {
    let (prefix, user_id, name, created_at, expires_at, last_used_at) = tuple;
    Ok(ApiKeyRecord {
        prefix,
        user_id,
        name,
        created_at: from_millis(created_at)?,
        expires_at: opt_from_millis(expires_at)?,
        last_used_at: opt_from_millis(last_used_at)?,
    })
}

async fn insert_token(
    tx: &mut Tx,
    family_id: Uuid,
    token: NewRefresh<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(&mut *tx, conn => {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token.hash)
        .bind(family_id)
        .bind(millis(now))
        .bind(millis(token.expires_at))
        .execute(&mut **conn)
        .await?;
    });
    Ok(())
}

async fn revoke_family(tx: &mut Tx, family_id: Uuid, now: DateTime<Utc>) -> Result<()> {
    on_tx!(&mut *tx, conn => {
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1 \
             WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(millis(now))
        .bind(family_id)
        .execute(&mut **conn)
        .await?;
    });
    Ok(())
}

/// Revokes every live family of a user (password change, API §5.2).
pub(super) async fn revoke_user_families(
    tx: &mut Tx,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(&mut *tx, conn => {
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1 \
             WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(millis(now))
        .bind(user_id)
        .execute(&mut **conn)
        .await?;
    });
    Ok(())
}
