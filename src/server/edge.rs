//! Defences at the edge of the HTTP surface, before any handler runs (docs/security.md):
//!
//! - **Cross-site requests.** While authentication is off, any web page a user visits could
//!   make their browser `POST` to the server. State-changing `/api` requests must therefore
//!   declare a JSON body (`Content-Type: application/json`, which a cross-site form or a
//!   "simple" `fetch` cannot send without a CORS preflight the server never grants) — 415
//!   otherwise, even when the body is empty — and an `Origin` header, when present, must be
//!   the server's own (the request's `Host`), `auth.base_url`'s, or one of
//!   `http.allowed_origins` — 403 otherwise. `/hooks` and `/worker` are exempt: webhook senders
//!   and workers are not browsers, and authenticate with their own secrets.
//! - **CORS** (API §1.6). Without `auth.base_url` no CORS header is ever sent: the UI is
//!   same-origin. With it, exactly that origin may call `/api` from a browser with
//!   credentials: its preflights are answered before the authentication gate (a preflight
//!   carries no credentials), and every answer to it — a 401 too, so a page can tell it must
//!   refresh — names it. `http.allowed_origins` only relaxes the cross-site write check above;
//!   it grants no CORS.
//! - **Slow requests.** Every request must be answered within `http.request_timeout_secs`
//!   (408 `request_timeout`), except those that wait by design and bound their own waits: the
//!   log WebSocket, `/worker/jobs/claim` long polls (≤ 30 s) and `/hooks` (sync webhooks and
//!   `?wait=true`, ≤ 300 s). Header and body timeouts are applied per connection
//!   ([`super::connection`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::config::HttpConfig;

/// The `http` settings as the server applies them.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    /// Lower-case `scheme://host[:port]` origins allowed besides the server's own.
    pub allowed_origins: Arc<[String]>,
    /// The one origin granted CORS with credentials: `auth.base_url`'s.
    pub cors_origin: Option<Arc<str>>,
}

impl HttpPolicy {
    /// The policy of `config`, also allowing `base_url`'s origin (`auth.base_url`, the public
    /// address of the server, API §1.6).
    pub fn new(config: &HttpConfig, base_url: Option<&str>) -> Self {
        let mut allowed_origins = config.allowed_origins.clone();
        let cors_origin = base_url.and_then(origin_of_url);
        if let Some(origin) = &cors_origin {
            allowed_origins.push(origin.clone());
        }
        HttpPolicy {
            header_timeout: Duration::from_secs(config.header_timeout_secs),
            body_timeout: Duration::from_secs(config.body_timeout_secs),
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            allowed_origins: allowed_origins.into(),
            cors_origin: cors_origin.map(Arc::from),
        }
    }
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy::new(&HttpConfig::default(), None)
    }
}

/// `https://stroem.example.com/ui/` → `https://stroem.example.com`.
fn origin_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// Middleware on `/api`: the cross-site rules above for every method that changes state.
pub async fn same_origin_writes(
    State(policy): State<HttpPolicy>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
        if !declares_json(request.headers()) {
            return ApiError::UnsupportedMediaType.into_response();
        }
        if let Some(origin) = request.headers().get(header::ORIGIN)
            && !origin_allowed(origin, request.headers(), &policy.allowed_origins)
        {
            let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            return ApiError::forbidden(format!(
                "cross-origin request from '{}' refused: only this server's own pages (and \
                 http.allowed_origins) may change state",
                super::request_id::escape_control(&shown)
            ))
            .into_response();
        }
    }
    next.run(request).await
}

/// What a preflight may ask for: every method of the API and the headers its clients send.
const CORS_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const CORS_HEADERS: &str = "authorization, content-type, x-request-id";
/// How long a browser may cache a preflight answer (10 minutes, Chromium's cap).
const CORS_MAX_AGE_SECS: &str = "600";

/// Middleware on `/api`, outside the authentication gate: CORS for `auth.base_url`'s origin
/// only (above).
pub async fn cors(State(policy): State<HttpPolicy>, request: Request, next: Next) -> Response {
    let Some(allowed) = policy.cors_origin.as_deref() else {
        return next.run(request).await;
    };
    let granted = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|origin| origin.to_str().ok())
        .map(|origin| origin.trim_end_matches('/'))
        .is_some_and(|origin| origin.eq_ignore_ascii_case(allowed));
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if granted && preflight {
        let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(CORS_MAX_AGE_SECS),
        );
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    // Caches must not hand one origin's answer to another.
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if granted && let Ok(origin) = HeaderValue::from_str(allowed) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// `Content-Type: application/json` or `application/…+json`, parameters allowed.
fn declares_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.rsplit_once('+').is_some_and(|(kind, suffix)| {
            kind.to_ascii_lowercase().starts_with("application/")
                && suffix.eq_ignore_ascii_case("json")
        })
}

/// The server's own origin is the one whose host is the request's `Host` (any scheme: behind
/// a TLS-terminating proxy the server cannot tell); others must be listed. `Origin: null`
/// (sandboxed frames, some redirects) is never allowed.
fn origin_allowed(origin: &HeaderValue, headers: &HeaderMap, allowed: &[String]) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    if allowed.contains(&origin) {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_ascii_lowercase);
    matches!(scheme, "http" | "https") && host.as_deref() == Some(authority)
}

/// Middleware on the whole surface: answers 408 when a request takes longer than
/// `http.request_timeout_secs`, except the routes that wait by design (above).
pub async fn request_deadline(
    State(policy): State<HttpPolicy>,
    request: Request,
    next: Next,
) -> Response {
    if waits_by_design(request.uri().path()) {
        return next.run(request).await;
    }
    match tokio::time::timeout(policy.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}

/// The log WebSocket, claim long polls and webhooks, which bound their own waits.
fn waits_by_design(path: &str) -> bool {
    path == "/worker/jobs/claim"
        || path.starts_with("/hooks/")
        || (path.starts_with("/api/jobs/") && path.ends_with("/logs/stream"))
}

/// The Content Security Policy of the web UI: its own scripts, styles (React sets `style`
/// attributes), images and API/WebSocket connections only, and no framing by other sites.
pub const UI_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

/// Adds the UI's security headers: no framing (clickjacking), the CSP above, no sniffing.
pub fn with_ui_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(UI_CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_the_servers_own_or_listed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        let listed = vec!["https://ops.example.com".to_owned()];
        let allowed = |origin: &'static str| {
            origin_allowed(&HeaderValue::from_static(origin), &headers, &listed)
        };
        assert!(allowed("http://127.0.0.1:8080"));
        assert!(allowed("https://127.0.0.1:8080"));
        assert!(allowed("HTTPS://OPS.example.com/"));
        assert!(!allowed("http://127.0.0.1:8081"));
        assert!(!allowed("https://evil.example"));
        assert!(!allowed("null"));
        assert!(!allowed("file://127.0.0.1:8080"));
    }

    #[test]
    fn the_base_url_contributes_its_origin() {
        let policy = HttpPolicy::new(
            &HttpConfig::default(),
            Some("https://Stroem.example.com/ui/?x"),
        );
        assert_eq!(&*policy.allowed_origins, ["https://stroem.example.com"]);
    }

    #[test]
    fn streams_polls_and_hooks_wait_by_design() {
        assert!(waits_by_design("/worker/jobs/claim"));
        assert!(waits_by_design("/hooks/deploy"));
        assert!(waits_by_design("/api/jobs/0195/logs/stream"));
        assert!(!waits_by_design("/api/jobs/0195/logs"));
        assert!(!waits_by_design("/worker/heartbeat"));
    }
}
