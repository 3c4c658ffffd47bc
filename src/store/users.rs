//! Accounts (API §5.5): users, their groups and their OIDC links.
//!
//! E-mail addresses are lower-cased by the caller before they get here; the unique index on
//! `users.email` is what makes two accounts with one address impossible, and a clash comes back
//! as [`StoreError::Conflict`] naming `email`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use super::error::{Result, StoreError};
use super::tx::{Tx, from_millis, millis, on_tx, opt_from_millis, to_i64};

/// A stored user with its groups and sign-in methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub user_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    /// The argon2id PHC string; `None` for users who sign in only through OIDC.
    pub password_hash: Option<String>,
    pub is_admin: bool,
    /// Sorted.
    pub groups: Vec<String>,
    /// Linked OIDC provider ids, sorted.
    pub providers: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub groups: Vec<String>,
}

type UserTuple = (
    Uuid,
    String,
    Option<String>,
    Option<String>,
    bool,
    i64,
    Option<i64>,
);

const USER_COLUMNS: &str =
    "user_id, email, name, password_hash, is_admin, created_at, last_login_at";

impl Store {
    /// Creates a user; `Conflict { field: "email" }` when the address is taken.
    pub async fn create_user(&self, user: &NewUser, now: DateTime<Utc>) -> Result<UserRecord> {
        let mut tx = self.begin_write().await?;
        let user_id = insert_user(&mut tx, user, now).await?;
        let record = load_user(&mut tx, "user_id = $1", Key::Id(user_id))
            .await?
            .ok_or_else(|| StoreError::invalid("a user vanished while being created"))?;
        tx.commit().await?;
        Ok(record)
    }

    /// Creates `user` unless an account with its e-mail exists; an existing one is made an
    /// admin (the initial user is always an admin, API §5.3). Returns whether it was created.
    pub async fn ensure_user(&self, user: &NewUser, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let updated = on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE users SET is_admin = $1 WHERE email = $2")
                .bind(user.is_admin)
                .bind(user.email.as_str())
                .execute(&mut **conn)
                .await?
                .rows_affected()
        });
        let created = updated == 0;
        if created {
            insert_user(&mut tx, user, now).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Creates a password-less user linked to an OIDC subject, in one transaction (API §5.4).
    pub async fn create_linked_user(
        &self,
        user: &NewUser,
        provider: &str,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRecord> {
        let mut tx = self.begin_write().await?;
        let user_id = insert_user(&mut tx, user, now).await?;
        insert_identity(&mut tx, provider, subject, user_id, now).await?;
        let record = load_user(&mut tx, "user_id = $1", Key::Id(user_id))
            .await?
            .ok_or_else(|| StoreError::invalid("a user vanished while being created"))?;
        tx.commit().await?;
        Ok(record)
    }

    /// Links an OIDC subject to an existing user.
    pub async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_identity(&mut tx, provider, subject, user_id, now).await?;
        tx.commit().await
    }

    pub async fn user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>> {
        let mut tx = self.begin_read().await?;
        let user = load_user(&mut tx, "user_id = $1", Key::Id(user_id)).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// `email` must already be lower-cased.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        let mut tx = self.begin_read().await?;
        let user = load_user(&mut tx, "email = $1", Key::Text(email)).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The user an OIDC provider's subject is linked to.
    pub async fn user_by_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<UserRecord>> {
        let mut tx = self.begin_read().await?;
        let user_id: Option<Uuid> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(
                "SELECT user_id FROM user_identities WHERE provider = $1 AND subject = $2",
            )
            .bind(provider)
            .bind(subject)
            .fetch_optional(&mut **conn)
            .await?
        });
        let user = match user_id {
            Some(user_id) => load_user(&mut tx, "user_id = $1", Key::Id(user_id)).await?,
            None => None,
        };
        tx.commit().await?;
        Ok(user)
    }

    /// Users, newest first, and how many there are.
    pub async fn list_users(&self, limit: u32, offset: u64) -> Result<(Vec<UserRecord>, u64)> {
        let mut tx = self.begin_read().await?;
        let (total, ids): (i64, Vec<Uuid>) = on_tx!(&mut tx, conn => {
            let total = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&mut **conn)
                .await?;
            let ids = sqlx::query_scalar(
                "SELECT user_id FROM users ORDER BY created_at DESC, user_id DESC \
                 LIMIT $1 OFFSET $2",
            )
            .bind(i64::from(limit))
            .bind(to_i64(offset)?)
            .fetch_all(&mut **conn)
            .await?;
            (total, ids)
        });
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(user) = load_user(&mut tx, "user_id = $1", Key::Id(id)).await? {
                users.push(user);
            }
        }
        tx.commit().await?;
        Ok((users, u64::try_from(total).unwrap_or_default()))
    }

    /// Sets the admin flag; `None` for an unknown user.
    pub async fn set_admin(&self, user_id: Uuid, is_admin: bool) -> Result<Option<UserRecord>> {
        let mut tx = self.begin_write().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE users SET is_admin = $1 WHERE user_id = $2")
                .bind(is_admin)
                .bind(user_id)
                .execute(&mut **conn)
                .await?;
        });
        let user = load_user(&mut tx, "user_id = $1", Key::Id(user_id)).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Replaces the password hash and revokes every refresh family of the user in the same
    /// transaction (API §5.2). `false` for an unknown user.
    pub async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let changed = on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE user_id = $2")
                .bind(password_hash)
                .bind(user_id)
                .execute(&mut **conn)
                .await?
                .rows_affected()
        });
        if changed > 0 {
            super::sessions::revoke_user_families(&mut tx, user_id, now).await?;
        }
        tx.commit().await?;
        Ok(changed > 0)
    }

    /// Replaces the user's groups; `None` for an unknown user.
    pub async fn set_groups(
        &self,
        user_id: Uuid,
        groups: &[String],
    ) -> Result<Option<Vec<String>>> {
        let mut tx = self.begin_write().await?;
        let exists: Option<Uuid> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar("SELECT user_id FROM users WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&mut **conn)
                .await?
        });
        if exists.is_none() {
            return Ok(None);
        }
        on_tx!(&mut tx, conn => {
            sqlx::query("DELETE FROM user_groups WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut **conn)
                .await?;
        });
        insert_groups(&mut tx, user_id, groups).await?;
        let mut sorted: Vec<String> = groups.to_vec();
        sorted.sort();
        sorted.dedup();
        tx.commit().await?;
        Ok(Some(sorted))
    }

    /// Deletes a user with their groups, links, sessions and API keys. Their jobs keep their
    /// `source_id`. `false` for an unknown user.
    pub async fn delete_user(&self, user_id: Uuid) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = on_tx!(&mut tx, conn => {
            sqlx::query("DELETE FROM users WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut **conn)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// Every group that has a member, sorted.
    pub async fn list_groups(&self) -> Result<Vec<String>> {
        let mut tx = self.begin_read().await?;
        let groups = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(
                "SELECT DISTINCT group_name FROM user_groups ORDER BY group_name",
            )
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        Ok(groups)
    }

    /// Records a successful sign-in.
    pub async fn record_login(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE users SET last_login_at = $1 WHERE user_id = $2")
                .bind(millis(now))
                .bind(user_id)
                .execute(&mut **conn)
                .await?;
        });
        tx.commit().await
    }
}

enum Key<'a> {
    Id(Uuid),
    Text(&'a str),
}

async fn load_user(tx: &mut Tx, condition: &str, key: Key<'_>) -> Result<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
    let tuple: Option<UserTuple> = on_tx!(&mut *tx, conn => {
        let query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        let query = match &key {
            Key::Id(id) => query.bind(*id),
            Key::Text(text) => query.bind(*text),
        };
        query.fetch_optional(&mut **conn).await?
    });
    let Some((user_id, email, name, password_hash, is_admin, created_at, last_login_at)) = tuple
    else {
        return Ok(None);
    };
    let (groups, providers): (Vec<String>, Vec<String>) = on_tx!(&mut *tx, conn => {
        let groups = sqlx::query_scalar(
            "SELECT group_name FROM user_groups WHERE user_id = $1 ORDER BY group_name",
        )
        .bind(user_id)
        .fetch_all(&mut **conn)
        .await?;
        let providers = sqlx::query_scalar(
            "SELECT DISTINCT provider FROM user_identities WHERE user_id = $1 ORDER BY provider",
        )
        .bind(user_id)
        .fetch_all(&mut **conn)
        .await?;
        (groups, providers)
    });
    Ok(Some(UserRecord {
        user_id,
        email,
        name,
        password_hash,
        is_admin,
        groups,
        providers,
        created_at: from_millis(created_at)?,
        last_login_at: opt_from_millis(last_login_at)?,
    }))
}

async fn insert_user(tx: &mut Tx, user: &NewUser, now: DateTime<Utc>) -> Result<Uuid> {
    let user_id = Uuid::new_v4();
    let inserted = on_tx!(&mut *tx, conn => {
        sqlx::query(
            "INSERT INTO users (user_id, email, name, password_hash, is_admin, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user_id)
        .bind(user.email.as_str())
        .bind(user.name.as_deref())
        .bind(user.password_hash.as_deref())
        .bind(user.is_admin)
        .bind(millis(now))
        .execute(&mut **conn)
        .await
        .map(|_| ())
    });
    inserted.map_err(|error| StoreError::unique(error, "email"))?;
    insert_groups(tx, user_id, &user.groups).await?;
    Ok(user_id)
}

async fn insert_groups(tx: &mut Tx, user_id: Uuid, groups: &[String]) -> Result<()> {
    let mut unique: Vec<&String> = groups.iter().collect();
    unique.sort();
    unique.dedup();
    for group in unique {
        on_tx!(&mut *tx, conn => {
            sqlx::query("INSERT INTO user_groups (user_id, group_name) VALUES ($1, $2)")
                .bind(user_id)
                .bind(group.as_str())
                .execute(&mut **conn)
                .await?;
        });
    }
    Ok(())
}

async fn insert_identity(
    tx: &mut Tx,
    provider: &str,
    subject: &str,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    let inserted = on_tx!(&mut *tx, conn => {
        sqlx::query(
            "INSERT INTO user_identities (provider, subject, user_id, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(provider)
        .bind(subject)
        .bind(user_id)
        .bind(millis(now))
        .execute(&mut **conn)
        .await
        .map(|_| ())
    });
    inserted.map_err(|error| StoreError::unique(error, "subject"))?;
    Ok(())
}
