//! The wire types of authentication, accounts and the audit trail (API §5, issue #12).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use chrono::{DateTime, Utc};

/// `POST /api/auth/login`.
#[derive(Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("email", &self.email)
            .field("password", &"***")
            .finish()
    }
}

/// `POST /api/auth/refresh` and `POST /api/auth/logout`: the token, or none to use the cookie.
#[derive(Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshRequest { refresh_token: *** }")
    }
}

/// The answer of login and refresh (API §5.3).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TokenReply {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReply")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A user (API §5.5), also the answer of `GET /api/auth/me`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub user_id: Uuid,
    pub name: Option<String>,
    pub email: String,
    pub is_admin: bool,
    pub groups: Vec<String>,
    /// `password` and the ids of linked OIDC providers.
    pub auth_methods: Vec<String>,
    #[serde(with = "crate::api::time")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "crate::api::time::option")]
    pub last_login_at: Option<DateTime<Utc>>,
}

/// `POST /api/auth/password`.
#[derive(Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { *** }")
    }
}

/// `PUT /api/users/{id}/password`.
#[derive(Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
}

impl std::fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordReset { *** }")
    }
}

/// An API key as listed (API §5.3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub prefix: String,
    pub name: String,
    #[serde(with = "crate::api::time")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "crate::api::time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, with = "crate::api::time::option")]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// `POST /api/auth/api-keys`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    pub name: String,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// 201 of `POST /api/auth/api-keys`: the only time `key` is shown.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ApiKeyCreatedReply {
    pub key: String,
    pub prefix: String,
    pub name: String,
    #[serde(default, with = "crate::api::time::option")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ApiKeyCreatedReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyCreatedReply")
            .field("prefix", &self.prefix)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `POST /api/users`.
#[derive(Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub is_admin: bool,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl std::fmt::Debug for CreateUserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUserRequest")
            .field("email", &self.email)
            .field("is_admin", &self.is_admin)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

/// `PUT /api/users/{id}/admin`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminFlag {
    pub is_admin: bool,
}

/// `GET`/`PUT /api/users/{id}/groups`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Groups {
    pub groups: Vec<String>,
}

/// One audit-trail entry (`GET /api/audit`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub audit_id: Uuid,
    #[serde(with = "crate::api::time")]
    pub at: DateTime<Utc>,
    /// The user's e-mail (or the e-mail a failed sign-in named); null when unknown.
    pub actor: Option<String>,
    /// `jwt`, `api-key:<prefix>`, `password`, `refresh`, `oidc:<provider>`.
    pub via: Option<String>,
    pub source_ip: Option<String>,
    pub action: String,
    pub target: Option<String>,
    /// `success`, or the error code of the refusal.
    pub outcome: String,
    pub status: u16,
    pub request_id: Option<String>,
}
