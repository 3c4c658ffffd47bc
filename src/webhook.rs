//! Webhook calls (WF §15.2, API §6), apart from HTTP plumbing: who may call a hook, and the job
//! input a call becomes. The server hands in the request's parts as plain data.
//!
//! Authentication, when the trigger has a `secret` (any one suffices, compared in constant
//! time): `Authorization: Bearer <secret>`, or `X-Stroem-Signature` / `X-Hub-Signature-256`
//! carrying `sha256=<hex>`, the HMAC-SHA256 of the raw body keyed with the secret (GitHub's
//! scheme). A secret in the query string is refused outright: URLs end up in proxy and access
//! logs, so accepting one would leak the secret.
//!
//! A signature vouches for the body and nothing else, so a signed call may carry no data the
//! signature does not cover: it needs a body (the signature of an empty body is the same for
//! every call, a key anyone who saw one call could reuse) and no query string (which would
//! reach the job unsigned). Calls without a body (`GET`) authenticate with the Bearer token.
//! Signature headers, like `Authorization` and cookies, never reach the job's input.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The headers that carry a body signature, in the order they are tried.
pub const SIGNATURE_HEADERS: [&str; 2] = ["x-stroem-signature", "x-hub-signature-256"];

/// Headers never passed into a job's input: they carry credentials, or signatures made with
/// one (`x-hub-signature` is GitHub's older SHA-1 signature).
const HIDDEN_HEADERS: [&str; 6] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "x-stroem-signature",
    "x-hub-signature-256",
    "x-hub-signature",
];

/// One webhook call, as the server received it.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// Header names in lower case, in the order received; values as sent.
    pub headers: &'a [(String, Vec<u8>)],
    /// Query parameters, decoded, in order.
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
    /// The token of `Authorization: Bearer …`, read by the server's one parser of the scheme
    /// (any case, RFC 7235); `None` without one.
    pub bearer: Option<&'a str>,
}

impl Call<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
    }
}

/// Why a call is refused with 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "query secrets are not accepted: send the secret as 'Authorization: Bearer <secret>' or sign the body (X-Stroem-Signature / X-Hub-Signature-256)"
    )]
    QuerySecret,
    #[error(
        "this webhook needs its secret: send 'Authorization: Bearer <secret>' or an HMAC-SHA256 signature of the body in X-Stroem-Signature or X-Hub-Signature-256 ('sha256=<hex>')"
    )]
    Missing,
    #[error("the webhook secret or signature is not valid")]
    Invalid,
    #[error(
        "a signature covers the request body, and this request has none, so it proves nothing: \
         send 'Authorization: Bearer <secret>' instead"
    )]
    SignedEmptyBody,
    #[error(
        "a signature covers only the body, not the query string: send the data in the signed \
         body (or as the trigger's input), or authenticate with 'Authorization: Bearer <secret>'"
    )]
    SignedQuery,
}

/// Checks a call against the trigger's rendered `secret`; an open hook (`None`) admits all.
pub fn authenticate(secret: Option<&str>, call: &Call<'_>) -> Result<(), AuthError> {
    let Some(secret) = secret else {
        return Ok(());
    };
    if call.query.iter().any(|(name, _)| name == "secret") {
        return Err(AuthError::QuerySecret);
    }
    // Validation refuses empty secrets; should one render empty anyway, nothing matches it.
    if secret.is_empty() {
        return Err(AuthError::Invalid);
    }
    let mut presented = false;
    if call.header("authorization").is_some() {
        presented = true;
        if let Some(token) = call.bearer {
            // Comparing digests keeps the time independent of where the strings differ and
            // of the secret's length.
            let given = sha256(token.as_bytes());
            if bool::from(given.ct_eq(&sha256(secret.as_bytes()))) {
                return Ok(());
            }
        }
    }
    for header in SIGNATURE_HEADERS {
        let Some(value) = call.header(header) else {
            continue;
        };
        presented = true;
        if verify_signature(secret.as_bytes(), call.body, value) {
            // Valid, but only for what it signs: the call may carry nothing else.
            return if call.body.is_empty() {
                Err(AuthError::SignedEmptyBody)
            } else if !call.query.is_empty() {
                Err(AuthError::SignedQuery)
            } else {
                Ok(())
            };
        }
    }
    Err(if presented {
        AuthError::Invalid
    } else {
        AuthError::Missing
    })
}

/// `sha256=<hex>` over `body` keyed with `secret`, checked in constant time.
fn verify_signature(secret: &[u8], body: &[u8], header: &[u8]) -> bool {
    let Some(hex_text) = header.trim_ascii().strip_prefix(b"sha256=") else {
        return false;
    };
    let Ok(signature) = hex::decode(hex_text) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// The hex HMAC-SHA256 of `body` keyed with `secret`, as a sender computes it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error case of `new_from_slice` cannot happen.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a secret sent as it is (a header such as GitLab's `X-Gitlab-Token`) is `secret`,
/// compared in constant time like the Bearer token.
pub fn token_matches(given: &str, secret: &str) -> bool {
    !secret.is_empty() && bool::from(sha256(given.as_bytes()).ct_eq(&sha256(secret.as_bytes())))
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    Sha256::digest(data).into()
}

/// Why a call's body cannot become job input (400, field `body`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("invalid JSON for content type '{content_type}': {message}")]
    InvalidJson {
        content_type: String,
        message: String,
    },
    #[error("the body is not valid UTF-8")]
    NotUtf8,
}

/// The job input of a call (WF §15.2): `body` (parsed JSON for JSON content types, else the
/// UTF-8 text, `null` when empty), `headers` (lower-case names, credentials left out; a
/// repeated header's values joined with `, `), `method` and `query` (a repeated parameter's
/// last value wins).
pub fn input(call: &Call<'_>) -> Result<Map<String, Value>, BodyError> {
    let content_type = call
        .header("content-type")
        .map(|value| String::from_utf8_lossy(value).into_owned());
    let body = if call.body.is_empty() {
        Value::Null
    } else if content_type.as_deref().is_some_and(is_json) {
        serde_json::from_slice(call.body).map_err(|error| BodyError::InvalidJson {
            content_type: content_type.clone().unwrap_or_default(),
            message: error.to_string(),
        })?
    } else {
        Value::String(
            std::str::from_utf8(call.body)
                .map_err(|_| BodyError::NotUtf8)?
                .to_owned(),
        )
    };
    let mut headers = Map::new();
    for (name, value) in call.headers {
        if HIDDEN_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = String::from_utf8_lossy(value).into_owned();
        match headers.get_mut(name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.clone(), Value::String(value));
            }
        }
    }
    let query: Map<String, Value> = call
        .query
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    let mut input = Map::new();
    input.insert("body".to_owned(), body);
    input.insert("headers".to_owned(), Value::Object(headers));
    input.insert("method".to_owned(), Value::String(call.method.to_owned()));
    input.insert("query".to_owned(), Value::Object(query));
    Ok(input)
}

/// `application/json`, `application/vnd.github+json`, `text/json`, with any parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(
        headers: &'a [(String, Vec<u8>)],
        query: &'a [(String, String)],
        body: &'a [u8],
    ) -> Call<'a> {
        // The server parses the scheme (`crate::server::bearer_token`); so does this helper.
        let bearer = headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
            .and_then(crate::server::bearer_credentials);
        Call {
            method: "POST",
            headers,
            query,
            body,
            bearer,
        }
    }

    /// Headers, query, body and the expected refusal.
    type Case<'a> = (
        Vec<(String, Vec<u8>)>,
        Vec<(String, String)>,
        &'a [u8],
        AuthError,
    );

    fn header(name: &str, value: &str) -> (String, Vec<u8>) {
        (name.to_owned(), value.as_bytes().to_vec())
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bearer_or_either_signature_header_admits() {
        let body = br#"{"ref":"main"}"#;
        let good = format!("sha256={}", sign(b"s3cr3t", body));
        for headers in [
            vec![header("authorization", "Bearer s3cr3t")],
            vec![header("x-stroem-signature", &good)],
            vec![header("x-hub-signature-256", &good)],
            // One good credential suffices.
            vec![
                header("authorization", "Bearer wrong"),
                header("x-hub-signature-256", &good),
            ],
        ] {
            assert_eq!(
                authenticate(Some("s3cr3t"), &call(&headers, &[], body)),
                Ok(()),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn refuses_wrong_missing_tampered_and_query_secrets() {
        let body = br#"{"ref":"main"}"#;
        let signed = format!("sha256={}", sign(b"s3cr3t", body));
        let cases: [Case<'_>; 6] = [
            (vec![], vec![], body, AuthError::Missing),
            (
                vec![header("authorization", "Bearer s3cr3")],
                vec![],
                body,
                AuthError::Invalid,
            ),
            (
                vec![header("authorization", "Basic czNjcjN0")],
                vec![],
                body,
                AuthError::Invalid,
            ),
            (
                vec![header("x-stroem-signature", &signed)],
                vec![],
                br#"{"ref":"evil"}"#,
                AuthError::Invalid,
            ),
            (
                vec![header("x-hub-signature-256", "sha1=abcdef")],
                vec![],
                body,
                AuthError::Invalid,
            ),
            (
                vec![header("authorization", "Bearer s3cr3t")],
                vec![("secret".to_owned(), "s3cr3t".to_owned())],
                body,
                AuthError::QuerySecret,
            ),
        ];
        for (headers, query, body, expected) in cases {
            assert_eq!(
                authenticate(Some("s3cr3t"), &call(&headers, &query, body)),
                Err(expected.clone()),
                "{headers:?} {query:?}"
            );
        }
        assert!(
            AuthError::QuerySecret
                .to_string()
                .starts_with("query secrets are not accepted")
        );
        // An open hook admits anything, `secret` in the query included (it is plain data).
        let query = [("secret".to_owned(), "x".to_owned())];
        assert_eq!(authenticate(None, &call(&[], &query, b"")), Ok(()));
    }

    #[test]
    fn a_signature_admits_only_what_it_signs() {
        let signed = |body: &[u8]| {
            vec![header(
                "x-hub-signature-256",
                &format!("sha256={}", sign(b"s3cr3t", body)),
            )]
        };
        let query = [("ref".to_owned(), "evil".to_owned())];
        // The signature of an empty body is the same for every call.
        for call in [
            Call {
                method: "GET",
                ..call(&signed(b""), &query, b"")
            },
            Call {
                method: "GET",
                ..call(&signed(b""), &[], b"")
            },
            call(&signed(b""), &[], b""),
        ] {
            assert_eq!(
                authenticate(Some("s3cr3t"), &call),
                Err(AuthError::SignedEmptyBody),
                "{call:?}"
            );
        }
        let body = br#"{"ref":"main"}"#;
        assert_eq!(
            authenticate(Some("s3cr3t"), &call(&signed(body), &query, body)),
            Err(AuthError::SignedQuery)
        );
        assert_eq!(
            authenticate(Some("s3cr3t"), &call(&signed(body), &[], body)),
            Ok(())
        );
        // The Bearer token is the key itself: it admits any call.
        let bearer = [header("authorization", "Bearer s3cr3t")];
        let get = Call {
            method: "GET",
            ..call(&bearer, &query, b"")
        };
        assert_eq!(authenticate(Some("s3cr3t"), &get), Ok(()));
        // A wrong signature stays `Invalid`, whatever the call carries.
        let wrong = [header("x-stroem-signature", "sha256=00")];
        assert_eq!(
            authenticate(Some("s3cr3t"), &call(&wrong, &query, b"")),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn input_has_body_headers_method_and_query() {
        let headers = [
            header("content-type", "application/json; charset=utf-8"),
            header("authorization", "Bearer s3cr3t"),
            header("cookie", "session=1"),
            header("proxy-authorization", "Basic x"),
            header("x-stroem-signature", "sha256=00"),
            header("x-hub-signature-256", "sha256=00"),
            header("x-hub-signature", "sha1=00"),
            header("x-tag", "a"),
            header("x-tag", "b"),
        ];
        let query = [
            ("ref".to_owned(), "one".to_owned()),
            ("ref".to_owned(), "two".to_owned()),
        ];
        let input = input(&call(&headers, &query, br#"{"n": 1}"#)).expect("valid");
        assert_eq!(
            Value::Object(input),
            serde_json::json!({
                "body": {"n": 1},
                "headers": {"content-type": "application/json; charset=utf-8", "x-tag": "a, b"},
                "method": "POST",
                "query": {"ref": "two"},
            })
        );
    }

    #[test]
    fn body_is_text_null_or_an_error() {
        let text = [header("content-type", "text/plain")];
        let input_of = |headers: &[(String, Vec<u8>)], body: &[u8]| {
            input(&call(headers, &[], body)).map(|input| input["body"].clone())
        };
        assert_eq!(
            input_of(&text, b"{not json"),
            Ok(Value::String("{not json".to_owned()))
        );
        assert_eq!(input_of(&[], b""), Ok(Value::Null));
        assert_eq!(input_of(&text, &[0xff, 0xfe]), Err(BodyError::NotUtf8));
        let github = [header("content-type", "application/vnd.github+json")];
        assert!(matches!(
            input_of(&github, b"{oops"),
            Err(BodyError::InvalidJson { .. })
        ));
    }
}
