//! The secrets Strøm hands out (API §5.2): access JWTs, refresh tokens and API keys, and the
//! one-way forms they are stored in. Pure functions over keys and the clock given.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Every API key starts with this (API §5.2).
pub const API_KEY_PREFIX: &str = "strm_";
/// The public part of a key: `strm_` and the first 7 hex characters.
pub const API_KEY_PREFIX_LEN: usize = 12;

/// The claims of an access token (API §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    pub email: String,
    pub is_admin: bool,
    pub iat: i64,
    pub exp: i64,
}

/// Signs and checks access tokens with `auth.jwt_secret` (HS256).
#[derive(Clone)]
pub struct AccessKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKeys(***)")
    }
}

impl AccessKeys {
    pub fn new(secret: &[u8]) -> Self {
        AccessKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A token for `claims`.
    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// The claims of a token signed by us that has not expired at `now`. Only HS256 is
    /// accepted, so a token cannot choose a weaker algorithm (`none`) for itself.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok()?;
        (data.claims.exp > now.timestamp()).then_some(data.claims)
    }
}

/// A new refresh token: 256 random bits, URL-safe base64 (API §5.2).
pub fn new_refresh_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// How a refresh token is stored: HMAC-SHA256 keyed with `auth.refresh_secret`, hex.
pub fn refresh_hash(secret: &[u8], token: &str) -> String {
    hmac_hex(secret, token.as_bytes())
}

/// A new API key: `strm_` and 32 lowercase hex characters (API §5.2).
pub fn new_api_key() -> String {
    format!(
        "{API_KEY_PREFIX}{}",
        hex::encode(rand::random::<[u8; 16]>())
    )
}

/// Whether `text` has the shape of an API key (so it is looked up as one, not as a JWT).
pub fn is_api_key(text: &str) -> bool {
    text.strip_prefix(API_KEY_PREFIX).is_some_and(|rest| {
        rest.len() == 32
            && rest
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
}

/// The public prefix of a key of the right shape.
pub fn api_key_prefix(key: &str) -> &str {
    key.get(..API_KEY_PREFIX_LEN).unwrap_or(key)
}

/// How an API key is stored: SHA-256, hex.
pub fn api_key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// HMAC-SHA256 of `data` keyed with `key`, hex.
pub fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// Compares two secrets (or their hashes) in constant time.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    let a = Sha256::digest(a.as_bytes());
    let b = Sha256::digest(b.as_bytes());
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Uuid::nil(),
            email: "a@example.test".to_owned(),
            is_admin: false,
            iat: 0,
            exp,
        }
    }

    #[test]
    fn access_tokens_verify_until_they_expire() {
        let keys = AccessKeys::new(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let token = keys.issue(&claims(now.timestamp() + 60)).expect("signs");
        assert_eq!(
            keys.verify(&token, now).map(|c| c.email),
            Some("a@example.test".to_owned())
        );
        let expired = keys.issue(&claims(now.timestamp())).expect("signs");
        assert_eq!(keys.verify(&expired, now), None);
        let other = AccessKeys::new(b"another secret of enough length!!");
        assert_eq!(other.verify(&token, now), None);
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        // {"alg":"none"} with valid-looking claims.
        let keys = AccessKeys::new(b"0123456789abcdef0123456789abcdef");
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims(Utc::now().timestamp() + 60)).expect("json"));
        assert_eq!(keys.verify(&format!("{header}.{body}."), Utc::now()), None);
    }

    #[test]
    fn api_keys_have_the_documented_shape() {
        let key = new_api_key();
        assert!(is_api_key(&key), "{key}");
        assert_eq!(api_key_prefix(&key).len(), 12);
        assert!(!is_api_key("strm_XYZ"));
        assert!(!is_api_key(&key.to_uppercase()));
        assert_eq!(api_key_hash(&key).len(), 64);
        assert_ne!(new_api_key(), key);
    }

    #[test]
    fn refresh_tokens_are_256_bits_and_stored_keyed() {
        let token = new_refresh_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).expect("base64").len(), 32);
        assert_ne!(refresh_hash(b"a", &token), refresh_hash(b"b", &token));
        assert!(same(&token, &token.clone()));
        assert!(!same(&token, "x"));
    }
}
