//! Decoding the `auth` section (API §10.2, §5): secrets, token lifetimes, login providers and
//! the initial user.

use indexmap::IndexMap;

use crate::workflow::model::Duration;

use super::read::{Cx, Section};
use super::types::{AuthConfig, InitialUser, ProviderConfig, ProviderType};

/// `auth.jwt_secret` must be at least this long (API §10.2).
pub const MIN_JWT_SECRET_CHARS: usize = 32;
const ACCESS_TOKEN_TTL: Duration = Duration(15 * 60);
const REFRESH_TOKEN_TTL: Duration = Duration(30 * 86_400);
/// Token lifetimes have no maximum in the specification; this only keeps the arithmetic of
/// expiry times far from overflow.
const MAX_TTL: Duration = Duration(10 * 365 * 86_400);

/// The `auth` section, `None` when it is absent (authentication off).
pub fn auth(cx: &mut Cx, root: &Section) -> Option<AuthConfig> {
    let section = cx.section(root, "auth")?;
    let jwt_secret = cx.required_secret(&section, "jwt_secret", "when 'auth' is set");
    if let Some(secret) = &jwt_secret
        && secret.expose().chars().count() < MIN_JWT_SECRET_CHARS
    {
        let path = section.path_of("jwt_secret");
        let origin = section
            .get("jwt_secret")
            .or_else(|| section.get("jwt_secret_file"))
            .map_or_else(|| section.origin.clone(), |item| item.origin.clone());
        let message = format!("'{path}' must be at least {MIN_JWT_SECRET_CHARS} characters long");
        cx.error(&origin, path, message);
    }
    let refresh_secret = cx.required_secret(&section, "refresh_secret", "when 'auth' is set");
    let base_url = cx.string(&section, "base_url");
    let access_token_ttl = cx
        .duration(&section, "access_token_ttl", MAX_TTL)
        .unwrap_or(ACCESS_TOKEN_TTL);
    let refresh_token_ttl = cx
        .duration(&section, "refresh_token_ttl", MAX_TTL)
        .unwrap_or(REFRESH_TOKEN_TTL);
    let providers = providers(cx, &section, base_url.is_some());
    let initial_user = cx
        .section(&section, "initial_user")
        .and_then(|user| initial_user(cx, &user));
    Some(AuthConfig {
        jwt_secret: jwt_secret?,
        refresh_secret: refresh_secret?,
        base_url,
        access_token_ttl,
        refresh_token_ttl,
        providers,
        initial_user,
    })
}

fn providers(cx: &mut Cx, auth: &Section, has_base_url: bool) -> IndexMap<String, ProviderConfig> {
    let mut providers = IndexMap::new();
    let Some(section) = cx.section(auth, "providers") else {
        return providers;
    };
    for entry in section.entries {
        let path = section.path_of(&entry.key);
        let Some(provider) = Section::of_entry(entry, path.clone()) else {
            let message = format!(
                "'{path}' must be a map, found {}",
                entry.item.kind().describe()
            );
            cx.error(&entry.item.origin, path, message);
            continue;
        };
        let options = [
            ("internal", ProviderType::Internal),
            ("oidc", ProviderType::Oidc),
        ];
        let provider_type = cx.choice(&provider, "provider_type", &options);
        if provider_type.is_none() && provider.get("provider_type").is_none() {
            cx.missing(&provider, "provider_type", "(internal or oidc)");
        }
        let display_name = cx.string(&provider, "display_name");
        let issuer_url = cx.string(&provider, "issuer_url");
        let client_id = cx.string(&provider, "client_id");
        let client_secret = cx.secret(&provider, "client_secret");
        let default_groups = cx.strings(&provider, "default_groups").unwrap_or_default();
        if provider_type == Some(ProviderType::Oidc) {
            cx.warn(
                &entry.key_origin,
                format!(
                    "'{path}': OIDC login (P2) is not supported in this version and has no effect"
                ),
            );
            for key in ["issuer_url", "client_id"] {
                if provider.get(key).is_none() {
                    cx.missing(&provider, key, "for an oidc provider");
                }
            }
            if !has_base_url {
                let message = format!("'auth.base_url' is required by the oidc provider '{path}'");
                cx.error(&entry.key_origin, "auth.base_url".to_owned(), message);
            }
        }
        if let Some(provider_type) = provider_type {
            providers.insert(
                entry.key.clone(),
                ProviderConfig {
                    provider_type,
                    display_name,
                    issuer_url,
                    client_id,
                    client_secret,
                    default_groups,
                },
            );
        }
    }
    providers
}

fn initial_user(cx: &mut Cx, section: &Section) -> Option<InitialUser> {
    let email = cx.string(section, "email");
    if email.is_none() && section.get("email").is_none() {
        cx.missing(section, "email", "for the initial user");
    }
    let password = cx.required_secret(section, "password", "for the initial user");
    Some(InitialUser {
        email: email?,
        password: password?,
    })
}
