//! The `next` of an OIDC sign-in (API §5.4): where the browser goes afterwards. It MUST be a
//! same-origin relative path, or the sign-in becomes an open redirect that sends a fresh
//! session to an attacker's page.

/// The longest `next` accepted.
const MAX_NEXT_LEN: usize = 2048;

/// `next` itself when it is a safe same-origin path; otherwise why not.
pub fn safe_next(next: &str) -> Result<&str, &'static str> {
    if next.is_empty() {
        return Err("must not be empty");
    }
    if next.len() > MAX_NEXT_LEN {
        return Err("is too long");
    }
    if !next.starts_with('/') {
        return Err("must be a path on this server starting with '/'");
    }
    // `//host` and `/\host` are protocol-relative URLs to browsers; backslashes are read as
    // slashes by some, and control characters (tab, newline) are dropped by URL parsers, so
    // `/\t/evil.example` would become `//evil.example`.
    if next.starts_with("//") {
        return Err("must not start with '//' (another host)");
    }
    if next.contains('\\') {
        return Err("must not contain backslashes");
    }
    if next.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters");
    }
    // Percent-encoded slashes or backslashes at the start decode into the same tricks.
    let lowered = next.to_ascii_lowercase();
    if lowered.starts_with("/%2f") || lowered.starts_with("/%5c") || lowered.contains("%0") {
        return Err(
            "must not start with an encoded '/' or '\\' or hold encoded control characters",
        );
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_same_origin_paths_are_accepted() {
        for good in ["/", "/jobs", "/jobs/123?tab=logs#x", "/a/b%20c"] {
            assert_eq!(safe_next(good), Ok(good), "{good}");
        }
        for bad in [
            "",
            "//evil.example",
            "///evil.example",
            "https://evil.example/",
            "http:/evil",
            "javascript:alert(1)",
            "/\\evil.example",
            "\\\\evil.example",
            "/jobs\\..\\x",
            "/\t/evil.example",
            "/ /evil",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/x%0a",
            "evil.example",
        ] {
            assert!(safe_next(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(safe_next(&format!("/{}", "a".repeat(3000))).is_err());
    }
}
