//! Password hashing with argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane —
//! the `argon2` crate's defaults). Hashing is CPU-bound for tens of milliseconds, so callers
//! run it on a blocking thread.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// The shortest password a user may set (API §5.5 `POST /api/auth/password`). The initial
/// user's configured password is exempt: it is the operator's choice.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer passwords are refused before hashing, so a huge body cannot buy CPU time.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The PHC string of a new salted hash.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

/// Whether `password` matches the PHC string `stored`. An unreadable hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

/// A hash of a password nobody knows, made once at start-up: a login for an unknown e-mail
/// (or a password-less user) verifies against it, so that it takes as long as a wrong
/// password for a real user and the two cannot be told apart by timing.
pub fn dummy_hash() -> String {
    let password = hex::encode(rand::random::<[u8; 16]>());
    hash(&password).unwrap_or_default()
}

/// Why a new password is refused, or `None`.
pub fn weakness(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Some(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters long"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Some(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes long"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let stored = hash("correct horse battery").expect("hashes");
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("wrong horse battery", &stored));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(hash("correct horse battery").expect("hashes"), stored);
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(weakness("short").is_some());
        assert!(weakness(&"x".repeat(2000)).is_some());
        assert_eq!(weakness("twelve chars"), None);
    }
}
