//! Decoding the `auth` section (API §10.2, §5): secrets, token lifetimes, login providers, the
//! initial user and the access rules.

use indexmap::IndexMap;

use crate::workflow::model::Duration;

use super::acl::acl;
use super::read::{Cx, Section};
use super::types::{AuthConfig, InitialUser, ProviderConfig, ProviderType};

/// `auth.jwt_secret` should be at least this long (API §10.2). Shorter secrets are accepted
/// with a warning, so that the configuration snippet of earlier releases' README starts as
/// written (`docs/deviations.md`).
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
        let message = format!(
            "'{path}' is shorter than {MIN_JWT_SECRET_CHARS} characters: anyone who guesses it \
             can sign in as any user; use a long random value"
        );
        cx.warn(&origin, message);
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
    let acl = acl(cx, &section);
    Some(AuthConfig {
        jwt_secret: jwt_secret?,
        refresh_secret: refresh_secret?,
        base_url,
        access_token_ttl,
        refresh_token_ttl,
        providers,
        initial_user,
        acl,
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
        if let Some(item) = provider.get("default_groups") {
            for group in default_groups.iter().filter(|group| !valid_group(group)) {
                let key = provider.path_of("default_groups");
                let message = format!("'{key}': invalid group name '{group}'; {GROUP_RULE}");
                cx.error(&item.origin, key, message);
            }
        }
        if !valid_provider_id(&entry.key) {
            let message = format!(
                "'{path}': a provider id is 1 to 64 of A-Z, a-z, 0-9, '_' and '-' (it is part of \
                 the callback URL)"
            );
            cx.error(&entry.key_origin, path.clone(), message);
        }
        if provider_type == Some(ProviderType::Oidc) {
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

/// What [`valid_group`] accepts, for messages.
pub const GROUP_RULE: &str = "group names are 1 to 64 of A-Z, a-z, 0-9, '_' and '-'";

/// A group name (API §5.5: `[A-Za-z0-9_-]{1,64}`).
pub fn valid_group(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-'))
}

/// Provider ids appear in paths (`/api/auth/oidc/<id>/callback`), so they follow the same rule
/// as group names.
fn valid_provider_id(id: &str) -> bool {
    valid_group(id)
}
