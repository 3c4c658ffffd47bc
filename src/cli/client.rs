//! The HTTP side of the client verbs (API §9): a small blocking client over `ureq` that speaks
//! the public API, keeps each response's raw body (so `-o json` prints exactly what the server
//! answered) and turns every failure into a [`ClientError`] with the exit code of API §9.3.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::ErrorBody;

/// Exit codes of API §9.3.
pub mod exit {
    pub const OK: u8 = 0;
    pub const JOB_FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const SERVER: u8 = 3;
    pub const TIMEOUT: u8 = 124;
}

/// Longest response body read (a log page of 10 000 long lines fits).
const BODY_LIMIT: u64 = 1024 * 1024 * 1024;
/// Bounds every request, so a hung server cannot hang a script forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a client verb failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Exit 2: a bad argument the server never saw.
    #[error("{0}")]
    Usage(String),
    /// Exit 3: no answer from the server.
    #[error("cannot reach the server at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// Exit 3: the server answered with an error body (API §1.3).
    #[error("{}", .body.error)]
    Api { status: u16, body: Box<ErrorBody> },
    /// Exit 3: the server answered something that is not the API's shape.
    #[error("unexpected answer from {url} (HTTP {status}): {message}")]
    Unexpected {
        url: String,
        status: u16,
        message: String,
    },
    /// Exit 124.
    #[error("timed out after {0}")]
    Timeout(String),
}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => exit::USAGE,
            ClientError::Timeout(_) => exit::TIMEOUT,
            ClientError::Unreachable { .. }
            | ClientError::Api { .. }
            | ClientError::Unexpected { .. } => exit::SERVER,
        }
    }

    /// The lines printed to stderr: the message, then the error's `code`, `field` and every
    /// entry of `details`.
    pub fn report(&self) -> String {
        let mut text = format!("error: {self}\n");
        if let ClientError::Api { status, body } = self {
            match status {
                401 => text.push_str(
                    "  not signed in, or the credential is invalid or expired: run `stroem login`, \
                     or pass --token / STROEM_TOKEN (a JWT or an strm_ API key)\n",
                ),
                403 => text.push_str("  permission denied: your account may not do this\n"),
                _ => {}
            }
            text.push_str(&format!("  code: {} (HTTP {status})\n", body.code));
            if let Some(field) = &body.field {
                text.push_str(&format!("  field: {field}\n"));
            }
            for detail in body.details.iter().flatten() {
                text.push_str(&format!("  - {}: {}\n", detail.field, detail.message));
            }
        }
        text
    }
}

/// One successful answer: its raw body, and `X-Total-Count` when the route paginates.
#[derive(Debug, Clone)]
pub struct Reply {
    pub body: String,
    pub total: Option<u64>,
    url: String,
}

impl Reply {
    /// The body as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_str(&self.body).map_err(|error| ClientError::Unexpected {
            url: self.url.clone(),
            status: 200,
            message: error.to_string(),
        })
    }
}

/// A connection to one server (`--server`, `--token`).
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> Result<Client, ClientError> {
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Usage(format!(
                "--server '{server}': expected an http:// or https:// URL"
            )));
        }
        // Error statuses are answers with a JSON body to report, not transport failures.
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .build()
            .into();
        Ok(Client {
            agent,
            base,
            token: token.filter(|token| !token.is_empty()),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `GET {path}?{query}`.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Reply, ClientError> {
        let url = self.url(path);
        let mut request = self.agent.get(&url);
        for (key, value) in query {
            request = request.query(key, value);
        }
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        finish(&url, request.call())
    }

    /// `POST {path}` with a JSON body, or none.
    pub fn post<B: Serialize>(&self, path: &str, body: Option<&B>) -> Result<Reply, ClientError> {
        let url = self.url(path);
        let mut request = self.agent.post(&url);
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let result = match body {
            Some(body) => {
                let text = serde_json::to_string(body)
                    .map_err(|error| ClientError::Usage(error.to_string()))?;
                request
                    .header("Content-Type", "application/json")
                    .send(text)
            }
            // State-changing `/api` requests must declare JSON even without a body (the
            // server's cross-site defence, docs/security.md).
            None => request
                .header("Content-Type", "application/json")
                .send_empty(),
        };
        finish(&url, result)
    }

    /// `DELETE {path}`.
    pub fn delete(&self, path: &str) -> Result<Reply, ClientError> {
        let url = self.url(path);
        // Every state-changing `/api` request declares JSON, even without a body (the server's
        // same-origin defence, docs/security.md).
        let mut request = self
            .agent
            .delete(&url)
            .header("Content-Type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        finish(&url, request.call())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn finish(
    url: &str,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Reply, ClientError> {
    let unreachable = |error: ureq::Error| ClientError::Unreachable {
        url: url.to_owned(),
        message: error.to_string(),
    };
    let mut response = result.map_err(unreachable)?;
    let status = response.status().as_u16();
    let total = response
        .headers()
        .get("x-total-count")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let body = response
        .body_mut()
        .with_config()
        .limit(BODY_LIMIT)
        .read_to_string()
        .map_err(unreachable)?;
    if (200..300).contains(&status) {
        return Ok(Reply {
            body,
            total,
            url: url.to_owned(),
        });
    }
    Err(error_from(url, status, &body))
}

/// An error answer: the API's error body when it is one.
pub fn error_from(url: &str, status: u16, body: &str) -> ClientError {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(body) => ClientError::Api {
            status,
            body: Box::new(body),
        },
        Err(_) => ClientError::Unexpected {
            url: url.to_owned(),
            status,
            message: body.chars().take(200).collect(),
        },
    }
}

/// Percent-encodes one path segment (API §1.2: `deploy[2]` → `deploy%5B2%5D`).
pub fn segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `--timeout DUR`: `90`, `90s`, `5m`, `1h30m`, `250ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("'{text}' is not a duration (e.g. 30s, 5m, 1h30m)");
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        let unit_end = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |end| digits + end);
        let part = match &rest[digits..unit_end] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number * 60),
            "h" => Duration::from_secs(number * 3600),
            "d" => Duration::from_secs(number * 86_400),
            _ => return Err(invalid()),
        };
        total += part;
        rest = &rest[unit_end..];
    }
    if total.is_zero() {
        return Err(invalid());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("deploy[2]"), "deploy%5B2%5D");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(segment("plain-name_1.x"), "plain-name_1.x");
    }

    #[test]
    fn error_bodies_are_reported_with_code_field_and_details() {
        let error = error_from(
            "http://x/api",
            400,
            r#"{"error":"input.n: required","code":"invalid_input","field":"input.n",
                "details":[{"field":"input.n","message":"required"}]}"#,
        );
        assert_eq!(error.exit_code(), exit::SERVER);
        assert_eq!(
            error.report(),
            "error: input.n: required\n  code: invalid_input (HTTP 400)\n  field: input.n\n  \
             - input.n: required\n"
        );
        let plain = error_from("http://x/api", 502, "Bad Gateway");
        assert!(matches!(plain, ClientError::Unexpected { status: 502, .. }));
    }
}
