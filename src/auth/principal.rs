//! Who is calling: [`Caller`] is what every `/api` handler learns about the request's sender.

use uuid::Uuid;

use crate::store::UserRecord;

/// The sender of an `/api` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Authentication is off (API §5.1): everything is open, jobs record `source_type: api`.
    Open,
    /// A signed-in user.
    User(Principal),
    /// Authentication is on and the route is public (`/api/config`, the sign-in routes): no
    /// credentials were needed, and none are known.
    Anonymous,
}

/// A signed-in user as of this request: the account's current admin flag and groups, whatever
/// the token said when it was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub email: String,
    pub is_admin: bool,
    pub groups: Vec<String>,
    pub via: Via,
}

/// The credential a request came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// An access JWT.
    Token,
    /// An API key, by its public prefix.
    ApiKey { prefix: String },
}

impl Principal {
    pub fn new(user: &UserRecord, via: Via) -> Self {
        Principal {
            user_id: user.user_id,
            email: user.email.clone(),
            is_admin: user.is_admin,
            groups: user.groups.clone(),
            via,
        }
    }

    /// The `source_id` of the jobs this principal starts (API §2.4, issue #12): the e-mail, or
    /// `api-key:<prefix>` for a key.
    pub fn source_id(&self) -> String {
        match &self.via {
            Via::Token => self.email.clone(),
            Via::ApiKey { prefix } => format!("api-key:{prefix}"),
        }
    }

    /// The audit trail's `via`.
    pub fn via_label(&self) -> String {
        match &self.via {
            Via::Token => "jwt".to_owned(),
            Via::ApiKey { prefix } => format!("api-key:{prefix}"),
        }
    }
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::User(principal) => Some(principal),
            Caller::Open | Caller::Anonymous => None,
        }
    }

    /// Admin routes: open without authentication, else for admins only.
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Open => true,
            Caller::User(principal) => principal.is_admin,
            Caller::Anonymous => false,
        }
    }
}
