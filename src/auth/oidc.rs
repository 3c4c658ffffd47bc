//! OIDC sign-in (API §5.4): discovery from `issuer_url`, the authorization-code flow with PKCE
//! (S256), `state` and `nonce` kept in a signed, short-lived cookie, ID-token verification
//! (issuer, audience, signature, nonce, expiry; the e-mail from the ID token, else from the
//! UserInfo endpoint for the same subject), and the rules that find, link or create the
//! account: by (provider, subject); else an existing account with the same e-mail, **only**
//! when the ID token says `email_verified: true`; else a new password-less account with the
//! provider's `default_groups`.
//!
//! Discovery happens on first use and is kept for [`METADATA_TTL`], so a server starts even
//! while its identity provider is unreachable.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::config::ProviderConfig;
use crate::store::{NewUser, StoreError, UserRecord};

use super::{Auth, normalise_email, token};

/// The cookie holding the flow's state (API §5.4).
pub const STATE_COOKIE: &str = "stroem_oidc";
/// The path it is sent to: the callbacks only.
pub const STATE_COOKIE_PATH: &str = "/api/auth/oidc";
/// How long a started sign-in may take (API §5.4: 10 minutes).
pub const STATE_TTL_SECS: i64 = 600;
/// How long discovered metadata (endpoints, signing keys) is used before it is fetched again.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Bounds every request to the identity provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// One configured OIDC provider.
#[derive(Debug)]
pub struct Provider {
    id: String,
    display_name: String,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<crate::config::Secret>,
    redirect: RedirectUrl,
    default_groups: Vec<String>,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

/// Why an OIDC sign-in failed; `code` goes into the `#error=` of the redirect to the UI.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the sign-in state is missing, expired or does not match; start again")]
    InvalidState,
    #[error("the identity provider refused the sign-in: {0}")]
    Denied(String),
    #[error("the identity provider cannot be reached or answered wrongly: {0}")]
    Provider(String),
    #[error("the identity provider's ID token is invalid: {0}")]
    InvalidIdToken(String),
    #[error("the identity provider did not give an e-mail address")]
    MissingEmail,
    #[error(
        "an account with this e-mail exists, but the identity provider does not say the address is verified"
    )]
    EmailNotVerified,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl OidcError {
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::InvalidState => "invalid_state",
            OidcError::Denied(_) => "access_denied",
            OidcError::Provider(_) => "provider_error",
            OidcError::InvalidIdToken(_) => "invalid_id_token",
            OidcError::MissingEmail => "missing_email",
            OidcError::EmailNotVerified => "email_not_verified",
            OidcError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for OidcError {
    fn from(error: StoreError) -> Self {
        OidcError::Internal(error.into())
    }
}

/// What the signed state cookie carries between the redirect and the callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FlowState {
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    exp: i64,
}

/// The redirect that starts a sign-in, and the cookie to set with it.
#[derive(Debug, Clone)]
pub struct Started {
    pub location: String,
    pub cookie: String,
}

/// A finished sign-in: the account and where the browser goes next.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserRecord,
    pub next: String,
    /// Whether the account was created by this sign-in.
    pub created: bool,
}

impl Provider {
    pub fn new(
        id: &str,
        config: &ProviderConfig,
        base_url: Option<&str>,
    ) -> anyhow::Result<Provider> {
        let issuer_url = config
            .issuer_url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("auth.providers.{id}.issuer_url is required"))?;
        let base = base_url.ok_or_else(|| {
            anyhow::anyhow!("auth.base_url is required by the oidc provider '{id}'")
        })?;
        let redirect = RedirectUrl::new(format!("{base}/api/auth/oidc/{id}/callback"))
            .map_err(|error| anyhow::anyhow!("auth.base_url: {error}"))?;
        Ok(Provider {
            id: id.to_owned(),
            display_name: config.display_name.clone().unwrap_or_else(|| id.to_owned()),
            issuer: IssuerUrl::new(issuer_url)
                .map_err(|error| anyhow::anyhow!("auth.providers.{id}.issuer_url: {error}"))?,
            client_id: ClientId::new(config.client_id.clone().unwrap_or_default()),
            client_secret: config.client_secret.clone(),
            redirect,
            default_groups: config.default_groups.clone(),
            metadata: Mutex::new(None),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    async fn metadata(
        &self,
        http: &openidconnect::reqwest::Client,
    ) -> Result<CoreProviderMetadata, OidcError> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, metadata)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(metadata.clone());
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), http)
            .await
            .map_err(|error| OidcError::Provider(format!("discovery failed: {error}")))?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn client_secret(&self) -> Option<ClientSecret> {
        self.client_secret
            .as_ref()
            .map(|secret| ClientSecret::new(secret.expose().to_owned()))
    }
}

fn http_client() -> Result<openidconnect::reqwest::Client, OidcError> {
    // No redirects: a token endpoint that redirects could otherwise send the code elsewhere.
    openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .build()
        .map_err(|error| OidcError::Internal(error.into()))
}

impl Auth {
    /// Starts a sign-in with `provider`: the identity provider's authorization URL and the
    /// signed state cookie's value. `next` must already be checked ([`super::next::safe_next`]).
    pub async fn oidc_start(
        &self,
        provider: &Provider,
        next: &str,
        now: DateTime<Utc>,
    ) -> Result<Started, OidcError> {
        let http = http_client()?;
        let metadata = provider.metadata(&http).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            provider.client_id.clone(),
            provider.client_secret(),
        )
        .set_redirect_uri(provider.redirect.clone());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let flow = FlowState {
            provider: provider.id.clone(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next: next.to_owned(),
            exp: now.timestamp() + STATE_TTL_SECS,
        };
        Ok(Started {
            location: url.to_string(),
            cookie: self.seal(&flow)?,
        })
    }

    /// Finishes a sign-in: checks the state cookie against `state`, exchanges `code`, verifies
    /// the ID token and finds, links or creates the account.
    pub async fn oidc_callback(
        &self,
        provider: &Provider,
        code: &str,
        state: &str,
        cookie: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<SignedIn, OidcError> {
        let flow = cookie
            .and_then(|cookie| self.open(cookie))
            .filter(|flow| flow.provider == provider.id && flow.exp > now.timestamp())
            .ok_or(OidcError::InvalidState)?;
        if !token::same(&flow.state, state) {
            return Err(OidcError::InvalidState);
        }
        let http = http_client()?;
        let metadata = provider.metadata(&http).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            provider.client_id.clone(),
            provider.client_secret(),
        )
        .set_redirect_uri(provider.redirect.clone());
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|error| OidcError::Provider(error.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|error| OidcError::Provider(format!("code exchange failed: {error}")))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::InvalidIdToken("the token response has none".to_owned()))?;
        let nonce = Nonce::new(flow.nonce.clone());
        let claims = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .map_err(|error| OidcError::InvalidIdToken(error.to_string()))?;
        let subject = claims.subject().clone();
        let mut email = claims.email().map(|email| email.as_str().to_owned());
        let mut verified = claims.email_verified();
        let mut name = claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.as_str().to_owned());
        // A provider that follows OIDC Core §5.4 closely puts the `email` scope's claims in the
        // UserInfo response rather than in the ID token; ask there, for the same subject.
        if email.is_none()
            && let Ok(request) =
                client.user_info(response.access_token().clone(), Some(subject.clone()))
        {
            let info: openidconnect::core::CoreUserInfoClaims = request
                .request_async(&http)
                .await
                .map_err(|error| OidcError::Provider(format!("userinfo failed: {error}")))?;
            email = info.email().map(|email| email.as_str().to_owned());
            verified = info.email_verified();
            name = name.or_else(|| {
                info.name()
                    .and_then(|name| name.get(None))
                    .map(|name| name.as_str().to_owned())
            });
        }
        let email = email
            .map(|email| normalise_email(&email))
            .filter(|email| email.contains('@'))
            .ok_or(OidcError::MissingEmail)?;
        let verified = verified == Some(true);
        let subject = subject.as_str().to_owned();
        let (user, created) = self
            .resolve_account(provider, &subject, &email, verified, name, now)
            .await?;
        Ok(SignedIn {
            user,
            next: flow.next,
            created,
        })
    }

    async fn resolve_account(
        &self,
        provider: &Provider,
        subject: &str,
        email: &str,
        verified: bool,
        name: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(UserRecord, bool), OidcError> {
        let store = self.store();
        if let Some(user) = store.user_by_identity(&provider.id, subject).await? {
            return Ok((user, false));
        }
        if let Some(user) = store.user_by_email(email).await? {
            if !verified {
                return Err(OidcError::EmailNotVerified);
            }
            store
                .link_identity(&provider.id, subject, user.user_id, now)
                .await?;
            let user = store
                .user_by_id(user.user_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("a user vanished while being linked"))?;
            return Ok((user, false));
        }
        let user = store
            .create_linked_user(
                &NewUser {
                    email: email.to_owned(),
                    name,
                    password_hash: None,
                    is_admin: false,
                    groups: provider.default_groups.clone(),
                },
                &provider.id,
                subject,
                now,
            )
            .await?;
        Ok((user, true))
    }

    /// `base64url(json).hmac`.
    fn seal(&self, flow: &FlowState) -> Result<String, OidcError> {
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(flow).map_err(anyhow::Error::from)?);
        let signature =
            token::hmac_hex(self.inner.state_key.expose().as_bytes(), payload.as_bytes());
        Ok(format!("{payload}.{signature}"))
    }

    fn open(&self, cookie: &str) -> Option<FlowState> {
        let (payload, signature) = cookie.split_once('.')?;
        let expected =
            token::hmac_hex(self.inner.state_key.expose().as_bytes(), payload.as_bytes());
        if !token::same(signature, &expected) {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_codes_are_stable() {
        use super::OidcError;
        assert_eq!(OidcError::EmailNotVerified.code(), "email_not_verified");
        assert_eq!(OidcError::InvalidState.code(), "invalid_state");
    }
}
