//! Authentication and authorisation (API §5, issue #12): internal accounts with argon2id
//! passwords, access JWTs, rotating refresh-token families with reuse detection, API keys,
//! OIDC sign-in, access rules and the audit trail's entries.
//!
//! [`Auth`] is the service the HTTP edge calls; it owns the keys, the rate limits and the OIDC
//! providers and keeps accounts in the [`Store`]. Everything here is independent of HTTP: the
//! server translates requests into these calls and [`AuthError`]s into statuses.
//!
//! *Invariant*: no token, password or key leaves this module except in the reply that issues
//! it; errors and log lines never contain one.

mod accounts;
pub mod acl;
pub mod client_ip;
pub mod limits;
pub mod next;
pub mod oidc;
pub mod password;
pub mod principal;
pub mod token;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::config::{AuthConfig, ProviderType};
use crate::store::{NewRefresh, NewUser, Rotation, Store, StoreError, UserRecord};

pub use accounts::{ApiKeyCreated, NewAccount};
pub use acl::Acl;
pub use limits::RateLimit;
pub use principal::{Caller, Principal, Via};

/// The name of the refresh cookie (API §5.2).
pub const REFRESH_COOKIE: &str = "stroem_refresh";
/// The path the refresh cookie is sent to.
pub const REFRESH_COOKIE_PATH: &str = "/api/auth";

/// Why an authentication call failed. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong e-mail or password, with the same message for both (API §5.3).
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// Missing, malformed, expired or revoked credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// A refresh token presented a second time: its family is now revoked (API §5.2).
    #[error("this refresh token was already used; every session it belonged to is signed out")]
    RefreshTokenReused,
    #[error("{0}")]
    Forbidden(String),
    /// `what` reads `user 0195…`, `API key 'strm_1a2b3c4'`.
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    /// Internal login is not configured (only OIDC providers).
    #[error("sign-in with e-mail and password is not enabled on this server")]
    NoInternalLogin,
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        AuthError::Internal(error.into())
    }
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// Tokens issued by a sign-in or refresh (API §5.3).
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub user: UserRecord,
    pub family_id: Uuid,
}

/// The authentication service of a server with `auth` configured.
#[derive(Debug, Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    access: token::AccessKeys,
    refresh_secret: crate::config::Secret,
    /// Keys the OIDC state cookie's signature; derived from `jwt_secret`.
    state_key: crate::config::Secret,
    access_ttl: TimeDelta,
    refresh_ttl: TimeDelta,
    base_url: Option<String>,
    internal_login: bool,
    providers: Vec<oidc::Provider>,
    acl: Acl,
    initial_user: Option<crate::config::InitialUser>,
    /// Verified against when an e-mail is unknown, so both failures cost the same.
    dummy_hash: String,
    login_limit: RateLimit,
    refresh_limit: RateLimit,
    api_key_limit: RateLimit,
}

impl Auth {
    /// The service for `config`. Hashes a dummy password (tens of milliseconds).
    pub fn new(config: &AuthConfig, store: Store) -> anyhow::Result<Auth> {
        let secs = |duration: crate::workflow::model::Duration| {
            TimeDelta::seconds(i64::try_from(duration.secs()).unwrap_or(i64::MAX / 1000))
        };
        let internal_login = config.providers.is_empty()
            || config
                .providers
                .values()
                .any(|provider| provider.provider_type == ProviderType::Internal);
        let base_url = config
            .base_url
            .as_ref()
            .map(|url| url.trim_end_matches('/').to_owned());
        let mut providers = Vec::new();
        for (id, provider) in &config.providers {
            if provider.provider_type == ProviderType::Oidc {
                providers.push(oidc::Provider::new(id, provider, base_url.as_deref())?);
            }
        }
        Ok(Auth {
            inner: Arc::new(Inner {
                store,
                access: token::AccessKeys::new(config.jwt_secret.expose().as_bytes()),
                refresh_secret: config.refresh_secret.clone(),
                state_key: crate::config::Secret::new(token::hmac_hex(
                    config.jwt_secret.expose().as_bytes(),
                    b"oidc-state",
                )),
                access_ttl: secs(config.access_token_ttl),
                refresh_ttl: secs(config.refresh_token_ttl),
                base_url,
                internal_login,
                providers,
                acl: Acl::new(config.acl.clone()),
                initial_user: config.initial_user.clone(),
                dummy_hash: password::dummy_hash(),
                login_limit: RateLimit::login(),
                refresh_limit: RateLimit::refresh(),
                api_key_limit: RateLimit::api_key_creation(),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn acl(&self) -> &Acl {
        &self.inner.acl
    }

    /// Whether e-mail and password sign-in is available (API §5.3).
    pub fn has_internal_login(&self) -> bool {
        self.inner.internal_login
    }

    /// The OIDC providers, in configuration order.
    pub fn providers(&self) -> &[oidc::Provider] {
        &self.inner.providers
    }

    pub fn provider(&self, id: &str) -> Option<&oidc::Provider> {
        self.inner
            .providers
            .iter()
            .find(|provider| provider.id() == id)
    }

    /// `Secure` on cookies when the public URL is https (API §5.2).
    pub fn secure_cookies(&self) -> bool {
        self.inner
            .base_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }

    pub fn base_url(&self) -> Option<&str> {
        self.inner.base_url.as_deref()
    }

    pub fn refresh_ttl(&self) -> TimeDelta {
        self.inner.refresh_ttl
    }

    /// Creates `auth.initial_user` when absent, and makes it an admin (API §5.3).
    pub async fn bootstrap(&self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let Some(initial) = &self.inner.initial_user else {
            return Ok(());
        };
        let email = normalise_email(&initial.email);
        let existing = self.inner.store.user_by_email(&email).await?;
        let password_hash = match existing {
            Some(_) => None,
            None => Some(hash_blocking(initial.password.expose().to_owned()).await?),
        };
        let created = self
            .inner
            .store
            .ensure_user(
                &NewUser {
                    email: email.clone(),
                    name: None,
                    password_hash,
                    is_admin: true,
                    groups: Vec::new(),
                },
                now,
            )
            .await?;
        if created {
            tracing::info!(%email, "created the initial user");
        }
        Ok(())
    }

    /// Signs in with e-mail and password (API §5.3). Unknown e-mail, password-less account and
    /// wrong password give the same error after the same work.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<Session> {
        self.inner
            .login_limit
            .check(ip, Instant::now())
            .map_err(AuthError::RateLimited)?;
        if !self.inner.internal_login {
            return Err(AuthError::NoInternalLogin);
        }
        if password.len() > password::MAX_PASSWORD_BYTES {
            return Err(AuthError::InvalidCredentials);
        }
        let user = self
            .inner
            .store
            .user_by_email(&normalise_email(email))
            .await?;
        let stored = user
            .as_ref()
            .and_then(|user| user.password_hash.clone())
            .unwrap_or_else(|| self.inner.dummy_hash.clone());
        let candidate = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || password::verify(&candidate, &stored))
            .await
            .map_err(anyhow::Error::from)?;
        match user {
            Some(user) if matches && user.password_hash.is_some() => {
                self.start_session(user, now).await
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// Issues a new family's first tokens for `user` (a sign-in).
    pub async fn start_session(&self, user: UserRecord, now: DateTime<Utc>) -> Result<Session> {
        let refresh_token = token::new_refresh_token();
        let hash = self.refresh_hash(&refresh_token);
        let family_id = self
            .inner
            .store
            .start_family(
                user.user_id,
                NewRefresh {
                    hash: &hash,
                    expires_at: now + self.inner.refresh_ttl,
                },
                now,
            )
            .await?;
        self.session(user, refresh_token, family_id, now)
    }

    /// Rotates a refresh token (API §5.2).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        ip: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<Session> {
        self.inner
            .refresh_limit
            .check(ip, Instant::now())
            .map_err(AuthError::RateLimited)?;
        let new_token = token::new_refresh_token();
        let new_hash = self.refresh_hash(&new_token);
        let rotation = self
            .inner
            .store
            .rotate_refresh(
                &self.refresh_hash(refresh_token),
                NewRefresh {
                    hash: &new_hash,
                    expires_at: now + self.inner.refresh_ttl,
                },
                now,
            )
            .await?;
        match rotation {
            Rotation::Rotated { user_id, family_id } => {
                let user = self.inner.store.user_by_id(user_id).await?.ok_or_else(|| {
                    AuthError::Unauthorized("the account no longer exists".to_owned())
                })?;
                self.session(user, new_token, family_id, now)
            }
            Rotation::Reused { user_id, family_id } => {
                tracing::warn!(%user_id, %family_id, "a used refresh token was presented again; its family is revoked");
                Err(AuthError::RefreshTokenReused)
            }
            Rotation::Invalid => Err(AuthError::Unauthorized(
                "the refresh token is invalid, expired or revoked".to_owned(),
            )),
        }
    }

    /// Revokes the family of a refresh token (logout); the e-mail of its user, when known.
    pub async fn logout(&self, refresh_token: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        let user_id = self
            .inner
            .store
            .revoke_family_of(&self.refresh_hash(refresh_token), now)
            .await?;
        Ok(match user_id {
            Some(user_id) => self
                .inner
                .store
                .user_by_id(user_id)
                .await?
                .map(|user| user.email),
            None => None,
        })
    }

    /// The user behind a bearer credential: an access JWT, or an API key (which acts as its
    /// owner with the owner's current admin flag, API §5.2).
    pub async fn authenticate(&self, bearer: &str, now: DateTime<Utc>) -> Result<Principal> {
        if token::is_api_key(bearer) {
            return self.authenticate_key(bearer, now).await;
        }
        let claims = self.inner.access.verify(bearer, now).ok_or_else(|| {
            AuthError::Unauthorized("the access token is invalid or expired".to_owned())
        })?;
        let user = self
            .inner
            .store
            .user_by_id(claims.sub)
            .await?
            .ok_or_else(|| AuthError::Unauthorized("the account no longer exists".to_owned()))?;
        Ok(Principal::new(&user, Via::Token))
    }

    async fn authenticate_key(&self, key: &str, now: DateTime<Utc>) -> Result<Principal> {
        let invalid = || AuthError::Unauthorized("the API key is invalid or expired".to_owned());
        let prefix = token::api_key_prefix(key);
        let Some((record, stored)) = self.inner.store.api_key(prefix).await? else {
            return Err(invalid());
        };
        if !token::same(&token::api_key_hash(key), &stored) {
            return Err(invalid());
        }
        if record.expires_at.is_some_and(|expires| expires <= now) {
            return Err(invalid());
        }
        let user = self
            .inner
            .store
            .user_by_id(record.user_id)
            .await?
            .ok_or_else(invalid)?;
        // `last_used_at` to the minute: a script polling with its key does not write on every
        // request.
        if record
            .last_used_at
            .is_none_or(|used| now - used >= TimeDelta::minutes(1))
        {
            self.inner.store.touch_api_key(prefix, now).await?;
        }
        Ok(Principal::new(
            &user,
            Via::ApiKey {
                prefix: record.prefix,
            },
        ))
    }

    fn session(
        &self,
        user: UserRecord,
        refresh_token: String,
        family_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Session> {
        let claims = token::Claims {
            sub: user.user_id,
            email: user.email.clone(),
            is_admin: user.is_admin,
            iat: now.timestamp(),
            exp: (now + self.inner.access_ttl).timestamp(),
        };
        let access_token = self
            .inner
            .access
            .issue(&claims)
            .map_err(anyhow::Error::from)?;
        Ok(Session {
            access_token,
            refresh_token,
            expires_in: u64::try_from(self.inner.access_ttl.num_seconds()).unwrap_or_default(),
            user,
            family_id,
        })
    }

    fn refresh_hash(&self, token: &str) -> String {
        token::refresh_hash(self.inner.refresh_secret.expose().as_bytes(), token)
    }
}

/// E-mail addresses are compared without regard to case and surrounding space.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Hashes a password on a blocking thread.
async fn hash_blocking(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await?
        .map_err(|error| anyhow::anyhow!("cannot hash a password: {error}"))
}
