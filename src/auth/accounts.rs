//! Account management on [`Auth`]: own password and API keys (API §5.3), and the admin routes'
//! users and groups (API §5.5). Permission checks happen here, so every caller gets them.

use std::net::IpAddr;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::config::valid_group;
use crate::store::{ApiKeyRecord, NewUser, StoreError, UserRecord};

use super::principal::{Caller, Principal, Via};
use super::{Auth, AuthError, Result, hash_blocking, normalise_email, password, token};

/// The longest API-key name accepted.
const MAX_KEY_NAME_CHARS: usize = 100;
/// The longest lifetime an API key may be given.
const MAX_KEY_DAYS: u32 = 3650;

/// `POST /api/users` (API §5.5).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: String,
    pub name: Option<String>,
    pub password: Option<String>,
    pub is_admin: bool,
    pub groups: Vec<String>,
}

/// A key just made: the only time the key itself is known (API §5.3).
#[derive(Debug, Clone)]
pub struct ApiKeyCreated {
    pub key: String,
    pub record: ApiKeyRecord,
}

impl Auth {
    /// Changes the caller's own password and signs out every session of the user.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let user = self.user(principal.user_id).await?;
        let stored = user
            .password_hash
            .clone()
            .unwrap_or_else(|| self.inner.dummy_hash.clone());
        let candidate = current.to_owned();
        let matches = current.len() <= password::MAX_PASSWORD_BYTES
            && tokio::task::spawn_blocking(move || password::verify(&candidate, &stored))
                .await
                .map_err(anyhow::Error::from)?;
        if !matches || user.password_hash.is_none() {
            return Err(AuthError::InvalidCredentials);
        }
        self.set_password(user.user_id, new, now).await
    }

    /// Sets a user's password (own change or an admin's reset) and revokes every refresh
    /// family of the user in the same transaction.
    pub async fn set_password(&self, user_id: Uuid, new: &str, now: DateTime<Utc>) -> Result<()> {
        if let Some(weakness) = password::weakness(new) {
            return Err(bad_field("password", weakness));
        }
        let hash = hash_blocking(new.to_owned()).await?;
        if !self.inner.store.set_password(user_id, &hash, now).await? {
            return Err(AuthError::NotFound(format!("user {user_id}")));
        }
        Ok(())
    }

    /// Creates an API key for the caller; only a JWT may do so (API §5.2).
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        expires_in_days: Option<u32>,
        ip: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyCreated> {
        if principal.via != Via::Token {
            return Err(AuthError::Forbidden(
                "API keys can only be created with a signed-in session, not with another key"
                    .to_owned(),
            ));
        }
        self.inner
            .api_key_limit
            .check(ip, Instant::now())
            .map_err(AuthError::RateLimited)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(bad_field("name", "must not be empty"));
        }
        if name.chars().count() > MAX_KEY_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(bad_field(
                "name",
                format!("must be at most {MAX_KEY_NAME_CHARS} printable characters"),
            ));
        }
        let expires_at = match expires_in_days {
            Some(0) => return Err(bad_field("expires_in_days", "must be at least 1")),
            Some(days) if days > MAX_KEY_DAYS => {
                return Err(bad_field(
                    "expires_in_days",
                    format!("must be at most {MAX_KEY_DAYS}"),
                ));
            }
            Some(days) => Some(now + TimeDelta::days(i64::from(days))),
            None => None,
        };
        // A prefix carries 28 random bits; on the rare clash, make another key.
        for _ in 0..5 {
            let key = token::new_api_key();
            let record = ApiKeyRecord {
                prefix: token::api_key_prefix(&key).to_owned(),
                user_id: principal.user_id,
                name: name.to_owned(),
                created_at: now,
                expires_at,
                last_used_at: None,
            };
            match self
                .inner
                .store
                .create_api_key(&record, &token::api_key_hash(&key))
                .await
            {
                Ok(record) => return Ok(ApiKeyCreated { key, record }),
                Err(StoreError::Conflict { field: "name" }) => {
                    return Err(AuthError::Conflict {
                        field: "name",
                        message: format!("name: you already have an API key named '{name}'"),
                    });
                }
                Err(StoreError::Conflict { field: "prefix" }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(AuthError::Internal(anyhow::anyhow!(
            "could not find a free API-key prefix"
        )))
    }

    pub async fn list_api_keys(&self, principal: &Principal) -> Result<Vec<ApiKeyRecord>> {
        Ok(self.inner.store.list_api_keys(principal.user_id).await?)
    }

    /// Deletes one of the caller's own keys.
    pub async fn revoke_api_key(&self, principal: &Principal, prefix: &str) -> Result<()> {
        if self
            .inner
            .store
            .delete_api_key(principal.user_id, prefix)
            .await?
        {
            Ok(())
        } else {
            Err(AuthError::NotFound(format!("API key '{prefix}'")))
        }
    }

    /// The admin routes' gate (API §5.5): 403 for everyone but admins.
    pub fn require_admin(&self, caller: &Caller) -> Result<()> {
        if caller.is_admin() {
            Ok(())
        } else {
            Err(AuthError::Forbidden(
                "only administrators may manage users, groups and the audit trail".to_owned(),
            ))
        }
    }

    pub async fn user(&self, user_id: Uuid) -> Result<UserRecord> {
        self.inner
            .store
            .user_by_id(user_id)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("user {user_id}")))
    }

    /// `POST /api/users`.
    pub async fn create_user(&self, account: NewAccount, now: DateTime<Utc>) -> Result<UserRecord> {
        let email = normalise_email(&account.email);
        if !plausible_email(&email) {
            return Err(bad_field(
                "email",
                "must be an e-mail address such as ada@example.com",
            ));
        }
        check_groups(&account.groups)?;
        let password_hash = match &account.password {
            Some(password) => {
                if let Some(weakness) = password::weakness(password) {
                    return Err(bad_field("password", weakness));
                }
                Some(hash_blocking(password.clone()).await?)
            }
            None => None,
        };
        let user = NewUser {
            email: email.clone(),
            name: account.name.filter(|name| !name.trim().is_empty()),
            password_hash,
            is_admin: account.is_admin,
            groups: account.groups,
        };
        match self.inner.store.create_user(&user, now).await {
            Ok(user) => Ok(user),
            Err(StoreError::Conflict { .. }) => Err(AuthError::Conflict {
                field: "email",
                message: format!("email: a user with the e-mail '{email}' already exists"),
            }),
            Err(error) => Err(error.into()),
        }
    }

    /// `PUT /api/users/{id}/admin`: an admin cannot revoke their own flag (API §5.5).
    pub async fn set_admin(
        &self,
        caller: &Caller,
        user_id: Uuid,
        is_admin: bool,
    ) -> Result<UserRecord> {
        if !is_admin && caller.principal().is_some_and(|me| me.user_id == user_id) {
            return Err(AuthError::Conflict {
                field: "is_admin",
                message: "you cannot revoke your own admin flag".to_owned(),
            });
        }
        self.inner
            .store
            .set_admin(user_id, is_admin)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("user {user_id}")))
    }

    pub async fn set_groups(&self, user_id: Uuid, groups: &[String]) -> Result<Vec<String>> {
        check_groups(groups)?;
        self.inner
            .store
            .set_groups(user_id, groups)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("user {user_id}")))
    }

    /// `DELETE /api/users/{id}`: never oneself (API §5.5). Returns the deleted e-mail.
    pub async fn delete_user(&self, caller: &Caller, user_id: Uuid) -> Result<String> {
        if caller.principal().is_some_and(|me| me.user_id == user_id) {
            return Err(AuthError::Conflict {
                field: "user_id",
                message: "you cannot delete your own account".to_owned(),
            });
        }
        let user = self.user(user_id).await?;
        if !self.inner.store.delete_user(user_id).await? {
            return Err(AuthError::NotFound(format!("user {user_id}")));
        }
        Ok(user.email)
    }
}

fn bad_field(field: &str, message: impl Into<String>) -> AuthError {
    AuthError::BadRequest {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn check_groups(groups: &[String]) -> Result<()> {
    for (index, group) in groups.iter().enumerate() {
        if !valid_group(group) {
            return Err(bad_field(
                &format!("groups[{index}]"),
                format!(
                    "invalid group name '{group}'; {}",
                    crate::config::GROUP_RULE
                ),
            ));
        }
    }
    Ok(())
}

/// Something with one `@`, text on both sides, no spaces or control characters, ≤ 254 bytes.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}
